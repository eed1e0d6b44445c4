//! # twilio-signature
//!
//! Computes and validates the `X-Twilio-Signature` header Twilio puts on every
//! webhook request, exactly as Twilio's helper libraries do (twilio-python's
//! `RequestValidator`, twilio-node's `validateRequest`; see
//! `docs/twilio-reference.md` §8):
//!
//! 1. Start from the full URL Twilio called (scheme, credentials, host, port,
//!    path, query), exactly as configured.
//! 2. For a form-encoded body, append every parameter as `name + value`, names
//!    in code-point order; a repeated name contributes each distinct value once,
//!    values sorted.
//! 3. `base64(HMAC-SHA1(auth_token, that string))`.
//! 4. For a JSON body, Twilio adds `bodySHA256=<hex sha256 of the raw body>` to
//!    the URL's query and signs the URL alone; the validator checks the HMAC and
//!    the body hash.
//!
//! Validation is tolerant the way the helper libraries are: a signature made
//! over the URL with the port removed, or with the scheme's default port added,
//! is accepted; so is one made over the URL whose query was percent-encoded
//! the way a WHATWG URL parser re-encodes it (`'` → `%27`). All comparisons run
//! in constant time.
//!
//! The crate is shared by the bridge (which validates inbound webhooks) and the
//! Flex emulator (which signs the webhooks it sends), so both sides agree by
//! construction and both are checked against the published test vectors.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The name of the HTTP header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The query parameter Twilio adds to the URL of a signed JSON request.
pub const BODY_HASH_PARAM: &str = "bodySHA256";

/// Why a request failed validation. Every variant means "do not trust it".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no X-Twilio-Signature header")]
    Missing,
    #[error("the X-Twilio-Signature header does not match the request")]
    Mismatch,
    #[error("the JSON request's URL has no bodySHA256 parameter")]
    BodyHashMissing,
    #[error("the request body does not match the URL's bodySHA256 parameter")]
    BodyHashMismatch,
    #[error("the URL to validate against is not an absolute http(s) URL")]
    MalformedUrl,
}

/// Validates requests for one account's auth token.
///
/// The token is never printed: `Debug` shows only that one is set.
#[derive(Clone)]
pub struct RequestValidator {
    auth_token: Vec<u8>,
    /// The HMAC keyed with the token once (its inner and outer pads are
    /// hashed already); each signature starts from a copy of it.
    keyed: Hmac<Sha1>,
}

impl std::fmt::Debug for RequestValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestValidator")
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

impl RequestValidator {
    pub fn new(auth_token: impl AsRef<[u8]>) -> Self {
        #[allow(clippy::expect_used)]
        let keyed = Hmac::<Sha1>::new_from_slice(auth_token.as_ref())
            .expect("HMAC accepts keys of any length");
        Self {
            auth_token: auth_token.as_ref().to_vec(),
            keyed,
        }
    }

    /// Signs a form-encoded request the way Twilio does.
    pub fn sign<K: AsRef<str>, V: AsRef<str>>(&self, url: &str, params: &[(K, V)]) -> String {
        compute_signature(&self.auth_token, url, params)
    }

    /// Validates a form-encoded request (`application/x-www-form-urlencoded`
    /// POST, or a GET whose parameters are all in `url`, with `params` empty).
    pub fn validate_form<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        params: &[(K, V)],
        signature: &str,
    ) -> Result<(), SignatureError> {
        let pairs = sorted_pairs(params);
        // The URL as given first: it is the one Twilio signed unless a
        // port or an encoding differs, so one HMAC usually decides.
        let found = url_candidates(url)?
            .iter()
            .any(|candidate| self.matches(candidate, &pairs, signature));
        if found {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Validates a JSON request: the URL must carry `bodySHA256`, the body must
    /// hash to it, and the signature must cover the URL alone.
    pub fn validate_json(
        &self,
        url: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError> {
        let expected_hash =
            query_param(url, BODY_HASH_PARAM).ok_or(SignatureError::BodyHashMissing)?;
        let signature_ok = self.validate_form::<&str, &str>(url, &[], signature);
        let actual_hash = body_sha256_hex(body);
        let hash_ok = bool::from(actual_hash.as_bytes().ct_eq(expected_hash.as_bytes()));
        signature_ok?;
        if hash_ok {
            Ok(())
        } else {
            Err(SignatureError::BodyHashMismatch)
        }
    }

    /// Validates a raw request as received: JSON when the URL carries
    /// `bodySHA256`, form-encoded otherwise (the body is decoded here).
    pub fn validate_request(
        &self,
        url: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        if query_param(url, BODY_HASH_PARAM).is_some() {
            return self.validate_json(url, body, signature);
        }
        let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        self.validate_form(url, &params, signature)
    }

    /// [`validate_request`](Self::validate_request) for a caller that has
    /// decoded the form body into `params` already (they are ignored for a
    /// JSON request, whose `body` is hashed instead).
    pub fn validate_decoded<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        body: &[u8],
        params: &[(K, V)],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        if query_param(url, BODY_HASH_PARAM).is_some() {
            return self.validate_json(url, body, signature);
        }
        self.validate_form(url, params, signature)
    }

    fn matches(&self, url: &str, sorted: &[(&str, &str)], signature: &str) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(url.as_bytes());
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    }
}

