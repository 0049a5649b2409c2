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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Join { config } => {
            let result = signet_proxy::config::Config::load(&config)
                .map_err(|e| e.to_string())
                .and_then(|c| signet_proxy::join::join(&c).map_err(|e| e.to_string()));
            match result {
                Ok(joined) => {
                    eprintln!(
                        "signet-proxy: joined as {} (certificate until unix {}, log entry {})",
                        joined.name, joined.not_after, joined.log_index
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("signet-proxy: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
