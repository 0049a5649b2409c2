//! Helpers for the `signet audit` tests: logs built with `signet-log` and
//! written exactly as the CA lays them out, a tiny HTTP server, and a runner
//! for the real `signet` binary.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod http;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use signet_log::checkpoint::Checkpoint;
use signet_log::entry::{
    Actor, Base64Bytes, Entry, EntryKind, IssuedCertificate, PinPolicy, PivDevice, Sha256Hex,
    TouchPolicy,
};
use signet_log::merkle::{leaf_hash, CompactRange};
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};
use signet_log::tiles::{EntryBundle, TileBuilder, TilePath, TILE_WIDTH};

pub const ORIGIN: &str = "ca.example.com/signet-log";
/// 2026-11-23T00:00:00Z
pub const T0: u64 = 1795392000;

/// A software Ed25519 log key standing in for the HSM.
pub struct TestKey {
    pub name: String,
    pub key: ed25519_dalek::SigningKey,
    pub vkey: VerifierKey,
}

impl TestKey {
    pub fn new(name: &str, seed: u8) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let vkey = VerifierKey::ed25519(name, key.verifying_key().as_bytes()).unwrap();
        Self {
            name: name.to_owned(),
            key,
            vkey,
        }
    }

    /// The vkey line, as `signet-ca export log-key` prints it.
    pub fn vkey_line(&self) -> String {
        self.vkey.to_string()
    }

    /// The PEM SubjectPublicKeyInfo.
    pub fn pem(&self) -> String {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(self.key.verifying_key().as_bytes());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }
}

impl NoteSigner for TestKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// An ECDSA P-256 log key (for HSMs without EdDSA).
pub struct TestP256Key {
    pub name: String,
    pub key: p256::ecdsa::SigningKey,
    pub vkey: VerifierKey,
    pub spki_der: Vec<u8>,
}

impl TestP256Key {
    pub fn new(name: &str, seed: u8) -> Self {
        use p256::pkcs8::EncodePublicKey as _;
        let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let der = key.verifying_key().to_public_key_der().unwrap();
        let vkey = VerifierKey::ecdsa_p256(name, der.as_bytes()).unwrap();
        Self {
            name: name.to_owned(),
            key,
            vkey,
            spki_der: der.as_bytes().to_vec(),
        }
    }

    pub fn pem(&self) -> String {
        let b64 = STANDARD.encode(&self.spki_der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }
}

impl NoteSigner for TestP256Key {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A fingerprint in the form the format demands.
pub fn fingerprint(key_blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(key_blob))
    )
}

/// The entry's view of a certificate: every field read from the certificate
/// itself, as the CA records it (the auditor checks they agree).
fn certificate_from(
    serial: String,
    fingerprint: String,
    validity: (u64, u64),
    bytes: Vec<u8>,
) -> IssuedCertificate {
    IssuedCertificate {
        serial,
        public_key_fingerprint: fingerprint,
        not_before: validity.0,
        not_after: validity.1,
        sha256: Sha256Hex(Sha256::digest(&bytes).into()),
        bytes: Base64Bytes(bytes),
        form: signet_log::entry::CertificateForm::Full,
    }
}

/// A real OpenSSH user certificate for `user`, `serial` and `principals`
/// (key id as the CA writes it), valid T0..T0+8h, signed by a fixed
/// software CA; `variant` makes it unique.
pub fn make_ssh_cert(user: &str, serial: u64, principals: &[&str], variant: u64) -> Vec<u8> {
    let ca = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[9; 32]));
    let subject = ssh_key::private::Ed25519Keypair::from_seed(&[(variant % 251) as u8 + 1; 32]);
    let mut nonce = variant.to_be_bytes().to_vec();
    nonce.extend_from_slice(&serial.to_be_bytes());
    let mut builder = ssh_key::certificate::Builder::new(
        nonce,
        ssh_key::public::KeyData::from(subject.public),
        T0,
        T0 + 8 * 3600,
    )
    .unwrap();
    builder.serial(serial).unwrap();
    builder
        .cert_type(ssh_key::certificate::CertType::User)
        .unwrap();
    builder
        .key_id(format!("user={user} serial={serial}"))
        .unwrap();
    for p in principals {
        builder.valid_principal(*p).unwrap();
    }
    let cert = builder.sign(&ca).unwrap();
    ssh_key::encoding::Encode::encode_vec(&cert).unwrap()
}

