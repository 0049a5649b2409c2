//! `signet proxy ssh USER@NODE[:PORT]`: one SSH connection through the
//! Signet proxy, stdin/stdout ↔ TLS, for OpenSSH's
//! `ProxyCommand signet proxy ssh %r@%h:%p`.
//!
//! The steps, each failing closed with its own error class:
//! 1. the profile: the proxy's address (`--proxy`, else the profile's
//!    `proxy`, else its CA URL), the pinned CA root;
//! 2. the card: slot 9a's key and the X.509 certificate `signet login`
//!    stored for it (the state file, else slot 9a's certificate object),
//!    valid now; the PIN when the key's policy wants it;
//! 3. TCP, then TLS 1.3 with ALPN `signet-ssh/1`: the proxy's certificate
//!    must chain to the pinned CA root and name the host dialled; the
//!    client certificate's signature is made on the card ([`card_key`]);
//! 4. the preamble, and the proxy's one-line answer ([`wire`]): a refusal
//!    ends here with its reason, before any byte of the SSH stream is read;
//! 5. bytes both ways until either side ends (`pump`), half-closing.
//!
//! stdout carries only the SSH stream; everything said to the engineer
//! goes to stderr.

pub mod card_key;
mod pump;
pub mod target;
pub mod wire;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConnection;

use crate::card::{Card, CardError, KeyPinPolicy, Pin, SlotKey};
use crate::profile::{self, Profile, ProfileError};

pub use card_key::{CardSigningKey, OneCertificate, SignFailure};
pub use target::{ProxyAddress, Target};

/// Time allowed for the TCP connection to the proxy.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the TLS handshake and the proxy's answer (a touch
/// included: the card waits about 15 s for one).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(40);

/// Why the tunnel did not open, or ended badly. [`TunnelError::class`]
/// maps it to an exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// Bad arguments, no proxy address, no pinned root.
    #[error("{0}")]
    Usage(String),
    /// No usable certificate: none, for another key, expired.
    #[error("{0}")]
    NotLoggedIn(String),
    /// The profile files.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The YubiKey.
    #[error(transparent)]
    Card(#[from] CardError),
    /// The proxy cannot be reached.
    #[error("cannot reach the Signet proxy at {addr}: {detail}")]
    Unreachable {
        /// HOST:PORT.
        addr: String,
        /// What the connection said.
        detail: String,
    },
    /// The proxy's certificate is not the one to trust.
    #[error("the Signet proxy at {addr} is not trusted, nothing was sent: {detail}")]
    Untrusted {
        /// HOST:PORT.
        addr: String,
        /// What is wrong with its certificate.
        detail: String,
    },
    /// The other end does not speak the protocol.
    #[error("the server at {addr} is not a usable Signet proxy: {detail}")]
    Protocol {
        /// HOST:PORT.
        addr: String,
        /// What it did.
        detail: String,
    },
    /// The proxy refused the client certificate at the TLS layer.
    #[error("the Signet proxy at {addr} refused your certificate ({detail}); run `signet login`")]
    CertificateRejected {
        /// HOST:PORT.
        addr: String,
        /// The TLS alert.
        detail: String,
    },
    /// The proxy refused the tunnel, with its reason.
    #[error("the Signet proxy refused {login}@{node}: {message} ({code})")]
    Refused {
        /// The node asked for.
        node: String,
        /// The login asked for.
        login: String,
        /// The stable code (`node_not_allowed`, `user_locked`, …).
        code: String,
        /// The proxy's reason.
        message: String,
    },
    /// The open tunnel ended without a clean close: the proxy cut it (a
    /// lock, the certificate's end) or the connection broke.
    #[error("the tunnel to {node} was cut: {detail}")]
    Cut {
        /// The node.
        node: String,
        /// What the connection said.
        detail: String,
    },
    /// stdin/stdout could not be set up.
    #[error("{0}")]
    Local(String),
}

