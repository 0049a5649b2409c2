//! Issuance: a raw request becomes an [`ApprovedRequest`] only through the
//! checks, only an approved request is signed, and only an issuance whose
//! log entry is durable comes back as [`Issued`]. The types make the wrong
//! order impossible.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::Digest;
use signet_hsm::PublicKey;
use signet_hsm::{Pkcs11Key, SigningBackend, SshSigner, Token, X509Signer};
use signet_log::certificate::{
    verify_ssh_certificate, verify_x509_certificate, CertificateProof, LogTrust,
    SshCertificateFields,
};
use signet_log::entry::{
    Actor, Base64Bytes, CertificateForm, Entry, EntryKind, IssuedCertificate, PivDevice, Sha256Hex,
};
use signet_log::witness::WitnessPolicy;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

use crate::config::Config;
use crate::keys::{self, KeyRole};
use crate::profile::{SshProfile, CLOCK_SKEW_BACKDATE, SSH_HOST, SSH_USER};
use crate::request::{checked_name, checked_principals, checked_ttl, SubjectKey};
use crate::store::{Appended, LogStore, SerialKind, SerialReservation, SignedCheckpoint};
use crate::{x509, Error, Result};

/// The kinds of certificate the CA issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// OpenSSH user certificate.
    SshUser,
    /// OpenSSH host certificate.
    SshHost,
    /// X.509 client certificate.
    X509Client,
    /// X.509 TLS server certificate (the daemon's own, logged as `admin-sign`).
    X509Server,
}

/// A request as it arrives: strings and bytes, nothing checked yet.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// What to issue.
    pub kind: CertKind,
    /// The user (user and X.509 certs); unused for host certs.
    pub user: Option<String>,
    /// Logins (user certs) or host names (host certs).
    pub principals: Vec<String>,
    /// Requested validity, e.g. `8h`.
    pub ttl: String,
    /// Contents of the public key file.
    pub public_key: Vec<u8>,
}

/// A request that passed every check. Only [`Authority::approve`] makes one.
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    kind: CertKind,
    subject: String,
    principals: Vec<String>,
    not_before: u64,
    not_after: u64,
    public_key: SubjectKey,
    roles: Vec<String>,
    device: Option<PivDevice>,
    request_hash: Option<[u8; 32]>,
}

impl ApprovedRequest {
    /// Binds the request to what allowed it, the SHA-256 of an access
    /// proxy's join token: the entry records it as `request_hash`, so the
    /// log shows which invite each proxy certificate spent.
    pub fn bound_to(mut self, request_hash: [u8; 32]) -> Self {
        self.request_hash = Some(request_hash);
        self
    }
}

/// A request that WebAuthn, the PIV attestation and the roles already
/// allowed (the touch flow): every value is typed and checked by the caller.
#[derive(Debug, Clone)]
pub struct TouchRequest {
    /// `SshUser` or `X509Client`.
    pub kind: CertKind,
    /// The user.
    pub user: String,
    /// Logins (SSH only; X.509 certificates carry none).
    pub principals: Vec<String>,
    /// Validity.
    pub ttl: Duration,
    /// The attested key.
    pub public_key: SubjectKey,
    /// The roles that allowed it.
    pub roles: Vec<String>,
    /// The attested device and key policy.
    pub device: PivDevice,
    /// SHA-256 of the request the WebAuthn challenge committed to.
    pub request_hash: [u8; 32],
}

/// The certificate itself.
#[derive(Debug, Clone)]
pub enum IssuedCert {
    /// An OpenSSH certificate.
    Ssh(Box<ssh_key::Certificate>),
    /// An X.509 certificate (DER).
    X509(Vec<u8>),
}

/// A server certificate signed but not yet logged: it cannot leave the CA.
/// It holds the reservation of its serial; only [`Authority::log`] consumes
/// it. (Every other certificate is logged before it is signed.)
struct Signed {
    certificate: IssuedCert,
    serial: SerialReservation,
    bytes: Vec<u8>,
}

