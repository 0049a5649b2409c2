//! `signet audit …`: the auditor's commands.

use std::io::{BufWriter, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use signet::audit::certfile;
use signet::audit::fetch::{check_consistency, check_inclusion, fetch_checkpoint};
use signet::audit::localfile::read_regular;
use signet::audit::query::{entry_json, entry_line, format_time, parse_kind, parse_time, Filter};
use signet::audit::source::{self, LogSource};
use signet::audit::state::{StateDir, Stored};
use signet::audit::trust::{Trust, TrustedCheckpoint};
use signet::audit::verify::{verify_log, Previous, Summary, VerifiedEntry};
use signet::audit::witnesses::{check_checkpoint, WitnessFile};
use signet::audit::{AuditError, ErrorClass, VerifyFailure};
use signet_log::certificate::{
    certificate_matches_entry, ssh_certificate_from_bytes, verify_ssh_certificate,
    verify_x509_certificate, CertificateProof, LogTrust, VerifiedCertificate,
};
use signet_log::entry::{Actor, Entry};
use signet_log::merkle::Hash;
use signet_log::note::VerifierKey;
use signet_log::witness::WitnessPolicy;

use super::progress::Progress;

const AUDIT_ABOUT: &str = "Verify Signet's signing log without trusting the CA";

const AUDIT_LONG: &str = "\
Verify Signet's signing log without trusting the CA.

Every certificate Signet issues and every admin action is an entry in an
append-only Merkle tree. The CA signs the tree head (the checkpoint) with its
HSM log key and serves the tree as C2SP tlog-tiles: over HTTP under /log/, or
as a directory written by `signet-ca log export`. These commands fetch it,
recompute it, and check it against the log key you pin.

Pin the key once, from a source you trust (not the log server):
  signet-ca export log-key > log-key.pem     (or the vkey line it prints)

Then:
  signet audit checkpoint --log https://ca.example.com/log/ --key log-key.pem \\
      --origin ca.example.com/signet-log
  signet audit verify     --log ./log-export --key log.vkey
  signet audit prove      --log … --key … --cert ~/.ssh/id_ed25519-cert.pub
  signet audit search     --log … --key … --user alice --since 2026-11-01T00:00:00Z
  signet audit export     --log … --key … --format jsonl > signet-log.jsonl

--log is a directory laid out like the tlog-tiles URL space (checkpoint,
tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]) or an http(s):// URL prefix.

--witnesses FILE holds the log to a witness policy: the checkpoint must be
cosigned (C2SP cosignature/v1) by at least `threshold` of the witnesses the
file's [witnesses] table lists — the table of the CA's configuration, or a
node's configuration file as it is (its log_key must be the --key). A
checkpoint that falls short names the witnesses missing. Without it,
cosignatures are not checked.

