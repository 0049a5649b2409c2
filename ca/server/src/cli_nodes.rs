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
    }
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
