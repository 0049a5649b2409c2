//! Registration and assertion latency of the virtual key's FIDO2 applet
//! through the real PC/SC stack, beside the same ceremony with
//! webauthn-authenticator-rs's in-process software token, in the same run.
//!
//! ```sh
//! cargo run --release -p signet-firmware-tests --example fido_bench -- [N]
//! ```
//!
//! Both clients run the full WebAuthn ceremony against webauthn-rs
//! (`start_passkey_registration` / `_authentication`, user verification
//! required): through PC/SC that is webauthn-authenticator-rs's `nfc`
//! transport → libpcsclite → private pcscd → vpcd → virtual card, with the
//! PIN protocol (key agreement, pinUvAuthToken) on every operation; the
//! software token answers in-process. Only the client's side is timed
//! (`do_registration` / `do_authentication`); the relying party checks
//! every result outside the timed region. Prints p50 and p99 per
//! operation and backend.

use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use std::time::{Duration, Instant};
use webauthn_authenticator_rs::ctap2::CtapAuthenticator;
use webauthn_authenticator_rs::nfc::NFCTransport;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::transport::Transport;
use webauthn_authenticator_rs::types::{CableRequestType, CableState, EnrollSampleStatus};
use webauthn_authenticator_rs::ui::UiCallback;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::*;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const PIN: &str = "135790";

#[derive(Debug)]
struct User;

impl UiCallback for User {
    fn request_pin(&self) -> Option<String> {
        Some(PIN.to_string())
    }
    fn request_touch(&self) {}
    fn processing(&self) {}
    fn fingerprint_enrollment_feedback(&self, _: u32, _: Option<EnrollSampleStatus>) {}
    fn cable_qr_code(&self, _: CableRequestType, _: String) {}
    fn dismiss_qr_code(&self) {}
    fn cable_status_update(&self, _: CableState) {}
}

/// Times `n` registrations and then `n` assertions of `client` (each
/// checked by the relying party); returns both sets of durations.
fn ceremonies(
    client: &mut impl WebauthnAuthenticator,
    rp: &Webauthn,
    origin: &Url,
    n: usize,
) -> BoxResult<(Vec<Duration>, Vec<Duration>)> {
    let mut reg_times = Vec::with_capacity(n);
    let mut passkeys = Vec::with_capacity(n);
    for i in 0..n {
        let (ccr, state) =
            rp.start_passkey_registration(Uuid::new_v4(), &format!("user{i}"), "User", None)?;
        let start = Instant::now();
        let reg = client
            .do_registration(origin.clone(), ccr)
            .map_err(|e| format!("registration: {e:?}"))?;
        reg_times.push(start.elapsed());
        passkeys.push(rp.finish_passkey_registration(&reg, &state)?);
    }
    let mut auth_times = Vec::with_capacity(n);
    for passkey in passkeys.iter().cycle().take(n) {
        let (rcr, state) = rp.start_passkey_authentication(std::slice::from_ref(passkey))?;
        let start = Instant::now();
        let assertion = client
            .do_authentication(origin.clone(), rcr)
            .map_err(|e| format!("authentication: {e:?}"))?;
        auth_times.push(start.elapsed());
        let result = rp.finish_passkey_authentication(&assertion, &state)?;
        if !result.user_verified() {
            return Err("assertion without user verification".into());
        }
    }
    Ok((reg_times, auth_times))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label:<44} p50 {:>8.2} ms   p99 {:>8.2} ms   (n={})",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.len()
    );
}

fn main() -> BoxResult<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100);
    let origin = Url::parse("https://localhost:8443")?;
    let rp = WebauthnBuilder::new("localhost", &origin)?
        .rp_name("Signet bench")
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // The virtual key behind its private pcscd, PIN set.
    let key = VirtualYubiKey::start(VirtualKeyOptions::default())?;
    key.fido().set_pin(PIN)?;
    let ui = User;
    let transport = NFCTransport::new(pcsc::Scope::User).map_err(|e| format!("{e:?}"))?;
    let token = rt
        .block_on(transport.tokens())
        .map_err(|e| format!("{e:?}"))?
        .pop()
        .ok_or("no card in the reader")?;
    let mut card = rt
        .block_on(CtapAuthenticator::new(token, &ui))
        .ok_or("not a CTAP2 authenticator")?;
    let (pcsc_reg, pcsc_auth) = ceremonies(&mut card, &rp, &origin, n)?;

    // The in-process software token (user verification built in).
    let (mut soft, _) = SoftToken::new(true).map_err(|e| format!("{e:?}"))?;
    let (soft_reg, soft_auth) = ceremonies(&mut soft, &rp, &origin, n)?;

    println!("FIDO2 ceremony latency, client side, {n} of each:");
    report("registration, virtual key via PC/SC + PIN", pcsc_reg);
    report("registration, in-process soft token", soft_reg);
    report("assertion,    virtual key via PC/SC + PIN", pcsc_auth);
    report("assertion,    in-process soft token", soft_auth);
    Ok(())
}
