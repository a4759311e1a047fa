//! The `pinpoint:` URI scheme: the only way the webview gets pictures. It serves thumbnails and
//! previews of catalog photos (made on demand into the catalog's cache) and reference databases'
//! previews, by id — never an arbitrary path.
//!
//! URLs: `/thumb/{photoId}/grid|preview`, `/ref/{database}/{refId}`, `/explain/{photoId}`
//! (what the model looks at: the CRN heat map, PNG; see [`explain`]), and `/tile/{z}/{x}/{y}`
//! (an online map tile, through the engine's tile cache, only while the user has tiles enabled;
//! see [`tile`]). The webview itself may load no image from the network.

use parking_lot::Mutex;
use pinpoint::library::{self, ThumbnailSize};
use pinpoint::tiles::{TileCache, TileError, TileId, TileSettings};
use pinpoint::Catalog;
use tauri::http::{header, Response, StatusCode};

/// Answers one request: (status, content type, body). `catalog` is the protocol's own connection:
/// it is held only for the lookups, not while a thumbnail is decoded and resized.
pub fn serve(catalog: &Mutex<Catalog>, url_path: &str) -> (StatusCode, &'static str, Vec<u8>) {
    match fetch(catalog, url_path) {
        Ok(bytes) => (StatusCode::OK, "image/jpeg", bytes),
        Err((status, reason)) => (status, "text/plain; charset=utf-8", reason.into_bytes()),
    }
}

fn fetch(catalog: &Mutex<Catalog>, url_path: &str) -> Result<Vec<u8>, (StatusCode, String)> {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, m.to_string());
    let internal = |e: pinpoint::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let parts: Vec<String> = url_path
        .trim_start_matches('/')
        .split('/')
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    match parts.as_slice() {
        [kind, id, size] if kind == "thumb" => {
            let id: i64 = id.parse().map_err(|_| bad("photo id must be a number"))?;
            let size = match size.as_str() {
                "grid" => ThumbnailSize::Grid,
                "preview" => ThumbnailSize::Preview,
                _ => return Err(bad("size must be grid or preview")),
            };
            let (photo, cache_dir) = {
                let c = catalog.lock();
                let photo = c
                    .photo(id)
                    .map_err(internal)?
                    .ok_or((StatusCode::NOT_FOUND, format!("no photo {id}")))?;
                (photo, c.cache_dir())
            };
            let thumb = library::thumbnail(&cache_dir, &photo, size)
                .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
            std::fs::read(&thumb).map_err(|e| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{}: {e}", thumb.display()),
                )
            })
        }
        [kind, name, id] if kind == "ref" => {
            let id: i64 = id
                .parse()
                .map_err(|_| bad("reference id must be a number"))?;
            pinpoint::refdb::preview(&catalog.lock(), name, id)
                .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))
        }
        _ => Err((StatusCode::NOT_FOUND, format!("nothing at {url_path}"))),
    }
}

/// `/explain/{photoId}`: the catalog model's CRN mask over the photo as a PNG heat map. A model
/// without CRN has no mask: 404 with the reason.
pub fn explain(
    catalog: &Mutex<Catalog>,
    models: &dyn pinpoint::jobs::ModelSource,
    url_path: &str,
) -> (StatusCode, &'static str, Vec<u8>) {
    let id = url_path
        .trim_start_matches('/')
        .strip_prefix("explain/")
        .and_then(|id| id.parse::<i64>().ok());
    let result = (|| {
        let id = id.ok_or((
            StatusCode::BAD_REQUEST,
            "photo id must be a number".to_string(),
        ))?;
        let photo = catalog
            .lock()
            .photo(id)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .ok_or((StatusCode::NOT_FOUND, format!("no photo {id}")))?;
        let model = models
            .model()
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let explanation =
            pinpoint::model::explain::explain(model, &photo.path, model.card.input.long_side)
                .map_err(|e| match e {
                    pinpoint::Error::Model(_) => (StatusCode::NOT_FOUND, e.to_string()),
                    _ => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
                })?;
        pinpoint::model::explain::png_bytes(&explanation)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })();
    match result {
        Ok(bytes) => (StatusCode::OK, "image/png", bytes),
        Err((status, reason)) => (status, "text/plain; charset=utf-8", reason.into_bytes()),
    }
}

/// `/tile/{z}/{x}/{y}`: a map tile from the user's tile server (or the disk cache), under the
/// tile settings saved in the catalog at the moment of the request, so that turning tiles off
/// takes effect at once.
pub fn tile(
    catalog: &Mutex<Catalog>,
    tiles: &TileCache,
    url_path: &str,
) -> (StatusCode, &'static str, Vec<u8>) {
    let result = (|| {
        let coords: Option<Vec<u32>> = url_path
            .strip_prefix("/tile/")
            .map(|rest| {
                rest.split('/')
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()
            })
            .unwrap_or_default();
        let Some([z, x, y]) = coords.as_deref().and_then(|c| <[u32; 3]>::try_from(c).ok()) else {
            return Err((
                StatusCode::BAD_REQUEST,
                "a tile is /tile/{z}/{x}/{y}, with numbers".to_string(),
            ));
        };
        let failed = |e: TileError| {
            let status = match e {
                TileError::Disabled | TileError::Insecure { .. } => StatusCode::FORBIDDEN,
                TileError::OutOfRange { .. } => StatusCode::BAD_REQUEST,
                TileError::BadTemplate { .. } | TileError::Io { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                TileError::Status { status: 404, .. } => StatusCode::NOT_FOUND,
                TileError::Fetch { .. }
                | TileError::Status { .. }
                | TileError::NotAnImage { .. } => StatusCode::BAD_GATEWAY,
            };
            (status, e.to_string())
        };
        let id = TileId::new(z, x, y).map_err(failed)?;
        let settings = TileSettings::load(&catalog.lock())
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        tiles.tile(&settings, id).map_err(failed)
    })();
    match result {
        Ok(t) => (StatusCode::OK, t.content_type, t.bytes),
        Err((status, reason)) => (status, "text/plain; charset=utf-8", reason.into_bytes()),
    }
}

pub fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        // Content addressed by id and file hash: the cache can keep it while the app runs.
        .header(header::CACHE_CONTROL, "max-age=3600")
        .body(body)
        .expect("a valid response")
}

/// A tile's response: never kept by the webview, so that the shell decides every time whether
/// tiles are on (its own disk cache makes repeated tiles cheap).
pub fn tile_response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("a valid response")
}
