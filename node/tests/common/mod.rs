//! A log, witnesses and an OpenSSH CA in memory: the CA side of
//! precertificates (log the precertificate, cosign the checkpoint, put the
//! proof in the final certificate) done with signet-log's functions, keys
//! from fixed seeds. (The same flow as signet-log's own test helper; the
//! real CA's wiring is tested in ca/server.)
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use sha2::{Digest, Sha256};
use signet_log::certificate::{CertificateProof, LogTrust, SshCertificateFields};
use signet_log::checkpoint::Checkpoint;
use signet_log::entry::{
    Actor, Base64Bytes, CertificateForm, Entry, EntryKind, IssuedCertificate, Sha256Hex,
};
use signet_log::merkle::{inclusion_proof, leaf_hash, root, Hash, MemoryHashStore};
use signet_log::note::cosignature::CosignatureSigner;
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};
use signet_log::witness::{append_cosignatures, Witness, WitnessPolicy};
use ssh_key::certificate::CertType;
use ssh_key::private::Ed25519Keypair;
use ssh_key::PrivateKey;

pub const ORIGIN: &str = "ca.example.com/signet-log";
/// The time every witness claims to cosign at.
pub const COSIGN_TIME: u64 = 1_764_547_200;

/// An Ed25519 witness key from a seed.
pub struct TestWitness {
    pub name: String,
    pub key: ed25519_dalek::SigningKey,
}

impl TestWitness {
    pub fn new(name: &str, seed: [u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    pub fn vkey(&self) -> VerifierKey {
        VerifierKey::cosignature_v1(&self.name, self.key.verifying_key().as_bytes()).unwrap()
    }

    pub fn cosign_line(&self, body: &str) -> String {
        let key = self.key.clone();
        let signer = CosignatureSigner::new(
            &self.name,
            self.key.verifying_key().as_bytes(),
            move |msg: &[u8]| {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(msg).to_bytes().to_vec())
            },
        )
        .unwrap();
        signer.cosign_line(body, COSIGN_TIME).unwrap()
    }
}

/// The log: its key, two witnesses, the leaves.
pub struct TestLog {
    pub key: TestEd25519Signer,
    pub witnesses: Vec<TestWitness>,
    pub store: MemoryHashStore,
}

impl TestLog {
    pub fn new() -> Self {
        Self {
            key: TestEd25519Signer::from_seed(ORIGIN, [1; 32]),
            witnesses: vec![
                TestWitness::new("witness-a.example", [2; 32]),
                TestWitness::new("witness-b.example", [3; 32]),
            ],
            store: MemoryHashStore::new(),
        }
    }

    /// Both witnesses must cosign (`threshold` of 2).
    pub fn trust(&self, threshold: usize) -> LogTrust {
        let witnesses = self
            .witnesses
            .iter()
            .map(|w| Witness::new(&w.name, None, w.vkey()))
            .collect();
        LogTrust {
            log_key: self.key.vkey.clone(),
            witnesses: WitnessPolicy::new(threshold, witnesses).unwrap(),
        }
    }

    pub fn append(&mut self, entry: &Entry) -> u64 {
        let index = self.store.size();
        self.store.push(entry.leaf_hash().unwrap());
        index
    }

    /// Some other entries, so proofs have hashes in them.
    pub fn append_filler(&mut self, n: usize) {
        for i in 0..n {
            self.store.push(leaf_hash(format!("filler {i}").as_bytes()));
        }
    }

    /// A checkpoint of `size` and `root` signed by the log and cosigned by
    /// the witnesses numbered in `cosigners`.
    pub fn note(&self, size: u64, root: Hash, cosigners: &[usize]) -> String {
        let checkpoint = Checkpoint::new(ORIGIN, size, root).unwrap();
        let signer: &dyn NoteSigner = &self.key;
        let note = checkpoint.sign(&[signer]).unwrap().to_text();
        let lines: Vec<String> = cosigners
            .iter()
            .map(|&i| self.witnesses[i].cosign_line(&checkpoint.to_text()))
            .collect();
        append_cosignatures(&note, &lines).unwrap()
    }

