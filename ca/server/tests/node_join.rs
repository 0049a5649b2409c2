//! Nodes join for host certificates, against real peers: the real
//! `signet-ca serve` on SoftHSM2, `signet-node join` and `renew` (the real
//! binary), a loopback sshd started with the drop-in `join` wrote, and the
//! real `ssh` client trusting only an `@cert-authority` line (strict host
//! key checking) — OpenSSH verifies the host certificate. `ssh-keygen -L`
//! reads the certificates and `ssh-keygen -Y sign` makes renewal signatures
//! as an independent peer. Refusals: a token used twice, an expired token,
//! an unknown node, a node removed before its join or its renewal, a
//! renewal signed by another key, a user certificate, a stale time, and
//! malformed bodies. Every certificate issued is in the log.
//!
//! Needs `signet-node` built beside `signet-ca` (`cargo build --all-features
//! -p signet-node`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod witnesskit;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Ca;
use serde_json::Value;
use sha2::{Digest, Sha256};
use signet_log::entry::{Change, Entry, EntryKind};
use signet_testkit::{Postgres, Sshd};

const NODES: &str = "\
kind: node
name: web-1
address: 127.0.0.1:22
labels: { env: prod }
---
kind: node
name: db-1
address: db-1.internal:22
labels: { env: prod }
---
kind: node
name: gone-1
address: gone-1.internal:22
labels: { env: dev }
";

/// `NODES` without db-1 and gone-1.
const NODES_WEB_ONLY: &str = "\
kind: node
name: web-1
address: 127.0.0.1:22
labels: { env: prod }
";

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The test's world: the CA, its daemon, a node directory.
struct Bed {
    ca: Ca,
    daemon: Option<common::Daemon>,
    node: tempfile::TempDir,
    /// Where sshd may run the node check from (root-only parents).
    safe: tempfile::TempDir,
    daemon_log: PathBuf,
}

impl Bed {
    fn new(label: &str) -> Self {
        Self::around(Ca::initialised(label))
    }

    /// A CA whose store is a PostgreSQL database from the start.
    fn on_postgres(label: &str, pg: &mut Postgres) -> (Self, String) {
        let ca = Ca::new(label, ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"]);
        let db = pg.create_database();
        let text = std::fs::read_to_string(&ca.config).unwrap();
        std::fs::write(
            &ca.config,
            format!(
                "{text}\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
                pg.url(&db),
                pg.password_file().display()
            ),
        )
        .unwrap();
        ca.ok(&["store", "migrate"]);
        ca.ok(&["init"]);
        (Self::around(ca), db)
    }

    fn around(ca: Ca) -> Self {
        let nodes = ca.write("nodes.yaml", NODES);
        ca.ok(&["nodes", "apply", nodes.to_str().unwrap()]);
        let node = tempfile::Builder::new()
            .prefix("signet-node-join-")
            .tempdir()
            .unwrap();
        let safe = signet_testkit::root_only_tempdir(
            "signet-node-join-",
            Path::new(env!("CARGO_TARGET_TMPDIR")),
        );
        let bin = safe.path().join("signet-node");
        std::fs::copy(witnesskit::sibling_binary("signet-node"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let vkey = witnesskit::log_vkey(&ca);
        let conf = safe.path().join("node.toml");
        std::fs::write(
            &conf,
            format!("log_key = \"{vkey}\"\n\n[witnesses]\nthreshold = 0\n"),
        )
        .unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
        let daemon_log = ca.path("daemon.log");
        Self {
            ca,
            daemon: None,
            node,
            safe,
            daemon_log,
        }
    }

    fn serve(&mut self) {
        self.daemon = Some(
            self.ca
                .serve_logging(&self.ca.config.clone(), Some(&self.daemon_log)),
        );
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.daemon.as_ref().unwrap().port)
    }

    fn root(&self) -> PathBuf {
        self.ca.path("data/x509-ca.pem")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.node.path().join(name)
    }

    /// A fresh host key pair in the node directory.
    fn host_key(&self, name: &str, kind: &str) -> PathBuf {
        let path = self.path(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    }

    /// `signet-ca nodes invite NAME --out FILE`: the token file.
    fn invite(&self, node: &str, ttl: &str) -> PathBuf {
        let file = self.path(&format!("{node}-{}.token", rand_suffix()));
        let out = self.ca.run(&[
            "nodes",
            "invite",
            node,
            "--ttl",
            ttl,
            "--out",
            file.to_str().unwrap(),
            "--json",
        ]);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "invite {node}: {stderr}\n{}",
            std::fs::read_to_string(&self.daemon_log).unwrap_or_default()
        );
        let token = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!stdout.contains(token.trim()) && !stderr.contains(token.trim()));
        let json: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json["node"], node, "{json}");
        assert!(json["log_index"].as_u64().is_some(), "{json}");
        assert!(json.get("token").is_none(), "{json}");
        file
    }

