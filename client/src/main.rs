//! `signet`: the Signet client.
//!
//! Subcommand groups live in `cli/`, one module each; `audit` is the
//! auditor's log verifier. Errors reach `main` as `anyhow::Error` and leave as
//! the exit codes documented in `signet audit --help`.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if std::env::args_os().any(|a| a == "--json") {
        // Programs read this output: no colour anywhere, errors included.
        signet::ui::set_plain();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(e) => {
            let painter = signet::ui::Painter::stderr();
            eprintln!("{} {e:#}", painter.error("signet: error:"));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
