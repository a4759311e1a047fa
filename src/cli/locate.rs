//! `pinpoint propose`, `proposals`, `suspicious`, `gpx`, `eval` and `update`.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use pinpoint::catalog::PhotoFilter;
use pinpoint::eval::{
    evaluate_dataset, leave_one_out, write_per_query_csv, Dataset, EvalOptions, EvalResult,
};
use pinpoint::locate::calibrate::{calibration_table, CalibrationBin};
use pinpoint::locate::{self, LocateOptions};
use pinpoint::model::cache::DescriptorCache;
use pinpoint::model::describe::DescribeOptions;

use super::model::ModelArgs;
use super::{print_json, print_problems, Context, Outcome};

/// The proposal shape `pinpoint propose --json` prints.
#[derive(Serialize)]
struct ProposalJson {
    path: String,
    lat: f64,
    lon: f64,
    radius_m: f64,
    confidence: f64,
    sources: Vec<String>,
    evidence: serde_json::Value,
    status: String,
}

fn proposal_json(p: &pinpoint::catalog::ProposalRow) -> ProposalJson {
    ProposalJson {
        path: p.path.display().to_string(),
        lat: p.lat,
        lon: p.lon,
        radius_m: p.radius_m,
        confidence: p.confidence,
        sources: p.sources.clone(),
        evidence: p.evidence.clone(),
        status: p.status.clone(),
    }
}

fn model_hash(m: &ModelArgs) -> Result<(String, String)> {
    let path = m
        .model
        .clone()
        .unwrap_or_else(pinpoint::model::default_model_path);
    let (card, weights) = pinpoint::model::card::resolve(&path)?;
    Ok((pinpoint::model::sha256_file(&weights)?, card.name))
}

/// The model, loaded only when re-ranking will run (it needs the network for local features).
fn loaded_for_rerank(
    catalog: &pinpoint::Catalog,
    m: &ModelArgs,
    opts: &LocateOptions,
) -> Result<Option<pinpoint::model::LoadedModel>> {
    Ok(match locate::rerank::rerank_k(catalog, opts.rerank_k)? {
        0 => None,
        _ => Some(m.load()?),
    })
}

fn reranker<'a>(
    catalog: &pinpoint::Catalog,
    model: Option<&'a pinpoint::model::LoadedModel>,
    opts: &LocateOptions,
) -> Result<Option<locate::Reranker<'a>>> {
    let k = locate::rerank::rerank_k(catalog, opts.rerank_k)?;
    Ok(match model {
        Some(model) if k > 0 => Some(locate::Reranker::new(catalog, model, k)?),
        _ => None,
    })
}

