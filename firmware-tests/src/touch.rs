//! The touch sensor of the virtual key.
//!
//! A real YubiKey blinks and waits (about 15 s) for a finger when a key with a
//! touch policy is used; tests need to say what that finger does. By default a
//! touch is approved at once. A test holding a [`TouchControl`] can deny
//! touches, delay them (to exercise timeouts), or require an explicit
//! [`TouchControl::touch`] call. The binary exposes the same through a small
//! control file (see [`TouchControl::with_control_file`]).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a real YubiKey waits for a touch before failing the command.
pub const TOUCH_TIMEOUT: Duration = Duration::from_secs(15);

/// What the finger does when the key asks for a touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchMode {
    /// Touch at once (the default).
    Approve,
    /// Never touch: the command fails with `6982` (at once, not after 15 s,
    /// so tests stay fast).
    Deny,
    /// Touch after this delay; longer than `timeout` means the command fails.
    Delay(Duration),
    /// Wait for [`TouchControl::touch`] for at most this long.
    Manual(Duration),
}

#[derive(Debug)]
struct Inner {
    mode: TouchMode,
    /// Touches given with [`TouchControl::touch`] not yet consumed.
    pending: u32,
    /// How many touches the card asked for.
    requests: u64,
    /// How many of them were approved.
    approved: u64,
}

/// Shared handle on the virtual touch sensor; clones control the same sensor.
#[derive(Debug, Clone)]
pub struct TouchControl {
    shared: Arc<(Mutex<Inner>, Condvar)>,
    control_file: Option<PathBuf>,
    timeout: Duration,
}

impl Default for TouchControl {
    fn default() -> Self {
        Self::new()
    }
}

impl TouchControl {
    /// A sensor that approves every touch.
    pub fn new() -> Self {
        Self {
            shared: Arc::new((
                Mutex::new(Inner {
                    mode: TouchMode::Approve,
                    pending: 0,
                    requests: 0,
                    approved: 0,
                }),
                Condvar::new(),
            )),
            control_file: None,
            timeout: TOUCH_TIMEOUT,
        }
    }

    /// Reads the mode from `path` at every touch request, so a separate
    /// process can steer the binary. The file holds one line: `approve`,
    /// `deny` or `delay <milliseconds>`; a missing file means `approve`.
    pub fn with_control_file(mut self, path: PathBuf) -> Self {
        self.control_file = Some(path);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a test thread panicked while holding it;
        // the counters are still meaningful.
        self.shared
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets what happens at the next touch requests.
    pub fn set_mode(&self, mode: TouchMode) {
        self.lock().mode = mode;
        self.shared.1.notify_all();
    }

    /// The current mode.
    pub fn mode(&self) -> TouchMode {
        self.lock().mode
    }

    /// Touches the key once (for [`TouchMode::Manual`]).
    pub fn touch(&self) {
        self.lock().pending += 1;
        self.shared.1.notify_all();
    }

    /// How many times the card asked for a touch.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// How many touches were approved.
    pub fn approved(&self) -> u64 {
        self.lock().approved
    }

    fn file_mode(&self) -> Option<TouchMode> {
        let path = self.control_file.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        parse_mode(&text)
    }

    /// Called by the applet when an operation needs a touch; blocks like the
    /// real key does and says whether the touch happened in time.
    pub fn request(&self) -> bool {
        let file_mode = self.file_mode();
        let mut inner = self.lock();
        inner.requests += 1;
        let mode = file_mode.unwrap_or(inner.mode);
        let approved = match mode {
            TouchMode::Approve => true,
            TouchMode::Deny => false,
            TouchMode::Delay(delay) => {
                drop(inner);
                if delay >= self.timeout {
                    std::thread::sleep(self.timeout);
                    inner = self.lock();
                    false
                } else {
                    std::thread::sleep(delay);
                    inner = self.lock();
                    true
                }
            }
            TouchMode::Manual(timeout) => {
                let deadline = Instant::now() + timeout.min(self.timeout);
                loop {
                    if inner.pending > 0 {
                        inner.pending -= 1;
                        break true;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    inner = self
                        .shared
                        .1
                        .wait_timeout(inner, deadline - now)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                }
            }
        };
        if approved {
            inner.approved += 1;
        }
        approved
    }
}

/// How a touch request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    /// The finger came in time.
    Approved,
    /// The user refused (a key with a deny gesture, or [`TouchMode::Deny`]).
    Denied,
    /// Nobody touched before the key gave up.
    TimedOut,
}

/// A touch request in progress, for applets that answer "still waiting"
/// (the FIDO applet's NFCCTAP_GETRESPONSE keep-alive) instead of blocking.
#[derive(Debug, Clone)]
pub struct PendingTouch {
    mode: TouchMode,
    started: Instant,
    deadline: Instant,
}

impl TouchControl {
    /// Starts a touch request without waiting: the card lights up. The mode
    /// is fixed now (a control file is read once per request).
    pub fn begin(&self) -> PendingTouch {
        let file_mode = self.file_mode();
        let mut inner = self.lock();
        inner.requests += 1;
        let mode = file_mode.unwrap_or(inner.mode);
        let started = Instant::now();
        let limit = match mode {
            TouchMode::Manual(timeout) => timeout.min(self.timeout),
            _ => self.timeout,
        };
        PendingTouch {
            mode,
            started,
            deadline: started + limit,
        }
    }

