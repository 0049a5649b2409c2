//! Signing rate of the signet-hsm PIV backend on the virtual YubiKey,
//! through the real PC/SC stack (libpcsclite → private pcscd → vpcd).
//!
//! ```sh
//! cargo run --release -p signet-firmware-tests --example piv_backend_bench -- [N]
//! ```
//!
//! The backend opens the card by serial for every signature and releases it
//! (with a reset) afterwards; the baseline holds one `yubikey` handle open
//! and signs in a loop, so the difference is what "never hold the card"
//! costs. Best of 3 interleaved rounds of N signatures per path, each after
//! 20 untimed ones.

use std::time::Instant;

use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use signet_hsm::piv::{
    PivAlgorithm, PivConfig, PivDevice, PivKey, PivKeySpec, PivManagementKey, PivPinPolicy,
    PivSlot, PivTouchPolicy,
};
use signet_hsm::{PinSource, RsaHash, SshSigner};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Serial, YubiKey};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Signatures per second of `f` over `n` runs, after a few untimed ones
/// (the first operations after another path's card reset are slower).
fn rate(n: u32, mut f: impl FnMut() -> BoxResult<()>) -> BoxResult<f64> {
    for _ in 0..20 {
        f()?;
    }
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
        .unwrap_or(300);
    let card = VirtualYubiKey::start(VirtualKeyOptions::default())?;
    let dir = tempfile::tempdir()?;
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "123456\n")?;
    // PIN files must be readable by their owner only.
    std::fs::set_permissions(
        &pin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let device = PivDevice::open(&PivConfig {
        serial: card.serial(),
        pin: Some(PinSource::File(pin_file)),
    })?;
    let generate = |slot, algorithm, pin_policy| -> BoxResult<PivKey> {
        Ok(device.generate(
            slot,
            PivKeySpec {
                algorithm,
                pin_policy,
                touch_policy: PivTouchPolicy::Never,
            },
            &PivManagementKey::FactoryDefault,
            true,
        )?)
    };
    let p256_never = generate(
        PivSlot::CardAuthentication,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Never,
    )?;
    let p256_once = generate(
        PivSlot::Signature,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Once,
    )?;
    let p384 = generate(
        PivSlot::Retired(1),
        PivAlgorithm::EcdsaP384,
        PivPinPolicy::Never,
    )?;
    let rsa = generate(
        PivSlot::Retired(2),
        PivAlgorithm::Rsa2048,
        PivPinPolicy::Never,
    )?;
    let ssh = SshSigner::with_backend(p256_never.clone())?;

    let message = [0x5au8; 512];
    let sign = |key: &PivKey| -> BoxResult<()> {
        key.sign(&message, RsaHash::Sha256).wait()?;
        Ok(())
    };
    let serial = card.serial();
    let digest = [0x5au8; 32];

    let names = [
        "yubikey crate, card held open (baseline), P-256 9e",
        "signet-hsm PivKey, P-256 9e, PIN never",
        "signet-hsm PivKey, P-256 9c, PIN once (verified per signature)",
        "signet-hsm PivKey, P-384 82, PIN never",
        "signet-hsm PivKey, RSA-2048 83, PIN never",
        "signet-hsm SshSigner over PivKey, P-256 9e (signature::Signer)",
    ];
    let mut best = [0f64; 6];
    for _ in 0..3 {
        let rates = [
            {
                // Opened outside the timing; the backend's releases reset
                // the card, so the handle lives for this round only.
                let mut held = YubiKey::open_by_serial(Serial(serial))?;
                rate(n, || {
                    piv::sign_data(
                        &mut held,
                        &digest,
                        AlgorithmId::EccP256,
                        SlotId::CardAuthentication,
                    )?;
                    Ok(())
                })?
            },
            rate(n, || sign(&p256_never))?,
            rate(n, || sign(&p256_once))?,
            rate(n, || sign(&p384))?,
            rate(n, || sign(&rsa))?,
            rate(n, || {
                let _: ssh_key::Signature = signature::Signer::try_sign(&ssh, &message)?;
                Ok(())
            })?,
        ];
        for (b, r) in best.iter_mut().zip(rates) {
            *b = b.max(r);
        }
    }
    println!("PIV signatures/s on the virtual YubiKey (best of 3 rounds of {n}):");
    for (name, r) in names.iter().zip(best) {
        println!("  {name:<66} {r:>8.0}/s  ({:.2} ms each)", 1e3 / r);
    }
    Ok(())
}
