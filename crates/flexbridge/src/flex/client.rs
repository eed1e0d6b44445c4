//! The Twilio REST client: one `reqwest` client (rustls, connection reuse,
//! timeouts), HTTP Basic auth with the account SID + auth token or an API
//! key + secret, form-encoded requests, Twilio's JSON error body turned into
//! [`FlexError`] (with `Retry-After` on 429), and list paging that follows
//! `meta.next_page_url` only back to the host it came from.
//!
//! Every product has its own host (`flex-api.twilio.com`, `chat.twilio.com`,
//! …); `TWILIO_API_BASE` replaces all of them with one base URL (the Flex
//! emulator serves every product on one port).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use super::FlexError;
use crate::flex::sid::{AccountSid, ApiKeySid};

/// The Twilio products the bridge calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Flex,
    Chat,
    Conversations,
    TaskRouter,
    Studio,
    /// The Media Content Service (files of Chat and Conversations messages).
    Media,
}

impl Product {
    fn default_base(self) -> &'static str {
        match self {
            Self::Flex => "https://flex-api.twilio.com",
            Self::Chat => "https://chat.twilio.com",
            Self::Conversations => "https://conversations.twilio.com",
            Self::TaskRouter => "https://taskrouter.twilio.com",
            Self::Studio => "https://studio.twilio.com",
            Self::Media => "https://mcs.us1.twilio.com",
        }
    }
}

/// How REST calls authenticate.
#[derive(Clone)]
pub enum RestAuth {
    /// Username = account SID, password = auth token.
    AuthToken(SecretString),
    /// Username = API key SID, password = its secret.
    ApiKey {
        sid: ApiKeySid,
        secret: SecretString,
    },
}

impl fmt::Debug for RestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthToken(_) => f.write_str("AuthToken(<redacted>)"),
            Self::ApiKey { sid, .. } => write!(f, "ApiKey {{ sid: {sid}, secret: <redacted> }}"),
        }
    }
}

/// Timeouts of REST calls.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
        }
    }
}

/// A Twilio REST client for one account.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    account_sid: AccountSid,
    auth: RestAuth,
    /// Replaces every product's host (the emulator).
    api_base: Option<Url>,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            .field("account_sid", &self.account_sid)
            .field("auth", &self.auth)
            .field("api_base", &self.api_base.as_ref().map(Url::as_str))
            .finish()
    }
}

/// Twilio's error body (`code`, `message`, `more_info`, `status`).
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// The paging envelope of every list answer.
#[derive(Debug, serde::Deserialize)]
struct PageMeta {
    next_page_url: Option<String>,
}

impl TwilioClient {
    pub fn new(
        account_sid: AccountSid,
        auth: RestAuth,
        api_base: Option<Url>,
        timeouts: Timeouts,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("flexbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client for Twilio")?;
        Ok(Self {
            http,
            account_sid,
            auth,
            api_base,
        })
    }

    pub fn account_sid(&self) -> &AccountSid {
        &self.account_sid
    }

