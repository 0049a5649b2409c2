//! What witnesses cost an issuance: issued/s and p50/p99 latency of the
//! CA's full issuance path (request checks, precertificate logged and
//! durable, checkpoint signed by the log key and under the high-water
//! mark, released once the witness policy is met, final certificate signed
//! with the proof inside) with 0, 1 and 2 witnesses on loopback, in one run.
//!
//! ```sh
//! cargo build --release -p signet-ca -p signet-witness   # the binaries it runs
//! cargo run --release -p signet-ca --example cosign_bench -- --seconds 3
//! ```
//!
//! Setup, in a temporary directory: a SoftHSM2 token and a CA on it
//! (`signet-ca init`, the shipped example configuration: P-256 CA keys, an
//! Ed25519 log key, the high-water mark on the token), and two
//! `signet-witness serve` processes on loopback with key files, each told
//! the CA's log key. The issuance itself runs in this process, as
//! `signet-ca sign` does it (the library's store and authority), so the
//! figure is the CA's, without HTTP in front.
//!
//! Cases: no witnesses; one (policy 1 of 1); two (policy 2 of 2: the CA
//! waits for the slower of the two). Each case reopens the store with its
//! policy; the cases are interleaved over several rounds so drift in the
//! machine's load falls on all of them. Concurrent issuers share one batch
//! (group commit): one checkpoint, one round of witness requests.
//!
//! `--witness-state /dev/shm` puts the witnesses' state on tmpfs, to tell
//! their fsyncs (the disk's) from the protocol's cost.
//!
//! Output: one line per case and thread count on stdout,
//! `witnesses=N threads=T issue_per_s=… p50_ms=… p99_ms=…`, and the cost of
//! the witnesses against the same round without them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use signet_ca::authority::{local_admin, CertKind, RawRequest};
use signet_ca::ca_keys::CaKeys;
use signet_ca::config::Config;
use signet_ca::store::{CommitMode, LocalStore, StoreOptions};
use signet_log::note::VerifierKey;
use signet_log::witness::{Witness, WitnessPolicy};
use signet_testkit::child::{spawn_tied, Daemon};
use signet_testkit::SoftHsm;

#[derive(Parser)]
#[command(about = "Issuance with 0, 1 and 2 witnesses on loopback (SoftHSM2).")]
struct Args {
    /// Seconds measured per case and round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent issuers to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    threads: Vec<usize>,
    /// Rounds over all cases (interleaved).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The directory the witnesses' state directories go under (the disk
    /// their fsyncs hit): `.` by default, `/dev/shm` to take the disk out.
    #[arg(long, default_value = ".")]
    witness_state: PathBuf,
}

/// A binary next to this example's directory (`target/release/NAME`).
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target directory from {}", exe.display()))?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: `cargo build --release -p signet-ca -p signet-witness` first",
            path.display()
        );
    }
    Ok(path)
}

/// The shipped example configuration, pointed at the bench's token.
fn config_text(hsm: &SoftHsm) -> String {
    hsm.ca_config_from(include_str!("../../../deploy/signet-ca.example.toml"))
}

/// A `signet-witness serve` on a free loopback port, killed on drop.
struct WitnessProcess {
    _daemon: Daemon,
    name: String,
    url: String,
    vkey: String,
    _dir: tempfile::TempDir,
}