pub fn propose(
    ctx: &Context,
    m: &ModelArgs,
    opts: LocateOptions,
    min_confidence: f64,
) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let (hash, name) = model_hash(m)?;
    let opts = opts.with_catalog_settings(&catalog)?;
    let counts = catalog.descriptor_counts(&hash)?;
    if counts.described == 0 {
        bail!("no photo has a descriptor for model {name} yet: run `pinpoint describe` (or `pinpoint update`) first");
    }
    let model = loaded_for_rerank(&catalog, m, &opts)?;
    let reranker = reranker(&catalog, model.as_ref(), &opts)?;
    let cancel = ctx.cancel_on_interrupt();
    let calibration =
        locate::fit_calibration(&catalog, &hash, opts.clone(), reranker.as_ref(), &cancel)?;
    let progress = ctx.progress();
    let databases = pinpoint::refdb::reference_sets(&catalog, &hash)?;
    let (_, report) = locate::propose(
        &mut catalog,
        &hash,
        databases,
        opts,
        reranker.as_ref(),
        &progress,
        &cancel,
    )?;
    progress.clear();
    let stored = catalog.proposals(None, min_confidence)?;
    if ctx.json {
        let list: Vec<ProposalJson> = stored
            .iter()
            .filter(|p| p.status == "pending")
            .map(proposal_json)
            .collect();
        print_json(&list)?;
    } else {
        let t = &report.timing;
        let rerank = match &report.rerank {
            Some(r) => format!(
                ", re-ranking {:.2}s: {} pairs matched, {} from earlier runs, {} verified",
                t.rerank_s, r.pairs_checked, r.pairs_from_catalog, r.verified
            ),
            None => String::new(),
        };
        println!(
            "proposed locations for {} of {} untagged photos from {} references in {:.2}s (search {:.2}s, scoring {:.2}s{rerank}); confidence calibration: {} ({} samples)",
            report.proposed,
            report.photos,
            report.references,
            t.load_s + t.search_s + t.scoring_s + t.rerank_s,
            t.search_s,
            t.scoring_s,
            calibration.source,
            calibration.samples
        );
        if counts.lacking > 0 {
            println!(
                "{} photos have no descriptor yet: run `pinpoint describe` to include them",
                counts.lacking
            );
        }
        for p in stored.iter().filter(|p| p.status == "pending") {
            println!(
                "{:>5.1}%  {:>10.6} {:>11.6} ±{:<6.0}m  {:<12} {}",
                p.confidence * 100.0,
                p.lat,
                p.lon,
                p.radius_m,
                p.sources.join("+"),
                p.path.display()
            );
        }
    }
    Ok(if report.cancelled {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

pub fn proposals_list(ctx: &Context, status: Option<&str>, min_confidence: f64) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let rows = catalog.proposals(status, min_confidence)?;
    if ctx.json {
        print_json(&rows.iter().map(proposal_json).collect::<Vec<_>>())?;
    } else {
        for p in &rows {
            println!(
                "{:<9} {:>5.1}%  {:>10.6} {:>11.6} ±{:<6.0}m  {}",
                p.status,
                p.confidence * 100.0,
                p.lat,
                p.lon,
                p.radius_m,
                p.path.display()
            );
        }
    }
    Ok(Outcome::Success)
}

pub fn proposals_set(ctx: &Context, paths: &[PathBuf], status: &str) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let mut missing = Vec::new();
    for p in paths {
        let photo = catalog
            .photo_by_path(p)?
            .with_context(|| format!("{} is not in the catalog", p.display()))?;
        if !catalog.set_proposal_status(photo.id, status)? {
            missing.push(pinpoint::library::FileProblem {
                path: p.clone(),
                reason: "has no proposal".into(),
            });
        }
    }
    print_problems("errors", &missing, 50);
    Ok(if missing.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

pub fn suspicious(ctx: &Context, m: &ModelArgs, opts: LocateOptions) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let (hash, name) = model_hash(m)?;
    if catalog.descriptor_counts(&hash)?.described == 0 {
        bail!("no photo has a descriptor for model {name} yet: run `pinpoint describe` first");
    }
    let opts = opts.with_catalog_settings(&catalog)?;
    let model = loaded_for_rerank(&catalog, m, &opts)?;
    let reranker = reranker(&catalog, model.as_ref(), &opts)?;
    let cancel = ctx.cancel_on_interrupt();
    locate::fit_calibration(&catalog, &hash, opts.clone(), reranker.as_ref(), &cancel)?;
    let progress = ctx.progress();
    locate::suspicious(
        &mut catalog,
        &hash,
        opts,
        reranker.as_ref(),
        &progress,
        &cancel,
    )?;
    progress.clear();
    let rows = catalog.suspicious(false)?;
    if ctx.json {
        print_json(&rows)?;
    } else if rows.is_empty() {
        println!("no suspicious tags");
    } else {
        for r in &rows {
            println!(
                "{:>5.1}%  tagged {:.5},{:.5} but looks like {:.5},{:.5} ({:.1} km away)  {}",
                r.confidence * 100.0,
                r.tag_lat,
                r.tag_lon,
                r.lat,
                r.lon,
                r.distance_m / 1000.0,
                r.path.display()
            );
        }
    }
    Ok(Outcome::Success)
}

/// Parses "+02:00", "-0530", "UTC", "Z" into minutes east of UTC.
pub fn parse_tz(s: &str) -> Result<i32> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => bail!("time zone {s:?}: use +HH:MM or -HH:MM"),
    };
    let digits: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() != 4 && digits.len() != 2 {
        bail!("time zone {s:?}: use +HH:MM or -HH:MM");
    }
    let h: i32 = digits[..2].parse()?;
    let m: i32 = if digits.len() == 4 {
        digits[2..].parse()?
    } else {
        0
    };
    if h > 14 || m > 59 {
        bail!("time zone {s:?} is out of range");
    }
    Ok(sign * (h * 60 + m))
}

