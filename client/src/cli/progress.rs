//! A one-line progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// Redraws at most this often.
const EVERY: Duration = Duration::from_millis(100);

pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A bar that draws if stderr is a terminal and `quiet` is not set.
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
            drawn: false,
        }
    }

    pub(crate) fn update(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < EVERY) && done < total {
            return;
        }
        self.last = Some(now);
        const WIDTH: u64 = 30;
        let filled = (done.saturating_mul(WIDTH))
            .checked_div(total)
            .unwrap_or(WIDTH);
        let pct = (done.saturating_mul(100)).checked_div(total).unwrap_or(100);
        let secs = (now - self.started).as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a failed write to the terminal is ignored.
        let _ = write!(
            err,
            "\r[{bar}] {pct:>3}% {done}/{total} entries, {:.0}/s ",
            rate
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clears the bar's line.
    pub(crate) fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{:80}\r", "");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