/// The kinds of failure, one exit status each (documented in `signet
/// proxy ssh --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelClass {
    /// 2: usage, no profile, not logged in or the certificate expired.
    Usage,
    /// 3: local files or stdio.
    Local,
    /// 4: the YubiKey.
    Card,
    /// 5: the proxy unreachable, untrusted, or not speaking the protocol.
    Unreachable,
    /// 6: the proxy refused (the tunnel, or the certificate).
    Refused,
    /// 7: the open tunnel was cut.
    Cut,
}

impl TunnelError {
    /// Which kind of failure this is.
    pub fn class(&self) -> TunnelClass {
        match self {
            Self::Usage(_) | Self::NotLoggedIn(_) => TunnelClass::Usage,
            Self::Profile(_) | Self::Local(_) => TunnelClass::Local,
            Self::Card(_) => TunnelClass::Card,
            Self::Unreachable { .. } | Self::Untrusted { .. } | Self::Protocol { .. } => {
                TunnelClass::Unreachable
            }
            Self::Refused { .. } | Self::CertificateRejected { .. } => TunnelClass::Refused,
            Self::Cut { .. } => TunnelClass::Cut,
        }
    }
}

/// What `signet proxy ssh` was given.
#[derive(Debug, Clone)]
pub struct Options {
    /// `USER@NODE[:PORT]`.
    pub target: Target,
    /// `--proxy HOST:PORT`, over the profile's.
    pub proxy: Option<String>,
}

/// The proxy's address: `--proxy`, else the profile's `proxy`, else the
/// host and port of its CA URL.
pub fn proxy_address(given: Option<&str>, profile: &Profile) -> Result<ProxyAddress, TunnelError> {
    let text = given
        .map(str::to_owned)
        .or_else(|| profile.proxy.clone())
        .or_else(|| {
            (!profile.ca_url.is_empty())
                .then(|| profile.ca_url.trim_start_matches("https://").to_owned())
        })
        .ok_or_else(|| {
            TunnelError::Usage(
                "no Signet proxy address: pass --proxy HOST:PORT, or remember one with `signet config --proxy HOST:PORT`"
                    .into(),
            )
        })?;
    ProxyAddress::parse(&text).map_err(TunnelError::Usage)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// The certificate's SubjectPublicKeyInfo (DER) and validity, or `None`
/// when it does not parse.
fn describe(cert_der: &[u8]) -> Option<(Vec<u8>, u64, u64)> {
    use der::{Decode as _, Encode as _};
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let tbs = cert.tbs_certificate();
    let spki = tbs.subject_public_key_info().to_der().ok()?;
    let validity = tbs.validity();
    Some((
        spki,
        validity.not_before.to_unix_duration().as_secs(),
        validity.not_after.to_unix_duration().as_secs(),
    ))
}

/// The X.509 certificate for the key in slot 9a: the one `signet login`
/// stored in the state directory when it is for that key, else the one in
/// slot 9a's certificate object. Checked to be valid now.
fn certificate_for(card: &Card, slot: &SlotKey) -> Result<Vec<u8>, TunnelError> {
    let path = profile::x509_certificate_path()?;
    let from_file = match std::fs::read(&path) {
        Ok(pem) => der::pem::decode_vec(&pem)
            .ok()
            .filter(|(label, _)| *label == "CERTIFICATE")
            .map(|(_, der)| der),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            return Err(ProfileError::Io {
                path: path.display().to_string(),
                source: e,
            }
            .into())
        }
    };
    let for_the_key =
        |der: &Vec<u8>| describe(der).is_some_and(|(spki, _, _)| spki == slot.spki_der);
    let der = match from_file.filter(for_the_key) {
        Some(der) => der,
        None => card.certificate_9a()?.filter(for_the_key).ok_or_else(|| {
            TunnelError::NotLoggedIn(format!(
                "no Signet certificate for the key in slot 9a of YubiKey {}: run `signet login`",
                card.serial()
            ))
        })?,
    };
    usable_now(&der, unix_now())?;
    Ok(der)
}

