//! The shapes the front end receives (ui/API.md), mapped from the engine's types: camelCase
//! fields, ids for images instead of paths where the webview needs a picture.

use std::path::Path;

use pinpoint::catalog::{BatchRow, BrowseRow, JobRow, PhotoRecord, ProposalRow, SuspiciousRow};
use pinpoint::progress::ProgressUpdate;
use pinpoint::Catalog;
use serde::Serialize;

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoSummary {
    pub id: i64,
    pub path: String,
    pub name: String,
    pub status: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub source: Option<String>,
    pub taken_at: Option<String>,
    pub has_proposal: bool,
    pub suspicious: bool,
    /// A video: catalogued for its time and place.
    pub video: bool,
    /// A video whose poster frame can be made here (ffmpeg is installed); otherwise the grid
    /// shows the video icon.
    pub poster: bool,
    pub duration_s: Option<f64>,
}

impl PhotoSummary {
    pub fn new(p: &PhotoRecord, has_proposal: bool, suspicious: bool) -> Self {
        PhotoSummary {
            id: p.id,
            path: p.path.display().to_string(),
            name: file_name(&p.path),
            status: match p.status {
                pinpoint::catalog::PhotoStatus::Present => "present",
                pinpoint::catalog::PhotoStatus::Missing => "missing",
            }
            .into(),
            lat: p.gps.map(|g| g.lat),
            lon: p.gps.map(|g| g.lon),
            source: p.gps_source.map(|s| s.as_str().to_string()),
            taken_at: p.taken_at.map(|t| t.to_iso()),
            has_proposal,
            suspicious,
            video: p.format == pinpoint::library::PhotoFormat::Video,
            poster: p.format == pinpoint::library::PhotoFormat::Video
                && pinpoint::library::video::poster_frames_available(),
            duration_s: p.duration_s,
        }
    }

