//! What the shell keeps between commands: the catalog, the model (loaded on first use) and the
//! job runner.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pinpoint::jobs::ModelSource;
use pinpoint::library::roots::{check_library_root, home_folder, RootRefused};
use pinpoint::model::{device, LoadedModel};
use pinpoint::Catalog;

use crate::runner::JobRunner;

/// The catalog's model, loaded the first time a job or command needs it (a scan does not).
pub struct LazyModel {
    path: PathBuf,
    loaded: OnceLock<LoadedModel>,
    loading: Mutex<()>,
}

impl LazyModel {
    pub fn new(path: PathBuf) -> Self {
        LazyModel {
            path,
            loaded: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl ModelSource for LazyModel {
    fn model(&self) -> pinpoint::Result<&LoadedModel> {
        if let Some(m) = self.loaded.get() {
            return Ok(m);
        }
        let _guard = self.loading.lock();
        if let Some(m) = self.loaded.get() {
            return Ok(m);
        }
        let dev = device::select(device::DeviceChoice::Auto)?;
        let m = LoadedModel::load(&self.path, &dev)?;
        Ok(self.loaded.get_or_init(|| m))
    }
}

pub struct AppState {
    pub catalog_path: PathBuf,
    /// The commands' connection; jobs open their own (SQLite in WAL mode lets them run side by side).
    pub catalog: Mutex<Catalog>,
    /// The image protocol's connection, so that thumbnails never wait on a command.
    pub images: Mutex<Catalog>,
    pub models: Arc<LazyModel>,
    pub jobs: JobRunner,
    /// Online map tiles, fetched by the shell for the webview (which may not fetch them itself).
    pub tiles: pinpoint::tiles::TileCache,
    /// Folders the user chose outside the webview in this session (canonical paths): `addRoot`
    /// adds only these, so a page that misbehaves cannot make the app read a folder on its own.
    pub chosen_folders: Mutex<HashSet<PathBuf>>,
}

impl AppState {
    /// Remembers a folder the user chose outside the webview: in the native folder dialog, in
    /// the shell's confirmation dialog, or on the command line. Folders that may not be library
    /// roots (the file system, the home folder, system folders) are refused, saying why.
    pub fn choose_folder(&self, folder: &Path) -> Result<PathBuf, RootRefused> {
        let canonical = check_library_root(folder, home_folder().as_deref())?;
        self.chosen_folders.lock().insert(canonical.clone());
        Ok(canonical)
    }

    /// Whether the user chose `canonical` outside the webview in this session.
    pub fn was_chosen(&self, canonical: &Path) -> bool {
        self.chosen_folders.lock().contains(canonical)
    }

    pub fn open_catalog(&self) -> pinpoint::Result<Catalog> {
        Catalog::open(&self.catalog_path)
    }
}
