//! The security key over CTAP2 (webauthn-authenticator-rs): registration
//! for `signet enroll`, the assertion for `signet login`.
//!
//! The transport is PC/SC (the library's `nfc` transport): NFC readers, and
//! cards whose FIDO2 applet answers over CCID, like the virtual YubiKey.
//! The login asks the FIDO2 applet in the same reader as the PIV card, so
//! with several keys present the touch is asked of the right one. A YubiKey
//! plugged into USB offers FIDO2 over HID only; the library's `usb`
//! transport needs bindgen and libclang at build time, which the CI image
//! lacks, so it is not built yet: adding it means choosing the HID token
//! whose serial matches the PIV card beside the PC/SC one here.

use std::sync::Mutex;

use signet_api::webauthn::{
    AssertionResponse, CreationOptions, RegistrationResponse, RequestOptions,
};
use webauthn_authenticator_rs::ctap2::CtapAuthenticator;
use webauthn_authenticator_rs::nfc::{NFCCard, NFCTransport};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::transport::Transport as _;
use webauthn_authenticator_rs::types::{CableRequestType, CableState, EnrollSampleStatus};
use webauthn_authenticator_rs::ui::UiCallback;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use zeroize::Zeroizing;

use super::LoginError;

/// The environment variable naming a file with the security key's FIDO2
/// PIN, when it differs from the PIV PIN (`SIGNET_PIN_FILE` is used
/// otherwise).
pub const FIDO_PIN_FILE_ENV: &str = "SIGNET_FIDO_PIN_FILE";

/// The person at the keyboard, as the CTAP2 client sees them: asked for
/// the FIDO2 PIN (file or terminal) and told when to touch.
pub(crate) struct Prompter {
    asked_pin: Mutex<bool>,
    quiet: bool,
}

impl std::fmt::Debug for Prompter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompter").finish_non_exhaustive()
    }
}

impl Prompter {
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            asked_pin: Mutex::new(false),
            quiet,
        }
    }

    fn fido_pin(&self) -> Option<Zeroizing<String>> {
        let file = std::env::var_os(FIDO_PIN_FILE_ENV)
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var_os(crate::card::PIN_FILE_ENV).filter(|v| !v.is_empty()));
        let pin = match file {
            Some(path) => crate::card::Pin::from_file(std::path::Path::new(&path)).ok()?,
            None => crate::card::Pin::prompt("Security key (FIDO2) PIN: ").ok()?,
        };
        Some(Zeroizing::new(
            String::from_utf8_lossy(pin.expose()).into_owned(),
        ))
    }
}

impl UiCallback for Prompter {
    fn request_pin(&self) -> Option<String> {
        // A PIN the key refused is not sent again from a file.
        let mut asked = self.asked_pin.lock().ok()?;
        if *asked {
            return None;
        }
        *asked = true;
        // The library takes a String; it is dropped after use.
        self.fido_pin().map(|p| p.as_str().to_owned())
    }

    fn request_touch(&self) {
        if !self.quiet {
            eprintln!("Touch your security key…");
        }
    }

    fn processing(&self) {}
    fn fingerprint_enrollment_feedback(&self, _: u32, _: Option<EnrollSampleStatus>) {}
    fn cable_qr_code(&self, _: CableRequestType, _: String) {}
    fn dismiss_qr_code(&self) {}
    fn cable_status_update(&self, _: CableState) {}
}

fn runtime() -> Result<tokio::runtime::Runtime, LoginError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoginError::Internal(format!("cannot start the async runtime: {e}")))
}

