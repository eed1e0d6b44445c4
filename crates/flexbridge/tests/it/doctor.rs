//! `flexbridge doctor` against the emulator: a working configuration of
//! both backends passes every check; each kind of mistake fails (or, for
//! an unreachable public URL, warns) with words naming it; the command's
//! exit code follows. On PostgreSQL the database lock is checked as
//! `serve` would take it, and Redis (with `REDIS_URL`) answers `PING`.

use flexbridge::config::{PublicBaseUrl, Settings};
use flexbridge::doctor::{self, Check, Status};
use flexbridge::flex::BackendKind;
use flexbridge::flex::conversations::Routing;
use flexbridge::flex::sid::{FlexFlowSid, WorkflowSid};

use crate::spawn_app;

fn the<'a>(checks: &'a [Check], what: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.what == what)
        .unwrap_or_else(|| panic!("no {what} check in {checks:#?}"))
}

#[tokio::test]
async fn a_working_configuration_of_both_backends_passes_every_check() {
    let app = spawn_app(BackendKind::Conversations).await;
    let bootstrap = app.emulator.emulator.bootstrap().clone();

    let checks = doctor::check(&app.settings).await;

    assert!(!doctor::failed(&checks), "{checks:#?}");
    for what in ["database", "conversations", "chat", "public URL"] {
        assert_eq!(the(&checks, what).status, Status::Ok, "{checks:#?}");
    }
    let conversations = &the(&checks, "conversations").detail;
    for sid in [
        &bootstrap.chat_service_sid,
        &bootstrap.workspace_sid,
        &bootstrap.workflow_sid,
        &bootstrap.chat_task_channel_sid,
    ] {
        assert!(conversations.contains(sid.as_str()), "{conversations}");
    }
}

#[tokio::test]
async fn each_mistake_is_named_and_an_unreachable_public_url_only_warns() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut settings: Settings = app.settings.clone();
    let missing_workflow = WorkflowSid::parse("WW00000000000000000000000000000000").unwrap();
    let Some(Routing::Interactions(routing)) = &mut settings.flex.routing else {
        panic!("the test app routes with interactions");
    };
    routing.workflow = missing_workflow.clone();
    settings.flex.flex_flow_sid =
        Some(FlexFlowSid::parse("FO00000000000000000000000000000000").unwrap());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    settings.public_base_url =
        PublicBaseUrl::Fixed(format!("http://127.0.0.1:{closed_port}/").parse().unwrap());

    let checks = doctor::check(&settings).await;

    assert!(doctor::failed(&checks));
    assert_eq!(the(&checks, "database").status, Status::Ok);
    let conversations = the(&checks, "conversations");
    assert_eq!(conversations.status, Status::Fail);
    assert!(
        conversations.detail.contains(missing_workflow.as_str())
            && conversations.detail.contains("TASKROUTER_WORKFLOW_SID"),
        "{}",
        conversations.detail
    );
    let chat = the(&checks, "chat");
    assert_eq!(chat.status, Status::Fail);
    assert!(chat.detail.contains("FLEX_FLOW_SID"), "{}", chat.detail);
    let public = the(&checks, "public URL");
    assert_eq!(public.status, Status::Warn);
    assert!(public.detail.contains("not reachable"), "{}", public.detail);
}

#[tokio::test]
async fn wrong_credentials_fail_the_twilio_checks() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut settings = app.settings.clone();
    settings.twilio.rest_auth =
        flexbridge::flex::client::RestAuth::AuthToken("not-the-token".to_owned().into());

    let checks = doctor::check(&settings).await;

    for what in ["conversations", "chat"] {
        let check = the(&checks, what);
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.detail.contains("401"), "{check:?}");
    }
}

#[tokio::test]
async fn a_401_names_the_settings_to_check() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut settings = app.settings.clone();
    settings.twilio.rest_auth =
        flexbridge::flex::client::RestAuth::AuthToken("not-the-token".to_owned().into());

    let checks = doctor::check(&settings).await;

    for what in ["conversations", "chat"] {
        let check = the(&checks, what);
        assert!(
            check.detail.contains("TWILIO_ACCOUNT_SID")
                && check.detail.contains("TWILIO_AUTH_TOKEN"),
            "{check:?}"
        );
    }
}