    /// Waits at most `max` for `pending` to end; `None` means still waiting.
    pub fn wait(&self, pending: &PendingTouch, max: Duration) -> Option<TouchOutcome> {
        let until = (Instant::now() + max).min(pending.deadline);
        let mut inner = self.lock();
        let outcome = loop {
            let now = Instant::now();
            let decided = match pending.mode {
                TouchMode::Approve => Some(TouchOutcome::Approved),
                TouchMode::Deny => Some(TouchOutcome::Denied),
                TouchMode::Delay(delay) if delay < self.timeout => {
                    (now >= pending.started + delay).then_some(TouchOutcome::Approved)
                }
                TouchMode::Delay(_) => None,
                TouchMode::Manual(_) if inner.pending > 0 => {
                    inner.pending -= 1;
                    Some(TouchOutcome::Approved)
                }
                TouchMode::Manual(_) => None,
            };
            if decided.is_some() {
                break decided;
            }
            if now >= pending.deadline {
                break Some(TouchOutcome::TimedOut);
            }
            if now >= until {
                break None;
            }
            let next = match pending.mode {
                TouchMode::Delay(delay) if delay < self.timeout => {
                    (pending.started + delay).min(until)
                }
                _ => until,
            };
            inner = self
                .shared
                .1
                .wait_timeout(inner, next.saturating_duration_since(now))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        };
        if outcome == Some(TouchOutcome::Approved) {
            inner.approved += 1;
        }
        outcome
    }

    /// Asks for a touch and blocks until it is given, refused or timed out.
    pub fn request_outcome(&self) -> TouchOutcome {
        let pending = self.begin();
        loop {
            if let Some(outcome) = self.wait(&pending, Duration::from_secs(1)) {
                return outcome;
            }
        }
    }
}

/// Parses a control-file line (`approve`, `deny`, `delay <ms>`).
pub fn parse_mode(text: &str) -> Option<TouchMode> {
    let mut words = text.split_whitespace();
    match words.next()? {
        "approve" => Some(TouchMode::Approve),
        "deny" => Some(TouchMode::Deny),
        "delay" => {
            let ms: u64 = words.next()?.parse().ok()?;
            Some(TouchMode::Delay(Duration::from_millis(ms)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let t = TouchControl::new();
        assert!(t.request());
        t.set_mode(TouchMode::Deny);
        assert!(!t.request());
        t.set_mode(TouchMode::Manual(Duration::from_millis(50)));
        assert!(!t.request());
        t.touch();
        assert!(t.request());
        assert_eq!((t.requests(), t.approved()), (4, 2));
    }

    #[test]
    fn manual_touch_from_another_thread() {
        let t = TouchControl::new();
        t.set_mode(TouchMode::Manual(Duration::from_secs(5)));
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.request());
        std::thread::sleep(Duration::from_millis(50));
        t.touch();
        assert!(h.join().unwrap());
    }

    #[test]
    fn outcomes_and_polling() {
        let t = TouchControl::new();
        assert_eq!(t.request_outcome(), TouchOutcome::Approved);
        t.set_mode(TouchMode::Deny);
        assert_eq!(t.request_outcome(), TouchOutcome::Denied);
        t.set_mode(TouchMode::Manual(Duration::from_millis(30)));
        assert_eq!(t.request_outcome(), TouchOutcome::TimedOut);
        t.set_mode(TouchMode::Manual(Duration::from_secs(5)));
        let pending = t.begin();
        assert_eq!(t.wait(&pending, Duration::ZERO), None);
        t.touch();
        assert_eq!(
            t.wait(&pending, Duration::from_secs(1)),
            Some(TouchOutcome::Approved)
        );
        assert_eq!((t.requests(), t.approved()), (4, 2));
    }

    #[test]
    fn control_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("touch");
        let t = TouchControl::new().with_control_file(path.clone());
        assert!(t.request());
        std::fs::write(&path, "deny\n").unwrap();
        assert!(!t.request());
        std::fs::write(&path, "delay 10").unwrap();
        assert!(t.request());
        assert_eq!(parse_mode("bogus"), None);
    }
}