/// What a certificate will say, fixed before it is logged: signed only
/// after its precertificate's entry is durable and released.
enum Contents {
    /// An OpenSSH certificate's fields (user or host CA).
    Ssh {
        fields: Box<SshCertificateFields>,
        host: bool,
    },
    /// An X.509 client certificate: the request and this serial make it.
    X509 { serial: SerialNumber },
}

/// A certificate drafted and its checked log entry (holding the
/// precertificate), not yet appended.
struct Draft {
    contents: Contents,
    entry: Entry,
    serial_text: String,
    /// Consumed by the append.
    serial: Option<SerialReservation>,
}

/// Keeps the types below from being built outside this module: their
/// values are made only where the promise they stand for was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sealed;

/// A certificate whose log entry is durable. Only [`Authority::issue`] makes one.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub certificate: IssuedCert,
    /// Its serial: decimal for OpenSSH, hex for X.509.
    pub serial: String,
    /// Index of its entry in the log.
    pub log_index: u64,
    /// The entry's canonical bytes (what the inclusion proof is for).
    pub entry: Vec<u8>,
    /// A signed checkpoint covering the entry.
    pub checkpoint: Arc<SignedCheckpoint>,
    /// The entry's inclusion proof in that checkpoint's tree.
    pub inclusion_proof: Vec<signet_log::merkle::Hash>,
    _sealed: Sealed,
}

/// The CA: keys on the token, the root certificate, the store and the limits.
///
/// Generic over where the keys live (a PKCS#11 token key by default, or a
/// YubiKey PIV slot key): signet-hsm's `SigningBackend` is sealed and
/// `Clone`, so it cannot be boxed as a trait object, and static dispatch
/// keeps the signing path exactly what it is for each backend.
/// [`crate::ca_keys::CaAuthority`] picks the instance the configuration asks for.
pub struct Authority<B: SigningBackend = Pkcs11Key> {
    config: Config,
    ssh_user: SshSigner<B>,
    ssh_host: SshSigner<B>,
    x509: X509Signer<B>,
    root: Certificate,
    store: Arc<dyn LogStore>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authority<Pkcs11Key> {
    /// Loads the CA keys from the token and the root from the data dir.
    pub fn open(config: Config, token: Token, store: Arc<dyn LogStore>) -> Result<Self> {
        let ssh_user = SshSigner::new(
            token.clone(),
            keys::load(&token, &config, KeyRole::SshUserCa)?,
        )?;
        let ssh_host = SshSigner::new(
            token.clone(),
            keys::load(&token, &config, KeyRole::SshHostCa)?,
        )?;
        let x509 = X509Signer::new(token.clone(), keys::load(&token, &config, KeyRole::X509Ca)?);
        Self::with_keys(config, ssh_user, ssh_host, x509, store)
    }
}

impl<B: SigningBackend> Authority<B> {
    /// A CA over keys already found (on any backend), with the root
    /// certificate from the data dir, which must be for the X.509 key.
    pub fn with_keys(
        config: Config,
        ssh_user: SshSigner<B>,
        ssh_host: SshSigner<B>,
        x509: X509Signer<B>,
        store: Arc<dyn LogStore>,
    ) -> Result<Self> {
        let root_path = config.root_cert_path();
        let root_text = std::fs::read_to_string(&root_path).map_err(|_| {
            Error::NotInitialised(format!("no root certificate at {}", root_path.display()))
        })?;
        let root = x509::from_pem(&root_text)?;
        // Nothing is issued under a root the log does not hold: auditors
        // and relying parties must be able to find every CA certificate.
        let root_der = der::Encode::to_der(&root).map_err(|e| Error::Certificate(e.to_string()))?;
        if !store.logs_admin_certificate(&sha2::Sha256::digest(&root_der).into()) {
            return Err(Error::NotInitialised(format!(
                "the root certificate {} is not in the log (run `signet-ca init`, which logs it)",
                root_path.display()
            )));
        }
        if &x509::public_key_of(&root)? != x509.public_key() {
            return Err(Error::NotInitialised(format!(
                "{} does not match the x509-ca key",
                root_path.display()
            )));
        }
        Ok(Self {
            ssh_user,
            ssh_host,
            x509,
            root,
            store,
            config,
        })
    }

