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
    /// Serve tunnels on `listen`: TLS with ALPN signet-ssh/1, each decided
    /// against the CA's live feed and closed when a lock or the
    /// certificate's end says so. Logs JSON lines on stderr.
    Serve {
        /// The proxy's configuration.
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
    match Cli::parse().command {
        Command::Join { config } => once(&config, "joined", signet_proxy::join::join),
        Command::Renew { config } => once(&config, "renewed", signet_proxy::join::renew),
        Command::Serve { config } => serve(&config),
    }
}

/// `join` and `renew`: one exchange with the CA, its outcome on stderr.
fn once(
    path: &std::path::Path,
    what: &str,
    run: fn(
        &signet_proxy::config::Config,
    ) -> Result<signet_api::proxy::JoinResponse, signet_proxy::join::JoinError>,
) -> ExitCode {
    let result = signet_proxy::config::Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|c| run(&c).map_err(|e| e.to_string()));
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

/// `serve`: JSON logs on stderr (RUST_LOG filters, info by default), a
/// multi-threaded runtime, and the proxy until the process is stopped.
fn serve(path: &std::path::Path) -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match signet_proxy::config::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("signet-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("signet-proxy: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(signet_proxy::serve::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet-proxy: {e}");
            ExitCode::from(2)
        }
    }
}