--key is a C2SP verifier key line (<name>+<hex id>+<base64>) or a PEM public
key (Ed25519, or ECDSA P-256). A PEM key has no name: its note key name is
the --origin you give, or else the origin the checkpoint claims. Pin --origin
(the CA's is <CA host name>/signet-log) so a checkpoint of another log signed
by the same key cannot pass for this one.

Rollback and fork protection: after a full verification succeeds, the
checkpoint is remembered in $XDG_STATE_HOME/signet/audit/<origin>-<hash>.checkpoint
(default ~/.local/state/signet/audit/; <hash> tells apart origins that differ
only in punctuation). It only ever moves forward, also when several runs
finish at once. Every later run checks that the log still starts with
exactly the tree that checkpoint signed, and fails if the log is smaller.
A log that cannot be fetched while this is checked fails with status 3: that
proves nothing either way, and is not reported as a rollback.
`verify --since FILE` checks against a checkpoint you kept yourself as well
(a regular file of at most 16 KiB, the signed note as the log serves it).

verify, prove, search and export all verify the whole log first, so their
answers are complete: a search that finds nothing means the verified log has
nothing, and a certificate prove cannot find is not in the log.

Exit status:
  0  verified (and, for prove, the certificate is in the log)
  1  verification failed: tampering, inconsistency, a missing or malformed
     tile or entry, or a certificate that is not in the log
  2  usage error or bad input: flags, key file, certificate file, --since file
  3  could not fetch the log, or could not write local state or output";

const CHECKPOINT_HELP: &str = "\
Example:
  signet audit checkpoint --log https://ca.example.com/log/ --key log-key.pem \\
      --origin ca.example.com/signet-log --json

Exit status: 0 verified; 1 bad signature, wrong origin, or not consistent with
the remembered checkpoint; 2 usage or bad input; 3 could not fetch.";

const VERIFY_HELP: &str = "\
Examples:
  signet audit verify --log ./log-export --key log.vkey
  signet audit verify --log https://ca.example.com/log/ --key log-key.pem \\
      --origin ca.example.com/signet-log --since last-quarter.checkpoint

A checkpoint to keep for later --since runs is just the log's checkpoint file:
  curl -o last-quarter.checkpoint https://ca.example.com/log/checkpoint

Exit status: 0 verified; 1 verification failed (names the entry index or tile);
2 usage or bad input; 3 could not fetch the log or write local files.";

const PROVE_HELP: &str = "\
Examples:
  signet audit prove --log … --key … --cert ~/.ssh/id_ed25519-cert.pub
  signet audit prove --log … --key … --cert client.pem --json

Exit status: 0 the certificate is in the verified log; 1 it is not, or the log
failed verification; 2 usage or bad input; 3 could not fetch.";

const SEARCH_HELP: &str = "\
Examples:
  signet audit search --log … --key … --user alice --since 2026-11-01T00:00:00Z
  signet audit search --log … --key … --principal root --kind ssh-user-cert --json
  signet audit search --log … --key … --kind lock --kind unlock --until 1795392000

Text output: one tab-separated line per entry (index, time, kind, actor, …);
the count goes to standard error.

Exit status: 0 verified (with or without matches); 1 verification failed;
2 usage or bad input; 3 could not fetch.";

const EXPORT_HELP: &str = "\
Example:
  signet audit export --log … --key … --format jsonl -o signet-log.jsonl

Exit status: 0 verified and written; 1 verification failed (nothing is
written); 2 usage or bad input; 3 could not fetch or write.";

/// Verify Signet's signing log without trusting the CA.
#[derive(Debug, Args)]
#[command(about = AUDIT_ABOUT, long_about = AUDIT_LONG)]
pub(crate) struct AuditCommand {
    #[command(subcommand)]
    command: AuditSub,
}

#[derive(Debug, Subcommand)]
enum AuditSub {
    /// Fetch and verify the latest checkpoint; print its origin, size and root hash.
    ///
    /// Checks the signature by the pinned key and the origin. If a checkpoint of
    /// this log is remembered from an earlier full verification, also checks
    /// that the log extends it, with a consistency proof computed from the hash
    /// tiles (this does not read the entries; use `verify` for that).
    #[command(after_long_help = CHECKPOINT_HELP)]
    Checkpoint(CheckpointArgs),
    /// Verify the whole log: every tile, every entry, the tree, and consistency.
    ///
    /// Fetches every entry bundle and hash tile, checks every entry decodes
    /// canonically and its certificate has the SHA-256 it states, that no
    /// certificate serial repeats (OpenSSH and X.509 counted apart), recomputes
    /// the tree and compares it with every hash tile and the checkpoint, and
    /// checks the log starts with the tree of every earlier checkpoint (--since,
    /// and the remembered one). On success the checkpoint is remembered.
    /// On failure the entry index or tile path is named.
    #[command(after_long_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Find a certificate's entry in the verified log and prove its inclusion.
    ///
    /// The certificate is an OpenSSH certificate (the …-cert.pub file) or an
    /// X.509 certificate (PEM or DER). Its SHA-256 — or, for a certificate
    /// that carries its proof of logging, its precertificate's — is looked up
    /// among the entries of the fully verified log, and the entry must
    /// describe the certificate; the inclusion proof is then computed from
    /// the hash tiles and checked against the signed checkpoint. The proof
    /// the certificate carries is verified too (log key, --witnesses policy,
    /// the entry's index, and a checkpoint this log extends).
    #[command(after_long_help = PROVE_HELP)]
    Prove(ProveArgs),
    /// Search the verified log: who got what, when.
    ///
    /// All conditions given must hold. Results are printed only after the whole
    /// log verified, so the answer is complete.
    #[command(after_long_help = SEARCH_HELP)]
    Search(SearchArgs),
    /// Export every entry of the verified log, one JSON object per line, for a SIEM.
    ///
    /// Each line holds index, leaf_hash (hex), time_rfc3339 and the entry's
    /// fields as logged. Nothing is written until the whole log verified.
    #[command(after_long_help = EXPORT_HELP)]
    Export(ExportArgs),
}

#[derive(Debug, Args)]
struct LogArgs {
    /// The log: a tile directory, or an http(s):// URL prefix (e.g. https://ca.example.com/log/).
    #[arg(long, value_name = "URL|DIR")]
    log: String,
    /// The pinned log key: a vkey line, or a PEM public key (Ed25519 or ECDSA P-256).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The log's origin (checkpoint first line), e.g. ca.example.com/signet-log.
    /// Defaults to the vkey's name; with a PEM key, pin it.
    #[arg(long, value_name = "NAME")]
    origin: Option<String>,
    /// For an https:// log: trust only these CA certificates (PEM) instead of the
    /// built-in web roots. TLS only protects the transport; the log's integrity
    /// rests on the pinned key either way.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The witness policy the checkpoint must meet: a TOML file with a
    /// [witnesses] table (threshold, [[witnesses.witness]] name and vkey),
    /// e.g. a node's configuration file.
    #[arg(long, value_name = "FILE")]
    witnesses: Option<PathBuf>,
    /// Do not draw a progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct CheckpointArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Print JSON: {"origin", "size", "root_hash", "key", "consistent_with"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    log: LogArgs,
    /// An earlier signed checkpoint (a file) the log must extend, besides the remembered one.
    #[arg(long, value_name = "CHECKPOINT")]
    since: Option<PathBuf>,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ProveArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The certificate: an OpenSSH …-cert.pub, or an X.509 certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Print JSON: index, leaf hash, checkpoint, inclusion proof, entry.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SearchArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Entries granting this principal (SSH login or host name).
    #[arg(long, value_name = "P")]
    principal: Option<String>,
    /// Entries by or about this user: the actor's user name or unix user, or the subject.
    #[arg(long, value_name = "U")]
    user: Option<String>,
    /// Entries at or after T (RFC 3339, e.g. 2026-11-23T08:00:00Z, or unix seconds).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Entries at or before T (RFC 3339 or unix seconds).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Entries of this kind (repeatable): ssh-user-cert, ssh-host-cert, x509-cert,
    /// admin-sign, enrollment, key-removal, role-change, lock, unlock, key-rotation.
    #[arg(long, value_name = "K")]
    kind: Vec<String>,
    /// One JSON object per matching entry (as `export`), instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: ExportFormat,
    /// Write to FILE (atomically, after verification) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd.command {
        AuditSub::Checkpoint(a) => checkpoint(a),
        AuditSub::Verify(a) => verify(a),
        AuditSub::Prove(a) => prove(a),
        AuditSub::Search(a) => search(a),
        AuditSub::Export(a) => export(a),
    }
}

