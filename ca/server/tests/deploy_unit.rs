//! The shipped systemd unit never restarts into a refusal that needs an
//! operator: a wrong HSM PIN re-sent at every restart would lock the token.
#![allow(clippy::unwrap_used)]

#[test]
fn the_unit_does_not_restart_on_hsm_config_or_integrity_failures() {
    let unit = include_str!("../../../deploy/signet-ca.service");
    let line = unit
        .lines()
        .find(|l| l.starts_with("RestartPreventExitStatus="))
        .expect("RestartPreventExitStatus is set");
    let codes: Vec<&str> = line
        .trim_start_matches("RestartPreventExitStatus=")
        .split_whitespace()
        .collect();
    // The exit codes documented in `signet-ca --help`.
    for code in ["2", "3", "5"] {
        assert!(codes.contains(&code), "{code} missing in {line}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_signet-ca"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("3  the HSM is unreachable or refused"),
        "{help}"
    );
    assert!(
        help.contains("5  the log failed its integrity check"),
        "{help}"
    );
}
