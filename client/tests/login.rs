//! `signet enroll` and `signet login` end to end, all real processes: the
//! `signet-ca serve` daemon on SoftHSM2 (trusting the virtual YubiKey's PIV
//! and FIDO attestation root), the virtual YubiKey (PIV + FIDO2 applets)
//! behind a private pcscd, `yubico-piv-tool` reading slot 9a back, and a
//! loopback `sshd` trusting the CA, logged into with the card's key through
//! ykcs11 and the stored certificate.
//!
//! The refusals: a wrong PIN (tries left), a CA answer tampered with by a
//! test double in front of the real CA (the begin commitment, an inclusion
//! proof, the log key) — refused with nothing written, slot 9a unchanged —
//! and the CA down.
//!
//! Needs pcscd, vsmartcard-vpcd, yubico-piv-tool, ykcs11, softhsm2, openssl
//! and openssh-server (deploy/test.sh installs them) and the `signet-ca`
//! binary next to `signet` (`cargo build -p signet-ca`; nextest over the
//! workspace builds it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use signet_testkit::Sshd;

#[path = "support/ca.rs"]
mod support;
use support::{current_user, Ca, Trust, OPS_LOGIN};

const PIN: &str = "123456";
const ORIGIN: &str = "ca.example.com/signet-log";

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_signet")).parent().unwrap()
}

fn owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The CA trusting the virtual key's root for PIV and FIDO attestation.
fn ca_for(key: &VirtualYubiKey, extra_origin: &str) -> Ca {
    Ca::new(
        bin_dir(),
        Trust::Root(&key.root().cert_pem().unwrap()),
        extra_origin,
    )
}

/// What the test double does to the CA's answers it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// Relay unchanged.
    None,
    /// Change `request_sha256` in the begin answer.
    RequestHash,
    /// Flip a bit in the SSH certificate's inclusion proof.
    InclusionProof,
    /// Serve another log key from `GET /v1/ca`.
    LogKey,
    /// Change the root hash of the X.509 proof's signed checkpoint.
    Checkpoint,
    /// Move the begin answer's expiry an hour ahead: the CA's clock as an
    /// hour ahead of this machine's (the expiry is not committed to).
    ClockSkew,
}

/// A TLS server in front of the real CA, with a root of its own, relaying
/// every request and changing the answers as told: a CA that lies.
struct Double {
    port: u16,
    root: PathBuf,
    mode: Arc<Mutex<Tamper>>,
}

impl Double {
    fn start(listener: TcpListener, dir: &Path, ca_port: u16, ca_root: &Path) -> Self {
        // A root of the double's own, and a server certificate under it.
        let key = dir.join("double-key.pem");
        let cert = dir.join("double-cert.pem");
        let root_key = dir.join("double-root-key.pem");
        let root = dir.join("double-root.pem");
        let csr = dir.join("double.csr");
        let ext = dir.join("double.ext");
        std::fs::write(&ext, "subjectAltName=DNS:localhost\n").unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let p = |path: &Path| path.to_str().unwrap().to_owned();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=signet test double root",
            "-keyout",
            &p(&root_key),
            "-out",
            &p(&root),
        ]);
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p(&key),
            "-out",
            &p(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&root),
            "-CAkey",
            &p(&root_key),
            "-days",
            "2",
            "-extfile",
            &p(&ext),
            "-out",
            &p(&cert),
        ]);
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let private = PrivateKeyDer::from_pem_file(&key).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, private)
            .unwrap(),
        );
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Tamper::None));
        let upstream = upstream_agent(&std::fs::read_to_string(ca_root).unwrap());
        let shared = mode.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let config = config.clone();
                let upstream = upstream.clone();
                let mode = *shared.lock().unwrap();
                std::thread::spawn(move || {
                    let _ = relay(stream, config, &upstream, ca_port, mode);
                });
            }
        });
        Self { port, root, mode }
    }

    fn set(&self, mode: Tamper) {
        *self.mode.lock().unwrap() = mode;
    }
}

fn upstream_agent(root_pem: &str) -> ureq::Agent {
    let (_, der_bytes) = der::pem::decode_vec(root_pem.as_bytes()).unwrap();
    let root = ureq::tls::Certificate::from_der(&der_bytes).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

/// One connection: one request, relayed, the answer changed, then close.
fn relay(
    stream: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: &ureq::Agent,
    ca_port: u16,
    mode: Tamper,
) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let url = format!("https://localhost:{ca_port}{path}");
    let mut response = if method == "POST" {
        upstream
            .post(&url)
            .header("content-type", "application/json")
            .send(&body[..])
    } else {
        upstream.get(&url).call()
    }
    .map_err(std::io::Error::other)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(std::io::Error::other)?;
    let text = tamper(&path, &text, mode);
    write!(
        tls,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )?;
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()
}