/// The log, its pinned trust, and its verified latest checkpoint.
struct Opened {
    source: Box<dyn LogSource>,
    trust: Trust,
    latest: TrustedCheckpoint,
    state: Option<StateDir>,
    /// The pinned log key as it verified the latest checkpoint.
    log_key: VerifierKey,
    /// The witness policy (`--witnesses`) and who cosigned the latest
    /// checkpoint under it.
    witnesses: Option<(WitnessPolicy, Vec<String>)>,
}

/// The most bytes read from a `--tls-ca` file: room for a whole system
/// bundle of CA certificates (a few hundred kilobytes).
const MAX_TLS_CA_FILE: u64 = 4 * 1024 * 1024;

fn open(args: &LogArgs) -> anyhow::Result<Opened> {
    let trust = Trust::load(&args.key, args.origin.as_deref())?;
    let witness_file = args
        .witnesses
        .as_deref()
        .map(WitnessFile::load)
        .transpose()?;
    let tls_roots = match &args.tls_ca {
        Some(path) => Some(
            read_regular(path, MAX_TLS_CA_FILE)
                .map_err(|e| AuditError::BadInput(format!("--tls-ca {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let source = source::open(&args.log, tls_roots.as_deref())?;
    let signed = fetch_checkpoint(&*source)?;
    let checkpoint_name = format!("{}checkpoint", with_slash(&source.describe()));
    let latest = trust.open(&signed, &checkpoint_name)?;
    let log_key = VerifierKey::parse(&latest.key).map_err(|e| VerifyFailure::Checkpoint {
        source_name: checkpoint_name.clone(),
        reason: format!("the key that verified it does not parse: {e}"),
    })?;
    let witnesses = match witness_file {
        Some(file) => {
            file.check_log_key(&log_key)?;
            let cosigners =
                check_checkpoint(&file.policy, &latest.signed, &log_key, &checkpoint_name)?;
            Some((file.policy, cosigners))
        }
        None => None,
    };
    if trust.pinned_origin().is_none() {
        eprintln!(
            "signet: note: the PEM key has no name and --origin was not given, so the \
             checkpoint's own origin {:?} was trusted; pin it with --origin",
            latest.checkpoint.origin()
        );
    }
    Ok(Opened {
        source,
        trust,
        latest,
        state: StateDir::from_env(),
        log_key,
        witnesses,
    })
}

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_owned()
    } else {
        format!("{s}/")
    }
}

/// The remembered checkpoint of this log, re-verified with the pinned key.
fn remembered(o: &Opened) -> anyhow::Result<Option<TrustedCheckpoint>> {
    let Some(state) = &o.state else {
        return Ok(None);
    };
    let origin = o.latest.checkpoint.origin();
    match state.load(origin)? {
        Some(stored) => Ok(Some(open_remembered(o, &stored)?)),
        None => Ok(None),
    }
}

/// Verifies a remembered checkpoint: signed by the pinned key, and of this
/// log's origin (the file could have been written, or swapped in, for
/// another log).
fn open_remembered(o: &Opened, stored: &Stored) -> anyhow::Result<TrustedCheckpoint> {
    let origin = o.latest.checkpoint.origin();
    let path = stored.path.display();
    let cp = o
        .trust
        .open(&stored.bytes, &path.to_string())
        .map_err(|e| {
            AuditError::BadInput(format!(
                "the remembered checkpoint {path} does not verify with this key ({e}); \
                 if the log key was rotated, verify against the new key and move the file away"
            ))
        })?;
    if cp.checkpoint.origin() != origin {
        return Err(AuditError::BadInput(format!(
            "the remembered checkpoint {path} is for origin {:?}, not {origin:?}",
            cp.checkpoint.origin()
        ))
        .into());
    }
    Ok(cp)
}

/// The most bytes read from a `--since` file. A signed checkpoint is a few
/// hundred bytes (more only with many cosignatures); the file is the user's,
/// but it could be anything, so it is bounded like everything else read.
const MAX_SINCE_FILE: u64 = 16 * 1024;

fn read_since(o: &Opened, file: &Path) -> anyhow::Result<TrustedCheckpoint> {
    let bytes = read_regular(file, MAX_SINCE_FILE)
        .map_err(|e| AuditError::BadInput(format!("--since {}: {e}", file.display())))?;
    let cp = o
        .trust
        .open(&bytes, &file.display().to_string())
        .map_err(|e| AuditError::BadInput(format!("--since: {e}")))?;
    if cp.checkpoint.origin() != o.latest.checkpoint.origin() {
        return Err(AuditError::BadInput(format!(
            "--since {}: checkpoint of origin {:?}, the log is {:?}",
            file.display(),
            cp.checkpoint.origin(),
            o.latest.checkpoint.origin()
        ))
        .into());
    }
    Ok(cp)
}

/// The result of a full verification.
struct FullRun {
    summary: Summary,
    remembered_at: Option<PathBuf>,
    not_remembered: Option<String>,
}

/// Verifies the whole log (see `verify_log`), checking it extends `--since`
/// (if given) and the remembered checkpoint (always: a served log smaller
/// than what this auditor already verified is a rollback, whatever the
/// flags), then remembers the new one.
fn full_verify(
    o: &Opened,
    since: Option<&Path>,
    quiet: bool,
    visit: &mut dyn FnMut(VerifiedEntry<'_>) -> signet::audit::Result<()>,
) -> anyhow::Result<FullRun> {
    let remembered = remembered(o)?;
    let mut previous = Vec::new();
    if let Some(file) = since {
        previous.push(Previous {
            which: "--since",
            checkpoint: read_since(o, file)?.checkpoint,
        });
    }
    if let Some(r) = &remembered {
        previous.push(Previous {
            which: "remembered",
            checkpoint: r.checkpoint.clone(),
        });
    }

    let mut progress = Progress::new(quiet);
    let summary = verify_log(
        &*o.source,
        &o.latest.checkpoint,
        &previous,
        visit,
        &mut |done, total| progress.update(done, total),
    )?;
    progress.finish();

    let mut run = FullRun {
        summary,
        remembered_at: None,
        not_remembered: None,
    };
    match &o.state {
        Some(state) => match remember(o, state, remembered.as_ref()) {
            Ok(Remembered::Stored(path)) => run.remembered_at = Some(path),
            Ok(Remembered::KeptNewer(size)) => {
                run.not_remembered = Some(format!(
                    "not remembered: another run meanwhile remembered a newer checkpoint \
                     (size {size}), which this log extends to"
                ));
            }
            // The log verified; failing to write (or read) the state
            // weakens the next run, which is said loudly, but does not undo
            // this one.
            Err(NotRemembered::State(e)) if e.class() == ErrorClass::Unavailable => {
                run.not_remembered = Some(format!("warning: {e}"));
            }
            // What is found under the lock (a state file that does not
            // verify) fails the run.
            Err(NotRemembered::State(e)) => return Err(e.into()),
            // So does the log against a checkpoint remembered meanwhile: a
            // rollback or a fork, or, if its tiles could not be fetched, no
            // answer at all (a fetch failure, not a rollback).
            Err(NotRemembered::Log(e)) => return Err(e.into()),
        },
        None => {
            run.not_remembered =
                Some("not remembered: neither XDG_STATE_HOME nor HOME is set".into());
        }
    }
    if let Some(n) = &run.not_remembered {
        eprintln!("signet: {n}");
    }
    Ok(run)
}

/// What [`remember`] did.
enum Remembered {
    /// The new checkpoint is remembered in this file.
    Stored(PathBuf),
    /// A larger checkpoint, remembered by another run meanwhile, was kept.
    KeptNewer(u64),
}

/// Why [`remember`] did not remember.
enum NotRemembered {
    /// Local state could not be locked, read or written, or does not verify.
    State(AuditError),
    /// The log could not be shown to extend the checkpoint remembered
    /// meanwhile: a verification failure (rollback, fork), or the error
    /// that kept its tiles from being read.
    Log(AuditError),
}

/// Remembers the verified checkpoint, under the state lock, never going
/// backwards: if another run changed the remembered checkpoint since this
/// run read it, the new one replaces it only if the log is proven (from its
/// tiles) to extend it, and a larger one stays if it is proven to extend
/// this log; a log that cannot be shown to extend it is a rollback, unless
/// its tiles could not be fetched at all, which proves nothing either way.
fn remember(
    o: &Opened,
    state: &StateDir,
    seen: Option<&TrustedCheckpoint>,
) -> Result<Remembered, NotRemembered> {
    let new = &o.latest;
    let lock = state
        .lock(new.checkpoint.origin())
        .map_err(NotRemembered::State)?;
    let current = match lock.load().map_err(NotRemembered::State)? {
        Some(stored) => Some(
            open_remembered(o, &stored)
                .map_err(|e| NotRemembered::State(AuditError::BadInput(e.to_string())))?,
        ),
        None => None,
    };
    let store = |signed: &[u8]| {
        lock.store(signed)
            .map(Remembered::Stored)
            .map_err(NotRemembered::State)
    };
    match current {
        // Unchanged since this run verified against it (or nothing yet):
        // `verify_log` has shown the log extends it.
        None => store(&new.signed),
        Some(cur) if seen.is_some_and(|s| s.signed == cur.signed) => store(&new.signed),
        Some(cur) if cur.checkpoint.size() <= new.checkpoint.size() => {
            check_consistency(&*o.source, &cur.checkpoint, &new.checkpoint, "remembered")
                .map_err(NotRemembered::Log)?;
            store(&new.signed)
        }
        Some(cur) => {
            match check_consistency(&*o.source, &new.checkpoint, &cur.checkpoint, "remembered") {
                Ok(()) => Ok(Remembered::KeptNewer(cur.checkpoint.size())),
                Err(e @ AuditError::Verification(VerifyFailure::Inconsistent { .. })) => {
                    Err(NotRemembered::Log(e))
                }
                // The log's tiles could not be fetched (a network error, a
                // server error): nothing is known about the larger tree.
                Err(e) if e.class() == ErrorClass::Unavailable => Err(NotRemembered::Log(e)),
                // The log does not serve the tiles of the remembered size
                // (missing, malformed, not a proof): it is behind what this
                // auditor has verified.
                Err(_) => Err(NotRemembered::Log(
                    VerifyFailure::Rollback {
                        which: "remembered",
                        old: cur.checkpoint.size(),
                        new: new.checkpoint.size(),
                    }
                    .into(),
                )),
            }
        }
    }
}

fn b64(h: &Hash) -> String {
    STANDARD.encode(h)
}

/// The witness policy's outcome, for JSON output (`null` without
/// `--witnesses`).
fn witnesses_json(o: &Opened) -> Value {
    match &o.witnesses {
        Some((policy, cosigners)) => json!({
            "threshold": policy.threshold(),
            "witnesses": policy.witnesses().iter().map(|w| w.name()).collect::<Vec<_>>(),
            "cosigned_by": cosigners,
        }),
        None => Value::Null,
    }
}

/// The witness policy's outcome, as a line of text.
fn witnesses_line(o: &Opened) -> String {
    match &o.witnesses {
        Some((policy, cosigners)) => format!(
            "cosigned by {} (witness policy: {} of {})",
            cosigners.join(", "),
            policy.threshold(),
            policy.witnesses().len()
        ),
        None => "cosignatures not checked (no --witnesses)".to_owned(),
    }
}

fn checkpoint(a: CheckpointArgs) -> anyhow::Result<()> {
    let o = open(&a.log)?;
    let cp = &o.latest.checkpoint;
    let mut consistent = None;
    if let Some(r) = remembered(&o)? {
        check_consistency(&*o.source, &r.checkpoint, cp, "remembered")?;
        consistent = Some(r.checkpoint.size());
    }
    if a.json {
        let v = json!({
            "origin": cp.origin(),
            "size": cp.size(),
            "root_hash": b64(cp.root()),
            "key": o.latest.key,
            "consistent_with": consistent.map(|s| json!({"which": "remembered", "size": s})),
            "witnesses": witnesses_json(&o),
        });
        println!("{v}");
    } else {
        println!("origin: {}", cp.origin());
        println!("size: {}", cp.size());
        println!("root_hash: {}", b64(cp.root()));
        println!("key: {}", o.latest.key);
        println!("{}", witnesses_line(&o));
        match consistent {
            Some(s) => println!("consistent with the remembered checkpoint (size {s})"),
            None => {
                println!("no remembered checkpoint (run `signet audit verify` to remember one)")
            }
        }
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let o = open(&a.log)?;
    let run = full_verify(&o, a.since.as_deref(), a.log.quiet, &mut |_| Ok(()))?;
    let cp = &o.latest.checkpoint;
    let s = &run.summary;
    if a.json {
        let kinds: serde_json::Map<String, Value> = s
            .kinds
            .iter()
            .map(|(k, n)| (k.clone(), Value::from(*n)))
            .collect();
        let v = json!({
            "verified": true,
            "origin": cp.origin(),
            "size": cp.size(),
            "root_hash": b64(cp.root()),
            "entry_bundles": s.bundles,
            "hash_tiles": s.hash_tiles,
            "certificates": s.certificates,
            "kinds": kinds,
            "consistent_with": s.consistent_with.iter()
                .map(|(w, n)| json!({"which": w, "size": n})).collect::<Vec<_>>(),
            "remembered": run.remembered_at.as_ref().map(|p| p.display().to_string()),
            "witnesses": witnesses_json(&o),
        });
        println!("{v}");
    } else {
        println!(
            "verified {}: {} entries, root {}",
            cp.origin(),
            cp.size(),
            b64(cp.root())
        );
        println!(
            "  read {} entry bundles and {} hash tiles; {} certificates, no serial repeated",
            s.bundles, s.hash_tiles, s.certificates
        );
        if !s.kinds.is_empty() {
            let kinds: Vec<String> = s.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("  entries: {}", kinds.join(", "));
        }
        println!("  {}", witnesses_line(&o));
        for (which, n) in &s.consistent_with {
            println!("  extends the {which} checkpoint (size {n})");
        }
        if s.consistent_with.is_empty() {
            println!("  no earlier checkpoint to compare with (first verification of this log)");
        }
        if let Some(p) = &run.remembered_at {
            println!("  remembered in {}", p.display());
        }
    }
    Ok(())
}

fn actor_text(entry: &Entry) -> String {
    match &entry.actor {
        Actor::User {
            name, piv_device, ..
        } => match piv_device {
            Some(d) => format!(
                "user {name} (PIV device {}, PIN {:?}, touch {:?})",
                d.serial, d.pin_policy, d.touch_policy
            ),
            None => format!("user {name}"),
        },
        Actor::LocalAdmin { unix_user } => format!("local admin {unix_user}"),
        other => format!("{other:?}"),
    }
}

fn prove(a: ProveArgs) -> anyhow::Result<()> {
    let cert = certfile::read(&a.cert)?;
    let o = open(&a.log)?;
    let mut found: Option<(u64, Hash, Entry)> = None;
    full_verify(&o, None, a.log.quiet, &mut |v| {
        // The entry records the certificate itself, or (for a certificate
        // that carries its proof) its precertificate.
        if found.is_none()
            && v.entry
                .certificate
                .as_ref()
                .is_some_and(|c| cert.has_hash(&c.sha256.0))
        {
            found = Some((v.index, *v.leaf_hash, v.entry.clone()));
        }
        Ok(())
    })?;
    let cp = &o.latest.checkpoint;
    let Some((index, leaf, entry)) = found else {
        return Err(AuditError::from(VerifyFailure::NotLogged {
            sha256: hex::encode(cert.sha256),
            size: cp.size(),
        })
        .into());
    };
    // The hash matched; the entry must describe this very certificate.
    certificate_matches_entry(&cert.bytes, &entry).map_err(|e| {
        AuditError::from(VerifyFailure::Proof {
            what: format!("certificate against entry {index}"),
            reason: e.to_string(),
        })
    })?;
    let proof = check_inclusion(&*o.source, cp, index, &leaf)?;
    let carried = match &cert.proof {
        Some(text) => Some(check_carried_proof(&o, &cert, text, index)?),
        None => None,
    };
    if a.json {
        let v = json!({
            "index": index,
            "leaf_hash": hex::encode(leaf),
            "certificate_sha256": hex::encode(cert.sha256),
            "precertificate_sha256": cert.precertificate_sha256.map(hex::encode),
            "checkpoint": {"origin": cp.origin(), "size": cp.size(), "root_hash": b64(cp.root())},
            "inclusion_proof": proof.iter().map(b64).collect::<Vec<_>>(),
            "entry": entry_json(index, &leaf, &entry)?,
            "witnesses": witnesses_json(&o),
            "certificate_proof": carried.as_ref().map(|c| json!({
                "index": c.verified.index,
                "checkpoint_size": c.verified.checkpoint_size,
                "cosigned_by": c.verified.cosigners,
                "consistent_with_log": c.consistent,
            })),
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "certificate {} is entry {index} of {} (size {}, root {})",
        hex::encode(cert.sha256),
        cp.origin(),
        cp.size(),
        b64(cp.root())
    );
    println!("index: {index}");
    println!("leaf_hash: {}", hex::encode(leaf));
    println!("kind: {}", signet::audit::verify::kind_name(entry.kind));
    println!("time: {}", format_time(entry.time));
    println!("actor: {}", actor_text(&entry));
    if let Some(s) = &entry.subject {
        println!("subject: {s}");
    }
    if !entry.principals.is_empty() {
        println!("principals: {}", entry.principals.join(", "));
    }
    if !entry.roles.is_empty() {
        println!("roles: {}", entry.roles.join(", "));
    }
    if let Some(c) = &entry.certificate {
        println!("serial: {}", c.serial);
        println!("public_key: {}", c.public_key_fingerprint);
        println!(
            "valid: {} .. {}",
            format_time(c.not_before),
            format_time(c.not_after)
        );
    }
    println!(
        "inclusion proof: {} hashes, verified against the signed checkpoint",
        proof.len()
    );
    println!("{}", witnesses_line(&o));
    match &carried {
        Some(c) => {
            let cosigners = if c.verified.cosigners.is_empty() {
                "no witness".to_owned()
            } else {
                c.verified.cosigners.join(", ")
            };
            println!(
                "the certificate's own proof: verified (entry {}, checkpoint of size {} cosigned by {}{})",
                c.verified.index,
                c.verified.checkpoint_size,
                cosigners,
                if c.consistent {
                    ", which this log extends"
                } else {
                    "; newer than the log read, so not compared with it"
                }
            );
        }
        None => println!("the certificate carries no proof of logging"),
    }
    Ok(())
}

/// The proof a certificate carries, checked.
struct CarriedProof {
    verified: VerifiedCertificate,
    /// Whether the verified log was shown to extend the proof's checkpoint
    /// (false only when that checkpoint is newer than the log read).
    consistent: bool,
}

/// Verifies the proof a certificate carries, as a node would (the pinned
/// log key, and the witness policy if one was given), and that it is a
/// proof of the entry the verified log holds, against a checkpoint of this
/// log's history (not of a fork shown to someone else).
fn check_carried_proof(
    o: &Opened,
    cert: &certfile::CertBytes,
    text: &str,
    index: u64,
) -> anyhow::Result<CarriedProof> {
    let fail = |reason: String| -> anyhow::Error {
        AuditError::from(VerifyFailure::Proof {
            what: "the proof inside the certificate".into(),
            reason,
        })
        .into()
    };
    let trust = LogTrust {
        log_key: o.log_key.clone(),
        witnesses: o
            .witnesses
            .as_ref()
            .map_or_else(WitnessPolicy::none, |(p, _)| p.clone()),
    };
    let verified = match cert.format {
        certfile::CertFormat::OpenSsh => {
            ssh_certificate_from_bytes(&cert.bytes).and_then(|c| verify_ssh_certificate(&c, &trust))
        }
        certfile::CertFormat::X509 => verify_x509_certificate(&cert.bytes, &trust),
    }
    .map_err(|e| fail(e.to_string()))?;
    // Sorted: the note lists them in the order the witnesses answered.
    let mut verified = verified;
    verified.cosigners.sort();
    if verified.index != index {
        return Err(fail(format!(
            "it names entry {}, but the log records the certificate at entry {index}",
            verified.index
        )));
    }
    let parsed = CertificateProof::parse(text.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let carried = o
        .trust
        .open(parsed.checkpoint_note.as_bytes(), "the certificate's proof")
        .map_err(|e| fail(e.to_string()))?;
    let latest = &o.latest.checkpoint;
    let consistent = carried.checkpoint.size() <= latest.size();
    if consistent {
        check_consistency(
            &*o.source,
            &carried.checkpoint,
            latest,
            "certificate's proof",
        )?;
    }
    Ok(CarriedProof {
        verified,
        consistent,
    })
}

fn search(a: SearchArgs) -> anyhow::Result<()> {
    let filter = Filter {
        principal: a.principal.clone(),
        user: a.user.clone(),
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
        kinds: a
            .kind
            .iter()
            .map(|k| parse_kind(k))
            .collect::<Result<_, _>>()?,
    };
    let o = open(&a.log)?;
    let mut hits: Vec<(u64, Hash, Entry)> = Vec::new();
    full_verify(&o, None, a.log.quiet, &mut |v| {
        if filter.matches(v.entry) {
            hits.push((v.index, *v.leaf_hash, v.entry.clone()));
        }
        Ok(())
    })?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (index, leaf, entry) in &hits {
        if a.json {
            writeln!(out, "{}", entry_json(*index, leaf, entry)?)?;
        } else {
            writeln!(out, "{}", entry_line(*index, entry))?;
        }
    }
    out.flush()?;
    eprintln!(
        "signet: {} matching entries of {} verified",
        hits.len(),
        o.latest.checkpoint.size()
    );
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let ExportFormat::Jsonl = a.format;
    let o = open(&a.log)?;
    // Entries are spooled to an unnamed temporary file and released only once
    // the whole log verified.
    let spool = tempfile::tempfile().context("creating a temporary file")?;
    let mut w = BufWriter::new(spool);
    let mut write_err: Option<std::io::Error> = None;
    full_verify(&o, None, a.log.quiet, &mut |v| {
        let line = entry_json(v.index, v.leaf_hash, v.entry)?;
        if let Err(e) = writeln!(w, "{line}") {
            write_err.get_or_insert(e);
        }
        Ok(())
    })?;
    if let Some(e) = write_err {
        return Err(AuditError::Write {
            what: "temporary file".into(),
            reason: e.to_string(),
        }
        .into());
    }
    let mut spool = w.into_inner().map_err(|e| e.into_error())?;
    spool.rewind()?;
    let written = match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let fail = |e: std::io::Error| AuditError::Write {
                what: path.display().to_string(),
                reason: e.to_string(),
            };
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
            std::io::copy(&mut spool, &mut tmp).map_err(fail)?;
            tmp.as_file().sync_all().map_err(fail)?;
            tmp.persist(path).map_err(|e| fail(e.error))?;
            format!("to {}", path.display())
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            std::io::copy(&mut spool, &mut out)?;
            out.flush()?;
            "to standard output".to_owned()
        }
    };
    eprintln!(
        "signet: exported {} verified entries {written}",
        o.latest.checkpoint.size()
    );
    Ok(())
}