    /// `signet-node join` for `keys` into `dir` (its own names there).
    fn join(&self, token: &Path, keys: &[&Path], dir: &Path) -> Output {
        let mut cmd = Command::new(witnesskit::sibling_binary("signet-node"));
        cmd.args(["join", "--ca", &self.url(), "--ca-root"])
            .arg(self.root())
            .arg("--token-file")
            .arg(token);
        for key in keys {
            cmd.arg("--host-key").arg(key);
        }
        cmd.arg("--out-dir")
            .arg(dir)
            .arg("--sshd-config-snippet")
            .arg(dir.join("signet.conf"))
            .arg("--renew-config")
            .arg(dir.join("renew.toml"))
            .arg("--node-config")
            .arg(self.safe.path().join("node.toml"))
            .arg("--principals-command")
            .arg(self.safe.path().join("signet-node"))
            .args(["--principals-user", "nobody", "--json"])
            .env_remove("SIGNET_NODE_JOIN_TOKEN");
        cmd.output().unwrap()
    }

    fn renew(&self, dir: &Path, force: bool) -> Output {
        let mut cmd = Command::new(witnesskit::sibling_binary("signet-node"));
        cmd.args(["renew", "--json", "--config"])
            .arg(dir.join("renew.toml"));
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    }

    /// POSTs a body to the CA with curl (the CA root as the only trust);
    /// the status and the JSON answer.
    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let file = self.path(&format!("body-{}", rand_suffix()));
        std::fs::write(&file, body).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.root())
            .args([
                "-H",
                "content-type: application/json",
                "-w",
                "\n%{http_code}",
                "--data-binary",
                &format!("@{}", file.display()),
            ])
            .arg(format!("{}{path}", self.url()))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        if !out.status.success() {
            // The CA cut the connection (a body over its limit).
            assert!(stderr.contains("(55)"), "curl: {stderr}");
            return (0, Value::Null);
        }
        let (json, status) = stdout.rsplit_once('\n').unwrap();
        (
            status.trim().parse().unwrap(),
            serde_json::from_str(json).unwrap_or(Value::Null),
        )
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn json_of(out: &Output) -> Value {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "signet-node failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// A refusal by the CA, as signet-node reports it: exit 1, its code named.
fn assert_refused(out: &Output, code: &str, words: &str) {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(code) && stderr.contains(words),
        "expected {code} / {words:?}: {stderr}"
    );
}

/// `ssh-keygen -L` of a certificate file.
fn keygen_l(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "ssh-keygen -L: {stderr}");
    stdout
}

