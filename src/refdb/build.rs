//! Building a reference database from geotagged photos (a folder, or a CSV listing them) with the
//! current model. The build writes `OUT.partial` as it goes, so a stopped build resumes where it
//! stopped; the finished file is renamed into place.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::Serialize;

use super::format::{encode_vector, Manifest, FORMAT_VERSION, SCHEMA};
use crate::csv_table::CsvTable;
use crate::error::{Error, IoContext, Result};
use crate::geo::GeoPoint;
use crate::library::FileProblem;
use crate::model::describe::{describe_stream, DescribeJob, DescribeOptions};
use crate::model::LoadedModel;
use crate::progress::{CancelToken, ProgressSink};

/// One geotagged image to include.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub location: GeoPoint,
    pub heading: Option<f64>,
    pub taken_at: Option<String>,
    pub source_id: Option<String>,
    pub licence: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub name: String,
    pub version: String,
    pub licence: String,
    pub attribution: String,
    /// Keep ~640 px images so the database can be described again with another model.
    pub with_images: bool,
    /// Store descriptors as f16 (half the size).
    pub f16: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    pub references: u64,
    pub added_now: u64,
    pub skipped: Vec<FileProblem>,
    pub bytes: u64,
    pub seconds: f64,
    pub cancelled: bool,
}

/// Reads a CSV with columns `path,lat,lon` and optional `heading,taken_at,source_id,licence`
/// (paths relative to the CSV).
pub fn sources_from_csv(csv: &Path) -> Result<Vec<Source>> {
    let table = CsvTable::read(csv)?;
    let col = |name: &str| table.column(&[name]);
    let (p, la, lo) = match (col("path"), col("lat"), col("lon")) {
        (Some(p), Some(a), Some(o)) => (p, a, o),
        _ => return Err(table.error("needs columns path, lat, lon")),
    };
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for row in &table.records {
        let get = |k: Option<usize>| k.map(|k| row.cell(k)).filter(|v| !v.is_empty());
        let num = |k: usize| {
            row.cell(k)
                .parse::<f64>()
                .map_err(|_| table.row_error(row, "bad number"))
        };
        let location = GeoPoint::validated(num(la)?, num(lo)?, None)
            .map_err(|e| table.row_error(row, e.to_string()))?;
        out.push(Source {
            path: base.join(row.cell(p)),
            location,
            heading: get(col("heading")).and_then(|v| v.parse().ok()),
            taken_at: get(col("taken_at")).map(str::to_string),
            source_id: get(col("source_id")).map(str::to_string),
            licence: get(col("licence")).map(str::to_string),
        });
    }
    Ok(out)
}

