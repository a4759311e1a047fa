//! The Tauri commands: each maps one front-end request (ui/API.md) to engine calls and maps the
//! result to the front end's shapes. Names are camelCase because that is what the front end calls.
#![allow(non_snake_case)]

use pinpoint::catalog::{BrowseFilter, PhotoFilter};
use pinpoint::geo::GeoPoint;
use pinpoint::jobs::{self, JobSpec};
use pinpoint::library::roots::{check_library_root, home_folder};
use pinpoint::library::LocationSource;
use pinpoint::progress::{CancelToken, NoProgress};
use pinpoint::tagging::{self, TagOptions, TagReport, TagRequest, WriteMode};
use pinpoint::tiles::TileSettings;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;
use tauri::{AppHandle, Emitter, Runtime, State};

use crate::state::AppState;
use crate::views::*;

/// Commands report failures as one readable line (shown in the app's toast).
type Reply<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn changed<R: Runtime>(app: &AppHandle<R>, what: &str) {
    let _ = app.emit("catalog-changed", json!({ "what": what }));
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootView {
    id: i64,
    path: String,
    last_scan_completed_at: Option<i64>,
}

/// A position the user chose, or a message saying which coordinate is wrong.
fn user_point(lat: f64, lon: f64) -> Reply<GeoPoint> {
    if !(-90.0..=90.0).contains(&lat) || !lat.is_finite() {
        return Err(format!("latitude {lat} is out of range (-90 to 90)"));
    }
    if !(-180.0..=180.0).contains(&lon) || !lon.is_finite() {
        return Err(format!("longitude {lon} is out of range (-180 to 180)"));
    }
    Ok(GeoPoint::new(lat, lon))
}

fn write_mode(catalog: &pinpoint::Catalog) -> pinpoint::Result<WriteMode> {
    Ok(TagOptions::from_catalog(catalog)?.mode)
}

#[tauri::command(async)]
pub fn overview(state: State<'_, AppState>) -> Reply<Value> {
    let catalog = state.catalog.lock();
    let roots: Vec<RootView> = catalog
        .roots()
        .map_err(err)?
        .into_iter()
        .map(|r| RootView {
            id: r.id,
            path: r.path.display().to_string(),
            last_scan_completed_at: r.last_scan_completed_at,
        })
        .collect();
    let counts = catalog.browse_counts().map_err(err)?;
    let (card_name, hash, crn) = match pinpoint::model::card::resolve(state.models.path()) {
        Ok((card, weights)) => (
            card.name,
            pinpoint::model::sha256_file(&weights).unwrap_or_default(),
            card.descriptor.crn,
        ),
        Err(e) => (format!("no model: {e}"), String::new(), false),
    };
    let device = pinpoint::model::device::report().auto_picks;
    Ok(json!({
        "catalogPath": catalog.path(),
        "roots": roots,
        "counts": counts,
        "device": device,
        "model": { "name": card_name, "hash": hash, "crn": crn },
        "writeMode": write_mode(&catalog).map_err(err)?,
        "tiles": TileSettings::load(&catalog).map_err(err)?,
    }))
}

/// Adds a library root and scans it. Only a folder the user chose outside the webview in this
/// session (`pickFolder`, `confirmFolder`, the command line) is added: the request names a path,
/// but the user's choice is what makes it a library folder.
#[tauri::command(async)]
pub fn addRoot<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    path: String,
) -> Reply<Value> {
    let folder = check_library_root(Path::new(&path), home_folder().as_deref()).map_err(err)?;
    if !state.was_chosen(&folder) {
        return Err(format!(
            "{path}: not added, because it was not chosen in Pinpoint's folder dialog or confirmed \
             in its confirmation dialog (choose it with \"Add folder…\", or type it and confirm)"
        ));
    }
    add_root_and_scan(&app, &state, &folder)
}

