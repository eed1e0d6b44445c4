//! `flexbridge doctor`: checks a `serve` configuration, before or while
//! the bridge runs, and says what is wrong in words an operator can act on.
//!
//! Takes exactly `serve`'s settings (so a setting that is missing or
//! malformed stops it as it would stop `serve`), then checks, in order:
//!
//! - **database**: `DATABASE_URL` opens (migrated, as `serve` would) and
//!   answers. Doctor creates no database: a file that does not exist yet
//!   is a warning (`serve` creates it; if one should be there, the URL is
//!   mistyped), a folder that does not exist a failure. The database has
//!   applied every migration this version knows and none it does not. On PostgreSQL also whether this
//!   bridge could take the database's lock as `serve` would (alone without
//!   `REDIS_URL`, shared with it): held by a bridge of the other kind
//!   fails; held alone by one bridge (this configuration's own, when it
//!   runs) only warns.
//! - **redis** (when `REDIS_URL` is set): the server answers `PING`
//!   (`doctor/redis_ping.rs`: one connection, closed at once;
//!   a `rediss://` (TLS) URL is not checked, a warning).
//! - **conversations** (when its routing is configured): the credentials
//!   work and every configured SID exists — the chat service, then the
//!   workspace, workflow and task channel (interactions) or the Studio flow
//!   (studio). Nothing is looked up by name and nothing is created:
//!   `provision` does that.
//! - **chat** (when `FLEX_FLOW_SID` is configured): the Flex Flow exists and
//!   is a custom, Studio-integrated, enabled flow in `FLEX_CHAT_SERVICE`.
//! - **public URL**: `GET {PUBLIC_BASE_URL}/healthz` answers `ok`, i.e. what
//!   Twilio's webhooks will reach is a running bridge. Unreachable is a
//!   warning, not a failure: doctor usually runs before `serve` does.
//!
//! When Twilio refuses the credentials (401/403), the check names the
//! settings to look at (`TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`, or
//! the API key's). Any failure makes the command exit non-zero; warnings
//! do not.

use std::fmt;
use std::time::Duration;

use crate::config::{PublicBaseUrl, Settings};
use crate::flex::client::TwilioClient;
use crate::flex::conversations::Routing;
use crate::flex::provision::check_flex_flow;
use crate::flex::provision::conversations as conversations_provision;
use crate::flex::sid::{ChatServiceSid, FlexFlowSid};
use crate::store::Store;
use crate::store::dialect::{self, Dialect};
use crate::store::lock::{self, LockError, Sharing};
use crate::telemetry::chain;

mod redis_ping;

/// How long the public URL may take to answer.
const PUBLIC_URL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long Redis may take to answer `PING`.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    /// `database`, `redis`, `conversations`, `chat` or `public URL`.
    pub what: &'static str,
    /// What was found, or what is wrong and what to do.
    pub detail: String,
}

impl Check {
    fn new(status: Status, what: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            what,
            detail: detail.into(),
        }
    }
}

impl Check {
    /// A failure because Twilio refused the credentials also says which
    /// settings hold them.
    fn naming_credentials(mut self, settings: &str) -> Self {
        let refused = ["HTTP 401", "HTTP 403"]
            .iter()
            .any(|status| self.detail.contains(status));
        if self.status == Status::Fail && refused {
            self.detail.push_str(&format!(
                " — Twilio refused the credentials: check {settings}"
            ));
        }
        self
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        write!(f, "{mark}  {:<13} {}", self.what, self.detail)
    }
}

/// Whether any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// Runs every check of `settings`.
pub async fn check(settings: &Settings) -> Vec<Check> {
    let mut checks = vec![database(settings).await];
    if let Some(redis) = &settings.redis_url {
        checks.push(redis_check(redis).await);
    }
    match crate::startup::twilio_client(&settings.twilio) {
        Ok(client) => {
            let flex = &settings.flex;
            let hint = settings.twilio.credential_settings();
            if let Some(routing) = &flex.routing {
                let check = conversations(&client, &flex.chat_service_sid, routing).await;
                checks.push(check.naming_credentials(hint));
            }
            if let Some(flow) = &flex.flex_flow_sid {
                let check = chat(&client, flow, &flex.chat_service_sid).await;
                checks.push(check.naming_credentials(hint));
            }
        }
        Err(error) => checks.push(Check::new(
            Status::Fail,
            "twilio",
            format!("no REST client: {error:#}"),
        )),
    }
    checks.push(public_url(&settings.public_base_url).await);
    checks
}

async fn conversations(
    client: &TwilioClient,
    chat_service: &ChatServiceSid,
    routing: &Routing,
) -> Check {
    const WHAT: &str = "conversations";
    match conversations_provision::check(client, chat_service, routing).await {
        Ok(lines) => Check::new(Status::Ok, WHAT, lines.join("; ")),
        Err(error) => Check::new(Status::Fail, WHAT, chain(&error)),
    }
}

async fn chat(client: &TwilioClient, flow: &FlexFlowSid, chat_service: &ChatServiceSid) -> Check {
    const WHAT: &str = "chat";
    match check_flex_flow(client, flow, chat_service).await {
        Ok((found, differences)) if differences.is_empty() => Check::new(
            Status::Ok,
            WHAT,
            format!(
                "Flex Flow {} \"{}\" (custom, studio, enabled, chat service {chat_service})",
                found.sid,
                found.friendly_name.unwrap_or_default(),
            ),
        ),
        Ok((found, differences)) => Check::new(
            Status::Fail,
            WHAT,
            format!("Flex Flow {}: {}", found.sid, differences.join("; ")),
        ),
        Err(error) => Check::new(
            Status::Fail,
            WHAT,
            format!("Flex Flow {flow} (FLEX_FLOW_SID): {}", chain(&error)),
        ),
    }
}

