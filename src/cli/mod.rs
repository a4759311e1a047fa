//! Rendering engine results for the terminal, and the glue between parsed arguments and the engine.

pub mod locate;
pub mod model;
mod progress;
pub mod refdb;
pub mod tag;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;

use pinpoint::catalog::{default_catalog_path, PhotoFilter, PhotoRecord, PhotoStatus};
use pinpoint::library::{self, FileProblem, ScanOptions, ThumbnailSize};
use pinpoint::progress::CancelToken;
use pinpoint::Catalog;

pub use progress::TerminalProgress;

pub struct Context {
    pub catalog_path: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
}

/// How a command ended, for the exit code.
pub enum Outcome {
    Success,
    /// Some files failed; they were listed.
    Partial,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Partial => ExitCode::from(1),
        }
    }
}

impl Context {
    pub fn new(catalog_path: Option<PathBuf>, json: bool, quiet: bool) -> Self {
        Context {
            catalog_path,
            json,
            quiet,
        }
    }

    pub fn open_catalog(&self) -> Result<Catalog> {
        let path = match &self.catalog_path {
            Some(p) => p.clone(),
            None => default_catalog_path()?,
        };
        Catalog::open(&path).with_context(|| format!("cannot open catalog {}", path.display()))
    }

    /// The model the catalog has chosen, when it has chosen one (`None`: the built-in model). A
    /// catalog that does not exist yet has chosen nothing, and is not created by asking.
    pub fn active_model(&self) -> Result<Option<PathBuf>> {
        let path = match &self.catalog_path {
            Some(p) => p.clone(),
            None => default_catalog_path()?,
        };
        if !path.exists() {
            return Ok(None);
        }
        let catalog = self.open_catalog()?;
        if catalog
            .setting(pinpoint::model::ACTIVE_MODEL_SETTING)?
            .is_none_or(|v| v.is_null())
        {
            return Ok(None);
        }
        Ok(Some(pinpoint::model::active_model_path(&catalog)?))
    }

    pub fn progress(&self) -> TerminalProgress {
        TerminalProgress::new(!self.quiet)
    }

    /// Cancel token wired to Ctrl-C: the first press asks the job to stop cleanly, the second exits.
    pub fn cancel_on_interrupt(&self) -> CancelToken {
        let token = CancelToken::new();
        let t = token.clone();
        let _ = ctrlc::set_handler(move || {
            if t.is_cancelled() {
                std::process::exit(130);
            }
            eprintln!("\nstopping… (press Ctrl-C again to quit at once)");
            t.cancel();
        });
        token
    }
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub fn print_problems(title: &str, problems: &[FileProblem], limit: usize) {
    if problems.is_empty() {
        return;
    }
    eprintln!("{title} ({}):", problems.len());
    for p in problems.iter().take(limit) {
        eprintln!("  {}: {}", p.path.display(), p.reason);
    }
    if problems.len() > limit {
        eprintln!(
            "  … and {} more (use --json for all)",
            problems.len() - limit
        );
    }
}

// ---- library ----

pub fn library_add(ctx: &Context, folders: &[PathBuf], then_scan: bool) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let mut added = Vec::new();
    for f in folders {
        added.push(catalog.add_root(f)?);
    }
    drop(catalog);
    if then_scan {
        let paths: Vec<PathBuf> = added.iter().map(|r| r.path.clone()).collect();
        return scan(ctx, &paths, false, None);
    }
    if ctx.json {
        print_json(&added)?;
    } else {
        for r in &added {
            println!("added {}", r.path.display());
        }
        println!("next: pinpoint scan");
    }
    Ok(Outcome::Success)
}

pub fn library_remove(ctx: &Context, folder: &Path) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let n = catalog.remove_root(folder)?;
    if ctx.json {
        print_json(&serde_json::json!({ "removed": folder, "photos_forgotten": n }))?;
    } else {
        println!(
            "removed {} ({n} photos left the catalog; no file was touched)",
            folder.display()
        );
    }
    Ok(Outcome::Success)
}