pub fn gpx_import(
    ctx: &Context,
    files: &[PathBuf],
    clock_offset_s: Option<f64>,
    tz: Option<&str>,
    max_gap_s: Option<f64>,
) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    if let Some(c) = clock_offset_s {
        catalog.set_setting("gpx.clock_offset_s", &serde_json::json!(c))?;
    }
    if let Some(tz) = tz {
        catalog.set_setting(
            "gpx.default_tz_offset_min",
            &serde_json::json!(parse_tz(tz)?),
        )?;
    }
    if let Some(g) = max_gap_s {
        catalog.set_setting("gpx.max_gap_s", &serde_json::json!(g))?;
    }
    let mut imported = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let result = std::fs::read(f).map_err(|e| e.to_string()).and_then(|b| {
            let track = pinpoint::locate::gpx::parse_gpx(&b)?;
            Ok((
                track,
                pinpoint::model::hex(&<sha2::Sha256 as sha2::Digest>::digest(&b)),
            ))
        });
        match result {
            Ok((track, sha)) => match catalog.add_gpx_track(f, &sha, track.name.as_deref(), &track.points)? {
                Some(id) => imported.push(serde_json::json!({"path": f, "id": id, "points": track.points.len()})),
                None => imported.push(serde_json::json!({"path": f, "id": null, "points": track.points.len(), "already_imported": true})),
            },
            Err(reason) => errors.push(pinpoint::library::FileProblem { path: f.clone(), reason }),
        }
    }
    if ctx.json {
        print_json(&serde_json::json!({"imported": imported, "errors": errors}))?;
    } else {
        for i in &imported {
            println!(
                "{} ({} points){}",
                i["path"].as_str().unwrap_or(""),
                i["points"],
                if i["id"].is_null() {
                    ", already imported"
                } else {
                    ""
                }
            );
        }
        print_problems("errors", &errors, 50);
        println!("run `pinpoint propose` to place photos along the tracks");
    }
    Ok(if errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

pub fn gpx_list(ctx: &Context) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let tracks = catalog.gpx_tracks()?;
    let settings = serde_json::json!({
        "clock_offset_s": catalog.setting("gpx.clock_offset_s")?,
        "default_tz_offset_min": catalog.setting("gpx.default_tz_offset_min")?,
        "max_gap_s": catalog.setting("gpx.max_gap_s")?,
    });
    if ctx.json {
        print_json(&serde_json::json!({"tracks": tracks, "settings": settings}))?;
    } else {
        for t in &tracks {
            let when = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
                    .unwrap_or_default()
            };
            println!(
                "{:>4}  {} - {}  {:>6} points  {}",
                t.id,
                when(t.start_ms),
                when(t.end_ms),
                t.points,
                t.path.display()
            );
        }
        println!("settings: {settings}");
    }
    Ok(Outcome::Success)
}