/// A real X.509 client certificate (made by openssl) with this serial,
/// naming `user` as the CA does (CN, SAN URI, CA:FALSE).
pub fn make_x509_cert(serial_hex: &str, user: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("openssl")
        .current_dir(dir.path())
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-keyout", "k.pem", "-outform", "DER", "-out", "c.der", "-days", "1",
        ])
        .arg("-subj")
        .arg(format!("/CN={user}"))
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext"])
        .arg(format!(
            "subjectAltName=URI:signet://example.com/user/{user}"
        ))
        .arg("-set_serial")
        .arg(format!("0x{serial_hex}"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req failed");
    std::fs::read(dir.path().join("c.der")).unwrap()
}

fn user(name: &str) -> Actor {
    Actor::User {
        name: name.to_owned(),
        webauthn_credential_id: Some(Base64Bytes(vec![1, 2, 3, 4])),
        piv_device: Some(PivDevice {
            serial: 12345678,
            pin_policy: PinPolicy::Once,
            touch_policy: TouchPolicy::Always,
        }),
        webauthn_sign_count: None,
    }
}

/// An OpenSSH user certificate issuance. `cert` is a real certificate
/// (whose serial, principals and validity the entry takes), or anything else,
/// in which case a real one is made for `serial` and `principals`.
pub fn ssh_entry(time: u64, name: &str, principals: &[&str], serial: u64, cert: Vec<u8>) -> Entry {
    let cert = match ssh_key::Certificate::from_bytes(&cert) {
        Ok(_) => cert,
        Err(_) => make_ssh_cert(
            name,
            serial,
            principals,
            Sha256::digest(&cert)[0] as u64 + serial,
        ),
    };
    let parsed = ssh_key::Certificate::from_bytes(&cert).unwrap();
    Entry {
        kind: EntryKind::SshUserCert,
        time,
        actor: user(name),
        request_hash: Some(Sha256Hex([7; 32])),
        subject: Some(name.to_owned()),
        principals: parsed.valid_principals().to_vec(),
        roles: vec!["prod-sre".into()],
        certificate: Some(certificate_from(
            parsed.serial().to_string(),
            parsed
                .public_key()
                .fingerprint(ssh_key::HashAlg::Sha256)
                .to_string(),
            (parsed.valid_after(), parsed.valid_before()),
            cert,
        )),
        change: None,
    }
}

/// An X.509 client certificate issuance. `der` is a real certificate, or
/// anything else, in which case openssl makes one with `serial_hex`.
pub fn x509_entry(time: u64, name: &str, serial_hex: &str, der: Vec<u8>) -> Entry {
    use der::Decode as _;
    let der = match x509_cert::Certificate::from_der(&der) {
        Ok(_) => der,
        Err(_) => make_x509_cert(serial_hex, name),
    };
    let parsed = x509_cert::Certificate::from_der(&der).unwrap();
    let validity = parsed.tbs_certificate().validity();
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    Entry {
        kind: EntryKind::X509Cert,
        time,
        actor: user(name),
        request_hash: Some(Sha256Hex([8; 32])),
        subject: Some(name.to_owned()),
        principals: vec![],
        roles: vec!["prod-sre".into()],
        certificate: Some(certificate_from(
            serial_hex.to_owned(),
            signet_log::entry::x509_key_fingerprint(&parsed).unwrap(),
            (secs(&validity.not_before), secs(&validity.not_after)),
            der,
        )),
        change: None,
    }
}

/// An admin action (lock, unlock, …) about `subject`.
pub fn admin_entry(time: u64, kind: EntryKind, subject: &str) -> Entry {
    Entry {
        kind,
        time,
        actor: Actor::LocalAdmin {
            unix_user: "secops".into(),
        },
        request_hash: None,
        subject: Some(subject.to_owned()),
        principals: vec![],
        roles: vec![],
        certificate: None,
        change: None,
    }
}

/// A fake OpenSSH certificate blob (type name and some bytes).
pub fn fake_ssh_cert(n: u64) -> Vec<u8> {
    let ty = b"ssh-ed25519-cert-v01@openssh.com";
    let mut b = (ty.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(ty);
    b.extend_from_slice(&n.to_be_bytes());
    b
}

/// `n` entries: a mix of SSH issuances (serials 1000 + i), locks and unlocks.
pub fn mixed_entries(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let t = T0 + i * 60;
            let e = match i % 5 {
                3 => admin_entry(t, EntryKind::Lock, &format!("user{}", i % 7)),
                4 => admin_entry(t, EntryKind::Unlock, &format!("user{}", i % 7)),
                _ => ssh_entry(
                    t,
                    &format!("user{}", i % 7),
                    &["ubuntu", if i % 2 == 0 { "root" } else { "deploy" }],
                    1000 + i,
                    fake_ssh_cert(i),
                ),
            };
            e.to_canonical_bytes().unwrap()
        })
        .collect()
}

/// A log's entries, written to disk as the CA would.
#[derive(Clone)]
pub struct TestLog {
    pub origin: String,
    pub entries: Vec<Vec<u8>>,
}

impl TestLog {
    pub fn new(entries: Vec<Vec<u8>>) -> Self {
        Self {
            origin: ORIGIN.to_owned(),
            entries,
        }
    }

