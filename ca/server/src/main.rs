//! `signet-ca`: the Signet certificate authority's admin command line.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use signet_ca::admin::AdminRequest;
use signet_ca::authority::{local_admin, CertKind, IssuedCert, RawRequest};
use signet_ca::ca_keys::CaKeys;
use signet_ca::config::{Backend, Config};
use signet_ca::keys::{self, KeyRole};
use signet_ca::log_signer::LogSigner;
use signet_ca::store::configured::OpenKind;
use signet_ca::store::LogStore;
use signet_ca::{bench, serve, x509, Error};
use signet_hsm::Pin;

mod cli_nodes;
mod cli_store;

const AFTER_HELP: &str = "\
Every command reads the configuration given with --config (TOML; see
deploy/signet-ca.example.toml). The CA keys live on a PKCS#11 token, or on
a YubiKey with hsm.backend = \"piv\". The PIN comes from the file or
environment variable the configuration names, never from the command line.

Exit codes:
  0  success
  1  internal failure (store, encoding)
  2  bad usage, configuration or request (the message names the field)
  3  the HSM is unreachable or refused (module, token, PIN, mechanism)
  4  refused by policy (e.g. a TTL above the configured maximum)
  5  the log failed its integrity check (the CA will not issue)
  6  the witnesses did not cosign the log (the CA holds issuance back)";