/// A CTAP2 error worded for a person.
fn ctap_error(e: impl std::fmt::Debug) -> LoginError {
    let text = format!("{e:?}");
    if [
        "UserActionTimeout",
        "ActionTimeout",
        "OperationDenied",
        "KeepAliveCancel",
        "Cancelled",
    ]
    .iter()
    .any(|t| text.contains(t))
    {
        LoginError::TouchTimeout
    } else if text.contains("UserVerificationRequired") {
        LoginError::SecurityKey(
            "the security key must verify you with its FIDO2 PIN, and it has none set: set one (ykman fido access change-pin) and try again".into(),
        )
    } else if text.contains("PinInvalid") {
        LoginError::SecurityKey("the security key refused its FIDO2 PIN".into())
    } else if text.contains("PinBlocked") || text.contains("PinAuthBlocked") {
        LoginError::SecurityKey(
            "the security key's FIDO2 PIN is blocked (too many wrong tries); remove and reinsert it, or reset its FIDO applet".into(),
        )
    } else if text.contains("CredentialExcluded") {
        LoginError::SecurityKey("this security key is already enrolled for this user".into())
    } else if text.contains("NoCredentials") {
        LoginError::SecurityKey(
            "this security key is not the one enrolled for this user (run `signet enroll` with an invite first)".into(),
        )
    } else {
        LoginError::SecurityKey(format!("the CTAP2 exchange failed: {text}"))
    }
}

/// Runs `work` with the security key: the one in `reader` (the PIV card's
/// reader, so the touch is asked of the same YubiKey) when given and
/// present, else the only one present.
fn with_authenticator<T>(
    prompter: &Prompter,
    reader: Option<&str>,
    work: impl FnOnce(&mut CtapAuthenticator<'_, NFCCard, Prompter>) -> Result<T, LoginError>,
) -> Result<T, LoginError> {
    let rt = runtime()?;
    let transport = NFCTransport::new(pcsc::Scope::User).map_err(|e| {
        LoginError::SecurityKey(format!(
            "cannot look for security keys (is pcscd running?): {e:?}"
        ))
    })?;
    let mut tokens = rt
        .block_on(transport.tokens())
        .map_err(|e| LoginError::SecurityKey(format!("cannot list security keys: {e:?}")))?;
    let same_reader =
        reader.and_then(|name| tokens.iter().position(|t| t.reader_name() == Some(name)));
    let token = match (same_reader, tokens.len()) {
        (Some(i), _) => tokens.swap_remove(i),
        (None, 0) => return Err(LoginError::NoSecurityKey),
        (None, 1) => tokens.pop().ok_or(LoginError::NoSecurityKey)?,
        (None, n) => {
            return Err(LoginError::SecurityKey(format!(
                "{n} security keys are present; name the YubiKey with --serial (or leave only the one to use plugged in)"
            )))
        }
    };
    let mut client = rt
        .block_on(CtapAuthenticator::new(token, prompter))
        .ok_or_else(|| LoginError::SecurityKey("the security key does not speak CTAP2".into()))?;
    work(&mut client)
}

fn origin_url(origin: &str) -> Result<Url, LoginError> {
    Url::parse(origin)
        .map_err(|e| LoginError::Usage(format!("the origin {origin:?} is not a URL: {e}")))
}

/// Registers the security key for `options` (from `/v1/enroll/begin`):
/// the one in `reader` when given.
pub(crate) fn register(
    origin: &str,
    options: &CreationOptions,
    prompter: &Prompter,
    reader: Option<&str>,
) -> Result<RegistrationResponse, LoginError> {
    let ccr: CreationChallengeResponse = convert(options)?;
    let url = origin_url(origin)?;
    with_authenticator(prompter, reader, |client| {
        let reg = client.do_registration(url, ccr).map_err(ctap_error)?;
        convert(&reg)
    })
}

/// Asserts over `options` (from `/v1/certs/begin`): the touch, on the
/// security key in `reader` when it has one.
pub(crate) fn assert(
    origin: &str,
    options: &RequestOptions,
    prompter: &Prompter,
    reader: Option<&str>,
) -> Result<AssertionResponse, LoginError> {
    let rcr: RequestChallengeResponse = convert(options)?;
    let url = origin_url(origin)?;
    with_authenticator(prompter, reader, |client| {
        let assertion = client.do_authentication(url, rcr).map_err(ctap_error)?;
        convert(&assertion)
    })
}

/// Between the two libraries' JSON forms of the same WebAuthn structure.
fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B, LoginError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| LoginError::Internal(format!("WebAuthn structure conversion: {e}")))
}
