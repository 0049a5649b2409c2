//! The `signet-witness` program: `init` creates the witness key and prints
//! its vkey, `vkey` prints it again, `serve` runs the witness.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signet_witness::config::{Config, LogFormat};
use signet_witness::witness::Witness;
use signet_witness::{key, server};

/// A C2SP tlog-witness: cosigns a log's checkpoints only when they are
/// consistent with the last one it cosigned.
#[derive(Parser)]
#[command(name = "signet-witness", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the witness key the configuration names ([key] file: a new
    /// PKCS#8 file, mode 0600, never over an existing one; [key]
    /// pkcs11_module: a non-extractable Ed25519 key generated in the token)
    /// and prints the witness's vkey on stdout, for the CA's and the
    /// verifiers' [witnesses] tables. The key itself is never printed. The
    /// token PIN comes from key.pin_file or key.pin_env, never from the
    /// command line.
    Init {
        /// The witness's configuration file (TOML; see docs/witness.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Prints the vkey of the existing witness key.
    Vkey {
        /// The witness's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Serves POST /add-checkpoint (tlog-witness v1) and GET /healthz on
    /// `listen` until SIGTERM. Exit status: 2 bad configuration, 3 key or
    /// token unusable, 4 stored state unreadable or not verifying, 1 other.
    Serve {
        /// The witness's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

fn run(cli: Cli) -> signet_witness::Result<()> {
    match cli.command {
        Command::Init { config } => {
            let config = Config::load(&config)?;
            let signer = key::create(&config)?;
            println!("{}", signer.verifier_key());
            Ok(())
        }
        Command::Vkey { config } => {
            let config = Config::load(&config)?;
            let signer = key::open(&config)?;
            println!("{}", signer.verifier_key());
            Ok(())
        }
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            init_logging(config.log_format);
            let signer = key::open(&config)?;
            let witness = Witness::new(&config, signer)?;
            server::run(&config, witness)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet-witness: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