    /// Assembles a CA from parts that are already loaded (the benchmark uses
    /// this with throw-away keys so it never issues under the real CA keys).
    pub fn from_parts(
        config: Config,
        ssh_user: SshSigner<B>,
        ssh_host: SshSigner<B>,
        x509: X509Signer<B>,
        root: Certificate,
        store: Arc<dyn LogStore>,
    ) -> Self {
        Self {
            config,
            ssh_user,
            ssh_host,
            x509,
            root,
            store,
        }
    }

    /// Checks a raw request against the configuration: names, principals,
    /// TTL within the maximum for its kind, a usable public key.
    pub fn approve(&self, raw: RawRequest) -> Result<ApprovedRequest> {
        let Checked {
            subject,
            principals,
            ttl,
            public_key,
        } = check_request(&self.config, &raw)?;
        let now = SystemTime::now();
        let mut not_after = now
            .checked_add(ttl)
            .ok_or_else(|| Error::bad("--ttl", "is beyond the clock's range"))?;
        if raw.kind == CertKind::X509Client {
            // A certificate never outlives its issuer.
            let root_end: SystemTime = self.root.tbs_certificate().validity().not_after.into();
            not_after = not_after.min(root_end);
        }
        Ok(ApprovedRequest {
            kind: raw.kind,
            subject,
            principals,
            not_before: unix(now.checked_sub(CLOCK_SKEW_BACKDATE).unwrap_or(UNIX_EPOCH)),
            not_after: unix(not_after),
            public_key,
            roles: Vec::new(),
            device: None,
            request_hash: None,
        })
    }

    /// Turns a request the touch flow already allowed into an approved one:
    /// the names are checked once more, the TTL against the CA's own
    /// maximum for the kind, and an X.509 certificate never outlives the root.
    pub fn approve_touch(&self, request: TouchRequest) -> Result<ApprovedRequest> {
        let user = checked_name(&request.user, "user")?;
        let (principals, max) = match request.kind {
            CertKind::SshUser => (
                checked_principals(&request.principals, "principals")?,
                self.config.issuance.ssh_user_max_ttl,
            ),
            CertKind::X509Client => {
                request.public_key.x509("public_key")?;
                (Vec::new(), self.config.issuance.x509_client_max_ttl)
            }
            _ => {
                return Err(Error::bad(
                    "kind",
                    "the touch flow issues user certificates only",
                ))
            }
        };
        if request.ttl.is_zero() || request.ttl > max {
            return Err(Error::bad(
                "ttl_seconds",
                format!(
                    "must be between 1 s and the CA's maximum of {}",
                    humantime::format_duration(max)
                ),
            ));
        }
        let now = SystemTime::now();
        let mut not_after = now
            .checked_add(request.ttl)
            .ok_or_else(|| Error::bad("ttl_seconds", "is beyond the clock's range"))?;
        if request.kind == CertKind::X509Client {
            let root_end: SystemTime = self.root.tbs_certificate().validity().not_after.into();
            not_after = not_after.min(root_end);
        }
        Ok(ApprovedRequest {
            kind: request.kind,
            subject: user,
            principals,
            not_before: unix(now.checked_sub(CLOCK_SKEW_BACKDATE).unwrap_or(UNIX_EPOCH)),
            not_after: unix(not_after),
            public_key: request.public_key,
            roles: request.roles,
            device: Some(request.device),
            request_hash: Some(request.request_hash),
        })
    }