fn tamper(path: &str, text: &str, mode: Tamper) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    match (mode, path) {
        (Tamper::ClockSkew, "/v1/certs/begin") => {
            value["expires_at"] = (value["expires_at"].as_u64().unwrap() + 3600).into();
        }
        (Tamper::RequestHash, "/v1/certs/begin") => {
            value["request_sha256"] = STANDARD.encode([7u8; 32]).into();
        }
        (Tamper::InclusionProof, "/v1/certs/finish") => {
            let proof = value["ssh"]["log"]["inclusion_proof"]
                .as_array_mut()
                .unwrap();
            assert!(!proof.is_empty(), "a log this size has a non-empty proof");
            let mut hash = STANDARD.decode(proof[0].as_str().unwrap()).unwrap();
            hash[0] ^= 1;
            proof[0] = STANDARD.encode(hash).into();
        }
        (Tamper::Checkpoint, "/v1/certs/finish") => {
            let note = value["x509"]["log"]["checkpoint"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut lines: Vec<String> = note.split('\n').map(str::to_owned).collect();
            let mut root = STANDARD.decode(&lines[2]).unwrap();
            root[31] ^= 1;
            lines[2] = STANDARD.encode(root);
            value["x509"]["log"]["checkpoint"] = lines.join("\n").into();
        }
        (Tamper::LogKey, "/v1/ca") => {
            let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            let vkey =
                signet_log::note::VerifierKey::ed25519(ORIGIN, other.verifying_key().as_bytes())
                    .unwrap();
            value["log"]["vkey"] = vkey.to_string().into();
        }
        _ => {}
    }
    value.to_string()
}

