//! The long jobs behind `pinpoint update` and the desktop app's Jobs view: scan, describe,
//! propose (with the tag check), and writing accepted proposals. Each runs against a catalog file,
//! reports progress, stops at a safe point when cancelled, and resumes where it stopped when run
//! again (every step skips work already done), which is what lets a job outlive the app.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::ProposalRow;
use crate::error::{Error, Result};
use crate::geo::GeoPoint;
use crate::library::{self, FileProblem, LocationSource, ScanOptions};
use crate::locate::{self, LocateOptions, ProposeReport};
use crate::model::describe::{describe_catalog, DescribeOptions};
use crate::model::LoadedModel;
use crate::progress::{CancelToken, ProgressSink};
use crate::tagging::{self, TagOptions, TagReport, TagRequest};
use crate::Catalog;

/// What a job does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobSpec {
    /// Scan these roots (all roots when empty).
    Scan {
        #[serde(default)]
        roots: Vec<PathBuf>,
    },
    /// Compute descriptors for photos lacking one.
    Describe,
    /// Propose locations for untagged photos and check the tags of tagged ones.
    Propose,
    /// Scan, describe and propose in a row.
    Update,
    /// Write the pending proposals at or above a confidence into the photos.
    Write { min_confidence: f64 },
    /// Estimate the clock offsets of cameras without GPS (`locate::cameras`).
    Cameras,
}