    /// Issues the daemon's TLS server certificate for a key it generated in
    /// memory, logged as an `admin-sign` entry like any other certificate.
    pub fn issue_server(
        &self,
        names: &[x509::ServerName],
        public_key: PublicKey,
        lifetime: Duration,
        actor: Actor,
    ) -> Result<Issued> {
        let first = names
            .first()
            .ok_or_else(|| Error::bad("serve.names", "needs at least one name"))?;
        let now = SystemTime::now();
        let root_end: SystemTime = self.root.tbs_certificate().validity().not_after.into();
        let not_after = now.checked_add(lifetime).unwrap_or(root_end).min(root_end);
        let request = ApprovedRequest {
            kind: CertKind::X509Server,
            subject: first.to_string(),
            principals: names.iter().map(ToString::to_string).collect(),
            not_before: unix(now.checked_sub(CLOCK_SKEW_BACKDATE).unwrap_or(UNIX_EPOCH)),
            not_after: unix(not_after),
            public_key: SubjectKey::from_public_key(public_key, "serve")?,
            roles: Vec::new(),
            device: None,
            request_hash: None,
        };
        let (serial, reservation) =
            self.reserve(SerialKind::X509, || x509::random_serial().map(Some))?;
        let der_bytes = x509::issue_server(
            &self.x509,
            &self.root,
            names,
            request.public_key.x509("serve")?,
            UNIX_EPOCH + Duration::from_secs(request.not_before),
            UNIX_EPOCH + Duration::from_secs(request.not_after),
            serial,
        )?;
        let signed = Signed {
            certificate: IssuedCert::X509(der_bytes.clone()),
            serial: reservation,
            bytes: der_bytes,
        };
        self.log(&request, signed, actor)
    }

    /// The X.509 root, for TLS chains.
    pub fn root(&self) -> &Certificate {
        &self.root
    }

    /// The SSH host CA as an OpenSSH public key line (what
    /// `signet-ca export ssh-host-ca` prints), for clients' known_hosts.
    pub fn ssh_host_ca_line(&self) -> Result<String> {
        ssh_key::PublicKey::new(self.ssh_host.key_data().clone(), "signet-ssh-host-ca")
            .to_openssh()
            .map_err(|e| Error::Certificate(e.to_string()))
    }

    /// The SSH user CA as an OpenSSH public key line (what
    /// `signet-ca export ssh-user-ca` prints), for sshd's `TrustedUserCAKeys`.
    pub fn ssh_user_ca_line(&self) -> Result<String> {
        ssh_key::PublicKey::new(self.ssh_user.key_data().clone(), "signet-ssh-user-ca")
            .to_openssh()
            .map_err(|e| Error::Certificate(e.to_string()))
    }

    /// Logs an approved request's precertificate, waits until its entry is
    /// durable and in a checkpoint released under the witness policy, and
    /// only then signs the certificate, with the proof of its logging inside.
    pub fn issue(&self, request: ApprovedRequest, actor: Actor) -> Result<Issued> {
        self.issue_all(vec![request], actor)?
            .pop()
            .ok_or_else(|| Error::Store("the store answered no append".into()))
    }

    /// [`Authority::issue`] for requests that belong together (the SSH and
    /// X.509 certificates of one sign-in): their precertificates are logged
    /// in one call, so they share one commit, one high-water mark update and
    /// one round of witness cosignatures; then each certificate is signed
    /// with its proof and checked as a relying party will check it. Returns
    /// the certificates in the order of `requests`; if any step fails, none
    /// is returned (entries already logged stay in the log: it may hold
    /// more than was issued, never less).
    pub fn issue_all(&self, requests: Vec<ApprovedRequest>, actor: Actor) -> Result<Vec<Issued>> {
        let mut drafts = Vec::with_capacity(requests.len());
        for request in &requests {
            drafts.push(self.draft(request, actor.clone())?);
        }
        let appended = self.store.append_all(
            drafts
                .iter_mut()
                .map(|d| (&d.entry, d.serial.take()))
                .collect(),
        )?;
        if appended.len() != drafts.len() {
            return Err(Error::Store(
                "the store answered a different number of appends".into(),
            ));
        }
        let trust = self.log_trust()?;
        requests
            .iter()
            .zip(drafts)
            .zip(appended)
            .map(|((request, draft), appended)| self.finish(request, draft, appended, &trust))
            .collect()
    }

    /// What relying parties trust: the log key and the witness policy.
    fn log_trust(&self) -> Result<LogTrust> {
        let log_key = self
            .store
            .verifier()
            .ok_or_else(|| Error::Store("the store does not know its log key".into()))?;
        Ok(LogTrust {
            log_key,
            witnesses: self
                .config
                .witnesses
                .clone()
                .unwrap_or_else(WitnessPolicy::none),
        })
    }