/// Adds a folder (already checked and chosen) as a library root and queues its scan.
pub fn add_root_and_scan<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    folder: &Path,
) -> Reply<Value> {
    let root = state.catalog.lock().add_root(folder).map_err(err)?;
    let job = state
        .jobs
        .submit(&JobSpec::Scan {
            roots: vec![root.path.clone()],
        })
        .map_err(err)?;
    changed(app, "roots");
    Ok(json!({
        "root": RootView { id: root.id, path: root.path.display().to_string(), last_scan_completed_at: root.last_scan_completed_at },
        "job": JobView::from_row(&job, None),
    }))
}

/// The native folder dialog (the webview has no file system access of its own). The folder
/// picked is the user's choice: `addRoot` accepts it.
#[tauri::command(async)]
pub fn pickFolder<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Reply<Option<String>> {
    use tauri_plugin_dialog::DialogExt;
    let Some(picked) = app
        .dialog()
        .file()
        .set_title("Add a photo folder to Pinpoint")
        .blocking_pick_folder()
        .and_then(|p| p.into_path().ok())
    else {
        return Ok(None);
    };
    let folder = state.choose_folder(&picked).map_err(err)?;
    Ok(Some(folder.display().to_string()))
}

/// A folder the user typed: the shell asks, in a native dialog of its own (which the page can
/// neither draw nor answer), whether to add it. True when the user confirmed; `addRoot` then
/// accepts it. Folders that may not be library roots are refused before asking.
#[tauri::command(async)]
pub fn confirmFolder<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    path: String,
) -> Reply<bool> {
    use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};
    let folder = check_library_root(Path::new(&path), home_folder().as_deref()).map_err(err)?;
    if state.was_chosen(&folder) {
        return Ok(true);
    }
    let confirmed = app
        .dialog()
        .message(format!(
            "Add {} to your Pinpoint library?\n\nPinpoint reads every photo in this folder and \
             its subfolders, and writes the locations you accept into them.",
            folder.display()
        ))
        .title("Add a photo folder")
        .kind(MessageDialogKind::Info)
        .buttons(MessageDialogButtons::OkCancelCustom(
            "Add folder".into(),
            "Cancel".into(),
        ))
        .blocking_show();
    if confirmed {
        state.choose_folder(&folder).map_err(err)?;
    }
    Ok(confirmed)
}

#[tauri::command(async)]
pub fn removeRoot<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    path: String,
) -> Reply<Value> {
    let n = state
        .catalog
        .lock()
        .remove_root(std::path::Path::new(&path))
        .map_err(err)?;
    changed(&app, "roots");
    Ok(json!({ "photosForgotten": n }))
}

#[tauri::command(async)]
pub fn listPhotos(
    state: State<'_, AppState>,
    filter: Option<BrowseFilter>,
    offset: Option<usize>,
    limit: Option<usize>,
) -> Reply<Value> {
    let filter = filter.unwrap_or_default();
    let limit = limit.unwrap_or(200).min(5000);
    let (total, rows) = state
        .catalog
        .lock()
        .browse(&filter, offset.unwrap_or(0), limit)
        .map_err(err)?;
    let photos: Vec<PhotoSummary> = rows.iter().map(PhotoSummary::from_row).collect();
    Ok(json!({ "total": total, "photos": photos }))
}

#[tauri::command(async)]
pub fn photoDetail(state: State<'_, AppState>, id: i64) -> Reply<PhotoDetail> {
    let catalog = state.catalog.lock();
    let p = catalog
        .photo(id)
        .map_err(err)?
        .ok_or_else(|| format!("photo {id} is not in the catalog"))?;
    let proposal = catalog.proposal(id).map_err(err)?;
    let suspicious = catalog
        .suspicious(false)
        .map_err(err)?
        .into_iter()
        .find(|s| s.photo_id == id);
    let place = catalog.photo_place(&p).map(|pl| PlaceView {
        cc: pl.cc,
        country: pl.country,
        region: pl.region,
        city: pl.city,
    });
    Ok(PhotoDetail {
        summary: PhotoSummary::new(
            &p,
            proposal.as_ref().is_some_and(|x| x.status == "pending"),
            suspicious.is_some(),
        ),
        size: p.size,
        format: p.format.as_str().to_string(),
        width: p.width,
        height: p.height,
        make: p.make.clone(),
        model: p.model.clone(),
        alt: p.gps.and_then(|g| g.alt),
        sidecar_path: p.sidecar_path.as_ref().map(|s| s.display().to_string()),
        embedded_gps_stale: p.embedded_gps_stale,
        warnings: p.warnings.clone(),
        place,
        proposal: proposal.map(|x| ProposalView::new(&catalog, &x)),
        suspicious_info: suspicious.map(|s| SuspiciousView::new(&catalog, &s)),
    })
}

