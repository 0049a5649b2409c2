//! CBOR as CTAP2 uses it, on top of `ciborium`.
//!
//! Decoding is strict where a real authenticator is: one well-formed item
//! filling the whole message, nesting no deeper than [`MAX_DEPTH`], no
//! duplicate map keys; a failure is the CTAP status a client expects
//! (`INVALID_CBOR`, `CBOR_UNEXPECTED_TYPE`, `MISSING_PARAMETER`).
//!
//! Encoding follows the CTAP2 canonical form (CTAP 2.1 §8): definite
//! lengths, smallest integer encodings (ciborium does both), and map keys
//! sorted by major type, then encoded length, then bytes. Verifiers hash and
//! compare these bytes (authenticator data, COSE keys), so the order matters.

use super::status::Status;
pub use ciborium::Value;

/// Deepest nesting accepted in a command (CTAP messages need four levels).
pub const MAX_DEPTH: usize = 8;

/// Decodes one CBOR item that must fill `bytes` exactly.
pub fn decode(bytes: &[u8]) -> Result<Value, Status> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|_| Status::InvalidCbor)?;
    if !rest.is_empty() {
        return Err(Status::InvalidCbor);
    }
    check_no_duplicate_keys(&value)?;
    Ok(value)
}

fn check_no_duplicate_keys(value: &Value) -> Result<(), Status> {
    match value {
        Value::Map(entries) => {
            let mut keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| encode(k)).collect();
            keys.sort();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(Status::InvalidCbor);
            }
            entries
                .iter()
                .try_for_each(|(k, v)| check_no_duplicate_keys(k).and(check_no_duplicate_keys(v)))
        }
        Value::Array(items) => items.iter().try_for_each(check_no_duplicate_keys),
        Value::Tag(_, inner) => check_no_duplicate_keys(inner),
        _ => Ok(()),
    }
}

/// Encodes `value` in CTAP2 canonical form.
pub fn encode(value: &Value) -> Vec<u8> {
    let canonical = canonicalize(value.clone());
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every Value is encodable.
    if ciborium::ser::into_writer(&canonical, &mut out).is_err() {
        out.clear();
    }
    out
}

/// The canonical sort key of a map key: major type, encoded length, bytes.
fn sort_key(key: &Value) -> (u8, usize, Vec<u8>) {
    let mut bytes = Vec::new();
    let _ = ciborium::ser::into_writer(key, &mut bytes);
    (bytes.first().map_or(0, |b| b >> 5), bytes.len(), bytes)
}

fn canonicalize(value: Value) -> Value {
    match value {
        Value::Map(entries) => {
            let mut entries: Vec<(Value, Value)> = entries
                .into_iter()
                .map(|(k, v)| (canonicalize(k), canonicalize(v)))
                .collect();
            entries.sort_by_cached_key(|(k, _)| sort_key(k));
            Value::Map(entries)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect()),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(canonicalize(*inner))),
        other => other,
    }
}

/// An integer key (CTAP parameters) or a text key (options, COSE names).
pub fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

/// A text value.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// A byte-string value.
pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

/// A map with integer keys.
pub fn int_map(entries: Vec<(i64, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (int(k), v)).collect())
}

/// A map with text keys.
pub fn text_map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

/// The integer in `value`, if it is one that fits an `i64`.
pub fn as_int(value: &Value) -> Result<i64, Status> {
    match value {
        Value::Integer(i) => i64::try_from(i128::from(*i)).map_err(|_| Status::InvalidParameter),
        _ => Err(Status::CborUnexpectedType),
    }
}

/// Typed read access to a CBOR map.
#[derive(Debug, Clone, Copy)]
pub struct Map<'a> {
    entries: &'a [(Value, Value)],
}

impl<'a> Map<'a> {
    /// `value` as a map, or `CBOR_UNEXPECTED_TYPE`.
    pub fn of(value: &'a Value) -> Result<Self, Status> {
        match value {
            Value::Map(entries) => Ok(Self { entries }),
            _ => Err(Status::CborUnexpectedType),
        }
    }

