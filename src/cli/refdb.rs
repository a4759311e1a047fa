//! `pinpoint refdb ...`

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use pinpoint::refdb::{self, build, InstallSource};

use super::model::ModelArgs;
use super::{print_json, print_problems, Context, Outcome};

pub struct BuildArgs {
    pub name: String,
    pub version: String,
    pub out: PathBuf,
    pub folder: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub licence: String,
    pub attribution: String,
    pub with_images: bool,
    pub f32: bool,
}

pub fn build(ctx: &Context, m: &ModelArgs, a: &BuildArgs) -> Result<Outcome> {
    let model = m.load()?;
    let sources = match (&a.folder, &a.csv) {
        (Some(f), None) => build::sources_from_folder(f),
        (None, Some(c)) => build::sources_from_csv(c)?,
        _ => bail!("give a folder of geotagged photos or --csv FILE"),
    };
    if sources.is_empty() {
        bail!("no geotagged image found");
    }
    let opts = build::BuildOptions {
        name: a.name.clone(),
        version: a.version.clone(),
        licence: a.licence.clone(),
        attribution: a.attribution.clone(),
        with_images: a.with_images,
        f16: !a.f32,
    };
    let progress = ctx.progress();
    let r = build::build(
        &model,
        &sources,
        &opts,
        &a.out,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    if ctx.json {
        print_json(&r)?;
    } else {
        if r.cancelled {
            println!(
                "stopped after {} images; run the same command again to continue",
                r.added_now
            );
        } else {
            println!(
                "built {} ({} references, {:.1} MB) in {:.0} s",
                a.out.display(),
                r.references,
                r.bytes as f64 / 1e6,
                r.seconds
            );
        }
        print_problems("left out", &r.skipped, 50);
    }
    Ok(if r.skipped.is_empty() && !r.cancelled {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

pub fn publish(ctx: &Context, files: &[PathBuf], base_url: &str, out: &Path) -> Result<Outcome> {
    let entries = refdb::publish(files, base_url)?;
    let json = serde_json::to_string_pretty(&entries)?;
    std::fs::write(out, json + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    if ctx.json {
        print_json(&entries)?;
    } else {
        println!(
            "wrote {} ({} databases): serve it and the database files from {base_url}",
            out.display(),
            entries.len()
        );
    }
    Ok(Outcome::Success)
}

pub fn available(ctx: &Context, catalog_url: &str) -> Result<Outcome> {
    let entries = refdb::available(catalog_url)?;
    if ctx.json {
        print_json(&entries)?;
    } else {
        for e in entries {
            println!(
                "{:<24} {:<8} {:>9} refs {:>8.1} MB  {:.3},{:.3} .. {:.3},{:.3}  model {}",
                e.name,
                e.version,
                e.count,
                e.bytes as f64 / 1e6,
                e.region[0],
                e.region[1],
                e.region[2],
                e.region[3],
                e.model_name
            );
        }
    }
    Ok(Outcome::Success)
}

pub fn redescribe(ctx: &Context, m: &ModelArgs, names: &[String]) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let model = m.load()?;
    let progress = ctx.progress();
    let reports = refdb::redescribe_installed(
        &catalog,
        names,
        &model,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    if ctx.json {
        print_json(&reports)?;
    } else if reports.is_empty() {
        println!(
            "every installed database is described with {} already",
            model.card.name
        );
    } else {
        for r in &reports {
            println!(
                "{}: {} references described with {} in {:.1} s",
                r.installed.name, r.installed.count, model.card.name, r.seconds
            );
        }
    }
    Ok(Outcome::Success)
}

pub fn install(
    ctx: &Context,
    m: &ModelArgs,
    what: &str,
    catalog_url: Option<&str>,
    sha256: Option<&str>,
) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let model = m.load()?;
    let source = if refdb::is_url(what) {
        InstallSource::Url {
            url: what.to_string(),
            sha256: sha256.map(str::to_string),
        }
    } else if Path::new(what).exists() {
        InstallSource::File(PathBuf::from(what))
    } else {
        let catalog_url = catalog_url
            .context("installing by name needs --catalog-url URL (or give a URL or a file)")?;
        InstallSource::Name {
            name: what.to_string(),
            catalog_url: catalog_url.to_string(),
        }
    };
    let progress = ctx.progress();
    let r = refdb::install(
        &catalog,
        &source,
        &model,
        &progress,
        &ctx.cancel_on_interrupt(),
    )?;
    progress.clear();
    if ctx.json {
        print_json(&r)?;
    } else {
        println!(
            "installed {} {} ({} references, {} search{}) in {:.1} s",
            r.installed.name,
            r.installed.version,
            r.installed.count,
            r.index,
            if r.redescribed {
                ", described again with the active model"
            } else {
                ""
            },
            r.seconds
        );
    }
    Ok(Outcome::Success)
}

pub fn list(ctx: &Context) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let dbs = catalog.refdbs()?;
    if ctx.json {
        print_json(&dbs)?;
    } else if dbs.is_empty() {
        println!("no reference database installed");
    } else {
        for d in dbs {
            println!(
                "{:<24} {:<8} {:>9} refs  {}  {}",
                d.name,
                d.version,
                d.count,
                if d.enabled { "enabled " } else { "disabled" },
                d.path.display()
            );
        }
    }
    Ok(Outcome::Success)
}

pub fn set_enabled(ctx: &Context, name: &str, enabled: bool) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    if !catalog.set_refdb_enabled(name, enabled)? {
        bail!("no installed database named {name:?}");
    }
    Ok(Outcome::Success)
}

pub fn preview(ctx: &Context, name: &str, id: i64, out: &Path) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let jpeg = refdb::preview(&catalog, name, id)?;
    std::fs::write(out, &jpeg).with_context(|| format!("cannot write {}", out.display()))?;
    if ctx.json {
        print_json(&serde_json::json!({ "path": out, "bytes": jpeg.len() }))?;
    } else {
        println!("{}", out.display());
    }
    Ok(Outcome::Success)
}

pub fn remove(ctx: &Context, name: &str) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    refdb::remove(&catalog, name)?;
    if !ctx.json {
        println!("removed {name}");
    }
    Ok(Outcome::Success)
}
