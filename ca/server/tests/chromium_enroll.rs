//! The enrollment page in a real browser: headless Chromium (Debian
//! `chromium`) with the DevTools protocol's virtual security key opens an
//! invite link served by `signet-ca serve`, presses Enroll, and the test
//! then asks the CA — `users show --json` and the log's tiles — what it
//! recorded. The browser is driven by `tests/chromium/drive.py` (Debian
//! `python3-websocket`).
//!
//! Chromium's virtual authenticator attests with a self-signed batch
//! certificate over the FIDO U2F specification's example key, whose private
//! half is published; it is trusted here by that key's SPKI pin
//! (`[webauthn] attestation_spki_sha256`) in this test's configuration
//! only, and a CA without the pin refuses it.
//!
//! The daemon's TLS certificate comes from the CA's own root, which
//! Chromium is told to accept by its SPKI (`--ignore-certificate-errors-spki-list`),
//! not by ignoring every certificate error.
//!
//! Without Chromium the tests skip, except under CI (`CI=true`), where
//! they fail: deploy/lib.sh installs `chromium` and `python3-websocket`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;
use signet_log::entry::{Change, Entry, EntryKind};
use signet_testkit::child::{spawn_tied, Daemon};
use touchkit::TouchCa;

/// The browser binary itself (`/usr/bin/chromium` is a shell wrapper).
const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// SHA-256 of the SubjectPublicKeyInfo of Chromium's virtual
/// authenticator's attestation key (the U2F specification's example key;
/// see ca/webauthn/tests/chromium.rs). Test configuration only: anyone can
/// sign attestations this pin accepts.
const CHROMIUM_BATCH_SPKI_SHA256: &str =
    "c98993ec4f77b4997a081a5e5990c7cf6b0ceeb7b27bc7312a3cc351921531a9";

/// What the page shows for a spent invite (the CA's `invite_invalid`).
const INVITE_INVALID: &str = "this invite link is unknown, already used or expired";

