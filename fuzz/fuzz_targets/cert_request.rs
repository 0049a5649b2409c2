//! Fuzz the CA's request bodies: `POST /v1/certs/begin` and `/finish`,
//! `POST /v1/enroll/begin` and `/finish`, as the daemon reads them (JSON
//! through serde_path_to_error, which names the failing field). Every
//! input is tried as each of the four.
//!
//! Beyond "no panic": what parses re-encodes to JSON that parses to the
//! same value, and a begin request's hash (the one its WebAuthn challenge
//! commits to) is the same for both, so the client and the CA hash the same
//! request the same way whatever bytes carried it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use signet_api::certs::{BeginRequest, FinishRequest};
use signet_api::enroll::{EnrollBeginRequest, EnrollFinishRequest};

/// Parses as the daemon does; checks the JSON round trip of what parsed.
fn parse<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let plain = serde_json::from_slice::<T>(data);
    let mut json = serde_json::Deserializer::from_slice(data);
    let named = match serde_path_to_error::deserialize::<_, T>(&mut json) {
        Ok(value) if json.end().is_ok() => Some(value),
        _ => None,
    };
    // Both readers accept the same bodies, with the same value.
    assert_eq!(plain.is_ok(), named.is_some(), "{plain:?} / {named:?}");
    let value = plain.ok()?;
    assert_eq!(named.as_ref(), Some(&value));
    let again = serde_json::to_vec(&value).expect("a parsed request serializes");
    let back: T = serde_json::from_slice(&again).expect("a serialized request parses");
    assert_eq!(back, value);
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    if let Some(request) = parse::<BeginRequest>(data) {
        let hash = request.sha256();
        let again: BeginRequest =
            serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
        assert_eq!(again.sha256(), hash);
        let _ = signet_api::certs::challenge(&hash, &[0; 32]);
    }
    let _ = parse::<FinishRequest>(data);
    let _ = parse::<EnrollBeginRequest>(data);
    let _ = parse::<EnrollFinishRequest>(data);
});
