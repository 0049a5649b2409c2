//! The CA on PostgreSQL against the embedded store, signing in the HSM:
//! issued certificates per second and log append latency (p50/p99) with
//! the embedded store (redb), one replica on PostgreSQL, and two replicas
//! on the same database, in one run, with the same SoftHSM2 keys.
//!
//! ```sh
//! cargo build --release -p signet-ca          # the binary it runs
//! cargo run --release -p signet-ca --example pg_bench -- --seconds 3
//! ```
//!
//! Setup, in a temporary directory: a SoftHSM2 token and a CA on it
//! (`signet-ca init`, the shipped example configuration: P-256 CA keys, an
//! Ed25519 log key), a PostgreSQL cluster of its own (`initdb` on a
//! loopback port, `fsync = on`), the CA's log copied into it with `signet-ca
//! store copy`. The embedded log keeps its high-water mark on the token;
//! the database's log a file mark of its own (`log adopt-mark`), so the two
//! logs can both grow in one run.
//!
//! Two measurements per case, in this process as `signet-ca sign` does
//! them (the library's store and authority, no HTTP):
//! - issuance: OpenSSH user certificates signed by the HSM's user CA key,
//!   each logged and durable under a checkpoint signed by the HSM's log key
//!   before it is returned;
//! - appends: small entries appended straight to the store, each durable
//!   under an HSM-signed checkpoint (the log alone, without certificate
//!   signing).
//!
//! Two replicas are two stores (each its own writer, connections, log-key
//! session) in this process, the threads split between them. The cases are
//! interleaved over rounds so drift in the machine's load falls on all.
//! Output: one line per case, `case=… issue_per_s=… append_p50_ms=…
//! append_p99_ms=…`, and each against the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use signet_ca::authority::{local_admin, CertKind, RawRequest};
use signet_ca::ca_keys::CaKeys;
use signet_ca::config::Config;
use signet_ca::store::configured::{open, OpenKind};
use signet_ca::store::LogStore;
use signet_log::entry::{Actor, Change, Entry, EntryKind, Sha256Hex};
use signet_testkit::{Postgres, SoftHsm};

#[derive(Parser)]
#[command(about = "Issuance and appends: embedded vs PostgreSQL (1 and 2 replicas), SoftHSM2.")]
struct Args {
    /// Seconds measured per case, kind and round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent issuers (or appenders), split over the replicas.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Rounds over all cases (interleaved).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// `target/<profile>/signet-ca`, next to this example's directory.
fn signet_ca_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target directory"))?
        .join("signet-ca");
    if !path.exists() {
        bail!("{} is missing: build signet-ca first", path.display());
    }
    Ok(path)
}

/// The cases, in the order they run each round.
const CASES: [(&str, usize); 3] = [
    ("embedded", 0),
    ("postgres-1-replica", 1),
    ("postgres-2-replicas", 2),
];

/// A case's stores: the embedded one, or `replicas` PostgreSQL replicas.
fn stores(
    embedded: &Config,
    pg: &Config,
    keys: &CaKeys,
    replicas: usize,
) -> Result<Vec<(Config, Arc<dyn LogStore>)>> {
    let configs: Vec<Config> = match replicas {
        0 => vec![embedded.clone()],
        n => (0..n)
            .map(|r| {
                let mut config = pg.clone();
                config.store.replica = Some(format!("bench-{r}"));
                config
            })
            .collect(),
    };
    configs
        .into_iter()
        .map(|config| {
            let (signer, mark) = keys.log_signer(&config)?;
            let store = open(
                &config,
                signer.clone(),
                signer.verifier().clone(),
                mark,
                None,
                OpenKind::Existing,
            )?;
            Ok((config, store))
        })
        .collect()
}

