//! What the shell keeps between commands: the catalog, the model (loaded on first use) and the
//! job runner.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pinpoint::jobs::ModelSource;
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
}

impl AppState {
    pub fn open_catalog(&self) -> pinpoint::Result<Catalog> {
        Catalog::open(&self.catalog_path)
    }
}