pub fn library_list(ctx: &Context) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let roots = catalog.roots()?;
    if ctx.json {
        print_json(&roots)?;
    } else if roots.is_empty() {
        println!("no library roots; add one with: pinpoint library add FOLDER");
    } else {
        for r in roots {
            let scanned = match r.last_scan_completed_at {
                Some(t) => format!("last scanned {}", format_unix(t)),
                None => "never scanned".to_string(),
            };
            println!("{}  ({scanned})", r.path.display());
        }
    }
    Ok(Outcome::Success)
}

fn format_unix(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

// ---- scan ----

pub fn scan(
    ctx: &Context,
    roots: &[PathBuf],
    include_hidden: bool,
    threads: Option<usize>,
) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let opts = ScanOptions {
        include_hidden,
        threads,
        ..Default::default()
    };
    let cancel = ctx.cancel_on_interrupt();
    let progress = ctx.progress();
    let report = library::scan(&mut catalog, roots, &opts, &progress, &cancel)?;
    progress.clear();
    if ctx.json {
        print_json(&report)?;
    } else {
        let (total, tagged, missing) = catalog.photo_counts()?;
        println!(
            "{} in {:.1}s: {} files seen, {} unchanged, {} read ({} new, {} changed, {} moved), {} now missing",
            if report.cancelled { "scan cancelled" } else { "scanned" },
            report.seconds,
            report.files_seen,
            report.unchanged,
            report.read,
            report.added,
            report.updated,
            report.moved,
            report.marked_missing
        );
        println!(
            "catalog: {total} photos, {tagged} with a location, {} without, {missing} missing",
            total - tagged
        );
        for off in &report.offline_roots {
            eprintln!(
                "root offline, left as it was: {}: {}",
                off.path.display(),
                off.reason
            );
        }
        print_problems("warnings", &report.warnings, 20);
        print_problems("errors", &report.errors, 50);
        if report.cancelled {
            println!("run `pinpoint scan` again to finish");
        }
    }
    Ok(
        if report.errors.is_empty() && report.offline_roots.is_empty() && !report.cancelled {
            Outcome::Success
        } else {
            Outcome::Partial
        },
    )
}

// ---- photos ----

pub fn photos_list(
    ctx: &Context,
    tagged: Option<bool>,
    missing: bool,
    videos: Option<bool>,
    limit: Option<usize>,
) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let filter = PhotoFilter {
        tagged,
        status: missing.then_some(PhotoStatus::Missing),
        videos,
        limit,
        ..Default::default()
    };
    let photos = catalog.photos(&filter)?;
    if ctx.json {
        print_json(&photos)?;
        return Ok(Outcome::Success);
    }
    let mut out = std::io::stdout().lock();
    for p in &photos {
        writeln!(out, "{}", photo_line(p))?;
    }
    Ok(Outcome::Success)
}

fn photo_line(p: &PhotoRecord) -> String {
    let gps = match (&p.gps, p.gps_source) {
        (Some(g), Some(s)) => format!("{:>11.6} {:>11.6} ({})", g.lat, g.lon, s.as_str()),
        _ => format!("{:>23}", "—"),
    };
    let when = p.taken_at.map(|t| t.to_iso()).unwrap_or_else(|| "—".into());
    format!("{gps}  {when:<25}  {}", p.path.display())
}

