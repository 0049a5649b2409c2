//! The daemon's log as a SIEM reads it: with `serve.log_format = "json"`
//! every line is a JSON object; refusals, enrollments and issuances are
//! events with their reason; no secret (an invite token, a PIN) appears.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use serde_json::{json, Value};
use touchkit::{TouchCa, PIN_ONCE, TOUCH_ALWAYS};

#[test]
fn json_log_lines_carry_every_event_and_no_secret() {
    let mut t = TouchCa::new("siem");
    let config = std::fs::read_to_string(&t.ca.config).unwrap();
    std::fs::write(
        &t.ca.config,
        config.replacen(
            "listen = \"127.0.0.1:8441\"",
            "listen = \"127.0.0.1:8441\"\nlog_format = \"json\"",
            1,
        ),
    )
    .unwrap();
    let log = t.path("daemon.log");
    t.daemon = Some(t.ca.serve_logging(&t.ca.config.clone(), Some(&log)));

    let token = t.invite("alice");
    let (status, _) = t.post("/v1/enroll/begin", &json!({ "token": token }));
    assert_eq!(status, 200);
    t.enroll("alice");
    let device = t.device(4242);
    let (status, body) = t.login(
        "alice",
        &device.slot_key(PIN_ONCE, TOUCH_ALWAYS),
        &["ubuntu"],
        600,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = t.login(
        "mallory",
        &device.slot_key(PIN_ONCE, TOUCH_ALWAYS),
        &["root"],
        600,
    );
    assert_eq!(status, 403);
    let (status, _) = t.post_raw("/v1/certs/begin", b"{not json");
    assert_eq!(status, 400);
    drop(t.daemon.take());

    let text = std::fs::read_to_string(&log).unwrap();
    let pin = std::fs::read_to_string(t.ca.hsm.pin_file()).unwrap();
    assert!(!text.contains(&token), "the invite token is in the log");
    assert!(!text.contains(pin.trim()), "the HSM PIN is in the log");
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find =
        |event: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == event).collect() };
    assert_eq!(find("enrolled").len(), 1, "{text}");
    assert_eq!(find("issued").len(), 1, "{text}");
    assert_eq!(find("issued")[0]["user"], "alice");
    assert_eq!(find("tls_certificate").len(), 1, "{text}");
    let refused = find("refused");
    assert!(
        refused.iter().any(|e| e["route"] == "certs_begin"
            && e["reason"] == "not_allowed"
            && e["user"] == "mallory"
            && e["level"] == "WARN"),
        "{text}"
    );
    assert!(
        refused
            .iter()
            .any(|e| e["route"] == "/v1/certs/begin" && e["reason"] == "malformed_request"),
        "{text}"
    );
}
