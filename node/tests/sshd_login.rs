//! signet-node as a real sshd's AuthorizedPrincipalsCommand: a logged
//! certificate with its proof logs in with the real `ssh`; unlogged,
//! mis-proven and mis-logged certificates signed by the same trusted CA
//! are refused, each with its reason in sshd's log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{alice_fields, issue_ssh, node_config, ssh_ca, ssh_entry, TestLog};
use signet_log::certificate::{CertificateProof, SshCertificateFields, SSH_PROOF_EXTENSION};
use signet_testkit::Sshd;
use ssh_key::{LineEnding, PrivateKey};

/// The command and its configuration live in a directory only root can
/// change, (sshd refuses a command below a world-writable directory such as
/// /tmp, where the target directory may be), readable by `nobody`, the user
/// sshd runs it as.
struct NodeDir {
    dir: tempfile::TempDir,
}

impl NodeDir {
    fn new(config: &str) -> Self {
        let dir = signet_testkit::root_only_tempdir(
            "signet-node-",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        );
        let bin = dir.path().join("signet-node");
        std::fs::copy(env!("CARGO_BIN_EXE_signet-node"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let conf = dir.path().join("node.toml");
        std::fs::write(&conf, config).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
        Self { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("signet-node")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("node.toml")
    }
}

struct Bed {
    sshd: Sshd,
    _node: NodeDir,
    ca: PrivateKey,
}

impl Bed {
    fn start(log: &TestLog, threshold: usize) -> Self {
        let ca = ssh_ca(10);
        let node = NodeDir::new(&node_config(log, threshold));
        let ca_file = node.dir.path().join("ca.pub");
        std::fs::write(&ca_file, ca.public_key().to_openssh().unwrap()).unwrap();
        let sshd = Sshd::start(
            &format!(
                "TrustedUserCAKeys {}\n\
                 AuthorizedPrincipalsCommand {} principals --config {} %u %t %k\n\
                 AuthorizedPrincipalsCommandUser nobody\n",
                ca_file.display(),
                node.bin().display(),
                node.config().display()
            ),
            None,
        );
        Self {
            sshd,
            _node: node,
            ca,
        }
    }

    /// `ssh root@127.0.0.1 echo logged-in` with the key from `seed` and
    /// `cert`; whether it logged in, and sshd's log.
    fn login(&self, name: &str, seed: u8, cert: &ssh_key::Certificate) -> (bool, String) {
        let dir = self.sshd.dir();
        let key_path = dir.join(format!("{name}-key"));
        let key = ssh_ca(seed);
        std::fs::write(
            &key_path,
            key.to_openssh(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cert_path = dir.join(format!("{name}-key-cert.pub"));
        std::fs::write(&cert_path, cert.to_openssh().unwrap()).unwrap();
        let out = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                dir.join("known_hosts").display()
            ))
            .arg("-i")
            .arg(&key_path)
            .arg("-o")
            .arg(format!("CertificateFile={}", cert_path.display()))
            .args([
                "-p",
                &self.sshd.port().to_string(),
                "root@127.0.0.1",
                "echo logged-in",
            ])
            .output()
            .unwrap();
        let ok = out.status.success() && String::from_utf8_lossy(&out.stdout).contains("logged-in");
        (ok, self.sshd.log())
    }

    /// Expects the login to be refused with `reason` in a signet-node line
    /// of sshd's log that names the certificate.
    fn refused(&self, name: &str, seed: u8, cert: &ssh_key::Certificate, reason: &str) {
        let before = self.sshd.log().len();
        let (ok, log) = self.login(name, seed, cert);
        assert!(
            !ok,
            "{name}: logged in, but should have been refused:\n{log}"
        );
        let new = &log[before..];
        let line = new
            .lines()
            .find(|l| l.starts_with("signet-node: "))
            .unwrap_or_else(|| panic!("{name}: no signet-node line in sshd's log:\n{new}"));
        eprintln!("{name}: {line}");
        assert!(
            line.contains(reason),
            "{name}: {line:?} does not say {reason:?}"
        );
        let key_id = format!("key_id={:?}", cert.key_id());
        assert!(
            line.contains(&key_id),
            "{name}: {line:?} does not name {key_id}"
        );
        assert!(
            line.contains(&format!("serial={}", cert.serial())),
            "{line}"
        );
    }
}

#[test]
fn sshd_logs_in_only_logged_certificates() {
    let mut log = TestLog::new();
    log.append_filler(10);
    let bed = Bed::start(&log, 2);
    let ca = bed.ca.clone();

    // A logged certificate with both cosignatures logs in.
    let fields = alice_fields(20, 1, &["root"]);
    let (good, good_entry) = issue_ssh(&mut log, &ca, &fields, &[0, 1]);
    let (ok, sshd_log) = bed.login("good", 20, &good);
    assert!(ok, "the logged certificate did not log in:\n{sshd_log}");
    let good_proof =
        CertificateProof::parse(good.extensions()[SSH_PROOF_EXTENSION].as_bytes()).unwrap();

    // Signed by the trusted CA, never logged, no proof.
    let unlogged = alice_fields(21, 2, &["root"])
        .builder(None)
        .unwrap()
        .sign(&ca)
        .unwrap();
    bed.refused("unlogged", 21, &unlogged, "carries no log proof");

    // The good certificate's proof, on another key's certificate.
    let other = alice_fields(22, 1, &["root"])
        .builder(Some(&good_proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    bed.refused("other-entry", 22, &other, "the proof is for another entry");

    // A checkpoint cosigned by one witness where the node wants two.
    let (one_cosig, _) = issue_ssh(&mut log, &ca, &alice_fields(23, 3, &["root"]), &[0]);
    bed.refused("one-cosignature", 23, &one_cosig, "witness policy not met");

    // A cosignature that does not verify.
    let mut bad = good_proof.clone();
    let at = bad.checkpoint_note.find("— witness-b.example ").unwrap() + 30;
    let mut note = bad.checkpoint_note.into_bytes();
    note[at] = if note[at] == b'A' { b'B' } else { b'A' };
    bad.checkpoint_note = String::from_utf8(note).unwrap();
    let bad_cosig = fields.builder(Some(&bad)).unwrap().sign(&ca).unwrap();
    bed.refused(
        "bad-cosignature",
        20,
        &bad_cosig,
        "invalid cosignature by witness \"witness-b.example\"",
    );

    // The good certificate with its proof stripped and re-signed.
    let stripped = SshCertificateFields::from_certificate(&good)
        .builder(None)
        .unwrap()
        .sign(&ca)
        .unwrap();
    bed.refused("stripped", 20, &stripped, "carries no log proof");

    // A proof that verifies, of an entry that lists other principals.
    let lying_fields = alice_fields(24, 4, &["root"]);
    let lying_entry = ssh_entry(&lying_fields, &ca, &["alice"]);
    let index = log.append(&lying_entry);
    let proof = log.proof(index, &lying_entry, &[0, 1]);
    let lying = lying_fields
        .builder(Some(&proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    bed.refused(
        "other-principals",
        24,
        &lying,
        "the logged entry does not match the certificate: principals",
    );

    // The good one still logs in (nothing above was cached or remembered).
    let (ok, sshd_log) = bed.login("good-again", 20, &good);
    assert!(ok, "{sshd_log}");
    assert_eq!(good_entry.principals, ["root"]);
}

/// A 1-of-2 policy takes the checkpoint one witness cosigned.
#[test]
fn a_one_of_two_policy_takes_one_cosignature() {
    let mut log = TestLog::new();
    let bed = Bed::start(&log, 1);
    let ca = bed.ca.clone();
    let (one, _) = issue_ssh(&mut log, &ca, &alice_fields(25, 5, &["root"]), &[1]);
    let (ok, sshd_log) = bed.login("one-of-two", 25, &one);
    assert!(ok, "{sshd_log}");
}

fn run_node(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_signet-node"))
        .arg("principals")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The command line alone, as sshd runs it: the principals on stdout for a
/// good certificate; for anything else nothing on stdout, a non-zero exit
/// and one line on stderr.
#[test]
fn the_command_fails_closed() {
    let mut log = TestLog::new();
    let ca = ssh_ca(10);
    let (good, _) = issue_ssh(
        &mut log,
        &ca,
        &alice_fields(20, 1, &["root", "deploy"]),
        &[0, 1],
    );
    let node = NodeDir::new(&node_config(&log, 2));
    let b64 = |c: &ssh_key::Certificate| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(c.to_bytes().unwrap())
    };
    let ty = "ssh-ed25519-cert-v01@openssh.com";

    let (code, out, err) = run_node(&node.config(), &["root", ty, &b64(&good)]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "root\ndeploy\n", "")
    );

    let one_line = |code: i32, out: &str, err: &str, want_code: i32, reason: &str| {
        assert_eq!(code, want_code, "{err}");
        assert_eq!(out, "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("signet-node: ") && err.contains(reason),
            "{err}"
        );
    };
    // Another key type than sshd names.
    let (c, o, e) = run_node(
        &node.config(),
        &["root", "ssh-rsa-cert-v01@openssh.com", &b64(&good)],
    );
    one_line(c, &o, &e, 1, "sshd named the key type");
    // Not base64, not a certificate, a truncated one.
    let (c, o, e) = run_node(&node.config(), &["root", ty, "%%%"]);
    one_line(c, &o, &e, 1, "not base64");
    let (c, o, e) = run_node(&node.config(), &["root", ty, "AAAA"]);
    one_line(c, &o, &e, 1, "not a readable OpenSSH certificate");
    let whole = b64(&good);
    let (c, o, e) = run_node(&node.config(), &["root", ty, &whole[..whole.len() - 8]]);
    one_line(c, &o, &e, 1, "not a readable OpenSSH certificate");
    // A host certificate, logged and proven, is no user certificate.
    let mut host_fields = alice_fields(26, 6, &["node1.example"]);
    host_fields.cert_type = ssh_key::certificate::CertType::Host;
    host_fields.key_id = "host=node1.example serial=6".into();
    let mut host_entry = ssh_entry(&host_fields, &ca, &["node1.example"]);
    host_entry.kind = signet_log::entry::EntryKind::SshHostCert;
    host_entry.subject = Some("node1.example".into());
    let index = log.append(&host_entry);
    let proof = log.proof(index, &host_entry, &[0, 1]);
    let host = host_fields
        .builder(Some(&proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    let (c, o, e) = run_node(&node.config(), &["root", ty, &b64(&host)]);
    one_line(c, &o, &e, 1, "a host certificate, not a user certificate");
    // Usage.
    let out = Command::new(env!("CARGO_BIN_EXE_signet-node"))
        .args(["principals", "root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: signet-node principals"));
}

/// The configuration decides who logs in: refused when others could
/// change it, and every error names the field.
#[test]
fn config_errors_name_the_field_and_unsafe_files_are_refused() {
    let log = TestLog::new();
    let ca = ssh_ca(10);
    let cert = alice_fields(20, 1, &["root"])
        .builder(None)
        .unwrap()
        .sign(&ca)
        .unwrap();
    let cert = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(cert.to_bytes().unwrap())
    };
    let ty = "ssh-ed25519-cert-v01@openssh.com";
    let good = node_config(&log, 2);
    let cases: Vec<(String, &str)> = vec![
        (good.replace("log_key", "logkey"), "log_key"),
        (
            good.replacen("log_key = \"", "log_key = \"x", 1),
            "log_key: ",
        ),
        (
            format!(
                "log_key = \"{}\"\n[witnesses]\nthreshold = 0\n",
                log.witnesses[0].vkey()
            ),
            "log_key: is a witness's cosignature/v1 key",
        ),
        (
            good.replace("threshold = 2", "threshold = 3"),
            "witnesses.threshold",
        ),
        (
            good.replace("[witnesses]\nthreshold = 2\n", ""),
            "witnesses",
        ),
        (format!("{good}\nextra = 1\n"), "extra"),
        (
            good.replacen("vkey = \"witness-a", "vkey = \"witness-z", 1),
            "witnesses.witness[0].vkey",
        ),
    ];
    for (text, field) in cases {
        let node = NodeDir::new(&text);
        let (code, out, err) = run_node(&node.config(), &["root", ty, &cert]);
        assert_eq!(code, 2, "{text}\n{err}");
        assert_eq!(out, "");
        assert!(
            err.contains("config ") && err.contains(field),
            "{field}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // Writable by others, or by the group: refused before it is read.
    let node = NodeDir::new(&good);
    for (mode, who) in [
        (0o666, "writable by others"),
        (0o664, "writable by its group"),
    ] {
        std::fs::set_permissions(node.config(), std::fs::Permissions::from_mode(mode)).unwrap();
        let (code, out, err) = run_node(&node.config(), &["root", ty, &cert]);
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(
            err.contains("unsafe ownership or permissions") && err.contains(who),
            "{err}"
        );
    }
    // A directory above it writable by others.
    std::fs::set_permissions(node.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(node.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run_node(&node.config(), &["root", ty, &cert]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("directory is writable by others"), "{err}");
    std::fs::set_permissions(node.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Owned by someone else (only root can hand a file to another user).
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if is_root {
        let status = Command::new("chown")
            .arg("65534")
            .arg(node.config())
            .status()
            .unwrap();
        assert!(status.success());
        let (code, _, err) = run_node(&node.config(), &["root", ty, &cert]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("owned by uid 65534"), "{err}");
    } else {
        eprintln!("not root: the foreign-owner case is not run");
    }
    // A missing file.
    let (code, _, err) = run_node(Path::new("/nonexistent/node.toml"), &["root", ty, &cert]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open"), "{err}");
}
