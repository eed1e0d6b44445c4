//! Layering, and the errors a missing or malformed setting produces.

use std::collections::HashMap;
use std::io::Write as _;

use secrecy::ExposeSecret as _;

use super::*;
use crate::flex::BackendKind;
use crate::flex::conversations::{InteractionRouting, Routing, RoutingKind, Timers};
use crate::flex::sid::{StudioFlowSid, TaskChannelName, WorkflowSid, WorkspaceSid};

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const FO: &str = "FO0123456789abcdef0123456789abcdef";
const IS: &str = "IS0123456789abcdef0123456789abcdef";
const WS: &str = "WS0123456789abcdef0123456789abcdef";
const WW: &str = "WW0123456789abcdef0123456789abcdef";
const FW: &str = "FW0123456789abcdef0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Everything the default (Conversations, interactions) backend needs.
fn complete_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "tok-secret-123"),
        ("TASKROUTER_WORKSPACE_SID", WS),
        ("FLEX_CHAT_SERVICE", IS),
        ("PUBLIC_BASE_URL", "https://chat.example.com"),
        ("TASKROUTER_WORKFLOW_SID", WW),
    ]
}

/// Everything the Chat backend needs.
fn complete_chat_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "tok-secret-123"),
        ("FLEX_BACKEND", "chat"),
        ("FLEX_FLOW_SID", FO),
        ("FLEX_CHAT_SERVICE", IS),
        ("PUBLIC_BASE_URL", "https://chat.example.com"),
    ]
}

/// `pairs` plus `extra`.
fn plus<'a>(
    mut pairs: Vec<(&'a str, &'a str)>,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    pairs.extend_from_slice(extra);
    pairs
}

/// `pairs` without `key`, plus `extra`.
fn without<'a>(
    pairs: Vec<(&'a str, &'a str)>,
    key: &str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<_> = pairs.into_iter().filter(|(k, _)| *k != key).collect();
    pairs.extend_from_slice(extra);
    pairs
}

fn settings(pairs: &[(&str, &str)], flags: &[(Setting, String)]) -> Result<Settings, ConfigError> {
    Settings::from_layers(&Layers::load(None, env(pairs), flags)?)
}

#[test]
fn a_complete_environment_gives_settings_with_defaults_for_the_rest() {
    let s = settings(&complete_env(), &[]).unwrap();
    assert_eq!(s.port, 3000);
    assert_eq!(s.host, "127.0.0.1");
    assert_eq!(s.database_url, "sqlite://flexbridge.db");
    assert_eq!(s.flex.backend, BackendKind::Conversations);
    assert_eq!(s.flex.chat_service_sid.as_str(), IS);
    assert_eq!(s.flex.flex_flow_sid, None);
    assert_eq!(
        s.flex.routing,
        Some(Routing::Interactions(InteractionRouting {
            workspace: WorkspaceSid::parse(WS).unwrap(),
            workflow: WorkflowSid::parse(WW).unwrap(),
            task_channel: TaskChannelName::chat(),
        }))
    );
    assert_eq!(s.flex.timers, Timers::default());
    assert_eq!(
        s.public_base_url,
        PublicBaseUrl::Fixed(Url::parse("https://chat.example.com").unwrap())
    );
    assert!(matches!(s.twilio.rest_auth, RestAuth::AuthToken(_)));
    assert_eq!(s.auth_token.expose_secret(), "tok-secret-123");
}