async fn database(settings: &Settings) -> Check {
    const WHAT: &str = "database";
    let url = &settings.database_url;
    let shown = dialect::redact(url);
    match crate::store::database_file(url) {
        Ok(Some(path)) if !path.exists() => {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            return match folder {
                Some(folder) if !folder.is_dir() => Check::new(
                    Status::Fail,
                    WHAT,
                    format!(
                        "{url}: the folder {} does not exist, so `serve` cannot create the \
                         database there (check DATABASE_URL)",
                        folder.display()
                    ),
                ),
                _ => Check::new(
                    Status::Warn,
                    WHAT,
                    format!(
                        "{url}: no database there yet; `serve` creates it on its first start \
                         (if one should exist, DATABASE_URL is mistyped)"
                    ),
                ),
            };
        }
        Ok(_) => {}
        Err(error) => {
            return Check::new(Status::Fail, WHAT, format!("{url}: {}", chain(&error)));
        }
    }
    let opened = async {
        let store = Store::connect(url).await?;
        store.ping().await?;
        let applied = store.applied_migrations().await?;
        store.close().await;
        Ok::<_, crate::store::StoreError>((store.dialect(), applied))
    }
    .await;
    let (kind, applied) = match opened {
        Ok(found) => found,
        Err(error) => return Check::new(Status::Fail, WHAT, format!("{shown}: {}", chain(&error))),
    };
    let known = dialect::known_migrations(kind);
    let unknown: Vec<i64> = applied
        .iter()
        .filter(|v| !known.contains(v))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Check::new(
            Status::Fail,
            WHAT,
            format!(
                "{shown}: migrations {unknown:?} were applied by a newer flexbridge; run that version (or newer)"
            ),
        );
    }
    let mut detail = format!(
        "{shown} ({}) opens and answers; migrations {applied:?}",
        kind.name()
    );
    if kind != Dialect::Postgres {
        return Check::new(Status::Ok, WHAT, detail);
    }
    let sharing = crate::startup::sharing(settings);
    match lock::check(url, sharing).await {
        Ok(()) => {
            detail.push_str(match sharing {
                Sharing::Alone => {
                    "; no other bridge runs on it (without REDIS_URL this one holds it alone)"
                }
                Sharing::Shared => "; bridges with REDIS_URL may share it",
            });
            Check::new(Status::Ok, WHAT, detail)
        }
        Err(LockError::HeldAlone) => Check::new(
            Status::Warn,
            WHAT,
            format!(
                "{detail}; a bridge without REDIS_URL holds it alone now (this one, if it is running); a second would refuse to start"
            ),
        ),
        Err(error @ (LockError::HeldShared | LockError::HeldByOneAlone)) => {
            Check::new(Status::Fail, WHAT, format!("{detail}; {error}"))
        }
        Err(error) => Check::new(
            Status::Fail,
            WHAT,
            format!("{detail}; the lock: {}", chain(&error)),
        ),
    }
}

async fn redis_check(url: &url::Url) -> Check {
    const WHAT: &str = "redis";
    let shown = dialect::redact(url.as_str());
    if url.scheme() == "rediss" {
        return Check::new(
            Status::Warn,
            WHAT,
            format!(
                "{shown}: TLS (rediss://) is not checked here; `redis-cli --tls -u URL ping` checks it"
            ),
        );
    }
    match tokio::time::timeout(REDIS_TIMEOUT, redis_ping::ping(url)).await {
        Ok(Ok(())) => Check::new(Status::Ok, WHAT, format!("{shown} answers PING")),
        Ok(Err(error)) => Check::new(Status::Fail, WHAT, format!("{shown}: {error}")),
        Err(_) => Check::new(
            Status::Fail,
            WHAT,
            format!("{shown}: no answer to PING within {REDIS_TIMEOUT:?}"),
        ),
    }
}

async fn public_url(public: &PublicBaseUrl) -> Check {
    const WHAT: &str = "public URL";
    let PublicBaseUrl::Fixed(base) = public else {
        return Check::new(
            Status::Warn,
            WHAT,
            "`auto` (the listening address): for local testing only; Twilio needs a URL it can reach",
        );
    };
    let Ok(url) = base.join("healthz") else {
        return Check::new(Status::Fail, WHAT, format!("{base}: cannot add /healthz"));
    };
    let client = match reqwest::Client::builder()
        .timeout(PUBLIC_URL_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => return Check::new(Status::Fail, WHAT, format!("no HTTP client: {error}")),
    };
    let answer = async {
        let response = client.get(url.clone()).send().await?;
        let status = response.status();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    match answer {
        Ok((status, body)) if status.is_success() && body.trim() == "ok" => Check::new(
            Status::Ok,
            WHAT,
            format!("{url} answers: a bridge is reachable where Twilio sends webhooks"),
        ),
        Ok((status, _)) => Check::new(
            Status::Warn,
            WHAT,
            format!(
                "{url} answers HTTP {status}, not a bridge's `ok`: does PUBLIC_BASE_URL point at this bridge?"
            ),
        ),
        Err(error) => Check::new(
            Status::Warn,
            WHAT,
            format!(
                "{url} is not reachable ({}); Twilio's webhooks need it once `flexbridge serve` runs behind it",
                chain(&error)
            ),
        ),
    }
}
