//! A blocking tlog-witness v1 client: what the CA calls for every
//! checkpoint it wants cosigned.
//!
//! ```no_run
//! use std::time::Duration;
//! use signet_witness::client::{add_checkpoint, ClientError};
//! # let (url, old_size, proof, note) = ("http://127.0.0.1:7380", 0u64, Vec::<[u8; 32]>::new(), String::new());
//! match add_checkpoint(url, old_size, &proof, &note, Duration::from_secs(2)) {
//!     Ok(lines) => { /* signet_log::witness::append_cosignatures(&note, &lines) */ }
//!     Err(ClientError::Conflict { witness_size }) => { /* prove from witness_size and retry */ }
//!     Err(e) => eprintln!("witness refused or unreachable: {e}"),
//! }
//! ```
//!
//! All calls share one connection pool (a `ureq` agent, HTTP/1.1
//! keep-alive), so after the first request to a witness a cosignature costs
//! one round trip on an open connection. [`WitnessClient`] gives a pool of
//! one's own.

use std::sync::OnceLock;
use std::time::Duration;

use signet_log::merkle::Hash;
use signet_log::note::Signature;

use crate::protocol::{
    format_request, parse_size, ADD_CHECKPOINT_PATH, MAX_PROOF_LINES, TLOG_SIZE_CONTENT_TYPE,
};

/// Largest answer read from a witness.
const MAX_RESPONSE: u64 = 64 * 1024;

/// Longest refusal reason kept from a witness's answer.
const MAX_REASON: usize = 300;

/// Why a witness did not cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// 409: the witness's latest cosigned checkpoint for this log has
    /// another size than `old_size` (or the same size with another root):
    /// send a proof from `witness_size`, or investigate a fork.
    #[error("the witness's latest checkpoint for this log has size {witness_size} (409 Conflict)")]
    Conflict {
        /// The size the witness holds.
        witness_size: u64,
    },
    /// Any other non-200 answer (400, 403, 404, 413, 422, 5xx), with the
    /// witness's reason (sanitised, shortened).
    #[error("the witness refused with {status}: {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The first line of the witness's answer.
        reason: String,
    },
    /// No answer: connection refused, timeout, DNS, TLS.
    #[error("the witness is unreachable: {0}")]
    Unreachable(String),
    /// An answer that is not what the protocol says (not cosignature lines,
    /// a 409 without a size).
    #[error("malformed answer from the witness: {0}")]
    Malformed(String),
    /// The call was not made: the URL is not http(s), or the proof has more
    /// than the 63 lines the protocol allows.
    #[error("invalid witness request: {0}")]
    InvalidRequest(String),
}

/// A witness client with its own connection pool.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    agent: ureq::Agent,
}

impl Default for WitnessClient {
    fn default() -> Self {
        Self::new()
    }
}

fn shared() -> &'static WitnessClient {
    static CLIENT: OnceLock<WitnessClient> = OnceLock::new();
    CLIENT.get_or_init(WitnessClient::new)
}

/// Submits a checkpoint to the witness at `url` (its submission prefix, e.g.
/// `http://127.0.0.1:7380`) through the process-wide connection pool; see
/// [`WitnessClient::add_checkpoint`].
pub fn add_checkpoint(
    url: &str,
    old_size: u64,
    consistency_proof: &[Hash],
    checkpoint_note: &str,
    timeout: Duration,
) -> Result<Vec<String>, ClientError> {
    shared().add_checkpoint(url, old_size, consistency_proof, checkpoint_note, timeout)
}

fn sanitize(body: &str) -> String {
    let first = body.lines().next().unwrap_or("").trim();
    let clean: String = first
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_REASON)
        .collect();
    if clean.is_empty() {
        "(no reason given)".to_owned()
    } else {
        clean
    }
}