/// Every geotagged photo under `folder` (EXIF or sidecar location), in path order.
pub fn sources_from_folder(folder: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(folder)
        .follow_links(true)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let p = e.path();
        if !e.file_type().is_file() || crate::library::format::format_from_extension(p).is_none() {
            continue;
        }
        let sidecar = crate::library::xmp::find_sidecar(p);
        if let Ok(md) = crate::library::read_photo_metadata(p, sidecar.as_deref()) {
            if let Some(l) = md.location {
                out.push(Source {
                    path: p.to_path_buf(),
                    location: l.point,
                    heading: None,
                    taken_at: md.taken_at.map(|t| t.to_iso()),
                    source_id: p.strip_prefix(folder).ok().map(|r| r.display().to_string()),
                    licence: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn jpeg(img: &image::RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    enc.encode_image(img).expect("encoding to memory");
    out
}

/// Builds (or resumes building) `out` from `sources`.
pub fn build(
    model: &LoadedModel,
    sources: &[Source],
    opts: &BuildOptions,
    out: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<BuildReport> {
    let started = std::time::Instant::now();
    let partial = out.with_extension("partial");
    let mut conn = Connection::open(&partial).map_err(|source| Error::Catalog {
        path: partial.clone(),
        source,
    })?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS build_sources (path TEXT PRIMARY KEY, ref_id INTEGER NOT NULL);")?;
    let done: std::collections::HashSet<String> = {
        let mut stmt = conn.prepare("SELECT path FROM build_sources")?;
        let v = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        v
    };
    let todo: Vec<&Source> = sources
        .iter()
        .filter(|s| !done.contains(&s.path.display().to_string()))
        .collect();
    let jobs: Vec<DescribeJob> = todo
        .iter()
        .map(|s| DescribeJob {
            path: s.path.clone(),
            orientation: None,
        })
        .collect();
    let mut report = BuildReport::default();
    let mut pending: Vec<(usize, Vec<f32>)> = Vec::new();
    let flush = |conn: &mut Connection,
                 pending: &mut Vec<(usize, Vec<f32>)>,
                 report: &mut BuildReport|
     -> Result<()> {
        let tx = conn.transaction()?;
        for (i, v) in pending.drain(..) {
            let s = todo[i];
            // Previews (and images) come from the same upright decode as the descriptor input.
            let img = crate::library::decode::decode_upright(&s.path, None)?;
            let preview = jpeg(&crate::library::thumbnail::resize_to_fit(&img, 320), 80);
            let image = opts
                .with_images
                .then(|| jpeg(&crate::library::thumbnail::resize_to_fit(&img, 640), 88));
            tx.execute(
                "INSERT INTO refs (lat, lon, heading, taken_at, source_id, licence, preview, image) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![s.location.lat, s.location.lon, s.heading, s.taken_at, s.source_id, s.licence, preview, image],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO descriptors (id, vector) VALUES (?1, ?2)",
                params![id, encode_vector(&v, opts.f16)],
            )?;
            tx.execute(
                "INSERT INTO build_sources (path, ref_id) VALUES (?1, ?2)",
                params![s.path.display().to_string(), id],
            )?;
            report.added_now += 1;
        }
        tx.commit()?;
        Ok(())
    };
    let dopts = DescribeOptions {
        long_side: model.card.input.long_side,
        ..Default::default()
    };
    let outcome = describe_stream(model, &jobs, &dopts, progress, cancel, |i, r| {
        match r {
            Ok(v) => pending.push((i, v)),
            Err(e) => report.skipped.push(FileProblem {
                path: todo[i].path.clone(),
                reason: e.to_string(),
            }),
        }
        if pending.len() >= 32 {
            flush(&mut conn, &mut pending, &mut report)?;
        }
        Ok(())
    });
    flush(&mut conn, &mut pending, &mut report)?;
    match outcome {
        Err(Error::Cancelled) => {
            report.cancelled = true;
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        other => other?,
    }
    // Finish: manifest, then a compact copy renamed into place.
    let (count, min_lat, min_lon, max_lat, max_lon): (
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    ) = conn.query_row(
        "SELECT COUNT(*), MIN(lat), MIN(lon), MAX(lat), MAX(lon) FROM refs",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    if count == 0 {
        return Err(Error::invalid("no image could be added: nothing to build"));
    }
    let manifest = Manifest {
        name: opts.name.clone(),
        version: opts.version.clone(),
        bbox: [
            min_lat.unwrap_or(0.0),
            min_lon.unwrap_or(0.0),
            max_lat.unwrap_or(0.0),
            max_lon.unwrap_or(0.0),
        ],
        count: count as u64,
        licence: opts.licence.clone(),
        attribution: opts.attribution.clone(),
        created_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        model_name: model.card.name.clone(),
        model_sha256: model.hash.clone(),
        descriptor_dim: model.net.descriptor_dim(),
        descriptor_type: if opts.f16 { "f16".into() } else { "f32".into() },
        has_images: opts.with_images,
        format_version: FORMAT_VERSION,
    };
    manifest.sanity_check(out)?;
    manifest.write(&conn)?;
    let tmp = out.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    conn.execute("DROP TABLE build_sources", [])?;
    conn.execute("VACUUM INTO ?1", [tmp.display().to_string()])?;
    drop(conn);
    std::fs::rename(&tmp, out).at(out)?;
    let _ = std::fs::remove_file(&partial);
    report.references = count as u64;
    report.bytes = std::fs::metadata(out).at(out)?.len();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo whose name holds a comma and a quote, listed in a CSV as spreadsheets quote it.
    #[test]
    fn a_csv_path_may_hold_commas_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join(r#"Paris, "Sacre-Coeur" 1.jpg"#);
        std::fs::write(&photo, b"jpeg bytes").unwrap();
        let csv = dir.path().join("sources.csv");
        std::fs::write(
            &csv,
            "path,lat,lon,heading,source_id,licence\n\
             \"Paris, \"\"Sacre-Coeur\"\" 1.jpg\",48.88671,2.34305,90,\"sc, 1\",CC BY\n\
             \n\
             b.jpg,48.1,2.1\n",
        )
        .unwrap();
        let sources = sources_from_csv(&csv).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].path, photo);
        assert_eq!(std::fs::read(&sources[0].path).unwrap(), b"jpeg bytes");
        assert_eq!(sources[0].location, GeoPoint::new(48.88671, 2.34305));
        assert_eq!(sources[0].heading, Some(90.0));
        assert_eq!(sources[0].source_id.as_deref(), Some("sc, 1"));
        assert_eq!(sources[0].licence.as_deref(), Some("CC BY"));
        assert_eq!(
            (sources[1].heading, sources[1].licence.as_deref()),
            (None, None)
        );

        // A bad row is named by its line (the blank line counts).
        std::fs::write(&csv, "path,lat,lon\na.jpg,48.1,2.1\n\nb.jpg,north,2.1\n").unwrap();
        let e = sources_from_csv(&csv).unwrap_err().to_string();
        assert_eq!(e, format!("{}: line 4: bad number", csv.display()));
        std::fs::write(&csv, "path,lon\na.jpg,2.1\n").unwrap();
        let e = sources_from_csv(&csv).unwrap_err().to_string();
        assert!(e.contains("needs columns path, lat, lon"), "{e}");
    }
}
