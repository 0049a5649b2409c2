//! The TLS client key on the YubiKey: a rustls [`SigningKey`] whose
//! signature is a PIV GENERAL AUTHENTICATE with the key in slot 9a.
//!
//! Why the card directly (PC/SC, through [`Card`]) and not through
//! `signet agent`: the agent holds no card session either — it opens the
//! card for each signature, exactly as this does — so going through it
//! would add a socket hop and a new agent message (signing arbitrary TLS
//! transcripts) for nothing. Directly, the key operation stays where every
//! other key operation of the client is, the PIN comes from the same
//! sources (SIGNET_PIN_FILE or the terminal, never argv), and there is no
//! software key to fall back to: if the card does not sign, the handshake
//! fails.
//!
//! rustls calls [`Signer::sign`] from inside the handshake, which here runs
//! on a plain blocking socket (no async runtime), so a touch that takes
//! seconds blocks nothing else.

use std::sync::{Arc, Mutex};

use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::card::{Card, CardError, KeyAlgorithm, KeyTouchPolicy, Pin, SlotKey};

/// What the card said when it did not sign: rustls carries only a string,
/// so the typed error is kept here for the caller to report.
#[derive(Debug, Clone, Default)]
pub struct SignFailure(Arc<Mutex<Option<CardError>>>);

impl SignFailure {
    fn set(&self, e: CardError) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// The card's error, if a signature failed.
    pub fn take(&self) -> Option<CardError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Slot 9a of one YubiKey as a rustls signing key.
#[derive(Debug)]
pub struct CardSigningKey {
    card: Card,
    algorithm: KeyAlgorithm,
    touch: KeyTouchPolicy,
    spki_der: Vec<u8>,
    pin: Option<Arc<Pin>>,
    failure: SignFailure,
    notice: fn(&str),
}

impl CardSigningKey {
    /// The key `slot` describes on `card`; `pin` when its policy needs one;
    /// `notice` shows "Touch your YubiKey…" (on stderr: stdout is the
    /// tunnel) before a signature the card waits for a touch for.
    pub fn new(
        card: Card,
        slot: &SlotKey,
        pin: Option<Pin>,
        failure: SignFailure,
        notice: fn(&str),
    ) -> Self {
        Self {
            card,
            algorithm: slot.algorithm,
            touch: slot.touch_policy,
            spki_der: slot.spki_der.clone(),
            pin: pin.map(Arc::new),
            failure,
            notice,
        }
    }

    fn scheme(&self) -> SignatureScheme {
        match self.algorithm {
            KeyAlgorithm::P256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            KeyAlgorithm::P384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        }
    }

    /// The certificate and this key, for rustls.
    pub fn certified(self, certificate_der: Vec<u8>) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(certificate_der)],
            Arc::new(self),
        ))
    }
}

impl SigningKey for CardSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.scheme();
        offered.contains(&scheme).then(|| {
            Box::new(CardSigner {
                card: self.card.clone(),
                scheme,
                touch: self.touch,
                pin: self.pin.clone(),
                failure: self.failure.clone(),
                notice: self.notice,
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki_der.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct CardSigner {
    card: Card,
    scheme: SignatureScheme,
    touch: KeyTouchPolicy,
    pin: Option<Arc<Pin>>,
    failure: SignFailure,
    notice: fn(&str),
}

impl Signer for CardSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        if self.touch != KeyTouchPolicy::Never {
            (self.notice)(&format!(
                "Touch your YubiKey (serial {}) to open the tunnel…",
                self.card.serial()
            ));
        }
        // The card hashes as the key demands (SHA-256 for P-256, SHA-384
        // for P-384: the scheme chosen above) and answers a DER ECDSA
        // signature, which is TLS's encoding.
        self.card
            .sign_slot_9a(self.pin.as_deref(), message)
            .map_err(|e| {
                self.failure.set(e);
                rustls::Error::General("the YubiKey did not sign".into())
            })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Always the one certificate (the proxy takes no other).
#[derive(Debug)]
pub struct OneCertificate(pub Arc<CertifiedKey>);

impl ResolvesClientCert for OneCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // A server that takes none of the card's schemes gets no
        // certificate (rustls asks choose_scheme) and refuses with its reason.
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
