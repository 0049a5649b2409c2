//! The `signet-ca` command line: the ceremony, and bad input of every kind —
//! each a clear error, a meaningful exit code, and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Ca;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_generates_once_then_keeps_keys_and_root() {
    let ca = Ca::new(
        "ca-init",
        ["ecdsa-p256", "ecdsa-p384", "ecdsa-p256", "ed25519"],
    );
    let first = ca.ok(&["init"]);
    assert_eq!(first.matches("generated").count(), 4, "{first}");
    let root = std::fs::read(ca.path("data/x509-ca.pem")).unwrap();
    let user_ca = ca.ok(&["export", "ssh-user-ca"]);
    assert!(user_ca.starts_with("ecdsa-sha2-nistp256 "), "{user_ca}");
    assert!(ca
        .ok(&["export", "ssh-host-ca"])
        .starts_with("ecdsa-sha2-nistp384 "));

    let second = ca.ok(&["init"]);
    assert_eq!(
        second.matches("kept (already on the token)").count(),
        4,
        "{second}"
    );
    assert!(second.contains("(kept)"), "{second}");
    assert_eq!(std::fs::read(ca.path("data/x509-ca.pem")).unwrap(), root);
    assert_eq!(ca.ok(&["export", "ssh-user-ca"]), user_ca);

    let json: serde_json::Value = serde_json::from_str(&ca.ok(&["init", "--json"])).unwrap();
    assert_eq!(json["keys"].as_array().unwrap().len(), 4);
    assert_eq!(json["keys"][0]["generated"], false);

    // Changing a configured key type afterwards is refused, not silently regenerated.
    let text = std::fs::read_to_string(&ca.config)
        .unwrap()
        .replace("ssh_user_ca = \"ecdsa-p256\"", "ssh_user_ca = \"rsa-3072\"");
    std::fs::write(&ca.config, text).unwrap();
    let out = ca.run(&["init"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("signet-ssh-user-ca"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bad_requests_fail_clearly_and_write_nothing() {
    let ca = Ca::initialised("ca-bad-input");
    let key = ca.client_key("k", "ed25519");
    let public = format!("{}.pub", key.display());
    let first = ca.sign_json(&[
        "ssh-user",
        "--user",
        "alice",
        "--principal",
        "root",
        "--ttl",
        "1h",
        "--public-key",
        &public,
    ]);
    assert_eq!(first["log_index"], 0);

    let malformed = ca.write("malformed.pub", "ssh-ed25519 AAAA-not-base64 x\n");
    let private = ca.path("k");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--ttl",
                "1h",
                "--public-key",
                &public,
            ],
            2,
            "--principal: at least one is required",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root",
                "--ttl",
                "9h",
                "--public-key",
                &public,
            ],
            4,
            "above the maximum",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root",
                "--ttl",
                "0s",
                "--public-key",
                &public,
            ],
            2,
            "--ttl: must be greater than zero",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root",
                "--ttl",
                "-1h",
                "--public-key",
                &public,
            ],
            2,
            "--ttl",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root",
                "--ttl",
                "1h",
                "--public-key",
                malformed.to_str().unwrap(),
            ],
            2,
            "--public-key",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root",
                "--ttl",
                "1h",
                "--public-key",
                private.to_str().unwrap(),
            ],
            2,
            "private key",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root",
                "--ttl",
                "1h",
                "--public-key",
                "/nonexistent.pub",
            ],
            2,
            "--public-key: cannot read",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "al ice",
                "--principal",
                "root",
                "--ttl",
                "1h",
                "--public-key",
                &public,
            ],
            2,
            "--user",
        ),
        (
            vec![
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                "root,admin",
                "--ttl",
                "1h",
                "--public-key",
                &public,
            ],
            2,
            "--principal",
        ),
        (
            vec!["sign", "ssh-host", "--ttl", "1h", "--public-key", &public],
            2,
            "--host: at least one is required",
        ),
        (
            vec![
                "sign",
                "x509-client",
                "--user",
                "alice",
                "--ttl",
                "10h",
                "--public-key",
                &public,
            ],
            4,
            "above the maximum",
        ),
    ];
    for (args, code, message) in cases {
        let out = ca.run(&args);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed something");
    }
    let next = ca.sign_json(&[
        "ssh-user",
        "--user",
        "alice",
        "--principal",
        "root",
        "--ttl",
        "1h",
        "--public-key",
        &public,
    ]);
    assert_eq!(next["log_index"], 1, "a refused request wrote to the log");
}