/// Removing each of `required` from `complete` is an error naming it.
fn assert_each_is_required(complete: fn() -> Vec<(&'static str, &'static str)>, required: &[&str]) {
    for missing in required {
        let pairs = without(complete(), missing, &[]);
        let err = settings(&pairs, &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Missing { setting, .. } if setting.env == *missing),
            "{missing}: {err}"
        );
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[test]
fn each_missing_required_setting_of_the_conversations_backend_is_named_in_the_error() {
    assert_each_is_required(
        complete_env,
        &[
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "FLEX_CHAT_SERVICE",
            "TASKROUTER_WORKSPACE_SID",
            "TASKROUTER_WORKFLOW_SID",
            "PUBLIC_BASE_URL",
        ],
    );
}

#[test]
fn each_missing_required_setting_of_the_chat_backend_is_named_in_the_error() {
    assert_each_is_required(
        complete_chat_env,
        &[
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "FLEX_FLOW_SID",
            "FLEX_CHAT_SERVICE",
            "PUBLIC_BASE_URL",
        ],
    );
}

#[test]
fn the_conversations_backend_needs_no_flex_flow_and_the_chat_backend_no_workspace() {
    let conversations = settings(&complete_env(), &[]).unwrap();
    assert_eq!(conversations.flex.flex_flow_sid, None);

    let chat = settings(&complete_chat_env(), &[]).unwrap();
    assert_eq!(chat.flex.backend, BackendKind::Chat);
    assert_eq!(
        chat.flex.flex_flow_sid.map(|f| f.to_string()),
        Some(FO.to_owned())
    );
    assert_eq!(
        chat.flex.routing, None,
        "the other backend's routing is optional"
    );

    // The other backend's settings, when complete, are kept (it may still
    // open what it was asked to before a switch).
    let both = plus(complete_env(), &[("FLEX_FLOW_SID", FO)]);
    assert!(settings(&both, &[]).unwrap().flex.flex_flow_sid.is_some());
}

#[test]
fn a_chat_configuration_of_an_earlier_version_stops_at_start_up_instead_of_switching_silently() {
    let earlier = without(complete_chat_env(), "FLEX_BACKEND", &[]);

    let err = settings(&earlier, &[]).unwrap_err();

    assert!(
        matches!(&err, ConfigError::Missing { setting, .. } if setting.env == "TASKROUTER_WORKSPACE_SID"),
        "{err}"
    );
    assert!(err.to_string().contains("FLEX_BACKEND=chat"), "{err}");
}

#[test]
fn studio_routing_needs_the_studio_flow_instead_of_the_workspace_and_workflow() {
    let studio = vec![
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "tok"),
        ("FLEX_CHAT_SERVICE", IS),
        ("PUBLIC_BASE_URL", "https://chat.example.com"),
        ("FLEX_ROUTING", "studio"),
    ];
    let err = settings(&studio, &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Missing { setting, .. } if setting.env == "STUDIO_FLOW_SID"),
        "{err}"
    );
    assert!(err.to_string().contains("FLEX_ROUTING=studio"), "{err}");

    let s = settings(&plus(studio, &[("STUDIO_FLOW_SID", FW)]), &[]).unwrap();
    assert_eq!(
        s.flex.routing,
        Some(Routing::Studio {
            flow: StudioFlowSid::parse(FW).unwrap()
        })
    );
}

#[test]
fn malformed_conversations_settings_are_named() {
    for (key, value) in [
        ("FLEX_BACKEND", "programmable-chat"),
        ("FLEX_ROUTING", "taskrouter"),
        (
            "TASKROUTER_WORKSPACE_SID",
            "WW0123456789abcdef0123456789abcdef",
        ),
        ("TASKROUTER_WORKFLOW_SID", "assign to anyone"),
        ("FLEX_TASK_CHANNEL", "chat channel"),
        ("CONVERSATIONS_TIMER_INACTIVE", "10 minutes"),
        ("CONVERSATIONS_TIMER_CLOSED", "PT0S"),
    ] {
        let pairs = without(complete_env(), key, &[(key, value)]);
        let err = settings(&pairs, &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Malformed { setting, .. } if setting.env == key),
            "{key}: {err}"
        );
    }
}

