//! Fuzz the proof a certificate carries (`signet-cert-proof/v1`): the text
//! parser, and the verification of an OpenSSH certificate carrying the
//! text, against the test vector's log key and 2-of-2 witness policy.
//!
//! Beyond "no panic": an accepted text re-encodes to the same bytes; the
//! answer is the same twice; and only the vector's own proof verifies
//! (anything else the fuzzer finds that verifies would be a forgery).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_log::certificate::{
    verify_ssh_certificate, CertificateProof, LogTrust, SshCertificateFields,
};
use signet_log::note::VerifierKey;
use signet_log::witness::WitnessPolicy;
use std::sync::OnceLock;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ca/log/tests/vectors/cert-proof/"
);

struct Fixture {
    trust: LogTrust,
    fields: SshCertificateFields,
    proof: String,
    ca_key: ssh_key::public::KeyData,
    signature: ssh_key::Signature,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let read = |name: &str| std::fs::read_to_string(format!("{VECTORS}{name}")).unwrap();
        let cert = ssh_key::Certificate::from_openssh(read("ssh-user-cert.pub").trim()).unwrap();
        Fixture {
            trust: LogTrust {
                log_key: VerifierKey::parse(read("log.vkey").trim()).unwrap(),
                witnesses: toml::from_str::<WitnessPolicy>(&read("witnesses.toml")).unwrap(),
            },
            fields: SshCertificateFields::from_certificate(&cert),
            proof: read("proof.txt"),
            ca_key: cert.signature_key().clone(),
            signature: cert.signature().clone(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = CertificateProof::parse(data);
    if let Ok(proof) = &parsed {
        assert_eq!(
            proof.encode().as_bytes(),
            data,
            "accepted text re-encodes differently"
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The vector's certificate with this text as its proof. The signature
    // is the vector's (unchecked here, as sshd checks it before the node
    // check runs): the node's verdict depends on the proof alone.
    let f = fixture();
    let mut builder = match f.fields.builder(None) {
        Ok(b) => b,
        Err(_) => return,
    };
    if builder
        .extension(signet_log::certificate::SSH_PROOF_EXTENSION, text)
        .is_err()
    {
        return;
    }
    let Some(cert) = with_signature(builder, &f.ca_key, &f.signature) else {
        return;
    };
    let verdict = verify_ssh_certificate(&cert, &f.trust)
        .map(|v| v.index)
        .map_err(|e| e.to_string());
    assert_eq!(
        verdict,
        verify_ssh_certificate(&cert, &f.trust)
            .map(|v| v.index)
            .map_err(|e| e.to_string()),
        "the same certificate, another answer"
    );
    if verdict.is_ok() {
        assert_eq!(text, f.proof, "a proof other than the vector's verified");
    }
});

/// The certificate the builder makes, with `signature` in place of a real
/// one: the builder's message to sign (kept by a "signer" that refuses)
/// followed by the given signature. (Not `Builder::sign` with a fixed
/// answer: with debug assertions it checks the signature.)
fn with_signature(
    builder: ssh_key::certificate::Builder,
    ca_key: &ssh_key::public::KeyData,
    signature: &ssh_key::Signature,
) -> Option<ssh_key::Certificate> {
    use ssh_key::encoding::Encode as _;
    use std::cell::RefCell;
    struct Recorder(ssh_key::public::KeyData, RefCell<Option<Vec<u8>>>);
    impl signature::Signer<ssh_key::Signature> for Recorder {
        fn try_sign(&self, msg: &[u8]) -> Result<ssh_key::Signature, signature::Error> {
            *self.1.borrow_mut() = Some(msg.to_vec());
            Err(signature::Error::new())
        }
    }
    impl From<&Recorder> for ssh_key::public::KeyData {
        fn from(r: &Recorder) -> Self {
            r.0.clone()
        }
    }
    let recorder = Recorder(ca_key.clone(), RefCell::new(None));
    let _ = builder.sign(&recorder);
    let mut blob = recorder.1.into_inner()?;
    signature.encode_prefixed(&mut blob).ok()?;
    ssh_key::Certificate::from_bytes(&blob).ok()
}
