//! The command lines of `signet-node join` and `signet-node renew`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};
use signet_node::join::{self, JoinError, JoinOptions, Outcome, RenewConfig, DEFAULT_HOST_KEYS};

#[derive(Parser)]
#[command(
    name = "signet-node join",
    about = "Fetch this node's host certificates from the CA with a one-time join token (signet-ca nodes invite), and write them, the CA's user key and an sshd_config drop-in."
)]
struct JoinArgs {
    /// The CA's URL, e.g. https://ca.example:8443.
    #[arg(long, value_name = "URL")]
    ca: String,
    /// The CA's X.509 root (PEM): the only trust anchor for its TLS.
    #[arg(long, value_name = "PEM")]
    ca_root: PathBuf,
    /// The file holding the join token (else the environment variable
    /// SIGNET_NODE_JOIN_TOKEN; never the command line).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// A host private key to certify (its .pub is sent); repeat for
    /// several. Default: the /etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key that exist.
    #[arg(long = "host-key", value_name = "PATH")]
    host_keys: Vec<PathBuf>,
    /// Where the certificates go (default: beside each key, <key>-cert.pub).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// The sshd_config drop-in to write.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/ssh/sshd_config.d/signet.conf"
    )]
    sshd_config_snippet: PathBuf,
    /// The TrustedUserCAKeys file (default: signet_user_ca.pub in --out-dir, else /etc/ssh).
    #[arg(long, value_name = "PATH")]
    user_ca_file: Option<PathBuf>,
    /// The renewal configuration to write (for `signet-node renew --config`).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/signet/node-renew.toml"
    )]
    renew_config: PathBuf,
    /// The node check's configuration the snippet names (docs/node.md).
    #[arg(long, value_name = "PATH", default_value = "/etc/signet/node.toml")]
    node_config: PathBuf,
    /// The signet-node binary sshd runs as AuthorizedPrincipalsCommand (default: this one).
    #[arg(long, value_name = "PATH")]
    principals_command: Option<PathBuf>,
    /// The user sshd runs it as.
    #[arg(long, value_name = "USER", default_value = "signet-node")]
    principals_user: String,
    #[command(flatten)]
    output: Output,
}

#[derive(Parser)]
#[command(
    name = "signet-node renew",
    about = "Renew this node's host certificates when a third of their validity is left (for a timer: deploy/signet-node-renew.timer). Each renewal is signed by the host key it certifies."
)]
struct RenewArgs {
    /// The renewal configuration `signet-node join` wrote.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/signet/node-renew.toml"
    )]
    config: PathBuf,
    /// Renew now, however long the certificates still have.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
struct Output {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn print(outcome: &Outcome, json: bool, verb: &str) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(outcome) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("signet-node: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    if outcome.certificates.is_empty() {
        println!(
            "Node {}: no certificate is due for renewal (renewed when a third of its validity is left).",
            outcome.node
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "Node {} {verb}: principals {}.",
        outcome.node,
        outcome.principals.join(", ")
    );
    for cert in &outcome.certificates {
        let until = humantime_like(cert.not_after);
        println!(
            "  wrote {} (serial {}, log entry {}, valid until {until})",
            cert.path.display(),
            cert.serial,
            cert.log_index
        );
    }
    println!(
        "  wrote {} (TrustedUserCAKeys)",
        outcome.user_ca_file.display()
    );
    if let Some(snippet) = &outcome.sshd_config_snippet {
        println!(
            "  wrote {} (sshd_config drop-in; reload sshd)",
            snippet.display()
        );
    }
    if let Some(renew) = &outcome.renew_config {
        println!("  wrote {} (signet-node renew --config)", renew.display());
    }
    println!("Clients trust this node's certificate with this line in known_hosts:");
    println!("{}", outcome.known_hosts_line);
    ExitCode::SUCCESS
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn humantime_like(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn fail(e: &JoinError) -> ExitCode {
    eprintln!("signet-node: {e}");
    match e {
        JoinError::Usage(_) | JoinError::NoToken => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

/// `signet-node join …` (`args` after the program name, starting with `join`).
pub(crate) fn join(args: &[String]) -> ExitCode {
    let argv = std::iter::once("signet-node join").chain(args.iter().skip(1).map(String::as_str));
    let args = match JoinArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let host_keys = if args.host_keys.is_empty() {
        DEFAULT_HOST_KEYS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect()
    } else {
        args.host_keys
    };
    let user_ca_file = args.user_ca_file.unwrap_or_else(|| {
        args.out_dir
            .as_deref()
            .unwrap_or(std::path::Path::new("/etc/ssh"))
            .join("signet_user_ca.pub")
    });
    let principals_command = match args.principals_command {
        Some(path) => path,
        None => match std::env::current_exe() {
            Ok(path) => path,
            Err(e) => return fail(&JoinError::Usage(format!("cannot find this binary: {e}"))),
        },
    };
    let options = JoinOptions {
        ca: args.ca,
        ca_root: args.ca_root,
        token_file: args.token_file,
        host_keys,
        out_dir: args.out_dir,
        sshd_config_snippet: args.sshd_config_snippet,
        user_ca_file,
        renew_config: args.renew_config,
        node_config: args.node_config,
        principals_command,
        principals_user: args.principals_user,
    };
    match join::join(&options) {
        Ok(outcome) => print(&outcome, args.output.json, "joined"),
        Err(e) => fail(&e),
    }
}

/// `signet-node renew …`.
pub(crate) fn renew(args: &[String]) -> ExitCode {
    let argv = std::iter::once("signet-node renew").chain(args.iter().skip(1).map(String::as_str));
    let args = match RenewArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let result = RenewConfig::load(&args.config).and_then(|c| join::renew(&c, args.force));
    match result {
        Ok(outcome) => print(&outcome, args.output.json, "renewed"),
        Err(e) => fail(&e),
    }
}
