//! Runs the engine's long jobs one at a time on a worker thread, persisting each job in the
//! catalog so that queued and interrupted jobs resume when the app starts again.
//!
//! Pausing stops a job at the engine's next safe point and keeps it; resuming queues it again, and
//! the engine skips the work already done. Cancelling stops it for good.
//!
//! A job that panics is contained: it is marked failed with the panic's message, the worker keeps
//! serving, and the job is not resumed at the next start (it was not interrupted; it broke) until
//! the user resumes it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;
use pinpoint::catalog::JobRow;
use pinpoint::jobs::{self, JobSpec, ModelSource};
use pinpoint::progress::{CancelToken, ProgressUpdate};
use pinpoint::Catalog;

use crate::views::JobView;

/// Where the runner reports: the app turns these into `job` and `catalog-changed` events.
pub trait JobEvents: Send + Sync + 'static {
    fn job(&self, job: &JobView);
    fn catalog_changed(&self, what: &str);
}

struct Running {
    id: i64,
    cancel: CancelToken,
    /// Set when the stop was a pause, not a cancel.
    pausing: bool,
}

pub struct JobRunner {
    catalog_path: PathBuf,
    queue: Sender<i64>,
    running: Arc<Mutex<Option<Running>>>,
}

impl JobRunner {
    /// Starts the worker and queues the jobs that were queued or running when the app last stopped.
    pub fn start(
        catalog_path: PathBuf,
        models: Arc<dyn ModelSource + Send>,
        events: Arc<dyn JobEvents>,
    ) -> pinpoint::Result<JobRunner> {
        let (tx, rx) = unbounded();
        let running = Arc::new(Mutex::new(None));
        let resumed = Catalog::open(&catalog_path)?.requeue_interrupted_jobs()?;
        for j in &resumed {
            tx.send(j.id).expect("the receiver is alive");
        }
        let worker = Worker {
            catalog_path: catalog_path.clone(),
            models,
            events,
            running: running.clone(),
        };
        std::thread::Builder::new()
            .name("pinpoint-jobs".into())
            .spawn(move || worker.serve(rx))
            .map_err(|e| pinpoint::Error::invalid(format!("cannot start the job thread: {e}")))?;
        Ok(JobRunner {
            catalog_path,
            queue: tx,
            running,
        })
    }

    pub fn submit(&self, spec: &JobSpec) -> pinpoint::Result<JobRow> {
        let catalog = Catalog::open(&self.catalog_path)?;
        let params = serde_json::to_value(spec).expect("a job spec serialises");
        let row = catalog.add_job(spec.kind(), &params)?;
        if self.queue.send(row.id).is_err() {
            let reason = "the job runner has stopped: restart Pinpoint to run jobs";
            catalog.set_job_state(row.id, "failed", Some(reason))?;
            return Err(pinpoint::Error::invalid(reason));
        }
        Ok(row)
    }

    /// Cancels a queued, paused or running job.
    pub fn cancel(&self, id: i64) -> pinpoint::Result<()> {
        self.stop(id, false)
    }

    /// Pauses a queued or running job: it keeps its place and resumes with `resume`.
    pub fn pause(&self, id: i64) -> pinpoint::Result<()> {
        self.stop(id, true)
    }

