//! The feed client: the proxy's live copy of the CA's view.
//!
//! The proxy connects to the CA's proxy listener (`ca.feed_url`, mutual
//! TLS with its own certificate, the CA checked against `ca.root` only),
//! reads `GET /v1/proxy/feed` (JSON lines: a snapshot, then a snapshot per
//! change and heartbeats between) and keeps the latest view in a [`Feed`]
//! that tunnels decide with. When the stream breaks it reconnects with
//! backoff and resyncs from the fresh connection's first snapshot. Until
//! the first snapshot the view is `None`, which the decision refuses
//! (fail closed); after it, the last view is kept while reconnecting so
//! a CA restart does not drop every engineer's session, and a heartbeat
//! that says the CA is ahead of the view forces a resync.

use std::io::{BufRead, BufReader, Read as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use signet_api::proxy::{FeedLineError, FeedMessage, ProxyView, FEED_PATH, MAX_FEED_LINE};

use crate::config::Config;

/// Silence after which the stream counts as dead: the CA sends a
/// heartbeat every 5 s, so three missed ones.
pub const SILENCE: Duration = Duration::from_secs(15);

/// The longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a feed connection ended (each ends in a reconnection).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The proxy's key or certificate, or the CA root, cannot be used.
    #[error("{0}")]
    Identity(String),
    /// The CA could not be reached, or the stream broke.
    #[error("the CA feed at {url}: {message}")]
    Transport {
        /// Where.
        url: String,
        /// Why.
        message: String,
    },
    /// The CA answered with an error status (a revoked or unknown proxy
    /// certificate gets 403).
    #[error("the CA feed at {url} answered HTTP {status}: {message}")]
    Refused {
        /// Where.
        url: String,
        /// The status.
        status: u16,
        /// The CA's words.
        message: String,
    },
    /// A line that is not a feed message.
    #[error("the CA feed: {0}")]
    Line(#[from] FeedLineError),
    /// A connection's first message was not a snapshot.
    #[error("the CA feed did not start with a snapshot")]
    NoSnapshot,
    /// A heartbeat reports entries the last snapshot does not reflect.
    #[error("the CA feed is at log size {ca}, the view at {view}: resyncing")]
    Behind {
        /// The CA's log size.
        ca: u64,
        /// The view's.
        view: u64,
    },
    /// The CA closed the stream.
    #[error("the CA closed the feed")]
    Closed,
}

#[derive(Default)]
struct Inner {
    view: Option<Arc<ProxyView>>,
    generation: u64,
    last_heard: Option<Instant>,
    received: Option<Instant>,
    connected: bool,
}

/// The latest view from the CA, shared by the feed thread and every tunnel.
#[derive(Default)]
pub struct Feed {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Feed {
    /// A feed that has never synced.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; the
        // view is replaced whole, so it is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current view; `None` before the first snapshot (every tunnel
    /// is refused then).
    pub fn view(&self) -> Option<Arc<ProxyView>> {
        self.lock().view.clone()
    }

    /// Bumped at each new snapshot: tunnels compare it to recheck.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// When the CA was last heard from (snapshot or heartbeat).
    pub fn last_heard(&self) -> Option<Instant> {
        self.lock().last_heard
    }

    /// When the current view arrived (the clock the lock propagation
    /// delay is measured from).
    pub fn received(&self) -> Option<Instant> {
        self.lock().received
    }

    /// How long the CA has been silent, if it was ever heard: past the
    /// staleness limit new tunnels are refused.
    pub fn silent_for(&self) -> Option<Duration> {
        self.lock().last_heard.map(|t| t.elapsed())
    }

    /// Whether a feed stream is open now.
    pub fn connected(&self) -> bool {
        self.lock().connected
    }

    /// Marks the stream open or closed (the feed loop does).
    pub fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
    }

    /// Waits until the generation differs from `seen` or `timeout`
    /// passes; returns the generation then.
    pub fn wait_for_change(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |inner| inner.generation == seen)
            .unwrap_or_else(|p| p.into_inner());
        guard.generation
    }

    /// Applies one message; `first` is true for a connection's first line,
    /// which must be a snapshot (the resync).
    pub fn apply(&self, message: FeedMessage, first: bool) -> Result<(), FeedError> {
        let mut inner = self.lock();
        match message {
            FeedMessage::Snapshot { view, .. } => {
                let now = Instant::now();
                inner.view = Some(Arc::new(view));
                inner.generation += 1;
                inner.last_heard = Some(now);
                inner.received = Some(now);
                drop(inner);
                self.changed.notify_all();
                Ok(())
            }
            FeedMessage::Heartbeat { .. } if first => Err(FeedError::NoSnapshot),
            FeedMessage::Heartbeat { log_size, .. } => {
                let view = inner.view.as_ref().map_or(0, |v| v.log_size);
                if log_size > view {
                    return Err(FeedError::Behind { ca: log_size, view });
                }
                inner.last_heard = Some(Instant::now());
                Ok(())
            }
        }
    }
}

