//! The client's side of `signet-ssh/1` (the proxy's `src/preamble.rs`
//! owns the protocol; its parser is run over what this writes, and this
//! over every reply it writes, in the tests below):
//!
//! ```text
//! client → proxy   signet-ssh/1 node=web-1 login=root\n
//! proxy → client   signet-ssh/1 ok\n                                  then raw bytes
//!              or  signet-ssh/1 refused <code>: <reason>\n           then close
//! ```
//!
//! The client shows a refusal's reason on a terminal, so a reply is held
//! to the same strictness as the proxy holds the preamble: one line of at
//! most [`MAX_REPLY`] bytes, UTF-8 without control characters, a code of
//! `a-z_`.

use super::target::Target;

/// The ALPN protocol of SSH tunnels.
pub const ALPN_SSH: &[u8] = b"signet-ssh/1";

/// The version word that starts every preamble and reply line.
pub const VERSION: &str = "signet-ssh/1";

/// The longest reply line, newline included (as the proxy writes it).
pub const MAX_REPLY: usize = 1024;

/// The preamble line for `target` (already checked by [`Target::parse`]).
pub fn preamble(target: &Target) -> String {
    format!("{VERSION} node={} login={}\n", target.node, target.login)
}

/// The proxy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The tunnel is open.
    Ok,
    /// Refused, with a stable code and the reason.
    Refused {
        /// `node_not_allowed`, `user_locked`, …
        code: String,
        /// Why, in words.
        message: String,
    },
}

/// Parses one reply line (without or with its newline).
pub fn parse_reply(line: &[u8]) -> Result<Reply, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.len() >= MAX_REPLY {
        return Err(format!("a reply longer than {MAX_REPLY} bytes"));
    }
    let text = std::str::from_utf8(line).map_err(|_| "a reply that is not UTF-8".to_owned())?;
    if text.chars().any(char::is_control) {
        return Err("a reply holding a control character".into());
    }
    let rest = text
        .strip_prefix(VERSION)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("a reply that does not start with {VERSION}"))?;
    if rest == "ok" {
        return Ok(Reply::Ok);
    }
    let (code, message) = rest
        .strip_prefix("refused ")
        .and_then(|r| r.split_once(": "))
        .filter(|(code, _)| {
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .ok_or_else(|| "a reply that is neither ok nor refused <code>: <reason>".to_owned())?;
    Ok(Reply::Refused {
        code: code.to_owned(),
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_proxy_reads_the_preamble_this_writes() {
        assert_eq!(ALPN_SSH, signet_proxy::ALPN_SSH);
        for text in ["root@web-1:22", "deploy@db-1.internal", "_x@a@b:1"] {
            let target = Target::parse(text).unwrap();
            let line = preamble(&target);
            let parsed = signet_proxy::Preamble::parse(line.as_bytes()).unwrap();
            assert_eq!((parsed.node, parsed.login), (target.node, target.login));
            assert_eq!(parsed_len(&line), line.len());
        }
    }

    fn parsed_len(line: &str) -> usize {
        let mut reader = signet_proxy::preamble::PreambleReader::new();
        let (_, rest) = reader
            .push(format!("{line}SSH-2.0-x").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"SSH-2.0-x");
        line.len()
    }

    #[test]
    fn this_reads_every_reply_the_proxy_writes() {
        use signet_proxy::Reply as Theirs;
        assert_eq!(parse_reply(Theirs::Ok.to_line().as_bytes()), Ok(Reply::Ok));
        for (code, message) in [
            ("node_not_allowed", "your roles do not allow web-1"),
            ("user_locked", "locked: offboarded: see \"ops\" — ünïcode"),
            ("bad_preamble", "malformed preamble: a\nb\u{1b}[31m"),
            ("x", &"long ".repeat(400)),
        ] {
            let line = Theirs::Refused {
                code: code.into(),
                message: message.into(),
            }
            .to_line();
            match parse_reply(line.as_bytes()).unwrap() {
                Reply::Refused {
                    code: c,
                    message: m,
                } => {
                    assert_eq!(c, code);
                    assert!(!m.chars().any(char::is_control));
                    assert_eq!(
                        signet_proxy::Reply::parse(line.as_bytes()).unwrap(),
                        Theirs::Refused {
                            code: c,
                            message: m
                        }
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Differential: on valid lines and every one-byte change, truncation
    /// and doubling of them, this parser and the proxy's agree.
    #[test]
    fn agrees_with_the_proxys_parser_on_mutations() {
        use signet_proxy::Reply as Theirs;
        let seeds = [
            "signet-ssh/1 ok\n".to_owned(),
            "signet-ssh/1 refused node_not_allowed: your roles do not allow web-1\n".to_owned(),
            format!("signet-ssh/1 refused x: {}\n", "é".repeat(500)),
        ];
        let same = |input: &[u8]| {
            let ours = parse_reply(input).ok();
            let theirs = Theirs::parse(input).ok().map(|r| match r {
                Theirs::Ok => Reply::Ok,
                Theirs::Refused { code, message } => Reply::Refused { code, message },
            });
            assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(input));
        };
        for seed in &seeds {
            let bytes = seed.as_bytes();
            for cut in 0..=bytes.len() {
                same(&bytes[..cut]);
            }
            same(&[bytes, bytes].concat());
            for at in 0..bytes.len().min(80) {
                for b in [
                    0u8, b' ', b'\n', b'\r', b':', b'A', b'_', 0x1b, 0x7f, 0xc3, 0xff,
                ] {
                    let mut changed = bytes.to_vec();
                    changed[at] = b;
                    same(&changed);
                }
            }
        }
    }

    #[test]
    fn malformed_replies_are_refused() {
        for bad in [
            &b""[..],
            b"\n",
            b"ok\n",
            b"signet-ssh/1\n",
            b"signet-ssh/1 ok ok\n",
            b"signet-ssh/2 ok\n",
            b"signet-ssh/1  ok\n",
            b"signet-ssh/1 refused\n",
            b"signet-ssh/1 refused : why\n",
            b"signet-ssh/1 refused Node: why\n",
            b"signet-ssh/1 refused node why\n",
            b"signet-ssh/1 refused node: \x1b[2J\n",
            b"signet-ssh/1 refused node: a\rb\n",
            b"signet-ssh/1 refused node: \xff\n",
            b"SSH-2.0-OpenSSH_9.2\r\n",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("signet-ssh/1 refused x: {}\n", "y".repeat(MAX_REPLY));
        assert!(parse_reply(long.as_bytes()).is_err());
    }
}
