//! The certificates the real CA issues with real witnesses, checked by
//! their relying parties: a real `sshd` with `signet-node principals` as
//! its `AuthorizedPrincipalsCommand` lets one in and refuses a certificate
//! signed with the CA's own SSH key straight through the HSM (as someone
//! with the token's PIN could) that was never logged; and an independent
//! Python check (standard library and `cryptography`,
//! tests/verify_cert_proof.py) recomputes the precertificate, the entry,
//! the inclusion proof, the log's signature and the witnesses'
//! cosignatures of OpenSSH and X.509 certificates (and node/tests/
//! check_proof.py, the node's own reading, those of OpenSSH ones).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;
mod witnesskit;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Ca;
use signet_log::certificate::{
    verify_ssh_certificate, CertificateProof, LogTrust, SshCertificateFields, SSH_PROOF_EXTENSION,
};
use signet_log::note::VerifierKey;
use signet_log::witness::{Witness, WitnessPolicy};
use signet_testkit::Sshd;
use witnesskit::{log_vkey, node_config, policy_toml, set_ca_witnesses, WitnessProcess, ORIGIN};

/// A CA whose checkpoints two witnesses cosign under `threshold`.
struct Bed {
    ca: Ca,
    vkey: String,
    a: WitnessProcess,
    b: WitnessProcess,
}

impl Bed {
    fn new(label: &str, threshold: usize) -> Self {
        let ca = Ca::initialised(label);
        let vkey = log_vkey(&ca);
        let a = WitnessProcess::start("witness-a.example", ORIGIN, &vkey);
        let b = WitnessProcess::start("witness-b.example", ORIGIN, &vkey);
        set_ca_witnesses(&ca, &policy_toml(threshold, &[&a, &b]));
        Self { ca, vkey, a, b }
    }

    fn trust(&self, threshold: usize) -> LogTrust {
        LogTrust {
            log_key: VerifierKey::parse(&self.vkey).unwrap(),
            witnesses: WitnessPolicy::new(
                threshold,
                [&self.a, &self.b]
                    .iter()
                    .map(|w| Witness::new(&w.name, None, VerifierKey::parse(&w.vkey).unwrap()))
                    .collect(),
            )
            .unwrap(),
        }
    }
}

