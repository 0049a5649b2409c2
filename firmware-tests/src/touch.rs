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
