//! What the CA keeps about a registered security key, and what an
//! assertion proves.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A credential id: the opaque handle a security key gives a credential
/// (at most 1023 bytes). Serialised as base64url.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialId(pub Vec<u8>);

impl CredentialId {
    /// The id in WebAuthn's JSON encoding (base64url, no padding): how
    /// browsers show it and how the CA names it in logs and listings.
    pub fn to_base64url(&self) -> String {
        crate::b64::encode(&self.0)
    }

    /// Parses the base64url form (padded or not).
    pub fn from_base64url(text: &str) -> Option<Self> {
        crate::b64::decode(text).map(Self)
    }
}

impl std::fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialId({})", self.to_base64url())
    }
}

impl std::fmt::Display for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl Serialize for CredentialId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::b64::serde_bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for CredentialId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::b64::serde_bytes::deserialize(d).map(Self)
    }
}

/// What the CA stores per registered key (serde, so the CA can record it
/// in its log): enough to verify the key's assertions and to say where it
/// came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredCredential {
    /// The credential id.
    pub id: CredentialId,
    /// The credential public key as the authenticator encoded it (COSE_Key,
    /// CBOR), base64url in JSON.
    #[serde(with = "crate::b64::serde_bytes")]
    pub public_key_cose: Vec<u8>,
    /// Its COSE algorithm (-7 ES256, -8 EdDSA).
    pub algorithm: i64,
    /// The signature counter after the last accepted ceremony.
    pub sign_count: u32,
    /// The authenticator model's AAGUID (all zero for U2F keys and
    /// attestation "none"); a UUID string in JSON.
    #[serde(with = "aaguid_text")]
    pub aaguid: [u8; 16],
    /// The attestation statement format that was accepted (`packed`,
    /// `fido-u2f`, `none`).
    pub attestation_format: String,
    /// Whether the key verified the user (PIN, biometric) at registration.
    pub user_verified_at_registration: bool,
}

/// What a verified assertion tells the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The new signature counter; store it as the credential's
    /// [`StoredCredential::sign_count`].
    pub sign_count: u32,
    /// Whether the key verified the user (PIN, biometric) this time.
    pub user_verified: bool,
}

/// Formats an AAGUID as a UUID (`01020304-0506-0708-0102-030405060708`).
pub fn aaguid_to_string(aaguid: &[u8; 16]) -> String {
    let h = hex::encode(aaguid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

mod aaguid_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(aaguid: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::aaguid_to_string(aaguid))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let bad = || serde::de::Error::custom("an AAGUID is a UUID: 8-4-4-4-12 hex digits");
        let groups: Vec<&str> = text.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let bytes = hex::decode(groups.concat()).map_err(|_| bad())?;
        bytes.try_into().map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_credential_round_trips_as_readable_json() {
        let cred = StoredCredential {
            id: CredentialId(vec![0xfb, 0xff, 0x01]),
            public_key_cose: vec![0xa1, 0x01, 0x02],
            algorithm: -7,
            sign_count: 7,
            aaguid: [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8],
            attestation_format: "packed".into(),
            user_verified_at_registration: true,
        };
        let json = serde_json::to_value(&cred).unwrap();
        assert_eq!(json["id"], "-_8B");
        assert_eq!(json["public_key_cose"], "oQEC");
        assert_eq!(json["aaguid"], "01020304-0506-0708-0102-030405060708");
        let back: StoredCredential = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, cred);

        let mut bad = json;
        bad["aaguid"] = "0102030405060708".into();
        assert!(serde_json::from_value::<StoredCredential>(bad).is_err());
    }
}
