//! Layering, and the errors a missing or malformed setting produces.

use std::collections::HashMap;
use std::io::Write as _;

use secrecy::ExposeSecret as _;

use super::*;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const FO: &str = "FO0123456789abcdef0123456789abcdef";
const IS: &str = "IS0123456789abcdef0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn complete_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", "tok-secret-123"),
        ("FLEX_FLOW_SID", FO),
        ("FLEX_CHAT_SERVICE", IS),
        ("PUBLIC_BASE_URL", "https://chat.example.com"),
    ]
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
    assert_eq!(s.flex_flow_sid.as_str(), FO);
    assert_eq!(
        s.public_base_url,
        PublicBaseUrl::Fixed(Url::parse("https://chat.example.com").unwrap())
    );
    assert!(matches!(s.twilio.rest_auth, RestAuth::AuthToken(_)));
    assert_eq!(s.auth_token.expose_secret(), "tok-secret-123");
}

#[test]
fn each_missing_required_setting_is_named_in_the_error() {
    for missing in [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "FLEX_FLOW_SID",
        "FLEX_CHAT_SERVICE",
        "PUBLIC_BASE_URL",
    ] {
        let pairs: Vec<_> = complete_env()
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let err = settings(&pairs, &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Missing { setting, .. } if setting.env == missing),
            "{missing}: {err}"
        );
        assert!(err.to_string().contains(missing), "{err}");
    }
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
fn public_base_url_auto_means_the_listening_address() {
    let mut pairs = complete_env();
    pairs[4] = ("PUBLIC_BASE_URL", "auto");
    assert_eq!(
        settings(&pairs, &[]).unwrap().public_base_url,
        PublicBaseUrl::FromListener
    );
}

#[test]
fn provisioning_needs_the_studio_flow_and_chat_service() {
    let layers = Layers::load(
        None,
        env(&[
            ("TWILIO_ACCOUNT_SID", AC),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("FLEX_CHAT_SERVICE", IS),
        ]),
        &[],
    )
    .unwrap();
    let err = ProvisionSettings::from_layers(&layers).unwrap_err();
    assert!(err.to_string().contains("STUDIO_FLOW_SID"), "{err}");
    let layers = Layers::load(
        None,
        env(&[
            ("TWILIO_ACCOUNT_SID", AC),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("FLEX_CHAT_SERVICE", IS),
            ("STUDIO_FLOW_SID", "FW0123456789abcdef0123456789abcdef"),
        ]),
        &[],
    )
    .unwrap();
    let p = ProvisionSettings::from_layers(&layers).unwrap();
    assert_eq!(p.flow_name, DEFAULT_FLOW_NAME);
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
