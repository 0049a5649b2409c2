//! Does the certificate in an entry say what the entry says?
//!
//! The entry's summary fields (serial, validity, principals, key
//! fingerprint, subject) are what auditors search and read; the certificate
//! bytes are what servers trust. A CA that logged one thing and issued
//! another would be caught by the SHA-256 only if the auditor also reads
//! the certificate, so this parses it (OpenSSH with `ssh-key`, X.509 with
//! `x509-cert`) and compares field by field.
//!
//! The fields an auditor searches on (`subject` for `--user`, `principals`
//! for `--principal`) must equal the names relying parties read in the
//! certificate: for OpenSSH the key id (`user=<subject> serial=<serial>` or
//! `host=…`, what sshd logs and passes to `AuthorizedPrincipalsCommand`) and
//! the principals; for X.509 the subject DN and every subjectAltName, above
//! all the `signet://<trust domain>/user/<name>` URI services authorise on.
//! A certificate naming anyone or anything the entry does not record is a
//! mismatch, so no search can miss it.

use der::Decode;
use ssh_key::certificate::CertType;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};

use super::{Actor, CertificateForm, Entry, EntryKind, IssuedCertificate};
use crate::certificate::{
    has_proof_extension, parse_ssh_precertificate, parse_x509_precertificate, SSH_PROOF_EXTENSION,
};
use crate::{EntryError, Result};

fn mismatch(field: &'static str) -> crate::Error {
    EntryError::CertificateMismatch(field).into()
}

/// Checks the certificate an entry carries, of any kind, against its fields.
/// Entries without a certificate pass.
///
/// The format is the kind's (`ssh-user-cert` and `ssh-host-cert`: OpenSSH,
/// `x509-cert`: X.509); other kinds (`admin-sign`, the root certificate)
/// may carry either, told apart by the first byte (a DER SEQUENCE is 0x30,
/// an OpenSSH blob starts with a length).
///
/// OpenSSH: certificate type matches the kind (either type for other
/// kinds); serial, validity, principals (same list, same order) and the
/// certified key's SHA-256 fingerprint equal the entry's; the key id is
/// `user=<subject> serial=<serial>` (`host=` for host certificates).
///
/// X.509: serial, validity and the certified key's fingerprint (of its
/// OpenSSH encoding, as for OpenSSH entries) equal the entry's; the entry
/// has no principals. A certificate with a subjectAltName is a user's: its
/// subject DN is exactly `CN=<subject>`, and its names are `signet://` URIs
/// of one trust domain, exactly one `…/user/<subject>`, `…/role/<r>` only
/// for roles the entry lists, `…/device/<n>` only for the actor's attested
/// PIV device. A certificate without one (a root) must have the entry's
/// subject as its whole DN (RFC 4514 text), and is refused for `x509-cert`
/// entries, as is a CA certificate.
///
/// A precertificate entry (`form: precertificate`) is checked just as
/// strictly: its bytes must be a precertificate in its one encoding (for
/// OpenSSH, the certificate's fields up to the signature key; for X.509, a
/// DER `TBSCertificate`) without a log-proof extension, and its fields are
/// compared as above. A full certificate must not carry a log-proof
/// extension (a proof in a logged certificate would be of another entry).
///
/// Every entry with a certificate needs a subject.
pub fn check_certificate_contents(entry: &Entry) -> Result<()> {
    let Some(cert) = &entry.certificate else {
        return Ok(());
    };
    let subject = entry
        .subject
        .as_deref()
        .ok_or_else(|| mismatch("subject (missing, the certificate names one)"))?;
    match entry.kind {
        EntryKind::SshUserCert => check_ssh(entry, subject, cert, Some(CertType::User)),
        EntryKind::SshHostCert => check_ssh(entry, subject, cert, Some(CertType::Host)),
        EntryKind::X509Cert => check_x509(entry, subject, cert),
        _ if cert.bytes.0.first() == Some(&0x30) => check_x509(entry, subject, cert),
        _ => check_ssh(entry, subject, cert, None),
    }
}

