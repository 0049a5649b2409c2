//! BER-TLV as PIV uses it: one- to three-byte tags, definite lengths up to
//! three bytes (`82 xx xx` covers every PIV object; `83` is accepted).
//!
//! Decoding borrows from the input and reports malformed input as an error,
//! never a panic: the applet maps it to `6A80`.

use crate::error::TlvError;

/// One decoded tag-length-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag, big-endian (e.g. `0x7F49`, `0x5FC105` would be three bytes).
    pub tag: u32,
    /// Value bytes.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Decodes one TLV and returns it with the rest of the input.
    pub fn decode(input: &'a [u8]) -> Result<(Self, &'a [u8]), TlvError> {
        let (&first, mut rest) = input.split_first().ok_or(TlvError::Truncated)?;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // Multi-byte tag: subsequent bytes while bit 8 is set, at most 3 in all.
            let mut n = 1;
            loop {
                let (&b, r) = rest.split_first().ok_or(TlvError::Truncated)?;
                rest = r;
                tag = (tag << 8) | u32::from(b);
                n += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if n >= 3 {
                    return Err(TlvError::TagTooLong);
                }
            }
        }
        let (&l0, r) = rest.split_first().ok_or(TlvError::Truncated)?;
        rest = r;
        let len = match l0 {
            0..=0x7F => usize::from(l0),
            0x81..=0x83 => {
                let n = usize::from(l0 & 0x7F);
                if rest.len() < n {
                    return Err(TlvError::Truncated);
                }
                let (bytes, r) = rest.split_at(n);
                rest = r;
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
            }
            _ => return Err(TlvError::BadLength),
        };
        if rest.len() < len {
            return Err(TlvError::Truncated);
        }
        let (value, rest) = rest.split_at(len);
        Ok((Self { tag, value }, rest))
    }

    /// Decodes a sequence of TLVs that must fill `input` exactly.
    pub fn decode_all(mut input: &'a [u8]) -> Result<Vec<Self>, TlvError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (tlv, rest) = Self::decode(input)?;
            out.push(tlv);
            input = rest;
        }
        Ok(out)
    }

    /// Decodes exactly one TLV that must fill `input`.
    pub fn decode_single(input: &'a [u8]) -> Result<Self, TlvError> {
        let (tlv, rest) = Self::decode(input)?;
        if rest.is_empty() {
            Ok(tlv)
        } else {
            Err(TlvError::TrailingBytes)
        }
    }
}

/// Finds the first TLV with `tag` in a decoded list.
pub fn find<'a>(tlvs: &[Tlv<'a>], tag: u32) -> Option<&'a [u8]> {
    tlvs.iter().find(|t| t.tag == tag).map(|t| t.value)
}

/// Appends the encoding of `tag` (1–3 bytes, big-endian, leading zeros dropped).
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a definite length in its shortest form.
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x83);
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        }
    }
}

/// Encodes one TLV.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push_tag(&mut out, tag);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in [0usize, 1, 127, 128, 255, 256, 3000, 70000] {
            let value = vec![0xA5; len];
            for tag in [0x53u32, 0x7F49, 0x5FC105] {
                let enc = encode(tag, &value);
                let t = Tlv::decode_single(&enc).unwrap();
                assert_eq!(t.tag, tag);
                assert_eq!(t.value.len(), len);
            }
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Tlv::decode(&[]), Err(TlvError::Truncated));
        assert_eq!(Tlv::decode(&[0x53]), Err(TlvError::Truncated));
        assert_eq!(Tlv::decode(&[0x53, 0x05, 1]), Err(TlvError::Truncated));
        assert_eq!(
            Tlv::decode(&[0x53, 0x84, 0, 0, 0, 1]),
            Err(TlvError::BadLength)
        );
        assert_eq!(Tlv::decode(&[0x53, 0x80]), Err(TlvError::BadLength));
        assert_eq!(
            Tlv::decode(&[0x5F, 0xFF, 0xFF, 0xFF]),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(
            Tlv::decode_single(&[0x53, 0, 0]),
            Err(TlvError::TrailingBytes)
        );
    }

    #[test]
    fn sequence() {
        let mut data = encode(0x80, &[0x11]);
        data.extend(encode(0xAA, &[2]));
        let tlvs = Tlv::decode_all(&data).unwrap();
        assert_eq!(find(&tlvs, 0xAA), Some(&[2u8][..]));
        assert_eq!(find(&tlvs, 0xAB), None);
    }
}