#[test]
fn the_task_channel_and_the_conversation_timers_are_taken_from_the_settings() {
    let pairs = plus(
        complete_env(),
        &[
            ("FLEX_TASK_CHANNEL", "web-chat"),
            ("CONVERSATIONS_TIMER_INACTIVE", "PT30M"),
            ("CONVERSATIONS_TIMER_CLOSED", "P1D"),
        ],
    );
    let s = settings(&pairs, &[]).unwrap();
    let Some(Routing::Interactions(routing)) = s.flex.routing else {
        panic!("interactions routing");
    };
    assert_eq!(routing.task_channel.as_str(), "web-chat");
    assert_eq!(
        s.flex.timers.inactive.map(|t| t.as_str().to_owned()),
        Some("PT30M".into())
    );
    assert_eq!(
        s.flex.timers.closed.map(|t| t.as_str().to_owned()),
        Some("P1D".into())
    );
}

#[test]
fn a_malformed_setting_is_named_with_where_it_came_from() {
    let mut pairs = complete_env();
    pairs.push(("PORT", "eighty"));
    let err = settings(&pairs, &[]).unwrap_err();
    assert!(err.to_string().contains("PORT"), "{err}");
    assert!(err.to_string().contains("the environment"), "{err}");

    let mut pairs = complete_env();
    pairs[0] = ("TWILIO_ACCOUNT_SID", "not-a-sid");
    let err = settings(&pairs, &[]).unwrap_err();
    assert!(err.to_string().contains("TWILIO_ACCOUNT_SID"), "{err}");

    let mut pairs = complete_env();
    pairs[4] = ("PUBLIC_BASE_URL", "chat.example.com");
    let err = settings(&pairs, &[]).unwrap_err();
    assert!(err.to_string().contains("PUBLIC_BASE_URL"), "{err}");
}

#[test]
fn an_api_key_needs_its_secret_and_the_auth_token_is_still_required_for_signatures() {
    let mut pairs: Vec<_> = complete_env()
        .into_iter()
        .filter(|(k, _)| *k != "TWILIO_AUTH_TOKEN")
        .collect();
    pairs.push(("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"));
    let err = settings(&pairs, &[]).unwrap_err();
    assert!(err.to_string().contains("TWILIO_API_SECRET"), "{err}");

    pairs.push(("TWILIO_API_SECRET", "key-secret"));
    let err = settings(&pairs, &[]).unwrap_err();
    assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
    assert!(err.to_string().contains("signs webhooks"), "{err}");

    pairs.push(("TWILIO_AUTH_TOKEN", "tok"));
    let s = settings(&pairs, &[]).unwrap();
    assert!(matches!(s.twilio.rest_auth, RestAuth::ApiKey { .. }));
}

#[test]
fn flags_override_the_environment_which_overrides_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[server]\nport = 4000\nhost = \"0.0.0.0\"\n[database]\nurl = \"sqlite://file.db\"\n[twilio]\napi_base = \"http://127.0.0.1:9\""
    )
    .unwrap();
    let mut pairs = complete_env();
    pairs.push(("PORT", "5000"));
    let layers = Layers::load(
        Some(file.path()),
        env(&pairs),
        &[(setting::DATABASE_URL, "sqlite://flag.db".to_owned())],
    )
    .unwrap();
    let s = Settings::from_layers(&layers).unwrap();
    assert_eq!(s.port, 5000, "env beats file");
    assert_eq!(s.host, "0.0.0.0", "file beats default");
    assert_eq!(s.database_url, "sqlite://flag.db", "flag beats file");
    assert_eq!(
        s.twilio.api_base.map(|u| u.to_string()),
        Some("http://127.0.0.1:9/".to_owned())
    );
}

#[test]
fn an_unknown_key_in_the_file_is_refused_by_name() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[server]\nprot = 4000").unwrap();
    let err = Layers::load(Some(file.path()), env(&[]), &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "server.prot"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_toml_is_refused() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "this is = = not toml").unwrap();
    assert!(matches!(
        Layers::load(Some(file.path()), env(&[]), &[]),
        Err(ConfigError::File { .. })
    ));
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let mut pairs = complete_env();
    pairs.push(("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"));
    pairs.push(("TWILIO_API_SECRET", "key-secret-456"));
    let s = settings(&pairs, &[]).unwrap();
    let printed = format!("{s:?}");
    assert!(!printed.contains("tok-secret-123"), "{printed}");
    assert!(!printed.contains("key-secret-456"), "{printed}");
}

