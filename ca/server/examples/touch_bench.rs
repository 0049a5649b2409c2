//! End-to-end issuance with a touch over HTTPS on loopback: issued/s and
//! p50/p99 latency of `POST /v1/certs/begin` + `/v1/certs/finish` at 1 and
//! 2 concurrent clients, beside the raw signing rate of the same SoftHSM2
//! token measured in the same run.
//!
//! ```sh
//! cargo build --release -p signet-ca          # the daemon, run from target/release
//! cargo run --release -p signet-ca --example touch_bench -- --seconds 5
//! ```
//!
//! What it sets up, in a temporary directory: a SoftHSM2 token, a CA on it
//! (`signet-ca init`), roles with one user per client (each finish holds a
//! per-user lock, so separate users keep that from capping the clients),
//! `signet-ca serve` over HTTPS, one software security key
//! (webauthn-authenticator-rs' soft token) enrolled per user through
//! `/v1/enroll`, and one attested P-256 PIV key per client under a test
//! device root. The configuration raises `[limits] per_user_per_minute` and
//! `per_source_per_minute` so the rate limits do not throttle the
//! measurement; everything else is the shipped example configuration (P-256
//! CA keys, Ed25519 log key, high-water mark on the token).
//!
//! Each client is a thread with its own keep-alive HTTPS connection (ureq,
//! trusting only the CA's root). One issuance is begin (request checks and
//! the PIV attestation chain), the soft token's assertion (in this process:
//! its cost is part of the latency, and printed on its own), and finish
//! (assertion check, both certificates signed in the token and verified,
//! their log entries durable and under the high-water mark). Every response
//! is checked for both certificates.
//!
//! The raw rate is a loop of token signatures (`sign_prepared`, as
//! `signet-ca bench` measures it) with a bench key on the same token, from
//! as many threads as there are clients, while the daemon is idle.
//!
//! Output: one line per configuration on stdout,
//! `key=ecdsa-p256 clients=N issue_per_s=… p50_ms=… p99_ms=… raw_sign_per_s=… ratio=…`;
//! phases, CPU per issuance and the saturated raw rate on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::Parser;
use der::Encode as _;
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate as _;
use serde_json::{json, Value};
use signet_firmware_tests::attest::{attest_slot, AttestationRoot, AttestedFacts};
use signet_firmware_tests::keys::{Algorithm, PrivateKey};
use signet_hsm::{KeyAlgorithm, RsaHash, Token};
use signet_testkit::SoftHsm;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// The WebAuthn origin and rp id of the bench CA.
const ORIGIN: &str = "https://localhost:8441";

#[derive(Parser)]
#[command(
    about = "End-to-end touch issuance over HTTPS against `signet-ca serve` on SoftHSM2.",
    long_about = "End-to-end touch issuance over HTTPS against `signet-ca serve` on SoftHSM2.\n\n\
                  Runs target/release/signet-ca (next to this example's own directory): \
                  run `cargo build --release -p signet-ca` first."
)]
struct Args {
    /// Seconds measured per configuration (issuance and raw signing each).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Client counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    clients: Vec<usize>,
    /// The signet-ca binary (default: next to this example's directory).
    #[arg(long)]
    signet_ca: Option<PathBuf>,
    /// Where the log's high-water mark lives: "token" (the shipped default,
    /// a data object on SoftHSM2) or "file" (a file outside the data
    /// directory), to show what the token's data-object write costs.
    #[arg(long, default_value = "token", value_parser = ["token", "file"])]
    high_water: String,
}

/// `target/release/signet-ca` for `target/release/examples/touch_bench`.
fn default_signet_ca() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target directory from {}", exe.display()))?;
    Ok(profile_dir.join("signet-ca"))
}

/// The CA on its token, driven through the binary.
struct Ca {
    bin: PathBuf,
    hsm: SoftHsm,
    config: PathBuf,
}