/// A real ssh to the node trusting only `known_hosts` (strict), as root
/// with a certificate from the CA; `alias` names the host for the
/// certificate check. Returns (ok, stdout, stderr with -v).
fn ssh(
    sshd: &Sshd,
    known_hosts: &Path,
    alias: Option<&str>,
    key: &Path,
    cert: &Path,
) -> (bool, String, String) {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-v",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .args(["-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=yes"])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
    .args(["-o", "GlobalKnownHostsFile=/dev/null"])
    .arg("-o")
    .arg(format!("IdentityFile={}", key.display()))
    .arg("-o")
    .arg(format!("CertificateFile={}", cert.display()))
    .args(["-p", &sshd.port().to_string()]);
    if let Some(alias) = alias {
        cmd.arg("-o").arg(format!("HostKeyAlias={alias}"));
    }
    let out = cmd
        .arg("root@127.0.0.1")
        .arg("echo signet-node-join-ok")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

/// The serial of the host certificate ssh saw (`ssh -v`).
fn seen_serial(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("Server host certificate:"))?;
    let rest = line.split(" serial ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_owned())
}

/// Every entry of the log (`log export`, no daemon running).
fn entries(ca: &Ca) -> Vec<Entry> {
    let dir = ca.path("export");
    let _ = std::fs::remove_dir_all(&dir);
    ca.ok(&["log", "export", dir.to_str().unwrap()]);
    let fetch = |path: &str| std::fs::read(dir.join(path)).unwrap();
    let note = signet_log::note::Note::parse(&fetch("checkpoint")).unwrap();
    let size = signet_log::checkpoint::Checkpoint::parse(note.text())
        .unwrap()
        .size();
    let mut out = Vec::new();
    for path in signet_log::tiles::tile_paths(size) {
        if path.kind() != signet_log::tiles::TileKind::Entries {
            continue;
        }
        let bundle =
            signet_log::tiles::EntryBundle::parse(&fetch(&path.to_string()), path.width()).unwrap();
        for bytes in bundle.entries() {
            out.push(Entry::from_bytes(bytes).unwrap());
        }
    }
    out
}

/// `ssh-keygen -Y sign` of `message` with `key` in `namespace`: the armored signature.
fn keygen_sign(key: &Path, namespace: &str, message: &[u8], dir: &Path) -> String {
    let file = dir.join(format!("msg-{}", rand_suffix()));
    std::fs::write(&file, message).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen -Y sign: {}", text(&out).1);
    let mut sig = file.as_os_str().to_owned();
    sig.push(".sig");
    std::fs::read_to_string(PathBuf::from(sig)).unwrap()
}

fn renewal_body(time: u64, cert_line: &str, signature: &str) -> String {
    serde_json::json!({
        "time": time,
        "renewals": [{ "certificate": cert_line, "signature": signature }],
    })
    .to_string()
}

fn cert_sha256(cert_line: &str) -> [u8; 32] {
    let cert = ssh_key::Certificate::from_openssh(cert_line.trim()).unwrap();
    Sha256::digest(cert.to_bytes().unwrap()).into()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_node_joins_sshd_presents_its_certificate_and_it_renews() {
    let mut bed = Bed::new("node-join");
    // A user certificate from the CA (before the daemon holds the store).
    let user_key = bed.ca.client_key("alice", "ed25519");
    let user_cert = bed.ca.sign_user(&user_key, &["root"], "1h");
    bed.serve();

    // Join with two host keys.
    let ed = bed.host_key("ssh_host_ed25519_key", "ed25519");
    let ec = bed.host_key("ssh_host_ecdsa_key", "ecdsa");
    let token = bed.invite("web-1", "1h");
    let token_text = std::fs::read_to_string(&token).unwrap().trim().to_owned();
    let out_dir = bed.path("etc");
    std::fs::create_dir(&out_dir).unwrap();
    let joined = json_of(&bed.join(&token, &[&ed, &ec], &out_dir));
    assert_eq!(joined["node"], "web-1", "{joined}");
    assert_eq!(
        joined["principals"],
        serde_json::json!(["web-1", "127.0.0.1"])
    );
    let certs = joined["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{joined}");
    let ed_cert = out_dir.join("ssh_host_ed25519_key-cert.pub");
    assert_eq!(certs[0]["path"], ed_cert.to_str().unwrap());
    for cert in certs {
        let path = Path::new(cert["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // ssh-keygen reads it as a host certificate for the node's names.
        let listing = keygen_l(path);
        assert!(listing.contains("host certificate"), "{listing}");
        assert!(
            listing.contains("Principals: \n                web-1\n                127.0.0.1\n"),
            "{listing}"
        );
        assert!(
            listing.contains(&format!("Serial: {}", cert["serial"].as_str().unwrap())),
            "{listing}"
        );
    }
    let snippet = std::fs::read_to_string(out_dir.join("signet.conf")).unwrap();
    assert!(
        snippet.contains(&format!("HostCertificate {}", ed_cert.display())),
        "{snippet}"
    );
    assert!(
        snippet.contains("AuthorizedPrincipalsCommandUser nobody"),
        "{snippet}"
    );
    let user_ca = std::fs::read_to_string(out_dir.join("signet_user_ca.pub")).unwrap();
    assert_eq!(
        user_ca.trim(),
        bed.ca_export("ssh-user-ca").trim(),
        "the TrustedUserCAKeys file holds the CA's user key"
    );
    let known = joined["known_hosts_line"].as_str().unwrap().to_owned();
    assert!(known.starts_with("@cert-authority * "), "{known}");

    // A real sshd with the drop-in; a real ssh trusting only that line.
    let known_hosts = bed.path("known_hosts");
    std::fs::write(&known_hosts, format!("{known}\n")).unwrap();
    let sshd = Sshd::start(&snippet, None);
    for alias in [None, Some("web-1")] {
        let (ok, stdout, stderr) = ssh(&sshd, &known_hosts, alias, &user_key, &user_cert);
        assert!(
            ok && stdout.contains("signet-node-join-ok"),
            "ssh as {alias:?}: {stderr}\n{}",
            sshd.log()
        );
        assert_eq!(
            seen_serial(&stderr).as_deref(),
            certs[0]["serial"].as_str(),
            "the certificate ssh verified: {stderr}"
        );
    }
    // A name the certificate does not carry: OpenSSH refuses the host.
    let (ok, _, stderr) = ssh(&sshd, &known_hosts, Some("db-1"), &user_key, &user_cert);
    assert!(!ok, "a host certificate for web-1 accepted as db-1");
    assert!(stderr.contains("Host key verification failed"), "{stderr}");
    drop(sshd);

    // The token was spent.
    assert_refused(
        &bed.join(&token, &[&ed], &bed.path("again")),
        "invite_invalid",
        "unknown, spent or expired",
    );

    // renew: nothing due yet; --force renews (a new serial), and sshd
    // started again presents the new certificate.
    let idle = json_of(&bed.renew(&out_dir, false));
    assert_eq!(idle["certificates"], serde_json::json!([]), "{idle}");
    let renewed = json_of(&bed.renew(&out_dir, true));
    let new = renewed["certificates"].as_array().unwrap();
    assert_eq!(new.len(), 2, "{renewed}");
    assert_ne!(new[0]["serial"], certs[0]["serial"]);
    assert!(keygen_l(&ed_cert).contains(&format!("Serial: {}", new[0]["serial"].as_str().unwrap())));
    let sshd = Sshd::start(&snippet, None);
    let (ok, _, stderr) = ssh(&sshd, &known_hosts, Some("web-1"), &user_key, &user_cert);
    assert!(ok, "after renewal: {stderr}\n{}", sshd.log());
    assert_eq!(seen_serial(&stderr).as_deref(), new[0]["serial"].as_str());
    drop(sshd);

    // A renewal signed by ssh-keygen (an independent SSHSIG) is accepted;
    // one signed by another key is refused.
    let cert_line = std::fs::read_to_string(&ed_cert).unwrap();
    let t = now();
    let message = signet_api::nodes::renewal_message(t, &cert_sha256(&cert_line));
    let good = keygen_sign(&ed, "renew@signet", &message, bed.node.path());
    let (status, body) = bed.post("/v1/nodes/renew", &renewal_body(t, &cert_line, &good));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["node"], "web-1");
    let other = bed.host_key("other_key", "ed25519");
    let forged = keygen_sign(&other, "renew@signet", &message, bed.node.path());
    let (status, body) = bed.post("/v1/nodes/renew", &renewal_body(t, &cert_line, &forged));
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_allowed")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("certified host key"),
        "{body}"
    );
    // The right key, another namespace: refused too.
    let wrong_ns = keygen_sign(&ed, "file", &message, bed.node.path());
    let (status, _) = bed.post("/v1/nodes/renew", &renewal_body(t, &cert_line, &wrong_ns));
    assert_eq!(status, 403);
    // Stale: signed an hour ago.
    let old = t - 3600;
    let stale_msg = signet_api::nodes::renewal_message(old, &cert_sha256(&cert_line));
    let stale = keygen_sign(&ed, "renew@signet", &stale_msg, bed.node.path());
    let (status, body) = bed.post("/v1/nodes/renew", &renewal_body(old, &cert_line, &stale));
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("clock"),
        "{body}"
    );
    // A user certificate of this CA is no host certificate.
    let user_line = std::fs::read_to_string(&user_cert).unwrap();
    let user_msg = signet_api::nodes::renewal_message(t, &cert_sha256(&user_line));
    let user_sig = keygen_sign(&user_key, "renew@signet", &user_msg, bed.node.path());
    let (status, body) = bed.post("/v1/nodes/renew", &renewal_body(t, &user_line, &user_sig));
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_allowed")),
        "{body}"
    );

    // Every certificate issued is in the log, with the node's principals;
    // the join's are bound to the token's hash; the token is nowhere.
    bed.daemon.as_mut().unwrap().terminate();
    let log = entries(&bed.ca);
    let hosts: Vec<&Entry> = log
        .iter()
        .filter(|e| e.kind == EntryKind::SshHostCert)
        .collect();
    let logged: Vec<&str> = hosts
        .iter()
        .map(|e| e.certificate.as_ref().unwrap().serial.as_str())
        .collect();
    for cert in certs.iter().chain(new) {
        assert!(
            logged.contains(&cert["serial"].as_str().unwrap()),
            "{logged:?}"
        );
    }
    let token_hash: [u8; 32] = Sha256::digest(token_text.as_bytes()).into();
    let bound = hosts
        .iter()
        .filter(|e| e.request_hash.as_ref().map(|h| h.0) == Some(token_hash))
        .count();
    assert_eq!(bound, 2, "the join's two certificates spent the token");
    for e in &hosts {
        assert_eq!(e.principals, ["web-1", "127.0.0.1"]);
        assert_eq!(e.subject.as_deref(), Some("web-1"));
    }
    let invite = log
        .iter()
        .find(|e| e.kind == EntryKind::Invite && e.subject.as_deref() == Some("node:web-1"))
        .expect("the invite is logged");
    assert!(
        matches!(invite.change, Some(Change::Invite { token_sha256, .. }) if token_sha256.0 == token_hash)
    );
    for e in &log {
        let json = String::from_utf8(e.to_canonical_bytes().unwrap()).unwrap();
        assert!(!json.contains(&token_text), "the token is in the log");
    }
    let daemon_log = std::fs::read_to_string(&bed.daemon_log).unwrap();
    assert!(daemon_log.contains("node_joined"), "{daemon_log}");
    assert!(
        !daemon_log.contains(&token_text),
        "the token is in the daemon's log"
    );
}

