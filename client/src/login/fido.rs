//! The security key over CTAP2 (webauthn-authenticator-rs): registration
//! for `signet enroll`, the assertion for `signet login`.
//!
//! Two transports, one CTAP2 code path ([`perform`]) once a token is
//! chosen: USB HID (the library's `usb` transport, this crate's `usb`
//! feature, on by default) for a YubiKey plugged into USB, which offers
//! FIDO2 over HID only; and PC/SC (the library's `nfc` transport) for NFC
//! readers and cards whose FIDO2 applet answers over CCID, like the virtual
//! YubiKey. `auto` takes USB HID when a FIDO HID key answers, else PC/SC
//! ([`choose`]). Over PC/SC the FIDO2 applet in the same reader as the PIV
//! card is asked, so with several keys present the touch is asked of the
//! right one; HID names no reader, so over USB only one key may be plugged
//! in.

use std::sync::Mutex;

use signet_api::webauthn::{
    AssertionResponse, CreationOptions, RegistrationResponse, RequestOptions,
};
use webauthn_authenticator_rs::ctap2::CtapAuthenticator;
use webauthn_authenticator_rs::nfc::{NFCCard, NFCTransport};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::transport::{Token, Transport as _};
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
            eprintln!(
                "{}",
                crate::ui::Painter::stderr().attention("Touch your security key…")
            );
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

/// Which transport carries CTAP2 to the security key: `--transport`, or
/// `transport` in the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportSetting {
    /// USB HID when a FIDO HID security key is present, else PC/SC.
    #[default]
    Auto,
    /// USB HID only (a YubiKey plugged into USB).
    Usb,
    /// PC/SC only: NFC readers, and keys whose FIDO2 applet answers over
    /// CCID (the virtual YubiKey).
    Pcsc,
}

impl TransportSetting {
    /// The setting's name, as on the command line and in the profile.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Usb => "usb",
            Self::Pcsc => "pcsc",
        }
    }
}

/// The transport chosen for one ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chosen {
    /// CTAP2 over USB HID.
    Usb,
    /// CTAP2 over PC/SC (ISO 7816 APDUs).
    Pcsc,
}

/// Whether this build speaks USB HID (the `usb` feature).
pub(crate) const USB_BUILT: bool = cfg!(feature = "usb");

/// Chooses the transport: `usb_tokens` is how many FIDO HID security keys
/// answered (0 when USB HID is not built in). Pure, so every case is tested.
pub(crate) fn choose(
    setting: TransportSetting,
    usb_built: bool,
    usb_tokens: usize,
) -> Result<Chosen, LoginError> {
    match setting {
        TransportSetting::Pcsc => Ok(Chosen::Pcsc),
        TransportSetting::Usb if !usb_built => Err(LoginError::Usage(
            "--transport usb: this signet was built without USB HID support (the `usb` feature); use --transport pcsc, or rebuild with it".into(),
        )),
        TransportSetting::Usb => Ok(Chosen::Usb),
        TransportSetting::Auto if usb_tokens > 0 => Ok(Chosen::Usb),
        TransportSetting::Auto => Ok(Chosen::Pcsc),
    }
}

/// One WebAuthn ceremony, before the transport is known.
enum Ceremony {
    Register(Url, CreationChallengeResponse),
    Assert(Url, RequestChallengeResponse),
}

/// What a ceremony gave, in the CA's wire form.
enum Outcome {
    Registered(RegistrationResponse),
    Asserted(AssertionResponse),
}

/// The CTAP2 exchange itself, the same whatever the transport.
fn perform<T: Token>(
    rt: &tokio::runtime::Runtime,
    token: T,
    prompter: &Prompter,
    ceremony: Ceremony,
) -> Result<Outcome, LoginError> {
    let mut client = rt
        .block_on(CtapAuthenticator::new(token, prompter))
        .ok_or_else(|| LoginError::SecurityKey("the security key does not speak CTAP2".into()))?;
    match ceremony {
        Ceremony::Register(url, ccr) => {
            let reg = client.do_registration(url, ccr).map_err(ctap_error)?;
            convert(&reg).map(Outcome::Registered)
        }
        Ceremony::Assert(url, rcr) => {
            let assertion = client.do_authentication(url, rcr).map_err(ctap_error)?;
            convert(&assertion).map(Outcome::Asserted)
        }
    }
}

/// The FIDO HID security keys on USB, or none when USB HID cannot be used
/// here (not built in, no udev, no permission): PC/SC is then the way.
#[cfg(feature = "usb")]
fn usb_tokens(rt: &tokio::runtime::Runtime) -> Vec<webauthn_authenticator_rs::usb::USBToken> {
    use webauthn_authenticator_rs::usb::USBTransport;
    let Ok(transport) = rt.block_on(USBTransport::new()) else {
        return Vec::new();
    };
    rt.block_on(transport.tokens()).unwrap_or_default()
}

