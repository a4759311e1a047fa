//! Pinpoint's desktop shell: Tauri commands and events over the engine (the `pinpoint` crate),
//! and the `pinpoint:` image protocol. It holds no logic of its own: see ARCHITECTURE.md.

pub mod commands;
pub mod protocol;
pub mod runner;
pub mod state;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use runner::{JobEvents, JobRunner};
use state::{AppState, LazyModel};
use views::JobView;

struct AppEvents<R: Runtime>(AppHandle<R>);

impl<R: Runtime> JobEvents for AppEvents<R> {
    fn job(&self, job: &JobView) {
        let _ = self.0.emit("job", job);
    }
    fn catalog_changed(&self, what: &str) {
        let _ = self
            .0
            .emit("catalog-changed", serde_json::json!({ "what": what }));
    }
}

/// The catalog the app opens: `$PINPOINT_CATALOG`, else the platform default (as the CLI).
pub fn catalog_path() -> pinpoint::Result<PathBuf> {
    pinpoint::catalog::default_catalog_path()
}

/// The app's state for a catalog file: settles interrupted writes and installs, resumes interrupted
/// jobs.
pub fn open_state<R: Runtime>(
    app: &AppHandle<R>,
    catalog_path: PathBuf,
) -> pinpoint::Result<AppState> {
    let mut catalog = pinpoint::Catalog::open(&catalog_path)?;
    pinpoint::tagging::recover(&mut catalog)?;
    pinpoint::refdb::recover(&catalog)?;
    // The catalog's model: the built-in one, or the fine-tuned one `pinpoint train` adopted.
    let models = Arc::new(LazyModel::new(pinpoint::model::active_model_path(
        &catalog,
    )?));
    let jobs = JobRunner::start(
        catalog_path.clone(),
        models.clone(),
        Arc::new(AppEvents(app.clone())),
    )?;
    let images = pinpoint::Catalog::open(&catalog_path)?;
    let tiles = pinpoint::tiles::TileCache::for_catalog(&images);
    Ok(AppState {
        tiles,
        chosen_folders: Mutex::new(Default::default()),
        catalog_path,
        catalog: Mutex::new(catalog),
        images: Mutex::new(images),
        models,
        jobs,
    })
}

/// The plugins, the image protocol and the commands: shared by the app and the command tests
/// (which start from Tauri's mock builder and manage an [`open_state`] themselves).
pub fn configure<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .register_asynchronous_uri_scheme_protocol("pinpoint", |ctx, request, responder| {
            let app = ctx.app_handle().clone();
            let path = request.uri().path().to_string();
            // Decoding and resizing take tens of milliseconds: keep them off the webview's thread.
            tauri::async_runtime::spawn_blocking(move || {
                let state = app.state::<AppState>();
                if path.starts_with("/tile/") {
                    let (status, kind, body) = protocol::tile(&state.images, &state.tiles, &path);
                    responder.respond(protocol::tile_response(status, kind, body));
                    return;
                }
                let (status, kind, body) = if path.starts_with("/explain/") {
                    protocol::explain(&state.images, state.models.as_ref(), &path)
                } else {
                    protocol::serve(&state.images, &path)
                };
                responder.respond(protocol::response(status, kind, body));
            });
        })
        .invoke_handler(tauri::generate_handler![
            commands::overview,
            commands::addRoot,
            commands::pickFolder,
            commands::confirmFolder,
            commands::removeRoot,
            commands::listPhotos,
            commands::photoDetail,
            commands::mapPoints,
            commands::reviewQueue,
            commands::acceptProposal,
            commands::rejectProposal,
            commands::reopenProposal,
            commands::acceptAbove,
            commands::setLocation,
            commands::clearLocation,
            commands::suspiciousList,
            commands::keepTag,
            commands::reopenSuspicious,
            commands::history,
            commands::undo,
            commands::places,
            commands::jobs,
            commands::startJob,
            commands::cancelJob,
            commands::pauseJob,
            commands::resumeJob,
            commands::settings,
            commands::saveSettings,
            commands::cameras,
            commands::setCameraOffset,
            commands::refdbs,
            commands::setRefdbEnabled,
        ])
}

/// `pinpoint-desktop [FOLDER]...`: folders named on the command line are the user's choice (as
/// with `pinpoint library add`): the app adds them to the library and scans them when it opens.
pub fn run() {
    let catalog_path = match catalog_path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pinpoint: cannot find the catalog: {e}");
            std::process::exit(2);
        }
    };
    let folders: Vec<PathBuf> = std::env::args_os()
        .skip(1)
        .map(PathBuf::from)
        .filter(|p| !p.to_string_lossy().starts_with('-'))
        .collect();
    configure(tauri::Builder::<tauri::Wry>::default())
        .setup(move |app| {
            let state = open_state(app.handle(), catalog_path.clone())?;
            app.manage(state);
            let state = app.state::<AppState>();
            for folder in &folders {
                let added = state
                    .choose_folder(folder)
                    .map_err(|e| e.to_string())
                    .and_then(|f| commands::add_root_and_scan(app.handle(), &state, &f));
                if let Err(e) = added {
                    eprintln!("pinpoint-desktop: cannot add {}: {e}", folder.display());
                }
            }
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("error while running Pinpoint");
}