impl WitnessClient {
    /// A client with its own pool of keep-alive connections.
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(32)
            .max_idle_connections_per_host(4)
            .user_agent("signet-witness-client")
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Submits `checkpoint_note` (the log's signed note) with the
    /// consistency proof from `old_size`, and returns the witness's
    /// cosignature lines (`— <name> <base64>`, without the final newline),
    /// ready for [`signet_log::witness::append_cosignatures`].
    ///
    /// The lines are checked for syntax only: verify them with the
    /// witness policy (`WitnessPolicy::verify_checkpoint`) once appended.
    /// `timeout` bounds each step of the call: connecting, sending the
    /// request, waiting for the answer and reading it.
    pub fn add_checkpoint(
        &self,
        url: &str,
        old_size: u64,
        consistency_proof: &[Hash],
        checkpoint_note: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, ClientError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::InvalidRequest(format!(
                "{url:?} is not an http:// or https:// URL"
            )));
        }
        if consistency_proof.len() > MAX_PROOF_LINES {
            return Err(ClientError::InvalidRequest(format!(
                "a consistency proof of {} hashes; the protocol allows {MAX_PROOF_LINES}",
                consistency_proof.len()
            )));
        }
        let endpoint = format!("{}{ADD_CHECKPOINT_PATH}", url.trim_end_matches('/'));
        let body = format_request(old_size, consistency_proof, checkpoint_note);
        let mut response = self
            .agent
            .post(&endpoint)
            .config()
            // Each phase is bounded rather than the whole call: ureq's
            // overall deadline (timeout_global) costs milliseconds at p99 on
            // a loaded machine, the phase timeouts nothing measurable.
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .build()
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(body.as_bytes())
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) | ureq::Error::Io(_) => {
                    ClientError::Unreachable(e.to_string())
                }
                other => ClientError::Malformed(format!("unreadable body: {other}")),
            })?;
        match status {
            200 => parse_cosignatures(&text),
            409 => {
                let size = text
                    .strip_suffix('\n')
                    .and_then(parse_size)
                    .filter(|_| content_type.starts_with(TLOG_SIZE_CONTENT_TYPE));
                match size {
                    Some(witness_size) => Err(ClientError::Conflict { witness_size }),
                    None => Err(ClientError::Malformed(format!(
                        "409 without a {TLOG_SIZE_CONTENT_TYPE} size: {}",
                        sanitize(&text)
                    ))),
                }
            }
            _ => Err(ClientError::Refused {
                status,
                reason: sanitize(&text),
            }),
        }
    }
}

/// Parses a 200 answer: one or more signature lines, each ending in a newline.
fn parse_cosignatures(text: &str) -> Result<Vec<String>, ClientError> {
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| ClientError::Malformed("the answer does not end in a newline".into()))?;
    if body.is_empty() {
        return Err(ClientError::Malformed(
            "no cosignature in the answer".into(),
        ));
    }
    body.split('\n')
        .map(|line| {
            Signature::parse_line(line)
                .map(|_| line.to_owned())
                .map_err(|_| {
                    ClientError::Malformed(format!("not a signature line: {}", sanitize(line)))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spec_example_answer_parses() {
        // c2sp.org/tlog-witness's example response.
        let body = "\u{2014} witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\u{2014} witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\u{2014} witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";
        let lines = parse_cosignatures(body).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines
            .iter()
            .all(|l| l.starts_with('\u{2014}') && !l.ends_with('\n')));
    }

    #[test]
    fn bad_answers_are_malformed() {
        for body in [
            "",
            "\n",
            "ok\n",
            "\u{2014} w1 AAAA",
            "\u{2014} w1 !!!\n",
            "\u{2014} w1 AAAAAAAA\n\n",
        ] {
            assert!(
                matches!(parse_cosignatures(body), Err(ClientError::Malformed(_))),
                "{body:?}"
            );
        }
        assert_eq!(sanitize("bad\u{7}thing\nsecond"), "bad?thing");
        assert_eq!(sanitize(""), "(no reason given)");
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_REASON);
    }

    #[test]
    fn unreachable_and_non_http_urls() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = add_checkpoint(
            &format!("http://127.0.0.1:{port}"),
            0,
            &[],
            "x\n\n\u{2014} a AAAAAAAA\n",
            Duration::from_secs(2),
        );
        assert!(matches!(r, Err(ClientError::Unreachable(_))), "{r:?}");
        let r = add_checkpoint("ftp://x", 0, &[], "", Duration::from_secs(1));
        assert!(matches!(r, Err(ClientError::InvalidRequest(_))), "{r:?}");
        let r = add_checkpoint(
            &format!("http://127.0.0.1:{port}"),
            1,
            &[[0; 32]; 64],
            "",
            Duration::from_secs(1),
        );
        assert!(matches!(r, Err(ClientError::InvalidRequest(_))), "{r:?}");
    }

    #[test]
    fn a_witness_that_never_answers_times_out() {
        // Accepts the connection, reads nothing, answers nothing.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let holder = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(3));
            drop(conn);
        });
        let r = WitnessClient::new().add_checkpoint(
            &url,
            0,
            &[],
            "x\n\n\u{2014} a AAAAAAAA\n",
            Duration::from_millis(300),
        );
        assert!(matches!(r, Err(ClientError::Unreachable(_))), "{r:?}");
        holder.join().unwrap();
    }
}
