//! A private SoftHSM2 token: its own configuration file and token directory.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rand::RngExt;
use zeroize::Zeroizing;

/// The PKCS#11 module the tests use: `SIGNET_PKCS11_MODULE` if set, else
/// Debian's SoftHSM2.
pub fn softhsm_module() -> PathBuf {
    std::env::var_os(MODULE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// The variable naming the existing token of a real module (its label).
pub const TOKEN_ENV: &str = "SIGNET_PKCS11_TOKEN";
/// The variable naming the file with that token's user PIN.
pub const PIN_FILE_ENV: &str = "SIGNET_PKCS11_PIN_FILE";
/// The variable naming the module (a real HSM's, or another SoftHSM2 build).
pub const MODULE_ENV: &str = "SIGNET_PKCS11_MODULE";

/// A SoftHSM2 configuration and token directory of the test's own, with one
/// initialised token and its user PIN in a file.
///
/// With `SIGNET_PKCS11_MODULE` set, the same tests run against a real
/// module instead: the existing token whose label is `SIGNET_PKCS11_TOKEN`,
/// logged in with the PIN in `SIGNET_PKCS11_PIN_FILE`. Nothing is
/// initialised then, and since keys are never deleted, [`SoftHsm::unique`]
/// gives every run's keys labels of their own. Both variables are required
/// in that mode: a test never falls back to initialising a slot.
///
/// Tokens are only ever initialised in SoftHSM2: the helper asks the module
/// what it is (`C_GetInfo`) and refuses any other
/// ([`signet_hsm::initialize_softhsm_token`]).
pub struct SoftHsm {
    dir: tempfile::TempDir,
    label: String,
    external: Option<External>,
}

struct External {
    pin_file: PathBuf,
    run_id: String,
}

fn random_pin() -> Zeroizing<String> {
    let mut rng = rand::rng();
    Zeroizing::new(
        (0..8)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect(),
    )
}

fn write_secret(path: &Path, value: &str) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(value.as_bytes()).unwrap();
    file.write_all(b"\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A label suffix unique to this run: seconds since the epoch and random hex.
fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random: u32 = rand::rng().random();
    format!("{secs}-{random:08x}")
}

fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("signet-softhsm-")
        .tempdir()
        .unwrap()
}

impl SoftHsm {
    /// Creates the configuration and token directory and initialises a token
    /// named `label` with random SO and user PINs (written to files, never
    /// passed on a command line).
    ///
    /// This points `SOFTHSM2_CONF` of the current process at the new
    /// configuration, which SoftHSM2 reads once per process: tests that open
    /// tokens in-process must each run in their own process (the test
    /// runner is cargo-nextest, which does that).
    ///
    /// With `SIGNET_PKCS11_MODULE` set, `label` is ignored and the existing
    /// token named by `SIGNET_PKCS11_TOKEN` is used (see [`SoftHsm`]); the
    /// test panics with the missing variable's name if either
    /// `SIGNET_PKCS11_TOKEN` or `SIGNET_PKCS11_PIN_FILE` is not set.
    pub fn create(label: &str) -> Self {
        if std::env::var_os(MODULE_ENV).is_some() {
            return Self::existing();
        }
        let dir = scratch_dir();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        let so_pin = random_pin();
        let user_pin = random_pin();
        write_secret(&dir.path().join("so-pin"), &so_pin);
        write_secret(&dir.path().join("user-pin"), &user_pin);
        let hsm = Self {
            dir,
            label: label.to_owned(),
            external: None,
        };
        // SAFETY of the environment: tests run one per process under nextest.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        signet_hsm::initialize_softhsm_token(
            &softhsm_module(),
            label,
            &signet_hsm::Pin::from_secret(so_pin).unwrap(),
            &signet_hsm::Pin::from_secret(user_pin).unwrap(),
        )
        .expect("initialise SoftHSM2 token");
        hsm
    }

    /// The real-token mode: the existing token `SIGNET_PKCS11_TOKEN` of
    /// `SIGNET_PKCS11_MODULE`, its PIN in `SIGNET_PKCS11_PIN_FILE`, nothing
    /// initialised, key labels made unique per run.
    fn existing() -> Self {
        let required = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{MODULE_ENV} is set, so tests use an existing token of that module and \
                     never initialise one: set {name} too ({TOKEN_ENV} = the token's label, \
                     {PIN_FILE_ENV} = a file holding its user PIN)"
                )
            })
        };
        let label = required(TOKEN_ENV);
        let pin_file = PathBuf::from(required(PIN_FILE_ENV));
        Self {
            dir: scratch_dir(),
            label,
            external: Some(External {
                pin_file,
                run_id: run_id(),
            }),
        }
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// True when testing a real module named by `SIGNET_PKCS11_MODULE`.
    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    /// A key label for this test: `base` on a fresh SoftHSM2 token, `base`
    /// with this run's id on a real token (keys are never deleted, so a
    /// second run must not collide with the first).
    pub fn unique(&self, base: &str) -> String {
        match &self.external {
            Some(external) => format!("{base}-{}", external.run_id),
            None => base.to_owned(),
        }
    }

    /// The directory everything lives in (also a good place for test files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the SoftHSM2 configuration, for `SOFTHSM2_CONF` of child
    /// processes. In the real-token mode: the configuration this process
    /// got (`SOFTHSM2_CONF`, else SoftHSM2's default), which only matters
    /// when the "real" module is itself a SoftHSM2.
    pub fn conf(&self) -> PathBuf {
        match &self.external {
            Some(_) => std::env::var_os("SOFTHSM2_CONF")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/softhsm/softhsm2.conf")),
            None => self.dir.path().join("softhsm2.conf"),
        }
    }

    /// File holding the user PIN.
    pub fn pin_file(&self) -> PathBuf {
        match &self.external {
            Some(external) => external.pin_file.clone(),
            None => self.dir.path().join("user-pin"),
        }
    }

    /// The user PIN itself, for tools that only take it as an argument.
    pub fn user_pin(&self) -> String {
        std::fs::read_to_string(self.pin_file())
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `example` (the text of deploy/signet-ca.example.toml) with its
    /// `[hsm]` table pointed at this token and its PIN file, and
    /// `data_dir` at `data` in this token's directory: where every test's
    /// and benchmark's CA starts, before its own changes.
    ///
    /// Panics if the example no longer has a line it replaces: a test
    /// must not run against the example's real paths.
    pub fn ca_config_from(&self, example: &str) -> String {
        let replacements = [
            (
                "data_dir = \"/var/lib/signet\"",
                format!("data_dir = \"{}\"", self.dir().join("data").display()),
            ),
            (
                "module = \"/usr/lib/softhsm/libsofthsm2.so\"",
                format!("module = \"{}\"", softhsm_module().display()),
            ),
            (
                "token_label = \"signet-ca\"",
                format!("token_label = \"{}\"", self.label),
            ),
            (
                "pin_file = \"/etc/signet/hsm-pin\"",
                format!("pin_file = \"{}\"", self.pin_file().display()),
            ),
        ];
        let mut text = example.to_owned();
        for (from, to) in replacements {
            assert!(
                text.contains(from),
                "the example configuration has no {from:?}"
            );
            text = text.replace(from, &to);
        }
        text
    }

    /// A token configuration for this token with `sessions` sessions.
    pub fn token_config(&self, sessions: usize) -> signet_hsm::TokenConfig {
        signet_hsm::TokenConfig {
            module: softhsm_module(),
            token: signet_hsm::TokenSelector::Label(self.label.clone()),
            pin: signet_hsm::PinSource::File(self.pin_file()),
            sessions: std::num::NonZeroUsize::new(sessions.max(1)).unwrap(),
        }
    }
}
