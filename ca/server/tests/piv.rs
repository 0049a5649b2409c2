//! The CA on a YubiKey (`hsm.backend = "piv"`), driven through the real
//! `signet-ca` binary against the virtual YubiKey (PIV applet) behind a
//! private pcscd: the key ceremony generates the keys on the card and logs
//! their checked attestations; what it issues is checked by `ssh-keygen`,
//! `sshd`, `openssl verify`, and the log by `signet audit verify`. Every
//! configuration or card the CA must refuse is refused before anything is
//! generated or logged.
//!
//! Needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them), like the
//! firmware tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{current_user, ssh_login};
use signet_firmware_tests::attest::AttestationRoot;
use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use signet_hsm::piv::{
    PivAlgorithm, PivConfig, PivDevice, PivKeySpec, PivManagementKey, PivPinPolicy, PivSlot,
    PivTouchPolicy,
};
use signet_hsm::PinSource;
use signet_log::entry::{Entry, EntryKind};
use signet_testkit::Sshd;

/// A management key of the test's own (3DES, as firmware before 5.7 uses).
const OWN_MGM: [u8; 24] = [
    0x5c, 0x19, 0xe2, 0x07, 0xa4, 0x6d, 0xf1, 0x18, 0x8b, 0x26, 0xc7, 0x53, 0x1e, 0xe0, 0x74, 0x0a,
    0xd6, 0x4a, 0x32, 0xb8, 0x65, 0x9c, 0x01, 0xfe,
];
const PIN: &str = "123456";
const ENTRIES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("entries");

/// A virtual YubiKey and a CA configuration for it in a scratch directory.
struct PivCa {
    key: VirtualYubiKey,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl PivCa {
    /// A fresh virtual YubiKey (factory management key) and the configuration.
    fn start() -> Self {
        let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
            panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
        });
        let dir = tempfile::Builder::new()
            .prefix("signet-ca-piv-")
            .tempdir()
            .unwrap();
        let secret = |name: &str, value: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{value}\n")).unwrap();
            owner_only(&path);
        };
        secret("piv-pin", PIN);
        secret("piv-mgm", &hex::encode(OWN_MGM));
        std::fs::write(dir.path().join("roots.pem"), key.root().cert_pem().unwrap()).unwrap();
        let config = dir.path().join("signet-ca.toml");
        let ca = Self { key, dir, config };
        ca.write_config(&ca.config_text(""));
        ca
    }

    /// As [`PivCa::start`], with the card's management key changed from the
    /// factory default to the test's own (as `ykman piv access
    /// change-management-key` does), so the card can hold CA keys.
    fn ready() -> Self {
        let ca = Self::start();
        ca.set_own_management_key();
        ca
    }

    fn set_own_management_key(&self) {
        let mut yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(self.key.serial())).unwrap();
        let default = yubikey::MgmKey::get_default(&yk).unwrap();
        yk.authenticate(&default).unwrap();
        yubikey::MgmKey::from_bytes(OWN_MGM, Some(yubikey::MgmAlgorithmId::ThreeDes))
            .unwrap()
            .set_manual(&mut yk, false)
            .unwrap();
    }

    /// The configuration: the serial of the virtual card, the files above,
    /// defaults for the rest; `extra` is appended (more sections).
    fn config_text(&self, extra: &str) -> String {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        format!(
            "data_dir = \"{data}\"\n\
             [hsm]\nbackend = \"piv\"\n\
             [piv]\nserial = {serial}\npin_file = \"{pin}\"\nmanagement_key_file = \"{mgm}\"\n\
             attestation_roots = \"{roots}\"\n\
             [x509]\ntrust_domain = \"piv.example.com\"\n\
             [log]\nhigh_water = \"{mark}\"\n{extra}",
            data = path("data"),
            serial = self.key.serial(),
            pin = path("piv-pin"),
            mgm = path("piv-mgm"),
            roots = path("roots.pem"),
            mark = path("mark/high-water"),
        )
    }

    fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_signet-ca"))
            .envs(self.key.pcscd().envs())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "signet-ca {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with `code`, saying `says`.
    fn refused(&self, args: &[&str], code: i32, says: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        for text in says {
            assert!(
                stderr.contains(text),
                "{args:?}: expected {text:?} in: {stderr}"
            );
        }
        assert!(
            !stderr.contains(PIN) && !stderr.contains(&hex::encode(OWN_MGM)),
            "a secret in an error: {stderr}"
        );
        stderr
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The card as the PIV backend sees it (PIN from the file).
    fn device(&self) -> PivDevice {
        PivDevice::open(&PivConfig {
            serial: self.key.serial(),
            pin: Some(PinSource::File(self.path("piv-pin"))),
        })
        .unwrap()
    }

    /// The log's entries, read from the store file (the CA is not running).
    fn entries(&self) -> Vec<Entry> {
        let path = self.path("data/log.redb");
        if !path.exists() {
            return Vec::new();
        }
        use redb::{ReadableDatabase, ReadableTable};
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(ENTRIES).unwrap();
        table
            .iter()
            .unwrap()
            .map(|row| Entry::from_bytes(row.unwrap().1.value()).unwrap())
            .collect()
    }

    /// A client key pair made by ssh-keygen; returns the private key path.
    fn client_key(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    }
}