    /// All entries, in message order.
    pub fn entries(&self) -> &'a [(Value, Value)] {
        self.entries
    }

    /// The value under integer key `key`.
    pub fn get(&self, key: i64) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Integer(i) if i128::from(*i) == i128::from(key)))
            .map(|(_, v)| v)
    }

    /// The value under text key `key`.
    pub fn get_text(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v)
    }

    /// An optional byte string.
    pub fn bytes(&self, key: i64) -> Result<Option<&'a [u8]>, Status> {
        self.get(key).map(as_bytes).transpose()
    }

    /// A required byte string.
    pub fn req_bytes(&self, key: i64) -> Result<&'a [u8], Status> {
        self.bytes(key)?.ok_or(Status::MissingParameter)
    }

    /// An optional text string.
    pub fn text(&self, key: i64) -> Result<Option<&'a str>, Status> {
        self.get(key).map(as_text).transpose()
    }

    /// An optional text string under a text key.
    pub fn text_at(&self, key: &str) -> Result<Option<&'a str>, Status> {
        self.get_text(key).map(as_text).transpose()
    }

    /// An optional integer.
    pub fn int(&self, key: i64) -> Result<Option<i64>, Status> {
        self.get(key).map(as_int).transpose()
    }

    /// An optional map.
    pub fn map(&self, key: i64) -> Result<Option<Map<'a>>, Status> {
        self.get(key).map(Map::of).transpose()
    }

    /// An optional array.
    pub fn array(&self, key: i64) -> Result<Option<&'a [Value]>, Status> {
        self.get(key)
            .map(|v| match v {
                Value::Array(items) => Ok(items.as_slice()),
                _ => Err(Status::CborUnexpectedType),
            })
            .transpose()
    }
}

/// `value` as a byte string.
pub fn as_bytes(value: &Value) -> Result<&[u8], Status> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(Status::CborUnexpectedType),
    }
}

/// `value` as a text string.
pub fn as_text(value: &Value) -> Result<&str, Status> {
    match value {
        Value::Text(t) => Ok(t),
        _ => Err(Status::CborUnexpectedType),
    }
}

/// `value` as a boolean.
pub fn as_bool(value: &Value) -> Result<bool, Status> {
    match value {
        Value::Bool(b) => Ok(*b),
        _ => Err(Status::CborUnexpectedType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_of_a_cose_key() {
        // Built in a scrambled order; CTAP2 canonical is 1, 3, -1, -2, -3.
        let key = int_map(vec![
            (-3, bytes(&[3])),
            (3, int(-7)),
            (-1, int(1)),
            (1, int(2)),
            (-2, bytes(&[2])),
        ]);
        assert_eq!(
            encode(&key),
            [0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x41, 0x02, 0x22, 0x41, 0x03]
        );
        // Text keys: shorter first, then bytewise ("up" < "uv" < "plat").
        let opts = text_map(vec![
            ("plat", Value::Bool(false)),
            ("uv", Value::Bool(true)),
            ("up", Value::Bool(true)),
        ]);
        let enc = encode(&opts);
        assert_eq!(&enc[1..4], &[0x62, b'u', b'p']);
        assert_eq!(&enc[5..8], &[0x62, b'u', b'v']);
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(decode(&[]), Err(Status::InvalidCbor));
        assert_eq!(decode(&[0xA1, 0x01]), Err(Status::InvalidCbor));
        // Trailing bytes after a complete item.
        assert_eq!(decode(&[0x01, 0x02]), Err(Status::InvalidCbor));
        // Duplicate keys.
        assert_eq!(
            decode(&[0xA2, 0x01, 0x01, 0x01, 0x02]),
            Err(Status::InvalidCbor)
        );
        // A declared length far beyond the input.
        assert_eq!(
            decode(&[0x5A, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(Status::InvalidCbor)
        );
        // Too deep.
        assert_eq!(decode(&[0x81; 64]), Err(Status::InvalidCbor));
        assert!(decode(&[0xA1, 0x01, 0x81, 0x02]).is_ok());
    }

    #[test]
    fn typed_access() {
        let v = decode(&[0xA2, 0x01, 0x41, 0xAA, 0x02, 0x61, b'x']).unwrap();
        let m = Map::of(&v).unwrap();
        assert_eq!(m.req_bytes(1), Ok(&[0xAA][..]));
        assert_eq!(m.bytes(2), Err(Status::CborUnexpectedType));
        assert_eq!(m.req_bytes(3), Err(Status::MissingParameter));
        assert_eq!(m.text(2), Ok(Some("x")));
    }
}
