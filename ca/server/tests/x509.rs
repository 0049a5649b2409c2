//! X.509 certificates from the HSM, checked by `openssl`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::Ca;

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn client_certificates_verify_strictly_and_show_the_profile() {
    let ca = Ca::initialised("ca-x509");
    let root = ca.path("data/x509-ca.pem");
    let exported = ca.export_to_file("x509-ca");
    assert_eq!(
        std::fs::read_to_string(&root).unwrap(),
        std::fs::read_to_string(&exported).unwrap()
    );

    let (ok, text) = openssl(&["x509", "-in", root.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("CN = Signet Example Root CA"), "{text}");

    // OpenSSH key and PEM SPKI keys are both accepted.
    let ssh_key = ca.client_key("alice", "ed25519");
    let pem_private = ca.path("bob.key");
    assert!(
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            pem_private.to_str().unwrap()
        ])
        .0
    );
    let pem_public = ca.path("bob.pub.pem");
    assert!(
        openssl(&[
            "pkey",
            "-in",
            pem_private.to_str().unwrap(),
            "-pubout",
            "-out",
            pem_public.to_str().unwrap()
        ])
        .0
    );

    for (user, key) in [
        ("alice", format!("{}.pub", ssh_key.display())),
        ("bob", pem_public.display().to_string()),
    ] {
        let pem = ca.ok(&[
            "sign",
            "x509-client",
            "--user",
            user,
            "--ttl",
            "1h",
            "--public-key",
            &key,
        ]);
        let cert = ca.write(&format!("{user}.pem"), &pem);
        let (ok, text) = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            root.to_str().unwrap(),
            cert.to_str().unwrap(),
        ]);
        assert!(ok, "{text}");
        let (ok, text) = openssl(&[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            root.to_str().unwrap(),
            cert.to_str().unwrap(),
        ]);
        assert!(ok, "not valid for TLS client auth: {text}");
        let (_, text) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
        assert!(text.contains(&format!("Subject: CN = {user}")), "{text}");
        assert!(
            text.contains(&format!("URI:signet://example.com/user/{user}")),
            "{text}"
        );
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        assert!(text.contains("Digital Signature"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    }

    // Serial numbers are random and distinct.
    let (_, a) = openssl(&[
        "x509",
        "-in",
        ca.path("alice.pem").to_str().unwrap(),
        "-noout",
        "-serial",
    ]);
    let (_, b) = openssl(&[
        "x509",
        "-in",
        ca.path("bob.pem").to_str().unwrap(),
        "-noout",
        "-serial",
    ]);
    assert_ne!(a, b);
    assert_eq!(
        a.trim().trim_start_matches("serial=").len(),
        32,
        "128-bit serial: {a}"
    );

    // A certificate from another CA does not verify against ours.
    let other_key = ca.path("other.key");
    let other_root = ca.path("other-root.pem");
    assert!(
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            other_key.to_str().unwrap(),
            "-subj",
            "/CN=Signet Example Root CA/O=Example Corp",
            "-out",
            other_root.to_str().unwrap(),
            "-days",
            "1"
        ])
        .0
    );
    let (ok, _) = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        root.to_str().unwrap(),
        other_root.to_str().unwrap(),
    ]);
    assert!(!ok);
}