    /// The proof of the entry at `index`, against the current tree.
    pub fn proof(&self, index: u64, entry: &Entry, cosigners: &[usize]) -> CertificateProof {
        let size = self.store.size();
        let note = self.note(size, root(&self.store, size).unwrap(), cosigners);
        let inclusion = inclusion_proof(&self.store, index, size).unwrap();
        CertificateProof::new(index, entry, inclusion, &note).unwrap()
    }
}

/// An OpenSSH CA with a key from a seed.
pub fn ssh_ca(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

/// The fields of a user certificate for alice, for the key from `seed`.
pub fn alice_fields(seed: u8, serial: u64, principals: &[&str]) -> SshCertificateFields {
    let key = ssh_ca(seed);
    SshCertificateFields {
        nonce: vec![seed; 16],
        public_key: key.public_key().key_data().clone(),
        serial,
        cert_type: CertType::User,
        key_id: format!("user=alice serial={serial}"),
        valid_principals: principals.iter().map(|p| (*p).to_owned()).collect(),
        // Valid now: sshd checks the validity before it runs the command.
        valid_after: now() - 60,
        valid_before: now() + 8 * 3600,
        critical_options: Default::default(),
        extensions: [("permit-pty".to_owned(), String::new())]
            .into_iter()
            .collect(),
    }
}

/// The precertificate entry for `fields` signed by `ca`, naming
/// `principals` (which an honest CA takes from the fields).
pub fn ssh_entry(fields: &SshCertificateFields, ca: &PrivateKey, principals: &[&str]) -> Entry {
    let bytes = fields.precertificate(ca.public_key().key_data()).unwrap();
    Entry {
        kind: EntryKind::SshUserCert,
        time: fields.valid_after,
        actor: Actor::User {
            name: "alice".into(),
            webauthn_credential_id: None,
            piv_device: None,
            webauthn_sign_count: None,
        },
        request_hash: None,
        subject: Some("alice".into()),
        principals: principals.iter().map(|p| (*p).to_owned()).collect(),
        roles: vec!["prod-sre".into()],
        certificate: Some(IssuedCertificate {
            serial: fields.serial.to_string(),
            public_key_fingerprint: fields
                .public_key
                .fingerprint(ssh_key::HashAlg::Sha256)
                .to_string(),
            not_before: fields.valid_after,
            not_after: fields.valid_before,
            sha256: Sha256Hex(Sha256::digest(&bytes).into()),
            bytes: Base64Bytes(bytes),
            form: CertificateForm::Precertificate,
        }),
        change: None,
    }
}

/// The whole CA flow for one OpenSSH certificate: log the precertificate,
/// cosign, sign the final certificate with the proof.
pub fn issue_ssh(
    log: &mut TestLog,
    ca: &PrivateKey,
    fields: &SshCertificateFields,
    cosigners: &[usize],
) -> (ssh_key::Certificate, Entry) {
    let entry = ssh_entry(
        fields,
        ca,
        &fields
            .valid_principals
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let index = log.append(&entry);
    log.append_filler(3);
    let proof = log.proof(index, &entry, cosigners);
    let cert = fields.builder(Some(&proof)).unwrap().sign(ca).unwrap();
    (cert, entry)
}

/// A software Ed25519 note signer, standing in for the CA's HSM log key.
pub struct TestEd25519Signer {
    pub name: String,
    pub key: ed25519_dalek::SigningKey,
    pub vkey: VerifierKey,
}

impl TestEd25519Signer {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let vkey = VerifierKey::ed25519(name, key.verifying_key().as_bytes()).unwrap();
        Self {
            name: name.to_owned(),
            key,
            vkey,
        }
    }
}

impl NoteSigner for TestEd25519Signer {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// The node configuration for `log`, with a policy of `threshold`.
pub fn node_config(log: &TestLog, threshold: usize) -> String {
    let mut out = format!(
        "log_key = \"{}\"\n\n[witnesses]\nthreshold = {threshold}\n",
        log.key.vkey
    );
    for w in &log.witnesses {
        out.push_str(&format!(
            "\n[[witnesses.witness]]\nname = \"{}\"\nvkey = \"{}\"\n",
            w.name,
            w.vkey()
        ));
    }
    out
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
