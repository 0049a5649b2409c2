//! `signet-hsm-qualify`: runs Signet's HSM conformance checks against a
//! PKCS#11 module and prints a report an HSM buyer can read (or JSON).
//!
//! What it checks, through the same `Token` and session pool the CA uses:
//! library and token facts; the mechanisms the token lists; which Signet key
//! types it can hold (and the missing mechanism for the others); that keys
//! it generates are sensitive, never extractable, generated on the token
//! and that their private value cannot be read; that signatures verify;
//! signatures per second at one caller and at one caller per session; and
//! that the pool recovers after the login is lost (forced logout).
//!
//! The PIN comes from a file (`--pin-file`), never from the command line.
//! Without `--module`, a throw-away SoftHSM2 token is created and removed.
//! Keys generated on a real token stay there: Signet never deletes keys.
#![forbid(unsafe_code)]

use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use serde::Serialize;
use signature::Verifier;
use signet_hsm::{
    Error, KeyAlgorithm, KeyRef, Pin, PinSource, Pkcs11Uri, PublicKey, RsaHash, Token, TokenConfig,
    TokenSelector,
};
use zeroize::Zeroizing;

/// Qualify a PKCS#11 token for Signet and print a report.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// PKCS#11 module (.so). Without it, a throw-away SoftHSM2 token is used.
    #[arg(long, env = "SIGNET_PKCS11_MODULE")]
    module: Option<PathBuf>,
    /// Token label, or a PKCS#11 URI (`pkcs11:token=…;serial=…`).
    #[arg(long, env = "SIGNET_PKCS11_TOKEN")]
    token: Option<String>,
    /// File holding the user PIN (one line). Never pass a PIN as an argument.
    #[arg(long, env = "SIGNET_PKCS11_PIN_FILE")]
    pin_file: Option<PathBuf>,
    /// Sessions in the pool (the "N sessions" figure).
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    /// Seconds each signing-rate measurement runs.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Only these key types (comma-separated: ecdsa-p256, ecdsa-p384,
    /// ed25519, rsa-3072, rsa-4096). Default: every type the token supports.
    #[arg(long, value_delimiter = ',')]
    key_types: Vec<KeyAlgorithm>,
    /// SoftHSM2 module for the throw-away token.
    #[arg(long, default_value = "/usr/lib/softhsm/libsofthsm2.so")]
    softhsm_module: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    tool: &'static str,
    version: &'static str,
    module: String,
    throwaway_token: bool,
    library: LibraryReport,
    token: TokenReport,
    mechanisms: Vec<String>,
    sessions: usize,
    seconds_per_measurement: f64,
    key_types: Vec<KeyTypeReport>,
    session_recovery: Option<RecoveryReport>,
    keys_left_on_token: Vec<String>,
    qualified: bool,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct LibraryReport {
    manufacturer: String,
    description: String,
    version: String,
    cryptoki_version: String,
}

#[derive(Serialize)]
struct TokenReport {
    label: String,
    manufacturer: String,
    model: String,
    serial: String,
    hardware_version: String,
    firmware_version: String,
    slot_id: u64,
    max_sessions: Option<u64>,
}

#[derive(Serialize, Default)]
struct KeyTypeReport {
    key_type: String,
    supported: bool,
    /// Why not: each missing mechanism and what it is for.
    missing_mechanisms: Vec<String>,
    /// Skipped on request (`--key-types`).
    skipped: bool,
    key_label: Option<String>,
    generation_ms: Option<f64>,
    attributes: Option<AttributeReport>,
    signature_verifies: Option<bool>,
    signatures_per_second_1: Option<f64>,
    signatures_per_second_n: Option<f64>,
    error: Option<String>,
}

#[derive(Serialize)]
struct AttributeReport {
    sensitive: bool,
    extractable: bool,
    always_sensitive: bool,
    never_extractable: bool,
    local: bool,
    private_value_readable: bool,
    ok: bool,
}