#[tauri::command(async)]
pub fn mapPoints(state: State<'_, AppState>) -> Reply<pinpoint::catalog::MapPoints> {
    state.catalog.lock().map_points().map_err(err)
}

#[tauri::command(async)]
pub fn reviewQueue(
    state: State<'_, AppState>,
    minConfidence: Option<f64>,
) -> Reply<Vec<ProposalView>> {
    let catalog = state.catalog.lock();
    let untagged: std::collections::HashSet<i64> = catalog
        .photos(&PhotoFilter {
            tagged: Some(false),
            ..Default::default()
        })
        .map_err(err)?
        .into_iter()
        .map(|p| p.id)
        .collect();
    Ok(catalog
        .proposals(Some("pending"), minConfidence.unwrap_or(0.0))
        .map_err(err)?
        .iter()
        .filter(|p| untagged.contains(&p.photo_id))
        .map(|p| ProposalView::new(&catalog, p))
        .collect())
}

fn batch_reply(r: &TagReport) -> Reply<Value> {
    if let Some(e) = r.errors.first() {
        return Err(format!("{}: {}", e.path.display(), e.reason));
    }
    Ok(json!({ "batchId": r.batch_id, "written": r.written.len(), "unchanged": r.unchanged }))
}

#[tauri::command(async)]
pub fn acceptProposal<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoId: i64,
    lat: Option<f64>,
    lon: Option<f64>,
) -> Reply<Value> {
    let mut catalog = state.catalog.lock();
    let p = catalog
        .proposal(photoId)
        .map_err(err)?
        .ok_or_else(|| format!("photo {photoId} has no proposal"))?;
    let point = match (lat, lon) {
        (Some(lat), Some(lon)) => user_point(lat, lon)?,
        _ => GeoPoint::new(p.lat, p.lon),
    };
    let opts = TagOptions::from_catalog(&catalog).map_err(err)?;
    let r = jobs::accept_at(
        &mut catalog,
        &[(photoId, point)],
        &opts,
        &NoProgress,
        &CancelToken::new(),
    )
    .map_err(err)?;
    changed(&app, "locations");
    batch_reply(&r)
}

/// A review decision that writes no file (reject, reopen, keep): one status change in the catalog.
fn decide<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    change: impl FnOnce(&pinpoint::Catalog) -> pinpoint::Result<bool>,
) -> Reply<()> {
    change(&state.catalog.lock()).map_err(err)?;
    changed(app, "proposals");
    Ok(())
}

#[tauri::command(async)]
pub fn rejectProposal<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoId: i64,
) -> Reply<()> {
    decide(&app, &state, |c| c.set_proposal_status(photoId, "rejected"))
}

#[tauri::command(async)]
pub fn reopenProposal<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoId: i64,
) -> Reply<()> {
    decide(&app, &state, |c| c.set_proposal_status(photoId, "pending"))
}

#[tauri::command(async)]
pub fn acceptAbove(state: State<'_, AppState>, minConfidence: f64) -> Reply<JobView> {
    let row = state
        .jobs
        .submit(&JobSpec::Write {
            min_confidence: minConfidence.clamp(0.0, 1.0),
        })
        .map_err(err)?;
    Ok(JobView::from_row(&row, None))
}