    pub fn from_row(r: &BrowseRow) -> Self {
        Self::new(&r.photo, r.has_proposal, r.suspicious)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceView {
    pub cc: String,
    pub country: String,
    pub region: String,
    pub city: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoDetail {
    #[serde(flatten)]
    pub summary: PhotoSummary,
    pub size: u64,
    pub format: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub alt: Option<f64>,
    pub sidecar_path: Option<String>,
    /// The file's EXIF still holds another position than the sidecar's.
    pub embedded_gps_stale: bool,
    pub warnings: Vec<String>,
    pub place: Option<PlaceView>,
    pub proposal: Option<ProposalView>,
    pub suspicious_info: Option<SuspiciousView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceView {
    pub kind: String,
    pub photo_id: Option<i64>,
    pub refdb: Option<String>,
    pub ref_id: Option<i64>,
    /// The file name of a library photo (text from the user's files: the front end shows it as
    /// text, never as markup).
    pub name: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub similarity: Option<f64>,
    /// Geometric verification: inliers of a verified match, 0 for one checked that did not
    /// verify, null when not checked.
    pub inliers: Option<u32>,
    pub distance_m: Option<f64>,
    pub note: Option<String>,
    pub attribution: Option<String>,
}

/// Evidence as `locate` stored it (JSON), resolved to images the webview can show.
pub fn evidence(
    catalog: &Catalog,
    value: &serde_json::Value,
    lat: f64,
    lon: f64,
) -> Vec<EvidenceView> {
    let Some(items) = value.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|e| {
            let kind = e.get("kind")?.as_str()?.to_string();
            let source = e.get("source").and_then(|s| s.as_str()).unwrap_or("");
            let path_or_id = e.get("path_or_id").and_then(|s| s.as_str()).unwrap_or("");
            let elat = e.get("lat")?.as_f64()?;
            let elon = e.get("lon")?.as_f64()?;
            let similarity = e.get("similarity").and_then(|s| s.as_f64());
            let offset = e.get("offset_s").and_then(|s| s.as_f64());
            let ref_id = e.get("ref_id").and_then(|s| s.as_i64());
            let (view_kind, photo_id, refdb) = if kind == "gpx" {
                ("gpx".to_string(), None, None)
            } else if source == "library" {
                let id = catalog
                    .photo_by_path(Path::new(path_or_id))
                    .ok()
                    .flatten()
                    .map(|p| p.id);
                (
                    if kind == "time" { "time" } else { "photo" }.to_string(),
                    id,
                    None,
                )
            } else {
                ("refdb".to_string(), None, Some(source.to_string()))
            };
            let note = match (kind.as_str(), offset) {
                ("time", Some(s)) => Some(format!("taken {} apart", human_seconds(s))),
                ("gpx", Some(s)) => {
                    Some(format!("GPX track point {} away in time", human_seconds(s)))
                }
                _ => None,
            };
            let name = (source == "library")
                .then(|| Path::new(path_or_id).file_name())
                .flatten()
                .map(|n| n.to_string_lossy().into_owned());
            Some(EvidenceView {
                kind: view_kind,
                photo_id,
                refdb,
                ref_id,
                name,
                lat: elat,
                lon: elon,
                similarity,
                inliers: e.get("inliers").and_then(|n| n.as_u64()).map(|n| n as u32),
                distance_m: Some(pinpoint::geo::haversine_m(lat, lon, elat, elon)),
                note,
                attribution: e
                    .get("attribution")
                    .and_then(|s| s.as_str())
                    .map(str::to_string),
            })
        })
        .collect()
}

fn human_seconds(s: f64) -> String {
    let s = s.abs();
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalView {
    pub photo_id: i64,
    pub path: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub confidence: f64,
    pub sources: Vec<String>,
    pub status: String,
    pub evidence: Vec<EvidenceView>,
}

impl ProposalView {
    pub fn new(catalog: &Catalog, p: &ProposalRow) -> Self {
        ProposalView {
            photo_id: p.photo_id,
            path: p.path.display().to_string(),
            name: file_name(&p.path),
            lat: p.lat,
            lon: p.lon,
            radius_m: p.radius_m,
            confidence: p.confidence,
            sources: p.sources.clone(),
            status: p.status.clone(),
            evidence: evidence(catalog, &p.evidence, p.lat, p.lon),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspiciousView {
    pub photo_id: i64,
    pub path: String,
    pub name: String,
    pub tag_lat: f64,
    pub tag_lon: f64,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub confidence: f64,
    pub distance_m: f64,
    pub evidence: Vec<EvidenceView>,
}

impl SuspiciousView {
    pub fn new(catalog: &Catalog, s: &SuspiciousRow) -> Self {
        SuspiciousView {
            photo_id: s.photo_id,
            path: s.path.display().to_string(),
            name: file_name(&s.path),
            tag_lat: s.tag_lat,
            tag_lon: s.tag_lon,
            lat: s.lat,
            lon: s.lon,
            radius_m: s.radius_m,
            confidence: s.confidence,
            distance_m: s.distance_m,
            evidence: evidence(catalog, &s.evidence, s.lat, s.lon),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub state: String,
    pub stage: String,
    pub done: u64,
    pub total: Option<u64>,
    pub rate_per_s: Option<f64>,
    pub eta_s: Option<f64>,
    pub error_count: u64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub message: Option<String>,
    pub errors: serde_json::Value,
}

impl JobView {
    /// A job row, with the live counters of its latest progress update when it is running.
    pub fn from_row(row: &JobRow, live: Option<&ProgressUpdate>) -> Self {
        let title = serde_json::from_value::<pinpoint::jobs::JobSpec>(row.params.clone())
            .map(|s| s.title())
            .unwrap_or_else(|_| row.kind.clone());
        let errors = row.errors.clone();
        JobView {
            id: row.id,
            kind: row.kind.clone(),
            title,
            state: row.state.clone(),
            stage: live
                .map(|u| u.stage.clone())
                .unwrap_or_else(|| row.stage.clone()),
            done: live.map(|u| u.done).unwrap_or(row.done),
            total: live.map(|u| u.total).unwrap_or(row.total),
            rate_per_s: live.map(|u| u.rate),
            eta_s: live.and_then(|u| u.eta_s),
            error_count: live
                .map(|u| u.errors)
                .unwrap_or_else(|| errors.as_array().map(|a| a.len() as u64).unwrap_or(0)),
            started_at: row.started_at,
            finished_at: row.finished_at,
            message: row.message.clone(),
            errors,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EditView {
    pub path: String,
    pub target: String,
    pub state: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    pub id: i64,
    pub created_at: i64,
    pub description: String,
    pub undone_by: Option<i64>,
    pub undo_of: Option<i64>,
    pub edits: Vec<EditView>,
}

impl From<&BatchRow> for BatchView {
    fn from(b: &BatchRow) -> Self {
        BatchView {
            id: b.id,
            created_at: b.created_at,
            description: b.description.clone(),
            undone_by: b.undone_by,
            undo_of: b.undo_of,
            edits: b
                .edits
                .iter()
                .map(|e| EditView {
                    path: e.path.display().to_string(),
                    target: e.target.clone(),
                    state: e.state.clone(),
                    error: e.error.clone(),
                })
                .collect(),
        }
    }
}

/// A camera and its clock, for Settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraView {
    pub camera: String,
    pub photos: usize,
    pub tagged: usize,
    pub offset_s: Option<f64>,
    pub spread_s: Option<f64>,
    /// "estimated", "set" or null.
    pub source: Option<String>,
    pub note: Option<String>,
    pub pairs: Vec<ClockPairView>,
}

/// One evidence pair: the camera's photo and the GPS photo showing the same scene.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockPairView {
    pub photo_id: Option<i64>,
    pub photo_name: String,
    pub reference_id: Option<i64>,
    pub reference_name: String,
    pub seconds: f64,
    pub inliers: u32,
}

impl CameraView {
    pub fn new(catalog: &Catalog, c: &pinpoint::locate::cameras::CameraClock) -> Self {
        let id_of = |path: &str| {
            catalog
                .photo_by_path(Path::new(path))
                .ok()
                .flatten()
                .map(|p| p.id)
        };
        let name = |path: &str| file_name(Path::new(path));
        CameraView {
            camera: c.camera.clone(),
            photos: c.photos,
            tagged: c.tagged,
            offset_s: c.offset_s,
            spread_s: c.spread_s,
            source: c.source.map(|s| {
                match s {
                    pinpoint::locate::cameras::OffsetSource::Estimated => "estimated",
                    pinpoint::locate::cameras::OffsetSource::Set => "set",
                }
                .to_string()
            }),
            note: c.note.clone(),
            pairs: c
                .pairs
                .iter()
                .take(12)
                .map(|p| ClockPairView {
                    photo_id: id_of(&p.photo),
                    photo_name: name(&p.photo),
                    reference_id: id_of(&p.reference),
                    reference_name: name(&p.reference),
                    seconds: p.seconds,
                    inliers: p.inliers,
                })
                .collect(),
        }
    }
}