fn check_ssh(
    entry: &Entry,
    subject: &str,
    cert: &IssuedCertificate,
    cert_type: Option<CertType>,
) -> Result<()> {
    let parsed = match cert.form {
        CertificateForm::Precertificate => {
            parse_ssh_precertificate(&cert.bytes.0).map_err(mismatch)?
        }
        _ => {
            let parsed = ssh_key::Certificate::from_bytes(&cert.bytes.0)
                .map_err(|_| mismatch("certificate (not an OpenSSH certificate)"))?;
            if parsed.extensions().contains_key(SSH_PROOF_EXTENSION)
                || parsed.critical_options().contains_key(SSH_PROOF_EXTENSION)
            {
                return Err(mismatch(
                    "certificate (a logged certificate holding a log proof)",
                ));
            }
            parsed
        }
    };
    if cert_type.is_some_and(|t| t != parsed.cert_type()) {
        return Err(mismatch("kind (certificate type)"));
    }
    if parsed.serial().to_string() != cert.serial {
        return Err(mismatch("certificate.serial"));
    }
    if parsed.valid_after() != cert.not_before {
        return Err(mismatch("certificate.not_before"));
    }
    if parsed.valid_before() != cert.not_after {
        return Err(mismatch("certificate.not_after"));
    }
    // OpenSSH takes a certificate without principals as valid for every
    // user (or every host): a golden ticket no Signet entry may describe.
    if parsed.valid_principals().is_empty() {
        return Err(mismatch(
            "principals (the certificate has none, so OpenSSH accepts it for any name)",
        ));
    }
    if parsed.valid_principals() != entry.principals.as_slice() {
        return Err(mismatch("principals"));
    }
    let fingerprint = parsed
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    if fingerprint != cert.public_key_fingerprint {
        return Err(mismatch("certificate.public_key_fingerprint"));
    }
    let label = match parsed.cert_type() {
        CertType::User => "user",
        CertType::Host => "host",
    };
    if parsed.key_id() != format!("{label}={subject} serial={}", parsed.serial()) {
        return Err(mismatch("subject (certificate key id)"));
    }
    // A device the certificate names must be the one the entry records, so
    // a relying party never reads a provenance the auditor does not see.
    // (Certificates issued without a touch name none.)
    let extension = parsed
        .extensions()
        .iter()
        .find(|(name, _)| name.as_str() == SSH_DEVICE_EXTENSION)
        .map(|(_, value)| value.as_str());
    if let Some(extension) = extension {
        let expected = piv_device(entry).map(super::PivDevice::ssh_extension_value);
        if Some(extension) != expected.as_deref() {
            return Err(mismatch(
                "actor.piv_device (certificate extension piv-device@signet)",
            ));
        }
    }
    Ok(())
}

/// The OpenSSH extension naming the attested device (docs/ssh-profile.md).
pub const SSH_DEVICE_EXTENSION: &str = "piv-device@signet";

fn piv_device(entry: &Entry) -> Option<&super::PivDevice> {
    match &entry.actor {
        Actor::User {
            piv_device: Some(d),
            ..
        } => Some(d),
        _ => None,
    }
}

