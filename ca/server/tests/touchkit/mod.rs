//! A CA ready for the touch flow: roles applied, the daemon serving HTTPS,
//! a software security key enrolled through the real API, and PIV
//! attestation chains from the virtual YubiKey's attestation code.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use der::Encode as _;
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate as _;
use serde_json::{json, Value};
use signet_firmware_tests::attest::{attest_slot, AttestationRoot, AttestedFacts};
use signet_firmware_tests::keys::{Algorithm, PrivateKey};
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::common::{Ca, Daemon, FIDO_ROOTS, PIV_ROOTS, TEST_ORIGIN};

/// The roles every touch test starts from.
pub const ROLES: &str = "\
kind: role
name: dev
allow:
  logins: [ubuntu, deploy]
  node_labels: { env: [dev] }
options:
  max_session_ttl: 8h
  hardware_key: touch
  session_mfa: false
---
kind: role
name: prod
allow:
  logins: [root]
  node_labels: { env: [prod] }
options:
  max_session_ttl: 1h
  hardware_key: touch_and_pin
  session_mfa: true
---
kind: user
name: alice
roles: [dev, prod]
---
kind: user
name: bob
roles: [dev]
---
kind: user
name: carol
roles: []
";

/// PIN/touch policy bytes as YubiKeys write them.
pub const PIN_NEVER: u8 = 1;
pub const PIN_ONCE: u8 = 2;
pub const TOUCH_NEVER: u8 = 1;
pub const TOUCH_ALWAYS: u8 = 2;

/// A YubiKey's attestation key and certificate, under a test root.
pub struct Device {
    pub serial: u32,
    pub f9_key: SigningKey,
    pub f9_der: Vec<u8>,
}

/// A key in a PIV slot with its attestation chain (slot cert, f9 cert).
pub struct SlotKey {
    pub key: PrivateKey,
    pub spki: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

pub struct TouchCa {
    pub ca: Ca,
    pub daemon: Option<Daemon>,
    pub piv_root: AttestationRoot,
    pub token: SoftToken,
    pub root_pem: String,
}

impl TouchCa {
    /// An initialised CA that trusts a fresh virtual YubiKey root and the
    /// soft token's attestation CA, with [`ROLES`] applied (no daemon yet).
    pub fn new(label: &str) -> Self {
        let ca = Ca::initialised(label);
        let piv_root = AttestationRoot::create().unwrap();
        std::fs::write(ca.path(PIV_ROOTS), piv_root.cert_pem().unwrap()).unwrap();
        let (token, fido_ca) = SoftToken::new(true).unwrap();
        let fido_pem = der::pem::encode_string(
            "CERTIFICATE",
            der::pem::LineEnding::LF,
            &fido_ca.to_der().unwrap(),
        )
        .unwrap();
        std::fs::write(ca.path(FIDO_ROOTS), fido_pem).unwrap();
        let roles = ca.path("roles");
        std::fs::create_dir_all(&roles).unwrap();
        std::fs::write(roles.join("roles.yaml"), ROLES).unwrap();
        ca.ok(&["roles", "apply", roles.to_str().unwrap()]);
        let root_pem = ca.ok(&["export", "x509-ca"]);
        Self {
            ca,
            daemon: None,
            piv_root,
            token,
            root_pem,
        }
    }

    /// Starts the daemon.
    pub fn serve(&mut self) {
        self.daemon = Some(self.ca.serve());
    }

    pub fn port(&self) -> u16 {
        self.daemon.as_ref().expect("serving").port
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port())
    }

    /// An HTTPS client that trusts only the CA's X.509 root.
    pub fn agent(&self) -> ureq::Agent {
        let (_, der_bytes) = der::pem::decode_vec(self.root_pem.as_bytes()).unwrap();
        let root = ureq::tls::Certificate::from_der(&der_bytes).to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// POSTs raw bytes; returns the status and the JSON body.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut response = self
            .agent()
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &serde_json::to_vec(body).unwrap())
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut response = self.agent().get(&self.url(path)).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// `signet-ca users invite`; returns the token from the link.
    pub fn invite(&self, user: &str) -> String {
        let link = self.ca.ok(&["users", "invite", user, "--ttl", "10m"]);
        link.trim().rsplit('/').next().unwrap().to_owned()
    }

    /// Registers the soft token for `user` through /v1/enroll; returns the
    /// finish response.
    pub fn enroll(&mut self, user: &str) -> Value {
        let token = self.invite(user);
        let (status, begun) = self.post("/v1/enroll/begin", &json!({ "token": token }));
        assert_eq!(status, 200, "{begun}");
        let credential = self.register(&begun["webauthn"]);
        let (status, done) = self.post(
            "/v1/enroll/finish",
            &json!({ "ceremony": begun["ceremony"], "token": token, "credential": credential }),
        );
        assert_eq!(status, 200, "{done}");
        done
    }