/// Whether the certificate is valid at `now` (five minutes of clock skew
/// allowed before its start; none after its end).
fn usable_now(der: &[u8], now: u64) -> Result<(), TunnelError> {
    let (_, not_before, not_after) = describe(der).ok_or_else(|| {
        TunnelError::NotLoggedIn("the stored certificate does not parse: run `signet login`".into())
    })?;
    if now >= not_after {
        return Err(TunnelError::NotLoggedIn(format!(
            "your Signet certificate expired at {}; run `signet login`",
            rfc3339(not_after)
        )));
    }
    if now + 300 < not_before {
        return Err(TunnelError::NotLoggedIn(format!(
            "your Signet certificate is valid only from {} (is this machine's clock right?)",
            rfc3339(not_before)
        )));
    }
    Ok(())
}

/// The pinned CA root(s), PEM, as trust anchors.
fn roots(profile: &Profile) -> Result<rustls::RootCertStore, TunnelError> {
    use rustls::pki_types::pem::PemObject as _;
    let path = profile.ca_root.clone().ok_or_else(|| {
        TunnelError::Usage(
            "no CA root pinned in the profile to check the proxy against: `signet login --ca-cert FILE` pins it"
                .into(),
        )
    })?;
    let pem = std::fs::read(&path).map_err(|source| ProfileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            TunnelError::Usage(format!("{}: not a PEM certificate ({e})", path.display()))
        })?;
        store.add(cert).map_err(|e| {
            TunnelError::Usage(format!(
                "{}: not usable as a trust anchor ({e})",
                path.display()
            ))
        })?;
    }
    if store.is_empty() {
        return Err(TunnelError::Usage(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(store)
}

/// The TLS configuration: TLS 1.3 only, ring, the pinned root, ALPN
/// `signet-ssh/1`, the card's key for the client certificate.
pub fn client_config(
    roots: rustls::RootCertStore,
    client: Arc<rustls::sign::CertifiedKey>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(OneCertificate(client)));
    config.alpn_protocols = vec![wire::ALPN_SSH.to_vec()];
    // One connection per process: no session to resume.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

fn tell(line: &str) {
    let painter = crate::ui::Painter::stderr();
    eprintln!("{}", painter.attention(line));
}

/// Opens the tunnel and copies bytes until it ends. Returns when both
/// sides ended cleanly.
pub fn run(opts: &Options) -> Result<(), TunnelError> {
    let profile = Profile::load()?.ok_or_else(|| {
        TunnelError::NotLoggedIn(
            "no Signet profile yet: run `signet login --proxy HOST:PORT --user NAME --ca-cert FILE` first"
                .into(),
        )
    })?;
    let address = proxy_address(opts.proxy.as_deref(), &profile)?;
    let roots = roots(&profile)?;

    let card = Card::open(profile.serial)?;
    let slot = card.slot_9a()?.ok_or(CardError::SlotEmpty)?;
    let certificate = certificate_for(&card, &slot)?;
    // Asked before connecting, so the handshake does not wait on a prompt.
    let pin = match slot.pin_policy {
        KeyPinPolicy::Never => None,
        _ => Some(Pin::from_env_or_prompt(&format!(
            "PIN for YubiKey {}: ",
            card.serial()
        ))?),
    };
    let failure = SignFailure::default();
    let key = CardSigningKey::new(card, &slot, pin, failure.clone(), tell);
    let config = client_config(roots, key.certified(certificate)).map_err(TunnelError::Local)?;

    let (conn, tcp, first) = open(&address, config, &opts.target, &failure)?;
    match pump::run(conn, tcp, first) {
        pump::Ending::Clean => Ok(()),
        pump::Ending::Cut(detail) => Err(TunnelError::Cut {
            node: opts.target.node.clone(),
            detail,
        }),
        pump::Ending::Local(detail) => Err(TunnelError::Local(detail)),
    }
}

/// TCP to the first address of `address` that answers.
fn dial(address: &ProxyAddress) -> Result<TcpStream, TunnelError> {
    let unreachable = |detail: String| TunnelError::Unreachable {
        addr: address.to_string(),
        detail,
    };
    let addrs: Vec<_> = (address.host.as_str(), address.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", address.host)))?
        .collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(unreachable(last))
}

/// What a failed TLS read or write means, the card's own error first.
fn classify(e: &std::io::Error, address: &ProxyAddress, failure: &SignFailure) -> TunnelError {
    if let Some(card) = failure.take() {
        return TunnelError::Card(card);
    }
    let addr = address.to_string();
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => TunnelError::Untrusted {
            addr,
            detail: untrusted_detail(why, &address.host),
        },
        Some(rustls::Error::AlertReceived(alert)) => {
            use rustls::AlertDescription as A;
            match alert {
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired => TunnelError::CertificateRejected {
                    addr,
                    detail: format!("TLS alert {alert:?}"),
                },
                A::NoApplicationProtocol => TunnelError::Protocol {
                    addr,
                    detail: "it does not speak signet-ssh/1 (no common ALPN protocol)".into(),
                },
                other => TunnelError::Protocol {
                    addr,
                    detail: format!("TLS alert {other:?}"),
                },
            }
        }
        Some(other) => TunnelError::Protocol {
            addr,
            detail: format!("TLS: {other}"),
        },
        None if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            TunnelError::Unreachable {
                addr,
                detail: format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()),
            }
        }
        None => TunnelError::Unreachable {
            addr,
            detail: e.to_string(),
        },
    }
}