#[derive(Serialize)]
struct RecoveryReport {
    key_type: String,
    signatures_after_logout: usize,
    succeeded: usize,
    first_ms: f64,
    recovered: bool,
    error: Option<String>,
}

/// A SoftHSM2 configuration and token of our own, removed on drop.
struct ThrowawayToken {
    dir: PathBuf,
    label: String,
}

impl ThrowawayToken {
    fn create(module: &Path) -> anyhow::Result<Self> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("signet-qualify-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(dir.join("tokens"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let token = Self {
            dir,
            label: "signet-qualify".into(),
        };
        let conf = token.dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                token.dir.join("tokens").display()
            ),
        )?;
        // Before the module is loaded: SoftHSM2 reads this once per process.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let so_pin = random_pin()?;
        let user_pin = random_pin()?;
        let pin_file = token.pin_file();
        {
            let mut file = std::fs::File::create(&pin_file)?;
            std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600))?;
            file.write_all(user_pin.as_bytes())?;
            file.write_all(b"\n")?;
        }
        signet_hsm::initialize_softhsm_token(
            module,
            &token.label,
            &Pin::from_secret(so_pin)?,
            &Pin::from_secret(user_pin)?,
        )
        .context("initialising the throw-away SoftHSM2 token")?;
        Ok(token)
    }

    fn pin_file(&self) -> PathBuf {
        self.dir.join("user-pin")
    }
}

impl Drop for ThrowawayToken {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Eight random digits from the kernel.
fn random_pin() -> anyhow::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 8]);
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut *bytes,
    )?;
    Ok(Zeroizing::new(
        bytes.iter().map(|b| char::from(b'0' + b % 10)).collect(),
    ))
}

fn verifies(public: &PublicKey, message: &[u8], raw: &[u8], rsa_hash: RsaHash) -> bool {
    match public {
        PublicKey::EcdsaP256(key) => p256::ecdsa::Signature::from_slice(raw)
            .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        PublicKey::EcdsaP384(key) => p384::ecdsa::Signature::from_slice(raw)
            .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(raw)
            .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        PublicKey::Rsa(key) => {
            let Ok(sig) = rsa::pkcs1v15::Signature::try_from(raw) else {
                return false;
            };
            match rsa_hash {
                RsaHash::Sha256 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
                    .verify(message, &sig)
                    .is_ok(),
                RsaHash::Sha512 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key.clone())
                    .verify(message, &sig)
                    .is_ok(),
            }
        }
    }
}

const MESSAGE: [u8; 512] = [0x5a; 512];

/// Signatures per second with `callers` threads each waiting for its own
/// signature, all through the token's one session pool.
fn rate(token: &Token, key: &KeyRef, callers: usize, seconds: f64) -> signet_hsm::Result<f64> {
    let run_for = Duration::from_secs_f64(seconds.max(0.05));
    let start = Instant::now();
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..callers)
            .map(|_| {
                scope.spawn(|| {
                    let mut count = 0u64;
                    while start.elapsed() < run_for {
                        token.sign(key, &MESSAGE, RsaHash::Sha256).wait()?;
                        count += 1;
                    }
                    Ok::<u64, Error>(count)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Error::PoolStopped)))
            .collect::<signet_hsm::Result<Vec<u64>>>()
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(counts.iter().sum::<u64>() as f64 / elapsed)
}

fn qualify_key_type(
    token: &Token,
    algorithm: KeyAlgorithm,
    label: String,
    seconds: f64,
    report: &mut KeyTypeReport,
) -> signet_hsm::Result<KeyRef> {
    let start = Instant::now();
    let key = token.generate_key(&label, algorithm)?;
    report.generation_ms = Some(start.elapsed().as_secs_f64() * 1e3);
    report.key_label = Some(label);
    let protection = token.key_protection(&key)?;
    let readable = token.private_value_is_readable(&key)?;
    report.attributes = Some(AttributeReport {
        sensitive: protection.sensitive,
        extractable: protection.extractable,
        always_sensitive: protection.always_sensitive,
        never_extractable: protection.never_extractable,
        local: protection.local,
        private_value_readable: readable,
        ok: protection.sensitive
            && !protection.extractable
            && protection.always_sensitive
            && protection.never_extractable
            && protection.local
            && !readable,
    });
    let mut all_verify = true;
    for hash in [RsaHash::Sha256, RsaHash::Sha512] {
        let raw = token.sign(&key, &MESSAGE, hash).wait()?;
        all_verify &= verifies(key.public_key(), &MESSAGE, &raw, hash);
    }
    report.signature_verifies = Some(all_verify);
    report.signatures_per_second_1 = Some(rate(token, &key, 1, seconds)?);
    report.signatures_per_second_n = Some(rate(token, &key, token.sessions(), seconds)?);
    Ok(key)
}

