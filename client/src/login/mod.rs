//! `signet login`, `signet enroll`, `signet status`, `signet logout` and
//! `signet key info`: the engineer's side of the touch flow.
//!
//! `signet login` ensures a key in the YubiKey's PIV slot 9a, sends its
//! attested public key to the CA, checks that the WebAuthn challenge
//! commits to exactly that request, asks for one touch, and stores the two
//! certificates only after checking they certify the card's key and are
//! provably in the log under the pinned log key (see [`verify`]). Any
//! failure stores nothing.
//!
//! Trust on first contact: the CA's TLS root comes from `--ca-cert` (the
//! PEM `signet-ca export x509-ca` prints, handed out by the CA's admins),
//! and is pinned in the profile; without it and without a pinned root the
//! public web PKI roots are used (a CA behind a proxy with a public
//! certificate). The log key is fetched from `GET /v1/ca` over that TLS
//! connection at the first login, shown with its fingerprint, and pinned;
//! a later login refuses a CA that serves another one. `--log-key` pins a
//! key obtained out of band instead.

mod fido;
mod http;
pub mod verify;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::Digest as _;
use signet_api::ca::CaInfo;
use signet_api::certs::{
    BeginRequest, BeginResponse, FinishRequest, FinishResponse, KeyPolicyRequired,
};
use signet_api::enroll::{
    EnrollBeginRequest, EnrollBeginResponse, EnrollFinishRequest, EnrollFinishResponse,
};
use signet_api::B64;
use signet_log::note::VerifierKey;

use crate::card::{Card, CardError, KeyAlgorithm, KeyPinPolicy, KeyTouchPolicy, Pin};
use crate::profile::{self, Profile, ProfileError};
use crate::ui::Painter;

pub use fido::{TransportSetting, FIDO_PIN_FILE_ENV};
pub use http::{base_url, origin_of};

/// Why a login (or enroll, status, logout, key info) failed, worded for
/// the engineer. [`LoginError::class`] maps it to an exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Bad flags or arguments.
    #[error("{0}")]
    Usage(String),
    /// No profile yet and not enough flags to make one.
    #[error("no Signet profile yet: run `signet login --proxy HOST:PORT --user NAME --ca-cert FILE` first")]
    NoProfile,
    /// The YubiKey (PIV side).
    #[error(transparent)]
    Card(#[from] CardError),
    /// The profile files.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The CA cannot be reached.
    #[error("cannot reach the CA at {url}: {detail}")]
    CaUnreachable {
        /// The CA's base URL.
        url: String,
        /// What the connection said.
        detail: String,
    },
    /// The CA's TLS certificate is not signed by the trusted root.
    #[error("the CA at {url} is not trusted: its TLS certificate does not chain to the pinned CA root ({detail}); if the CA's root changed, get the new one from its admins and pass it with --ca-cert")]
    TlsUntrusted {
        /// The CA's base URL.
        url: String,
        /// What TLS said.
        detail: String,
    },
    /// The CA answered with an API error.
    #[error("the CA refused: {message} ({code})")]
    Refused {
        /// The API error code (docs/api.md).
        code: String,
        /// The CA's message.
        message: String,
    },
    /// The CA refused the key: its PIN or touch policy is weaker than the
    /// roles demand, and it was not replaced (not made by Signet, and
    /// neither `--replace-weak-key` nor a yes on the terminal).
    #[error("{}", weak_key_text(.message, .required))]
    KeyPolicyTooWeak {
        /// The CA's message.
        message: String,
        /// What the roles demand.
        required: KeyPolicyRequired,
    },
    /// The CA's answer was not what the API promises.
    #[error("the CA's answer to {what} is not usable: {detail}")]
    CaAnswer {
        /// The route.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The begin answer does not commit to the request sent.
    #[error("refused before the touch: {0}")]
    Tampered(String),
    /// The certificates are not for the card's key or not provably logged.
    #[error("refused the certificates, nothing was stored: {0}")]
    NotProven(String),
    /// The CA serves another log key than the one pinned.
    #[error("the CA's log key changed: pinned {pinned}, the CA now serves {served}; nothing was stored. If the CA's admins announced a new log key, remove log_key from {profile} and log in again")]
    LogKeyChanged {
        /// The pinned vkey.
        pinned: String,
        /// The served vkey.
        served: String,
        /// The profile file.
        profile: String,
    },
    /// Nobody touched the security key in time (or the touch was refused).
    #[error("the security key was not touched in time (or the touch was refused); run the command again and touch the key when it blinks")]
    TouchTimeout,
    /// No FIDO2 security key found.
    #[error("no security key found for the touch: plug in your YubiKey (is pcscd running?)")]
    NoSecurityKey,
    /// The FIDO2 side of the key.
    #[error("{0}")]
    SecurityKey(String),
    /// A bug or an environment failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of failure, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginClass {
    /// The CA's answer did not prove itself (exit 1).
    Verification,
    /// Bad usage (exit 2).
    Usage,
    /// Local files (exit 3).
    Local,
    /// The YubiKey or security key: none, wrong PIN, blocked, no touch (exit 4).
    Card,
    /// The CA could not be reached or answered nonsense (exit 5).
    Unreachable,
    /// The CA refused: roles, lock, invite, rate limit (exit 6).
    Refused,
}

impl LoginError {
    /// The class of the failure.
    pub fn class(&self) -> LoginClass {
        match self {
            Self::Tampered(_) | Self::NotProven(_) | Self::LogKeyChanged { .. } => {
                LoginClass::Verification
            }
            Self::Usage(_) | Self::NoProfile => LoginClass::Usage,
            Self::Profile(_) | Self::Internal(_) => LoginClass::Local,
            Self::Card(CardError::PinFile { .. } | CardError::PinFormat(_)) => LoginClass::Usage,
            Self::Card(_) | Self::TouchTimeout | Self::NoSecurityKey | Self::SecurityKey(_) => {
                LoginClass::Card
            }
            Self::CaUnreachable { .. } | Self::TlsUntrusted { .. } | Self::CaAnswer { .. } => {
                LoginClass::Unreachable
            }
            Self::Refused { .. } | Self::KeyPolicyTooWeak { .. } => LoginClass::Refused,
        }
    }
}

/// The words for a list of policies: `once or always`.
fn policy_words<T>(list: &[T], word: impl Fn(&T) -> &'static str) -> String {
    let words: Vec<&str> = list.iter().map(word).collect();
    match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "none".to_owned(),
    }
}

