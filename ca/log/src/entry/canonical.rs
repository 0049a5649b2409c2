//! Canonical JSON: one byte string per value.
//!
//! The rules (a subset of RFC 8785 JCS that needs no number formatting):
//! object keys sorted by their bytes (all Signet keys are ASCII, where this is
//! the JCS order), no whitespace, integers only (no fractions or exponents),
//! strings as UTF-8 with only `"` `\` and control characters escaped — the
//! short forms `\b \t \n \f \r` where they exist, otherwise `\u00xx` in
//! lowercase hex.

use serde_json::Value;

use crate::error::EntryError;

/// Writes `value` canonically. Fails on floats, which entries never hold.
pub(crate) fn to_canonical(value: &Value) -> Result<Vec<u8>, EntryError> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), EntryError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(EntryError::Invalid(
                    "floating point numbers are not allowed".into(),
                ));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                if let Some(v) = map.get(k) {
                    write(v, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    // Copy runs that need no escaping in one go (base64 certificates are
    // most of an entry); only `"`, `\` and control characters are escaped.
    // Every byte of a multi-byte UTF-8 character is >= 0x80, so scanning
    // bytes never splits a character.
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            b if b < 0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_escapes() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, -2, "x\u0001\n\"é"], "a": {"z": null, "y": true} }"#,
        )
        .unwrap();
        let got = String::from_utf8(to_canonical(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            r#"{"a":{"y":true,"z":null},"b":[1,-2,"x\u0001\n\"é"]}"#
        );
        let f: Value = serde_json::from_str("1.5").unwrap();
        assert!(to_canonical(&f).is_err());
    }
}