/// Runs `job` from `threads` threads (thread `t` on `targets[t % len]`)
/// for `seconds`; returns the completed jobs per second and every job's
/// latency, sorted.
fn drive<T: Send + Sync + 'static>(
    targets: Vec<Arc<T>>,
    threads: usize,
    seconds: f64,
    job: impl Fn(&T, u64) -> Result<()> + Send + Sync + 'static,
) -> Result<(f64, Vec<Duration>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let job = Arc::new(job);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let target = targets[t % targets.len()].clone();
            let (stop, counter, latencies, job) = (
                stop.clone(),
                counter.clone(),
                latencies.clone(),
                job.clone(),
            );
            std::thread::spawn(move || -> Result<()> {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    job(&target, counter.fetch_add(1, Ordering::Relaxed))?;
                    mine.push(began.elapsed());
                }
                latencies
                    .lock()
                    .map_err(|_| anyhow!("poisoned"))?
                    .extend(mine);
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().map_err(|_| anyhow!("a worker panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().map_err(|_| anyhow!("poisoned"))?);
    latencies.sort();
    Ok((latencies.len() as f64 / elapsed, latencies))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

/// A small log entry (an invite by its hash, nothing that issues).
fn bench_entry(n: u64) -> Entry {
    let mut token = [0u8; 32];
    token[..8].copy_from_slice(&n.to_be_bytes());
    token[8] = 0xbe;
    Entry {
        kind: EntryKind::Invite,
        time: 1_700_000_000 + n,
        actor: Actor::LocalAdmin {
            unix_user: "bench".into(),
        },
        request_hash: None,
        subject: Some(format!("bench-{n}")),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: None,
        change: Some(Change::Invite {
            token_sha256: Sha256Hex(token),
            expires: 1_800_000_000,
        }),
    }
}

#[derive(Default)]
struct Pooled {
    issue_per_s: Vec<f64>,
    issue: Vec<Duration>,
    append_per_s: Vec<f64>,
    append: Vec<Duration>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ca_bin = signet_ca_binary()?;
    let hsm = SoftHsm::create("pg-bench");
    let text = hsm.ca_config_from(include_str!("../../../deploy/signet-ca.example.toml"));
    let run = |config: &Path, args: &[&str]| -> Result<String> {
        let out = std::process::Command::new(&ca_bin)
            .env("SOFTHSM2_CONF", hsm.conf())
            .arg("--config")
            .arg(config)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "signet-ca {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    };
    let embedded_path = hsm.dir().join("signet-ca.toml");
    std::fs::write(&embedded_path, &text)?;
    run(&embedded_path, &["init"])?;

    let mut pg = Postgres::start();
    let db = pg.create_database();
    let url = pg.url(&db);
    let store_section = format!(
        "\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npassword_file = \"{}\"\n",
        pg.password_file().display()
    );
    let pg_path = hsm.dir().join("signet-ca-postgres.toml");
    std::fs::write(&pg_path, format!("{text}{store_section}"))?;
    let data = hsm.dir().join("data");
    run(
        &pg_path,
        &[
            "store",
            "copy",
            "--from",
            data.to_str().ok_or_else(|| anyhow!("path"))?,
            "--to",
            &format!("postgres:{url}"),
        ],
    )?;
    // From here on the database's log has a mark of its own, in a file.
    let mark = hsm.dir().join("pg-mark");
    let pg_text = text.replace(
        "high_water = \"token\"",
        &format!("high_water = \"{}\"", mark.display()),
    );
    if pg_text == text {
        bail!("the example configuration no longer sets high_water = \"token\"");
    }
    std::fs::write(&pg_path, format!("{pg_text}{store_section}"))?;
    run(&pg_path, &["log", "adopt-mark"])?;

    let embedded = Config::load(&embedded_path)?;
    let postgres = Config::load(&pg_path)?;
    let keys = CaKeys::open(&embedded)?;
    let public_key =
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF3pmztnLx/vadXQ0fCYydshpmgxp6t7TQ0xOs4/GHw6 bench@signet"
            .to_vec();

    let mut results: Vec<Pooled> = CASES.iter().map(|_| Pooled::default()).collect();
    for round in 0..args.rounds {
        for (case, (name, replicas)) in CASES.iter().enumerate() {
            // Issuance through the HSM.
            let opened = stores(&embedded, &postgres, &keys, *replicas)?;
            let authorities = opened
                .iter()
                .map(|(config, store)| Ok(Arc::new(keys.authority(config.clone(), store.clone())?)))
                .collect::<Result<Vec<_>>>()?;
            let key = public_key.clone();
            let (issue_per_s, issue) = drive(
                authorities,
                args.threads,
                args.seconds,
                move |authority, n| {
                    let approved = authority.approve(RawRequest {
                        kind: CertKind::SshUser,
                        user: Some(format!("bench-{n}")),
                        principals: vec!["root".into()],
                        ttl: "1h".into(),
                        public_key: key.clone(),
                    })?;
                    authority.issue(approved, local_admin())?;
                    Ok(())
                },
            )?;
            // Appends alone, checkpoints signed by the HSM's log key.
            let stores: Vec<Arc<Arc<dyn LogStore>>> = opened
                .into_iter()
                .map(|(_, store)| Arc::new(store))
                .collect();
            let (append_per_s, append) = drive(stores, args.threads, args.seconds, |store, n| {
                store.append(&bench_entry(n), None)?;
                Ok(())
            })?;
            eprintln!(
                "round {round} {name}: issue {issue_per_s:.1}/s (p50 {:.2} ms, p99 {:.2} ms); \
                 append {append_per_s:.1}/s (p50 {:.2} ms, p99 {:.2} ms)",
                percentile(&issue, 0.5),
                percentile(&issue, 0.99),
                percentile(&append, 0.5),
                percentile(&append, 0.99),
            );
            let pooled = &mut results[case];
            pooled.issue_per_s.push(issue_per_s);
            pooled.issue.extend(issue);
            pooled.append_per_s.push(append_per_s);
            pooled.append.extend(append);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    for pooled in &mut results {
        pooled.issue.sort();
        pooled.append.sort();
    }
    let base_issue = mean(&results[0].issue_per_s);
    let base_append_p50 = percentile(&results[0].append, 0.5);
    let base_append_p99 = percentile(&results[0].append, 0.99);
    for ((name, _), pooled) in CASES.iter().zip(&results) {
        let issue_per_s = mean(&pooled.issue_per_s);
        let (p50, p99) = (
            percentile(&pooled.append, 0.5),
            percentile(&pooled.append, 0.99),
        );
        println!(
            "case={name} threads={} issue_per_s={issue_per_s:.1} issue_p50_ms={:.2} \
             issue_p99_ms={:.2} append_per_s={:.1} append_p50_ms={p50:.2} append_p99_ms={p99:.2} \
             issue_ratio_vs_embedded={:.2} append_p50_ratio={:.2} append_p99_ratio={:.2}",
            args.threads,
            percentile(&pooled.issue, 0.5),
            percentile(&pooled.issue, 0.99),
            mean(&pooled.append_per_s),
            issue_per_s / base_issue,
            p50 / base_append_p50,
            p99 / base_append_p99,
        );
    }
    drop(pg);
    Ok(())
}