/// What the CA demands, worded for the person: the key's policies, the
/// ones that qualify.
fn weak_key_explained(required: &KeyPolicyRequired) -> String {
    format!(
        "the key in slot 9a has PIN policy {} and touch policy {}; your roles (hardware_key: {}) need PIN policy {} and touch policy {}",
        required.key_pin_policy.as_str(),
        required.key_touch_policy.as_str(),
        required.hardware_key,
        policy_words(&required.pin_policies, |p| p.as_str()),
        policy_words(&required.touch_policies, |t| t.as_str()),
    )
}

/// The refusal when the key was kept. (The CA's own message says the same
/// in its words; the policies shown are from its `key_policy`.)
fn weak_key_text(_message: &str, required: &KeyPolicyRequired) -> String {
    format!(
        "the CA refused the key (key_policy_too_weak): {}. Signet did not make this key, so it left it alone: run `signet login --replace-weak-key` (or `signet login` on a terminal, which asks) to replace it with a new key that qualifies — the old key is destroyed, and anything else that uses it stops working",
        weak_key_explained(required)
    )
}

/// The policies for a new key that satisfies `required`: the preferred
/// ones where they qualify, else the weakest that does (the CA lists them
/// weakest first). `None` when the CA names no policy this client can set.
pub fn qualifying_policies(
    required: &KeyPolicyRequired,
    pin_preferred: KeyPinPolicy,
    touch_preferred: KeyTouchPolicy,
) -> Option<(KeyPinPolicy, KeyTouchPolicy)> {
    let pins: Vec<KeyPinPolicy> = required
        .pin_policies
        .iter()
        .filter_map(|p| KeyPinPolicy::from_name(p.as_str()))
        .collect();
    let touches: Vec<KeyTouchPolicy> = required
        .touch_policies
        .iter()
        .filter_map(|t| KeyTouchPolicy::from_name(t.as_str()))
        .collect();
    let pin = if pins.contains(&pin_preferred) {
        pin_preferred
    } else {
        *pins.first()?
    };
    let touch = if touches.contains(&touch_preferred) {
        touch_preferred
    } else {
        *touches.first()?
    };
    Some((pin, touch))
}