    /// The absolute URL of `path` (which starts with `/v1/…` or `/v2/…`).
    pub fn url(&self, product: Product, path: &str) -> Result<Url, FlexError> {
        let base = match &self.api_base {
            Some(base) => base.as_str().trim_end_matches('/').to_owned(),
            None => product.default_base().to_owned(),
        };
        Url::parse(&format!("{base}{path}"))
            .map_err(|e| FlexError::BadResponse(format!("cannot build a URL for {path}: {e}")))
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            RestAuth::AuthToken(token) => {
                request.basic_auth(self.account_sid.as_str(), Some(token.expose_secret()))
            }
            RestAuth::ApiKey { sid, secret } => {
                request.basic_auth(sid.as_str(), Some(secret.expose_secret()))
            }
        }
    }

    /// `POST` a form; with `webhook_enabled`, sends
    /// `X-Twilio-Webhook-Enabled: true` so the action fires webhooks.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        product: Product,
        path: &str,
        form: &[(&str, &str)],
        webhook_enabled: bool,
    ) -> Result<T, FlexError> {
        let url = self.url(product, path)?;
        let mut request = self.authorize(self.http.post(url)).form(form);
        if webhook_enabled {
            request = request.header("X-Twilio-Webhook-Enabled", "true");
        }
        self.execute(request).await
    }

    /// `GET` with query parameters.
    pub async fn get<T: DeserializeOwned>(
        &self,
        product: Product,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, FlexError> {
        let mut url = self.url(product, path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.execute(self.authorize(self.http.get(url))).await
    }

    /// `POST` a binary body of `content_type` (a Media upload), with the
    /// file's name as `Content-Disposition` (docs/twilio-reference.md §10).
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        product: Product,
        path: &str,
        content_type: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<T, FlexError> {
        let url = self.url(product, path)?;
        let disposition = format!("attachment; filename=\"{}\"", filename.replace('"', "_"));
        let request = self
            .authorize(self.http.post(url))
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_DISPOSITION, disposition)
            .body(bytes);
        self.execute(request).await
    }

    /// `GET` a temporary URL Twilio handed out (a media's
    /// `content_direct_temporary`): without our credentials, which it
    /// does not need and which must not go to whatever host it names.
    pub async fn get_temporary(&self, url: &str) -> Result<Vec<u8>, FlexError> {
        let url = Url::parse(url)
            .map_err(|e| FlexError::BadResponse(format!("a temporary URL {url:?}: {e}")))?;
        let (_, bytes) = self.send(self.http.get(url)).await?;
        Ok(bytes.to_vec())
    }

    /// `DELETE` (Twilio answers 204 with no body).
    pub async fn delete(&self, product: Product, path: &str) -> Result<(), FlexError> {
        let url = self.url(product, path)?;
        self.send(self.authorize(self.http.delete(url)))
            .await
            .map(drop)
    }

    /// Every item of a list (the array under `key`), following
    /// `next_page_url` for at most `max_pages` pages.
    pub async fn list<T: DeserializeOwned>(
        &self,
        product: Product,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
        max_pages: usize,
    ) -> Result<Vec<T>, FlexError> {
        let first = self.url(product, path)?;
        let mut url = first.clone();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut items = Vec::new();
        for _ in 0..max_pages {
            let page: serde_json::Value = self.execute(self.authorize(self.http.get(url))).await?;
            let list = page
                .get(key)
                .cloned()
                .ok_or_else(|| FlexError::BadResponse(format!("a list without `{key}`")))?;
            let list: Vec<T> = serde_json::from_value(list)
                .map_err(|e| FlexError::BadResponse(format!("`{key}` items: {e}")))?;
            items.extend(list);
            let next = page
                .get("meta")
                .and_then(|meta| serde_json::from_value::<PageMeta>(meta.clone()).ok())
                .and_then(|meta| meta.next_page_url);
            match next.and_then(|next| Url::parse(&next).ok()) {
                // Our credentials go only back to the host the list came from.
                Some(next) if next.origin() == first.origin() => url = next,
                _ => break,
            }
        }
        Ok(items)
    }

    /// Sends `request`; a success's JSON answer read as `T`.
    async fn execute<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, FlexError> {
        let (status, bytes) = self.send(request).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| FlexError::BadResponse(format!("HTTP {status}: {e}")))
    }

    /// Sends `request`; a success's status and body, or the error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(http::StatusCode, axum::body::Bytes), FlexError> {
        let response = request.send().await.map_err(classify_transport)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(FlexError::NoAnswer)?;
        if status.is_success() {
            return Ok((status, bytes));
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        Err(FlexError::Api {
            status: status.as_u16(),
            code: body.as_ref().and_then(|b| b.code),
            message: body
                .and_then(|b| b.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            retry_after,
        })
    }
}

/// A transport error: did the request leave? Only a failure to connect (or
/// to build the request) proves it did not; anything else may have landed.
fn classify_transport(error: reqwest::Error) -> FlexError {
    if error.is_connect() || error.is_builder() {
        FlexError::Unreachable(error)
    } else {
        FlexError::NoAnswer(error)
    }
}

/// Longest wait a `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `Retry-After` as delay-seconds (the HTTP-date form is rare for Twilio
/// and falls back to the caller's backoff).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let seconds: f64 = value.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: Option<&str>) -> TwilioClient {
        TwilioClient::new(
            AccountSid::parse("AC00000000000000000000000000000000").unwrap(),
            RestAuth::AuthToken(SecretString::from("s3cret-token".to_owned())),
            base.map(|b| Url::parse(b).unwrap()),
            Timeouts::default(),
        )
        .unwrap()
    }

    #[test]
    fn product_hosts_are_twilios_unless_one_base_replaces_them() {
        let real = client(None);
        assert_eq!(
            real.url(Product::Chat, "/v2/Services").unwrap().as_str(),
            "https://chat.twilio.com/v2/Services"
        );
        let emulated = client(Some("http://127.0.0.1:3001/"));
        assert_eq!(
            emulated
                .url(Product::Flex, "/v1/Channels")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3001/v1/Channels"
        );
    }

    #[test]
    fn secrets_are_absent_from_debug_output() {
        let printed = format!("{:?}", client(None));
        assert!(!printed.contains("s3cret-token"), "{printed}");
        let key = RestAuth::ApiKey {
            sid: ApiKeySid::parse("SK00000000000000000000000000000000").unwrap(),
            secret: SecretString::from("key-secret".to_owned()),
        };
        assert!(!format!("{key:?}").contains("key-secret"));
    }

    #[test]
    fn retry_after_is_read_as_seconds_and_capped() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(http::header::RETRY_AFTER, "100000".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