    fn stop(&self, id: i64, pause: bool) -> pinpoint::Result<()> {
        let catalog = Catalog::open(&self.catalog_path)?;
        let job = catalog
            .job(id)?
            .ok_or_else(|| pinpoint::Error::NotFound(format!("job {id}")))?;
        let mut running = self.running.lock();
        match running.as_mut() {
            Some(r) if r.id == id => {
                r.pausing = pause;
                r.cancel.cancel();
            }
            _ if job.state == "queued" || (job.state == "paused" && !pause) => {
                let state = if pause { "paused" } else { "cancelled" };
                catalog.set_job_state(id, state, None)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Queues a paused job again, or retries a failed one (the user asking is the only way a
    /// failed job runs again).
    pub fn resume(&self, id: i64) -> pinpoint::Result<()> {
        let catalog = Catalog::open(&self.catalog_path)?;
        let job = catalog
            .job(id)?
            .ok_or_else(|| pinpoint::Error::NotFound(format!("job {id}")))?;
        if job.state == "paused" || job.state == "failed" {
            let message = if job.state == "paused" {
                "resumed"
            } else {
                "retried"
            };
            // Queued before it is sent: the worker runs only jobs it finds queued.
            catalog.set_job_state(id, "queued", Some(message))?;
            if self.queue.send(id).is_err() {
                catalog.set_job_state(id, &job.state, job.message.as_deref())?;
                return Err(pinpoint::Error::invalid(
                    "the job runner has stopped: restart Pinpoint to run jobs",
                ));
            }
        }
        Ok(())
    }
}

struct Worker {
    catalog_path: PathBuf,
    models: Arc<dyn ModelSource + Send>,
    events: Arc<dyn JobEvents>,
    running: Arc<Mutex<Option<Running>>>,
}

impl Worker {
    fn serve(self, rx: Receiver<i64>) {
        for id in rx {
            // A panic anywhere in a job (the engine, a model, the event sink) ends that job, not
            // the worker: otherwise the job would stay "running", every later submit would find
            // no worker, and the next start would run the same job into the same panic.
            let failure = match catch_unwind(AssertUnwindSafe(|| self.run_one(id))) {
                Ok(Ok(())) => continue,
                // The catalog itself failed.
                Ok(Err(e)) => e.to_string(),
                Err(panic) => {
                    self.running.lock().take();
                    format!("the job crashed: {}", panic_message(panic.as_ref()))
                }
            };
            // Record it on the job if we still can (an event sink that panicked may panic again).
            let _ = catch_unwind(AssertUnwindSafe(|| {
                if let Ok(c) = Catalog::open(&self.catalog_path) {
                    let _ = c.set_job_state(id, "failed", Some(&failure));
                    if let Ok(Some(row)) = c.job(id) {
                        self.events.job(&JobView::from_row(&row, None));
                    }
                }
            }));
        }
    }

    fn run_one(&self, id: i64) -> pinpoint::Result<()> {
        let catalog = Catalog::open(&self.catalog_path)?;
        let Some(row) = catalog.job(id)? else {
            return Ok(());
        };
        if row.state != "queued" {
            return Ok(()); // cancelled or paused while it waited
        }
        let spec: JobSpec = match serde_json::from_value(row.params.clone()) {
            Ok(s) => s,
            Err(e) => {
                catalog.set_job_state(id, "failed", Some(&format!("unknown job: {e}")))?;
                return Ok(());
            }
        };
        let cancel = CancelToken::new();
        *self.running.lock() = Some(Running {
            id,
            cancel: cancel.clone(),
            pausing: false,
        });
        catalog.set_job_state(id, "running", None)?;
        self.events
            .job(&JobView::from_row(&catalog.job(id)?.expect("exists"), None));

        // The sink may be called from the engine's worker threads: it gets a locked connection.
        let shared = Mutex::new((catalog, Instant::now() - Duration::from_secs(10)));
        let sink = |u: &ProgressUpdate| {
            let mut guard = shared.lock();
            let (db, saved) = &mut *guard;
            // Persist at most once a second; the event goes out on every (throttled) update.
            if saved.elapsed() >= Duration::from_secs(1) || u.finished {
                let _ = db.set_job_progress(id, &u.stage, u.done, u.total);
                *saved = Instant::now();
            }
            if let Ok(Some(row)) = db.job(id) {
                self.events.job(&JobView::from_row(&row, Some(u)));
            }
        };
        let result = jobs::run(
            &self.catalog_path,
            &spec,
            self.models.as_ref(),
            &sink,
            &cancel,
        );
        let pausing = self.running.lock().take().is_some_and(|r| r.pausing);
        let catalog = shared.into_inner().0;
        match result {
            Ok(outcome) => {
                let errors = serde_json::to_value(&outcome.errors).expect("serialises");
                catalog.set_job_errors(id, &errors)?;
                let state = match (outcome.cancelled, pausing) {
                    (false, _) => "done",
                    (true, true) => "paused",
                    (true, false) => "cancelled",
                };
                catalog.set_job_state(id, state, Some(&outcome.message))?;
            }
            Err(pinpoint::Error::Cancelled) => {
                catalog.set_job_state(id, if pausing { "paused" } else { "cancelled" }, None)?;
            }
            Err(e) => catalog.set_job_state(id, "failed", Some(&e.to_string()))?,
        }
        if let Some(row) = catalog.job(id)? {
            self.events.job(&JobView::from_row(&row, None));
        }
        self.events.catalog_changed(match spec {
            JobSpec::Scan { .. } => "photos",
            JobSpec::Write { .. } => "locations",
            _ => "proposals",
        });
        Ok(())
    }
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
