//! Background jobs as the catalog remembers them, so that they outlive the app that started them.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{now_unix, Catalog};
use crate::error::Result;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub params: serde_json::Value,
    /// queued, running, paused, done, failed, cancelled.
    pub state: String,
    pub stage: String,
    pub done: u64,
    pub total: Option<u64>,
    pub message: Option<String>,
    /// `[{path, reason}]`: the files the job could not handle.
    pub errors: serde_json::Value,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const JOB_COLUMNS: &str =
    "id, kind, params, state, stage, done, total, message, errors, created_at, started_at, finished_at";

fn row_to_job(r: &Row) -> rusqlite::Result<JobRow> {
    let params: String = r.get(2)?;
    let errors: String = r.get(8)?;
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        state: r.get(3)?,
        stage: r.get(4)?,
        done: r.get::<_, i64>(5)? as u64,
        total: r.get::<_, Option<i64>>(6)?.map(|t| t as u64),
        message: r.get(7)?,
        errors: serde_json::from_str(&errors).unwrap_or(serde_json::json!([])),
        created_at: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
    })
}

impl Catalog {
    pub fn add_job(&self, kind: &str, params: &serde_json::Value) -> Result<JobRow> {
        self.conn().execute(
            "INSERT INTO jobs (kind, params, state, created_at) VALUES (?1, ?2, 'queued', ?3)",
            params![kind, params.to_string(), now_unix()],
        )?;
        let id = self.conn().last_insert_rowid();
        Ok(self.job(id)?.expect("the job just inserted"))
    }

    pub fn job(&self, id: i64) -> Result<Option<JobRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                row_to_job,
            )
            .optional()?)
    }

    /// The most recent jobs, newest first.
    pub fn jobs(&self, limit: usize) -> Result<Vec<JobRow>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], row_to_job)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Jobs that were queued or running when the app last stopped, oldest first. A running job
    /// was interrupted; every job kind resumes where it stopped, so it goes back to the queue.
    pub fn requeue_interrupted_jobs(&self) -> Result<Vec<JobRow>> {
        self.conn().execute(
            "UPDATE jobs SET state = 'queued', message = 'resumed after a restart' WHERE state = 'running'",
            [],
        )?;
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY id"
        ))?;
        let rows = stmt.query_map([], row_to_job)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_job_state(&self, id: i64, state: &str, message: Option<&str>) -> Result<()> {
        let now = now_unix();
        self.conn().execute(
            "UPDATE jobs SET state = ?2, message = COALESCE(?3, message), \
             started_at = CASE WHEN ?2 = 'running' AND started_at IS NULL THEN ?4 ELSE started_at END, \
             finished_at = CASE WHEN ?2 IN ('done', 'failed', 'cancelled') THEN ?4 ELSE NULL END \
             WHERE id = ?1",
            params![id, state, message, now],
        )?;
        Ok(())
    }

    pub fn set_job_progress(
        &self,
        id: i64,
        stage: &str,
        done: u64,
        total: Option<u64>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET stage = ?2, done = ?3, total = ?4 WHERE id = ?1",
            params![id, stage, done as i64, total.map(|t| t as i64)],
        )?;
        Ok(())
    }

    pub fn set_job_errors(&self, id: i64, errors: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET errors = ?2 WHERE id = ?1",
            params![id, errors.to_string()],
        )?;
        Ok(())
    }
}
