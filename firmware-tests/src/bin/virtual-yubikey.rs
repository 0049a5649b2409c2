//! `virtual-yubikey`: a YubiKey 5 — PIV and FIDO2 applets — that plugs into
//! pcscd through vsmartcard's vpcd driver, for testing Signet (and any PIV
//! or CTAP2 software) without hardware.

use clap::Parser;
use signet_firmware_tests::attest::{AttestationRoot, ROOT_CERT_FILE};
use signet_firmware_tests::card::build_card;
use signet_firmware_tests::harness::{socket_path, VirtualKeyOptions, VirtualYubiKey};
use signet_firmware_tests::touch::TouchControl;
use signet_firmware_tests::vpcd;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// Emulates a YubiKey 5 as a virtual smart card: the PIV applet and the
/// FIDO2 (CTAP 2.1 over NFC framing) applet, chosen by SELECT.
///
/// The card connects, as a TCP client, to pcscd's vpcd driver (Debian
/// package `vsmartcard-vpcd`; its reader entry in /etc/reader.conf.d/vpcd
/// listens on 127.0.0.1:35963 by default). Any PC/SC client then sees a
/// YubiKey: the `yubikey` crate, yubico-piv-tool, ykcs11, opensc. Name the
/// reader "Yubico YubiKey OTP+FIDO+CCID" (FRIENDLYNAME) so that ykcs11 and
/// yubico-piv-tool accept it.
///
/// Factory state: PIN 123456, PUK 12345678, management key
/// 010203040506070801020304050607080102030405060708 (3DES before firmware
/// 5.7, AES-192 from 5.7). Attestation certificates chain, through the
/// card's f9 certificate, to the root in --attestation-root (created there
/// if the directory holds none; trust its attestation-root.pem). It is a
/// test root, never Yubico's.
///
/// FIDO2: AID A0000006472F0001, CTAP2 in NFCCTAP_MSG APDUs (python-fido2's
/// CtapPcscDevice, webauthn-authenticator-rs's nfc transport), no PIN
/// until a client sets one, "packed" attestation by a certificate the same
/// root issues, ES256 and EdDSA credentials.
///
/// Touch (both applets): approved at once unless --touch-control names a
/// file holding `approve`, `deny` or `delay <ms>`, read at every touch.
///
/// Quick start with the system pcscd:
///   sed -i 's/^FRIENDLYNAME.*/FRIENDLYNAME "Yubico YubiKey OTP+FIDO+CCID"/' \
///       /etc/reader.conf.d/vpcd          # then restart pcscd
///   virtual-yubikey --serial 1234567 --firmware 5.7.1 \
///       --attestation-root /tmp/att --state /tmp/yk.json &
///   yubico-piv-tool -a status            # Serial Number: 1234567
///
/// With --private-pcscd the card brings its own pcscd instead (the test
/// harness's: a private mount namespace or socket, never the system's), prints
/// `PCSCLITE_CSOCK_NAME=<socket>` on stdout once the card is seen, and runs
/// until stdin closes or it is stopped; clients reach it with that variable
/// set. The quickstart uses this:
///   virtual-yubikey --private-pcscd --attestation-root /tmp/att \
///       --state /tmp/yk.json --fido-pin-file /tmp/pin < fifo
///
/// Tests use the harness directly (a private pcscd per test, see the
/// signet-firmware-tests README).
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Serial number the card reports (GET SERIAL, attestation).
    #[arg(long, default_value_t = 13_371_337)]
    serial: u32,
    /// Firmware version to emulate, e.g. 5.4.3 or 5.7.1 (5.7 enables AES-192
    /// default management key, Ed25519/X25519 and RSA-3072/4096).
    #[arg(long, default_value = "5.4.3", value_parser = parse_firmware)]
    firmware: [u8; 3],
    /// Directory with the attestation root (attestation-root.key.pem,
    /// attestation-root.pem); created if empty.
    #[arg(long)]
    attestation_root: PathBuf,
    /// JSON file holding the card's state (keys in the clear: a test
    /// device). Loaded if present — its serial and firmware then win over
    /// --serial/--firmware — and rewritten after every change. The FIDO
    /// applet keeps its state beside it, in <name>.fido.json.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Address of pcscd's vpcd driver.
    #[arg(long, default_value = "127.0.0.1:35963")]
    vpcd: String,
    /// File steering the touch sensor (`approve`, `deny`, `delay <ms>`).
    #[arg(long)]
    touch_control: Option<PathBuf>,
    /// Start a private pcscd for the card (see above) instead of connecting
    /// to --vpcd; runs until stdin reaches end of file.
    #[arg(long, conflicts_with = "vpcd")]
    private_pcscd: bool,
    /// With --private-pcscd: set the FIDO2 PIN of a card that has none from
    /// this file (first line), as a user would at first use.
    #[arg(long, requires = "private_pcscd")]
    fido_pin_file: Option<PathBuf>,
}

fn parse_firmware(s: &str) -> Result<[u8; 3], String> {
    let parts: Vec<u8> = s
        .split('.')
        .map(|p| p.parse::<u8>().map_err(|e| format!("{s}: {e}")))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [5, minor, patch] => Ok([5, *minor, *patch]),
        _ => Err(format!("{s}: expected 5.x.y (YubiKey 5 firmware)")),
    }
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("virtual-yubikey: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.private_pcscd {
        return run_with_private_pcscd(args);
    }
    let root = AttestationRoot::load_or_create(&args.attestation_root)?;
    let mut touch = TouchControl::new();
    if let Some(path) = args.touch_control {
        touch = touch.with_control_file(path);
    }
    let opts = VirtualKeyOptions {
        serial: args.serial,
        firmware: args.firmware,
        root: Some(root.clone()),
        state_file: args.state,
    };
    let (mut card, _) = build_card(&opts, &root, touch)?;
    let addr: SocketAddr = args
        .vpcd
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{}: no address", args.vpcd))?;
    let info = card.piv().state().info;
    eprintln!(
        "virtual-yubikey: serial {} firmware {}.{}.{}, connecting to vpcd at {addr}; \
         attestation root {}",
        info.serial,
        info.firmware[0],
        info.firmware[1],
        info.firmware[2],
        args.attestation_root.join(ROOT_CERT_FILE).display()
    );
    let stop = AtomicBool::new(false);
    vpcd::run(addr, &mut card, &stop)?;
    Ok(())
}

/// The card behind the harness's private pcscd, until stdin closes.
fn run_with_private_pcscd(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{Read as _, Write as _};
    let root = AttestationRoot::load_or_create(&args.attestation_root)?;
    let key = VirtualYubiKey::start(VirtualKeyOptions {
        serial: args.serial,
        firmware: args.firmware,
        root: Some(root),
        state_file: args.state,
    })?;
    if let Some(path) = &args.fido_pin_file {
        let pin = std::fs::read_to_string(path)
            .map_err(|e| format!("--fido-pin-file {}: {e}", path.display()))?;
        let pin = zeroize::Zeroizing::new(pin);
        let pin = pin.lines().next().unwrap_or_default();
        if !key.fido().pin_is_set() {
            key.fido().set_pin(pin)?;
        }
    }
    eprintln!(
        "virtual-yubikey: serial {} behind a private pcscd; attestation root {}",
        key.serial(),
        args.attestation_root.join(ROOT_CERT_FILE).display()
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "PCSCLITE_CSOCK_NAME={}", socket_path().display())?;
    stdout.flush()?;
    drop(stdout);
    // Runs until whoever started it closes our stdin (or kills us: pcscd
    // then dies with its watchdog).
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
    drop(key);
    Ok(())
}
