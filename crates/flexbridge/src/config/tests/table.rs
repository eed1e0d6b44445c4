//! The settings table against everything else that names settings: each
//! command's serde struct, the docs' table and the example file.

use std::collections::BTreeSet;

use figment::value::Value;

use super::super::default_of;
use super::super::raw::{self, CommandSettings};
use super::super::setting::{self, Setting};

/// The dotted keys of `value`'s leaves.
fn leaves(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Dict(_, dict) => {
            for (key, value) in dict {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(&key, value, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

fn assert_keys_are_its_settings<C: CommandSettings>() {
    let mut keys = BTreeSet::new();
    leaves("", &Value::serialize(C::default()).unwrap(), &mut keys);
    let settings: BTreeSet<String> = C::SETTINGS.iter().map(|s| s.file.to_owned()).collect();
    assert_eq!(keys, settings, "{}", std::any::type_name::<C>());
}

#[test]
fn each_command_struct_has_exactly_the_keys_of_the_settings_it_reads() {
    assert_keys_are_its_settings::<raw::Serve>();
    assert_keys_are_its_settings::<raw::Provision>();
    assert_keys_are_its_settings::<raw::Dev>();
}

#[test]
fn every_setting_has_its_own_variable_and_key_and_only_the_secrets_lack_a_flag() {
    let envs: BTreeSet<_> = setting::ALL.iter().map(|s| s.env).collect();
    let files: BTreeSet<_> = setting::ALL.iter().map(|s| s.file).collect();
    assert_eq!(envs.len(), setting::ALL.len(), "a variable named twice");
    assert_eq!(files.len(), setting::ALL.len(), "a file key named twice");
    for command in [setting::SERVE, setting::PROVISION, setting::DEV] {
        let flags: Vec<_> = command.iter().filter_map(|s| s.flag).collect();
        let unique: BTreeSet<_> = flags.iter().collect();
        assert_eq!(unique.len(), flags.len(), "a flag named twice: {flags:?}");
    }
    let secrets: Vec<_> = setting::ALL
        .iter()
        .filter(|s| s.is_secret())
        .map(|s| s.env)
        .collect();
    assert_eq!(secrets, ["TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET"]);
}

/// The default of `setting` in the first command that reads it.
fn default_in_its_command(setting: Setting) -> Option<String> {
    if setting::SERVE.contains(&setting) {
        default_of::<raw::Serve>(setting)
    } else if setting::PROVISION.contains(&setting) {
        default_of::<raw::Provision>(setting)
    } else {
        default_of::<raw::Dev>(setting)
    }
}

#[test]
fn serve_and_provision_default_what_they_share_alike() {
    for setting in setting::SERVE
        .iter()
        .filter(|s| setting::PROVISION.contains(s))
    {
        assert_eq!(
            default_of::<raw::Serve>(*setting),
            default_of::<raw::Provision>(*setting),
            "{}",
            setting.env
        );
    }
}

/// The rows `| `ENV` | `file` | `--flag` | default |` of the settings
/// tables in docs/architecture.md §4.2.
fn docs_rows() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/architecture.md");
    let docs = std::fs::read_to_string(path).unwrap();
    let section = docs
        .split("### 4.2 Settings")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("docs/architecture.md has §4.2");
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn the_docs_table_lists_every_setting_with_its_names_and_default() {
    let rows = docs_rows();
    let tick = |name: &str| format!("`{name}`");
    let listed: BTreeSet<_> = rows
        .iter()
        .map(|row| (row[0].clone(), row[1].clone(), row[2].clone()))
        .collect();
    let table: BTreeSet<_> = setting::ALL
        .iter()
        .map(|s| {
            let flag = s.flag.map_or("—".to_owned(), tick);
            (tick(s.env), tick(s.file), flag)
        })
        .collect();
    assert_eq!(listed, table);
    assert_eq!(rows.len(), setting::ALL.len(), "a setting listed twice");
    for setting in setting::ALL {
        let Some(default) = default_in_its_command(*setting) else {
            continue;
        };
        let row = rows.iter().find(|row| row[0] == tick(setting.env)).unwrap();
        assert!(
            row[3].contains(&tick(&default)),
            "{}: the docs say {:?}, the code defaults to {default:?}",
            setting.env,
            row[3]
        );
    }
}

#[test]
fn the_example_config_file_shows_every_setting_in_its_section() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/flexbridge.example.toml");
    let example = std::fs::read_to_string(path).unwrap();
    let mut shown = BTreeSet::new();
    let mut section = String::new();
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, _)) = line.split_once(" = ") {
            shown.insert(format!("{section}.{}", key.trim()));
        }
    }
    for setting in setting::ALL {
        assert!(
            shown.contains(setting.file),
            "flexbridge.example.toml does not show `{}`",
            setting.file
        );
    }
}