    /// Fixes a certificate's contents and reserves its serial: the entry
    /// holds the precertificate. Nothing is signed.
    fn draft(&self, request: &ApprovedRequest, actor: Actor) -> Result<Draft> {
        let (contents, serial, precertificate) = match request.kind {
            CertKind::SshUser => self.draft_ssh(request, &SSH_USER, &self.ssh_user)?,
            CertKind::SshHost => self.draft_ssh(request, &SSH_HOST, &self.ssh_host)?,
            CertKind::X509Client => self.draft_x509(request)?,
            CertKind::X509Server => {
                return Err(Error::bad(
                    "kind",
                    "server certificates come from issue_server",
                ))
            }
        };
        let serial_text = serial.serial().to_owned();
        let entry = self.entry_for(
            request,
            &serial_text,
            precertificate,
            CertificateForm::Precertificate,
            actor,
        )?;
        Ok(Draft {
            contents,
            entry,
            serial_text,
            serial: Some(serial),
        })
    }

    /// Signs a drafted certificate once its precertificate is logged, with
    /// the proof against the released checkpoint, and checks the result
    /// the way a node or client will.
    fn finish(
        &self,
        request: &ApprovedRequest,
        draft: Draft,
        appended: Appended,
        trust: &LogTrust,
    ) -> Result<Issued> {
        let proof = CertificateProof::new(
            appended.index,
            &draft.entry,
            appended.inclusion_proof.clone(),
            &appended.checkpoint.note,
        )?;
        let (certificate, verified) = match draft.contents {
            Contents::Ssh { fields, host } => {
                let signer = KeepHsmError::new(if host { &self.ssh_host } else { &self.ssh_user });
                let cert = fields
                    .builder(Some(&proof))?
                    .sign(&signer)
                    .map_err(|e| signer.failure_or(Error::Certificate(e.to_string())))?;
                let verified = verify_ssh_certificate(&cert, trust);
                (IssuedCert::Ssh(Box::new(cert)), verified)
            }
            Contents::X509 { serial } => {
                let spec = self.client_spec(request)?;
                let der_bytes =
                    x509::issue_client_with_proof(&self.x509, &self.root, &spec, serial, &proof)?;
                let verified = verify_x509_certificate(&der_bytes, trust);
                (IssuedCert::X509(der_bytes), verified)
            }
        };
        // The certificate must prove itself as relying parties will check
        // it: the same entry, the same index. Anything else is a CA bug, and
        // nothing leaves.
        let verified = verified.map_err(|e| {
            Error::Certificate(format!(
                "the signed certificate's log proof does not verify: {e}"
            ))
        })?;
        if verified.index != appended.index {
            return Err(Error::Certificate(
                "the signed certificate proves another entry".into(),
            ));
        }
        Ok(Issued {
            certificate,
            serial: draft.serial_text,
            log_index: appended.index,
            entry: draft.entry.to_canonical_bytes()?,
            checkpoint: appended.checkpoint,
            inclusion_proof: appended.inclusion_proof,
            _sealed: Sealed,
        })
    }

    /// Appends the entry of a certificate signed in full (the daemon's own
    /// TLS certificate) and waits until it is durable.
    fn log(&self, request: &ApprovedRequest, signed: Signed, actor: Actor) -> Result<Issued> {
        let Signed {
            certificate,
            serial,
            bytes,
        } = signed;
        let serial_text = serial.serial().to_owned();
        let entry = self.entry_for(request, &serial_text, bytes, CertificateForm::Full, actor)?;
        let appended = self.store.append(&entry, Some(serial))?;
        Ok(Issued {
            certificate,
            serial: serial_text,
            log_index: appended.index,
            entry: entry.to_canonical_bytes()?,
            checkpoint: appended.checkpoint,
            inclusion_proof: appended.inclusion_proof,
            _sealed: Sealed,
        })
    }