#[test]
fn the_layers_say_what_is_set_and_where_but_never_a_value() {
    let mut pairs = complete_env();
    pairs.push(("TWILIO_API_SECRET", "key-secret-456"));
    let layers = Layers::load(None, env(&pairs), &[(setting::PORT, "4000".into())]).unwrap();
    let printed = format!("{layers:?}");
    assert!(!printed.contains("tok-secret-123"), "{printed}");
    assert!(!printed.contains("key-secret-456"), "{printed}");
    assert!(!printed.contains(AC), "{printed}");
    assert!(printed.contains("\"TWILIO_API_SECRET\": Env"), "{printed}");
    assert!(printed.contains("\"PORT\": Flag"), "{printed}");
}

#[test]
fn public_base_url_auto_means_the_listening_address() {
    let mut pairs = complete_env();
    pairs[4] = ("PUBLIC_BASE_URL", "auto");
    assert_eq!(
        settings(&pairs, &[]).unwrap().public_base_url,
        PublicBaseUrl::FromListener
    );
}

fn provision(pairs: &[(&str, &str)]) -> Result<ProvisionSettings, ConfigError> {
    ProvisionSettings::from_layers(&Layers::load(None, env(pairs), &[])?)
}

#[test]
fn provisioning_the_chat_backend_needs_the_studio_flow_and_chat_service() {
    let account = [
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("FLEX_BACKEND", "chat"),
    ];
    let err = provision(&[&account[..], &[("FLEX_CHAT_SERVICE", IS)]].concat()).unwrap_err();
    assert!(err.to_string().contains("STUDIO_FLOW_SID"), "{err}");
    let err = provision(&[&account[..], &[("STUDIO_FLOW_SID", FW)]].concat()).unwrap_err();
    assert!(err.to_string().contains("FLEX_CHAT_SERVICE"), "{err}");

    let p = provision(
        &[
            &account[..],
            &[("FLEX_CHAT_SERVICE", IS), ("STUDIO_FLOW_SID", FW)],
        ]
        .concat(),
    )
    .unwrap();
    let ProvisionTarget::Chat { flow_name, .. } = p.target else {
        panic!("chat provisioning");
    };
    assert_eq!(flow_name, DEFAULT_FLOW_NAME);
}

#[test]
fn provisioning_the_conversations_backend_needs_only_the_account_and_takes_given_sids() {
    let p = provision(&[("TWILIO_ACCOUNT_SID", AC), ("TWILIO_AUTH_TOKEN", "t")]).unwrap();
    let ProvisionTarget::Conversations {
        chat_service_sid,
        workspace,
        workflow,
        task_channel,
        routing,
        studio_flow_sid,
    } = p.target
    else {
        panic!("conversations provisioning by default");
    };
    assert_eq!((chat_service_sid, workspace, workflow), (None, None, None));
    assert_eq!(task_channel, TaskChannelName::chat());
    assert_eq!(
        (routing, studio_flow_sid),
        (RoutingKind::Interactions, None)
    );

    let p = provision(&[
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("FLEX_CHAT_SERVICE", IS),
        ("TASKROUTER_WORKSPACE_SID", WS),
    ])
    .unwrap();
    let ProvisionTarget::Conversations {
        chat_service_sid,
        workspace,
        ..
    } = p.target
    else {
        panic!("conversations provisioning");
    };
    assert_eq!(chat_service_sid.map(|s| s.to_string()), Some(IS.to_owned()));
    assert_eq!(workspace.map(|s| s.to_string()), Some(WS.to_owned()));

    let p = provision(&[
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("FLEX_ROUTING", "studio"),
    ])
    .unwrap();
    let ProvisionTarget::Conversations {
        routing,
        studio_flow_sid,
        ..
    } = p.target
    else {
        panic!("conversations provisioning");
    };
    assert_eq!(
        (routing, studio_flow_sid),
        (RoutingKind::Studio, None),
        "the flow is found by name"
    );
}

