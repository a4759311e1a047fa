//! `pinpoint tag`, `accept`, `history`, `undo`, `recover`.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use pinpoint::geo::GeoPoint;
use pinpoint::library::LocationSource;
use pinpoint::tagging::{self, TagOptions, TagReport, TagRequest, WriteMode};

use super::{print_json, print_problems, Context, Outcome};

pub struct WriteArgs {
    pub mode: Option<WriteMode>,
    pub touch: bool,
}

fn options(catalog: &pinpoint::Catalog, w: &WriteArgs) -> Result<TagOptions> {
    let mut o = TagOptions::from_catalog(catalog)?;
    if let Some(m) = w.mode {
        o.mode = m;
    }
    if w.touch {
        o.preserve_mtime = false;
    }
    Ok(o)
}

fn report(ctx: &Context, r: &TagReport) -> Result<Outcome> {
    if ctx.json {
        print_json(r)?;
    } else {
        for w in &r.written {
            println!("wrote {} ({})", w.path.display(), w.target);
        }
        if r.unchanged > 0 {
            println!("{} photos already had that location", r.unchanged);
        }
        print_problems("notes", &r.notes, 50);
        print_problems("errors (these files were left untouched)", &r.errors, 100);
        if !r.written.is_empty() {
            println!(
                "journal batch {}: `pinpoint undo {}` reverts it",
                r.batch_id, r.batch_id
            );
        }
    }
    Ok(if r.errors.is_empty() && !r.cancelled {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

pub fn tag(
    ctx: &Context,
    paths: &[PathBuf],
    point: Option<GeoPoint>,
    w: &WriteArgs,
) -> Result<Outcome> {
    if let Some(p) = &point {
        GeoPoint::validated(p.lat, p.lon, p.alt)
            .map_err(|e| anyhow::anyhow!("{}, {}: {e}", p.lat, p.lon))?;
    }
    let mut catalog = ctx.open_catalog()?;
    let opts = options(&catalog, w)?;
    let mut requests = Vec::new();
    let mut missing = Vec::new();
    for p in paths {
        match catalog.photo_by_path(p)? {
            Some(photo) => requests.push(TagRequest {
                photo_id: photo.id,
                point,
                source: LocationSource::User,
            }),
            None => missing.push(pinpoint::library::FileProblem {
                path: p.clone(),
                reason: "not in the catalog (run `pinpoint scan`)".into(),
            }),
        }
    }
    let what = match &point {
        Some(p) => format!(
            "set location {:.6}, {:.6} on {} photos",
            p.lat,
            p.lon,
            requests.len()
        ),
        None => format!("clear location of {} photos", requests.len()),
    };
    let progress = ctx.progress();
    let mut r = tagging::apply(
        &mut catalog,
        &requests,
        &opts,
        &what,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    r.errors.extend(missing);
    report(ctx, &r)
}

pub fn accept(
    ctx: &Context,
    paths: &[PathBuf],
    min_confidence: f64,
    w: &WriteArgs,
) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let opts = options(&catalog, w)?;
    let wanted: Option<Vec<i64>> = if paths.is_empty() {
        None
    } else {
        Some(
            paths
                .iter()
                .map(|p| {
                    catalog
                        .photo_by_path(p)?
                        .map(|x| x.id)
                        .with_context(|| format!("{} is not in the catalog", p.display()))
                })
                .collect::<Result<_>>()?,
        )
    };
    let progress = ctx.progress();
    let r = pinpoint::jobs::accept(
        &mut catalog,
        wanted.as_deref(),
        min_confidence,
        &opts,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    if r.written.is_empty() && r.unchanged == 0 && r.errors.is_empty() {
        if ctx.json {
            print_json(&TagReport::default())?;
        } else {
            println!("no pending proposal at or above confidence {min_confidence}");
        }
        return Ok(Outcome::Success);
    }
    report(ctx, &r)
}

pub fn history(ctx: &Context, limit: usize) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let batches = catalog.batches(limit)?;
    if ctx.json {
        print_json(&batches)?;
        return Ok(Outcome::Success);
    }
    for b in &batches {
        let when = chrono::DateTime::from_timestamp(b.created_at, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let status = match (b.undone_by, b.undo_of) {
            (Some(u), _) => format!(" (undone by {u})"),
            (None, Some(o)) => format!(" (undoes {o})"),
            _ => String::new(),
        };
        println!("{:>5}  {when}  {}{status}", b.id, b.description);
        for e in &b.edits {
            println!(
                "         {:<11} {:<8} {}{}",
                e.state,
                e.target,
                e.path.display(),
                e.error
                    .as_deref()
                    .map(|x| format!(" — {x}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(Outcome::Success)
}

pub fn undo(
    ctx: &Context,
    batch: Option<i64>,
    all_since: Option<&str>,
    touch: bool,
) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let preserve = !touch && TagOptions::from_catalog(&catalog)?.preserve_mtime;
    let targets: Vec<i64> = match (batch, all_since) {
        (Some(b), None) => vec![b],
        (None, Some(since)) => {
            let t = parse_time(since)?;
            catalog
                .batches(10_000)?
                .into_iter()
                .filter(|b| b.created_at >= t && b.undone_by.is_none() && b.undo_of.is_none())
                .map(|b| b.id)
                .collect()
        }
        (None, None) => {
            vec![pinpoint::jobs::latest_undoable_batch(&catalog)?.context("nothing to undo")?]
        }
        (Some(_), Some(_)) => bail!("give a batch number or --all --since TIME, not both"),
    };
    let mut outcome = Outcome::Success;
    let mut reports = Vec::new();
    for b in targets {
        let r = pinpoint::jobs::undo(&mut catalog, Some(b), preserve)?;
        if !r.errors.is_empty() {
            outcome = Outcome::Partial;
        }
        reports.push(r);
    }
    if ctx.json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            println!("batch {}: restored {} files", r.batch_id, r.written.len());
            print_problems("errors (left as they are)", &r.errors, 100);
        }
    }
    Ok(outcome)
}

/// "2026-11-25", "2026-11-25T10:00:00", or a Unix time.
fn parse_time(s: &str) -> Result<i64> {
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(d.and_utc().timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp());
    }
    bail!("time {s:?}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC) or a Unix time")
}

pub fn recover(ctx: &Context) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let settled = tagging::recover(&mut catalog)?;
    let leftovers = pinpoint::refdb::recover(&catalog)?;
    if ctx.json {
        print_json(&settled)?;
    } else if settled.is_empty() {
        println!("no interrupted write");
    } else {
        for e in settled {
            let now = catalog.edit(e.id)?.map(|x| x.state).unwrap_or_default();
            println!("{now:<12} {}", e.path.display());
        }
    }
    if !ctx.json {
        for p in &leftovers {
            println!("removed what an interrupted install left: {}", p.display());
        }
    }
    Ok(Outcome::Success)
}

pub fn set_write_mode(ctx: &Context, mode: WriteMode, touch: Option<bool>) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    catalog.set_setting("write.mode", &serde_json::to_value(mode)?)?;
    if let Some(t) = touch {
        catalog.set_setting("write.preserve_mtime", &serde_json::json!(!t))?;
    }
    println!(
        "locations will be written: {}",
        match mode {
            WriteMode::Embed => "into the photos (sidecars for RAW, HEIF and read-only files)",
            WriteMode::Sidecar => "into XMP sidecars only",
            WriteMode::Both => "into the photos and XMP sidecars",
        }
    );
    Ok(Outcome::Success)
}
