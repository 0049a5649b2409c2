//! The shipped systemd unit, checked by systemd itself (`systemd-analyze
//! verify`, with ExecStart pointing at this build's binary), and the
//! promises docs/proxy.md makes about it: no restart into exit 2 (a
//! configuration or identity the proxy cannot use), the one capability it
//! needs for port 443, and a private state directory.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const UNIT: &str = include_str!("../../deploy/signet-proxy.service");

#[test]
fn the_unit_verifies_and_keeps_its_promises() {
    for line in [
        "RestartPreventExitStatus=2",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateDevices=yes",
        "StateDirectory=signet-proxy",
        "User=signet-proxy",
    ] {
        assert!(UNIT.lines().any(|l| l == line), "{line} missing");
    }
    // A configuration the proxy cannot use exits 2, the status the unit
    // does not restart into.
    let dir = std::env::temp_dir().join(format!("signet-proxy-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nno_such_key = 1\n").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_signet-proxy"))
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(2));

    let unit = dir.join("signet-proxy.service");
    std::fs::write(
        &unit,
        UNIT.replace(
            "/usr/local/bin/signet-proxy",
            env!("CARGO_BIN_EXE_signet-proxy"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian: systemd) checks the unit");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("signet-proxy.service"),
        "systemd-analyze has remarks on the unit: {said}"
    );
}
