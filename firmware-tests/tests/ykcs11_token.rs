//! signet-hsm's PKCS#11 layer against a token that cannot hold every key
//! type: the virtual YubiKey through Yubico's ykcs11 module. What the token
//! lacks is refused by name, before any key would be generated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Fixture, PIN};
use signet_hsm::{Error, KeyAlgorithm, PinSource, Token, TokenConfig, TokenSelector};

fn ykcs11() -> std::path::PathBuf {
    std::env::var_os("SIGNET_YKCS11_MODULE")
        .map(Into::into)
        .unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu/libykcs11.so".into())
}

#[test]
fn a_piv_token_refuses_by_name_the_key_types_it_cannot_hold() {
    let Some(dev) = Fixture::new(false) else {
        return;
    };
    for (name, value) in dev.envs() {
        std::env::set_var(name, value);
    }
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, PIN).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = Token::open(&TokenConfig {
        module: ykcs11(),
        token: TokenSelector::Label(format!("YubiKey PIV #{}", dev.serial())),
        pin: PinSource::File(pin_file),
        sessions: std::num::NonZeroUsize::MIN,
    })
    .unwrap();
    let caps = token.capabilities();
    let listed = caps.mechanism_names().join(", ");

    // A PIV key does ECDSA P-256.
    assert!(caps.check(KeyAlgorithm::EcdsaP256).is_ok(), "{listed}");
    // No EdDSA on a PIV token of this firmware: named, not skipped.
    let err = caps.check(KeyAlgorithm::Ed25519).unwrap_err();
    assert!(
        matches!(err, Error::MechanismUnsupported { .. }),
        "{err:?} ({listed})"
    );
    assert!(err.to_string().starts_with("the token cannot"), "{err}");
    // RSA beyond 2048 bits: refused with the sizes the token offers.
    let err = caps.check(KeyAlgorithm::Rsa3072).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeySizeUnsupported { .. } | Error::MechanismUnsupported { .. }
        ),
        "{err:?} ({listed})"
    );
    assert!(err.to_string().contains("rsa-3072"), "{err}");
    let supported = caps.supported_algorithms();
    assert!(
        supported.contains(&KeyAlgorithm::EcdsaP256),
        "{supported:?}"
    );
    for lacking in [
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ] {
        assert!(
            !supported.contains(&lacking),
            "{lacking} listed as supported"
        );
    }
}
