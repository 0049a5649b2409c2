//! The device fixture of the FIDO2 suite: the virtual YubiKey's FIDO applet
//! behind a private pcscd by default, or the real security key in the PC/SC
//! reader named by `SIGNET_FIDO_READER` (through the system pcscd).
//!
//! Tests that erase or re-PIN the key are "destructive": against a real key
//! they run only with `SIGNET_FIDO_DESTRUCTIVE=1`.

// Test support: a failed set-up is a failed test, so panicking is the point.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use signet_firmware_tests::fido::FidoControl;
use signet_firmware_tests::harness::{DeviceLock, VirtualKeyOptions, VirtualYubiKey, READER_NAME};
use signet_firmware_tests::touch::TouchControl;
use std::path::PathBuf;
use std::process::Command;

/// Substring of the PC/SC reader name of a real key to qualify.
pub const READER_ENV: &str = "SIGNET_FIDO_READER";
/// Allows tests that reset the real key or set its PIN.
pub const DESTRUCTIVE_ENV: &str = "SIGNET_FIDO_DESTRUCTIVE";
/// PEM file with the attestation root(s) to check a real key against.
pub const ROOT_ENV: &str = "SIGNET_FIDO_ATTESTATION_ROOT";
/// The Python interpreter with python-fido2 (default `python3`).
pub const PYTHON_ENV: &str = "SIGNET_PYTHON";

enum Target {
    Virtual {
        key: Box<VirtualYubiKey>,
        root_pem: PathBuf,
        _dir: tempfile::TempDir,
    },
    Real {
        reader: String,
        _lock: DeviceLock,
    },
}

/// One FIDO device under test, exclusively held for the test's duration.
pub struct FidoFixture {
    target: Target,
}

impl FidoFixture {
    /// The device for a test; `None` means "skip" (reason printed).
    pub fn new(destructive: bool) -> Option<Self> {
        match std::env::var(READER_ENV) {
            Ok(reader) => {
                if destructive && std::env::var(DESTRUCTIVE_ENV).as_deref() != Ok("1") {
                    eprintln!("skipped: destructive test; set {DESTRUCTIVE_ENV}=1 to run it on the real key");
                    return None;
                }
                Some(Self {
                    target: Target::Real {
                        reader,
                        _lock: DeviceLock::acquire().expect("device lock"),
                    },
                })
            }
            Err(_) => {
                let key =
                    VirtualYubiKey::start(VirtualKeyOptions::default()).expect("virtual YubiKey");
                let dir = tempfile::tempdir().unwrap();
                let root_pem = dir.path().join("attestation-root.pem");
                std::fs::write(&root_pem, key.root().cert_pem().unwrap()).unwrap();
                Some(Self {
                    target: Target::Virtual {
                        key: Box::new(key),
                        root_pem,
                        _dir: dir,
                    },
                })
            }
        }
    }

    /// A fixture only the virtual key can provide (touch control, PIN
    /// state); `None` against a real key.
    pub fn virtual_only() -> Option<Self> {
        if std::env::var(READER_ENV).is_ok() {
            eprintln!("skipped: needs the virtual key");
            return None;
        }
        Self::new(true)
    }

    pub fn is_virtual(&self) -> bool {
        matches!(self.target, Target::Virtual { .. })
    }

    pub fn virtual_key(&self) -> Option<&VirtualYubiKey> {
        match &self.target {
            Target::Virtual { key, .. } => Some(key),
            Target::Real { .. } => None,
        }
    }

    pub fn touch(&self) -> Option<&TouchControl> {
        self.virtual_key().map(VirtualYubiKey::touch)
    }

    pub fn fido(&self) -> Option<&FidoControl> {
        self.virtual_key().map(VirtualYubiKey::fido)
    }

    /// The reader-name substring clients look for.
    pub fn reader(&self) -> String {
        match &self.target {
            Target::Virtual { .. } => READER_NAME.to_string(),
            Target::Real { reader, .. } => reader.clone(),
        }
    }

    /// Environment that makes a child process talk to this device.
    pub fn envs(&self) -> Vec<(String, String)> {
        let mut envs = vec![("SIGNET_FIDO_READER".to_string(), self.reader())];
        match &self.target {
            Target::Virtual { key, root_pem, .. } => {
                for (k, v) in key.pcscd().envs() {
                    envs.push((k, v.display().to_string()));
                }
                envs.push(("SIGNET_FIDO_ROOT".into(), root_pem.display().to_string()));
                envs.push(("SIGNET_FIDO_VIRTUAL".into(), "1".into()));
            }
            Target::Real { .. } => {
                if let Ok(root) = std::env::var(ROOT_ENV) {
                    envs.push(("SIGNET_FIDO_ROOT".into(), root));
                }
            }
        }
        envs
    }

    /// Runs the python-fido2 conformance script with `scenarios` against
    /// this device and fails the test if it fails. `None` when python-fido2
    /// is missing outside CI (with CI=true that is a failure).
    pub fn python(&self, scenarios: &[&str]) -> Option<String> {
        let python = python_with_fido2()?;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python/fido2_conformance.py");
        let out = Command::new(&python)
            .arg(&script)
            .args(scenarios)
            .envs(self.envs())
            .output()
            .expect("running the python-fido2 script");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = match &self.target {
            Target::Virtual { key, .. } => key.pcscd().log_tail(),
            Target::Real { .. } => String::new(),
        };
        assert!(
            out.status.success(),
            "python-fido2 {scenarios:?} failed ({}):\n{stdout}\n{stderr}\npcscd log:\n{log}",
            out.status
        );
        assert!(stdout.contains("all passed"), "{stdout}");
        Some(stdout)
    }
}

/// The interpreter to use, if python-fido2 and pyscard import in it.
/// Missing is a skip locally and a failure in CI (`CI=true`).
pub fn python_with_fido2() -> Option<String> {
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import fido2.pcsc, smartcard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    let msg = format!(
        "python-fido2 missing: `{python} -m pip install 'fido2>=2,<3' pyscard` \
         (deploy/lib.sh ensure_python_fido2 does it)"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    None
}