#[test]
fn joins_and_renewals_are_refused_with_their_reason() {
    let mut bed = Bed::new("node-join-refusals");
    bed.serve();
    let key = bed.host_key("k1", "ed25519");

    // An unknown node gets no invite at all.
    let out = bed.ca.run(&["nodes", "invite", "nosuch", "--ttl", "1h"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success() && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no node \"nosuch\""), "{stderr}");
    // Nor a TTL beyond a week.
    assert!(!bed
        .ca
        .run(&["nodes", "invite", "web-1", "--ttl", "8d"])
        .status
        .success());

    // An expired token.
    let expired = bed.invite("web-1", "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let dir = bed.path("expired");
    std::fs::create_dir(&dir).unwrap();
    assert_refused(
        &bed.join(&expired, &[&key], &dir),
        "invite_invalid",
        "expired",
    );

    // A token nobody issued.
    let forged = bed.path("forged.token");
    std::fs::write(&forged, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n").unwrap();
    assert_refused(
        &bed.join(&forged, &[&key], &dir),
        "invite_invalid",
        "spent or expired",
    );

    // No token at all: a usage error, nothing sent.
    let out = Command::new(witnesskit::sibling_binary("signet-node"))
        .args(["join", "--ca", &bed.url(), "--ca-root"])
        .arg(bed.root())
        .arg("--host-key")
        .arg(&key)
        .env_remove("SIGNET_NODE_JOIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    assert!(text(&out).1.contains("no join token"), "{}", text(&out).1);

    // Bad bodies, each refused with the field named; the token survives
    // them (it is spent only by a join that is otherwise acceptable).
    let token_file = bed.invite("db-1", "1h");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let line = std::fs::read_to_string(bed.path("k1.pub"))
        .unwrap()
        .trim()
        .to_owned();
    let join_body =
        |keys: Value| serde_json::json!({ "token": token, "host_keys": keys }).to_string();
    for (body, status, code, words) in [
        ("{".to_owned(), 400, "malformed_request", "does not parse"),
        ("[]".to_owned(), 400, "malformed_request", "does not parse"),
        (
            serde_json::json!({ "token": token }).to_string(),
            400,
            "malformed_request",
            "host_keys",
        ),
        (
            serde_json::json!({ "token": token, "host_keys": [line], "extra": 1 }).to_string(),
            400,
            "malformed_request",
            "extra",
        ),
        (
            join_body(serde_json::json!([])),
            400,
            "invalid_request",
            "host_keys: 1 to 4",
        ),
        (
            join_body(serde_json::json!([line, line, line, line, line])),
            400,
            "invalid_request",
            "host_keys: 1 to 4",
        ),
        (
            join_body(serde_json::json!(["ssh-ed25519 notbase64"])),
            400,
            "invalid_request",
            "host_keys[0]",
        ),
        (
            join_body(serde_json::json!([line, line])),
            400,
            "invalid_request",
            "given twice",
        ),
    ] {
        let (got, answer) = bed.post("/v1/nodes/join", &body);
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(words),
            "{body}: {answer}"
        );
    }
    for body in [
        "{}".to_owned(),
        serde_json::json!({ "time": now(), "renewals": [] }).to_string(),
        serde_json::json!({ "time": now(), "renewals": [{ "certificate": "x", "signature": "y" }] })
            .to_string(),
    ] {
        let (got, answer) = bed.post("/v1/nodes/renew", &body);
        assert!(
            got == 400 && answer["code"].as_str().is_some(),
            "{body}: {got} {answer}"
        );
    }
    // Over the body limit (64 KiB): 413, or the connection cut while
    // curl still sends.
    let (got, answer) = bed.post("/v1/nodes/join", &"x".repeat(80 << 10));
    assert!(got == 413 || got == 0, "{got} {answer}");

    // db-1 joins after all that: the token was still good.
    let db_key = bed.host_key("db_key", "ed25519");
    let db_dir = bed.path("db");
    std::fs::create_dir(&db_dir).unwrap();
    let joined = json_of(&bed.join(&token_file, &[&db_key], &db_dir));
    assert_eq!(
        joined["principals"],
        serde_json::json!(["db-1", "db-1.internal"])
    );

    // gone-1 is invited, then removed from the inventory before it joins.
    let gone_token = bed.invite("gone-1", "1h");
    let web_only = bed.ca.write("web-only.yaml", NODES_WEB_ONLY);
    bed.ca.ok(&["nodes", "apply", web_only.to_str().unwrap()]);
    let gone_dir = bed.path("gone");
    std::fs::create_dir(&gone_dir).unwrap();
    assert_refused(
        &bed.join(&gone_token, &[&key], &gone_dir),
        "not_allowed",
        "not in the CA's inventory",
    );
    // db-1 was removed too: its renewal is refused, its certificate kept.
    let before = std::fs::read_to_string(db_dir.join("db_key-cert.pub")).unwrap();
    assert_refused(
        &bed.renew(&db_dir, true),
        "not_allowed",
        "not in the CA's inventory",
    );
    assert_eq!(
        std::fs::read_to_string(db_dir.join("db_key-cert.pub")).unwrap(),
        before
    );
}

#[test]
fn a_token_is_spent_once_on_a_postgresql_store() {
    if common::embedded_store_only("it moves an embedded CA onto PostgreSQL itself") {
        return;
    }
    let mut pg = Postgres::start();
    let (mut bed, db) = Bed::on_postgres("node-join-pg", &mut pg);
    bed.serve();
    let key = bed.host_key("pg_key", "ed25519");
    let token = bed.invite("web-1", "1h");
    let token_text = std::fs::read_to_string(&token).unwrap().trim().to_owned();
    let hash = hex::encode(Sha256::digest(token_text.as_bytes()));
    // Stored by its hash only, unspent.
    let row = |what: &str| {
        bed.ca_psql(
            &pg,
            &db,
            &format!("SELECT {what} FROM join_tokens WHERE token_sha256 = '\\x{hash}'"),
        )
    };
    assert_eq!(row("subject, spent_at IS NULL").trim(), "node:web-1|t");
    let dump = bed.ca_psql(&pg, &db, "SELECT * FROM join_tokens");
    assert!(!dump.contains(&token_text), "{dump}");
    let dir = bed.path("pg");
    std::fs::create_dir(&dir).unwrap();
    let joined = json_of(&bed.join(&token, &[&key], &dir));
    assert_eq!(joined["node"], "web-1");
    assert_eq!(row("spent_at IS NOT NULL").trim(), "t");
    assert_refused(
        &bed.join(&token, &[&key], &bed.path("pg2")),
        "invite_invalid",
        "spent",
    );
    // The log on PostgreSQL has the certificate.
    let serial = joined["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let logged = bed.ca_psql(
        &pg,
        &db,
        &format!("SELECT count(*) FROM log_serials WHERE key = 'ssh:{serial}'"),
    );
    assert_eq!(logged.trim(), "1");
}

impl Bed {
    fn ca_psql(&self, pg: &Postgres, db: &str, sql: &str) -> String {
        pg.psql(db, sql)
    }

    fn ca_export(&self, what: &str) -> String {
        // The daemon holds the store, not the token: export reads the HSM.
        self.ca.ok(&["export", what])
    }
}