fn check_x509(entry: &Entry, subject: &str, cert: &IssuedCertificate) -> Result<()> {
    let full;
    let pre;
    let tbs = match cert.form {
        CertificateForm::Precertificate => {
            pre = parse_x509_precertificate(&cert.bytes.0).map_err(mismatch)?;
            &pre
        }
        _ => {
            full = x509_cert::Certificate::from_der(&cert.bytes.0)
                .map_err(|_| mismatch("certificate (not a DER X.509 certificate)"))?;
            if has_proof_extension(full.tbs_certificate()) {
                return Err(mismatch(
                    "certificate (a logged certificate holding a log proof)",
                ));
            }
            full.tbs_certificate()
        }
    };
    let serial = tbs.serial_number().as_bytes();
    let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    let serial_hex: String = serial[first..].iter().map(|b| format!("{b:02x}")).collect();
    if serial_hex.trim_start_matches('0') != cert.serial.trim_start_matches('0') {
        return Err(mismatch("certificate.serial"));
    }
    let unix = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    if unix(&tbs.validity().not_before) != cert.not_before {
        return Err(mismatch("certificate.not_before"));
    }
    if unix(&tbs.validity().not_after) != cert.not_after {
        return Err(mismatch("certificate.not_after"));
    }
    if spki_fingerprint(tbs.subject_public_key_info())? != cert.public_key_fingerprint {
        return Err(mismatch("certificate.public_key_fingerprint"));
    }
    let is_ca = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|_| mismatch("certificate (basicConstraints malformed or repeated)"))?
        .is_some_and(|(_, bc)| bc.ca);
    let san = tbs
        .get_extension::<SubjectAltName>()
        .map_err(|_| mismatch("subjectAltName (malformed or repeated)"))?;
    if entry.kind == EntryKind::X509Cert && is_ca {
        return Err(mismatch("kind (an x509-cert entry's certificate is a CA)"));
    }
    let is_server = san.as_ref().is_some_and(|(_, SubjectAltName(names))| {
        !names.is_empty()
            && names
                .iter()
                .all(|n| matches!(n, GeneralName::DnsName(_) | GeneralName::IpAddress(_)))
    });
    if is_server {
        // A TLS server certificate (the CA daemon's own): only an admin
        // action issues one, and the entry's principals are its names.
        if entry.kind != EntryKind::AdminSign || is_ca {
            return Err(mismatch(
                "kind (a server certificate outside an admin-sign entry)",
            ));
        }
        let Some((_, SubjectAltName(names))) = san else {
            return Err(mismatch("subjectAltName"));
        };
        let texts: Vec<String> = names.iter().filter_map(server_name_text).collect();
        if texts.len() != names.len() || texts != entry.principals {
            return Err(mismatch("principals (certificate server names)"));
        }
        return check_cn_only(tbs.subject(), subject);
    }
    if !entry.principals.is_empty() {
        return Err(mismatch("principals (an X.509 certificate grants none)"));
    }
    match san {
        Some((_, SubjectAltName(names))) => {
            check_signet_names(entry, subject, &names)?;
            check_cn_only(tbs.subject(), subject)
        }
        None if entry.kind == EntryKind::X509Cert => Err(mismatch(
            "subject (certificate has no subjectAltName URI naming the user)",
        )),
        None if tbs.subject().to_string() != subject => {
            Err(mismatch("subject (certificate subject DN)"))
        }
        None => Ok(()),
    }
}