fn read_cert(path: &Path) -> ssh_key::Certificate {
    ssh_key::Certificate::from_openssh(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A certificate signed with the CA's OpenSSH user key directly through
/// the HSM (the token's PIN, no CA, no log): `fields`, with `proof` in the
/// log-proof extension if given.
fn sign_through_the_hsm(
    ca: &Ca,
    fields: &SshCertificateFields,
    proof: Option<&CertificateProof>,
) -> ssh_key::Certificate {
    // This CA's token, whichever was made last (each test is its own
    // process under nextest, so the variable is this test's).
    std::env::set_var("SOFTHSM2_CONF", ca.hsm.conf());
    let token = signet_hsm::Token::open(&ca.hsm.token_config(1)).unwrap();
    let key = token
        .find_key("signet-ssh-user-ca", signet_hsm::KeyAlgorithm::EcdsaP256)
        .unwrap()
        .expect("the CA's SSH user key on the token");
    let signer = signet_hsm::SshSigner::new(token, key).unwrap();
    fields.builder(proof).unwrap().sign(&signer).unwrap()
}

/// The command and its configuration in a directory only root can change
/// (sshd refuses a command below a world-writable directory such as /tmp),
/// readable by `nobody`, the user sshd runs it as.
struct NodeDir {
    dir: tempfile::TempDir,
}

impl NodeDir {
    fn new(config: &str, user_ca: &str) -> Self {
        let dir = signet_testkit::root_only_tempdir(
            "signet-node-",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        );
        let bin = dir.path().join("signet-node");
        std::fs::copy(witnesskit::sibling_binary("signet-node"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, text) in [("node.toml", config), ("user-ca.pub", user_ca)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Logs in as root with `key` and `cert`; whether it worked, and the
/// signet-node line sshd logged for this attempt, if any.
fn login(sshd: &Sshd, key: &Path, cert: &Path) -> (bool, Option<String>) {
    let before = sshd.log().len();
    let (ok, stdout, _) = common::ssh_login(sshd.port(), "root", key, cert, None);
    let log = sshd.log();
    let line = log[before..]
        .lines()
        .find(|l| l.starts_with("signet-node: "))
        .map(str::to_owned);
    (ok && stdout.contains("signet-login-ok"), line)
}

#[test]
fn sshd_lets_in_what_the_ca_issued_and_refuses_what_the_hsm_signed_unlogged() {
    let bed = Bed::new("proofs-sshd", 1);
    let ca = &bed.ca;
    let key = ca.client_key("k", "ed25519");
    let cert_path = ca.sign_user(&key, &["root"], "1h");
    let cert = read_cert(&cert_path);
    // The proof is there, against a checkpoint one witness cosigned at least.
    assert!(!verify_ssh_certificate(&cert, &bed.trust(1))
        .unwrap()
        .cosigners
        .is_empty());

    // The node: the CA's user CA trusted by sshd, and signet-node with the
    // CA's log key and the same 1-of-2 policy (the lines of node/README.md).
    let user_ca = ca.ok(&["export", "ssh-user-ca"]);
    let node = NodeDir::new(&node_config(&bed.vkey, 1, &[&bed.a, &bed.b]), &user_ca);
    let sshd = Sshd::start(
        &format!(
            "TrustedUserCAKeys {}\n\
             AuthorizedPrincipalsCommand {} principals --config {} %u %t %k\n\
             AuthorizedPrincipalsCommandUser nobody\n",
            node.path("user-ca.pub").display(),
            node.path("signet-node").display(),
            node.path("node.toml").display()
        ),
        None,
    );

    let (ok, line) = login(&sshd, &key, &cert_path);
    assert!(
        ok,
        "the CA's certificate did not log in: {line:?}\n{}",
        sshd.log()
    );

    // The same contents, another serial, signed by the CA's key through
    // the HSM with the token's PIN: sshd trusts the signature, signet-node
    // finds no proof.
    let mut fields = SshCertificateFields::from_certificate(&cert);
    // (The fields leave the proof out: it is not part of the contents.)
    assert!(!fields.extensions.contains_key(SSH_PROOF_EXTENSION));
    let proof = CertificateProof::parse(cert.extensions()[SSH_PROOF_EXTENSION].as_bytes()).unwrap();
    fields.serial ^= 1;
    fields.nonce = vec![7; 32];
    fields.key_id = format!("user=alice serial={}", fields.serial);
    let unlogged = sign_through_the_hsm(ca, &fields, None);
    let unlogged_path = ca.write("unlogged-cert.pub", &unlogged.to_openssh().unwrap());
    let (ok, line) = login(&sshd, &key, &unlogged_path);
    assert!(!ok, "an unlogged certificate logged in");
    let line = line.unwrap_or_else(|| panic!("no signet-node line:\n{}", sshd.log()));
    assert!(line.contains("carries no log proof"), "{line}");
    assert!(
        line.contains(&format!("serial={}", fields.serial)),
        "{line}"
    );

    // The same, carrying the real certificate's proof: another entry's.
    let borrowed = sign_through_the_hsm(ca, &fields, Some(&proof));
    let borrowed_path = ca.write("borrowed-cert.pub", &borrowed.to_openssh().unwrap());
    let (ok, line) = login(&sshd, &key, &borrowed_path);
    assert!(!ok, "a certificate with another entry's proof logged in");
    let line = line.unwrap_or_else(|| panic!("no signet-node line:\n{}", sshd.log()));
    assert!(line.contains("the proof is for another entry"), "{line}");

    // And the CA's certificate still does.
    let (ok, _) = login(&sshd, &key, &cert_path);
    assert!(ok, "{}", sshd.log());
}

/// Runs the Python checker; (success, its one line).
fn python_check(
    cert: &Path,
    log_vkey: &str,
    witnesses: &[&str],
    threshold: usize,
) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_cert_proof.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(["--log-vkey", log_vkey]);
    for w in witnesses {
        cmd.args(["--witness", w]);
    }
    let out = cmd
        .args(["--threshold", &threshold.to_string()])
        .arg(cert)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.stderr.is_empty(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), stdout)
}

#[test]
fn an_independent_check_of_the_cas_certificates_and_cosignatures() {
    let bed = Bed::new("proofs-python", 2);
    let ca = &bed.ca;
    let key = ca.client_key("k", "ed25519");
    let ssh_path = ca.sign_user(&key, &["deploy", "root"], "1h");
    let x509 = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "dave",
        "--ttl",
        "1h",
        "--public-key",
        &format!("{}.pub", key.display()),
    ]);
    let x509_path = ca.write("dave.pem", &x509);
    let (a, b) = (bed.a.vkey.as_str(), bed.b.vkey.as_str());

    let index = verify_ssh_certificate(&read_cert(&ssh_path), &bed.trust(2))
        .unwrap()
        .index;
    let (ok, line) = python_check(&ssh_path, &bed.vkey, &[a, b], 2);
    assert!(ok, "{line}");
    assert!(
        line.starts_with(&format!("ok index {index} size ")),
        "{line}"
    );
    assert!(
        line.ends_with("cosigned-by witness-a.example,witness-b.example"),
        "{line}"
    );
    // The node's own reading of the format (node/tests/check_proof.py,
    // OpenSSH only) agrees on the CA's certificate.
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../node/tests/check_proof.py"
        ))
        .arg(&ssh_path)
        .arg(&bed.vkey)
        .arg("2")
        .args([a, b])
        .output()
        .unwrap();
    let node_line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{node_line}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        node_line.starts_with(&format!("ok index={index} ")),
        "{node_line}"
    );
    let (ok, line) = python_check(&x509_path, &bed.vkey, &[a, b], 2);
    assert!(ok, "{line}");
    assert!(
        line.starts_with(&format!("ok index {} ", index + 1)),
        "{line}"
    );

    // The checker can say no: another log's key; a witness that did not
    // cosign under a policy of two; the certificate re-signed through the
    // HSM with its proof's index changed (the same precertificate, so only
    // the inclusion proof can catch it).
    let other = Ca::initialised("proofs-python-other");
    let (ok, line) = python_check(&ssh_path, &log_vkey(&other), &[a, b], 2);
    assert!(!ok);
    assert!(line.contains("not signed by the log key"), "{line}");
    let c = WitnessProcess::start("witness-c.example", ORIGIN, &bed.vkey);
    let (ok, line) = python_check(&x509_path, &bed.vkey, &[a, &c.vkey], 2);
    assert!(!ok);
    assert!(
        line.contains("2 of the witnesses must cosign, 1 did"),
        "{line}"
    );
    let cert = read_cert(&ssh_path);
    let mut fields = SshCertificateFields::from_certificate(&cert);
    let mut proof =
        CertificateProof::parse(cert.extensions()[SSH_PROOF_EXTENSION].as_bytes()).unwrap();
    proof.index -= 1;
    let moved = sign_through_the_hsm(ca, &fields, Some(&proof));
    let moved_path = ca.write("moved-cert.pub", &moved.to_openssh().unwrap());
    let (ok, line) = python_check(&moved_path, &bed.vkey, &[a, b], 2);
    assert!(!ok);
    assert!(line.contains("inclusion proof"), "{line}");
    // An unlogged certificate has nothing to check (the CA's signature is
    // not the checker's business, so any key signs it).
    let anyone = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[9; 32]));
    fields.serial ^= 1;
    let bare = fields.builder(None).unwrap().sign(&anyone).unwrap();
    let bare_path = ca.write("bare-cert.pub", &bare.to_openssh().unwrap());
    let (ok, line) = python_check(&bare_path, &bed.vkey, &[a, b], 2);
    assert!(!ok);
    assert!(line.contains("carries no log-proof@signet"), "{line}");
}
