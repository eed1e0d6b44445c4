//! The `flexbridge` binary: parses the command line and hands over to
//! [`flexbridge::cli`]. Nothing else lives here.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    flexbridge::cli::main(flexbridge::cli::Cli::parse())
}