impl Ca {
    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.env("SOFTHSM2_CONF", self.hsm.conf())
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.command().args(args).output()?;
        if !out.status.success() {
            bail!(
                "signet-ca {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.hsm.dir().join(name)
    }
}

/// The shipped example configuration, pointed at the bench's token, port
/// and roots, with the rate limits raised out of the way.
fn config_text(hsm: &SoftHsm, port: u16, metrics_port: u16, file_mark: bool) -> String {
    let mark = if file_mark {
        format!(
            "high_water = \"{}\"",
            hsm.dir().join("mark").join("high-water").display()
        )
    } else {
        "high_water = \"token\"".to_owned()
    };
    let replacements = [
        ("high_water = \"token\"".to_owned(), mark),
        (
            "listen = \"127.0.0.1:8441\"".to_owned(),
            format!("listen = \"127.0.0.1:{port}\""),
        ),
        (
            "# metrics_listen = \"127.0.0.1:9441\"".to_owned(),
            format!("metrics_listen = \"127.0.0.1:{metrics_port}\""),
        ),
        (
            "rp_id = \"ca.example.com\"".to_owned(),
            "rp_id = \"localhost\"".to_owned(),
        ),
        (
            "origin = \"https://ca.example.com\"".to_owned(),
            format!("origin = \"{ORIGIN}\""),
        ),
        (
            "yubico = true".to_owned(),
            format!(
                "yubico = false\nroots = [\"{}\"]",
                hsm.dir().join("piv-roots.pem").display()
            ),
        ),
        // The bench's own: rate limits far above what it reaches.
        (
            "per_user_per_minute = 20".to_owned(),
            "per_user_per_minute = 100000000".to_owned(),
        ),
        (
            "per_source_per_minute = 120".to_owned(),
            "per_source_per_minute = 100000000".to_owned(),
        ),
    ];
    let mut text = hsm.ca_config_from(include_str!("../../../deploy/signet-ca.example.toml"));
    for (from, to) in replacements {
        assert!(
            text.contains(&from),
            "the example configuration has no {from:?}"
        );
        text = text.replace(&from, &to);
    }
    // The security keys' attestation roots: the soft tokens' CAs only.
    let fido_roots = format!(
        "attestation_roots = [\"{}\"]",
        hsm.dir().join("fido-roots.pem").display()
    );
    let mut replaced = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("attestation_roots = [") {
                replaced = true;
                fido_roots.clone()
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(
        replaced,
        "the example configuration has no [webauthn] attestation_roots"
    );
    lines.join("\n") + "\n"
}

/// Roles: one user per client, each allowed `ubuntu` with a touch.
fn roles(clients: usize) -> String {
    let mut text = String::from(
        "kind: role\nname: bench\nallow:\n  logins: [ubuntu]\n  node_labels: { env: [dev] }\n\
         options:\n  max_session_ttl: 8h\n  hardware_key: touch\n  session_mfa: false\n",
    );
    for i in 0..clients {
        text.push_str(&format!(
            "---\nkind: user\nname: bench{i}\nroles: [bench]\n"
        ));
    }
    text
}

/// A free loopback port.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An HTTPS client trusting only the CA's root; one keep-alive connection.
fn agent(root_der: &[u8]) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_der(root_der).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<(u16, Value)> {
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(serde_json::to_vec(body)?.as_slice())?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// One client: its user, security key, attested PIV key and connection.
struct Client {
    user: String,
    token: SoftToken,
    request: Value,
    agent: ureq::Agent,
    base: String,
}

/// What one issuance cost, in seconds.
#[derive(Clone, Copy, Default)]
struct Timing {
    total: f64,
    begin: f64,
    assertion: f64,
    finish: f64,
}

impl Client {
    /// begin + the soft token's assertion + finish; fails unless both
    /// certificates came back.
    fn login(&mut self) -> Result<Timing> {
        let t0 = Instant::now();
        let (status, begun) = post(
            &self.agent,
            &format!("{}/v1/certs/begin", self.base),
            &self.request,
        )?;
        if status != 200 {
            bail!("begin for {}: {status} {begun}", self.user);
        }
        let t1 = Instant::now();
        let options: RequestChallengeResponse = serde_json::from_value(begun["webauthn"].clone())?;
        let assertion = self
            .token
            .do_authentication(Url::parse(ORIGIN)?, options)
            .map_err(|e| anyhow!("soft token assertion: {e:?}"))?;
        let body = json!({ "ceremony": begun["ceremony"], "assertion": assertion });
        let t2 = Instant::now();
        let (status, done) = post(
            &self.agent,
            &format!("{}/v1/certs/finish", self.base),
            &body,
        )?;
        let t3 = Instant::now();
        if status != 200 {
            bail!("finish for {}: {status} {done}", self.user);
        }
        let ssh = done["ssh"]["certificate"].as_str().unwrap_or_default();
        let x509 = done["x509"]["certificate_pem"].as_str().unwrap_or_default();
        if !ssh.contains("-cert-v01@openssh.com") || !x509.contains("BEGIN CERTIFICATE") {
            bail!("finish for {} returned no certificates: {done}", self.user);
        }
        Ok(Timing {
            total: (t3 - t0).as_secs_f64(),
            begin: (t1 - t0).as_secs_f64(),
            assertion: (t2 - t1).as_secs_f64(),
            finish: (t3 - t2).as_secs_f64(),
        })
    }
}

/// CPU seconds (user + system) of a process so far, from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The value at quantile `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(seconds: f64) -> f64 {
    seconds * 1e3
}

/// Raw token signatures per second from `threads` threads for `duration`.
fn raw_sign_rate(
    token: &Token,
    key: &signet_hsm::KeyRef,
    threads: usize,
    duration: Duration,
) -> Result<f64> {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    match token
                        .sign_prepared(key, vec![0x5a; 32], RsaHash::Sha512)
                        .wait()
                    {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failed.store(true, Ordering::Relaxed);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    if failed.load(Ordering::Relaxed) {
        bail!("a raw token signature failed");
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The daemon's metric `name` (sum and count of a histogram).
fn histogram(metrics: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}_{suffix}")))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("sum"), value("count"))
}

fn scrape(metrics_port: u16) -> String {
    ureq::get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match args.signet_ca {
        Some(path) => path,
        None => default_signet_ca()?,
    };
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release -p signet-ca` first (or pass --signet-ca)",
            bin.display()
        );
    }
    let max_clients = args.clients.iter().copied().max().unwrap_or(1).max(1);
    let duration = Duration::from_secs_f64(args.seconds.max(0.5));
    eprintln!(
        "load average before set-up: {}; high-water mark: {}",
        load_average(),
        args.high_water
    );

    // The token (this process's SOFTHSM2_CONF points at it from here on).
    let hsm = SoftHsm::create("touch-bench");
    let port = free_port()?;
    let metrics_port = free_port()?;
    let config = hsm.dir().join("signet-ca.toml");
    std::fs::write(
        &config,
        config_text(&hsm, port, metrics_port, args.high_water == "file"),
    )?;
    let ca = Ca { bin, hsm, config };

    // Trust: a device root for the PIV keys, the soft tokens' attestation CAs.
    let piv_root = AttestationRoot::create()?;
    std::fs::write(ca.path("piv-roots.pem"), piv_root.cert_pem()?)?;
    let mut tokens = Vec::new();
    let mut fido_pem = String::new();
    for _ in 0..max_clients {
        let (token, fido_ca) = SoftToken::new(true).map_err(|e| anyhow!("soft token: {e:?}"))?;
        fido_pem.push_str(&der::pem::encode_string(
            "CERTIFICATE",
            der::pem::LineEnding::LF,
            &fido_ca.to_der()?,
        )?);
        tokens.push(token);
    }
    std::fs::write(ca.path("fido-roots.pem"), fido_pem)?;

    ca.ok(&["init"])?;
    let roles_dir = ca.path("roles");
    std::fs::create_dir_all(&roles_dir)?;
    std::fs::write(roles_dir.join("roles.yaml"), roles(max_clients))?;
    ca.ok(&["roles", "apply", roles_dir.to_str().context("path")?])?;
    let root_pem = ca.ok(&["export", "x509-ca"])?;
    let (_, root_der) =
        der::pem::decode_vec(root_pem.as_bytes()).map_err(|e| anyhow!("root: {e}"))?;

    // The daemon, killed by the kernel if this process dies first.
    let child = signet_testkit::child::spawn_tied(
        ca.bin.to_str().context("path")?,
        &["--config".as_ref(), ca.config.as_os_str(), "serve".as_ref()],
        |command| {
            command
                .env("SOFTHSM2_CONF", ca.hsm.conf())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        },
    )?;
    let daemon = signet_testkit::child::Daemon::new(child);
    let daemon_pid = daemon.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("signet-ca serve did not come up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = format!("https://localhost:{port}");

    // Enroll one soft token per user, and attest one PIV key per client.
    let mut clients = Vec::new();
    for (i, mut token) in tokens.into_iter().enumerate() {
        let user = format!("bench{i}");
        let link = ca.ok(&["users", "invite", &user, "--ttl", "10m"])?;
        let invite = link
            .trim()
            .rsplit('/')
            .next()
            .context("invite link")?
            .to_owned();
        let agent = agent(&root_der);
        let (status, begun) = post(
            &agent,
            &format!("{base}/v1/enroll/begin"),
            &json!({ "token": invite }),
        )?;
        if status != 200 {
            bail!("enroll begin: {status} {begun}");
        }
        let ccr: CreationChallengeResponse = serde_json::from_value(begun["webauthn"].clone())?;
        let credential = token
            .do_registration(Url::parse(ORIGIN)?, ccr)
            .map_err(|e| anyhow!("soft token registration: {e:?}"))?;
        let (status, done) = post(
            &agent,
            &format!("{base}/v1/enroll/finish"),
            &json!({ "ceremony": begun["ceremony"], "token": invite, "credential": credential }),
        )?;
        if status != 200 {
            bail!("enroll finish: {status} {done}");
        }

        let f9_key = SigningKey::generate_from_rng(&mut rand::rng());
        let serial = 20_000_000 + i as u32;
        let f9_der = piv_root.issue_device_ca(&f9_key, serial)?;
        let key = PrivateKey::generate(Algorithm::P256)?;
        let spki = key.spki_der()?;
        let slot = attest_slot(
            &f9_key,
            &f9_der,
            &key,
            AttestedFacts {
                slot: 0x9a,
                firmware: [5, 7, 4],
                serial,
                pin_policy: 2,   // once
                touch_policy: 2, // always
                form_factor: 0x01,
            },
        )?;
        let request = json!({
            "user": user,
            "public_key": STANDARD.encode(&spki),
            "attestation": [STANDARD.encode(&slot), STANDARD.encode(&f9_der)],
            "principals": ["ubuntu"],
            "ttl_seconds": 3600,
        });
        clients.push(Client {
            user,
            token,
            request,
            agent: agent.clone(),
            base: base.clone(),
        });
    }

    // TLS: a new connection per request against one kept alive, interleaved,
    // medians. One agent serves both: after a `connection: close` request
    // the next one connects again. (A new ureq agent's first request costs ~25 ms
    // more here, its one-time set-up in the client process; not counted.)
    {
        let health = format!("{base}/v1/health");
        let kept = agent(&root_der);
        kept.get(&health).call()?.body_mut().read_to_string()?;
        let (mut warm, mut fresh) = (Vec::new(), Vec::new());
        for _ in 0..50 {
            // Sent on the open connection, which the server then closes.
            kept.get(&health)
                .header("connection", "close")
                .call()?
                .body_mut()
                .read_to_string()?;
            // So this one connects again ...
            let t = Instant::now();
            kept.get(&health).call()?.body_mut().read_to_string()?;
            fresh.push(t.elapsed().as_secs_f64());
            // ... and this one reuses that connection.
            let t = Instant::now();
            kept.get(&health).call()?.body_mut().read_to_string()?;
            warm.push(t.elapsed().as_secs_f64());
        }
        warm.sort_by(f64::total_cmp);
        fresh.sort_by(f64::total_cmp);
        let (warm, fresh) = (quantile(&warm, 0.5), quantile(&fresh, 0.5));
        eprintln!(
            "tls: GET /v1/health p50 {:.3} ms on a kept-alive connection, {:.3} ms on a new one (TCP + TLS 1.3 handshake ≈ {:.3} ms)",
            ms(warm),
            ms(fresh),
            ms(fresh - warm)
        );
    }

    // Warm up every client (its connection, the daemon's caches).
    for client in &mut clients {
        for _ in 0..20 {
            client.login()?;
        }
    }

    // The raw rate's key: a bench key on the same token, never a CA key.
    let token = Token::open(&ca.hsm.token_config(2))?;
    let label = "signet-bench-ecdsa-p256";
    let raw_key = match token.find_key(label, KeyAlgorithm::EcdsaP256)? {
        Some(key) => key,
        None => token.generate_key(label, KeyAlgorithm::EcdsaP256)?,
    };
    raw_sign_rate(&token, &raw_key, 1, Duration::from_millis(300))?;

    for &n in &args.clients {
        let n = n.clamp(1, clients.len());
        let raw = raw_sign_rate(&token, &raw_key, n, duration)?;
        let raw_saturated = raw_sign_rate(&token, &raw_key, 64, duration / 2)?;

        let metrics_before = scrape(metrics_port);
        let daemon_cpu = cpu_seconds(&daemon_pid);
        let own_cpu = cpu_seconds("self");
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let results: Vec<Result<Vec<Timing>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = clients[..n]
                .iter_mut()
                .map(|client| {
                    let stop = &stop;
                    scope.spawn(move || {
                        let mut timings = Vec::new();
                        while !stop.load(Ordering::Relaxed) {
                            timings.push(client.login()?);
                        }
                        Ok(timings)
                    })
                })
                .collect();
            std::thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a client panicked")))
                })
                .collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        let daemon_cpu = cpu_seconds(&daemon_pid) - daemon_cpu;
        let own_cpu = cpu_seconds("self") - own_cpu;
        let metrics_after = scrape(metrics_port);
        let mut timings = Vec::new();
        for result in results {
            timings.extend(result?);
        }
        let count = timings.len().max(1) as f64;
        let sorted = |f: fn(&Timing) -> f64| {
            let mut v: Vec<f64> = timings.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let total = sorted(|t| t.total);
        let begin = sorted(|t| t.begin);
        let assertion = sorted(|t| t.assertion);
        let finish = sorted(|t| t.finish);
        let issue_per_s = timings.len() as f64 / elapsed;
        println!(
            "key=ecdsa-p256 clients={n} issue_per_s={issue_per_s:.1} p50_ms={:.2} p99_ms={:.2} raw_sign_per_s={raw:.1} ratio={:.4}",
            ms(quantile(&total, 0.5)),
            ms(quantile(&total, 0.99)),
            issue_per_s / raw
        );
        let (sum_before, count_before) =
            histogram(&metrics_before, "signet_ca_issue_sign_and_log_seconds");
        let (sum_after, count_after) =
            histogram(&metrics_after, "signet_ca_issue_sign_and_log_seconds");
        let sign_and_log = if count_after > count_before {
            (sum_after - sum_before) / (count_after - count_before)
        } else {
            0.0
        };
        eprintln!(
            "  clients={n} issuances={} | begin p50 {:.2} p99 {:.2} ms | soft-token assertion p50 {:.2} p99 {:.2} ms | finish p50 {:.2} p99 {:.2} ms \
             | daemon: sign+log both certs mean {:.2} ms | CPU per issuance: daemon {:.2} ms, client {:.2} ms | raw at 64 threads {raw_saturated:.0}/s | load {}",
            timings.len(),
            ms(quantile(&begin, 0.5)),
            ms(quantile(&begin, 0.99)),
            ms(quantile(&assertion, 0.5)),
            ms(quantile(&assertion, 0.99)),
            ms(quantile(&finish, 0.5)),
            ms(quantile(&finish, 0.99)),
            ms(sign_and_log),
            ms(daemon_cpu / count),
            ms(own_cpu / count),
            load_average()
        );
    }
    drop(token);
    drop(daemon);
    Ok(())
}
