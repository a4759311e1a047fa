//! Progress reporting and cancellation for long jobs (scan, describe, index, propose, write, train).
//!
//! A job takes a [`CancelToken`] and a [`ProgressSink`]; it reports through a [`ProgressMeter`],
//! which computes rate and ETA and throttles updates so that a sink is never flooded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};

/// Shared flag that asks a running job to stop at the next safe point.
#[derive(Clone, Default, Debug)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// `Err(Error::Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// One progress report of a job.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProgressUpdate {
    /// The job: "scan", "describe", "index", "propose", "write", "train", ...
    pub job: String,
    /// The phase within the job, e.g. "walking" or "reading" for a scan.
    pub stage: String,
    /// Items finished in this stage.
    pub done: u64,
    /// Items in this stage, when known.
    pub total: Option<u64>,
    /// Items that failed so far (over the whole job).
    pub errors: u64,
    /// Items per second over the stage so far.
    pub rate: f64,
    /// Seconds left, when the total is known and the rate is positive.
    pub eta_s: Option<f64>,
    /// Set on the last update of the job.
    pub finished: bool,
    /// A short figure of the job's own, e.g. a training step's loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Receives progress updates. Implemented by the CLI's terminal line and the desktop shell's events.
pub trait ProgressSink: Send + Sync {
    fn update(&self, update: &ProgressUpdate);
}

/// Discards progress.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&self, _: &ProgressUpdate) {}
}

impl<F: Fn(&ProgressUpdate) + Send + Sync> ProgressSink for F {
    fn update(&self, update: &ProgressUpdate) {
        self(update)
    }
}

/// Tracks one job's counters and forwards throttled updates to a sink.
pub struct ProgressMeter<'a> {
    sink: &'a dyn ProgressSink,
    job: String,
    stage: String,
    stage_started: Instant,
    last_sent: Option<Instant>,
    interval: Duration,
    pub done: u64,
    pub total: Option<u64>,
    pub errors: u64,
    pub detail: Option<String>,
}

impl<'a> ProgressMeter<'a> {
    pub fn new(sink: &'a dyn ProgressSink, job: &str) -> Self {
        ProgressMeter {
            sink,
            job: job.to_string(),
            stage: String::new(),
            stage_started: Instant::now(),
            last_sent: None,
            interval: Duration::from_millis(100),
            done: 0,
            total: None,
            errors: 0,
            detail: None,
        }
    }

    /// Starts a new stage; counters other than `errors` restart.
    pub fn stage(&mut self, stage: &str, total: Option<u64>) {
        self.stage = stage.to_string();
        self.stage_started = Instant::now();
        self.done = 0;
        self.total = total;
        self.detail = None;
        self.send(true, false);
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        self.send(false, false);
    }

    pub fn error(&mut self) {
        self.errors += 1;
        self.send(false, false);
    }

    pub fn finish(&mut self) {
        self.send(true, true);
    }

    pub fn snapshot(&self, finished: bool) -> ProgressUpdate {
        let elapsed = self.stage_started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.done as f64 / elapsed
        } else {
            0.0
        };
        let eta_s = match self.total {
            Some(total) if rate > 0.0 && total >= self.done => {
                Some((total - self.done) as f64 / rate)
            }
            _ => None,
        };
        ProgressUpdate {
            job: self.job.clone(),
            stage: self.stage.clone(),
            done: self.done,
            total: self.total,
            errors: self.errors,
            rate,
            eta_s,
            finished,
            detail: self.detail.clone(),
        }
    }

    fn send(&mut self, force: bool, finished: bool) {
        let now = Instant::now();
        if !force
            && self
                .last_sent
                .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            return;
        }
        self.last_sent = Some(now);
        self.sink.update(&self.snapshot(finished));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn meter_reports_stages_rate_and_finish() {
        let seen = Mutex::new(Vec::<ProgressUpdate>::new());
        let sink = |u: &ProgressUpdate| seen.lock().unwrap().push(u.clone());
        {
            let mut m = ProgressMeter::new(&sink, "scan");
            m.stage("reading", Some(10));
            for _ in 0..10 {
                m.advance(1);
            }
            m.error();
            m.finish();
        }
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.first().unwrap().stage, "reading");
        let last = seen.last().unwrap();
        assert!(last.finished);
        assert_eq!((last.done, last.total, last.errors), (10, Some(10), 1));
        assert_eq!(last.eta_s, Some(0.0));
        // Throttled: far fewer than one update per item.
        assert!(seen.len() < 6, "{}", seen.len());
    }

    #[test]
    fn cancel_token_is_shared() {
        let t = CancelToken::new();
        let t2 = t.clone();
        assert!(t.check().is_ok());
        t2.cancel();
        assert!(matches!(t.check(), Err(Error::Cancelled)));
    }
}
