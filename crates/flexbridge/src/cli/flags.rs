//! A command's flags, made from the settings table: `--config` and one
//! flag per setting the command reads (secrets have none), its help the
//! table's with the command's default. What was passed becomes the flag
//! layer of [`Layers`].

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, FromArgMatches};

use crate::config::raw::CommandSettings;
use crate::config::{Layers, Setting, default_of};

/// The flags of the command whose settings are `C`.
pub struct SettingFlags<C> {
    /// A TOML config file (else `FLEXBRIDGE_CONFIG`).
    pub config: Option<PathBuf>,
    /// The settings passed as flags.
    pub values: Vec<(Setting, String)>,
    command: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for SettingFlags<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingFlags")
            .field("config", &self.config)
            .field("values", &self.values)
            .finish()
    }
}

impl<C> Clone for SettingFlags<C> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            values: self.values.clone(),
            command: PhantomData,
        }
    }
}

impl<C> Default for SettingFlags<C> {
    fn default() -> Self {
        Self {
            config: None,
            values: Vec::new(),
            command: PhantomData,
        }
    }
}

const CONFIG: &str = "config";

impl<C: CommandSettings> SettingFlags<C> {
    /// The layers these flags, the environment and the file give.
    pub fn layers(&self) -> anyhow::Result<Layers> {
        let file = self.config.clone().or_else(|| {
            std::env::var_os("FLEXBRIDGE_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Ok(Layers::load(
            file.as_deref(),
            |name| std::env::var(name).ok(),
            &self.values,
        )?)
    }

    fn flagged() -> impl Iterator<Item = (Setting, &'static str)> {
        C::SETTINGS
            .iter()
            .filter_map(|s| Some((*s, s.flag?.trim_start_matches("--"))))
    }
}

impl<C: CommandSettings> Args for SettingFlags<C> {
    fn augment_args(command: clap::Command) -> clap::Command {
        let config = Arg::new(CONFIG)
            .long(CONFIG)
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help("A TOML config file (also FLEXBRIDGE_CONFIG).");
        Self::flagged().fold(command.arg(config), |command, (setting, long)| {
            let default = default_of::<C>(setting)
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            command.arg(
                Arg::new(setting.env)
                    .long(long)
                    .value_name(setting.value_name)
                    .help(format!("{}: {}{default}", setting.env, setting.help)),
            )
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl<C: CommandSettings> FromArgMatches for SettingFlags<C> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            config: matches.get_one::<PathBuf>(CONFIG).cloned(),
            values: Self::flagged()
                .filter_map(|(setting, _)| {
                    Some((setting, matches.get_one::<String>(setting.env)?.clone()))
                })
                .collect(),
            command: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};
    use crate::config::setting;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flexbridge").chain(args.iter().copied()))
    }

    #[test]
    fn each_flag_passed_becomes_its_setting_in_the_flag_layer() {
        let Command::Serve(args) = parse(&[
            "serve",
            "--port",
            "4000",
            "--backend",
            "chat",
            "--config",
            "flexbridge.toml",
        ])
        .unwrap()
        .command
        else {
            panic!("serve");
        };
        assert_eq!(args.config.as_deref(), Some("flexbridge.toml".as_ref()));
        assert_eq!(
            args.values,
            [
                (setting::BACKEND, "chat".to_owned()),
                (setting::PORT, "4000".to_owned())
            ]
        );

        let Command::Provision(args) = parse(&["provision", "--flow-name", "web"]).unwrap().command
        else {
            panic!("provision");
        };
        assert_eq!(args.values, [(setting::FLOW_NAME, "web".to_owned())]);
    }

    #[test]
    fn secrets_have_no_flag_and_each_command_only_its_own() {
        for args in [
            &["serve", "--twilio-auth-token", "t"][..],
            &["serve", "--twilio-api-secret", "s"],
            &["provision", "--port", "1"],
            &["serve", "--flow-name", "x"],
        ] {
            assert!(parse(args).is_err(), "{args:?} parsed");
        }
    }

    #[cfg(feature = "dev")]
    #[test]
    fn dev_flags_are_dev_settings() {
        let Command::Dev(args) = parse(&["dev", "--port", "0", "--seed", "3"])
            .unwrap()
            .command
        else {
            panic!("dev");
        };
        assert_eq!(
            args.values,
            [
                (setting::DEV_PORT, "0".to_owned()),
                (setting::DEV_SEED, "3".to_owned())
            ]
        );
    }
}