impl JobSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Scan { .. } => "scan",
            JobSpec::Describe => "describe",
            JobSpec::Propose => "propose",
            JobSpec::Update => "update",
            JobSpec::Write { .. } => "write",
            JobSpec::Cameras => "cameras",
        }
    }

    /// A title for a job list.
    pub fn title(&self) -> String {
        match self {
            JobSpec::Scan { roots } if roots.len() == 1 => format!("Scan {}", roots[0].display()),
            JobSpec::Scan { .. } => "Scan the library".into(),
            JobSpec::Describe => "Compute place descriptors".into(),
            JobSpec::Propose => "Propose locations and check tags".into(),
            JobSpec::Update => "Update: scan, describe, propose".into(),
            JobSpec::Write { min_confidence } => format!(
                "Write proposals at or above {:.0}% confidence",
                min_confidence * 100.0
            ),
            JobSpec::Cameras => "Estimate camera clock offsets".into(),
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobOutcome {
    /// One line for the user.
    pub message: String,
    /// Files the job could not handle, with the reason.
    pub errors: Vec<FileProblem>,
    pub cancelled: bool,
}

/// Loads the model only when a job needs it (a scan does not).
pub trait ModelSource: Sync {
    fn model(&self) -> Result<&LoadedModel>;
}

/// Runs one job to its end (or to a clean stop when cancelled).
pub fn run(
    catalog_path: &Path,
    spec: &JobSpec,
    models: &dyn ModelSource,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<JobOutcome> {
    let mut catalog = Catalog::open(catalog_path)?;
    match spec {
        JobSpec::Scan { roots } => scan(&mut catalog, roots, progress, cancel),
        JobSpec::Describe => describe(&mut catalog, models.model()?, progress, cancel),
        JobSpec::Propose => propose(&mut catalog, models.model()?, progress, cancel),
        JobSpec::Cameras => camera_clocks(&catalog, models.model()?, progress, cancel),
        JobSpec::Update => {
            let mut outcome = scan(&mut catalog, &[], progress, cancel)?;
            let mut messages = vec![outcome.message.clone()];
            if !outcome.cancelled {
                let d = describe(&mut catalog, models.model()?, progress, cancel)?;
                messages.push(d.message);
                outcome.errors.extend(d.errors);
                outcome.cancelled = d.cancelled;
            }
            if !outcome.cancelled {
                let p = propose(&mut catalog, models.model()?, progress, cancel)?;
                messages.push(p.message);
                outcome.errors.extend(p.errors);
                outcome.cancelled = p.cancelled;
            }
            outcome.message = messages.join("; ");
            Ok(outcome)
        }
        JobSpec::Write { min_confidence } => {
            let opts = TagOptions::from_catalog(&catalog)?;
            let r = accept(&mut catalog, None, *min_confidence, &opts, progress, cancel)?;
            Ok(JobOutcome {
                message: format!(
                    "wrote {} locations{}",
                    r.written.len(),
                    if r.written.is_empty() {
                        String::new()
                    } else {
                        format!(" (journal batch {})", r.batch_id)
                    }
                ),
                errors: r.errors,
                cancelled: r.cancelled,
            })
        }
    }
}

fn scan(
    catalog: &mut Catalog,
    roots: &[PathBuf],
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<JobOutcome> {
    let report = library::scan(catalog, roots, &ScanOptions::default(), progress, cancel)?;
    let mut errors = report.errors.clone();
    errors.extend(report.offline_roots.iter().cloned());
    Ok(JobOutcome {
        message: format!(
            "scanned {} files: {} new, {} changed, {} moved, {} now missing",
            report.files_seen, report.added, report.updated, report.moved, report.marked_missing
        ),
        errors,
        cancelled: report.cancelled,
    })
}

fn describe(
    catalog: &mut Catalog,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<JobOutcome> {
    let opts = DescribeOptions {
        long_side: model.card.input.long_side,
        ..Default::default()
    };
    let report = describe_catalog(catalog, model, &opts, progress, cancel)?;
    Ok(JobOutcome {
        message: format!("described {} photos", report.described),
        errors: report.failed,
        cancelled: report.cancelled,
    })
}

/// Fits the confidence calibration, proposes locations for untagged photos (from the user's own
/// tagged photos and the enabled reference databases), then checks the tagged photos' tags. Each
/// photo's best matches are verified geometrically (re-ranking) unless the catalog's `rerank.k`
/// setting is 0.
pub fn propose(
    catalog: &mut Catalog,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<JobOutcome> {
    let (report, suspicious) = propose_and_check(catalog, model, progress, cancel)?;
    let verified = match &report.rerank {
        Some(r) if r.verified > 0 => format!(" ({} matches verified geometrically)", r.verified),
        _ => String::new(),
    };
    Ok(JobOutcome {
        message: format!(
            "proposed locations for {} of {} untagged photos{verified}; {} tags look wrong",
            report.proposed, report.photos, suspicious
        ),
        errors: Vec::new(),
        cancelled: report.cancelled,
    })
}

/// Estimates the clock offsets of the cameras without GPS from verified pairs.
pub fn camera_clocks(
    catalog: &Catalog,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<JobOutcome> {
    if catalog.descriptor_counts(&model.hash)?.described == 0 {
        return Err(Error::invalid(
            "no photo has a place descriptor yet: describe the library first",
        ));
    }
    let k = locate::rerank::rerank_k(catalog, None)?.max(1);
    let reranker = locate::Reranker::new(catalog, model, k)?;
    let list = locate::cameras::estimate(catalog, &model.hash, &reranker, progress, cancel)?;
    let estimated = list
        .iter()
        .filter(|c| c.source == Some(locate::cameras::OffsetSource::Estimated))
        .count();
    let without: Vec<&str> = list
        .iter()
        .filter(|c| {
            c.offset_s.is_none()
                && c.note
                    .as_deref()
                    .is_some_and(|n| n.contains("no verified pair"))
        })
        .map(|c| c.camera.as_str())
        .collect();
    let mut message = format!("estimated the clock offsets of {estimated} cameras");
    if !without.is_empty() {
        message.push_str(&format!(
            "; no photo of {} shows a scene a GPS camera photographed",
            without.join(", ")
        ));
    }
    Ok(JobOutcome {
        message,
        errors: Vec::new(),
        cancelled: false,
    })
}

/// The steps of [`propose`], returning the proposal report and the number of suspicious tags.
pub fn propose_and_check(
    catalog: &mut Catalog,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(ProposeReport, usize)> {
    let model_hash = &model.hash;
    if catalog.descriptor_counts(model_hash)?.described == 0 {
        return Err(Error::invalid(
            "no photo has a place descriptor yet: describe the library first",
        ));
    }
    let opts = LocateOptions::default().with_catalog_settings(catalog)?;
    let reranker = match locate::rerank::rerank_k(catalog, None)? {
        0 => None,
        k => Some(locate::Reranker::new(catalog, model, k)?),
    };
    locate::fit_calibration(catalog, model_hash, opts.clone(), reranker.as_ref(), cancel)?;
    let databases = crate::refdb::reference_sets(catalog, model_hash)?;
    let (_, report) = locate::propose(
        catalog,
        model_hash,
        databases,
        opts.clone(),
        reranker.as_ref(),
        progress,
        cancel,
    )?;
    if report.cancelled {
        return Ok((report, 0));
    }
    let suspicious = locate::suspicious(
        catalog,
        model_hash,
        opts,
        reranker.as_ref(),
        progress,
        cancel,
    )?;
    Ok((report, suspicious.len()))
}

/// Accepts the pending proposals at or above `min_confidence` (only those of `photo_ids` when
/// given). Writes them as one journal batch and marks them accepted.
pub fn accept(
    catalog: &mut Catalog,
    photo_ids: Option<&[i64]>,
    min_confidence: f64,
    opts: &TagOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<TagReport> {
    let chosen: Vec<ProposalRow> = catalog
        .proposals(Some("pending"), min_confidence)?
        .into_iter()
        .filter(|p| photo_ids.is_none_or(|ids| ids.contains(&p.photo_id)))
        .collect();
    let placed: Vec<(i64, GeoPoint)> = chosen
        .iter()
        .map(|p| (p.photo_id, GeoPoint::new(p.lat, p.lon)))
        .collect();
    accept_at(catalog, &placed, opts, progress, cancel)
}

/// Accepts proposals at the given points (the proposal's own, or where the user dragged its pin).
pub fn accept_at(
    catalog: &mut Catalog,
    placed: &[(i64, GeoPoint)],
    opts: &TagOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<TagReport> {
    if placed.is_empty() {
        return Ok(TagReport::default());
    }
    let requests: Vec<TagRequest> = placed
        .iter()
        .map(|(id, point)| TagRequest {
            photo_id: *id,
            point: Some(*point),
            source: LocationSource::Proposal,
        })
        .collect();
    let what = if requests.len() == 1 {
        "accept 1 proposal".to_string()
    } else {
        format!("accept {} proposals", requests.len())
    };
    let report = tagging::apply(catalog, &requests, opts, &what, progress, cancel)?;
    let failed: Vec<&Path> = report.errors.iter().map(|e| e.path.as_path()).collect();
    for (id, _) in placed {
        let ok = catalog
            .photo(*id)?
            .is_some_and(|p| !failed.contains(&p.path.as_path()));
        if ok {
            catalog.set_proposal_status(*id, "accepted")?;
        }
    }
    Ok(report)
}

/// The most recent batch that can still be undone.
pub fn latest_undoable_batch(catalog: &Catalog) -> Result<Option<i64>> {
    Ok(catalog
        .batches(10_000)?
        .into_iter()
        .find(|b| b.undone_by.is_none() && b.edits.iter().any(|e| e.state == "done"))
        .map(|b| b.id))
}

/// Undoes a journal batch (the latest undoable one when `None`) and puts the proposals it had
/// accepted back in the review queue.
pub fn undo(
    catalog: &mut Catalog,
    batch_id: Option<i64>,
    preserve_mtime: bool,
) -> Result<TagReport> {
    let batch_id = match batch_id {
        Some(b) => b,
        None => latest_undoable_batch(catalog)?
            .ok_or_else(|| Error::invalid("there is nothing to undo"))?,
    };
    let report = tagging::undo_batch(catalog, batch_id, preserve_mtime)?;
    let batch = catalog
        .batch(batch_id)?
        .ok_or_else(|| Error::NotFound(format!("journal batch {batch_id}")))?;
    for photo_id in batch.edits.iter().filter_map(|e| e.photo_id) {
        let untagged = catalog.photo(photo_id)?.is_some_and(|p| p.gps.is_none());
        let accepted = catalog
            .proposal(photo_id)?
            .is_some_and(|p| p.status == "accepted");
        if untagged && accepted {
            catalog.set_proposal_status(photo_id, "pending")?;
        }
    }
    Ok(report)
}