fn untrusted_detail(why: &rustls::CertificateError, host: &str) -> String {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer | C::BadSignature => {
            "its certificate does not chain to the pinned CA root (the profile's ca_root)".into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("its certificate is not for the name {host}")
        }
        C::Expired | C::ExpiredContext { .. } => "its certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "its certificate is not valid yet (is this machine's clock right?)".into()
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "its certificate is not one for a TLS server".into()
        }
        other => format!("its certificate: {other:?}"),
    }
}

/// TCP, TLS, the preamble and the answer. Returns the connection with any
/// bytes of the SSH stream that came with the answer.
fn open(
    address: &ProxyAddress,
    config: Arc<rustls::ClientConfig>,
    target: &Target,
    failure: &SignFailure,
) -> Result<(ClientConnection, TcpStream, Vec<u8>), TunnelError> {
    let name = ServerName::try_from(address.host.clone())
        .map_err(|e| TunnelError::Usage(format!("the proxy host {:?}: {e}", address.host)))?;
    let mut tcp = dial(address)?;
    let _ = tcp.set_nodelay(true);
    let local = |e: std::io::Error| TunnelError::Local(format!("the socket: {e}"));
    tcp.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(local)?;
    tcp.set_write_timeout(Some(ANSWER_TIMEOUT)).map_err(local)?;
    let mut conn = ClientConnection::new(config, name).map_err(|e| TunnelError::Protocol {
        addr: address.to_string(),
        detail: e.to_string(),
    })?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| classify(&e, address, failure))?;
    }
    if conn.alpn_protocol() != Some(wire::ALPN_SSH) {
        return Err(TunnelError::Protocol {
            addr: address.to_string(),
            detail: "it did not agree to signet-ssh/1 (ALPN)".into(),
        });
    }
    conn.writer()
        .write_all(wire::preamble(target).as_bytes())
        .map_err(|e| classify(&e, address, failure))?;
    while conn.wants_write() {
        conn.complete_io(&mut tcp)
            .map_err(|e| classify(&e, address, failure))?;
    }
    // The answer: one line; what follows it is the node's first bytes.
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    let newline = loop {
        if let Some(i) = line.iter().position(|&b| b == b'\n') {
            break i;
        }
        if line.len() >= wire::MAX_REPLY {
            return Err(TunnelError::Protocol {
                addr: address.to_string(),
                detail: format!("an answer longer than {} bytes", wire::MAX_REPLY),
            });
        }
        match conn.reader().read(&mut buf) {
            Ok(0) => {
                return Err(TunnelError::Protocol {
                    addr: address.to_string(),
                    detail: "it closed the connection without answering".into(),
                })
            }
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.complete_io(&mut tcp)
                    .map_err(|e| classify(&e, address, failure))?;
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(TunnelError::Protocol {
                    addr: address.to_string(),
                    detail: "it closed the connection without answering".into(),
                })
            }
            Err(e) => return Err(classify(&e, address, failure)),
        }
    };
    let mut first = line.split_off(newline + 1);
    // What rustls still holds of the node's stream: the pump reads the
    // socket before it asks rustls again.
    loop {
        match conn.reader().read(&mut buf) {
            Ok(n) if n > 0 => first.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    match wire::parse_reply(&line) {
        Ok(wire::Reply::Ok) => Ok((conn, tcp, first)),
        Ok(wire::Reply::Refused { code, message }) => Err(TunnelError::Refused {
            node: target.node.clone(),
            login: target.login.clone(),
            code,
            message,
        }),
        Err(detail) => Err(TunnelError::Protocol {
            addr: address.to_string(),
            detail,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A self-signed certificate for a fixed P-256 key, valid `from`..`to`.
    fn certificate(from: u64, to: u64) -> (Vec<u8>, Vec<u8>) {
        use der::Encode as _;
        use std::str::FromStr as _;
        use x509_cert::builder::{Builder as _, CertificateBuilder};
        let key = p256::ecdsa::SigningKey::from_slice(&[0x24; 32]).unwrap();
        let spki =
            x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap();
        let at =
            |t: u64| x509_cert::time::Time::try_from(UNIX_EPOCH + Duration::from_secs(t)).unwrap();
        let profile = x509_cert::builder::profile::cabf::Root::new(
            false,
            // The CA/B profile wants a country and an organisation.
            x509_cert::name::Name::from_str("CN=alice,O=Example,C=US").unwrap(),
        )
        .unwrap();
        let cert = CertificateBuilder::new(
            profile,
            x509_cert::serial_number::SerialNumber::from(7u32),
            x509_cert::time::Validity::new(at(from), at(to)),
            spki.clone(),
        )
        .unwrap()
        .build::<_, p256::ecdsa::DerSignature>(&key)
        .unwrap();
        (cert.to_der().unwrap(), spki.to_der().unwrap())
    }

    #[test]
    fn a_certificate_is_used_only_while_valid() {
        let now = 1_800_000_000;
        let (der, spki) = certificate(now - 3600, now + 3600);
        assert!(usable_now(&der, now).is_ok());
        assert_eq!(describe(&der).unwrap().0, spki);
        // Expired, to the second.
        let err = usable_now(&der, now + 3600).unwrap_err();
        assert!(matches!(err, TunnelError::NotLoggedIn(_)));
        assert_eq!(err.class(), TunnelClass::Usage);
        assert!(
            err.to_string().contains(
                "your Signet certificate expired at 2027-01-15T09:00:00Z; run `signet login`"
            ),
            "{err}"
        );
        // Not valid yet, beyond the five minutes of skew allowed.
        assert!(usable_now(&der, now - 3600 - 300).is_ok());
        let err = usable_now(&der, now - 3600 - 301).unwrap_err();
        assert!(err.to_string().contains("clock"), "{err}");
        // Not a certificate at all.
        assert!(describe(b"not der").is_none());
        assert!(usable_now(b"not der", now).is_err());
    }

    #[test]
    fn the_proxy_address_comes_from_the_flag_then_the_profile() {
        let mut profile = Profile {
            ca_url: "https://ca.example.com:8443".into(),
            ..Profile::default()
        };
        assert_eq!(
            proxy_address(None, &profile).unwrap().to_string(),
            "ca.example.com:8443"
        );
        profile.proxy = Some("proxy.example.com:443".into());
        assert_eq!(
            proxy_address(None, &profile).unwrap().to_string(),
            "proxy.example.com:443"
        );
        assert_eq!(
            proxy_address(Some("other:1"), &profile)
                .unwrap()
                .to_string(),
            "other:1"
        );
        assert!(matches!(
            proxy_address(Some("other:x"), &profile),
            Err(TunnelError::Usage(_))
        ));
        assert!(matches!(
            proxy_address(None, &Profile::default()),
            Err(TunnelError::Usage(_))
        ));
    }
}
