//! `signet-node principals --config FILE USER TYPE CERT_BASE64`
//!
//! sshd_config:
//!
//! ```text
//! AuthorizedPrincipalsCommand /usr/local/bin/signet-node principals --config /etc/signet/node.toml %u %t %k
//! AuthorizedPrincipalsCommandUser signet-node
//! ```
//!
//! Prints the certificate's principals, one per line, and exits 0 only
//! when its proof of logging verifies. Otherwise prints nothing, writes
//! one line on stderr (sshd's log), and exits 1 (refused) or 2 (usage or
//! configuration).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use signet_node::{principals, NodeConfig, NodeError};

mod cli_join;

const USAGE: &str = "usage: signet-node principals --config FILE USER TYPE CERT_BASE64
       signet-node join --ca URL --ca-root PEM --token-file FILE [--host-key PATH]... [--out-dir DIR] [--sshd-config-snippet PATH] [--json]
       signet-node renew [--config FILE] [--force] [--json]

sshd's AuthorizedPrincipalsCommand (see docs/node.md):
  AuthorizedPrincipalsCommand /usr/local/bin/signet-node principals --config /etc/signet/node.toml %u %t %k
  AuthorizedPrincipalsCommandUser signet-node

Prints the certificate's principals only if it proves it is in Signet's log.

join fetches this node's host certificates with a one-time token
(signet-ca nodes invite) and writes them, the CA's user key and an
sshd_config drop-in; renew renews them (a timer runs it). See
signet-node join --help, signet-node renew --help and docs/node.md.";

struct Args {
    config: PathBuf,
    user: String,
    key_type: String,
    cert: String,
}

fn parse_args(args: &[String]) -> Result<Args, NodeError> {
    let usage = |why: &str| NodeError::Usage(why.to_owned());
    match args {
        [cmd, flag, config, user, key_type, cert] if cmd == "principals" && flag == "--config" => {
            Ok(Args {
                config: PathBuf::from(config),
                user: user.clone(),
                key_type: key_type.clone(),
                cert: cert.clone(),
            })
        }
        [cmd, ..] if cmd != "principals" => Err(usage(&format!("unknown command {cmd:?}"))),
        [] => Err(usage("no command")),
        _ => Err(usage(
            "principals takes --config FILE and three arguments: %u %t %k",
        )),
    }
}

fn run(args: &[String]) -> Result<Vec<String>, NodeError> {
    let args = parse_args(args)?;
    let config = NodeConfig::load(&args.config)?;
    principals(&config, &args.user, &args.key_type, &args.cert)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("join") => return cli_join::join(&args),
        Some("renew") => return cli_join::renew(&args),
        _ => {}
    }
    if matches!(
        args.first().map(String::as_str),
        Some("-h" | "--help" | "help")
    ) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(names) => {
            let mut out = String::new();
            for name in names {
                out.push_str(&name);
                out.push('\n');
            }
            // If sshd cannot read the answer, nobody logs in: still closed.
            if std::io::stdout().write_all(out.as_bytes()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("signet-node: {e}");
            match e {
                NodeError::Usage(_) | NodeError::Config { .. } | NodeError::UnsafeConfig { .. } => {
                    ExitCode::from(2)
                }
                _ => ExitCode::from(1),
            }
        }
    }
}