/// A server name as text: the DNS name, or the IP address as Rust prints it.
fn server_name_text(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::DnsName(dns) => Some(dns.as_str().to_owned()),
        GeneralName::IpAddress(ip) => match ip.as_bytes().len() {
            4 => <[u8; 4]>::try_from(ip.as_bytes())
                .ok()
                .map(|b| std::net::Ipv4Addr::from(b).to_string()),
            16 => <[u8; 16]>::try_from(ip.as_bytes())
                .ok()
                .map(|b| std::net::Ipv6Addr::from(b).to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The subject DN is one RDN holding one CN, equal to `subject`.
fn check_cn_only(name: &x509_cert::name::Name, subject: &str) -> Result<()> {
    let mut atvs = name.iter();
    let cn = match (atvs.next(), atvs.next()) {
        (Some(atv), None) if atv.oid == COMMON_NAME => atv,
        _ => return Err(mismatch("subject (certificate DN is not just a CN)")),
    };
    let value = x509_cert::ext::pkix::name::DirectoryString::try_from(&cn.value)
        .map_err(|_| mismatch("subject (certificate CN is not a string)"))?;
    if value.value() != subject {
        return Err(mismatch("subject (certificate CN)"));
    }
    Ok(())
}

/// commonName (RFC 4519); a constant, so a typo fails the build, not a check.
const COMMON_NAME: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");

/// A `signet://<trust domain>/<what>/<name>` URI, split.
struct SignetUri<'a> {
    domain: &'a str,
    what: &'a str,
    name: &'a str,
}

impl<'a> SignetUri<'a> {
    /// Only the one spelling Signet writes: lowercase scheme, a DNS name,
    /// two path segments of characters that need no escaping (so no
    /// relying party can decode the name into another one).
    fn parse(uri: &'a str) -> Option<Self> {
        let rest = uri.strip_prefix("signet://")?;
        let (domain, rest) = rest.split_once('/')?;
        let (what, name) = rest.split_once('/')?;
        let dns = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
        };
        (dns(domain) && plain(what) && plain(name)).then_some(Self { domain, what, name })
    }
}

/// The subjectAltName of a user's certificate names the entry's subject
/// once and nothing the entry does not record.
fn check_signet_names(entry: &Entry, subject: &str, names: &[GeneralName]) -> Result<()> {
    let mut domain = None;
    let mut users = 0usize;
    let mut devices = 0usize;
    let mut policies = 0usize;
    for name in names {
        let GeneralName::UniformResourceIdentifier(uri) = name else {
            return Err(mismatch(
                "subjectAltName (a name other than a signet:// URI)",
            ));
        };
        let uri = SignetUri::parse(uri.as_str())
            .ok_or_else(|| mismatch("subjectAltName (a URI other than signet://)"))?;
        if *domain.get_or_insert(uri.domain) != uri.domain {
            return Err(mismatch("subjectAltName (two trust domains)"));
        }
        match uri.what {
            "user" if uri.name == subject => users += 1,
            "user" => return Err(mismatch("subject (certificate SAN URI)")),
            "role" if entry.roles.iter().any(|r| r == uri.name) => {}
            "role" => return Err(mismatch("roles (certificate SAN URI)")),
            "device" if device_serial(entry).is_some_and(|d| d.to_string() == uri.name) => {
                devices += 1
            }
            "device" => return Err(mismatch("actor.piv_device (certificate SAN URI)")),
            "key-policy" if piv_device(entry).is_some_and(|d| d.key_policy_name() == uri.name) => {
                policies += 1
            }
            "key-policy" => return Err(mismatch("actor.piv_device (certificate key-policy URI)")),
            _ => return Err(mismatch("subjectAltName (an unknown signet:// URI)")),
        }
    }
    // At most one of each: two devices would leave a relying party to guess.
    if devices > 1 || policies > 1 {
        return Err(mismatch(
            "actor.piv_device (certificate device and key-policy URIs)",
        ));
    }
    match users {
        1 => Ok(()),
        0 => Err(mismatch(
            "subject (certificate has no subjectAltName URI naming the user)",
        )),
        _ => Err(mismatch("subject (certificate SAN URI repeated)")),
    }
}

fn device_serial(entry: &Entry) -> Option<u32> {
    match &entry.actor {
        Actor::User {
            piv_device: Some(d),
            ..
        } => Some(d.serial),
        _ => None,
    }
}

/// The OpenSSH fingerprint (`SHA256:…`) of the key an X.509 certificate
/// certifies: the same fingerprint `ssh-keygen -l` prints for that key, so
/// entries name keys the same way whatever the certificate format.
/// Ed25519, ECDSA P-256/P-384/P-521 and RSA keys; other types are a mismatch.
pub fn x509_key_fingerprint(cert: &x509_cert::Certificate) -> Result<String> {
    spki_fingerprint(cert.tbs_certificate().subject_public_key_info())
}

/// [`x509_key_fingerprint`] of a SubjectPublicKeyInfo: for a precertificate,
/// which has no certificate around it.
pub fn spki_fingerprint(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<String> {
    use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
    const ED25519: &str = "1.3.101.112";
    const EC: &str = "1.2.840.10045.2.1";
    const RSA: &str = "1.2.840.113549.1.1.1";
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| mismatch("certificate (public key is not whole bytes)"))?;
    let unsupported = || mismatch("certificate (public key type)");
    let key = match spki.algorithm.oid.to_string().as_str() {
        ED25519 => KeyData::Ed25519(Ed25519PublicKey(
            bits.try_into().map_err(|_| unsupported())?,
        )),
        EC => KeyData::Ecdsa(EcdsaPublicKey::from_sec1_bytes(bits).map_err(|_| unsupported())?),
        RSA => {
            use der::Reader as _;
            let mut reader = der::SliceReader::new(bits).map_err(|_| unsupported())?;
            let (n, e) = reader
                .sequence(|r| {
                    let n = der::asn1::UintRef::decode(r)?;
                    let e = der::asn1::UintRef::decode(r)?;
                    Ok::<_, der::Error>((n, e))
                })
                .map_err(|_| unsupported())?;
            let e = ssh_key::Mpint::from_positive_bytes(e.as_bytes());
            let n = ssh_key::Mpint::from_positive_bytes(n.as_bytes());
            KeyData::Rsa(RsaPublicKey::new(e, n).map_err(|_| unsupported())?)
        }
        _ => return Err(unsupported()),
    };
    Ok(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}
