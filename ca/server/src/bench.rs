//! `signet-ca bench`: issued certificates per second against raw token
//! signatures per second, measured in the same run on the same session pool.
//!
//! Signing inside the HSM is the physical limit; everything around it
//! (profile, serial, encoding, durable storage) should be nearly free, so the
//! ratio should be close to 1.
//!
//! The benchmark never signs with the CA's own keys: every certificate it
//! makes would be an unlogged issuance by a trusted key. It uses bench keys
//! of the same types on the same token (labels `signet-bench-<type>`,
//! generated once, trusted by nothing) and a scratch store in the data
//! directory's filesystem, deleted afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signet_hsm::{KeyAlgorithm, KeyRef, RsaHash, SshSigner, Token, X509Signer};

use crate::authority::{Authority, CertKind, RawRequest};
use crate::config::Config;
use crate::keys::KeyRole;
use crate::log_signer::LogSigner;
use crate::store::{CommitMode, LocalStore, StoreOptions, TokenMark};
use crate::{x509, Error, Result};

/// One measured case.
#[derive(Debug, Clone)]
pub struct BenchLine {
    /// Key type.
    pub key: KeyAlgorithm,
    /// Sessions in the pool.
    pub sessions: usize,
    /// Raw token signatures per second.
    pub raw_sign_per_s: f64,
    /// Certificates issued per second through the full path.
    pub issue_per_s: f64,
    /// The CA's own CPU time per certificate: process CPU per issuance
    /// minus process CPU per raw signature in the same run (the token runs
    /// in this process too, so this removes its share), in microseconds.
    pub ca_cpu_us_per_cert: f64,
}

impl BenchLine {
    /// issue / raw.
    pub fn ratio(&self) -> f64 {
        if self.raw_sign_per_s > 0.0 {
            self.issue_per_s / self.raw_sign_per_s
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for BenchLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "key={} sessions={} raw_sign_per_s={:.1} issue_per_s={:.1} ratio={:.3} ca_cpu_us_per_cert={:.1}",
            self.key,
            self.sessions,
            self.raw_sign_per_s,
            self.issue_per_s,
            self.ratio(),
            self.ca_cpu_us_per_cert
        )
    }
}

/// A fixed client key for the issued certificates.
const CLIENT_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF3pmztnLx/vadXQ0fCYydshpmgxp6t7TQ0xOs4/GHw6 bench@signet";

/// What one measurement saw.
struct Measured {
    per_second: f64,
    /// Process CPU seconds per completed job.
    cpu_per_job: f64,
}

/// CPU time (user + system) of this whole process so far, in seconds, from
/// /proc/self/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn process_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| Error::File {
        path: "/proc/self/stat".into(),
        reason: e.to_string(),
    })?;
    // The command name (field 2) may hold spaces; the fields after it don't.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the name: field 3 is index 0, so utime (14) is 11, stime (15) 12.
    Ok((ticks(11) + ticks(12)) as f64 / 100.0)
}