/// `pinpoint cameras`: estimates every camera's clock offset (verifying pairs as `propose` does)
/// and lists the cameras.
pub fn cameras(ctx: &Context, m: &ModelArgs, rerank: usize) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let (hash, name) = model_hash(m)?;
    if catalog.descriptor_counts(&hash)?.described == 0 {
        bail!("no photo has a descriptor for model {name} yet: run `pinpoint describe` first");
    }
    if rerank == 0 {
        bail!("camera clocks are read from verified pairs: --rerank must be at least 1");
    }
    let model = m.load()?;
    let reranker = locate::Reranker::new(&catalog, &model, rerank)?;
    let progress = ctx.progress();
    let list = locate::cameras::estimate(
        &catalog,
        &hash,
        &reranker,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    if ctx.json {
        print_json(&list)?;
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        println!("no photo records its camera");
    }
    for c in &list {
        let offset = match (c.offset_s, c.source) {
            (Some(o), Some(src)) => format!(
                "clock offset {}{} ({})",
                human_offset(o),
                c.spread_s
                    .map(|s| format!(" ± {s:.0} s"))
                    .unwrap_or_default(),
                match src {
                    locate::cameras::OffsetSource::Set => "set",
                    locate::cameras::OffsetSource::Estimated => "estimated",
                }
            ),
            _ => "no clock offset".to_string(),
        };
        println!(
            "{}: {} photos, {} located; {offset}{}",
            c.camera,
            c.photos,
            c.tagged,
            c.note
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        );
        for p in c.pairs.iter().take(5) {
            println!(
                "    {} ~ {}: {} ({} matching points)",
                p.photo,
                p.reference,
                human_offset(p.seconds),
                p.inliers
            );
        }
        if c.pairs.len() > 5 {
            println!("    ... and {} more pairs", c.pairs.len() - 5);
        }
    }
    Ok(Outcome::Success)
}

/// `+1 h 07 min 00 s`, `-45 s`.
fn human_offset(seconds: f64) -> String {
    let sign = if seconds < 0.0 { '-' } else { '+' };
    let s = seconds.abs().round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sign}{sec} s"),
        (0, min, sec) => format!("{sign}{min} min {sec:02} s"),
        (h, min, sec) => format!("{sign}{h} h {min:02} min {sec:02} s"),
    }
}

pub fn cameras_set_offset(ctx: &Context, camera: &str, duration: Option<&str>) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let offset = match duration {
        Some(d) => Some(locate::cameras::parse_duration(d).with_context(|| {
            format!("{d:?} is not a clock offset: write it as -1h07m, +4020s, -01:07:00 or 90 (seconds)")
        })?),
        None => None,
    };
    locate::cameras::set_offset(&catalog, camera, offset)?;
    if ctx.json {
        print_json(
            &serde_json::json!({ "camera": camera, "offset_s": offset, "source": offset.map(|_| "set") }),
        )?;
    }
    Ok(Outcome::Success)
}