#[test]
fn the_example_config_file_uses_only_known_keys() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flexbridge.example.toml");
    let layers = Layers::load(Some(&path), env(&[("TWILIO_AUTH_TOKEN", "t")]), &[]).unwrap();
    let settings = Settings::from_layers(&layers);
    // The placeholders are not real SIDs: the first one is refused by name.
    let err = settings.unwrap_err();
    assert!(err.to_string().contains("TWILIO_ACCOUNT_SID"), "{err}");
    assert!(err.to_string().contains("flexbridge.example.toml"), "{err}");
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    let pairs = plus(complete_env(), &[("PORT", ""), ("FLEX_BACKEND", "")]);
    let s = settings(&pairs, &[]).unwrap();
    assert_eq!(s.port, 3000);
    assert_eq!(s.flex.backend, BackendKind::Conversations);
}

#[test]
fn a_number_in_the_file_may_be_written_as_text_and_a_malformed_one_names_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[server]\nport = \"4000\"\n[outbox]\nconcurrency = 8").unwrap();
    let layers = Layers::load(Some(file.path()), env(&complete_env()), &[]).unwrap();
    let s = Settings::from_layers(&layers).unwrap();
    assert_eq!((s.port, s.outbox.concurrency), (4000, 8));

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[outbox]\nconcurrency = 0").unwrap();
    let layers = Layers::load(Some(file.path()), env(&complete_env()), &[]).unwrap();
    let err = Settings::from_layers(&layers).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Malformed { setting, origin: Source::File(path), .. }
            if setting.env == "FLEXBRIDGE_OUTBOX_CONCURRENCY" && path == file.path()),
        "{err}"
    );
    assert!(err.to_string().contains("positive"), "{err}");
}

fn dev(
    file: Option<&std::path::Path>,
    pairs: &[(&str, &str)],
    flags: &[(Setting, String)],
) -> Result<DevSettings, ConfigError> {
    DevSettings::from_layers(&Layers::load(file, env(pairs), flags)?)
}

#[test]
fn dev_settings_have_defaults_and_are_layered_like_serve_under_their_own_names() {
    // What serve reads does not move dev.
    let s = dev(
        None,
        &[("PORT", "5000"), ("DATABASE_URL", "postgres://x")],
        &[],
    )
    .unwrap();
    assert_eq!(
        s,
        DevSettings {
            host: "127.0.0.1".into(),
            port: 3000,
            emulator_port: 3001,
            database_url: "sqlite://flexbridge-dev.db".into(),
            seed: None,
            agents: 2,
            flex: DevFlex::default(),
            allowed_origins: crate::config::AllowedOrigins::default(),
            widget: crate::config::WidgetSettings::default(),
        }
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[dev]\nport = 4000\nseed = 9\nbackend = \"chat\"").unwrap();
    let s = dev(
        Some(file.path()),
        &[
            ("FLEXBRIDGE_DEV_PORT", "5000"),
            ("FLEXBRIDGE_DEV_AGENTS", "3"),
        ],
        &[(setting::DEV_ROUTING, "studio".to_owned())],
    )
    .unwrap();
    assert_eq!(s.port, 5000, "env beats file");
    assert_eq!(s.seed, Some(9), "file beats default");
    assert_eq!(s.agents, 3);
    assert_eq!(
        s.flex,
        DevFlex {
            backend: BackendKind::Chat,
            routing: RoutingKind::Studio,
        }
    );
}

#[test]
fn malformed_dev_settings_are_named_with_where_they_came_from() {
    for (setting, value) in [
        (setting::DEV_BACKEND, "programmable-chat"),
        (setting::DEV_ROUTING, "taskrouter"),
        (setting::DEV_PORT, "eighty"),
        (setting::DEV_DATABASE_URL, "postgres://x"),
    ] {
        let err = dev(None, &[], &[(setting, value.to_owned())]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Malformed { setting: s, origin: Source::Flag, .. } if *s == setting),
            "{}: {err}",
            setting.env
        );
        assert!(err.to_string().contains("the command line"), "{err}");
    }
}

mod table;