/// Runs `job` from `clients` threads for `duration`; returns completions per
/// second and the process CPU per completion.
fn measure(
    clients: usize,
    duration: Duration,
    job: impl Fn() -> Result<()> + Sync,
) -> Result<Measured> {
    let cpu_before = process_cpu_seconds()?;
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let failure = std::sync::Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    match job() {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds()? - cpu_before;
    if let Some(err) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    let jobs = done.load(Ordering::Relaxed).max(1) as f64;
    Ok(Measured {
        per_second: jobs / elapsed,
        cpu_per_job: cpu / jobs,
    })
}

fn bench_key(token: &Token, algorithm: KeyAlgorithm) -> Result<KeyRef> {
    let label = format!("signet-bench-{algorithm}");
    match token.find_key(&label, algorithm)? {
        Some(key) => Ok(key),
        None => Ok(token.generate_key(&label, algorithm)?),
    }
}

/// Measures every key type the configuration uses, at one session and at
/// the configured pool size (or `sessions` if given), with
/// `clients_per_session` requests in flight per session. `progress` is told
/// about each case before it runs.
pub fn run(
    config: &Config,
    seconds: f64,
    sessions: Option<usize>,
    clients_per_session: usize,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BenchLine>> {
    let duration = Duration::from_secs_f64(seconds.max(0.2));
    let pool = sessions.unwrap_or(config.hsm.sessions.get()).max(1);
    let mut session_counts = vec![1];
    if pool > 1 {
        session_counts.push(pool);
    }
    let mut algorithms: Vec<KeyAlgorithm> = Vec::new();
    let probe = Token::open(&config.token_config()?)?;
    let log_algorithm = KeyRole::LogKey.algorithm(config, &probe);
    for role in KeyRole::ALL {
        let algorithm = role.algorithm(config, &probe);
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::File {
        path: config.data_dir.clone(),
        reason: e.to_string(),
    })?;
    let scratch = tempfile::Builder::new()
        .prefix(".bench-")
        .tempdir_in(&config.data_dir)
        .map_err(|e| Error::File {
            path: config.data_dir.clone(),
            reason: e.to_string(),
        })?;

    let mut lines = Vec::new();
    for sessions in session_counts {
        let mut token_config = config.token_config()?;
        token_config.sessions =
            std::num::NonZeroUsize::new(sessions).unwrap_or(std::num::NonZeroUsize::MIN);
        let token = Token::open(&token_config)?;
        // Enough requests in flight to keep every session busy while others
        // wait for the group flush.
        let clients = (clients_per_session * sessions).clamp(1, 4096);
        for &algorithm in &algorithms {
            progress(&format!(
                "key={algorithm} sessions={sessions}: measuring for {:.0} s…",
                2.0 * duration.as_secs_f64()
            ));
            let key = bench_key(&token, algorithm)?;
            let input = match algorithm {
                KeyAlgorithm::EcdsaP256 => vec![0x5a; 32],
                KeyAlgorithm::EcdsaP384 => vec![0x5a; 48],
                _ => vec![0x5a; 256],
            };
            let warm = Duration::from_millis(200);
            let raw_job = || {
                token
                    .sign_prepared(&key, input.clone(), RsaHash::Sha512)
                    .wait()
                    .map(|_| ())
                    .map_err(Error::from)
            };
            measure(clients, warm, raw_job)?;
            let raw = measure(clients, duration, raw_job)?;

            let store_dir = scratch.path().join(format!("{algorithm}-{sessions}.redb"));
            let log_key = bench_key(&token, log_algorithm)?;
            // The high-water mark where the CA keeps it, on the token in a
            // session of its own, under a label of this run's own (removed
            // at the end).
            let mark = Arc::new(TokenMark::new(
                crate::log_signer::dedicated_token(config)?,
                &format!("bench-{}/signet-log", std::process::id()),
            ));
            token.destroy_data_objects(mark.label())?;
            let log_signer = Arc::new(LogSigner::new(
                crate::log_signer::dedicated_token(config)?,
                log_key,
                "bench/signet-log",
            )?);
            let store = Arc::new(LocalStore::create(StoreOptions {
                path: store_dir.clone(),
                origin: "bench/signet-log".into(),
                verifier: log_signer.verifier().clone(),
                signer: log_signer,
                mark: mark.clone(),
                mode: CommitMode::Group,
                witnesses: None,
            })?);
            let x509_signer = X509Signer::new(token.clone(), key.clone());
            let root = x509::create_root(
                &x509_signer,
                "Signet Bench Root",
                "Signet Bench",
                Duration::from_secs(86400),
            )?;
            let authority = Authority::from_parts(
                config.clone(),
                SshSigner::new(token.clone(), key.clone())?,
                SshSigner::new(token.clone(), key.clone())?,
                x509_signer,
                root,
                store,
            );
            let actor = signet_log::entry::Actor::LocalAdmin {
                unix_user: "signet-ca bench".into(),
            };
            let issue_job = || {
                let request = authority.approve(RawRequest {
                    kind: CertKind::SshUser,
                    user: Some("bench".into()),
                    principals: vec!["bench".into()],
                    ttl: "1h".into(),
                    public_key: CLIENT_KEY.as_bytes().to_vec(),
                })?;
                authority.issue(request, actor.clone()).map(|_| ())
            };
            measure(clients, warm, issue_job)?;
            let issue = measure(clients, duration, issue_job);
            drop(authority);
            token.destroy_data_objects(mark.label())?;
            let issue = issue?;
            lines.push(BenchLine {
                key: algorithm,
                sessions,
                raw_sign_per_s: raw.per_second,
                issue_per_s: issue.per_second,
                ca_cpu_us_per_cert: (issue.cpu_per_job - raw.cpu_per_job) * 1e6,
            });
        }
    }
    Ok(lines)
}