/// `signet-ca serve`, killed and reaped when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl PivCa {
    /// Starts `signet-ca serve` on a free loopback port and returns what
    /// `GET /log/checkpoint` answers over HTTPS (curl, trusting the CA's
    /// own root, which is on the card).
    fn serve_checkpoint(&self) -> String {
        let port = signet_testkit::free_port();
        let config = self.path("serve.toml");
        let roots = self.path("roots.pem");
        std::fs::write(
            &config,
            self.config_text(&format!(
                "[serve]\nlisten = \"127.0.0.1:{port}\"\n\
                 [webauthn]\nrp_id = \"localhost\"\norigin = \"https://localhost:{port}\"\n\
                 attestation_roots = [\"{roots}\"]\n\
                 [attestation]\nyubico = false\nroots = [\"{roots}\"]\n",
                roots = roots.display()
            )),
        )
        .unwrap();
        let root = self.path("x509-root.pem");
        let out = self.run(&["export", "x509-ca"]);
        assert!(out.status.success());
        std::fs::write(&root, &out.stdout).unwrap();
        let _daemon = Daemon(
            Command::new(env!("CARGO_BIN_EXE_signet-ca"))
                .envs(self.key.pcscd().envs())
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .spawn()
                .unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = Command::new("curl")
                .args(["-sS", "--fail", "--cacert"])
                .arg(&root)
                .arg(format!("https://localhost:{port}/log/checkpoint"))
                .output()
                .unwrap();
            if out.status.success() {
                return String::from_utf8(out.stdout).unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not come up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// The `signet` binary, built next to `signet-ca` (`cargo build -p signet`).
fn signet_binary() -> PathBuf {
    let ca = PathBuf::from(env!("CARGO_BIN_EXE_signet-ca"));
    let path = ca.with_file_name("signet");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (`cargo build -p signet`; deploy/test.sh does)",
        path.display()
    );
    path
}

fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SLOTS: [(&str, PivSlot); 4] = [
    ("ssh-user-ca", PivSlot::Retired(1)),
    ("ssh-host-ca", PivSlot::Retired(2)),
    ("x509-ca", PivSlot::Retired(3)),
    ("log-key", PivSlot::Retired(4)),
];

#[test]
fn a_ca_on_a_yubikey_generates_attests_logs_and_issues() {
    let ca = PivCa::ready();

    // The ceremony: four keys generated on the card, each attestation
    // checked and logged beside its key entry, then the root.
    let out = ca.ok(&["init"]);
    assert_eq!(out.matches("generated and logged").count(), 4, "{out}");
    assert_eq!(
        out.matches("attestation checked, logged").count(),
        4,
        "{out}"
    );
    let device = ca.device();
    for (role, slot) in SLOTS {
        let key = device.key(slot).unwrap();
        assert!(key.generated_on_card(), "{role}");
        assert_eq!(key.algorithm(), PivAlgorithm::EcdsaP256, "{role}");
        assert_eq!(key.pin_policy(), PivPinPolicy::Once, "{role}");
        assert_eq!(key.touch_policy(), PivTouchPolicy::Never, "{role}");
        let fingerprint = key.public_key().ssh_fingerprint().unwrap();
        assert!(
            out.contains(role) && out.contains(&fingerprint),
            "{role} {fingerprint}: {out}"
        );
    }
    let entries = ca.entries();
    assert_eq!(entries.len(), 9, "{entries:#?}");
    for (role, slot) in SLOTS {
        let key = device.key(slot).unwrap();
        let subject = format!(
            "{role} ecdsa-p256 {}",
            key.public_key().ssh_fingerprint().unwrap()
        );
        assert!(
            entries
                .iter()
                .any(|e| e.kind == EntryKind::KeyRotation && e.subject.as_deref() == Some(&subject)),
            "no key entry {subject}"
        );
        // The attestation entry: the certificate the card made for this slot.
        let attestation = entries
            .iter()
            .find(|e| {
                e.kind == EntryKind::AdminSign
                    && e.subject.as_deref() == Some(&format!("CN=YubiKey PIV Attestation {slot}"))
            })
            .unwrap_or_else(|| panic!("no attestation entry for slot {slot}"));
        let cert = attestation.certificate.as_ref().unwrap();
        let parsed = <x509_cert::Certificate as der::Decode>::from_der(&cert.bytes.0).unwrap();
        let spki = der::Encode::to_der(parsed.tbs_certificate().subject_public_key_info()).unwrap();
        assert_eq!(
            &signet_hsm::PublicKey::from_spki_der(&spki).unwrap(),
            key.public_key()
        );
        signet_log::entry::check_certificate_contents(attestation).unwrap();
    }
    assert!(entries.iter().any(|e| e.kind == EntryKind::AdminSign
        && e.subject
            .as_deref()
            .is_some_and(|s| s.contains("CN=Signet Root CA"))));

    // Run again: everything kept, nothing logged twice.
    let again = ca.ok(&["init"]);
    assert_eq!(
        again.matches("kept (already on the card)").count(),
        4,
        "{again}"
    );
    assert_eq!(again.matches("(already logged)").count(), 4, "{again}");
    assert_eq!(ca.entries().len(), 9);
    let check = ca.ok(&["log", "check"]);
    assert!(check.starts_with("OK: 9 entries"), "{check}");

    // An OpenSSH user certificate, read by ssh-keygen and accepted by sshd.
    let me = current_user();
    let user_key = ca.client_key("alice");
    let cert = ca.ok(&[
        "sign",
        "ssh-user",
        "--user",
        "alice",
        "--principal",
        &me,
        "--ttl",
        "10m",
        "--public-key",
        &format!("{}.pub", user_key.display()),
    ]);
    let cert_path = ca.write("alice-cert.pub", &cert);
    let ca_line = ca.ok(&["export", "ssh-user-ca"]);
    let ca_file = ca.write("ssh-user-ca.pub", &ca_line);
    let ca_fingerprint = run_tool(Command::new("ssh-keygen").arg("-l").arg("-f").arg(&ca_file));
    let listing = run_tool(
        Command::new("ssh-keygen")
            .arg("-L")
            .arg("-f")
            .arg(&cert_path),
    );
    assert!(listing.contains("user certificate"), "{listing}");
    assert!(
        listing.contains("Key ID: \"user=alice serial="),
        "{listing}"
    );
    let fingerprint = ca_fingerprint.split_whitespace().nth(1).unwrap();
    assert!(
        listing.contains(&format!("Signing CA: ECDSA {fingerprint}")),
        "{listing}\n{ca_fingerprint}"
    );
    let sshd = Sshd::start(&format!("TrustedUserCAKeys {}", ca_file.display()), None);
    let (ok, stdout, stderr) = ssh_login(sshd.port(), &me, &user_key, &cert_path, None);
    assert!(ok, "login failed: {stderr}\n{}", sshd.log());
    assert_eq!(stdout.trim(), "signet-login-ok");

    // An X.509 client certificate, verified by openssl against the root.
    let x509 = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "bob",
        "--ttl",
        "1h",
        "--public-key",
        &format!("{}.pub", user_key.display()),
    ]);
    let x509_file = ca.write("bob.pem", &x509);
    let root = ca.write("root.pem", &ca.ok(&["export", "x509-ca"]));
    let verified = run_tool(
        Command::new("openssl")
            .args(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile"])
            .arg(&root)
            .arg(&x509_file),
    );
    assert!(verified.contains(": OK"), "{verified}");

    // The log, exported and verified by the auditor's binary.
    let export = ca.path("export");
    let vkey = ca.ok(&["log", "export", export.to_str().unwrap()]);
    let vkey_file = ca.write("log.vkey", &vkey);
    let out = Command::new(signet_binary())
        .env("XDG_STATE_HOME", ca.path("auditor-state"))
        .args(["audit", "verify", "--log"])
        .arg(&export)
        .arg("--key")
        .arg(&vkey_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "signet audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ca.ok(&["log", "check"]).starts_with("OK: 11 entries"));

    // The daemon serves the log, its checkpoint signed on the card; at
    // start it logged its TLS certificate (signed on the card too).
    let served = ca.serve_checkpoint();
    assert!(
        served.starts_with("piv.example.com/signet-log\n12\n"),
        "{served}"
    );

    // The store lost: rebuilt from a new export, checked against the log
    // key on the card and the high-water file.
    let export = ca.path("export-after-serve");
    ca.ok(&["log", "export", export.to_str().unwrap()]);
    std::fs::remove_file(ca.path("data/log.redb")).unwrap();
    let restored = ca.ok(&["log", "restore", "--from", export.to_str().unwrap()]);
    assert!(restored.contains("Restored 12 entries"), "{restored}");
    assert!(ca.ok(&["log", "check"]).starts_with("OK: 12 entries"));

    // The benchmark measures PKCS#11 sessions: refused here, with a reason.
    ca.refused(&["bench"], 2, &["hsm.backend", "YubiKey"]);
    ca.refused(
        &["token", "init", "--so-pin-file", "/dev/null"],
        2,
        &["ykman"],
    );
}

/// Asserts that nothing was logged and no CA key is on the card.
fn nothing_done(ca: &PivCa) {
    assert!(ca.entries().is_empty(), "{:#?}", ca.entries());
    assert!(!ca.path("data/log.redb").exists());
    let device = ca.device();
    for (role, slot) in SLOTS {
        let err = device.key(slot).unwrap_err();
        assert!(
            matches!(err, signet_hsm::Error::PivSlotEmpty { .. }),
            "{role}: {err}"
        );
    }
}

#[test]
fn what_the_card_cannot_be_trusted_with_is_refused_and_nothing_is_logged() {
    let ca = PivCa::start();

    // A card still on the factory management key.
    ca.refused(&["init"], 3, &["factory-default PIV management key"]);
    nothing_done(&ca);
    ca.set_own_management_key();

    // Another card's serial.
    let text = ca.config_text("");
    let wrong = text.replace(
        &format!("serial = {}", ca.key.serial()),
        "serial = 99999999",
    );
    ca.write_config(&wrong);
    ca.refused(&["init"], 3, &["99999999"]);
    ca.refused(&["log", "check"], 3, &["99999999"]);

    // A key type the card cannot make.
    ca.write_config(&ca.config_text("[keys]\nssh_user_ca = \"ed25519\"\n"));
    ca.refused(
        &["init"],
        2,
        &["keys.ssh_user_ca", "ed25519", "firmware 5.7"],
    );
    ca.write_config(&ca.config_text("[keys]\nx509_ca = \"rsa-4096\"\n"));
    ca.refused(&["init"], 2, &["keys.x509_ca", "rsa-4096"]);

    // No high-water file: a YubiKey has no data object for the mark.
    let no_mark = ca.config_text("");
    let no_mark = no_mark.replace(
        &format!(
            "[log]\nhigh_water = \"{}\"\n",
            ca.path("mark/high-water").display()
        ),
        "",
    );
    assert!(!no_mark.contains("high_water"));
    ca.write_config(&no_mark);
    ca.refused(&["init"], 2, &["log.high_water", "file"]);
    nothing_done(&ca);

    // An attestation that chains to a root nobody configured: refused
    // before any key is generated.
    let stranger = AttestationRoot::create().unwrap();
    ca.write("other-roots.pem", &stranger.cert_pem().unwrap());
    ca.write_config(&ca.config_text("").replace("roots.pem", "other-roots.pem"));
    ca.refused(
        &["init"],
        3,
        &[
            "attestation",
            "does not chain to a device root",
            "other-roots.pem",
        ],
    );
    nothing_done(&ca);

    // No management key file, no roots file: init says which field.
    let text = ca.config_text("");
    let without = |field: &str| {
        text.lines()
            .filter(|l| !l.starts_with(field))
            .collect::<Vec<_>>()
            .join("\n")
    };
    ca.write_config(&without("management_key_file"));
    ca.refused(&["init"], 2, &["piv.management_key_file"]);
    ca.write_config(&without("attestation_roots"));
    ca.refused(&["init"], 2, &["piv.attestation_roots"]);
    nothing_done(&ca);

    // A key already in a CA slot with other policies than configured (a
    // touch per signature): its attestation says so, and it is refused.
    let mgm = PivManagementKey::File(ca.path("piv-mgm"));
    ca.device()
        .generate(
            PivSlot::Retired(1),
            PivKeySpec {
                algorithm: PivAlgorithm::EcdsaP256,
                pin_policy: PivPinPolicy::Once,
                touch_policy: PivTouchPolicy::Always,
            },
            &mgm,
            false,
        )
        .unwrap();
    ca.write_config(&ca.config_text(""));
    ca.refused(
        &["init"],
        3,
        &["slot 82", "touch policy always", "piv.touch_policy"],
    );
    assert!(ca.entries().is_empty());

    // A slot holding another key type than configured.
    ca.write_config(&ca.config_text("[keys]\nssh_user_ca = \"ecdsa-p384\"\n"));
    ca.refused(&["init"], 2, &["keys.ssh_user_ca", "slot 82", "ecdsa-p256"]);
    assert!(ca.entries().is_empty());
    // Nothing but the test's own key was generated.
    let device = ca.device();
    for (role, slot) in &SLOTS[1..] {
        assert!(device.key(*slot).is_err(), "{role}");
    }

    // A key imported into a CA slot (its private half was outside the card
    // once): refused, however well it matches the configuration.
    {
        let mut yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(ca.key.serial())).unwrap();
        yk.authenticate(
            &yubikey::MgmKey::from_bytes(OWN_MGM, Some(yubikey::MgmAlgorithmId::ThreeDes)).unwrap(),
        )
        .unwrap();
        let secret = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
        yubikey::piv::import_ecc_key(
            &mut yk,
            yubikey::piv::SlotId::Retired(yubikey::piv::RetiredSlotId::R2),
            yubikey::piv::AlgorithmId::EccP256,
            &secret.to_bytes(),
            yubikey::TouchPolicy::Never,
            yubikey::PinPolicy::Once,
        )
        .unwrap();
    }
    assert!(!ca
        .device()
        .key(PivSlot::Retired(2))
        .unwrap()
        .generated_on_card());
    ca.write_config(&ca.config_text(""));
    ca.refused(
        &["init"],
        3,
        &["slot 83", "imported, not generated on the card"],
    );
    ca.refused(&["export", "ssh-host-ca"], 3, &["imported"]);
    assert!(ca.entries().is_empty());
    for slot in [PivSlot::Retired(3), PivSlot::Retired(4)] {
        assert!(ca.device().key(slot).is_err(), "{slot}");
    }
}

#[test]
fn a_ceremony_stopped_by_a_wrong_pin_is_completed_by_the_next_init() {
    let ca = PivCa::ready();
    let retries = ca.device().pin_retries().unwrap();

    // A PIN file others can read is refused before the card is asked.
    let pin_file = ca.path("piv-pin");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    ca.refused(&["init"], 3, &["piv-pin", "chmod"]);
    owner_only(&pin_file);
    nothing_done(&ca);

    // A wrong PIN: the keys are generated and attested (neither needs the
    // PIN), the root cannot be signed, nothing is logged, and the card is
    // asked exactly once.
    std::fs::write(&pin_file, "654321\n").unwrap();
    ca.refused(&["init"], 3, &["PIN"]);
    assert_eq!(ca.device().pin_retries().unwrap(), retries - 1);
    assert!(ca.entries().is_empty());
    assert!(!ca.path("data/x509-ca.pem").exists());
    let device = ca.device();
    for (role, slot) in SLOTS {
        assert!(device.key(slot).unwrap().generated_on_card(), "{role}");
    }

    // The right PIN: the keys are kept, and every entry is written now.
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let out = ca.ok(&["init"]);
    assert_eq!(
        out.matches("kept; logged now (its entry was missing)")
            .count(),
        4,
        "{out}"
    );
    assert_eq!(
        out.matches("attestation checked, logged").count(),
        4,
        "{out}"
    );
    assert!(out.contains("created and logged"), "{out}");
    assert_eq!(ca.device().pin_retries().unwrap(), retries);
    assert_eq!(ca.entries().len(), 9);
    assert!(ca.ok(&["log", "check"]).starts_with("OK: 9 entries"));
}

#[test]
fn p384_ca_keys_on_the_card_sign_what_openssh_and_openssl_accept() {
    let ca = PivCa::ready();
    ca.write_config(&ca.config_text(
        "[keys]\nssh_user_ca = \"ecdsa-p384\"\nssh_host_ca = \"ecdsa-p384\"\nx509_ca = \"ecdsa-p384\"\n",
    ));
    let out = ca.ok(&["init"]);
    assert_eq!(out.matches("ecdsa-p384").count(), 3, "{out}");
    assert_eq!(
        ca.device().key(PivSlot::Retired(4)).unwrap().algorithm(),
        PivAlgorithm::EcdsaP256,
        "the log key signs notes: P-256"
    );
    let user_key = ca.client_key("carol");
    let public = format!("{}.pub", user_key.display());
    let cert = ca.ok(&[
        "sign",
        "ssh-user",
        "--user",
        "carol",
        "--principal",
        "carol",
        "--ttl",
        "5m",
        "--public-key",
        &public,
    ]);
    let cert_path = ca.write("carol-cert.pub", &cert);
    let listing = run_tool(
        Command::new("ssh-keygen")
            .arg("-L")
            .arg("-f")
            .arg(&cert_path),
    );
    assert!(listing.contains("Signing CA: ECDSA"), "{listing}");
    assert!(
        ca.ok(&["export", "ssh-user-ca"])
            .starts_with("ecdsa-sha2-nistp384 "),
        "the CA line"
    );
    let x509 = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "carol",
        "--ttl",
        "5m",
        "--public-key",
        &public,
    ]);
    let x509_file = ca.write("carol.pem", &x509);
    let root = ca.write("root.pem", &ca.ok(&["export", "x509-ca"]));
    let text = run_tool(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&x509_file),
    );
    assert!(text.contains("ecdsa-with-SHA384"), "{text}");
    let verified = run_tool(
        Command::new("openssl")
            .args(["verify", "-x509_strict", "-CAfile"])
            .arg(&root)
            .arg(&x509_file),
    );
    assert!(verified.contains(": OK"), "{verified}");
    assert!(ca.ok(&["log", "check"]).starts_with("OK: 11 entries"));
}