pub fn gpx_remove(ctx: &Context, id: i64) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    if !catalog.remove_gpx_track(id)? {
        bail!("no GPX track {id}");
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct EvalJson {
    #[serde(flatten)]
    result: EvalResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<Vec<CalibrationBin>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_calibration_error: Option<f64>,
}

pub struct EvalArgs {
    pub dataset: Option<PathBuf>,
    pub leave_one_out: Option<PathBuf>,
    pub radius_m: f64,
    pub long_side: Option<u32>,
    pub ef: usize,
    pub no_hnsw: bool,
    pub per_query: Option<PathBuf>,
    pub two_stage: Option<usize>,
    pub rerank: Option<usize>,
}

pub fn eval(ctx: &Context, m: &ModelArgs, a: &EvalArgs) -> Result<Outcome> {
    let model = m.load()?;
    let cache_file = match &ctx.catalog_path {
        Some(p) => pinpoint::Catalog::open(p)?
            .cache_dir()
            .join("descriptors.sqlite"),
        None => pinpoint::Catalog::open(&pinpoint::catalog::default_catalog_path()?)?
            .cache_dir()
            .join("descriptors.sqlite"),
    };
    let cache = DescriptorCache::open(&cache_file)?;
    let mut opts = EvalOptions {
        describe: DescribeOptions {
            long_side: a.long_side.unwrap_or(model.card.input.long_side),
            ..Default::default()
        },
        hnsw: !a.no_hnsw,
        two_stage: a.two_stage,
        rerank: a.rerank.filter(|&k| k > 0),
        ..Default::default()
    };
    opts.hnsw_params.ef_search = a.ef;
    let progress = ctx.progress();
    let cancel = ctx.cancel_on_interrupt();
    let (evaluation, calibration) = match (&a.dataset, &a.leave_one_out) {
        (Some(d), None) => {
            let dataset = Dataset::load(d, a.radius_m)?;
            (
                evaluate_dataset(&model, &dataset, &opts, &cache, &progress, &cancel)?,
                None,
            )
        }
        (None, Some(folder)) => {
            let r = leave_one_out(
                &model, folder, a.radius_m, &opts, &cache, &progress, &cancel,
            )?;
            (r.evaluation, Some(calibration_table(&r.calibration)))
        }
        _ => bail!("give a dataset (CSV or VPR-Bench folder) or --leave-one-out FOLDER"),
    };
    progress.clear();
    if let Some(file) = &a.per_query {
        write_per_query_csv(file, &evaluation.per_query)?;
    }
    let out: Vec<EvalJson> = evaluation
        .results
        .into_iter()
        .map(|r| {
            let exact = r.search == "exact";
            EvalJson {
                result: r,
                calibration: calibration.as_ref().filter(|_| exact).map(|c| c.0.clone()),
                expected_calibration_error: calibration.as_ref().filter(|_| exact).map(|c| c.1),
            }
        })
        .collect();
    if ctx.json {
        print_json(&out)?;
    } else {
        for e in &out {
            let r = &e.result;
            print!(
                "{:<6} {} queries  R@1 {:.3}  R@5 {:.3}  R@10 {:.3}  R@20 {:.3}",
                r.search, r.queries, r.recall["1"], r.recall["5"], r.recall["10"], r.recall["20"]
            );
            if let (Some(med), Some(p90)) = (r.median_error_m, r.p90_error_m) {
                print!("  median error {med:.0} m, p90 {p90:.0} m");
            }
            println!();
            if let Some(bins) = &e.calibration {
                println!(
                    "calibration (confidence -> fraction within radius), ECE {:.3}:",
                    e.expected_calibration_error.unwrap_or(0.0)
                );
                for b in bins.iter().filter(|b| b.proposals > 0) {
                    println!("  {:.1}-{:.1}: {:>4} proposals, mean confidence {:.2}, within radius {:.2}", b.lo, b.hi, b.proposals, b.mean_confidence, b.within_radius);
                }
            }
        }
    }
    Ok(Outcome::Success)
}

/// `pinpoint update`: scan every root, describe new photos, fit the calibration, propose, check tags.
pub fn update(ctx: &Context, m: &ModelArgs) -> Result<Outcome> {
    let mut outcome = super::scan(ctx, &[], false, None)?;
    let partial = |o: &Outcome| matches!(o, Outcome::Partial);
    let mut any_partial = partial(&outcome);
    outcome = super::describe_catalog(ctx, m, None, 4)?;
    any_partial |= partial(&outcome);
    let catalog = ctx.open_catalog()?;
    let (hash, _) = model_hash(m)?;
    if catalog.descriptor_counts(&hash)?.described == 0 {
        println!("no photo could be described: nothing to propose");
        return Ok(Outcome::Partial);
    }
    let tagged = catalog
        .photos(&PhotoFilter {
            tagged: Some(true),
            ..Default::default()
        })?
        .len();
    drop(catalog);
    if tagged == 0 {
        println!("no photo has a location yet: tag a few (pinpoint tag set ...) so that Pinpoint can learn your places");
        return Ok(if any_partial {
            Outcome::Partial
        } else {
            Outcome::Success
        });
    }
    outcome = propose(ctx, m, LocateOptions::default(), 0.0)?;
    any_partial |= partial(&outcome);
    outcome = suspicious(ctx, m, LocateOptions::default())?;
    any_partial |= partial(&outcome);
    Ok(if any_partial {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}