fn recovery(token: &Token, key: &KeyRef) -> RecoveryReport {
    let mut report = RecoveryReport {
        key_type: key.algorithm().to_string(),
        signatures_after_logout: token.sessions(),
        succeeded: 0,
        first_ms: 0.0,
        recovered: false,
        error: None,
    };
    if let Err(err) = token.force_logout() {
        report.error = Some(format!("forcing a logout failed: {err}"));
        return report;
    }
    // Every session lost its login: one signature per session, all at once.
    let start = Instant::now();
    let replies: Vec<_> = (0..token.sessions())
        .map(|_| token.sign(key, &MESSAGE, RsaHash::Sha256))
        .collect();
    for reply in replies {
        match reply.wait() {
            Ok(raw) if verifies(key.public_key(), &MESSAGE, &raw, RsaHash::Sha256) => {
                if report.succeeded == 0 {
                    report.first_ms = start.elapsed().as_secs_f64() * 1e3;
                }
                report.succeeded += 1;
            }
            Ok(_) => report.error = Some("a signature after the logout does not verify".into()),
            Err(err) => report.error = Some(err.to_string()),
        }
    }
    report.recovered = report.succeeded == report.signatures_after_logout;
    report
}

fn run(args: &Args) -> anyhow::Result<Report> {
    if args.sessions == 0 {
        bail!("--sessions must be at least 1");
    }
    let throwaway;
    let (module, selector, pin_file) = match &args.module {
        Some(module) => {
            let Some(token) = &args.token else {
                bail!("--token (or SIGNET_PKCS11_TOKEN) is needed with --module");
            };
            let Some(pin_file) = &args.pin_file else {
                bail!("--pin-file (or SIGNET_PKCS11_PIN_FILE) is needed with --module");
            };
            let selector = if token.starts_with("pkcs11:") {
                TokenSelector::Uri(Pkcs11Uri::parse(token)?)
            } else {
                TokenSelector::Label(token.clone())
            };
            throwaway = None;
            (module.clone(), selector, pin_file.clone())
        }
        None => {
            let token = ThrowawayToken::create(&args.softhsm_module)?;
            let selector = TokenSelector::Label(token.label.clone());
            let pin_file = token.pin_file();
            throwaway = Some(token);
            (args.softhsm_module.clone(), selector, pin_file)
        }
    };
    let token = Token::open(&TokenConfig {
        module: module.clone(),
        token: selector,
        pin: PinSource::File(pin_file),
        sessions: NonZeroUsize::new(args.sessions).context("--sessions must be at least 1")?,
    })
    .context("opening the token")?;
    let desc = token.description().clone();
    let facts = &desc.facts;
    let mut report = Report {
        tool: "signet-hsm-qualify",
        version: env!("CARGO_PKG_VERSION"),
        module: module.display().to_string(),
        throwaway_token: throwaway.is_some(),
        library: LibraryReport {
            manufacturer: facts.library_manufacturer.clone(),
            description: facts.library_description.clone(),
            version: desc.library_version.clone(),
            cryptoki_version: desc.cryptoki_version.clone(),
        },
        token: TokenReport {
            label: facts.label.clone(),
            manufacturer: facts.manufacturer.clone(),
            model: facts.model.clone(),
            serial: facts.serial.clone(),
            hardware_version: desc.hardware_version.clone(),
            firmware_version: desc.firmware_version.clone(),
            slot_id: desc.slot_id,
            max_sessions: desc.max_sessions,
        },
        mechanisms: token.capabilities().mechanism_names().to_vec(),
        sessions: token.sessions(),
        seconds_per_measurement: args.seconds,
        key_types: Vec::new(),
        session_recovery: None,
        keys_left_on_token: Vec::new(),
        qualified: false,
        problems: Vec::new(),
    };

    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut first_key = None;
    for algorithm in KeyAlgorithm::ALL {
        let mut entry = KeyTypeReport {
            key_type: algorithm.to_string(),
            ..Default::default()
        };
        entry.missing_mechanisms = token
            .capabilities()
            .missing_mechanisms(algorithm)
            .into_iter()
            .map(|(operation, mechanism)| format!("{mechanism} (to {operation} {algorithm} keys)"))
            .collect();
        entry.supported = entry.missing_mechanisms.is_empty();
        if !entry.supported {
            report.key_types.push(entry);
            continue;
        }
        if !args.key_types.is_empty() && !args.key_types.contains(&algorithm) {
            entry.skipped = true;
        } else {
            let label = format!("signet-qualify-{algorithm}-{stamp}");
            match qualify_key_type(&token, algorithm, label, args.seconds, &mut entry) {
                Ok(key) => {
                    if first_key.is_none() {
                        first_key = Some(key);
                    }
                }
                Err(err) => entry.error = Some(err.to_string()),
            }
            if let Some(label) = &entry.key_label {
                report.keys_left_on_token.push(label.clone());
            }
        }
        report.key_types.push(entry);
    }
    if let Some(key) = &first_key {
        report.session_recovery = Some(recovery(&token, key));
    }
    if throwaway.is_some() {
        // The throw-away token goes away with its directory.
        report.keys_left_on_token.clear();
    }

    let tested: Vec<_> = report
        .key_types
        .iter()
        .filter(|k| k.supported && !k.skipped)
        .collect();
    if tested.is_empty() {
        report
            .problems
            .push("the token supports none of Signet's key types".into());
    }
    for entry in &tested {
        if let Some(err) = &entry.error {
            report.problems.push(format!("{}: {err}", entry.key_type));
        }
        if entry.attributes.as_ref().is_some_and(|a| !a.ok) {
            report.problems.push(format!(
                "{}: generated keys lack the required protection attributes",
                entry.key_type
            ));
        }
        if entry.signature_verifies == Some(false) {
            report
                .problems
                .push(format!("{}: signatures do not verify", entry.key_type));
        }
    }
    match &report.session_recovery {
        Some(r) if !r.recovered => report.problems.push(format!(
            "session recovery: {} of {} signatures after a forced logout succeeded ({})",
            r.succeeded,
            r.signatures_after_logout,
            r.error.as_deref().unwrap_or("no error reported")
        )),
        _ => {}
    }
    report.qualified = report.problems.is_empty();
    drop(token);
    drop(throwaway);
    Ok(report)
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn per_second(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.0}/s"))
}