/// Signet certificate authority: keys born in the HSM, every certificate logged.
#[derive(Parser)]
#[command(name = "signet-ca", version, after_help = AFTER_HELP)]
struct Cli {
    /// The CA configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Key ceremony: generate the four CA keys inside the token (SSH user CA,
    /// SSH host CA, X.509 CA, log key) and write the X.509 root certificate.
    /// Run again, it keeps existing keys and says so.
    Init {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a CA public key: an OpenSSH line for ssh-user-ca / ssh-host-ca
    /// (use it as TrustedUserCAKeys or in an @cert-authority line), the PEM
    /// root certificate for x509-ca, the PEM public key for log-key.
    Export {
        /// Which key: ssh-user-ca, ssh-host-ca, x509-ca or log-key.
        key: KeyRole,
    },
    /// Break-glass issuance by the local administrator (needs the HSM PIN).
    /// Logged like any other issuance.
    Sign {
        /// Print a JSON object (certificate, serial, log index) instead of the certificate.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        kind: SignKind,
    },
    /// Measure raw token signatures/s against issued certificates/s.
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Pool size to compare with one session (default: hsm.sessions).
        #[arg(long)]
        sessions: Option<usize>,
        /// Requests in flight per session (the load the CA is under).
        #[arg(long, default_value_t = 64)]
        clients: usize,
    },
    /// The verifiable log: export it for auditors, or check the local store.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Run the CA daemon: verify the log, replay it into the users, keys
    /// and roles, then serve HTTPS on serve.listen — the touch flow
    /// (/v1/certs/, /v1/enroll/, the /enroll/ page), /v1/health, and the
    /// log (C2SP tiles under /log/, proofs under /v1/log/proof/) — plus the
    /// admin socket and metrics. Stops cleanly on SIGTERM.
    Serve,
    /// Users: invite them to enroll a security key, list and show them,
    /// remove a key, lock and unlock. Talks to the running daemon over its
    /// admin socket, or opens the store itself when no daemon runs.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Roles and users from YAML files kept in git.
    Roles {
        #[command(subcommand)]
        command: RolesCommand,
    },
    /// The log's storage: PostgreSQL schema migrations, and moving a
    /// single-host CA's log into PostgreSQL.
    Store {
        #[command(subcommand)]
        command: cli_store::StoreCommand,
    },
    /// Nodes the access proxy reaches, from YAML files kept in git.
    Nodes {
        #[command(subcommand)]
        command: cli_nodes::NodesCommand,
    },
    /// Lock a user (--user) or a YubiKey (--device): the CA issues nothing
    /// for them and every proxy closes their tunnels, until the lock ends
    /// (--ttl) or `signet-ca unlock`. A log entry, durable first.
    Lock(cli_nodes::LockArgs),
    /// Unlock a user or a YubiKey. A log entry.
    Unlock(cli_nodes::UnlockArgs),
    /// The access proxies: what their feed sends.
    Proxies {
        #[command(subcommand)]
        command: cli_nodes::ProxiesCommand,
    },
    /// Token administration.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Print a single-use enrollment link for NAME (a user in the applied
    /// roles) on stdout. The link is a secret: hand it to NAME only.
    Invite {
        /// The user.
        name: String,
        /// How long the link is valid (at most 7d).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        /// Print JSON (link, expiry, log index).
        #[arg(long)]
        json: bool,
    },
    /// List every user: roles, number of security keys, lock.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a user: roles, lock, and every security key (credential id,
    /// model, counter, when enrolled and last used).
    Show {
        /// The user.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a security key from a user (its credential id, from `show`).
    RemoveKey {
        /// The user.
        name: String,
        /// The credential id (base64url).
        credential_id: String,
    },
    /// Lock a user: the CA issues nothing to them until the lock ends.
    Lock {
        /// The user.
        name: String,
        /// Why (logged, shown to the user).
        #[arg(long)]
        reason: String,
        /// For how long (default: until unlocked).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// Unlock a user (an admin's lock, or one after failed assertions).
    Unlock {
        /// The user.
        name: String,
        /// Why (logged).
        #[arg(long, default_value = "unlocked by an administrator")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum RolesCommand {
    /// Show what the files change against the roles in force, then apply
    /// it: one log entry per role or user changed, each durable before it
    /// takes effect. Files and directories (*.yaml, *.yml); errors name the
    /// file, line and field.
    #[command(
        after_help = "Example:\n  signet-ca roles apply --config /etc/signet/ca.toml --dry-run roles/\n  signet-ca roles apply --config /etc/signet/ca.toml roles/"
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
}

#[derive(Subcommand)]
enum LogCommand {
    /// Write the log as C2SP tlog-tiles (checkpoint, hash tiles, entry
    /// bundles) into DIR, for offline auditors (`signet audit verify --log DIR`).
    Export {
        /// The directory to write (created if missing).
        dir: PathBuf,
    },
    /// Verify the local store against its own signed checkpoint and the
    /// high-water mark: every entry, every stored hash, every serial. Names
    /// the first bad index.
    Check,
    /// Rebuild the store from a verified copy of the published log (a
    /// `log export` directory, a mirror, or a CA's /log/ URL) after it was
    /// lost or rolled back. The copy must verify with the log key and reach
    /// the high-water mark; the old store is moved aside, never deleted.
    /// Stop the daemon first.
    #[command(
        after_help = "Examples:\n  signet-ca log restore --config ca.toml --from /backup/signet-log\n  signet-ca log restore --config ca.toml --from https://mirror.example.com/signet/log/"
    )]
    Restore {
        /// The copy: a directory or an http(s) URL of the log's prefix
        /// (where `checkpoint` and `tile/` are).
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Restore although there is no high-water mark (it was lost with
        /// the HSM): nothing then proves the copy is the newest.
        #[arg(long)]
        without_mark: bool,
    },
    /// Write the high-water mark from a store that has entries but no mark
    /// (a log from before marks existed, or a mark lost with the HSM). The
    /// store is verified first. Only for a store you know is the newest
    /// copy of the log: this is the one step that trusts the store file.
    AdoptMark,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Initialise a free slot as the configured token (software tokens and
    /// first setup): label from hsm.token_label, user PIN from the
    /// configured pin_file/pin_env, SO PIN from --so-pin-file.
    Init {
        /// File holding the security officer PIN.
        #[arg(long, value_name = "FILE")]
        so_pin_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum SignKind {
    /// An OpenSSH user certificate.
    SshUser(SshUserArgs),
    /// An OpenSSH host certificate.
    SshHost(SshHostArgs),
    /// An X.509 client certificate (PEM).
    X509Client(X509ClientArgs),
}

#[derive(Args)]
struct SshUserArgs {
    /// The user the certificate is for (goes into the key id).
    #[arg(long)]
    user: String,
    /// A login the certificate allows; repeat for several.
    #[arg(long = "principal", value_name = "LOGIN")]
    principals: Vec<String>,
    /// Validity, e.g. 30m, 8h (at most issuance.ssh_user_max_ttl).
    #[arg(long)]
    ttl: String,
    /// The user's OpenSSH public key file (.pub) or PEM public key.
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
}

#[derive(Args)]
struct SshHostArgs {
    /// A host name the certificate is valid for; repeat for several.
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// Validity, e.g. 30d (at most issuance.ssh_host_max_ttl).
    #[arg(long)]
    ttl: String,
    /// The host's public key file, e.g. /etc/ssh/ssh_host_ed25519_key.pub.
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
}

#[derive(Args)]
struct X509ClientArgs {
    /// The user the certificate names (CN and SAN URI).
    #[arg(long)]
    user: String,
    /// Validity, e.g. 8h (at most issuance.x509_client_max_ttl).
    #[arg(long)]
    ttl: String,
    /// The public key: OpenSSH public key or PEM SubjectPublicKeyInfo.
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
}

fn users(config: &Config, command: UsersCommand) -> Result<(), Error> {
    let (request, json) = match command {
        UsersCommand::Invite { name, ttl, json } => (
            AdminRequest::Invite {
                user: name,
                ttl_seconds: ttl.as_secs(),
            },
            json,
        ),
        UsersCommand::List { json } => (AdminRequest::ListUsers, json),
        UsersCommand::Show { name, json } => (AdminRequest::ShowUser { user: name }, json),
        UsersCommand::RemoveKey {
            name,
            credential_id,
        } => (
            AdminRequest::RemoveKey {
                user: name,
                credential_id,
            },
            false,
        ),
        UsersCommand::Lock { name, reason, ttl } => (
            AdminRequest::Lock {
                user: name,
                reason,
                ttl_seconds: ttl.map(|t| t.as_secs()),
            },
            false,
        ),
        UsersCommand::Unlock { name, reason } => {
            (AdminRequest::Unlock { user: name, reason }, false)
        }
    };
    admin_request(config, request, json)
}

/// Runs an admin request (through the daemon if it runs) and prints the
/// answer: the result on stdout (text, or JSON with --json), context on
/// stderr; an error ends the process with the exit code it carries.
fn admin_request(config: &Config, request: AdminRequest, json: bool) -> Result<(), Error> {
    let (response, _via_daemon) = signet_ca::admin::run(config, request)?;
    if response.exit != 0 {
        eprintln!("signet-ca: {}", response.text.trim_end());
        std::process::exit(i32::from(response.exit));
    }
    if json {
        let text = serde_json::to_string_pretty(&response.json)
            .map_err(|e| Error::Store(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", response.text);
    }
    if !response.note.is_empty() {
        eprintln!("{}", response.note);
    }
    std::io::stdout()
        .flush()
        .map_err(|e| Error::Store(e.to_string()))
}

/// Log lines to stderr: readable text, or JSON objects with
/// `serve.log_format = "json"`; RUST_LOG filters (default: info for the
/// daemon, warnings for commands). Library `log` lines join the same stream.
fn init_logging(config_path: Option<&Path>, daemon: bool) {
    let format = config_path
        .and_then(|p| Config::load(p).ok())
        .map(|c| c.serve.log_format)
        .unwrap_or_default();
    // cryptoki reports every mechanism it has no name for as an error;
    // they are not errors of ours.
    let default = if daemon {
        "info,cryptoki=off"
    } else {
        "warn,cryptoki=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        signet_ca::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
        signet_ca::config::LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.config.as_deref(), matches!(cli.command, Command::Serve));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("signet-ca: {err}");
            ExitCode::from(err.exit_class() as u8)
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, Error> {
    let path = path.ok_or_else(|| Error::BadRequest {
        field: "--config",
        reason: "is required".into(),
    })?;
    Config::load(path)
}

fn run(cli: Cli) -> Result<(), Error> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Init { json } => init(&config, json),
        Command::Export { key } => export(&config, key),
        Command::Sign { json, kind } => sign(config, kind, json),
        Command::Bench {
            seconds,
            sessions,
            clients,
        } => {
            if config.hsm.backend == Backend::Piv {
                return Err(Error::BadRequest {
                    field: "hsm.backend",
                    reason: "bench measures a PKCS#11 token's sessions and keeps its mark on the token; \
                             it does not run on a YubiKey (PIV signs about 10 signatures/s, one at a time: \
                             see docs/operations.md)"
                        .into(),
                });
            }
            if clients == 0 || clients > 1024 {
                return Err(Error::BadRequest {
                    field: "--clients",
                    reason: "must be between 1 and 1024".into(),
                });
            }
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
                return Err(Error::BadRequest {
                    field: "--seconds",
                    reason: "must be between 0 and 600".into(),
                });
            }
            if sessions == Some(0) || sessions.is_some_and(|s| s > 64) {
                return Err(Error::BadRequest {
                    field: "--sessions",
                    reason: "must be between 1 and 64".into(),
                });
            }
            eprintln!(
                "Benchmarking on token {:?}; bench keys only, never the CA keys.",
                token_name(&config)
            );
            let lines = bench::run(&config, seconds, sessions, clients, |msg| {
                eprintln!("{msg}")
            })?;
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
        Command::Log {
            command: LogCommand::Export { dir },
        } => export_log(&config, &dir),
        Command::Log {
            command: LogCommand::Check,
        } => {
            let keys = CaKeys::open(&config)?;
            let (store, signer) = open_store(&config, &keys)?;
            let report = store.verified();
            println!(
                "OK: {} entries; they match the checkpoint of size {} signed by {}{}",
                report.entries,
                report.checkpoint_size,
                signer.verifier(),
                match report.high_water {
                    Some(size) => format!(", and reach the high-water mark ({size})"),
                    None => String::new(),
                }
            );
            Ok(())
        }
        Command::Log {
            command: LogCommand::Restore { from, without_mark },
        } => restore_log(&config, &from, without_mark),
        Command::Log {
            command: LogCommand::AdoptMark,
        } => {
            let keys = CaKeys::open(&config)?;
            let (store, _) = open_store_as(&config, &keys, OpenKind::AdoptMark)?;
            println!(
                "The high-water mark now holds the store's checkpoint of {} entries.",
                store.verified().checkpoint_size
            );
            Ok(())
        }
        Command::Serve => {
            let keys = CaKeys::open(&config)?;
            eprintln!("signet-ca: verifying the log before serving…");
            let (store, _) = open_store(&config, &keys)?;
            eprintln!("signet-ca: log OK ({} entries)", store.verified().entries);
            serve::run(config, keys, store)
        }
        Command::Users { command } => users(&config, command),
        Command::Store { command } => cli_store::store(&config, command),
        Command::Nodes { command } => cli_nodes::nodes(&config, command),
        Command::Lock(args) => cli_nodes::lock(&config, args),
        Command::Unlock(args) => cli_nodes::unlock(&config, args),
        Command::Proxies { command } => cli_nodes::proxies(&config, command),
        Command::Roles {
            command:
                RolesCommand::Apply {
                    dry_run,
                    json,
                    paths,
                },
        } => {
            let policy = signet_policy::Policy::load(&paths).map_err(|e| Error::BadRequest {
                field: "PATH",
                reason: e.to_string(),
            })?;
            let changes = signet_policy::Policy::new().diff(&policy).changes;
            admin_request(
                &config,
                AdminRequest::ApplyPolicy { changes, dry_run },
                json,
            )
        }
        Command::Token {
            command: TokenCommand::Init { so_pin_file },
        } => {
            if config.hsm.backend == Backend::Piv {
                return Err(Error::BadRequest {
                    field: "hsm.backend",
                    reason:
                        "token init prepares a PKCS#11 token; a YubiKey is prepared with ykman \
                             (PIN, management key: docs/operations.md), then `signet-ca init`"
                            .into(),
                });
            }
            let module = config.token_config()?.module;
            let label = config
                .hsm
                .token_label
                .clone()
                .ok_or_else(|| Error::BadRequest {
                    field: "hsm.token_label",
                    reason: "token init needs a label (not a URI)".into(),
                })?;
            let so_pin = Pin::from_file(&so_pin_file)?;
            let user_pin = config.token_config()?.pin.load()?;
            // Software tokens only: a real HSM's slots are set up with its
            // vendor's ceremony, never by this command.
            signet_hsm::initialize_softhsm_token(&module, &label, &so_pin, &user_pin)?;
            eprintln!("Initialised token {label:?}; next: signet-ca init --config …");
            Ok(())
        }
    }
}

fn token_name(config: &Config) -> String {
    config
        .hsm
        .token_label
        .clone()
        .or_else(|| config.hsm.token_uri.clone())
        .unwrap_or_default()
}

/// Opens the log store with the device's log key as checkpoint signer; the
/// store is verified (against its checkpoint and the high-water mark)
/// before it is returned.
fn open_store(
    config: &Config,
    keys: &CaKeys,
) -> Result<(Arc<dyn LogStore>, Arc<LogSigner>), Error> {
    open_store_as(config, keys, OpenKind::Existing)
}

/// [`open_store`] with another way of opening: `OpenKind::Create` for the
/// key ceremony, `OpenKind::AdoptMark` for `log adopt-mark`. The backend
/// (embedded or PostgreSQL) is the one `[store]` names.
fn open_store_as(
    config: &Config,
    keys: &CaKeys,
    kind: OpenKind,
) -> Result<(Arc<dyn LogStore>, Arc<LogSigner>), Error> {
    let (signer, mark) = keys.log_signer(config)?;
    let store = signet_ca::store::configured::open(
        config,
        signer.clone(),
        signer.verifier().clone(),
        mark,
        signet_ca::store::witnessing::from_config(config, signer.verifier())?,
        kind,
    )?;
    Ok((store, signer))
}

fn restore_log(config: &Config, from: &str, without_mark: bool) -> Result<(), Error> {
    let copy = signet_ca::store::restore::copy_at(from)?;
    let keys = CaKeys::open(config)?;
    let public = keys.public_key(config, KeyRole::LogKey)?;
    let verifier = signet_ca::log_signer::verifier_for(&public, &config.log_origin())?;
    let mark = keys.high_water_mark(config)?;
    eprintln!(
        "signet-ca: rebuilding the log from {} (checked against the log key {verifier} and {})",
        copy.describe(),
        mark.describe()
    );
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = signet_ca::store::restore::restore(
        &config.store_path(),
        copy.as_ref(),
        &verifier,
        mark.as_ref(),
        without_mark,
        |done, total| {
            if progress {
                eprint!("\rsignet-ca: {done}/{total} entries verified");
            }
        },
    )?;
    if progress {
        eprintln!();
    }
    if let Some(aside) = &report.moved_aside {
        eprintln!(
            "signet-ca: the previous store was moved to {}",
            aside.display()
        );
    }
    // Open it as the CA will: verified again from scratch, mark moved.
    drop(mark);
    let (store, _) = if without_mark {
        open_store_as(config, &keys, OpenKind::AdoptMark)?
    } else {
        open_store(config, &keys)?
    };
    println!(
        "Restored {} entries into {}; verified against the log key and the high-water mark.",
        store.verified().entries,
        config.store_path().display()
    );
    Ok(())
}

fn export_log(config: &Config, dir: &Path) -> Result<(), Error> {
    let keys = CaKeys::open(config)?;
    let (store, signer) = open_store(config, &keys)?;
    // With witnesses, the cosigned checkpoint (released when the store
    // opened): auditors check it against the witness policy. If the
    // witnesses did not cosign, the log key's signature alone, said so.
    let checkpoint = match store.published_checkpoint() {
        Some(cosigned) => cosigned,
        None => {
            eprintln!(
                "signet-ca: warning: the witnesses did not cosign the latest checkpoint; \
                 exporting it with the log key's signature alone"
            );
            store.latest_checkpoint()
        }
    };
    let file_err = |path: &Path, e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let paths = signet_log::tiles::tile_paths(checkpoint.size);
    let total = paths.len();
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    for (done, path) in paths.into_iter().enumerate() {
        let bytes = store
            .tile(&path)?
            .ok_or_else(|| Error::Store(format!("tile {path} is missing")))?;
        write_atomically(&dir.join(path.to_string()), &bytes).map_err(|e| file_err(dir, e))?;
        if progress && done % 1024 == 0 {
            eprint!("\rsignet-ca: exporting tiles {done}/{total}");
        }
    }
    write_atomically(&dir.join("checkpoint"), checkpoint.note.as_bytes())
        .map_err(|e| file_err(dir, e))?;
    eprintln!(
        "\rsignet-ca: exported {} entries ({total} tiles) to {}",
        checkpoint.size,
        dir.display()
    );
    println!("{}", signer.verifier());
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp-signet");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn init(config: &Config, json: bool) -> Result<(), Error> {
    let keys = CaKeys::open(config)?;
    eprintln!("{}", keys.describe());
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::File {
        path: config.data_dir.clone(),
        reason: format!("cannot create: {e}"),
    })?;
    let results = keys.ceremony(config)?;

    // The root certificate: kept if it matches the token's key, refused if
    // it does not, created if absent.
    let x509_key = results
        .iter()
        .find(|r| r.role == KeyRole::X509Ca)
        .map(|r| r.public_key.clone())
        .ok_or_else(|| Error::NotInitialised("no x509-ca key".into()))?;
    let root_path = config.root_cert_path();
    let pending_root = root_path.with_extension("pem.unlogged");
    let root_created = match std::fs::read_to_string(&root_path) {
        Ok(text) => {
            let root = x509::from_pem(&text)?;
            if x509::public_key_of(&root)? != x509_key {
                return Err(Error::File {
                    path: root_path,
                    reason: "this root certificate is not for the device's x509-ca key; move it away to create a new one".into(),
                });
            }
            false
        }
        Err(_) => {
            // A new root is published (written under its real name) only
            // once its log entry is durable; until then it waits under a
            // name nothing reads, and an interrupted run picks it up again.
            match std::fs::read_to_string(&pending_root) {
                Ok(text) if x509::public_key_of(&x509::from_pem(&text)?)? == x509_key => {}
                _ => {
                    let _ = std::fs::remove_file(&pending_root);
                    let root = keys.create_root(config)?;
                    write_new_file(&pending_root, x509::to_pem(&root)?.as_bytes())?;
                }
            }
            true
        }
    };
    // The log exists from the first ceremony on. Every CA key and the root
    // certificate have an entry; a run that was interrupted between making
    // one and logging it (or an older version that never logged the root)
    // is completed now, and says so.
    let (store, log_signer) = open_store_as(config, &keys, OpenKind::Create)?;
    let already = ceremony_entries(store.as_ref())?;
    let mut newly_logged = Vec::new();
    for result in &results {
        let subject = keys::key_entry_subject(result)?;
        if already.keys.contains(&subject) {
            newly_logged.push(false);
            continue;
        }
        let entry = ceremony_entry(signet_log::entry::EntryKind::KeyRotation, subject, None);
        store.append(&entry, None)?;
        newly_logged.push(true);
    }
    // On a YubiKey, each key's attestation certificate (checked by the
    // ceremony) is logged beside its key entry, so auditors can check
    // where the key was born.
    let mut attestations_logged = Vec::new();
    for result in &results {
        let logged = match &result.attestation {
            Some(attestation) => Some(log_admin_certificate(
                store.as_ref(),
                &attestation.certificate,
                &already,
                "attestation certificate",
                true,
            )?),
            None => None,
        };
        attestations_logged.push(logged);
    }
    let root_source = if root_created {
        &pending_root
    } else {
        &root_path
    };
    let root_pem = std::fs::read_to_string(root_source).map_err(|e| Error::File {
        path: root_source.clone(),
        reason: e.to_string(),
    })?;
    let root = x509::from_pem(&root_pem)?;
    let root_der = der::Encode::to_der(&root).map_err(|e| Error::Certificate(e.to_string()))?;
    let root_logged_now = log_admin_certificate(
        store.as_ref(),
        &root_der,
        &already,
        "root certificate",
        false,
    )?;
    if root_created {
        std::fs::rename(&pending_root, &root_path).map_err(|e| Error::File {
            path: root_path.clone(),
            reason: format!("cannot publish the logged root certificate: {e}"),
        })?;
        if let Some(dir) = root_path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::File {
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                })?;
        }
    }

    let mut out = std::io::stdout().lock();
    let mut json_keys = Vec::new();
    for ((result, logged_now), attestation_logged) in
        results.iter().zip(&newly_logged).zip(&attestations_logged)
    {
        let public = &result.public_key;
        let label = result.role.label();
        let fingerprint = public.ssh_fingerprint()?;
        let state = match (result.generated, logged_now) {
            (true, _) => "generated and logged",
            (false, true) => "kept; logged now (its entry was missing)",
            (false, false) if result.attestation.is_some() => "kept (already on the card)",
            (false, false) => "kept (already on the token)",
        };
        if json {
            json_keys.push(serde_json::json!({
                "role": result.role.name(),
                "algorithm": result.algorithm.name(),
                "label": label,
                "location": result.location,
                "generated": result.generated,
                "logged_now": logged_now,
                "attested": result.attestation.is_some(),
                "attestation_logged_now": attestation_logged,
                "fingerprint": fingerprint,
                "public_key": public.to_openssh_line(&label)?,
            }));
        } else {
            let _ = writeln!(
                out,
                "{:<12} {:<11} {:<28} {fingerprint}",
                result.role.name(),
                result.algorithm.name(),
                state
            );
            let _ = writeln!(out, "    {}", public.to_openssh_line(&label)?);
            if let Some(logged) = attestation_logged {
                let _ = writeln!(
                    out,
                    "    {}: attestation checked{}",
                    result.location,
                    if *logged {
                        ", logged"
                    } else {
                        " (already logged)"
                    }
                );
            }
        }
    }
    if json {
        let doc = serde_json::json!({
            "token": keys.name(),
            "keys": json_keys,
            "root_certificate": root_path,
            "root_created": root_created,
            "root_logged_now": root_logged_now,
            "log_origin": config.log_origin(),
            "log_verifier_key": log_signer.verifier().to_string(),
        });
        let _ = writeln!(out, "{doc:#}");
    } else {
        let _ = writeln!(
            out,
            "X.509 root certificate: {} ({})",
            root_path.display(),
            match (root_created, root_logged_now) {
                (true, _) => "created and logged",
                (false, true) => "kept; logged now (its entry was missing)",
                (false, false) => "kept",
            }
        );
        let _ = writeln!(
            out,
            "Log verifier key (pin it in `signet audit`): {}",
            log_signer.verifier()
        );
    }
    Ok(())
}

/// Logs a certificate of the ceremony (the X.509 root, a key's
/// attestation) as an `admin-sign` entry, unless the log has it already:
/// subject = its whole subject DN (RFC 4514), serial reserved in the X.509
/// namespace. Returns whether it was logged now. With `same_key_is_logged`,
/// a logged certificate with the same subject and key counts as this one.
fn log_admin_certificate(
    store: &dyn LogStore,
    der_bytes: &[u8],
    already: &CeremonyEntries,
    what: &str,
    same_key_is_logged: bool,
) -> Result<bool, Error> {
    let sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(der_bytes).into();
    if already.certificates.contains(&sha256) {
        return Ok(false);
    }
    let cert = <x509_cert::Certificate as der::Decode>::from_der(der_bytes)
        .map_err(|e| Error::Certificate(format!("{what}: {e}")))?;
    let tbs = cert.tbs_certificate();
    let fingerprint = signet_log::entry::x509_key_fingerprint(&cert)?;
    if same_key_is_logged
        && already
            .certified_keys
            .contains(&(tbs.subject().to_string(), fingerprint.clone()))
    {
        return Ok(false);
    }
    let certificate = signet_log::entry::IssuedCertificate {
        // A certificate the CA did not make (a card's attestation) may have
        // a serial with a leading zero digit, which entries do not.
        serial: x509::log_serial(tbs.serial_number()),
        public_key_fingerprint: fingerprint,
        not_before: tbs.validity().not_before.to_unix_duration().as_secs(),
        not_after: tbs.validity().not_after.to_unix_duration().as_secs(),
        sha256: signet_log::entry::Sha256Hex(sha256),
        bytes: signet_log::entry::Base64Bytes(der_bytes.to_vec()),
        form: signet_log::entry::CertificateForm::Full,
    };
    let serial = store
        .reserve_serial(signet_ca::store::SerialKind::X509, &certificate.serial)?
        .ok_or_else(|| {
            Error::Store(format!(
                "the {what}'s serial {} is already in the log",
                certificate.serial
            ))
        })?;
    let entry = ceremony_entry(
        signet_log::entry::EntryKind::AdminSign,
        tbs.subject().to_string(),
        Some(certificate),
    );
    // The entry must say what the certificate says, as auditors check.
    signet_log::entry::check_certificate_contents(&entry)?;
    store.append(&entry, Some(serial))?;
    Ok(true)
}

/// What the log already records of the key ceremony.
struct CeremonyEntries {
    /// Subjects of key-rotation entries (role, key type, fingerprint).
    keys: std::collections::HashSet<String>,
    /// SHA-256 of certificates in admin-sign entries.
    certificates: std::collections::HashSet<[u8; 32]>,
    /// Subject and certified key of certificates in admin-sign entries: a
    /// YubiKey makes a new attestation certificate (new serial) each time
    /// it is asked, so an attestation is already logged when one for the
    /// same slot and key is.
    certified_keys: std::collections::HashSet<(String, String)>,
}

fn ceremony_entries(store: &dyn LogStore) -> Result<CeremonyEntries, Error> {
    use signet_log::entry::{Entry, EntryKind};
    let mut found = CeremonyEntries {
        keys: Default::default(),
        certificates: Default::default(),
        certified_keys: Default::default(),
    };
    let reader = store.reader()?;
    for index in 0..store.latest_checkpoint().size {
        let bytes = reader
            .entry(index)?
            .ok_or_else(|| Error::Store(format!("entry {index} is missing")))?;
        let entry = Entry::from_bytes(&bytes)?;
        match entry.kind {
            EntryKind::KeyRotation => found.keys.extend(entry.subject),
            EntryKind::AdminSign => {
                if let (Some(subject), Some(cert)) = (&entry.subject, &entry.certificate) {
                    found
                        .certified_keys
                        .insert((subject.clone(), cert.public_key_fingerprint.clone()));
                }
                found
                    .certificates
                    .extend(entry.certificate.map(|c| c.sha256.0));
            }
            _ => {}
        }
    }
    Ok(found)
}

fn ceremony_entry(
    kind: signet_log::entry::EntryKind,
    subject: String,
    certificate: Option<signet_log::entry::IssuedCertificate>,
) -> signet_log::entry::Entry {
    signet_log::entry::Entry {
        kind,
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        actor: local_admin(),
        request_hash: None,
        subject: Some(subject),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate,
        change: None,
    }
}

/// Writes a file that must not exist yet (never overwrites).
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let file_err = |e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(file_err)?;
    file.write_all(bytes).map_err(file_err)?;
    file.sync_all().map_err(file_err)
}

fn export(config: &Config, role: KeyRole) -> Result<(), Error> {
    let text = match role {
        KeyRole::X509Ca => {
            let path = config.root_cert_path();
            std::fs::read_to_string(&path).map_err(|_| {
                Error::NotInitialised(format!("no root certificate at {}", path.display()))
            })?
        }
        _ => {
            let public = CaKeys::open(config)?.public_key(config, role)?;
            match role {
                KeyRole::LogKey => public.to_spki_pem()?,
                _ => format!("{}\n", public.to_openssh_line(&role.label())?),
            }
        }
    };
    print!("{text}");
    Ok(())
}

fn read_public_key(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::BadRequest {
        field: "--public-key",
        reason: format!("cannot read {}: {e}", path.display()),
    })
}

fn sign(config: Config, kind: SignKind, json: bool) -> Result<(), Error> {
    // Parse everything the request says before touching the HSM.
    let raw = match kind {
        SignKind::SshUser(args) => RawRequest {
            kind: CertKind::SshUser,
            user: Some(args.user),
            principals: args.principals,
            ttl: args.ttl,
            public_key: read_public_key(&args.public_key)?,
        },
        SignKind::SshHost(args) => RawRequest {
            kind: CertKind::SshHost,
            user: None,
            principals: args.hosts,
            ttl: args.ttl,
            public_key: read_public_key(&args.public_key)?,
        },
        SignKind::X509Client(args) => RawRequest {
            kind: CertKind::X509Client,
            user: Some(args.user),
            principals: Vec::new(),
            ttl: args.ttl,
            public_key: read_public_key(&args.public_key)?,
        },
    };
    signet_ca::authority::precheck(&config, &raw)?;
    let keys = CaKeys::open(&config)?;
    let (store, _) = open_store(&config, &keys)?;
    let authority = keys.authority(config, store)?;
    let approved = authority.approve(raw)?;
    let issued = authority.issue(approved, local_admin())?;
    let text = match &issued.certificate {
        IssuedCert::Ssh(cert) => format!(
            "{}\n",
            cert.to_openssh()
                .map_err(|e| Error::Certificate(e.to_string()))?
        ),
        IssuedCert::X509(der_bytes) => x509::der_to_pem(der_bytes)?,
    };
    if json {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let doc = serde_json::json!({
            "certificate": text,
            "serial": issued.serial,
            "log_index": issued.log_index,
            "checkpoint": issued.checkpoint.note,
            "inclusion_proof": issued.inclusion_proof.iter().map(|h| b64.encode(h)).collect::<Vec<_>>(),
        });
        println!("{doc}");
    } else {
        print!("{text}");
        eprintln!(
            "Issued serial {} (log entry {}).",
            issued.serial, issued.log_index
        );
    }
    Ok(())
}