fn write_locations<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    photo_ids: &[i64],
    point: Option<GeoPoint>,
) -> Reply<Value> {
    if photo_ids.is_empty() {
        return Err("no photo selected".into());
    }
    let mut catalog = state.catalog.lock();
    let opts = TagOptions::from_catalog(&catalog).map_err(err)?;
    let requests: Vec<TagRequest> = photo_ids
        .iter()
        .map(|&photo_id| TagRequest {
            photo_id,
            point,
            source: LocationSource::User,
        })
        .collect();
    let what = match (&point, requests.len()) {
        (Some(p), 1) => format!("place 1 photo at {:.5}, {:.5}", p.lat, p.lon),
        (Some(p), n) => format!("place {n} photos at {:.5}, {:.5}", p.lat, p.lon),
        (None, 1) => "clear the location of 1 photo".into(),
        (None, n) => format!("clear the location of {n} photos"),
    };
    let r = tagging::apply(
        &mut catalog,
        &requests,
        &opts,
        &what,
        &NoProgress,
        &CancelToken::new(),
    )
    .map_err(err)?;
    // A tag the user has now replaced or cleared is no longer suspicious.
    for id in photo_ids {
        let _ = catalog.set_suspicious_status(*id, "fixed");
    }
    drop(catalog);
    changed(app, "locations");
    batch_reply(&r)
}

#[tauri::command(async)]
pub fn setLocation<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoIds: Vec<i64>,
    lat: f64,
    lon: f64,
) -> Reply<Value> {
    let point = user_point(lat, lon)?;
    write_locations(&app, &state, &photoIds, Some(point))
}

#[tauri::command(async)]
pub fn clearLocation<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoIds: Vec<i64>,
) -> Reply<Value> {
    write_locations(&app, &state, &photoIds, None)
}

#[tauri::command(async)]
pub fn suspiciousList(state: State<'_, AppState>) -> Reply<Vec<SuspiciousView>> {
    let catalog = state.catalog.lock();
    Ok(catalog
        .suspicious(false)
        .map_err(err)?
        .iter()
        .map(|s| SuspiciousView::new(&catalog, s))
        .collect())
}

#[tauri::command(async)]
pub fn keepTag<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoId: i64,
) -> Reply<()> {
    decide(&app, &state, |c| c.set_suspicious_status(photoId, "kept"))
}

/// Puts a kept tag back on the suspicious list (the undo of "keep").
#[tauri::command(async)]
pub fn reopenSuspicious<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    photoId: i64,
) -> Reply<()> {
    decide(&app, &state, |c| c.set_suspicious_status(photoId, "open"))
}

#[tauri::command(async)]
pub fn history(state: State<'_, AppState>, limit: Option<usize>) -> Reply<Vec<BatchView>> {
    Ok(state
        .catalog
        .lock()
        .batches(limit.unwrap_or(100))
        .map_err(err)?
        .iter()
        .map(BatchView::from)
        .collect())
}

#[tauri::command(async)]
pub fn undo<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    batchId: Option<i64>,
) -> Reply<Value> {
    let mut catalog = state.catalog.lock();
    let preserve = TagOptions::from_catalog(&catalog)
        .map_err(err)?
        .preserve_mtime;
    let r = jobs::undo(&mut catalog, batchId, preserve).map_err(err)?;
    drop(catalog);
    changed(&app, "locations");
    if let Some(e) = r.errors.first() {
        return Err(format!("{}: {}", e.path.display(), e.reason));
    }
    Ok(json!({ "batchId": r.batch_id, "restored": r.written.len() }))
}

#[tauri::command(async)]
pub fn places(state: State<'_, AppState>) -> Reply<Vec<pinpoint::catalog::browse::CountryNode>> {
    state.catalog.lock().place_tree().map_err(err)
}

#[tauri::command(async)]
pub fn jobs(state: State<'_, AppState>) -> Reply<Vec<JobView>> {
    Ok(state
        .catalog
        .lock()
        .jobs(50)
        .map_err(err)?
        .iter()
        .map(|r| JobView::from_row(r, None))
        .collect())
}

#[tauri::command(async)]
pub fn startJob(state: State<'_, AppState>, kind: String) -> Reply<JobView> {
    let spec = match kind.as_str() {
        "scan" => JobSpec::Scan { roots: Vec::new() },
        "describe" => JobSpec::Describe,
        "propose" => JobSpec::Propose,
        "update" => JobSpec::Update,
        "cameras" => JobSpec::Cameras,
        other => return Err(format!("unknown job {other:?}")),
    };
    let row = state.jobs.submit(&spec).map_err(err)?;
    Ok(JobView::from_row(&row, None))
}