    /// Root of the first `size` entries.
    pub fn root(&self, size: u64) -> [u8; 32] {
        let mut r = CompactRange::new();
        for e in &self.entries[..size as usize] {
            r.append(leaf_hash(e), |_, _| ()).unwrap();
        }
        r.root()
    }

    /// The signed checkpoint for the first `size` entries.
    pub fn checkpoint(&self, size: u64, signers: &[&dyn NoteSigner]) -> String {
        Checkpoint::new(&self.origin, size, self.root(size))
            .unwrap()
            .sign(signers)
            .unwrap()
            .to_text()
    }

    /// Writes the tiles for the whole log (partial tiles for every size in
    /// `sizes` and for the full size) and the checkpoint of the full size.
    pub fn write(&self, dir: &Path, key: &dyn NoteSigner) {
        self.write_sizes(dir, key, &[]);
    }

    pub fn write_sizes(&self, dir: &Path, key: &dyn NoteSigner, sizes: &[u64]) {
        let n = self.entries.len() as u64;
        let mut sizes: BTreeSet<u64> = sizes.iter().copied().collect();
        sizes.insert(n);
        let mut range = CompactRange::new();
        let mut builder = TileBuilder::new();
        let mut done = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            done.clear();
            range
                .append(leaf_hash(e), |node, h| done.push((node, *h)))
                .unwrap();
            for (node, h) in &done {
                if let Some((p, tile)) = builder.observe(*node, h).unwrap() {
                    write_file(dir, &p, &tile.to_bytes());
                }
            }
            let size = i as u64 + 1;
            if size.is_multiple_of(u64::from(TILE_WIDTH)) {
                let idx = size / 256 - 1;
                let b = EntryBundle::new(self.entries[idx as usize * 256..size as usize].to_vec())
                    .unwrap();
                write_file(dir, &TilePath::entries(idx, 256).unwrap(), &b.to_bytes());
            }
            if sizes.contains(&size) {
                for (p, tile) in builder.partial_tiles().unwrap() {
                    write_file(dir, &p, &tile.to_bytes());
                }
                let w = size % 256;
                if w != 0 {
                    let idx = size / 256;
                    let b =
                        EntryBundle::new(self.entries[idx as usize * 256..size as usize].to_vec())
                            .unwrap();
                    write_file(
                        dir,
                        &TilePath::entries(idx, w as u16).unwrap(),
                        &b.to_bytes(),
                    );
                }
            }
        }
        std::fs::write(dir.join("checkpoint"), self.checkpoint(n, &[key])).unwrap();
    }
}

fn write_file(dir: &Path, path: &TilePath, bytes: &[u8]) {
    let full = dir.join(path.to_string());
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, bytes).unwrap();
}

/// A test's scratch space: the log directory, key files, and the state dir.
pub struct Scratch {
    pub tmp: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }
    pub fn log_dir(&self) -> PathBuf {
        let p = self.tmp.path().join("log");
        std::fs::create_dir_all(&p).unwrap();
        p
    }
    pub fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, contents).unwrap();
        p
    }
    /// The key file holding `key`'s vkey line.
    pub fn vkey(&self, key: &TestKey) -> PathBuf {
        self.write("log.vkey", format!("{}\n", key.vkey_line()))
    }
    /// Runs `signet` with the state directory of this scratch space.
    pub fn signet(&self, args: &[&str]) -> Run {
        run_signet(args, &self.state())
    }
    /// Starts `signet` in the background, with this scratch space's state.
    pub fn spawn(&self, args: &[&str]) -> Running {
        spawn_signet(args, &self.state())
    }
    /// The remembered-checkpoint files in the state directory.
    pub fn state_files(&self) -> Vec<PathBuf> {
        let dir = self.state().join("signet/audit");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "checkpoint"));
        files.sort();
        files
    }
    /// The one remembered checkpoint, as text.
    pub fn remembered(&self) -> String {
        let files = self.state_files();
        assert_eq!(files.len(), 1, "{files:?}");
        std::fs::read_to_string(&files[0]).unwrap()
    }
}

/// What a `signet` run did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "{self:?}");
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:?}"
        );
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self
    }
}

fn signet_command(args: &[&str], state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    cmd.args(args)
        .env("XDG_STATE_HOME", state)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    cmd
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn run_signet(args: &[&str], state: &Path) -> Run {
    signet_command(args, state).output().unwrap().into()
}

/// A `signet` run in the background; [`Running::wait`] collects it. Killed
/// if dropped before, so it never outlives the test.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn wait(mut self) -> Run {
        self.0.take().unwrap().wait_with_output().unwrap().into()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn spawn_signet(args: &[&str], state: &Path) -> Running {
    use std::process::Stdio;
    let child = signet_command(args, state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running(Some(child))
}
