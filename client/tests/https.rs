//! `signet audit` over HTTPS, served by `openssl s_server -WWW` with a server
//! certificate from a test CA: trusted only through `--tls-ca`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn sh(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn verify_over_https_with_a_private_ca() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    TestLog::new(mixed_entries(600)).write(&s.log_dir(), &key);

    let root = s.tmp.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=Signet test CA",
        "-days",
        "1",
    ]);
    sh(root, &args);
    let mut args = vec!["req"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    sh(root, &args);
    std::fs::write(
        root.join("srv.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(
        root,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "1",
            "-extfile",
            "srv.ext",
        ],
    );

    let port = free_port();
    let _server = Server(
        Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-WWW",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                "srv.pem",
                "-key",
                "srv.key",
            ])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let url = format!("https://127.0.0.1:{port}/log/");
    let ca = root.join("ca.pem");
    let r = s
        .signet(&[
            "audit",
            "verify",
            "--log",
            &url,
            "--key",
            vkey.to_str().unwrap(),
            "--tls-ca",
            ca.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.contains("600 entries"), "{r:?}");

    // Not trusted by the built-in roots: the log cannot be fetched.
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        &url,
        "--key",
        vkey.to_str().unwrap(),
    ])
    .fails(3, "could not fetch");

    // A --tls-ca file without certificates, and --tls-ca for a directory.
    let empty = s.write("empty.pem", "nothing here\n");
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        &url,
        "--key",
        vkey.to_str().unwrap(),
        "--tls-ca",
        empty.to_str().unwrap(),
    ])
    .fails(2, "no PEM certificate");
    let dir = s.log_dir();
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
        "--tls-ca",
        ca.to_str().unwrap(),
    ])
    .fails(2, "https:// logs only");
}