#[tokio::test]
async fn a_mistyped_database_url_creates_no_database_and_is_reported() {
    let app = spawn_app(BackendKind::Conversations).await;
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("flexbrige.db");
    let mut settings = app.settings.clone();
    settings.database_url = format!("sqlite://{}", typo.display());

    let checks = doctor::check(&settings).await;

    assert!(!typo.exists(), "doctor created {}", typo.display());
    let database = the(&checks, "database");
    assert_eq!(database.status, Status::Warn, "{database:?}");
    assert!(database.detail.contains("DATABASE_URL"), "{database:?}");
}

#[tokio::test]
async fn the_command_exits_non_zero_when_a_check_fails_and_zero_when_none_does() {
    let app = spawn_app(BackendKind::Conversations).await;
    let bootstrap = app.emulator.emulator.bootstrap().clone();
    let credentials = app.emulator.emulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("doctor.db").display());
    // An existing database (doctor creates none).
    flexbridge::store::Store::connect(&database)
        .await
        .unwrap()
        .close()
        .await;
    let run = |workflow: String| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_flexbridge"));
        command
            .arg("doctor")
            .env_clear()
            .env("RUST_LOG", "off")
            .env("TWILIO_ACCOUNT_SID", &credentials.account_sid)
            .env("TWILIO_AUTH_TOKEN", &credentials.auth_token)
            .env("TWILIO_API_BASE", &app.emulator_url)
            .env("PUBLIC_BASE_URL", &app.url)
            .env("DATABASE_URL", &database)
            .env("FLEX_CHAT_SERVICE", &bootstrap.chat_service_sid)
            .env("TASKROUTER_WORKSPACE_SID", &bootstrap.workspace_sid)
            .env("TASKROUTER_WORKFLOW_SID", workflow)
            .kill_on_drop(true);
        command.output()
    };

    let good = run(bootstrap.workflow_sid.clone()).await.unwrap();
    let bad = run("WW00000000000000000000000000000000".to_owned())
        .await
        .unwrap();

    let good_out = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{good_out}");
    assert!(good_out.lines().all(|l| l.starts_with("ok ")), "{good_out}");
    let bad_out = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{bad_out}");
    assert!(
        bad_out
            .lines()
            .any(|l| l.starts_with("FAIL  conversations") && l.contains("TASKROUTER_WORKFLOW_SID")),
        "{bad_out}"
    );
}

/// A `redis-server` of the test's own on a free loopback port (stopped
/// when dropped).
struct RedisServer {
    child: std::process::Child,
    url: url::Url,
}

impl RedisServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/setup installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(std::time::Instant::now() < deadline, "redis-server listens");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let url = format!("redis://127.0.0.1:{port}").parse().unwrap();
        Self { child, url }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn on_postgres_the_database_lock_and_redis_are_checked() {
    crate::Database::Postgres
        .run(async {
            let mut app = spawn_app(BackendKind::Conversations).await;
            let redis = RedisServer::start().await;

            // The bridge runs without REDIS_URL: it holds the database
            // alone, which its own configuration's doctor only notes.
            let checks = doctor::check(&app.settings).await;
            let database = the(&checks, "database");
            assert_eq!(database.status, Status::Warn, "{database:?}");
            assert!(
                database.detail.contains("PostgreSQL")
                    && database.detail.contains("holds it alone"),
                "{database:?}"
            );
            assert!(checks.iter().all(|c| c.what != "redis"), "{checks:#?}");

            // With REDIS_URL, this bridge could not join the one running.
            let mut shared = app.settings.clone();
            shared.redis_url = Some(redis.url.clone());
            let checks = doctor::check(&shared).await;
            let database = the(&checks, "database");
            assert_eq!(database.status, Status::Fail, "{database:?}");
            assert!(
                database.detail.contains("without REDIS_URL"),
                "{database:?}"
            );
            let check = the(&checks, "redis");
            assert_eq!(check.status, Status::Ok, "{check:?}");
            assert!(check.detail.contains("answers PING"), "{check:?}");

            // Once it stops, both configurations pass; a Redis that does
            // not answer fails.
            app.crash().await;
            let checks = doctor::check(&app.settings).await;
            assert_eq!(the(&checks, "database").status, Status::Ok, "{checks:#?}");
            let checks = doctor::check(&shared).await;
            assert_eq!(the(&checks, "database").status, Status::Ok, "{checks:#?}");
            let port = redis.url.port().unwrap();
            drop(redis);
            shared.redis_url = Some(format!("redis://127.0.0.1:{port}").parse().unwrap());
            let checks = doctor::check(&shared).await;
            let check = the(&checks, "redis");
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert!(check.detail.contains("cannot connect"), "{check:?}");
        })
        .await;
}
