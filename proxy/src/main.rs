//! `signet-proxy`: Signet's access proxy.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Signet's access proxy: one TLS port, identity from the YubiKey, RBAC per connection.
#[derive(Parser)]
#[command(name = "signet-proxy", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join the CA once: make this proxy's key, trade the one-time token
    /// (join.token_file or SIGNET_PROXY_JOIN_TOKEN, from `signet-ca proxies
    /// invite`) for a certificate, write both where [identity] says.
    Join {
        /// The proxy's configuration (deploy/proxy.example.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Renew this proxy's certificate before it expires: a new key, and a
    /// certificate for it from the CA's proxy listener, authenticated by
    /// the current pair; both files replaced atomically.
    Renew {
        /// The proxy's configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, what) = match &cli.command {
        Command::Join { config } => (config, "joined"),
        Command::Renew { config } => (config, "renewed"),
    };
    let result = signet_proxy::config::Config::load(config)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            match cli.command {
                Command::Join { .. } => signet_proxy::join::join(&c),
                Command::Renew { .. } => signet_proxy::join::renew(&c),
            }
            .map_err(|e| e.to_string())
        });
    match result {
        Ok(done) => {
            eprintln!(
                "signet-proxy: {what} as {} (certificate until unix {}, log entry {})",
                done.name, done.not_after, done.log_index
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("signet-proxy: {e}");
            ExitCode::from(2)
        }
    }
}