/// The engineer's machine: a home with XDG directories and a PIN file.
struct Client {
    dir: tempfile::TempDir,
    envs: Vec<(String, PathBuf)>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Client {
    fn new(key: &VirtualYubiKey) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("signet-login-")
            .tempdir()
            .unwrap();
        let client = Self {
            dir,
            envs: key.pcscd().envs(),
        };
        client.set_pin(PIN);
        client
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn set_pin(&self, pin: &str) {
        let path = self.path("pin");
        std::fs::write(&path, format!("{pin}\n")).unwrap();
        owner_only(&path);
    }

    fn ssh_cert(&self) -> PathBuf {
        self.path("state/signet/ssh-cert.pub")
    }

    fn profile(&self) -> PathBuf {
        self.path("config/signet/profile.toml")
    }

    fn run(&self, args: &[&str]) -> Run {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("SIGNET_PIN_FILE", self.path("pin"))
            .env_remove("SIGNET_FIDO_PIN_FILE")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        // Not a terminal (pipes): no colour codes, ever.
        assert!(
            !run.stderr.contains('\u{1b}') && !run.stdout.contains('\u{1b}'),
            "colour codes on a pipe: {:?}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(PIN) && !run.stdout.contains(PIN),
            "the PIN was printed"
        );
        run
    }

    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "signet {args:?}: {}{}", run.stdout, run.stderr);
        run
    }

    fn refused(&self, args: &[&str], code: i32, says: &str) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "signet {args:?}: {}{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains(says),
            "signet {args:?}: expected {says:?} in: {}",
            run.stderr
        );
        run
    }

    /// `yubico-piv-tool -a read-certificate -s 9a` (PEM), or `None`.
    fn slot_9a_certificate(&self) -> Option<String> {
        let out = Command::new("yubico-piv-tool")
            .args(["-r", "Yubico YubiKey", "-a", "read-certificate", "-s", "9a"])
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("BEGIN CERTIFICATE")).then_some(text)
    }

    /// ssh into `sshd` as `user` with the card's key (ykcs11, PIN through
    /// SSH_ASKPASS) and the stored certificate.
    fn ssh(&self, sshd: &Sshd, user: &str) -> (bool, String) {
        let askpass = self.path("askpass");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&askpass, format!("#!/bin/sh\necho {PIN}\n")).unwrap();
            std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let out = Command::new("ssh")
            .args(["-v", "-F", "/dev/null", "-p", &sshd.port().to_string()])
            .arg("-o")
            .arg("PKCS11Provider=/usr/lib/x86_64-linux-gnu/libykcs11.so")
            .arg("-o")
            .arg(format!("CertificateFile={}", self.ssh_cert().display()))
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentityAgent=none",
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "ConnectTimeout=20",
            ])
            .arg(format!("{user}@127.0.0.1"))
            .arg("echo signet-login-ok")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("signet-login-ok"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn sshd_trusting(ca: &Ca) -> Sshd {
    let user_ca = ca.ok(&["export", "ssh-user-ca"]);
    let path = ca.path("user-ca.pub");
    std::fs::write(&path, user_ca).unwrap();
    Sshd::start(
        &format!(
            "TrustedUserCAKeys {}\nAuthorizedKeysFile none\nPermitRootLogin prohibit-password",
            path.display()
        ),
        None,
    )
}

#[test]
fn enroll_login_ssh_and_every_refusal() {
    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
    });
    // Its FIDO2 PIN is the PIV PIN (SIGNET_PIN_FILE serves both).
    key.fido().set_pin(PIN).unwrap();
    let client = Client::new(&key);
    // The double's port is the CA's extra WebAuthn origin: a client that
    // talks to it signs that origin.
    let double_port_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let double_origin = format!(
        "https://localhost:{}",
        double_port_listener.local_addr().unwrap().port()
    );
    let mut ca = ca_for(&key, &double_origin);
    let root = ca.path("ca-root.pem");
    std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
    ca.serve();
    let proxy = format!("localhost:{}", ca.port);
    let user = current_user();

    // Enroll the security key with an invite link, over CTAP2 to the
    // virtual key's FIDO2 applet.
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    let link = link.trim();
    assert!(
        link.starts_with(&format!("https://localhost:{}/enroll/", ca.port)),
        "{link}"
    );
    let enrolled = client.ok(&[
        "enroll",
        link,
        "--ca-cert",
        root.to_str().unwrap(),
        "--json",
    ]);
    let enrolled: Value = serde_json::from_str(&enrolled.stdout).unwrap();
    assert_eq!(enrolled["user"], "alice");
    // The invite is spent.
    client.refused(
        &["enroll", link, "--ca-cert", root.to_str().unwrap()],
        6,
        "invite_invalid",
    );

    // Enrolling remembered the CA and the user (no pins yet).
    let enrolled_profile = std::fs::read_to_string(client.profile()).unwrap();
    assert!(
        enrolled_profile.contains("user = \"alice\""),
        "{enrolled_profile}"
    );
    assert!(!enrolled_profile.contains("log_key"), "{enrolled_profile}");

    // A wrong PIN: refused with the tries left, nothing stored.
    client.set_pin("654321");
    let login = [
        "login",
        "--proxy",
        &proxy,
        "--user",
        "alice",
        "--ca-cert",
        root.to_str().unwrap(),
        "--principal",
        &user,
        "--json",
    ];
    client.refused(&login, 4, "wrong PIN: 2 tries left");
    assert!(!client.ssh_cert().exists());
    assert_eq!(
        std::fs::read_to_string(client.profile()).unwrap(),
        enrolled_profile
    );
    assert_eq!(client.slot_9a_certificate(), None);
    client.set_pin(PIN);

    // The login: key generated, attested, touched, certificates checked
    // and stored.
    let touches = key.touch().requests();
    let run = client.ok(&login);
    assert!(
        run.stderr.contains("Touch your security key"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("pinning its log key"), "{}", run.stderr);
    assert!(
        run.stderr.contains("default management key"),
        "{}",
        run.stderr
    );
    assert!(
        key.touch().requests() > touches,
        "the security key was touched"
    );
    let record: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(record["user"], "alice");
    assert_eq!(record["roles"], serde_json::json!(["dev"]));
    assert_eq!(record["principals"], serde_json::json!([user]));
    assert_eq!(record["serial"], key.serial());
    assert_eq!(record["pin_policy"], "once");
    assert_eq!(record["touch_policy"], "always");
    let not_after = record["not_after"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(not_after > now && not_after <= now + 8 * 3600 + 300);

    // The profile remembers the CA, user, card and pins.
    let profile = std::fs::read_to_string(client.profile()).unwrap();
    assert!(
        profile.contains(&format!("ca_url = \"https://{proxy}\"")),
        "{profile}"
    );
    assert!(
        profile.contains(&format!("serial = {}", key.serial())),
        "{profile}"
    );
    assert!(
        profile.contains(&format!("log_key = \"{ORIGIN}+")),
        "{profile}"
    );

    // Slot 9a holds the issued X.509 certificate.
    let issued_pem = std::fs::read_to_string(client.path("state/signet/x509-cert.pem")).unwrap();
    let on_card = client
        .slot_9a_certificate()
        .expect("a certificate in slot 9a");
    let der_of = |pem: &str| der::pem::decode_vec(pem.as_bytes()).unwrap().1;
    assert_eq!(der_of(&on_card), der_of(&issued_pem));

    // The CA's SSH host CA came with the login, for `signet config`.
    let host_ca = std::fs::read_to_string(client.path("config/signet/ssh-host-ca.pub")).unwrap();
    assert_eq!(host_ca.trim(), ca.ok(&["export", "ssh-host-ca"]).trim());
    assert!(client.ok(&["config"]).stdout.contains("known_hosts"));

    // status --json reads the stored certificate.
    let status: Value = serde_json::from_str(&client.ok(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["logged_in"], true);
    assert_eq!(status["user"], "alice");
    assert_eq!(status["principals"], serde_json::json!([user]));
    assert_eq!(status["not_after"], not_after);
    assert_eq!(status["log_index"], record["ssh_log_index"]);
    assert_eq!(status["expired"], false);

    // key info --json.
    let info: Value = serde_json::from_str(&client.ok(&["key", "info", "--json"]).stdout).unwrap();
    assert_eq!(info["serial"], key.serial());
    assert_eq!(info["slot_9a"]["algorithm"], "p256");
    assert_eq!(info["slot_9a"]["touch_policy"], "always");
    assert_eq!(info["defaults"]["management_key"], true);
    assert!(
        info["attestation"]
            .as_str()
            .unwrap()
            .starts_with("attested by"),
        "{info}"
    );

    // A second login needs no flags.
    let again: Value = serde_json::from_str(&client.ok(&["login", "--json"]).stdout).unwrap();
    assert!(again["ssh_log_index"].as_u64() > record["ssh_log_index"].as_u64());

    // ssh with the card's key and the stored certificate.
    let sshd = sshd_trusting(&ca);
    let (ok, stderr) = client.ssh(&sshd, &user);
    assert!(ok, "ssh failed: {stderr}\nsshd log:\n{}", sshd.log());
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    assert!(sshd.log().contains("ECDSA-CERT"), "{}", sshd.log());

    // A CA that lies, through the double: refused, nothing written.
    let double = Double::start(double_port_listener, client.dir.path(), ca.port, &root);
    assert_eq!(format!("https://localhost:{}", double.port), double_origin);
    let profile_text = std::fs::read_to_string(client.profile()).unwrap();
    let pointed = profile_text
        .replace(&format!("https://{proxy}"), &double_origin)
        .lines()
        .filter(|l| !l.starts_with("ca_root"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &format!("ca_root = \"{}\"\n", double.root.display());
    std::fs::write(client.profile(), &pointed).unwrap();
    // Relayed unchanged, it works (the double is a faithful proxy).
    double.set(Tamper::None);
    let run = client.ok(&["login"]);
    assert!(!run.stderr.contains("clock"), "{}", run.stderr);
    // A CA whose clock is an hour ahead: warned about before the touch,
    // and the login still goes through.
    double.set(Tamper::ClockSkew);
    let run = client.ok(&["login"]);
    let warning = "Warning: this machine's clock is 3600 s behind the CA's; fix the clock (NTP)";
    let at = run
        .stderr
        .find(warning)
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        at < run.stderr.find("Touch your security key").unwrap(),
        "{}",
        run.stderr
    );
    double.set(Tamper::None);
    let pointed = std::fs::read_to_string(client.profile()).unwrap();
    let card_before = client.slot_9a_certificate().unwrap();
    let ssh_before = std::fs::read_to_string(client.ssh_cert()).unwrap();
    let record_before = std::fs::read_to_string(client.path("state/signet/login.json")).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(
            client.slot_9a_certificate().unwrap(),
            card_before,
            "{what}: slot 9a changed"
        );
        assert_eq!(
            std::fs::read_to_string(client.ssh_cert()).unwrap(),
            ssh_before,
            "{what}"
        );
        assert_eq!(
            std::fs::read_to_string(client.path("state/signet/login.json")).unwrap(),
            record_before,
            "{what}"
        );
        assert_eq!(
            std::fs::read_to_string(client.profile()).unwrap(),
            pointed,
            "{what}"
        );
    };

    double.set(Tamper::RequestHash);
    let touches = key.touch().requests();
    client.refused(&["login"], 1, "refused before the touch");
    assert_eq!(key.touch().requests(), touches, "no touch was asked for");
    unchanged("request hash");

    double.set(Tamper::InclusionProof);
    client.refused(
        &["login"],
        1,
        "inclusion proof does not lead to the signed checkpoint",
    );
    unchanged("inclusion proof");

    double.set(Tamper::Checkpoint);
    client.refused(&["login"], 1, "is not signed by the pinned log key");
    unchanged("checkpoint");

    double.set(Tamper::LogKey);
    client.refused(&["login"], 1, "log key changed");
    unchanged("log key");

    // Back to the CA itself; logout removes the certificates, keeps the key.
    std::fs::write(client.profile(), &profile_text).unwrap();
    let key_before = info["slot_9a_public_key_sha256"].clone();
    client.ok(&["logout"]);
    assert!(!client.ssh_cert().exists());
    assert_eq!(client.slot_9a_certificate(), None);
    let info: Value = serde_json::from_str(&client.ok(&["key", "info", "--json"]).stdout).unwrap();
    assert_eq!(info["slot_9a_public_key_sha256"], key_before);
    let status: Value = serde_json::from_str(&client.ok(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["logged_in"], false);

    // The CA down.
    ca.stop();
    client.refused(&["login"], 5, "cannot reach the CA");
    assert!(!client.ssh_cert().exists());
}

/// Every failure a person meets is named in `signet login --help` (with
/// its exit status) and in `signet --help`.
#[test]
fn help_names_every_failure_and_exit_status() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let login = help(&["login", "--help"]);
    for part in [
        "wrong PIN (with the tries left)",
        "no touch in time",
        "the CA could not be reached",
        "clock",
        "your roles do not allow it (a login",
        "a key whose PIN/touch policy is weaker",
        "--replace-weak-key",
        "--transport",
        "Exit status:",
        "  6  the CA refused",
    ] {
        assert!(
            login.contains(part),
            "{part:?} not in signet login --help:\n{login}"
        );
    }
    let top = help(&["--help"]);
    for part in [
        "wrong PIN with the tries left",
        "a touch that timed out",
        "the CA\nunreachable",
        "clock off the CA's",
        "a login your\nroles do not allow",
        "Exit status of login",
        "4 the YubiKey or",
        "6 the CA refused",
    ] {
        assert!(top.contains(part), "{part:?} not in signet --help:\n{top}");
    }
}

/// A CA serving, the virtual key enrolled for alice; the client ready.
fn enrolled() -> (VirtualYubiKey, Ca, Client, PathBuf) {
    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
    });
    key.fido().set_pin(PIN).unwrap();
    let client = Client::new(&key);
    let mut ca = ca_for(&key, "https://localhost:1");
    let root = ca.path("ca-root.pem");
    std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
    ca.serve();
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    client.ok(&["enroll", link.trim(), "--ca-cert", root.to_str().unwrap()]);
    (key, ca, client, root)
}

