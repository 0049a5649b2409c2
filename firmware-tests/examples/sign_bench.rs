//! Signing throughput of the virtual YubiKey through the real PC/SC stack,
//! compared with the same P-256 signature computed in-process.
//!
//! ```sh
//! cargo run --release -p signet-firmware-tests --example sign_bench -- [N]
//! ```
//!
//! Prints three figures from the same run (best of 5 interleaved rounds): ECDSA P-256 signatures/s through
//! the `yubikey` crate → libpcsclite → private pcscd → vpcd → virtual card;
//! through the applet called directly (no PC/SC); and with `p256` alone.
//! The ratios show what the PC/SC round trips cost, so later changes to the
//! client or the emulator can be compared.

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::elliptic_curve::Generate;
use signet_firmware_tests::applet::Applet;
use signet_firmware_tests::attest::AttestationRoot;
use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use signet_firmware_tests::state::{CardState, DeviceInfo};
use signet_firmware_tests::touch::TouchControl;
use std::time::Instant;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Operations per second of `f` over `n` runs.
fn rate(n: u32, mut f: impl FnMut() -> BoxResult<()>) -> BoxResult<f64> {
    let start = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

fn main() -> BoxResult<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);
    let digest = [0x5Au8; 32];

    // In-process baseline.
    let key = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
    let mut baseline_op = || -> BoxResult<()> {
        let _: p256::ecdsa::Signature = key.sign_prehash(&digest)?;
        Ok(())
    };

    // The applet alone (APDU parsing, policy checks, DER encoding).
    let root = AttestationRoot::create()?;
    let info = DeviceInfo {
        serial: 1,
        firmware: [5, 4, 3],
        form_factor: 1,
    };
    let mut state = CardState::new(info, &root)?;
    state.slots.insert(
        0x9E,
        signet_firmware_tests::state::Slot {
            key: signet_firmware_tests::keys::PrivateKey::P256(Box::new(key.clone())),
            pin_policy: signet_firmware_tests::state::PinPolicy::Never,
            touch_policy: signet_firmware_tests::state::TouchPolicy::Never,
            origin: signet_firmware_tests::state::Origin::Generated,
        },
    );
    let mut applet = Applet::new(state, None, TouchControl::new());
    let mut sign_apdu = vec![
        0x00, 0x87, 0x11, 0x9E, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20,
    ];
    sign_apdu.extend_from_slice(&digest);
    let mut applet_op = || -> BoxResult<()> {
        let out = applet.process(&sign_apdu);
        if out.ends_with(&[0x90, 0x00]) {
            Ok(())
        } else {
            Err("applet refused to sign".into())
        }
    };

    // Through PC/SC.
    let dev = VirtualYubiKey::start(VirtualKeyOptions::default())?;
    let mut yk = YubiKey::open_by_serial(Serial(dev.serial()))?;
    yk.authenticate(&MgmKey::get_default(&yk)?)?;
    piv::generate(
        &mut yk,
        SlotId::CardAuthentication,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    )?;
    let mut pcsc_op = || -> BoxResult<()> {
        piv::sign_data(
            &mut yk,
            &digest,
            AlgorithmId::EccP256,
            SlotId::CardAuthentication,
        )?;
        Ok(())
    };

    // Interleaved rounds, best round per path: the machine may be shared,
    // and the best round is the least disturbed one.
    const ROUNDS: u32 = 5;
    let per_round = (n / ROUNDS).max(1);
    let (mut baseline, mut direct, mut pcsc) = (0f64, 0f64, 0f64);
    for _ in 0..ROUNDS {
        baseline = baseline.max(rate(per_round, &mut baseline_op)?);
        direct = direct.max(rate(per_round, &mut applet_op)?);
        pcsc = pcsc.max(rate(per_round, &mut pcsc_op)?);
    }
    let pcsc_n = per_round * ROUNDS;

    println!("ECDSA P-256 signatures/s, best of {ROUNDS} interleaved rounds of {per_round} (N = {pcsc_n} per path)");
    println!("  in-process p256 (baseline)          {baseline:>10.0}/s");
    println!(
        "  applet, no PC/SC                    {direct:>10.0}/s  ({:.2}x baseline)",
        direct / baseline
    );
    println!(
        "  yubikey crate -> pcscd -> vpcd card {pcsc:>10.0}/s  ({:.3}x baseline, {:.2} ms/signature)",
        pcsc / baseline,
        1000.0 / pcsc
    );
    Ok(())
}
