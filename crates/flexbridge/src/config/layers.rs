//! The layers, merged by `figment`: a command's defaults (its
//! [`super::raw`] struct's `Default`) → the TOML file → the environment →
//! the flags; later layers win. Each value keeps where it came from, so an
//! error can say it.
//!
//! The file is figment's TOML provider; its keys are checked against the
//! settings table first. The environment and the flags are one small
//! provider here rather than figment's `Env`: it reads exactly the
//! table's variables (case-sensitively, an empty one counting as unset),
//! keeps each value as the text it was (figment's `Env` would read
//! `0123…` as a number and strip quotes, which could change a secret),
//! and takes the environment as a function, so tests need not touch the
//! process's.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::ConfigError;
use super::raw::CommandSettings;
use super::setting::{self, Setting};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Env,
    Flag,
    /// The command's default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "the config file {}", path.display()),
            Self::Env => f.write_str(ENVIRONMENT),
            Self::Flag => f.write_str(COMMAND_LINE),
            Self::Default => f.write_str("the defaults"),
        }
    }
}

/// The metadata names of the two layers below.
const ENVIRONMENT: &str = "the environment";
const COMMAND_LINE: &str = "the command line";

/// Values by setting, as one figment layer.
struct Values {
    name: &'static str,
    values: Vec<(Setting, String)>,
}

impl Provider for Values {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let mut dict = Dict::new();
        for (setting, value) in &self.values {
            insert(
                &mut dict,
                setting.file,
                Value::from(value.trim().to_owned()),
            );
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Puts `value` at the dotted `key`.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((section, rest)) => {
            let section = dict
                .entry(section.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = section {
                insert(inner, rest, value);
            }
        }
    }
}

/// The file, environment and flag layers (a command's defaults go under
/// them when its settings are taken out).
#[derive(Clone)]
pub struct Layers {
    figment: Figment,
}

/// Names what is set and where, never a value (secrets are among them).
impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = setting::ALL
            .iter()
            .filter(|s| self.figment.contains(s.file))
            .map(|s| (s.env, self.origin(*s)));
        f.debug_map().entries(set).finish()
    }
}

impl Layers {
    /// Reads the file (if any), the environment (through `env`) and the
    /// flags, in that order of precedence (flags win).
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(Setting, String)],
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
            let data = figment.data().map_err(|e| ConfigError::File {
                path: path.to_owned(),
                reason: e.kind.to_string(),
            })?;
            for dict in data.values() {
                check_keys(path, "", dict)?;
            }
        }
        let env = setting::ALL
            .iter()
            .filter_map(|s| Some((*s, env(s.env).filter(|v| !v.is_empty())?)))
            .collect();
        let figment = figment
            .merge(Values {
                name: ENVIRONMENT,
                values: env,
            })
            .merge(Values {
                name: COMMAND_LINE,
                values: flags.to_vec(),
            });
        Ok(Self { figment })
    }

    /// A command's settings: its defaults under these layers.
    pub fn extract<C: CommandSettings>(&self) -> Result<C, ConfigError> {
        Figment::from(Serialized::defaults(C::default()))
            .merge(self.figment.clone())
            .extract_lossy()
            .map_err(from_figment)
    }

    /// Where `setting`'s value came from.
    pub fn origin(&self, setting: Setting) -> Source {
        self.figment
            .find_metadata(setting.file)
            .map_or(Source::Default, source_of)
    }

    /// `raw`, the value of `setting`, parsed by `parse`; an error names the
    /// setting and where the value came from.
    pub fn parse<T, E: fmt::Display>(
        &self,
        setting: Setting,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        parse(raw.trim()).map_err(|e| self.malformed(setting, e))
    }

    /// [`Self::parse`] for a setting no layer (and no default) may set.
    pub fn optional<T, E: fmt::Display>(
        &self,
        setting: Setting,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ConfigError> {
        raw.map(|raw| self.parse(setting, raw, parse)).transpose()
    }

    /// [`Self::parse`] for a setting that must be present; `why` ends the
    /// message when it is not.
    pub fn require<T, E: fmt::Display>(
        &self,
        setting: Setting,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
        why: &str,
    ) -> Result<T, ConfigError> {
        self.optional(setting, raw, parse)?
            .ok_or_else(|| ConfigError::Missing {
                setting,
                why: why.to_owned(),
            })
    }

    /// `setting` is malformed: `reason`.
    pub fn malformed(&self, setting: Setting, reason: impl fmt::Display) -> ConfigError {
        ConfigError::Malformed {
            setting,
            origin: self.origin(setting),
            reason: reason.to_string(),
        }
    }
}

/// A value figment could not give as its type, named by its setting.
fn from_figment(error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let origin = error.metadata.as_ref().map_or(Source::Default, source_of);
    match setting::ALL.iter().find(|s| s.file == key) {
        Some(setting) => ConfigError::Malformed {
            setting: *setting,
            origin,
            reason: error.kind.to_string(),
        },
        None => ConfigError::Unreadable {
            origin,
            reason: error.to_string(),
        },
    }
}

fn source_of(metadata: &Metadata) -> Source {
    if let Some(path) = metadata.source.as_ref().and_then(|s| s.file_path()) {
        return Source::File(path.to_owned());
    }
    match metadata.name.as_ref() {
        ENVIRONMENT => Source::Env,
        COMMAND_LINE => Source::Flag,
        _ => Source::Default,
    }
}

/// Every key of the file names a setting (a typo would otherwise be
/// silently ignored).
fn check_keys(path: &Path, prefix: &str, dict: &Dict) -> Result<(), ConfigError> {
    for (key, value) in dict {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Dict(_, inner) if !setting::ALL.iter().any(|s| s.file == key) => {
                check_keys(path, &key, inner)?;
            }
            _ if setting::ALL.iter().any(|s| s.file == key) => {}
            _ => {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key,
                });
            }
        }
    }
    Ok(())
}

/// The default `C` gives `setting`, as text (`--help` and the docs show
/// it); `None` when it has none.
pub fn default_of<C: CommandSettings>(setting: Setting) -> Option<String> {
    let value = Figment::from(Serialized::defaults(C::default()))
        .find_value(setting.file)
        .ok()?;
    match value {
        Value::String(_, s) => Some(s),
        Value::Num(..) => value
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| value.to_f64().map(|n| n.to_string())),
        _ => None,
    }
}
