//! Choosing a token: by label, or by a PKCS#11 URI (RFC 7512).
//!
//! Only the token-identifying path attributes are meaningful here (`token`,
//! `manufacturer`, `serial`, `model`, `slot-id`, and the `library-*` ones,
//! which are checked against the loaded module). Object attributes
//! (`object`, `id`, `type`) and PIN query attributes are refused: keys are
//! chosen by role, and the PIN never lives in a URI.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::{Error, Result};

/// Which token the CA uses.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token whose label is exactly this (trailing blanks ignored, as PKCS#11 pads labels).
    Label(String),
    /// The tokens matching every attribute of a PKCS#11 URI.
    Uri(Pkcs11Uri),
}

impl fmt::Debug for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(label) => write!(f, "token label {label:?}"),
            Self::Uri(uri) => write!(f, "{}", uri.text),
        }
    }
}

/// The facts about a token and its module that a selector can match.
#[derive(Debug, Clone, Default)]
pub struct TokenFacts {
    /// `CK_TOKEN_INFO.label`, trimmed.
    pub label: String,
    /// `CK_TOKEN_INFO.manufacturerID`, trimmed.
    pub manufacturer: String,
    /// `CK_TOKEN_INFO.serialNumber`, trimmed.
    pub serial: String,
    /// `CK_TOKEN_INFO.model`, trimmed.
    pub model: String,
    /// The slot id.
    pub slot_id: u64,
    /// `CK_INFO.manufacturerID` of the module, trimmed.
    pub library_manufacturer: String,
    /// `CK_INFO.libraryDescription` of the module, trimmed.
    pub library_description: String,
}

/// A parsed PKCS#11 URI restricted to token selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pkcs11Uri {
    text: String,
    token: Option<String>,
    manufacturer: Option<String>,
    serial: Option<String>,
    model: Option<String>,
    slot_id: Option<u64>,
    library_manufacturer: Option<String>,
    library_description: Option<String>,
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=…;serial=…` (RFC 7512 §2.3). Unknown or
    /// object-level attributes are refused, naming the attribute.
    pub fn parse(text: &str) -> Result<Self> {
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| Error::InvalidUri("must start with \"pkcs11:\"".into()))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            let name = query.split(['=', '&']).next().unwrap_or(query);
            return Err(Error::InvalidUri(format!(
                "query attribute {name:?} is not accepted (the PIN comes from pin_file or pin_env, the module from hsm.module)"
            )));
        }
        let mut uri = Self {
            text: text.to_owned(),
            ..Self::default()
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = attr
                .split_once('=')
                .ok_or_else(|| Error::InvalidUri(format!("attribute {attr:?} has no '='")))?;
            let value = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| Error::InvalidUri(format!("attribute {name:?} is not UTF-8")))?
                .into_owned();
            let slot = match name {
                "token" => &mut uri.token,
                "manufacturer" => &mut uri.manufacturer,
                "serial" => &mut uri.serial,
                "model" => &mut uri.model,
                "library-manufacturer" => &mut uri.library_manufacturer,
                "library-description" => &mut uri.library_description,
                "slot-id" => {
                    let id = value.parse::<u64>().map_err(|_| {
                        Error::InvalidUri(format!("slot-id {value:?} is not a number"))
                    })?;
                    if uri.slot_id.replace(id).is_some() {
                        return Err(Error::InvalidUri("slot-id given twice".into()));
                    }
                    continue;
                }
                other => {
                    return Err(Error::InvalidUri(format!(
                        "attribute {other:?} is not accepted for choosing a token"
                    )))
                }
            };
            if slot.replace(value).is_some() {
                return Err(Error::InvalidUri(format!("attribute {name:?} given twice")));
            }
        }
        Ok(uri)
    }

    fn matches(&self, facts: &TokenFacts) -> bool {
        fn eq(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|w| w == have)
        }
        eq(&self.token, &facts.label)
            && eq(&self.manufacturer, &facts.manufacturer)
            && eq(&self.serial, &facts.serial)
            && eq(&self.model, &facts.model)
            && self.slot_id.is_none_or(|id| id == facts.slot_id)
            && eq(&self.library_manufacturer, &facts.library_manufacturer)
            && eq(&self.library_description, &facts.library_description)
    }
}

impl TokenSelector {
    /// True when this token is the one wanted.
    pub fn matches(&self, facts: &TokenFacts) -> bool {
        match self {
            Self::Label(label) => facts.label == label.trim_end(),
            Self::Uri(uri) => uri.matches(facts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TokenFacts {
        TokenFacts {
            label: "Signet CA".into(),
            manufacturer: "SoftHSM project".into(),
            serial: "abc123".into(),
            model: "SoftHSM v2".into(),
            slot_id: 7,
            ..TokenFacts::default()
        }
    }

    #[test]
    fn uri_with_percent_encoding_matches() {
        let uri = Pkcs11Uri::parse("pkcs11:token=Signet%20CA;serial=abc123").unwrap();
        assert!(TokenSelector::Uri(uri).matches(&facts()));
    }

    #[test]
    fn uri_mismatch_does_not_match() {
        let uri = Pkcs11Uri::parse("pkcs11:token=Signet%20CA;serial=zzz").unwrap();
        assert!(!TokenSelector::Uri(uri).matches(&facts()));
    }

    #[test]
    fn pin_in_uri_is_refused() {
        let err = Pkcs11Uri::parse("pkcs11:token=x?pin-value=1234")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pin-value") && !err.contains("1234"), "{err}");
    }

    #[test]
    fn object_attributes_are_refused() {
        assert!(Pkcs11Uri::parse("pkcs11:token=x;object=key").is_err());
    }

    #[test]
    fn bad_uris_are_refused() {
        for bad in [
            "token=x",
            "pkcs11:token",
            "pkcs11:slot-id=abc",
            "pkcs11:token=a;token=b",
            "pkcs11:token=%ff",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_ignores_padding() {
        assert!(TokenSelector::Label("Signet CA   ".into()).matches(&facts()));
        assert!(!TokenSelector::Label("Signet".into()).matches(&facts()));
    }
}
