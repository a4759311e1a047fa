//! Progress on standard error: one rewritten line on a terminal, occasional lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pinpoint::progress::{ProgressSink, ProgressUpdate};

pub struct TerminalProgress {
    enabled: bool,
    tty: bool,
    state: Mutex<State>,
}

struct State {
    last_line: Option<Instant>,
    last_stage: String,
    drawn: bool,
}

impl TerminalProgress {
    pub fn new(enabled: bool) -> Self {
        TerminalProgress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                last_line: None,
                last_stage: String::new(),
                drawn: false,
            }),
        }
    }

    /// Removes the progress line before the result is printed.
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        if self.tty && s.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            s.drawn = false;
        }
    }
}

pub fn describe(u: &ProgressUpdate) -> String {
    let mut line = format!("{}: {} {}", u.job, u.stage, u.done);
    if let Some(total) = u.total {
        let pct = if total > 0 {
            u.done as f64 * 100.0 / total as f64
        } else {
            100.0
        };
        line.push_str(&format!("/{total} ({pct:.0}%)"));
    }
    if u.rate >= 10.0 {
        line.push_str(&format!(", {:.0}/s", u.rate));
    } else if u.rate > 0.0 {
        // Slow jobs (training steps, large images): a rounded "0/s" would say nothing.
        line.push_str(&format!(", {:.2}/s", u.rate));
    }
    if let Some(eta) = u.eta_s.filter(|_| !u.finished) {
        line.push_str(&format!(", ETA {}", format_duration(eta)));
    }
    if u.errors > 0 {
        line.push_str(&format!(", {} errors", u.errors));
    }
    if let Some(detail) = &u.detail {
        line.push_str(&format!(", {detail}"));
    }
    line
}

pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl ProgressSink for TerminalProgress {
    fn update(&self, u: &ProgressUpdate) {
        if !self.enabled {
            return;
        }
        let mut s = self.state.lock().unwrap();
        let line = describe(u);
        if self.tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            s.drawn = true;
        } else {
            // Logs get a line per stage and at most one every 5 seconds.
            let due = s
                .last_line
                .is_none_or(|t| t.elapsed() > Duration::from_secs(5));
            if due || s.last_stage != u.stage || u.finished {
                eprintln!("{line}");
                s.last_line = Some(Instant::now());
                s.last_stage = u.stage.clone();
            }
        }
    }
}