/// The parameters in the order Twilio signs them: sorted by name, then
/// value, repeated pairs once.
fn sorted_pairs<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// `base64(HMAC-SHA1(auth_token, string_to_sign(url, params)))`.
pub fn compute_signature<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &[u8],
    url: &str,
    params: &[(K, V)],
) -> String {
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The exact string Twilio signs: the URL followed by every `name + value`,
/// names sorted by code point, each name's distinct values sorted.
pub fn string_to_sign<K: AsRef<str>, V: AsRef<str>>(url: &str, params: &[(K, V)]) -> String {
    let pairs = sorted_pairs(params);
    let capacity = url.len() + pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let mut out = String::with_capacity(capacity);
    out.push_str(url);
    for (name, value) in pairs {
        out.push_str(name);
        out.push_str(value);
    }
    out
}

/// Lower-case hex SHA-256 of a request body, as carried by `bodySHA256`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The URL Twilio calls for a JSON body: `url` with `bodySHA256=<hash>` added
/// to its query.
pub fn url_with_body_hash(url: &str, body: &[u8]) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}{BODY_HASH_PARAM}={}",
        body_sha256_hex(body)
    )
}

/// The value of the first query parameter called `name` in `url`, decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The URL split at its port, without normalising anything else (a URL
/// library would drop a default port, which changes what was signed).
struct SplitUrl<'a> {
    /// `scheme://` plus any `user:pass@`.
    prefix: &'a str,
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment.
    rest: &'a str,
}

impl<'a> SplitUrl<'a> {
    fn parse(url: &'a str) -> Result<Self, SignatureError> {
        let (scheme, after_scheme) = url.split_once("://").ok_or(SignatureError::MalformedUrl)?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(SignatureError::MalformedUrl);
        }
        let authority_end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(authority_end);
        let host_start = authority.rfind('@').map_or(0, |at| at + 1);
        let prefix_len = scheme.len() + 3 + host_start;
        let host_port = &authority[host_start..];
        let (host, port) = split_port(host_port);
        if host.is_empty() {
            return Err(SignatureError::MalformedUrl);
        }
        Ok(Self {
            prefix: &url[..prefix_len],
            scheme,
            host,
            port,
            rest,
        })
    }

    fn default_port(&self) -> Option<&'static str> {
        match self.scheme.to_ascii_lowercase().as_str() {
            "https" | "wss" => Some("443"),
            "http" | "ws" => Some("80"),
            _ => None,
        }
    }

    fn build(&self, port: Option<&str>) -> String {
        match port {
            Some(port) => format!("{}{}:{}{}", self.prefix, self.host, port, self.rest),
            None => format!("{}{}{}", self.prefix, self.host, self.rest),
        }
    }
}

/// Splits `host[:port]` (IPv6 hosts in brackets) into host and port; a
/// trailing `:digits` is a port, anything else stays part of the host.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    let search_from = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(end) => end,
            None => return (host_port, None),
        }
    } else {
        0
    };
    match host_port[search_from..].rfind(':') {
        Some(offset) => {
            let colon = search_from + offset;
            let port = &host_port[colon + 1..];
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                (&host_port[..colon], Some(port))
            } else {
                (host_port, None)
            }
        }
        None => (host_port, None),
    }
}

/// Every URL a genuine signature for `url` may have been computed over.
fn url_candidates(url: &str) -> Result<Vec<String>, SignatureError> {
    let split = SplitUrl::parse(url)?;
    let with_port = match (split.port, split.default_port()) {
        (Some(_), _) | (None, None) => url.to_owned(),
        (None, Some(default)) => split.build(Some(default)),
    };
    let without_port = split.build(None);
    let mut others = vec![with_port, without_port];
    let reencoded: Vec<String> = others.iter().filter_map(|c| reencode_query(c)).collect();
    others.extend(reencoded);
    others.sort_unstable();
    others.dedup();
    others.retain(|c| c != url);
    let mut candidates = Vec::with_capacity(others.len() + 1);
    candidates.push(url.to_owned());
    candidates.extend(others);
    Ok(candidates)
}

/// The URL with its query percent-encoded as a WHATWG URL parser does for
/// http(s) URLs (space, `"`, `<`, `>`, `'` and non-ASCII bytes), or `None`
/// when that changes nothing. twilio-node normalises URLs this way before
/// signing, so a server that sees `It's` must also try `It%27s`.
fn reencode_query(url: &str) -> Option<String> {
    const SPECIAL_QUERY: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'<')
        .add(b'>')
        .add(b'\'');
    let (before, after) = url.split_once('?')?;
    let (query, fragment) = match after.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (after, None),
    };
    let encoded = percent_encoding::utf8_percent_encode(query, SPECIAL_QUERY).to_string();
    if encoded == query {
        return None;
    }
    Some(match fragment {
        Some(fragment) => format!("{before}?{encoded}#{fragment}"),
        None => format!("{before}?{encoded}"),
    })
}

#[cfg(test)]
mod tests;
