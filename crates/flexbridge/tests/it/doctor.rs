//! `flexbridge doctor` against the emulator: a working configuration of
//! both backends passes every check; each kind of mistake fails (or, for
//! an unreachable public URL, warns) with words naming it; the command's
//! exit code follows.

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
