//! HTTP Basic authentication as Twilio checks it: the account SID and auth
//! token, or an API key SID and its secret. Secrets are compared in
//! constant time.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Credentials;

/// Ok when the request carries valid credentials, else Twilio's 401.
pub(crate) fn check(headers: &HeaderMap, credentials: &Credentials) -> Result<(), ApiError> {
    let (user, password) = basic_credentials(headers).ok_or_else(ApiError::unauthorized)?;
    let pairs = [
        (&credentials.account_sid, &credentials.auth_token),
        (&credentials.api_key_sid, &credentials.api_key_secret),
    ];
    let valid = pairs.iter().any(|(expected_user, expected_secret)| {
        user == expected_user.as_str()
            && bool::from(password.as_bytes().ct_eq(expected_secret.as_bytes()))
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn credentials() -> Credentials {
        Credentials {
            account_sid: "AC1".into(),
            auth_token: "token".into(),
            api_key_sid: "SK1".into(),
            api_key_secret: "secret".into(),
        }
    }

    fn headers(user: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[test]
    fn the_account_pair_and_the_api_key_pair_are_both_accepted() {
        assert!(check(&headers("AC1", "token"), &credentials()).is_ok());
        assert!(check(&headers("SK1", "secret"), &credentials()).is_ok());
    }

    #[test]
    fn mixed_or_missing_credentials_are_refused() {
        assert!(check(&headers("AC1", "secret"), &credentials()).is_err());
        assert!(check(&headers("SK1", "token"), &credentials()).is_err());
        assert!(check(&HeaderMap::new(), &credentials()).is_err());
    }
}