/// Reads one connection's lines into `feed` until the stream ends or
/// `stop` is set. Lines are bounded by [`MAX_FEED_LINE`].
pub fn read_stream<R: BufRead>(
    feed: &Feed,
    mut reader: R,
    stop: &AtomicBool,
) -> Result<(), FeedError> {
    let mut first = true;
    let mut line = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        let limit = u64::try_from(MAX_FEED_LINE).unwrap_or(u64::MAX) + 1;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| FeedError::Transport {
                url: String::new(),
                message: e.to_string(),
            })?;
        if n == 0 {
            return Err(FeedError::Closed);
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_FEED_LINE {
                return Err(FeedLineError::TooLong(line.len()).into());
            }
            return Err(FeedError::Closed);
        }
        feed.apply(FeedMessage::parse_line(&line)?, first)?;
        first = false;
    }
    Ok(())
}

/// The wait before reconnection attempt `attempt` (0 for the first
/// retry): half a second, doubling, at most [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

fn pem_der(path: &std::path::Path) -> Result<Vec<u8>, FeedError> {
    let pem =
        std::fs::read(path).map_err(|e| FeedError::Identity(format!("{}: {e}", path.display())))?;
    let (_, der) = der::pem::decode_vec(&pem)
        .map_err(|e| FeedError::Identity(format!("{}: {e}", path.display())))?;
    Ok(der)
}

/// Opens the feed with the proxy's current key and certificate (read
/// afresh each time, so a renewal is picked up on the next reconnect).
pub fn connect(config: &Config) -> Result<impl BufRead + Send + 'static, FeedError> {
    let url = format!("{}{FEED_PATH}", config.ca.feed_url.trim_end_matches('/'));
    let root = pem_der(&config.ca.root)?;
    let key_path = &config.identity.key;
    let cert_path = &config.identity.certificate;
    let key_pem = std::fs::read(key_path)
        .map_err(|e| FeedError::Identity(format!("{}: {e}", key_path.display())))?;
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| FeedError::Identity(format!("{}: {e}", cert_path.display())))?;
    let client = ureq::tls::ClientCert::new_with_certs(
        &[ureq::tls::Certificate::from_pem(&cert_pem)
            .map_err(|e| FeedError::Identity(format!("{}: {e}", cert_path.display())))?],
        ureq::tls::PrivateKey::from_pem(&key_pem)
            .map_err(|e| FeedError::Identity(format!("{}: {e}", key_path.display())))?,
    );
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![
            ureq::tls::Certificate::from_der(&root).to_owned(),
        ])))
        .client_cert(Some(client))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(SILENCE))
        .build()
        .into();
    let transport = |message: String| FeedError::Transport {
        url: url.clone(),
        message,
    };
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(FeedError::Refused {
            url,
            status,
            message,
        });
    }
    Ok(BufReader::new(response.into_body().into_reader()))
}

/// Keeps `feed` current until `stop` is set: connects, reads, and on any
/// failure waits [`backoff`] and reconnects (the attempt count resets
/// after a connection that delivered a snapshot). Each failure is passed
/// to `report` (the log).
pub fn run(config: &Config, feed: &Feed, stop: &AtomicBool, report: &dyn Fn(&FeedError)) {
    let mut attempt = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let before = feed.generation();
        let result = connect(config).and_then(|reader| {
            feed.set_connected(true);
            let read = read_stream(feed, reader, stop);
            feed.set_connected(false);
            read
        });
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = result {
            report(&e);
        }
        if feed.generation() != before {
            attempt = 0;
        }
        let wait = backoff(attempt);
        attempt = attempt.saturating_add(1);
        let until = Instant::now() + wait;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100).min(wait));
        }
    }
}