#[test]
fn role_refusal_denied_touch_and_a_second_card() {
    let (mut key, ca, client, root) = enrolled();
    let proxy = format!("localhost:{}", ca.port);
    let user = current_user();
    let login = |principal: &str, serial: Option<u32>| {
        let mut args = vec![
            "login".to_owned(),
            "--proxy".into(),
            proxy.clone(),
            "--user".into(),
            "alice".into(),
            "--ca-cert".into(),
            root.display().to_string(),
            "--principal".into(),
            principal.into(),
        ];
        if let Some(serial) = serial {
            args.extend(["--serial".into(), serial.to_string()]);
        }
        args
    };
    let run = |args: Vec<String>, code: i32, says: &str| {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        client.refused(&argv, code, says)
    };

    // A login no role allows: the CA's reason, exit 6, nothing stored.
    let refused = run(login("postgres", None), 6, "not_allowed");
    assert!(
        refused
            .stderr
            .contains("none of your roles allows the login \"postgres\""),
        "{}",
        refused.stderr
    );
    assert!(!client.ssh_cert().exists());
    assert_eq!(client.slot_9a_certificate(), None);

    // The touch refused by the key: a clear message, nothing stored.
    key.touch()
        .set_mode(signet_firmware_tests::touch::TouchMode::Deny);
    run(login(&user, None), 4, "not touched in time");
    assert!(!client.ssh_cert().exists());
    assert_eq!(client.slot_9a_certificate(), None);
    key.touch()
        .set_mode(signet_firmware_tests::touch::TouchMode::Approve);

    // A second YubiKey: the client asks which.
    key.add_second(VirtualKeyOptions {
        serial: 22_222_222,
        ..VirtualKeyOptions::default()
    })
    .unwrap();
    run(
        login(&user, None),
        4,
        &format!(
            "several YubiKeys are present (serials {}, 22222222); choose one with --serial",
            key.serial()
        ),
    );
    run(
        login(&user, Some(33_333_333)),
        4,
        "the YubiKey with serial 33333333 is not present",
    );
    let info = client.ok(&["key", "info", "--serial", "22222222", "--json"]);
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["serial"], 22_222_222);
    assert!(!client.ssh_cert().exists());
    // --serial picks the enrolled key, for the PIV key and for the touch;
    // the other card is left alone.
    let argv = login(&user, Some(key.serial()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    client.ok(&argv);
    assert!(client.ssh_cert().exists());
    let other: Value = serde_json::from_str(
        &client
            .ok(&["key", "info", "--serial", "22222222", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(other["slot_9a"], Value::Null, "{other}");
    let stored = std::fs::read_to_string(client.ssh_cert()).unwrap();

    // Enrolling with two security keys present: the profile's card by
    // default, the one named by --serial otherwise. The second card's FIDO2
    // applet has no PIN yet, so being asked for one shows it was chosen.
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    let chosen = client.run(&["enroll", link.trim(), "--serial", "22222222"]);
    assert_eq!(chosen.code, 4, "{}", chosen.stderr);
    assert!(
        chosen.stderr.contains("it has none set"),
        "{}",
        chosen.stderr
    );
    let shown: Value = serde_json::from_str(&ca.ok(&["users", "show", "alice", "--json"])).unwrap();
    assert_eq!(shown["credentials"].as_array().unwrap().len(), 1, "{shown}");

    // Wrong PINs until it blocks: the tries left, then what to do.
    client.set_pin("000000");
    let serial = Some(key.serial());
    run(login(&user, serial), 4, "wrong PIN: 2 tries left");
    run(login(&user, serial), 4, "wrong PIN: 1 try left");
    run(login(&user, serial), 4, "PIN is blocked");
    client.set_pin(PIN);
    run(
        login(&user, serial),
        4,
        "PIN is blocked; unblock it with the PUK",
    );
    assert_eq!(std::fs::read_to_string(client.ssh_cert()).unwrap(), stored);
}

fn argv(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The SHA-256 of slot 9a's public key and its policies, from `signet key info`.
fn slot_9a(client: &Client) -> (String, String, String) {
    let info: Value = serde_json::from_str(&client.ok(&["key", "info", "--json"]).stdout).unwrap();
    (
        info["slot_9a_public_key_sha256"]
            .as_str()
            .unwrap()
            .to_owned(),
        info["slot_9a"]["pin_policy"].as_str().unwrap().to_owned(),
        info["slot_9a"]["touch_policy"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_key_weaker_than_the_role_demands() {
    let (key, ca, client, root) = enrolled();
    let proxy = format!("localhost:{}", ca.port);
    let user = current_user();
    let login = |principal: &str, extra: &[&str]| {
        let mut args = vec![
            "login".to_owned(),
            "--proxy".into(),
            proxy.clone(),
            "--user".into(),
            "alice".into(),
            "--ca-cert".into(),
            root.display().to_string(),
            "--principal".into(),
            principal.into(),
            "--ttl".into(),
            "1h".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };

    // A key made by another tool (yubico-piv-tool): touch always, PIN never.
    let out = Command::new("yubico-piv-tool")
        .args([
            "-r",
            "Yubico YubiKey",
            "-a",
            "generate",
            "-s",
            "9a",
            "-A",
            "ECCP256",
            "--pin-policy=never",
            "--touch-policy=always",
        ])
        .envs(key.pcscd().envs())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "yubico-piv-tool generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign = slot_9a(&client);
    assert_eq!(
        (foreign.1.as_str(), foreign.2.as_str()),
        ("never", "always")
    );

    // The ops login demands touch_and_pin: the CA says what qualifies, the
    // client explains, leaves the key it did not make alone (no terminal,
    // no flag) and stores nothing.
    let run = client.refused(&argv(&login(OPS_LOGIN, &[])), 6, "key_policy_too_weak");
    for part in [
        "the key in slot 9a has PIN policy never and touch policy always",
        "hardware_key: touch_and_pin",
        "PIN policy once or always",
        "signet login --replace-weak-key",
    ] {
        assert!(run.stderr.contains(part), "{part:?} not in {}", run.stderr);
    }
    assert_eq!(slot_9a(&client), foreign, "the key was replaced");
    assert!(!client.ssh_cert().exists());
    assert_eq!(client.slot_9a_certificate(), None);

    // The same key is good enough where the role wants a touch only.
    let record: Value =
        serde_json::from_str(&client.ok(&argv(&login(&user, &["--json"]))).stdout).unwrap();
    assert_eq!(record["pin_policy"], "never");
    assert_eq!(slot_9a(&client), foreign);

    // With --replace-weak-key: a new key with PIN once, touch always, and
    // the login goes through for the ops login.
    let run = client.ok(&argv(&login(OPS_LOGIN, &["--replace-weak-key", "--json"])));
    assert!(
        run.stderr.contains("The CA refused this key")
            && run
                .stderr
                .contains("Generated a P-256 key in slot 9a (PIN once, touch always)"),
        "{}",
        run.stderr
    );
    let record: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(record["roles"], serde_json::json!(["ops"]));
    assert_eq!(record["principals"], serde_json::json!([OPS_LOGIN]));
    assert_eq!(
        (&record["pin_policy"], &record["touch_policy"]),
        (&"once".into(), &"always".into())
    );
    let replaced = slot_9a(&client);
    assert_ne!(replaced.0, foreign.0);
    assert_eq!(
        (replaced.1.as_str(), replaced.2.as_str()),
        ("once", "always")
    );

    // A key Signet made itself, too weak for ops (asked for with
    // --pin-policy never): replaced without asking, and said so.
    let made = client.ok(&argv(&login(
        &user,
        &[
            "--new-key",
            "--pin-policy",
            "never",
            "--touch-policy",
            "cached",
        ],
    )));
    assert!(
        made.stderr.contains("(PIN never, touch cached)"),
        "{}",
        made.stderr
    );
    let weak = slot_9a(&client);
    let run = client.ok(&argv(&login(OPS_LOGIN, &["--json"])));
    assert!(
        run.stderr
            .contains("Signet made this key, so it replaces it"),
        "{}",
        run.stderr
    );
    // The touch policy asked for (cached) qualifies and is kept; the PIN
    // policy becomes the weakest that does.
    assert!(
        run.stderr.contains("(PIN once, touch cached)"),
        "{}",
        run.stderr
    );
    let now = slot_9a(&client);
    assert_ne!(now.0, weak.0);
    assert_eq!((now.1.as_str(), now.2.as_str()), ("once", "cached"));
    let record: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(record["principals"], serde_json::json!([OPS_LOGIN]));
}

/// A tmux session running one command on a terminal of its own.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(socket: PathBuf, command: &str) -> Self {
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["new-session", "-d", "-x", "160", "-y", "60", command])
            .status()
            .expect("tmux (deploy/lib.sh installs it)");
        assert!(status.success());
        Self { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-S", "-100"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (at most 60 s: a deadline, not a measurement) for `text`.
    fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{text:?} never appeared; the terminal shows:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The screen with its colours, as SGR escape sequences.
    fn screen_with_colours(&self) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-e", "-p", "-S", "-100"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn type_line(&self, text: &str) {
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["send-keys", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["send-keys", "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn interactive_login_on_a_terminal() {
    let (key, ca, client, root) = enrolled();
    let user = current_user();
    let mut command = String::from("env -u SIGNET_PIN_FILE -u SIGNET_FIDO_PIN_FILE");
    for (name, value) in key.pcscd().envs() {
        command.push_str(&format!(
            " {name}={}",
            shell_quote(&value.display().to_string())
        ));
    }
    for (name, dir) in [
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_STATE_HOME", "state"),
    ] {
        command.push_str(&format!(
            " {name}={}",
            shell_quote(&client.path(dir).display().to_string())
        ));
    }
    let prefix = command.clone();
    command.push_str(&format!(
        " {} login --proxy localhost:{} --user alice --ca-cert {} --principal {}; echo signet-exit=$?; sleep 600",
        shell_quote(env!("CARGO_BIN_EXE_signet")),
        ca.port,
        shell_quote(&root.display().to_string()),
        shell_quote(&user),
    ));
    let tmux = Tmux::start(client.path("tmux.sock"), &command);
    tmux.wait_for("YubiKey PIN:");
    tmux.type_line(PIN);
    tmux.wait_for(
        "Set a random management key, stored on the card and protected by the PIN? [y/N]",
    );
    tmux.type_line("y");
    tmux.wait_for("the management key is now random and PIN-protected");
    tmux.wait_for("Touch your security key");
    tmux.wait_for("Security key (FIDO2) PIN:");
    tmux.type_line(PIN);
    let screen = tmux.wait_for("signet-exit=");
    assert!(screen.contains("signet-exit=0"), "{screen}");
    assert!(screen.contains("Logged in as alice"), "{screen}");
    assert!(screen.contains(&format!("principals:  {user}")), "{screen}");
    assert!(screen.contains("valid until:"), "{screen}");
    assert!(!screen.contains(PIN), "a PIN was echoed:\n{screen}");
    assert!(client.ssh_cert().exists());
    // On a terminal: the touch prompt in colour, the summary's ✓ in colour.
    let coloured = tmux.screen_with_colours();
    let line_of = |text: &str| {
        coloured
            .lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not on:\n{coloured}"))
            .to_owned()
    };
    assert!(
        line_of("Touch your security key").contains('\u{1b}'),
        "{coloured:?}"
    );
    assert!(
        line_of("Logged in as alice").contains('\u{1b}'),
        "{coloured:?}"
    );
    drop(tmux);
    // NO_COLOR on the same terminal: plain.
    let plain = Tmux::start(
        client.path("tmux-plain.sock"),
        &format!(
            "{prefix} NO_COLOR=1 {} status; echo signet-exit=$?; sleep 600",
            shell_quote(env!("CARGO_BIN_EXE_signet"))
        ),
    );
    plain.wait_for("signet-exit=0");
    let plain_screen = plain.screen_with_colours();
    let status_line = plain_screen
        .lines()
        .find(|l| l.contains("alice at"))
        .unwrap_or_else(|| panic!("no status on:\n{plain_screen}"));
    assert!(!status_line.contains('\u{1b}'), "{plain_screen:?}");
    assert!(status_line.contains("✓ alice at"), "{plain_screen:?}");
    drop(plain);

    // The card now keeps a random management key under the PIN; the key in
    // slot 9a was generated and its certificate stored with it.
    let info: Value = serde_json::from_str(&client.ok(&["key", "info", "--json"]).stdout).unwrap();
    assert_eq!(info["defaults"]["management_key"], false, "{info}");
    assert_eq!(info["defaults"]["management_key_protected"], true, "{info}");
    assert!(client.slot_9a_certificate().is_some());
    // And logout removes the certificate with it (the PIN from the file).
    client.ok(&["logout"]);
    assert_eq!(client.slot_9a_certificate(), None);
}

/// `env …` that runs signet on a tmux terminal as the client, with the
/// PIN file (so only the questions are asked).
fn terminal_env(key: &VirtualYubiKey, client: &Client) -> String {
    let mut command = String::from("env");
    for (name, value) in key.pcscd().envs() {
        command.push_str(&format!(
            " {name}={}",
            shell_quote(&value.display().to_string())
        ));
    }
    for (name, dir) in [
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_STATE_HOME", "state"),
        ("SIGNET_PIN_FILE", "pin"),
    ] {
        command.push_str(&format!(
            " {name}={}",
            shell_quote(&client.path(dir).display().to_string())
        ));
    }
    command
}

#[test]
fn a_weak_key_not_made_by_signet_is_replaced_only_after_a_yes() {
    let (key, ca, client, root) = enrolled();
    let out = Command::new("yubico-piv-tool")
        .args([
            "-r",
            "Yubico YubiKey",
            "-a",
            "generate",
            "-s",
            "9a",
            "-A",
            "ECCP256",
        ])
        .args(["--pin-policy=never", "--touch-policy=always"])
        .envs(key.pcscd().envs())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign = slot_9a(&client);
    let login = format!(
        "{} {} login --proxy localhost:{} --user alice --ca-cert {} --principal {OPS_LOGIN} --ttl 1h; echo signet-exit=$?; sleep 600",
        terminal_env(&key, &client),
        shell_quote(env!("CARGO_BIN_EXE_signet")),
        ca.port,
        shell_quote(&root.display().to_string()),
    );
    let question = "Replace the key in slot 9a with a new one (PIN once, touch always)? The old key is destroyed. [y/N]";

    // No: nothing replaced, exit 6 with what to do.
    let tmux = Tmux::start(client.path("tmux-no.sock"), &login);
    tmux.wait_for("Set a random management key");
    tmux.type_line("n");
    let screen = tmux.wait_for(question);
    assert!(
        screen.contains("The CA refused this key: the key in slot 9a has PIN policy never"),
        "{screen}"
    );
    tmux.type_line("n");
    let screen = tmux.wait_for("signet-exit=");
    assert!(screen.contains("signet-exit=6"), "{screen}");
    assert!(screen.contains("--replace-weak-key"), "{screen}");
    drop(tmux);
    assert_eq!(slot_9a(&client), foreign, "replaced without a yes");
    assert!(!client.ssh_cert().exists());

    // Yes: a new key that qualifies, and the login goes through.
    let tmux = Tmux::start(client.path("tmux-yes.sock"), &login);
    tmux.wait_for("Set a random management key");
    tmux.type_line("n");
    tmux.wait_for(question);
    tmux.type_line("y");
    let screen = tmux.wait_for("signet-exit=");
    assert!(screen.contains("signet-exit=0"), "{screen}");
    assert!(
        screen.contains("Generated a P-256 key in slot 9a (PIN once, touch always)"),
        "{screen}"
    );
    assert!(screen.contains("Logged in as alice"), "{screen}");
    drop(tmux);
    let replaced = slot_9a(&client);
    assert_ne!(replaced.0, foreign.0);
    assert_eq!(
        (replaced.1.as_str(), replaced.2.as_str()),
        ("once", "always")
    );
}
