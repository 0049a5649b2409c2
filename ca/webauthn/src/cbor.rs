//! Small, bounded CBOR helpers over ciborium's `Value`.

use std::collections::BTreeMap;

use ciborium::Value;

/// How deeply CBOR may nest: WebAuthn structures are shallow (the
/// attestation object is three levels deep); a tight limit keeps hostile
/// input from exhausting the stack.
const RECURSION_LIMIT: usize = 16;

/// Decodes one CBOR item from the front of `*input` and advances `*input`
/// past it.
pub(crate) fn take_one(input: &mut &[u8]) -> Option<Value> {
    ciborium::de::from_reader_with_recursion_limit(&mut *input, RECURSION_LIMIT).ok()
}

/// Decodes `bytes` as exactly one CBOR item (no trailing bytes).
pub(crate) fn from_slice_exact(bytes: &[u8]) -> Option<Value> {
    let mut rest = bytes;
    let value = take_one(&mut rest)?;
    rest.is_empty().then_some(value)
}

/// A map with integer keys, refusing duplicate or non-integer keys.
pub(crate) fn int_map(value: &Value) -> Option<BTreeMap<i64, &Value>> {
    let entries = value.as_map()?;
    let mut map = BTreeMap::new();
    for (k, v) in entries {
        if map.insert(as_i64(k)?, v).is_some() {
            return None;
        }
    }
    Some(map)
}

/// A map with text keys, refusing duplicate or non-text keys.
pub(crate) fn text_map(value: &Value) -> Option<BTreeMap<&str, &Value>> {
    let entries = value.as_map()?;
    let mut map = BTreeMap::new();
    for (k, v) in entries {
        if map.insert(k.as_text()?, v).is_some() {
            return None;
        }
    }
    Some(map)
}

/// An integer that fits an i64.
pub(crate) fn as_i64(value: &Value) -> Option<i64> {
    value.as_integer().and_then(|i| i64::try_from(i).ok())
}
