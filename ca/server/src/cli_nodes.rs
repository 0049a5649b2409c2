//! The command line for the access proxy's world: `nodes apply|list`, and
//! `lock` / `unlock` of a user or a PIV device.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use signet_ca::admin::AdminRequest;
use signet_ca::config::Config;
use signet_ca::Error;

#[derive(Subcommand)]
pub(crate) enum NodesCommand {
    /// Show what the files change against the nodes in force, then apply
    /// it: one log entry per node changed, each durable before it takes
    /// effect. Files and directories (*.yaml, *.yml, `kind: node`); errors
    /// name the file, line and field.
    #[command(
        after_help = "Example:\n  signet-ca nodes apply --config /etc/signet/ca.toml --dry-run nodes/\n  signet-ca nodes apply --config /etc/signet/ca.toml nodes/"
    )]
    Apply {
        /// Only print the diff.
        #[arg(long)]
        dry_run: bool,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
        /// Files or directories.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List the nodes in force: name, address, labels.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time join token for a node in the inventory, for
    /// `signet-node join` on that node (a secret: only its hash is logged
    /// and stored). The token buys the node's host certificates once.
    #[command(
        after_help = "Example:\n  signet-ca nodes invite --config /etc/signet/ca.toml --out /root/web-1.token web-1\n  (copy the file to the node, then: signet-node join --ca https://ca.example:8443 --ca-root /etc/signet/ca-root.pem --token-file /root/web-1.token)"
    )]
    Invite {
        /// The node's name, as `nodes list` shows it.
        #[arg(value_name = "NAME")]
        name: String,
        /// How long the token is valid (at most 7d).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Write the token to this new file (mode 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ProxiesCommand {
    /// Print what the proxies' feed sends now (JSON): nodes, each user's
    /// access by role, the locks holding, the X.509 root.
    View,
    /// Print a one-time join token for a new access proxy on stdout (a
    /// secret; only its hash is logged, with subject proxy:<name>).
    Invite {
        /// The proxy's name (as its certificate will name it).
        #[arg(long)]
        name: String,
        /// How long the token is valid (at most 7d).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn proxies(config: &Config, command: ProxiesCommand) -> Result<(), Error> {
    match command {
        ProxiesCommand::View => crate::admin_request(config, AdminRequest::ProxyView, false),
        ProxiesCommand::Invite { name, ttl, json } => crate::admin_request(
            config,
            AdminRequest::InviteProxy {
                name,
                ttl_seconds: ttl.as_secs(),
            },
            json,
        ),
    }
}

/// Whom a lock is about: a user or a PIV device (exactly one).
#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// The user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The YubiKey's serial number (as `ykman list` and the log show it).
    #[arg(long, value_name = "SERIAL")]
    device: Option<u32>,
}

#[derive(Args)]
pub(crate) struct LockArgs {
    #[command(flatten)]
    target: Target,
    /// Why (logged, shown to the user).
    #[arg(long)]
    reason: String,
    /// For how long, e.g. 1h (default: until unlocked).
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
}

#[derive(Args)]
pub(crate) struct UnlockArgs {
    #[command(flatten)]
    target: Target,
    /// Why (logged).
    #[arg(long, default_value = "unlocked by an administrator")]
    reason: String,
}

pub(crate) fn nodes(config: &Config, command: NodesCommand) -> Result<(), Error> {
    match command {
        NodesCommand::Apply {
            dry_run,
            json,
            paths,
        } => {
            let inventory =
                signet_policy::Inventory::load(&paths).map_err(|e| Error::BadRequest {
                    field: "PATH",
                    reason: e.to_string(),
                })?;
            let changes = signet_policy::Inventory::new().diff(&inventory).changes;
            crate::admin_request(config, AdminRequest::ApplyNodes { changes, dry_run }, json)
        }
        NodesCommand::List { json } => crate::admin_request(config, AdminRequest::ListNodes, json),
        NodesCommand::Invite {
            name,
            ttl,
            out,
            json,
        } => {
            let request = AdminRequest::InviteNode {
                name,
                ttl_seconds: ttl.as_secs(),
            };
            match out {
                None => crate::admin_request(config, request, json),
                Some(path) => invite_to_file(config, request, &path, json),
            }
        }
    }
}

/// `nodes invite --out FILE`: the token goes into a new file, mode 0600,
/// and never to stdout; the rest of the answer is printed as usual.
fn invite_to_file(
    config: &Config,
    request: AdminRequest,
    path: &std::path::Path,
    json: bool,
) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file_err = |e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // Made before the invite, so a path that cannot be written costs no token.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(file_err)?;
    let (response, _) = match signet_ca::admin::run(config, request) {
        Ok(answer) => answer,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    };
    if response.exit != 0 {
        let _ = std::fs::remove_file(path);
        eprintln!("signet-ca: {}", response.text.trim_end());
        std::process::exit(i32::from(response.exit));
    }
    let mut value = response.json;
    let token = value
        .get("token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .unwrap_or_default();
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(file_err)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.remove("token");
        map.insert("token_file".into(), path.display().to_string().into());
    }
    if json {
        let text = serde_json::to_string_pretty(&value).map_err(|e| Error::Store(e.to_string()))?;
        println!("{text}");
    } else {
        println!("Wrote the join token to {} (mode 0600).", path.display());
    }
    if !response.note.is_empty() {
        eprintln!("{}", response.note);
    }
    Ok(())
}

pub(crate) fn lock(config: &Config, args: LockArgs) -> Result<(), Error> {
    let ttl_seconds = args.ttl.map(|t| t.as_secs());
    let request = match (args.target.user, args.target.device) {
        (Some(user), _) => AdminRequest::Lock {
            user,
            reason: args.reason,
            ttl_seconds,
        },
        (None, Some(serial)) => AdminRequest::LockDevice {
            serial,
            reason: args.reason,
            ttl_seconds,
        },
        (None, None) => return Err(no_target()),
    };
    crate::admin_request(config, request, false)
}

pub(crate) fn unlock(config: &Config, args: UnlockArgs) -> Result<(), Error> {
    let request = match (args.target.user, args.target.device) {
        (Some(user), _) => AdminRequest::Unlock {
            user,
            reason: args.reason,
        },
        (None, Some(serial)) => AdminRequest::UnlockDevice {
            serial,
            reason: args.reason,
        },
        (None, None) => return Err(no_target()),
    };
    crate::admin_request(config, request, false)
}

fn no_target() -> Error {
    Error::BadRequest {
        field: "--user/--device",
        reason: "name a user or a device".into(),
    }
}