pub fn show(ctx: &Context, path: &Path) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let photo = catalog.photo_by_path(path)?.with_context(|| {
        format!(
            "{} is not in the catalog (run `pinpoint scan`?)",
            path.display()
        )
    })?;
    if ctx.json {
        print_json(&photo)?;
        return Ok(Outcome::Success);
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    println!("path          {}", photo.path.display());
    println!("status        {:?}", photo.status);
    println!("format        {}", photo.format.as_str());
    println!("size          {} bytes", photo.size);
    println!(
        "pixels        {}",
        match (photo.width, photo.height) {
            (Some(w), Some(h)) => format!("{w} x {h}"),
            _ => "—".into(),
        }
    );
    println!(
        "orientation   {}",
        opt(photo.orientation.map(|o| o.to_string()))
    );
    if let Some(d) = photo.duration_s {
        println!("duration      {d:.1} s (video)");
    }
    println!("taken         {}", opt(photo.taken_at.map(|t| t.to_iso())));
    println!(
        "camera        {}",
        opt(match (&photo.make, &photo.model) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (a, b) => a.clone().or(b.clone()),
        })
    );
    match (&photo.gps, photo.gps_source) {
        (Some(g), Some(s)) => {
            let alt = g.alt.map(|a| format!(", {a:.1} m")).unwrap_or_default();
            println!(
                "location      {:.7}, {:.7}{alt} (from {})",
                g.lat,
                g.lon,
                s.as_str()
            );
        }
        _ => println!("location      —"),
    }
    if let Some(s) = &photo.sidecar_path {
        println!("sidecar       {}", s.display());
    }
    if photo.embedded_gps_stale {
        println!(
            "embedded GPS  stale: the file's EXIF still holds another position (programs that read only EXIF show that one)"
        );
    }
    for w in &photo.warnings {
        println!("warning       {w}");
    }
    Ok(Outcome::Success)
}

pub fn thumbnail(ctx: &Context, path: &Path, size: ThumbnailSize) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let photo = catalog.photo_by_path(path)?.with_context(|| {
        format!(
            "{} is not in the catalog (run `pinpoint scan`?)",
            path.display()
        )
    })?;
    let thumb = library::thumbnail(&catalog.cache_dir(), &photo, size)?;
    if ctx.json {
        print_json(&serde_json::json!({ "path": photo.path, "size": size, "thumbnail": thumb }))?;
    } else {
        println!("{}", thumb.display());
    }
    Ok(Outcome::Success)
}

pub fn check(ctx: &Context) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let problems = catalog.check_integrity()?;
    if ctx.json {
        print_json(
            &serde_json::json!({ "catalog": catalog.path(), "schema_version": catalog.schema_version()?, "problems": problems }),
        )?;
    } else if problems.is_empty() {
        println!(
            "{}: ok (schema version {})",
            catalog.path().display(),
            catalog.schema_version()?
        );
    } else {
        for p in &problems {
            println!("{p}");
        }
    }
    Ok(if problems.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

// ---- describe ----

pub fn describe_catalog(
    ctx: &Context,
    m: &model::ModelArgs,
    long_side: Option<u32>,
    batch: usize,
) -> Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let loaded = m.load()?;
    let opts = pinpoint::model::describe::DescribeOptions {
        long_side: long_side.unwrap_or(loaded.card.input.long_side),
        batch_size: batch,
        ..Default::default()
    };
    let progress = ctx.progress();
    let report = pinpoint::model::describe::describe_catalog(
        &mut catalog,
        &loaded,
        &opts,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    let counts = catalog.descriptor_counts(&loaded.hash)?;
    if ctx.json {
        print_json(&serde_json::json!({ "report": report, "counts": counts }))?;
    } else {
        println!(
            "{} {} photos in {:.1}s with {} ({}); {} described in all, {} could not be, {} left{}",
            if report.cancelled {
                "stopped after describing"
            } else {
                "described"
            },
            report.described,
            report.seconds,
            loaded.card.name,
            pinpoint::model::device::describe_device(&loaded.device),
            counts.described,
            counts.failed,
            counts.lacking,
            if counts.undecodable > 0 {
                format!(
                    ", {} HEIF photos not decodable by this build",
                    counts.undecodable
                )
            } else {
                String::new()
            }
        );
        print_problems("errors", &report.failed, 50);
    }
    Ok(if report.failed.is_empty() && !report.cancelled {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}
