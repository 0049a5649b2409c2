//! Colours for the status lines people read: a green ✓ for what worked,
//! red for errors, bold yellow for what the person must do now (the touch)
//! and for warnings.
//!
//! Only on a terminal: never when the stream is a pipe or a file (scripts,
//! `signet agent --daemon`'s log), never with `NO_COLOR` set to anything
//! (<https://no-color.org>), never with `TERM=dumb`, and never in a
//! command run with `--json`, whose output programs read.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

/// Set once by a command run with `--json`: no colour anywhere after.
static PLAIN: AtomicBool = AtomicBool::new(false);

/// Turns colour off for the rest of the process (`--json`).
pub fn set_plain() {
    PLAIN.store(true, Ordering::Relaxed);
}

/// Whether to colour a stream: a terminal, `NO_COLOR` unset (or empty, as
/// the convention says), `TERM` not `dumb`, and not `--json`.
pub fn colour_wanted(
    is_terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
    json: bool,
) -> bool {
    is_terminal
        && no_color.is_none_or(|v| v.is_empty())
        && term.is_none_or(|t| t != "dumb")
        && !json
}

fn wanted(is_terminal: bool) -> bool {
    colour_wanted(
        is_terminal,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
        PLAIN.load(Ordering::Relaxed),
    )
}

/// Paints text for one stream, or leaves it plain.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    on: bool,
}

impl Painter {
    /// For stderr (progress, prompts, warnings, errors).
    pub fn stderr() -> Self {
        Self {
            on: wanted(std::io::stderr().is_terminal()),
        }
    }

    /// For stdout (summaries).
    pub fn stdout() -> Self {
        Self {
            on: wanted(std::io::stdout().is_terminal()),
        }
    }

    /// A painter that never colours (tests, files).
    pub fn plain() -> Self {
        Self { on: false }
    }

    /// A painter that always colours (tests).
    pub fn coloured() -> Self {
        Self { on: true }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.on {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    /// `✓ text`, the mark in green: something done.
    pub fn ok(&self, text: &str) -> String {
        format!(
            "{} {text}",
            self.paint(
                Style::new().fg_color(Some(AnsiColor::Green.into())).bold(),
                "✓"
            )
        )
    }

    /// Red: an error.
    pub fn error(&self, text: &str) -> String {
        self.paint(
            Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            text,
        )
    }

    /// Bold yellow: what the person must do now (touch the key), or a warning.
    pub fn attention(&self, text: &str) -> String {
        self.paint(
            Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold(),
            text,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_dumb_or_json() {
        let xterm = Some(OsStr::new("xterm-256color"));
        assert!(colour_wanted(true, None, xterm, false));
        assert!(colour_wanted(true, None, None, false));
        assert!(!colour_wanted(false, None, xterm, false), "a pipe");
        assert!(!colour_wanted(true, Some(OsStr::new("1")), xterm, false));
        assert!(
            !colour_wanted(true, Some(OsStr::new("false")), xterm, false),
            "any value"
        );
        assert!(
            colour_wanted(true, Some(OsStr::new("")), xterm, false),
            "empty: unset"
        );
        assert!(!colour_wanted(true, None, Some(OsStr::new("dumb")), false));
        assert!(!colour_wanted(true, None, xterm, true), "--json");
    }

    #[test]
    fn plain_text_has_no_escapes_and_colour_wraps_it() {
        let plain = Painter::plain();
        assert_eq!(plain.ok("Logged in"), "✓ Logged in");
        assert_eq!(plain.error("error:"), "error:");
        assert_eq!(plain.attention("Touch"), "Touch");
        let coloured = Painter::coloured();
        let ok = coloured.ok("Logged in");
        assert!(ok.starts_with("\u{1b}[") && ok.contains("32m✓"), "{ok:?}");
        assert!(ok.ends_with("Logged in"), "{ok:?}");
        let err = coloured.error("error:");
        assert!(err.contains("31m") && err.ends_with("\u{1b}[0m"), "{err:?}");
        assert!(coloured.attention("Touch").contains("33m"));
    }
}