/// True when Chromium and the driver's websocket module are installed;
/// otherwise skips, or fails under CI.
fn browser_available() -> bool {
    let python_ok = Command::new("python3")
        .args(["-c", "import websocket"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !Path::new(CHROMIUM).exists() {
        Some("Debian package chromium")
    } else if !python_ok {
        Some("the python3 websocket module (Debian package python3-websocket)")
    } else {
        return true;
    };
    let what = missing.unwrap_or_default();
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is not installed: deploy/lib.sh installs it (SIGNET_TEST_PACKAGES)"
    );
    eprintln!("skipped: {what} is not installed");
    false
}

/// A CA serving the enrollment page on `https://localhost:<port>`, its
/// `[webauthn] origin` set to exactly that, with the touch roles applied.
struct PageCa {
    // Field order is drop order: the daemon stops before its token goes.
    _daemon: Daemon,
    port: u16,
    t: TouchCa,
}

impl PageCa {
    /// `trust_chromium`: whether the configuration pins Chromium's batch key.
    fn start(label: &str, trust_chromium: bool) -> Self {
        let t = TouchCa::new(label);
        let port = signet_testkit::free_port();
        let config = std::fs::read_to_string(&t.ca.config).unwrap();
        let mut edits = vec![
            (
                "listen = \"127.0.0.1:8441\"".to_owned(),
                format!("listen = \"127.0.0.1:{port}\""),
            ),
            (
                format!("origin = \"{}\"", common::TEST_ORIGIN),
                format!("origin = \"https://localhost:{port}\""),
            ),
        ];
        if trust_chromium {
            edits.push((
                "attestation_roots = [".to_owned(),
                format!(
                    "attestation_spki_sha256 = [\"{CHROMIUM_BATCH_SPKI_SHA256}\"]\nattestation_roots = ["
                ),
            ));
        }
        let mut text = config;
        for (from, to) in edits {
            assert_eq!(
                text.matches(&from).count(),
                1,
                "{from:?} in the configuration"
            );
            text = text.replace(&from, &to);
        }
        std::fs::write(&t.ca.config, text).unwrap();

        let child = spawn_tied(
            env!("CARGO_BIN_EXE_signet-ca"),
            &[
                "--config".as_ref(),
                t.ca.config.as_os_str(),
                "serve".as_ref(),
            ],
            |command| {
                command.env("SOFTHSM2_CONF", t.ca.hsm.conf());
            },
        )
        .unwrap();
        let mut daemon = Daemon::new(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(daemon.exited().is_none(), "signet-ca serve exited");
            assert!(Instant::now() < deadline, "signet-ca serve did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            _daemon: daemon,
            port,
            t,
        }
    }

    fn origin(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// `signet-ca users invite NAME`: the link it prints.
    fn invite(&self, user: &str) -> String {
        let link = self.t.ca.ok(&["users", "invite", user, "--ttl", "10m"]);
        let link = link.trim().to_owned();
        assert!(
            link.starts_with(&format!("{}/enroll/", self.origin())),
            "{link}"
        );
        link
    }

    /// `signet-ca users show NAME --json`, through the daemon's admin socket.
    fn user(&self, name: &str) -> Value {
        serde_json::from_str(&self.t.ca.ok(&["users", "show", name, "--json"])).unwrap()
    }

    /// A GET over HTTPS trusting only the CA's own root.
    fn get(&self, path: &str) -> Vec<u8> {
        let (_, der_bytes) = der::pem::decode_vec(self.t.root_pem.as_bytes()).unwrap();
        let root = ureq::tls::Certificate::from_der(&der_bytes).to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("{}{path}", self.origin());
        agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .body_mut()
            .read_to_vec()
            .unwrap()
    }

    /// Every entry of the log, from the tiles the daemon serves.
    fn entries(&self) -> Vec<Entry> {
        let note = signet_log::note::Note::parse(&self.get("/log/checkpoint")).unwrap();
        let size = signet_log::checkpoint::Checkpoint::parse(note.text())
            .unwrap()
            .size();
        let mut out = Vec::new();
        for path in signet_log::tiles::tile_paths(size) {
            if path.kind() != signet_log::tiles::TileKind::Entries {
                continue;
            }
            let bundle = signet_log::tiles::EntryBundle::parse(
                &self.get(&format!("/log/{path}")),
                path.width(),
            )
            .unwrap();
            for bytes in bundle.entries() {
                out.push(Entry::from_bytes(bytes).unwrap());
            }
        }
        assert_eq!(out.len() as u64, size);
        out
    }

    /// Base64 SHA-256 of the CA root's SubjectPublicKeyInfo, as Chromium's
    /// `--ignore-certificate-errors-spki-list` wants it.
    fn root_spki_pin(&self) -> String {
        let (_, der_bytes) = der::pem::decode_vec(self.t.root_pem.as_bytes()).unwrap();
        STANDARD.encode(signet_webauthn::spki_sha256_of_certificate(&der_bytes).unwrap())
    }
}

/// A headless Chromium with a fresh profile, killed when dropped and with
/// the test process.
struct Browser {
    _daemon: Daemon,
    devtools_port: u16,
    stderr_file: PathBuf,
}

impl Browser {
    /// Starts Chromium accepting the TLS certificates under the CA's root
    /// (by that root's SPKI), its profile and stderr under `dir`.
    fn launch(dir: &Path, accept_spki: &str) -> Self {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let stderr_file = dir.join("chromium.stderr");
        let stderr = std::fs::File::create(&stderr_file).unwrap();
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--remote-debugging-address=127.0.0.1".to_owned(),
            "--remote-debugging-port=0".to_owned(),
            format!("--ignore-certificate-errors-spki-list={accept_spki}"),
            format!("--user-data-dir={}", profile.display()),
            "about:blank".to_owned(),
        ];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let child = spawn_tied(CHROMIUM, &args, |command| {
            command.stdout(Stdio::null()).stderr(stderr);
        })
        .unwrap();
        let mut daemon = Daemon::new(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let devtools_port = loop {
            let text = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            if let Some(port) = text.lines().find_map(devtools_port) {
                break port;
            }
            assert!(
                daemon.exited().is_none(),
                "chromium exited before DevTools listened: {text}"
            );
            assert!(
                Instant::now() < deadline,
                "chromium printed no DevTools line within 30 s: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            _daemon: daemon,
            devtools_port,
            stderr_file,
        }
    }

    /// Runs drive.py over `visits` (`enroll:URL`, `open:URL`); returns its
    /// JSON report.
    fn drive(&self, visits: &[String]) -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chromium/drive.py");
        let port = self.devtools_port.to_string();
        let mut args: Vec<&std::ffi::OsStr> = vec![script.as_ref(), port.as_ref()];
        args.extend(visits.iter().map(|v| v.as_ref() as &std::ffi::OsStr));
        // Every wait in the driver is bounded, so this ends by itself.
        let child = spawn_tied("python3", &args, |command| {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        })
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "drive.py failed: {}\nchromium's stderr: {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The port of a `DevTools listening on ws://127.0.0.1:PORT/…` line.
fn devtools_port(line: &str) -> Option<u16> {
    let rest = line.split("DevTools listening on ws://").nth(1)?;
    let authority = rest.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// The raw bytes of the virtual authenticator's credential ids
/// (WebAuthn.getCredentials gives them in standard base64).
fn browser_credential_ids(report: &Value) -> Vec<Vec<u8>> {
    report["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            STANDARD
                .decode(c["credentialId"].as_str().unwrap())
                .unwrap()
        })
        .collect()
}

#[test]
fn chromium_enrolls_a_security_key_on_the_page() {
    if !browser_available() {
        return;
    }
    let started = Instant::now();
    let ca = PageCa::start("chromium-enroll", true);
    let link = ca.invite("alice");
    let before = ca.entries();
    let browser = Browser::launch(&ca.t.path("browser"), &ca.root_spki_pin());
    // Enroll, then open the same link again.
    let report = browser.drive(&[format!("enroll:{link}"), format!("open:{link}")]);

    let visits = report["visits"].as_array().unwrap();
    assert_eq!(visits[0]["state"], "done", "{report}");
    assert!(
        visits[0]["status"]
            .as_str()
            .unwrap()
            .contains("registered for alice"),
        "{report}"
    );
    let ids = browser_credential_ids(&report);
    assert_eq!(ids.len(), 1, "{report}");

    // The CA's state: exactly that credential, attested "packed".
    let shown = ca.user("alice");
    let credentials = shown["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{shown}");
    let id = URL_SAFE_NO_PAD
        .decode(credentials[0]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(id, ids[0], "{shown}");
    assert_eq!(credentials[0]["attestation_format"], "packed", "{shown}");
    assert_eq!(
        credentials[0]["aaguid"], "01020304-0506-0708-0102-030405060708",
        "{shown}"
    );

    // The log: one new entry, alice's enrollment of that credential.
    let after = ca.entries();
    assert_eq!(after.len(), before.len() + 1);
    let entry = after.last().unwrap();
    assert_eq!(entry.kind, EntryKind::Enrollment);
    assert_eq!(entry.subject.as_deref(), Some("alice"));
    match &entry.change {
        Some(Change::Credential {
            id,
            attestation_format,
            ..
        }) => {
            assert_eq!(id.0, ids[0]);
            assert_eq!(attestation_format, "packed");
        }
        other => panic!("enrollment entry without the credential: {other:?}"),
    }

    // The invite is spent: the page opened again says so, and nothing
    // more is logged or registered.
    assert_eq!(visits[1]["state"], "error", "{report}");
    assert!(
        visits[1]["status"]
            .as_str()
            .unwrap()
            .contains(INVITE_INVALID),
        "{report}"
    );
    assert_eq!(visits[1]["enabled"], false, "{report}");
    assert_eq!(ca.entries().len(), after.len());
    assert_eq!(ca.user("alice")["credentials"].as_array().unwrap().len(), 1);
    eprintln!("chromium enrollment end to end: {:?}", started.elapsed());
}

#[test]
fn without_the_pin_chromium_is_refused() {
    if !browser_available() {
        return;
    }
    let started = Instant::now();
    let ca = PageCa::start("chromium-untrusted", false);
    let link = ca.invite("alice");
    let before = ca.entries();
    let browser = Browser::launch(&ca.t.path("browser"), &ca.root_spki_pin());
    // Enroll, then open the link again: the refusal did not spend it.
    let report = browser.drive(&[format!("enroll:{link}"), format!("open:{link}")]);

    let visit = &report["visits"][0];
    assert_eq!(visit["state"], "error", "{report}");
    assert!(
        visit["status"].as_str().unwrap().contains("attestation"),
        "{report}"
    );
    // The browser made a credential; the CA kept nothing of it.
    assert_eq!(browser_credential_ids(&report).len(), 1, "{report}");
    let shown = ca.user("alice");
    assert_eq!(shown["credentials"], serde_json::json!([]), "{shown}");
    assert_eq!(ca.entries().len(), before.len());
    assert_eq!(report["visits"][1]["enabled"], true, "{report}");
    assert_eq!(report["visits"][1]["state"], "idle", "{report}");
    eprintln!("chromium refused without the pin: {:?}", started.elapsed());
}
