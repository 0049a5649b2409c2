//! `prove` with real certificates made by `ssh-keygen -s` and
//! `openssl req -x509`, `search` filters, and `export --format jsonl`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::http::{serve, Mode};
use common::*;
use signet_log::merkle::leaf_hash;

fn sh(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OpenSSH user certificate signed by `ssh-keygen -s`: (cert file, blob).
fn openssh_cert(dir: &Path, name: &str, serial: u64) -> (std::path::PathBuf, Vec<u8>) {
    if !dir.join("ca").exists() {
        sh(
            dir,
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", "ca"],
        );
    }
    sh(
        dir,
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", name],
    );
    sh(
        dir,
        "ssh-keygen",
        &[
            "-q",
            "-s",
            "ca",
            "-I",
            &format!("user={name} serial={serial}"),
            "-n",
            "alice,root",
            "-z",
            &serial.to_string(),
            "-V",
            "+1h",
            &format!("{name}.pub"),
        ],
    );
    let path = dir.join(format!("{name}-cert.pub"));
    let text = std::fs::read_to_string(&path).unwrap();
    let blob = STANDARD
        .decode(text.split_whitespace().nth(1).unwrap())
        .unwrap();
    (path, blob)
}

/// An X.509 client certificate for `user` from `openssl req -x509`, named
/// as the CA names users (CN, SAN URI): (PEM file, DER file, DER).
fn x509_cert(
    dir: &Path,
    name: &str,
    user: &str,
    serial_hex: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    sh(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN={user}"),
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            &format!("subjectAltName=URI:signet://example.com/user/{user}"),
            "-days",
            "1",
            "-set_serial",
            &format!("0x{serial_hex}"),
        ],
    );
    sh(
        dir,
        "openssl",
        &[
            "x509",
            "-in",
            &format!("{name}.pem"),
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    let der = std::fs::read(dir.join(format!("{name}.der"))).unwrap();
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.der")),
        der,
    )
}

struct Fixture {
    s: Scratch,
    ssh_cert: std::path::PathBuf,
    x509_pem: std::path::PathBuf,
    x509_der: std::path::PathBuf,
    unlogged_ssh: std::path::PathBuf,
    unlogged_pem: std::path::PathBuf,
}

const N: u64 = 1000;

fn fixture() -> Fixture {
    let s = Scratch::new();
    let certs = s.path("certs/x").parent().unwrap().to_path_buf();
    let (ssh_cert, blob) = openssh_cert(&certs, "alice", 4242);
    let (unlogged_ssh, _) = openssh_cert(&certs, "bob", 4243);
    let (x509_pem, x509_der, der) = x509_cert(&certs, "alice-x509", "alice", "1a2b3c");
    let (unlogged_pem, _, _) = x509_cert(&certs, "carol-x509", "carol", "4d5e");
    let mut entries = mixed_entries(N);
    entries[300] = ssh_entry(T0 + 300 * 60, "alice", &["alice", "root"], 4242, blob)
        .to_canonical_bytes()
        .unwrap();
    entries[777] = x509_entry(T0 + 777 * 60, "alice", "1a2b3c", der)
        .to_canonical_bytes()
        .unwrap();
    let key = TestKey::new(ORIGIN, 1);
    TestLog::new(entries).write(&s.log_dir(), &key);
    s.vkey(&key);
    Fixture {
        s,
        ssh_cert,
        x509_pem,
        x509_der,
        unlogged_ssh,
        unlogged_pem,
    }
}

impl Fixture {
    fn run(&self, log: &str, args: &[&str]) -> Run {
        let vkey = self.s.path("log.vkey");
        let mut all = vec![
            args[0],
            args[1],
            "--log",
            log,
            "--key",
            vkey.to_str().unwrap(),
        ];
        all.extend_from_slice(&args[2..]);
        self.s.signet(&all)
    }
    fn dir(&self) -> String {
        self.s.log_dir().to_str().unwrap().to_owned()
    }
}

#[test]
fn prove_openssh_and_x509_certificates() {
    let f = fixture();
    let dir = f.dir();
    let r = f
        .run(
            &dir,
            &["audit", "prove", "--cert", f.ssh_cert.to_str().unwrap()],
        )
        .ok();
    assert!(r.stdout.contains("index: 300"), "{r:?}");
    assert!(r.stdout.contains("kind: ssh-user-cert"), "{r:?}");
    assert!(r.stdout.contains("serial: 4242"), "{r:?}");
    assert!(r.stdout.contains("principals: alice, root"), "{r:?}");
    assert!(
        r.stdout.contains("verified against the signed checkpoint"),
        "{r:?}"
    );

    for cert in [&f.x509_pem, &f.x509_der] {
        let r = f
            .run(
                &dir,
                &["audit", "prove", "--cert", cert.to_str().unwrap(), "--json"],
            )
            .ok();
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(v["index"], 777);
        assert_eq!(v["entry"]["kind"], "x509-cert");
        assert_eq!(v["entry"]["certificate"]["serial"], "1a2b3c");
        assert_eq!(v["checkpoint"]["size"], N);
        // log2(1000) rounded up.
        assert_eq!(v["inclusion_proof"].as_array().unwrap().len(), 10);
    }

    f.run(
        &dir,
        &["audit", "prove", "--cert", f.unlogged_ssh.to_str().unwrap()],
    )
    .fails(1, "is not in the log (all 1000 entries verified)");
    f.run(
        &dir,
        &["audit", "prove", "--cert", f.unlogged_pem.to_str().unwrap()],
    )
    .fails(1, "is not in the log");
}

#[test]
fn prove_over_http() {
    let f = fixture();
    let url = serve(&f.s.log_dir(), Mode::Honest);
    let r = f
        .run(
            &url,
            &["audit", "prove", "--cert", f.ssh_cert.to_str().unwrap()],
        )
        .ok();
    assert!(r.stdout.contains("index: 300"), "{r:?}");
}

#[test]
fn prove_refuses_bad_certificate_files() {
    let f = fixture();
    let dir = f.dir();
    let plain_key = f.s.path("certs/alice.pub");
    f.run(
        &dir,
        &["audit", "prove", "--cert", plain_key.to_str().unwrap()],
    )
    .fails(2, "is not an OpenSSH certificate type");
    let private = f.s.path("certs/alice-x509.key");
    f.run(
        &dir,
        &["audit", "prove", "--cert", private.to_str().unwrap()],
    )
    .fails(2, "expected \"CERTIFICATE\"");
    let missing = f.s.path("certs/none");
    f.run(
        &dir,
        &["audit", "prove", "--cert", missing.to_str().unwrap()],
    )
    .fails(2, "--cert");
    let junk = f.s.write("junk", [0xffu8, 0, 1, 2]);
    f.run(&dir, &["audit", "prove", "--cert", junk.to_str().unwrap()])
        .fails(2, "--cert");
}

/// The indices `mixed_entries` puts where `pred` holds.
fn expected(pred: impl Fn(u64) -> bool) -> Vec<u64> {
    (0..N)
        .filter(|&i| i != 300 && i != 777 && pred(i))
        .collect()
}

fn indices(r: &Run) -> Vec<u64> {
    r.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn search_filters() {
    let f = fixture();
    let dir = f.dir();
    let ssh = |i: u64| i % 5 < 3;

    let r = f
        .run(&dir, &["audit", "search", "--principal", "deploy"])
        .ok();
    assert_eq!(indices(&r), expected(|i| ssh(i) && i % 2 == 1));
    assert!(
        r.stderr.contains("matching entries of 1000 verified"),
        "{r:?}"
    );

    let r = f.run(&dir, &["audit", "search", "--user", "user3"]).ok();
    assert_eq!(indices(&r), expected(|i| i % 7 == 3));

    let r = f.run(&dir, &["audit", "search", "--user", "alice"]).ok();
    assert_eq!(indices(&r), vec![300, 777]);

    let r = f
        .run(
            &dir,
            &["audit", "search", "--kind", "lock", "--user", "user2"],
        )
        .ok();
    assert_eq!(indices(&r), expected(|i| i % 5 == 3 && i % 7 == 2));

    let r = f
        .run(
            &dir,
            &["audit", "search", "--kind", "lock", "--kind", "unlock"],
        )
        .ok();
    assert_eq!(indices(&r), expected(|i| i % 5 >= 3));

    // Inclusive bounds; RFC 3339 and unix seconds. T0 is 2026-11-23T00:00:00Z.
    let until = (T0 + 20 * 60).to_string();
    let r = f
        .run(
            &dir,
            &[
                "audit",
                "search",
                "--since",
                "2026-11-23T00:10:00Z",
                "--until",
                &until,
            ],
        )
        .ok();
    assert_eq!(indices(&r), (10..=20).collect::<Vec<_>>());
    let r = f
        .run(
            &dir,
            &[
                "audit",
                "search",
                "--since",
                "2026-11-23T01:10:00+01:00",
                "--until",
                &until,
            ],
        )
        .ok();
    assert_eq!(indices(&r), (10..=20).collect::<Vec<_>>());

    let r = f
        .run(
            &dir,
            &[
                "audit",
                "search",
                "--principal",
                "root",
                "--kind",
                "x509-cert",
            ],
        )
        .ok();
    assert!(r.stdout.is_empty(), "{r:?}");

    let r = f
        .run(&dir, &["audit", "search", "--principal", "alice", "--json"])
        .ok();
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["index"], 300);
    assert_eq!(lines[0]["certificate"]["serial"], "4242");
    assert_eq!(lines[0]["time_rfc3339"], "2026-11-23T05:00:00Z");

    f.run(&dir, &["audit", "search", "--kind", "nonsense"])
        .fails(2, "unknown kind");
    f.run(&dir, &["audit", "search", "--since", "last tuesday"])
        .fails(2, "RFC 3339");
}

#[test]
fn search_answers_nothing_from_a_tampered_log() {
    let f = fixture();
    let dir = f.s.log_dir();
    let p = dir.join("tile/entries/003.p/232");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x01;
    std::fs::write(&p, bytes).unwrap();
    let r = f
        .run(
            dir.to_str().unwrap(),
            &["audit", "search", "--user", "user1"],
        )
        .fails(1, "entry 999");
    assert!(r.stdout.is_empty(), "{r:?}");
    let r = f
        .run(
            dir.to_str().unwrap(),
            &["audit", "export", "--format", "jsonl"],
        )
        .fails(1, "entry 999");
    assert!(r.stdout.is_empty(), "{r:?}");
}

#[test]
fn export_jsonl() {
    let f = fixture();
    let dir = f.dir();
    let r = f.run(&dir, &["audit", "export", "--format", "jsonl"]).ok();
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, N);
    let entries = {
        let mut e = mixed_entries(N);
        e.truncate(3);
        e
    };
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i as u64);
        assert_eq!(line["version"], 1);
        assert!(line["kind"].is_string());
        if i < 3 {
            assert_eq!(line["leaf_hash"], hex::encode(leaf_hash(&entries[i])));
        }
    }
    assert_eq!(lines[3]["kind"], "lock");
    assert_eq!(lines[3]["subject"], "user3");

    let out = f.s.path("out/export.jsonl");
    let r = f
        .run(
            &dir,
            &[
                "audit",
                "export",
                "--format",
                "jsonl",
                "--output",
                out.to_str().unwrap(),
            ],
        )
        .ok();
    assert!(r.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count() as u64,
        N
    );

    f.run(&dir, &["audit", "export", "--format", "csv"])
        .fails(2, "csv");
}
