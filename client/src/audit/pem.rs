//! Finding and decoding the first PEM block in a file that may hold other
//! text (comments, `openssl x509 -text` output, a chain).

use super::error::{AuditError, Result};

/// Decodes the first PEM block in `text`: its label and DER bytes.
pub(crate) fn first_block(text: &str) -> Result<(String, Vec<u8>)> {
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| AuditError::bad_input("no PEM block found"))?;
    let rest = &text[start..];
    let end_marker = rest
        .find("-----END ")
        .ok_or_else(|| AuditError::bad_input("PEM block has no END line"))?;
    let after_end = &rest[end_marker + "-----END ".len()..];
    let close = after_end
        .find("-----")
        .ok_or_else(|| AuditError::bad_input("PEM END line is not closed"))?;
    let block_len = end_marker + "-----END ".len() + close + "-----".len();
    let block = rest[..block_len].replace("\r\n", "\n");
    let (label, der) = der::pem::decode_vec(block.as_bytes())
        .map_err(|e| AuditError::bad_input(format!("malformed PEM: {e}")))?;
    Ok((label.to_owned(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_block_among_text() {
        let text = "comment\n-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\ntrailer\n";
        let (label, der) = first_block(text).unwrap();
        assert_eq!(label, "PUBLIC KEY");
        assert_eq!(der.len(), 44);
        assert!(first_block("nothing").is_err());
        assert!(first_block("-----BEGIN X-----\n!!\n-----END X-----\n").is_err());
    }
}