/// What `signet login` is asked to do.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// `--proxy`: the CA's API address.
    pub proxy: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--serial`.
    pub serial: Option<u32>,
    /// `--ca-cert`: the CA root to trust (and pin).
    pub ca_cert: Option<PathBuf>,
    /// `--log-key`: a log vkey obtained out of band.
    pub log_key: Option<String>,
    /// `--principal` (empty: the profile's, else the user name).
    pub principals: Vec<String>,
    /// Requested certificate lifetime.
    pub ttl_seconds: u64,
    /// The PIN policy for a key generated now: `None` for Signet's default
    /// (once), or, when a key too weak for the roles is replaced, the old
    /// key's where it qualifies.
    pub pin_policy: Option<KeyPinPolicy>,
    /// The touch policy, likewise (default: always).
    pub touch_policy: Option<KeyTouchPolicy>,
    /// Generate a new key in slot 9a even if one is there.
    pub new_key: bool,
    /// Replace a key the CA finds weaker than the roles demand, even when
    /// Signet did not make it.
    pub replace_weak_key: bool,
    /// `--transport`: how to reach the security key (remembered; default:
    /// the profile's, else auto).
    pub transport: Option<TransportSetting>,
    /// May ask questions on the terminal.
    pub interactive: bool,
}

/// What a login produced (the `--json` output).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoginRecord {
    /// The user.
    pub user: String,
    /// The CA's base URL.
    pub ca_url: String,
    /// Roles that granted the certificates.
    pub roles: Vec<String>,
    /// SSH principals.
    pub principals: Vec<String>,
    /// Validity start, unix seconds.
    pub not_before: u64,
    /// Validity end, unix seconds.
    pub not_after: u64,
    /// The YubiKey's serial.
    pub serial: u32,
    /// Slot 9a's PIN policy.
    pub pin_policy: String,
    /// Slot 9a's touch policy.
    pub touch_policy: String,
    /// The SSH certificate's serial.
    pub ssh_serial: String,
    /// The X.509 certificate's serial (hex).
    pub x509_serial: String,
    /// Log index of the SSH certificate.
    pub ssh_log_index: u64,
    /// Log index of the X.509 certificate.
    pub x509_log_index: u64,
    /// Where the SSH certificate is.
    pub ssh_certificate_file: PathBuf,
}

fn note(message: impl std::fmt::Display) {
    eprintln!("{message}");
}

/// A line that asks something of the person (the touch) or warns them:
/// bold yellow on a terminal.
fn attention(message: impl std::fmt::Display) {
    eprintln!("{}", Painter::stderr().attention(&message.to_string()));
}

fn ask_yes(question: &str) -> bool {
    use std::io::Write as _;
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

/// SHA-256 fingerprint of a vkey text, as shown when pinning.
pub fn vkey_fingerprint(vkey: &str) -> String {
    use base64::Engine as _;
    let digest = sha2::Sha256::digest(vkey.as_bytes());
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

fn read_root(path: &std::path::Path) -> Result<String, LoginError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoginError::Usage(format!("--ca-cert {}: {e}", path.display())))?;
    if http::pem_blocks(&text).is_empty() {
        return Err(LoginError::Usage(format!(
            "--ca-cert {}: not a PEM certificate (use the output of `signet-ca export x509-ca`)",
            path.display()
        )));
    }
    Ok(text)
}

fn parse_vkey(text: &str, origin: &str) -> Result<VerifierKey, LoginError> {
    let key = VerifierKey::parse(text.trim()).map_err(|e| LoginError::CaAnswer {
        what: "/v1/ca".into(),
        detail: format!("the log key {text:?} is not a verifier key ({e})"),
    })?;
    if key.name() != origin {
        return Err(LoginError::CaAnswer {
            what: "/v1/ca".into(),
            detail: format!(
                "the log key is named {:?}, the log's origin is {origin:?}",
                key.name()
            ),
        });
    }
    Ok(key)
}

/// Reads `--log-key`: a vkey line, or a file holding one.
fn read_log_key_arg(arg: &str) -> Result<String, LoginError> {
    let path = std::path::Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoginError::Usage(format!("--log-key {arg}: {e}")))?;
        Ok(text.trim().to_owned())
    } else {
        Ok(arg.trim().to_owned())
    }
}

/// Generates a P-256 key in slot 9a with these policies, says so, and
/// remembers in the profile that Signet made it.
fn generate_key(
    card: &Card,
    pin: &Pin,
    pin_policy: KeyPinPolicy,
    touch_policy: KeyTouchPolicy,
    profile: &mut Profile,
) -> Result<crate::card::SlotKey, LoginError> {
    let key = card.generate_9a(Some(pin), KeyAlgorithm::P256, pin_policy, touch_policy)?;
    profile.remember_signet_key(&key.spki_der);
    // Remembered at once in the profile on disk, if there is one, so a
    // login that fails later still knows who made the key next time; the
    // rest of the profile changes only when the login succeeds.
    if let Some(mut stored) = Profile::load()? {
        stored.remember_signet_key(&key.spki_der);
        stored.save()?;
    }
    note(format!(
        "Generated a P-256 key in slot 9a (PIN {}, touch {}).",
        key.pin_policy.as_str(),
        key.touch_policy.as_str()
    ));
    Ok(key)
}

/// Runs `signet login`. Progress goes to stderr; the result is returned for
/// the caller to print.
pub fn login(opts: &LoginOptions) -> Result<LoginRecord, LoginError> {
    let existing = Profile::load()?;
    let mut profile = existing.clone().unwrap_or_default();
    let base = match (&opts.proxy, &existing) {
        (Some(proxy), _) => base_url(proxy)?,
        (None, Some(p)) if !p.ca_url.is_empty() => p.ca_url.clone(),
        _ => return Err(LoginError::NoProfile),
    };
    if base != profile.ca_url && !profile.ca_url.is_empty() {
        // Another CA: its pins do not carry over.
        note(format!(
            "Switching the profile from {} to {base}.",
            profile.ca_url
        ));
        profile.log_key = None;
        profile.log_origin = None;
        profile.ca_root = None;
    }
    profile.ca_url = base.clone();
    if let Some(proxy) = &opts.proxy {
        // The same address serves SSH tunnels (`signet proxy ssh`).
        let address = crate::tunnel::ProxyAddress::parse(proxy)
            .map_err(|e| LoginError::Usage(format!("--proxy: {e}")))?;
        profile.proxy = Some(address.to_string());
    }
    let user = match (&opts.user, existing.as_ref().map(|p| p.user.clone())) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) if !u.is_empty() => u,
        _ => return Err(LoginError::Usage("which user? pass --user NAME".into())),
    };
    profile.user = user.clone();
    if opts.serial.is_some() {
        profile.serial = opts.serial;
    }
    if opts.transport.is_some() {
        profile.transport = opts.transport;
    }
    let transport = profile.transport.unwrap_or_default();
    let principals = if !opts.principals.is_empty() {
        opts.principals.clone()
    } else if !profile.principals.is_empty() {
        profile.principals.clone()
    } else {
        vec![user.clone()]
    };
    profile.principals = principals.clone();

    // The TLS root: --ca-cert, else the pinned one, else the web PKI.
    let root_pem = match (&opts.ca_cert, &profile.ca_root) {
        (Some(path), _) => Some(read_root(path)?),
        (None, Some(path)) => Some(read_root(path)?),
        (None, None) => None,
    };
    let client = http::CaClient::new(&base, root_pem.as_deref())?;

    // The log key: pinned, given, or trusted on first contact.
    let info: CaInfo = client.get("/v1/ca")?;
    let served = parse_vkey(&info.log.vkey, &info.log.origin)?;
    // The SSH host CA, for `signet config`'s @cert-authority line; stored
    // with the rest once the login succeeded.
    let host_ca = ssh_key::PublicKey::from_openssh(info.ssh_host_ca.trim()).map_err(|e| {
        LoginError::Internal(format!(
            "the CA's SSH host CA is not an OpenSSH public key ({e})"
        ))
    })?;
    let pinned_text = match (&opts.log_key, &profile.log_key) {
        (Some(arg), _) => Some(read_log_key_arg(arg)?),
        (None, Some(pinned)) => Some(pinned.clone()),
        (None, None) => None,
    };
    let log_key = match pinned_text {
        Some(text) => {
            let pinned = VerifierKey::parse(&text).map_err(|e| {
                LoginError::Usage(format!(
                    "the pinned log key {text:?} is not a verifier key ({e})"
                ))
            })?;
            if pinned.to_string() != served.to_string() {
                return Err(LoginError::LogKeyChanged {
                    pinned: pinned.to_string(),
                    served: served.to_string(),
                    profile: profile::profile_path()?.display().to_string(),
                });
            }
            pinned
        }
        None => {
            note(format!(
                "First login to {base}: pinning its log key {}+{} ({}).",
                served.name(),
                served.key_id(),
                vkey_fingerprint(&served.to_string())
            ));
            served
        }
    };
    profile.log_key = Some(log_key.to_string());
    profile.log_origin = Some(log_key.name().to_owned());

    // The card.
    let card = Card::open(profile.serial)?;
    profile.serial = Some(card.serial());
    note(format!(
        "YubiKey {} (firmware {}).",
        card.serial(),
        card.firmware()
    ));
    let pin = Pin::from_env_or_prompt("YubiKey PIN: ")?;
    card.check_pin(&pin)?;
    let defaults = card.defaults()?;
    if defaults.pin == Some(true) {
        attention("Warning: the YubiKey still has the default PIN; change it (ykman piv access change-pin).");
    }
    if defaults.puk == Some(true) {
        attention("Warning: the YubiKey still has the default PUK; change it (ykman piv access change-puk).");
    }
    if defaults.management_key == Some(true) && !defaults.management_key_protected {
        attention("Warning: the YubiKey still has the default management key: anyone holding it can replace its keys.");
        if opts.interactive
            && ask_yes("Set a random management key, stored on the card and protected by the PIN?")
        {
            card.protect_management_key(&pin)?;
            note("Done: the management key is now random and PIN-protected.");
        } else if !opts.interactive {
            note("(Run `signet login` on a terminal to set a random PIN-protected one.)");
        }
    }

    // The key in slot 9a.
    let mut key = match card.slot_9a()? {
        Some(key) if !opts.new_key => key,
        _ => generate_key(
            &card,
            &pin,
            opts.pin_policy.unwrap_or(KeyPinPolicy::Once),
            opts.touch_policy.unwrap_or(KeyTouchPolicy::Always),
            &mut profile,
        )?,
    };
    if !key.generated {
        return Err(CardError::Unsupported(
            "the key in slot 9a was imported, so it cannot be attested; `signet login --new-key` replaces it with one generated on the card".into(),
        )
        .into());
    }

    // Begin. A key weaker than the roles demand is replaced (once) when
    // Signet made it or its owner agrees, never silently.
    let mut replaced = false;
    let (request, begun) = loop {
        let (statement, f9) = card.attest_9a()?;
        let request = BeginRequest {
            user: user.clone(),
            public_key: B64(key.spki_der.clone()),
            attestation: vec![B64(statement), B64(f9)],
            principals: principals.clone(),
            ttl_seconds: opts.ttl_seconds,
        };
        match client.post::<_, BeginResponse>("/v1/certs/begin", &request) {
            Ok(begun) => break (request, begun),
            Err(LoginError::KeyPolicyTooWeak { message, required }) if !replaced => {
                let Some((pin_policy, touch_policy)) = qualifying_policies(
                    &required,
                    opts.pin_policy.unwrap_or(key.pin_policy),
                    opts.touch_policy.unwrap_or(key.touch_policy),
                ) else {
                    return Err(LoginError::KeyPolicyTooWeak { message, required });
                };
                let made_by_signet = profile.made_by_signet(&key.spki_der);
                if made_by_signet || opts.replace_weak_key || opts.interactive {
                    attention(format!(
                        "The CA refused this key: {}.",
                        weak_key_explained(&required)
                    ));
                }
                let consent = if made_by_signet {
                    note("Signet made this key, so it replaces it with one that qualifies.");
                    true
                } else if opts.replace_weak_key {
                    note("Replacing it, as --replace-weak-key says.");
                    true
                } else if opts.interactive {
                    ask_yes(&format!(
                        "Replace the key in slot 9a with a new one (PIN {}, touch {})? The old key is destroyed.",
                        pin_policy.as_str(),
                        touch_policy.as_str()
                    ))
                } else {
                    false
                };
                if !consent {
                    return Err(LoginError::KeyPolicyTooWeak { message, required });
                }
                key = generate_key(&card, &pin, pin_policy, touch_policy, &mut profile)?;
                replaced = true;
            }
            Err(e) => return Err(e),
        }
    };
    verify::check_begin(&request, &begun)?;
    // The ceremony expires 60 s after the CA's now: a large difference to
    // ours is clock skew, which breaks certificate validity checks later.
    let skew = i128::from(begun.expires_at) - 60 - i128::from(now());
    if skew.abs() > 120 {
        attention(format!(
            "Warning: this machine's clock is {} s {} the CA's; fix the clock (NTP) or certificates may look not yet valid or expired.",
            skew.abs(),
            if skew > 0 { "behind" } else { "ahead of" }
        ));
    }

    // The touch.
    attention("Touch your security key…");
    let prompter = fido::Prompter::new(true);
    let assertion = fido::assert(
        &http::origin_of(client.base()),
        &begun.webauthn,
        &prompter,
        Some(card.reader()),
        transport,
    )?;
    let finish: FinishResponse = client.post(
        "/v1/certs/finish",
        &FinishRequest {
            ceremony: begun.ceremony.clone(),
            assertion,
        },
    )?;
    if finish.user != user {
        return Err(LoginError::NotProven(format!(
            "the certificates are for {:?}, not {user:?}",
            finish.user
        )));
    }
    let verified = verify::check_finish(&finish, &key.spki_der, &log_key)?;

    // Everything checked: store.
    card.write_certificate_9a(Some(&pin), &verified.x509_der)?;
    let ssh_path = profile::ssh_certificate_path()?;
    profile::write_private(
        &ssh_path,
        format!("{}\n", verified.ssh_certificate).as_bytes(),
    )?;
    profile::write_private(
        &profile::x509_certificate_path()?,
        verified.x509_pem.as_bytes(),
    )?;
    if let Some(pem) = &root_pem {
        let root_path = profile::ca_root_path()?;
        if opts.ca_cert.is_some() {
            profile::write_private(&root_path, pem.as_bytes())?;
            profile.ca_root = Some(root_path);
        }
    }
    let record = LoginRecord {
        user,
        ca_url: base,
        roles: finish.roles.clone(),
        principals: verified.principals.clone(),
        not_before: verified.not_before,
        not_after: verified.not_after,
        serial: card.serial(),
        pin_policy: key.pin_policy.as_str().into(),
        touch_policy: key.touch_policy.as_str().into(),
        ssh_serial: finish.ssh.serial.clone(),
        x509_serial: finish.x509.serial.clone(),
        ssh_log_index: verified.ssh_log_index,
        x509_log_index: verified.x509_log_index,
        ssh_certificate_file: ssh_path,
    };
    let json =
        serde_json::to_vec_pretty(&record).map_err(|e| LoginError::Internal(e.to_string()))?;
    profile::write_private(&profile::login_record_path()?, &json)?;
    let host_ca_line = host_ca
        .to_openssh()
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    profile::write_private(
        &profile::config_dir()?.join("ssh-host-ca.pub"),
        format!("{host_ca_line}\n").as_bytes(),
    )?;
    profile.save()?;
    Ok(record)
}

/// Runs `signet enroll LINK`: registers the security key with an invite.
pub fn enroll(
    link: &str,
    ca_cert: Option<&std::path::Path>,
    serial: Option<u32>,
    transport: Option<TransportSetting>,
) -> Result<EnrollFinishResponse, LoginError> {
    let link = link.trim();
    let bad = || {
        LoginError::Usage(format!(
            "{link:?} is not an invite link (https://HOST[:PORT]/enroll/TOKEN)"
        ))
    };
    let rest = link.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
    let token = path.strip_prefix("enroll/").ok_or_else(bad)?;
    if token.is_empty()
        || token.len() > 128
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad());
    }
    let base = base_url(authority)?;
    let existing = Profile::load()?;
    let root_pem = match (ca_cert, existing.as_ref().and_then(|p| p.ca_root.clone())) {
        (Some(path), _) => Some(read_root(path)?),
        (None, Some(path)) => Some(read_root(&path)?),
        (None, None) => None,
    };
    let client = http::CaClient::new(&base, root_pem.as_deref())?;
    let begun: EnrollBeginResponse = client.post(
        "/v1/enroll/begin",
        &EnrollBeginRequest {
            token: token.to_owned(),
        },
    )?;
    note(format!("Enrolling a security key for {}.", begun.user));
    attention("Touch your security key…");
    let prompter = fido::Prompter::new(true);
    // With a serial (given, or the profile's), the security key is the one
    // in that YubiKey's reader; without, the only one present.
    let card = match serial.or(existing.as_ref().and_then(|p| p.serial)) {
        Some(serial) => Some(Card::open(Some(serial))?),
        None => None,
    };
    let credential = fido::register(
        &origin_of(&base),
        &begun.webauthn,
        &prompter,
        card.as_ref().map(Card::reader),
        transport
            .or(existing.as_ref().and_then(|p| p.transport))
            .unwrap_or_default(),
    )?;
    let done: EnrollFinishResponse = client.post(
        "/v1/enroll/finish",
        &EnrollFinishRequest {
            ceremony: begun.ceremony,
            token: token.to_owned(),
            credential,
        },
    )?;
    // Remember the CA and user for `signet login`, unless a profile exists.
    if existing.is_none() {
        let mut profile = Profile {
            ca_url: base,
            user: done.user.clone(),
            transport,
            ..Profile::default()
        };
        if let Some(pem) = &root_pem {
            if ca_cert.is_some() {
                let root_path = profile::ca_root_path()?;
                profile::write_private(&root_path, pem.as_bytes())?;
                profile.ca_root = Some(root_path);
            }
        }
        profile.save()?;
    }
    Ok(done)
}

/// What `signet status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// Logged in: a certificate is stored.
    pub logged_in: bool,
    /// The user.
    pub user: Option<String>,
    /// The CA.
    pub ca_url: Option<String>,
    /// The YubiKey's serial.
    pub serial: Option<u32>,
    /// Principals of the stored SSH certificate.
    pub principals: Vec<String>,
    /// Roles at the last login.
    pub roles: Vec<String>,
    /// Validity of the stored SSH certificate.
    pub not_before: Option<u64>,
    /// See `not_before`.
    pub not_after: Option<u64>,
    /// Whether it has expired.
    pub expired: bool,
    /// Seconds left.
    pub seconds_left: u64,
    /// Log index of the SSH certificate.
    pub log_index: Option<u64>,
    /// Log index of the X.509 certificate.
    pub x509_log_index: Option<u64>,
    /// The SSH certificate file.
    pub ssh_certificate_file: Option<PathBuf>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs `signet status`: from the stored SSH certificate (its own dates
/// and principals) and the last login's record.
pub fn status() -> Result<Status, LoginError> {
    let profile = Profile::load()?;
    let ssh_path = profile::ssh_certificate_path()?;
    let record: Option<LoginRecord> = match std::fs::read(profile::login_record_path()?) {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(_) => None,
    };
    let cert = match std::fs::read_to_string(&ssh_path) {
        Ok(text) => Some(
            ssh_key::Certificate::from_openssh(text.trim()).map_err(|e| {
                LoginError::Profile(ProfileError::Malformed {
                    path: ssh_path.display().to_string(),
                    detail: e.to_string(),
                })
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(ProfileError::Io {
                path: ssh_path.display().to_string(),
                source: e,
            }
            .into())
        }
    };
    let now = now();
    Ok(match cert {
        Some(cert) => Status {
            logged_in: true,
            user: profile.as_ref().map(|p| p.user.clone()),
            ca_url: profile.as_ref().map(|p| p.ca_url.clone()),
            serial: profile.as_ref().and_then(|p| p.serial),
            principals: cert.valid_principals().to_vec(),
            roles: record.as_ref().map(|r| r.roles.clone()).unwrap_or_default(),
            not_before: Some(cert.valid_after()),
            not_after: Some(cert.valid_before()),
            expired: cert.valid_before() <= now,
            seconds_left: cert.valid_before().saturating_sub(now),
            log_index: record.as_ref().map(|r| r.ssh_log_index),
            x509_log_index: record.as_ref().map(|r| r.x509_log_index),
            ssh_certificate_file: Some(ssh_path),
        },
        None => Status {
            logged_in: false,
            user: profile.as_ref().map(|p| p.user.clone()),
            ca_url: profile.as_ref().map(|p| p.ca_url.clone()),
            serial: profile.as_ref().and_then(|p| p.serial),
            principals: Vec::new(),
            roles: Vec::new(),
            not_before: None,
            not_after: None,
            expired: false,
            seconds_left: 0,
            log_index: None,
            x509_log_index: None,
            ssh_certificate_file: None,
        },
    })
}

/// Runs `signet logout`: removes the stored certificates (files, and the
/// certificate in slot 9a when the card is present), keeps the key.
/// Returns what was removed.
pub fn logout() -> Result<Vec<String>, LoginError> {
    let mut removed = Vec::new();
    for path in [
        profile::ssh_certificate_path()?,
        profile::x509_certificate_path()?,
        profile::login_record_path()?,
    ] {
        if profile::remove_if_present(&path)? {
            removed.push(path.display().to_string());
        }
    }
    let serial = Profile::load()?.and_then(|p| p.serial);
    match Card::open(serial) {
        Ok(card) => {
            if card.certificate_9a()?.is_some() {
                let pin = if card.defaults()?.management_key_protected {
                    Some(Pin::from_env_or_prompt("YubiKey PIN: ")?)
                } else {
                    None
                };
                card.delete_certificate_9a(pin.as_ref())?;
                removed.push(format!(
                    "the certificate in slot 9a of YubiKey {}",
                    card.serial()
                ));
            }
        }
        Err(e) => note(format!(
            "The YubiKey's slot 9a certificate was left in place: {e}"
        )),
    }
    Ok(removed)
}

/// What `signet key info` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Serial.
    pub serial: u32,
    /// Firmware version.
    pub firmware: String,
    /// The PC/SC reader.
    pub reader: String,
    /// PIN tries left.
    pub pin_retries: u8,
    /// Factory defaults still set.
    pub defaults: crate::card::Defaults,
    /// The key in slot 9a.
    pub slot_9a: Option<crate::card::SlotKey>,
    /// SHA-256 of slot 9a's public key (SubjectPublicKeyInfo), hex.
    pub slot_9a_public_key_sha256: Option<String>,
    /// Whether the key is attested by the card (`f9`), and the attestation's issuer.
    pub attestation: Option<String>,
    /// The certificate in slot 9a: subject and expiry.
    pub certificate_9a: Option<String>,
}

/// Runs `signet key info`.
pub fn key_info(serial: Option<u32>) -> Result<KeyInfo, LoginError> {
    use der::Decode as _;
    let serial = serial.or(Profile::load().ok().flatten().and_then(|p| p.serial));
    let card = Card::open(serial)?;
    let slot = card.slot_9a()?;
    let attestation = match &slot {
        Some(k) if k.generated => match card.attest_9a() {
            Ok((statement, _)) => x509_cert::Certificate::from_der(&statement)
                .ok()
                .map(|c| format!("attested by {}", c.tbs_certificate().issuer())),
            Err(e) => Some(format!("not attested: {e}")),
        },
        Some(_) => Some("not attestable (imported key)".into()),
        None => None,
    };
    let certificate_9a = card.certificate_9a()?.and_then(|der| {
        x509_cert::Certificate::from_der(&der).ok().map(|c| {
            format!(
                "{} (until {})",
                c.tbs_certificate().subject(),
                c.tbs_certificate().validity().not_after
            )
        })
    });
    Ok(KeyInfo {
        serial: card.serial(),
        firmware: card.firmware().to_owned(),
        reader: card.reader().to_owned(),
        pin_retries: card.pin_retries()?,
        defaults: card.defaults()?,
        slot_9a_public_key_sha256: slot
            .as_ref()
            .map(|k| hex::encode(sha2::Sha256::digest(&k.spki_der))),
        slot_9a: slot,
        attestation,
        certificate_9a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_api::certs::{PinPolicy, TouchPolicy};

    fn touch_and_pin() -> KeyPolicyRequired {
        KeyPolicyRequired {
            hardware_key: "touch_and_pin".into(),
            pin_policies: vec![PinPolicy::Once, PinPolicy::Always],
            touch_policies: vec![TouchPolicy::Always, TouchPolicy::Cached],
            key_pin_policy: PinPolicy::Never,
            key_touch_policy: TouchPolicy::Always,
        }
    }

    #[test]
    fn a_new_key_keeps_the_preferences_that_qualify() {
        let required = touch_and_pin();
        // Preferred and qualifying: kept.
        assert_eq!(
            qualifying_policies(&required, KeyPinPolicy::Always, KeyTouchPolicy::Cached),
            Some((KeyPinPolicy::Always, KeyTouchPolicy::Cached))
        );
        // Preferred but too weak: the weakest that qualifies.
        assert_eq!(
            qualifying_policies(&required, KeyPinPolicy::Never, KeyTouchPolicy::Never),
            Some((KeyPinPolicy::Once, KeyTouchPolicy::Always))
        );
        // The CA names nothing this client can set: no key is made.
        let empty = KeyPolicyRequired {
            pin_policies: Vec::new(),
            ..touch_and_pin()
        };
        assert_eq!(
            qualifying_policies(&empty, KeyPinPolicy::Once, KeyTouchPolicy::Always),
            None
        );
    }

    #[test]
    fn the_refusal_says_what_the_key_has_and_what_qualifies() {
        let err = LoginError::KeyPolicyTooWeak {
            message: "this key is not strong enough".into(),
            required: touch_and_pin(),
        };
        let text = err.to_string();
        for part in [
            "PIN policy never and touch policy always",
            "hardware_key: touch_and_pin",
            "PIN policy once or always and touch policy always or cached",
            "key_policy_too_weak",
            "signet login --replace-weak-key",
            "the old key is destroyed",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        assert_eq!(err.class(), LoginClass::Refused);
    }
}
