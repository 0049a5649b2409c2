//! Fuzz the ssh-agent message parser (`signet agent`): the input is a byte
//! stream as a client would send it, read frame by frame as the agent does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet::agent::proto::{self, Request};

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The body a parsed request came from, for the known messages.
fn reencode(request: &Request) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match request {
        Request::RequestIdentities => out.push(proto::SSH_AGENTC_REQUEST_IDENTITIES),
        Request::Sign {
            key_blob,
            data,
            flags,
        } => {
            out.push(proto::SSH_AGENTC_SIGN_REQUEST);
            string(&mut out, key_blob);
            string(&mut out, data);
            out.extend_from_slice(&flags.to_be_bytes());
        }
        Request::SessionBind(bind) => {
            out.push(proto::SSH_AGENTC_EXTENSION);
            string(&mut out, proto::SESSION_BIND.as_bytes());
            string(&mut out, &bind.host_key);
            string(&mut out, &bind.session_id);
            string(&mut out, &bind.signature);
            out.push(u8::from(bind.forwarding));
        }
        _ => return None,
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= 4 {
        let prefix: [u8; 4] = rest[..4].try_into().unwrap();
        let Ok(len) = proto::body_len(prefix) else {
            return; // the agent closes the connection
        };
        assert!((1..=proto::MAX_MESSAGE_LEN).contains(&len));
        let Some(body) = rest.get(4..4 + len) else {
            return; // truncated: the agent waits, then sees the hang-up
        };
        rest = &rest[4 + len..];
        match Request::decode(body) {
            Ok(request) => {
                assert_eq!(Request::decode(body).as_ref(), Ok(&request));
                if let Some(again) = reencode(&request) {
                    // Known messages are exactly their fields, except that
                    // any non-zero byte is a true `forwarding` flag.
                    if !matches!(&request, Request::SessionBind(b) if b.forwarding) {
                        assert_eq!(again, body, "a parsed message re-encodes to itself");
                    }
                }
            }
            Err(_) => return, // the agent closes the connection
        }
    }
});