/// Runs `ceremony` with the security key, over the transport `setting`
/// chooses. Over PC/SC: the key in `reader` (the PIV card's reader, so the
/// touch is asked of the same YubiKey) when given and present, else the
/// only one present. Over USB HID: the only FIDO HID key plugged in (HID
/// does not name the PIV card beside it, so with several, leave one).
fn run(
    prompter: &Prompter,
    reader: Option<&str>,
    setting: TransportSetting,
    ceremony: Ceremony,
) -> Result<Outcome, LoginError> {
    let rt = runtime()?;
    #[cfg(feature = "usb")]
    let mut usb = match setting {
        TransportSetting::Pcsc => Vec::new(),
        TransportSetting::Auto | TransportSetting::Usb => usb_tokens(&rt),
    };
    #[cfg(not(feature = "usb"))]
    let usb: Vec<()> = Vec::new();
    match choose(setting, USB_BUILT, usb.len())? {
        #[cfg(feature = "usb")]
        Chosen::Usb => {
            let token = match usb.len() {
                0 => return Err(LoginError::NoSecurityKey),
                1 => usb.pop().ok_or(LoginError::NoSecurityKey)?,
                n => {
                    return Err(LoginError::SecurityKey(format!(
                        "{n} security keys are plugged into USB; leave only the one to use plugged in (or choose --transport pcsc)"
                    )))
                }
            };
            perform(&rt, token, prompter, ceremony)
        }
        #[cfg(not(feature = "usb"))]
        Chosen::Usb => Err(LoginError::Internal(
            "USB HID chosen in a build without it".into(),
        )),
        Chosen::Pcsc => {
            let token = pcsc_token(&rt, reader)?;
            perform(&rt, token, prompter, ceremony)
        }
    }
}

/// The security key over PC/SC: the one in `reader` when given and
/// present, else the only one present.
fn pcsc_token(rt: &tokio::runtime::Runtime, reader: Option<&str>) -> Result<NFCCard, LoginError> {
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
    match (same_reader, tokens.len()) {
        (Some(i), _) => Ok(tokens.swap_remove(i)),
        (None, 0) => Err(LoginError::NoSecurityKey),
        (None, 1) => tokens.pop().ok_or(LoginError::NoSecurityKey),
        (None, n) => Err(LoginError::SecurityKey(format!(
            "{n} security keys are present; name the YubiKey with --serial (or leave only the one to use plugged in)"
        ))),
    }
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
    transport: TransportSetting,
) -> Result<RegistrationResponse, LoginError> {
    let ccr: CreationChallengeResponse = convert(options)?;
    let url = origin_url(origin)?;
    match run(prompter, reader, transport, Ceremony::Register(url, ccr))? {
        Outcome::Registered(reg) => Ok(reg),
        Outcome::Asserted(_) => Err(LoginError::Internal(
            "an assertion for a registration".into(),
        )),
    }
}

/// Asserts over `options` (from `/v1/certs/begin`): the touch, on the
/// security key in `reader` when it has one.
pub(crate) fn assert(
    origin: &str,
    options: &RequestOptions,
    prompter: &Prompter,
    reader: Option<&str>,
    transport: TransportSetting,
) -> Result<AssertionResponse, LoginError> {
    let rcr: RequestChallengeResponse = convert(options)?;
    let url = origin_url(origin)?;
    match run(prompter, reader, transport, Ceremony::Assert(url, rcr))? {
        Outcome::Asserted(assertion) => Ok(assertion),
        Outcome::Registered(_) => Err(LoginError::Internal(
            "a registration for an assertion".into(),
        )),
    }
}

/// Between the two libraries' JSON forms of the same WebAuthn structure.
fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B, LoginError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| LoginError::Internal(format!("WebAuthn structure conversion: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_usb_hid_when_a_key_answers_there() {
        assert_eq!(
            choose(TransportSetting::Auto, true, 1).ok(),
            Some(Chosen::Usb)
        );
        assert_eq!(
            choose(TransportSetting::Auto, true, 2).ok(),
            Some(Chosen::Usb)
        );
        assert_eq!(
            choose(TransportSetting::Auto, true, 0).ok(),
            Some(Chosen::Pcsc)
        );
        // A build without USB HID never finds a token there.
        assert_eq!(
            choose(TransportSetting::Auto, false, 0).ok(),
            Some(Chosen::Pcsc)
        );
    }

    #[test]
    fn an_explicit_setting_wins() {
        assert_eq!(
            choose(TransportSetting::Pcsc, true, 1).ok(),
            Some(Chosen::Pcsc)
        );
        assert_eq!(
            choose(TransportSetting::Usb, true, 0).ok(),
            Some(Chosen::Usb)
        );
        let err = choose(TransportSetting::Usb, false, 0).unwrap_err();
        assert!(err.to_string().contains("built without USB HID"), "{err}");
        assert_eq!(err.class(), super::super::LoginClass::Usage);
    }

    #[test]
    fn settings_read_and_write_their_names() {
        for setting in [
            TransportSetting::Auto,
            TransportSetting::Usb,
            TransportSetting::Pcsc,
        ] {
            let json = serde_json::to_string(&setting).unwrap();
            assert_eq!(json, format!("\"{}\"", setting.as_str()));
            assert_eq!(
                serde_json::from_str::<TransportSetting>(&json).unwrap(),
                setting
            );
        }
        assert!(serde_json::from_str::<TransportSetting>("\"hid\"").is_err());
    }
}