#[test]
fn hsm_problems_fail_clearly_without_leaking_the_pin() {
    let ca = Ca::initialised("ca-bad-hsm");
    let original = std::fs::read_to_string(&ca.config).unwrap();
    let pin = ca.hsm.user_pin();
    let key = ca.client_key("k", "ed25519");
    let public = format!("{}.pub", key.display());
    let sign = [
        "sign",
        "ssh-user",
        "--user",
        "a",
        "--principal",
        "root",
        "--ttl",
        "1h",
        "--public-key",
        public.as_str(),
    ];

    let not_a_module = ca.write("not-a-module.so", "plain text");
    let wrong_pin = ca.write("wrong-pin", "99999999\n");
    let empty_pin = ca.write("empty-pin", "");
    let module_line = original
        .lines()
        .find(|l| l.starts_with("module ="))
        .unwrap()
        .to_owned();
    let label_line = original
        .lines()
        .find(|l| l.starts_with("token_label ="))
        .unwrap()
        .to_owned();
    let pin_line = original
        .lines()
        .find(|l| l.starts_with("pin_file ="))
        .unwrap()
        .to_owned();
    let cases = [
        (
            module_line.clone(),
            "module = \"/nonexistent/libpkcs11.so\"".to_owned(),
            "does not exist",
        ),
        (
            module_line,
            format!("module = \"{}\"", not_a_module.display()),
            "is not a loadable PKCS#11 module",
        ),
        (
            label_line,
            "token_label = \"no-such-token\"".to_owned(),
            "no token matches",
        ),
        (
            pin_line.clone(),
            format!("pin_file = \"{}\"", wrong_pin.display()),
            "refused the PIN",
        ),
        (
            pin_line,
            format!("pin_file = \"{}\"", empty_pin.display()),
            "is empty",
        ),
    ];
    for (from, to, message) in cases {
        std::fs::write(&ca.config, original.replace(&from, &to)).unwrap();
        for args in [&["init"][..], &["export", "ssh-user-ca"][..], &sign[..]] {
            let out = ca.run(args);
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(3), "{to} / {args:?}: {err}");
            assert!(err.contains(message), "{to}: expected {message:?} in {err}");
            assert!(
                !err.contains(&pin) && !err.contains("99999999"),
                "PIN leaked: {err}"
            );
        }
    }
    std::fs::write(&ca.config, &original).unwrap();
    let next = ca.sign_json(&sign[1..]);
    assert_eq!(next["log_index"], 0, "a failed attempt wrote to the log");
}

#[test]
fn bad_configuration_names_the_key() {
    let ca = Ca::new(
        "ca-bad-config",
        ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"],
    );
    let original = std::fs::read_to_string(&ca.config).unwrap();
    let cases = [
        ("sessions = 2", "sesions = 2", "sesions"),
        (
            "ssh_user_max_ttl = \"8h\"",
            "ssh_user_max_ttl = \"forever\"",
            "ssh_user_max_ttl",
        ),
        (
            "log_key = \"ed25519\"",
            "log_key = \"dsa-1024\"",
            "dsa-1024",
        ),
        (
            "[issuance]",
            "[issuance]\nmax_everything = \"1y\"",
            "max_everything",
        ),
    ];
    for (from, to, named) in cases {
        std::fs::write(&ca.config, original.replacen(from, to, 1)).unwrap();
        let out = ca.run(&["init"]);
        assert_eq!(out.status.code(), Some(2), "{to}");
        assert!(stderr_of(&out).contains(named), "{to}: {}", stderr_of(&out));
    }
    std::fs::write(&ca.config, &original).unwrap();
    assert!(
        !ca.path("data").exists(),
        "a refused configuration created the data dir"
    );
}

#[test]
fn help_teaches_exit_codes_and_pin_handling() {
    let ca = Ca::new(
        "ca-help",
        ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"],
    );
    let out = ca.command().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Exit codes") && text.contains("never from the command line"),
        "{text}"
    );
}