fn print_text(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Signet HSM qualification report ({} {})",
        report.tool, report.version
    )?;
    writeln!(out, "=================================================")?;
    writeln!(
        out,
        "Module:   {}{}",
        report.module,
        if report.throwaway_token {
            " (throw-away SoftHSM2 token, removed afterwards)"
        } else {
            ""
        }
    )?;
    let lib = &report.library;
    writeln!(
        out,
        "Library:  {} / {}, library version {}, PKCS#11 {}",
        lib.manufacturer, lib.description, lib.version, lib.cryptoki_version
    )?;
    let t = &report.token;
    writeln!(
        out,
        "Token:    {:?}, model {:?}, manufacturer {:?}, serial {:?}, hardware {}, firmware {}, slot {}, max sessions {}",
        t.label,
        t.model,
        t.manufacturer,
        t.serial,
        t.hardware_version,
        t.firmware_version,
        t.slot_id,
        t.max_sessions.map_or_else(|| "not limited".into(), |n| n.to_string())
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Mechanisms listed by the token ({}):",
        report.mechanisms.len()
    )?;
    for chunk in report.mechanisms.chunks(4) {
        writeln!(out, "  {}", chunk.join(", "))?;
    }
    writeln!(out)?;
    writeln!(out, "Signet key types:")?;
    for k in &report.key_types {
        let status = if !k.supported {
            format!("NOT SUPPORTED: missing {}", k.missing_mechanisms.join(", "))
        } else if k.skipped {
            "supported (not tested: --key-types)".into()
        } else if let Some(err) = &k.error {
            format!("supported, but FAILED: {err}")
        } else {
            "supported".into()
        };
        writeln!(out, "  {:<11} {status}", k.key_type)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Generated keys (private key attributes as the token reports them):"
    )?;
    writeln!(
        out,
        "  {:<11} {:>9} {:>11} {:>16} {:>17} {:>6} {:>15} {:>8}",
        "key type",
        "sensitive",
        "extractable",
        "always sensitive",
        "never extractable",
        "local",
        "value readable",
        "verdict"
    )?;
    for k in &report.key_types {
        if let Some(a) = &k.attributes {
            writeln!(
                out,
                "  {:<11} {:>9} {:>11} {:>16} {:>17} {:>6} {:>15} {:>8}",
                k.key_type,
                yes_no(a.sensitive),
                yes_no(a.extractable),
                yes_no(a.always_sensitive),
                yes_no(a.never_extractable),
                yes_no(a.local),
                yes_no(a.private_value_readable),
                if a.ok { "ok" } else { "REFUSED" }
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "Signing (512-byte message, {:.1} s per figure, one pool of {} sessions):",
        report.seconds_per_measurement, report.sessions
    )?;
    writeln!(
        out,
        "  {:<11} {:>10} {:>12} {:>14} {:>12}",
        "key type",
        "verifies",
        "1 session",
        format!("{} sessions", report.sessions),
        "keygen"
    )?;
    for k in report
        .key_types
        .iter()
        .filter(|k| k.signature_verifies.is_some())
    {
        writeln!(
            out,
            "  {:<11} {:>10} {:>12} {:>14} {:>12}",
            k.key_type,
            yes_no(k.signature_verifies == Some(true)),
            per_second(k.signatures_per_second_1),
            per_second(k.signatures_per_second_n),
            k.generation_ms
                .map_or_else(|| "-".into(), |ms| format!("{ms:.0} ms"))
        )?;
    }
    writeln!(out)?;
    match &report.session_recovery {
        Some(r) => writeln!(
            out,
            "Session recovery after a forced logout ({}): {} — {} of {} signatures succeeded, first after {:.1} ms{}",
            r.key_type,
            if r.recovered { "ok" } else { "FAILED" },
            r.succeeded,
            r.signatures_after_logout,
            r.first_ms,
            r.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        )?,
        None => writeln!(out, "Session recovery: not tested (no usable key type)")?,
    }
    if !report.keys_left_on_token.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Keys generated on the token (Signet never deletes keys; remove them with the vendor's tools):"
        )?;
        for label in &report.keys_left_on_token {
            writeln!(out, "  {label}")?;
        }
    }
    writeln!(out)?;
    if report.qualified {
        let types: Vec<_> = report
            .key_types
            .iter()
            .filter(|k| k.signature_verifies == Some(true))
            .map(|k| k.key_type.as_str())
            .collect();
        writeln!(out, "Verdict: QUALIFIED for {}", types.join(", "))?;
    } else {
        writeln!(out, "Verdict: NOT QUALIFIED")?;
        for problem in &report.problems {
            writeln!(out, "  - {problem}")?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let report = match run(&args) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("signet-hsm-qualify: {err:#}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else {
        print_text(&report, &mut stdout)
    };
    if let Err(err) = written {
        eprintln!("signet-hsm-qualify: writing the report: {err}");
        return ExitCode::from(2);
    }
    if report.qualified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