    /// The log entry of a certificate (`bytes` in the given form), checked
    /// against it.
    fn entry_for(
        &self,
        request: &ApprovedRequest,
        serial: &str,
        bytes: Vec<u8>,
        form: CertificateForm,
        actor: Actor,
    ) -> Result<Entry> {
        let kind = match request.kind {
            CertKind::SshUser => EntryKind::SshUserCert,
            CertKind::SshHost => EntryKind::SshHostCert,
            CertKind::X509Client => EntryKind::X509Cert,
            CertKind::X509Server => EntryKind::AdminSign,
        };
        let entry = Entry {
            kind,
            time: unix(SystemTime::now()),
            actor,
            request_hash: request.request_hash.map(Sha256Hex),
            subject: Some(request.subject.clone()),
            principals: request.principals.clone(),
            roles: request.roles.clone(),
            certificate: Some(IssuedCertificate {
                serial: serial.to_owned(),
                public_key_fingerprint: request.public_key.fingerprint(),
                not_before: request.not_before,
                not_after: request.not_after,
                sha256: Sha256Hex(sha2::Sha256::digest(&bytes).into()),
                bytes: Base64Bytes(bytes),
                form,
            }),
            change: None,
        };
        // The entry must describe exactly the certificate it carries: this
        // is what auditors check, so a disagreement is a CA bug and nothing
        // is issued.
        signet_log::entry::check_certificate_contents(&entry)?;
        Ok(entry)
    }

    /// Draws random serials until the store confirms one was never used
    /// (a collision is astronomically rare; the bound keeps a broken store
    /// from looping forever).
    fn reserve<T>(
        &self,
        kind: SerialKind,
        mut draw: impl FnMut() -> Result<Option<(T, String)>>,
    ) -> Result<(T, SerialReservation)> {
        for _ in 0..16 {
            if let Some((serial, text)) = draw()? {
                if let Some(reservation) = self.store.reserve_serial(kind, &text)? {
                    return Ok((serial, reservation));
                }
            }
        }
        Err(Error::Store(
            "could not find an unused serial number".into(),
        ))
    }

    fn draft_ssh(
        &self,
        request: &ApprovedRequest,
        profile: &SshProfile,
        signer: &SshSigner<B>,
    ) -> Result<(Contents, SerialReservation, Vec<u8>)> {
        let (serial, reservation) = self.reserve(SerialKind::Ssh, || {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| Error::Certificate(e.to_string()))?;
            let serial = u64::from_be_bytes(bytes);
            Ok((serial != 0).then(|| (serial, serial.to_string())))
        })?;
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| Error::Certificate(e.to_string()))?;
        let mut extensions: BTreeMap<String, String> = profile
            .extensions
            .iter()
            .map(|name| ((*name).to_owned(), String::new()))
            .collect();
        if let Some(device) = &request.device {
            extensions.insert(
                crate::profile::SSH_DEVICE_EXTENSION.to_owned(),
                device.ssh_extension_value(),
            );
        }
        let fields = SshCertificateFields {
            nonce: nonce.to_vec(),
            public_key: request.public_key.ssh().clone(),
            serial,
            cert_type: profile.cert_type,
            key_id: profile.key_id(&request.subject, serial),
            valid_principals: request.principals.clone(),
            valid_after: request.not_before,
            valid_before: request.not_after,
            critical_options: BTreeMap::new(),
            extensions,
        };
        let precertificate = fields.precertificate(signer.key_data())?;
        let host = std::ptr::eq(profile, &SSH_HOST);
        Ok((
            Contents::Ssh {
                fields: Box::new(fields),
                host,
            },
            reservation,
            precertificate,
        ))
    }

    fn client_spec<'a>(&'a self, request: &'a ApprovedRequest) -> Result<x509::ClientCertSpec<'a>> {
        Ok(x509::ClientCertSpec {
            user: &request.subject,
            public_key: request.public_key.x509("--public-key")?,
            not_before: UNIX_EPOCH + Duration::from_secs(request.not_before),
            not_after: UNIX_EPOCH + Duration::from_secs(request.not_after),
            trust_domain: &self.config.x509.trust_domain,
            roles: &request.roles,
            device: request.device.as_ref(),
        })
    }

    fn draft_x509(
        &self,
        request: &ApprovedRequest,
    ) -> Result<(Contents, SerialReservation, Vec<u8>)> {
        let (serial, reservation) =
            self.reserve(SerialKind::X509, || x509::random_serial().map(Some))?;
        let spec = self.client_spec(request)?;
        let precertificate =
            x509::client_precertificate(&self.x509, &self.root, &spec, serial.clone())?;
        Ok((Contents::X509 { serial }, reservation, precertificate))
    }
}