    /// The soft token's answer to creation options (JSON).
    pub fn register(&mut self, options: &Value) -> Value {
        let ccr: CreationChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        let reg = self
            .token
            .do_registration(Url::parse(TEST_ORIGIN).unwrap(), ccr)
            .unwrap();
        serde_json::to_value(&reg).unwrap()
    }

    /// The soft token's assertion over request options (JSON), for `origin`.
    pub fn assert_with(&mut self, options: &Value, origin: &str) -> Value {
        let rcr: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        let assertion = self
            .token
            .do_authentication(Url::parse(origin).unwrap(), rcr)
            .unwrap();
        serde_json::to_value(&assertion).unwrap()
    }

    pub fn assert(&mut self, options: &Value) -> Value {
        self.assert_with(options, TEST_ORIGIN)
    }

    /// A YubiKey under this CA's trusted virtual root.
    pub fn device(&self, serial: u32) -> Device {
        device_under(&self.piv_root, serial)
    }

    /// A certificate request body.
    pub fn request(user: &str, slot: &SlotKey, principals: &[&str], ttl: u64) -> Value {
        json!({
            "user": user,
            "public_key": STANDARD.encode(&slot.spki),
            "attestation": slot.chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
            "principals": principals,
            "ttl_seconds": ttl,
        })
    }

    /// begin + touch + finish; returns (status, body) of finish.
    pub fn login(
        &mut self,
        user: &str,
        slot: &SlotKey,
        principals: &[&str],
        ttl: u64,
    ) -> (u16, Value) {
        let (status, begun) = self.post(
            "/v1/certs/begin",
            &Self::request(user, slot, principals, ttl),
        );
        if status != 200 {
            return (status, begun);
        }
        let assertion = self.assert(&begun["webauthn"]);
        self.post(
            "/v1/certs/finish",
            &json!({ "ceremony": begun["ceremony"], "assertion": assertion }),
        )
    }

    /// The data file of the CA.
    pub fn path(&self, name: &str) -> PathBuf {
        self.ca.path(name)
    }
}

/// A YubiKey attestation key under `root`.
pub fn device_under(root: &AttestationRoot, serial: u32) -> Device {
    let f9_key = SigningKey::generate_from_rng(&mut rand::rng());
    let f9_der = root.issue_device_ca(&f9_key, serial).unwrap();
    Device {
        serial,
        f9_key,
        f9_der,
    }
}

impl Device {
    /// A fresh P-256 key in slot 9a with the given policies, attested.
    pub fn slot_key(&self, pin_policy: u8, touch_policy: u8) -> SlotKey {
        let key = PrivateKey::generate(Algorithm::P256).unwrap();
        let spki = key.spki_der().unwrap();
        let slot = attest_slot(
            &self.f9_key,
            &self.f9_der,
            &key,
            AttestedFacts {
                slot: 0x9a,
                firmware: [5, 7, 4],
                serial: self.serial,
                pin_policy,
                touch_policy,
                form_factor: 0x01,
            },
        )
        .unwrap();
        SlotKey {
            key,
            spki,
            chain: vec![slot, self.f9_der.clone()],
        }
    }
}

/// `token`'s assertion over request options (JSON), for `origin`: for a
/// second security key, or a clone of the first.
pub fn assert_by(token: &mut SoftToken, options: &Value, origin: &str) -> Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    let assertion = token
        .do_authentication(Url::parse(origin).unwrap(), rcr)
        .unwrap();
    serde_json::to_value(&assertion).unwrap()
}

/// `token`'s answer to creation options (JSON), for the test origin.
pub fn register_by(token: &mut SoftToken, options: &Value) -> Value {
    let ccr: CreationChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    let reg = token
        .do_registration(Url::parse(TEST_ORIGIN).unwrap(), ccr)
        .unwrap();
    serde_json::to_value(&reg).unwrap()
}

impl TouchCa {
    /// Replaces `from` by `to` in the configuration file (before `serve`).
    pub fn configure(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.ca.config).unwrap();
        assert!(text.contains(from), "{from:?} not in the configuration");
        std::fs::write(&self.ca.config, text.replace(from, to)).unwrap();
    }

    /// The size of the log's latest checkpoint, from `GET /v1/health`.
    pub fn log_size(&self) -> u64 {
        let (status, body) = self.get("/v1/health");
        assert_eq!(status, 200, "{body}");
        let health: Value = serde_json::from_str(&body).unwrap();
        health["log"]["size"].as_u64().unwrap()
    }

    /// `signet-ca users show NAME --json`, through the running daemon.
    pub fn user(&self, name: &str) -> Value {
        serde_json::from_str(&self.ca.ok(&["users", "show", name, "--json"])).unwrap()
    }
}