#[tauri::command(async)]
pub fn cancelJob(state: State<'_, AppState>, id: i64) -> Reply<()> {
    state.jobs.cancel(id).map_err(err)
}

#[tauri::command(async)]
pub fn pauseJob(state: State<'_, AppState>, id: i64) -> Reply<()> {
    state.jobs.pause(id).map_err(err)
}

#[tauri::command(async)]
pub fn resumeJob(state: State<'_, AppState>, id: i64) -> Reply<()> {
    state.jobs.resume(id).map_err(err)
}

#[tauri::command(async)]
pub fn settings(state: State<'_, AppState>) -> Reply<Value> {
    let catalog = state.catalog.lock();
    let device = pinpoint::model::device::report();
    Ok(json!({
        "writeMode": write_mode(&catalog).map_err(err)?,
        "tiles": TileSettings::load(&catalog).map_err(err)?,
        "device": device.auto_picks,
        "devices": device,
    }))
}

/// The library's cameras and their clock offsets (what the last estimate found or the user set),
/// each evidence pair with the two photos' ids for their thumbnails.
#[tauri::command(async)]
pub fn cameras(state: State<'_, AppState>) -> Reply<Vec<crate::views::CameraView>> {
    let catalog = state.catalog.lock();
    let list = pinpoint::locate::cameras::list(&catalog).map_err(err)?;
    Ok(list
        .iter()
        .map(|c| crate::views::CameraView::new(&catalog, c))
        .collect())
}

/// Sets a camera's clock offset from what the user typed (`-1h07m`, `+4020s`, `-01:07:00`), or
/// forgets the one set (`offset` null).
#[tauri::command(async)]
pub fn setCameraOffset<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    camera: String,
    offset: Option<String>,
) -> Reply<()> {
    let seconds = match offset.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Some(pinpoint::locate::cameras::parse_duration(text).ok_or_else(|| {
            format!("{text:?} is not a clock offset: write it as -1h07m, +4020s, -01:07:00 or 90 (seconds)")
        })?),
        None => None,
    };
    let catalog = state.catalog.lock();
    pinpoint::locate::cameras::set_offset(&catalog, &camera, seconds).map_err(err)?;
    drop(catalog);
    changed(&app, "settings");
    Ok(())
}

#[tauri::command(async)]
pub fn saveSettings<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    writeMode: Option<String>,
    tiles: Option<TileSettings>,
) -> Reply<()> {
    let catalog = state.catalog.lock();
    if let Some(m) = writeMode {
        let mode: WriteMode = m.parse().map_err(err)?;
        catalog
            .set_setting(
                "write.mode",
                &serde_json::to_value(mode).expect("serialises"),
            )
            .map_err(err)?;
    }
    if let Some(t) = tiles {
        t.save(&catalog).map_err(err)?;
    }
    drop(catalog);
    changed(&app, "settings");
    Ok(())
}

#[tauri::command(async)]
pub fn refdbs(state: State<'_, AppState>) -> Reply<Vec<Value>> {
    let catalog = state.catalog.lock();
    Ok(catalog
        .refdbs()
        .map_err(err)?
        .into_iter()
        .map(|d| {
            let m = &d.manifest;
            let bytes = std::fs::metadata(&d.path).map(|x| x.len()).unwrap_or(0);
            json!({
                "name": d.name,
                "version": d.version,
                "count": d.count,
                "region": m.get("region"),
                "licence": m.get("licence"),
                "attribution": m.get("attribution"),
                "enabled": d.enabled,
                "bytes": bytes,
            })
        })
        .collect())
}

#[tauri::command(async)]
pub fn setRefdbEnabled<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    name: String,
    enabled: bool,
) -> Reply<()> {
    let found = state
        .catalog
        .lock()
        .set_refdb_enabled(&name, enabled)
        .map_err(err)?;
    if !found {
        return Err(format!("no installed reference database named {name:?}"));
    }
    changed(&app, "settings");
    Ok(())
}