/// The certificate builders turn a signer's error into a bare "signature
/// error" (ssh-key drops it, x509-cert does not expose it as a source);
/// this signer keeps what the HSM said — a faulty signature above all — for
/// the caller to report.
pub(crate) struct KeepHsmError<'a, S> {
    signer: &'a S,
    failure: std::sync::Mutex<Option<Error>>,
}

impl<'a, S> KeepHsmError<'a, S> {
    pub(crate) fn new(signer: &'a S) -> Self {
        Self {
            signer,
            failure: std::sync::Mutex::new(None),
        }
    }

    /// The HSM's failure if there was one, else `fallback`.
    pub(crate) fn failure_or(&self, fallback: Error) -> Error {
        self.failure
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .unwrap_or(fallback)
    }
}

impl<Sig, S: signature::Signer<Sig>> signature::Signer<Sig> for KeepHsmError<'_, S> {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Sig, signature::Error> {
        self.signer.try_sign(msg).inspect_err(|e| {
            if let Some(failure) = crate::error::signing_failure(e) {
                if let Ok(mut slot) = self.failure.lock() {
                    *slot = Some(failure);
                }
            }
        })
    }
}

impl<S: signature::Keypair> signature::Keypair for KeepHsmError<'_, S> {
    type VerifyingKey = S::VerifyingKey;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.signer.verifying_key()
    }
}

impl<S: spki::DynSignatureAlgorithmIdentifier> spki::DynSignatureAlgorithmIdentifier
    for KeepHsmError<'_, S>
{
    fn signature_algorithm_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        self.signer.signature_algorithm_identifier()
    }
}

impl<B: SigningBackend> From<&KeepHsmError<'_, SshSigner<B>>> for ssh_key::public::KeyData {
    fn from(signer: &KeepHsmError<'_, SshSigner<B>>) -> Self {
        signer.signer.key_data().clone()
    }
}

struct Checked {
    subject: String,
    principals: Vec<String>,
    ttl: Duration,
    public_key: SubjectKey,
}

fn check_request(config: &Config, raw: &RawRequest) -> Result<Checked> {
    let limits = &config.issuance;
    let (subject, principals, max) = match raw.kind {
        CertKind::SshUser => {
            let user = checked_name(raw.user.as_deref().unwrap_or_default(), "--user")?;
            let principals = checked_principals(&raw.principals, "--principal")?;
            (user, principals, limits.ssh_user_max_ttl)
        }
        CertKind::SshHost => {
            let hosts = checked_principals(&raw.principals, "--host")?;
            (hosts[0].clone(), hosts, limits.ssh_host_max_ttl)
        }
        CertKind::X509Client => {
            let user = checked_name(raw.user.as_deref().unwrap_or_default(), "--user")?;
            (user, Vec::new(), limits.x509_client_max_ttl)
        }
        CertKind::X509Server => {
            return Err(Error::bad(
                "kind",
                "server certificates are the daemon's own",
            ))
        }
    };
    let ttl = checked_ttl(&raw.ttl, max, "--ttl")?;
    let public_key = SubjectKey::parse(&raw.public_key, "--public-key")?;
    if raw.kind == CertKind::X509Client {
        public_key.x509("--public-key")?;
    }
    Ok(Checked {
        subject,
        principals,
        ttl,
        public_key,
    })
}

/// Runs every check on a request that needs no key or state, so a bad
/// request is refused before the HSM is even opened.
pub fn precheck(config: &Config, raw: &RawRequest) -> Result<()> {
    check_request(config, raw).map(|_| ())
}

/// The local administrator, for break-glass issuance from the CA host:
/// the unix account this process runs as (from the kernel, not from `$USER`).
pub fn local_admin() -> Actor {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".into());
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let uid_field = fields.nth(1)?;
                (uid_field == uid).then(|| name.to_owned())
            })
        });
    Actor::LocalAdmin {
        unix_user: match name {
            Some(name) => format!("{name} (uid {uid})"),
            None => format!("uid {uid}"),
        },
    }
}
