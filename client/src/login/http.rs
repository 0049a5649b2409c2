//! The CA's HTTPS API as the client uses it: JSON over TLS, checked
//! against the CA root the engineer gave (`--ca-cert`) or pinned, and the
//! API's errors turned into [`LoginError`]s a person can act on.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use signet_api::certs::KeyPolicyRequired;
use signet_api::ErrorCode;

use super::LoginError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a finish call (HSM signatures and a durable log append).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read (a finish response is a few KiB).
const MAX_BODY: u64 = 1 << 20;

/// A connection to one CA.
pub(crate) struct CaClient {
    base: String,
    agent: ureq::Agent,
}

/// The CA's base URL from `--proxy`: `HOST:PORT` (HTTPS implied) or a full
/// `https://` URL. Plain HTTP is refused.
pub fn base_url(proxy: &str) -> Result<String, LoginError> {
    let proxy = proxy.trim().trim_end_matches('/');
    let bad = |why: &str| LoginError::Usage(format!("--proxy {proxy:?}: {why}"));
    let url = if let Some(rest) = proxy.strip_prefix("https://") {
        format!("https://{rest}")
    } else if proxy.contains("://") {
        return Err(bad("only https:// is allowed"));
    } else {
        format!("https://{proxy}")
    };
    let host = url.trim_start_matches("https://");
    if host.is_empty()
        || host.contains('/')
        || host.contains('@')
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("expected HOST:PORT or https://HOST:PORT"));
    }
    Ok(url)
}

/// The WebAuthn origin for a CA base URL: the URL itself (scheme, host and
/// port), without the port when it is 443. The security key signs it, so
/// the CA can tell which site the engineer's client talked to.
pub fn origin_of(base: &str) -> String {
    base.strip_suffix(":443").unwrap_or(base).to_owned()
}

/// The API's error body, read leniently: a field this client does not know
/// must not hide the CA's code and message.
#[derive(serde::Deserialize)]
struct WireError {
    code: String,
    message: String,
    /// With `key_policy_too_weak`: what would qualify.
    #[serde(default)]
    key_policy: Option<serde_json::Value>,
}

/// The error a refusal becomes: a key too weak for the roles, when the CA
/// said what would qualify in a form this client reads; else the code and
/// message as they came.
fn refusal(err: WireError) -> LoginError {
    if err.code == ErrorCode::KeyPolicyTooWeak.as_str() {
        if let Some(required) = err
            .key_policy
            .and_then(|v| serde_json::from_value::<KeyPolicyRequired>(v).ok())
        {
            return LoginError::KeyPolicyTooWeak {
                message: err.message,
                required,
            };
        }
    }
    LoginError::Refused {
        code: err.code,
        message: err.message,
    }
}

impl CaClient {
    /// A client for `base` trusting only `root_pem` when given, else the
    /// public web PKI roots.
    pub(crate) fn new(base: &str, root_pem: Option<&str>) -> Result<Self, LoginError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = root_pem {
            let roots = parse_roots(pem)?;
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            base: base.to_owned(),
            agent: config.into(),
        })
    }

    /// The base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: ureq::Error) -> LoginError {
        let detail = e.to_string();
        let tls = matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_))
            || detail.contains("certificate")
            || detail.contains("UnknownIssuer");
        if tls {
            LoginError::TlsUntrusted {
                url: self.base.clone(),
                detail,
            }
        } else {
            LoginError::CaUnreachable {
                url: self.base.clone(),
                detail,
            }
        }
    }

    fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<T, LoginError> {
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| LoginError::CaUnreachable {
                url: self.base.clone(),
                detail: format!("reading the answer to {path}: {e}"),
            })?;
        if status == 200 {
            return serde_json::from_str(&text).map_err(|e| LoginError::CaAnswer {
                what: path.to_owned(),
                detail: e.to_string(),
            });
        }
        match serde_json::from_str::<WireError>(&text) {
            Ok(err) => Err(refusal(err)),
            Err(_) => Err(LoginError::CaAnswer {
                what: path.to_owned(),
                detail: format!("HTTP {status} without an API error body"),
            }),
        }
    }

    /// `GET base+path`, JSON.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, LoginError> {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| self.unreachable(e))?;
        self.read(path, response)
    }

    /// `POST base+path` with a JSON body; JSON answer.
    pub(crate) fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, LoginError> {
        let bytes = serde_json::to_vec(body).map_err(|e| LoginError::Internal(e.to_string()))?;
        let response = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(&bytes[..])
            .map_err(|e| self.unreachable(e))?;
        self.read(path, response)
    }
}

/// Every certificate in a PEM text; at least one.
fn parse_roots(pem: &str) -> Result<Vec<ureq::tls::Certificate<'static>>, LoginError> {
    let mut roots = Vec::new();
    for block in pem_blocks(pem) {
        let (label, der) = der::pem::decode_vec(block.as_bytes())
            .map_err(|e| LoginError::Usage(format!("the CA root is not valid PEM: {e}")))?;
        if label == "CERTIFICATE" {
            roots.push(ureq::tls::Certificate::from_der(&der).to_owned());
        }
    }
    if roots.is_empty() {
        return Err(LoginError::Usage(
            "the CA root file holds no PEM CERTIFICATE".into(),
        ));
    }
    Ok(roots)
}

/// The PEM blocks of a text, each from its BEGIN to its END line.
pub(crate) fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proxy_addresses() {
        assert_eq!(
            base_url("ca.example.com:8443").unwrap(),
            "https://ca.example.com:8443"
        );
        assert_eq!(
            base_url("https://ca.example.com/").unwrap(),
            "https://ca.example.com"
        );
        assert!(base_url("http://ca.example.com").is_err());
        assert!(base_url("ca.example.com/evil").is_err());
        assert!(base_url("user@ca.example.com").is_err());
        assert!(base_url("").is_err());
        assert_eq!(
            origin_of("https://ca.example.com:443"),
            "https://ca.example.com"
        );
        assert_eq!(
            origin_of("https://localhost:8441"),
            "https://localhost:8441"
        );
    }

    #[test]
    fn a_weak_key_refusal_is_read_with_what_qualifies() {
        let body = r#"{"code":"key_policy_too_weak","message":"too weak",
            "key_policy":{"hardware_key":"touch_and_pin","pin_policies":["once","always"],
            "touch_policies":["always","cached"],"key_pin_policy":"never","key_touch_policy":"always"}}"#;
        match refusal(serde_json::from_str(body).unwrap()) {
            LoginError::KeyPolicyTooWeak { message, required } => {
                assert_eq!(message, "too weak");
                assert_eq!(required.hardware_key, "touch_and_pin");
            }
            other => panic!("{other:?}"),
        }
        // Without a readable key_policy it stays a plain refusal (exit 6
        // with the CA's words), never a panic or a lost message.
        for body in [
            r#"{"code":"key_policy_too_weak","message":"too weak"}"#,
            r#"{"code":"key_policy_too_weak","message":"too weak","key_policy":{"hardware_key":7}}"#,
            r#"{"code":"not_allowed","message":"no","something_new":1}"#,
        ] {
            match refusal(serde_json::from_str(body).unwrap()) {
                LoginError::Refused { message, .. } => assert!(!message.is_empty()),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn roots_must_be_certificates() {
        assert!(parse_roots("nothing here").is_err());
        assert!(
            parse_roots("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
    }
}