impl WitnessProcess {
    fn start(bin: &Path, parent: &Path, name: &str, origin: &str, log_vkey: &str) -> Result<Self> {
        let dir = tempfile::tempdir_in(parent)?;
        let port = signet_testkit::free_port();
        let config = dir.path().join("witness.toml");
        std::fs::write(
            &config,
            format!(
                "name = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
                 [key]\nfile = \"witness.key\"\n[[log]]\norigin = \"{origin}\"\nvkey = \"{log_vkey}\"\n"
            ),
        )?;
        let out = std::process::Command::new(bin)
            .args(["init", "--config"])
            .arg(&config)
            .output()?;
        if !out.status.success() {
            bail!(
                "signet-witness init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let vkey = String::from_utf8(out.stdout)?.trim().to_owned();
        let child = spawn_tied(
            bin.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?,
            &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
            |c| {
                c.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
            },
        )?;
        let daemon = Daemon::new(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("signet-witness {name} did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            _daemon: daemon,
            name: name.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
            vkey,
            _dir: dir,
        })
    }
}

/// One measured case.
struct Measured {
    per_s: f64,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

/// Issues OpenSSH user certificates from `threads` threads for `seconds`
/// with the store reopened under `policy`.
fn measure(
    config: &Config,
    keys: &CaKeys,
    policy: Option<WitnessPolicy>,
    threads: usize,
    seconds: f64,
    public_key: &[u8],
) -> Result<Measured> {
    let mut config = config.clone();
    config.witnesses = policy;
    let (signer, mark) = keys.log_signer(&config)?;
    let witnesses = signet_ca::store::witnessing::from_config(&config, signer.verifier())?;
    let store = Arc::new(LocalStore::open(StoreOptions {
        path: config.store_path(),
        origin: config.log_origin(),
        signer: signer.clone(),
        verifier: signer.verifier().clone(),
        mark,
        mode: CommitMode::Group,
        witnesses,
    })?);
    let authority = Arc::new(keys.authority(config, store.clone())?);
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (authority, stop, latencies) = (authority.clone(), stop.clone(), latencies.clone());
            let public_key = public_key.to_vec();
            std::thread::spawn(move || -> Result<usize> {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let approved = authority.approve(RawRequest {
                        kind: CertKind::SshUser,
                        user: Some(format!("bench-{t}")),
                        principals: vec!["root".into()],
                        ttl: "1h".into(),
                        public_key: public_key.clone(),
                    })?;
                    authority.issue(approved, local_admin())?;
                    mine.push(began.elapsed());
                }
                let n = mine.len();
                latencies
                    .lock()
                    .map_err(|_| anyhow!("poisoned"))?
                    .extend(mine);
                Ok(n)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| anyhow!("an issuer panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(authority);
    drop(store);
    let mut latencies = std::mem::take(&mut *latencies.lock().map_err(|_| anyhow!("poisoned"))?);
    latencies.sort();
    Ok(Measured {
        per_s: total as f64 / elapsed,
        latencies,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ca_bin = sibling("signet-ca")?;
    let witness_bin = sibling("signet-witness")?;
    let hsm = SoftHsm::create("cosign-bench");
    let config_path = hsm.dir().join("signet-ca.toml");
    std::fs::write(&config_path, config_text(&hsm))?;
    let run = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new(&ca_bin)
            .env("SOFTHSM2_CONF", hsm.conf())
            .arg("--config")
            .arg(&config_path)
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
    run(&["init"])?;
    let export = hsm.dir().join("export");
    let log_vkey = run(&[
        "log",
        "export",
        export.to_str().ok_or_else(|| anyhow!("path"))?,
    ])?
    .trim()
    .to_owned();
    let origin = VerifierKey::parse(&log_vkey)?.name().to_owned();
    let witnesses = [
        WitnessProcess::start(
            &witness_bin,
            &args.witness_state,
            "witness-a.bench",
            &origin,
            &log_vkey,
        )?,
        WitnessProcess::start(
            &witness_bin,
            &args.witness_state,
            "witness-b.bench",
            &origin,
            &log_vkey,
        )?,
    ];
    let policy = |n: usize| -> Result<Option<WitnessPolicy>> {
        if n == 0 {
            return Ok(None);
        }
        let list = witnesses[..n]
            .iter()
            .map(|w| {
                Ok(Witness::new(
                    &w.name,
                    Some(&w.url),
                    VerifierKey::parse(&w.vkey)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(WitnessPolicy::new(n, list)?))
    };

    let config = Config::load(&config_path)?;
    let keys = CaKeys::open(&config)?;
    let public_key =
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF3pmztnLx/vadXQ0fCYydshpmgxp6t7TQ0xOs4/GHw6 bench@signet"
            .to_vec();

    // (witnesses, threads) -> every round's measurement.
    let mut results: Vec<((usize, usize), Vec<Measured>)> = Vec::new();
    for round in 0..args.rounds {
        for &threads in &args.threads {
            for n in [0usize, 1, 2] {
                let m = measure(
                    &config,
                    &keys,
                    policy(n)?,
                    threads,
                    args.seconds,
                    &public_key,
                )?;
                eprintln!(
                    "round {round} witnesses={n} threads={threads}: {:.1}/s p50 {:.2} ms p99 {:.2} ms ({} issued)",
                    m.per_s,
                    percentile(&m.latencies, 0.5),
                    percentile(&m.latencies, 0.99),
                    m.latencies.len()
                );
                match results.iter_mut().find(|(k, _)| *k == (n, threads)) {
                    Some((_, v)) => v.push(m),
                    None => results.push(((n, threads), vec![m])),
                }
            }
        }
    }
    // All rounds pooled per case.
    let pooled = |n: usize, threads: usize| -> (f64, Vec<Duration>) {
        let runs = &results.iter().find(|(k, _)| *k == (n, threads)).unwrap().1;
        let per_s = runs.iter().map(|m| m.per_s).sum::<f64>() / runs.len() as f64;
        let mut all: Vec<Duration> = runs.iter().flat_map(|m| m.latencies.clone()).collect();
        all.sort();
        (per_s, all)
    };
    for &threads in &args.threads {
        let (base_per_s, base) = pooled(0, threads);
        for n in [0usize, 1, 2] {
            let (per_s, lat) = pooled(n, threads);
            println!(
                "witnesses={n} threads={threads} issue_per_s={per_s:.1} p50_ms={:.2} p99_ms={:.2} issued={} \
                 cost_p50_ms={:.2} cost_p99_ms={:.2} throughput_ratio={:.2}",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                lat.len(),
                percentile(&lat, 0.5) - percentile(&base, 0.5),
                percentile(&lat, 0.99) - percentile(&base, 0.99),
                per_s / base_per_s
            );
        }
    }
    Ok(())
}
