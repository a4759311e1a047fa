//! Training data from the user's own tagged photos, split by place. Frames of one street corner
//! are near-duplicates, so a random split would judge the model on the photos it trained on; here
//! whole spatial blocks (squares of `block_m`, 250 m by default) are held out. The held-out
//! blocks' photos are split again, alternately, into queries and database photos; training never
//! sees a held-out block, and the judgement asks whether the model learned places it never saw.
//!
//! Locations that Pinpoint itself proposed are not supervision (the model would learn its own
//! guesses): only tags from the camera, sidecars and the user's own placements count.
//!
//! Installed reference databases that carry images add their references near the user's photos
//! as training images (the paper's setting: geotagged photos as queries, reference images as the
//! database they are matched against). References in a held-out block are left out, so the
//! judgement still asks about places training never saw.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::{Catalog, PhotoFilter};
use crate::error::{Error, Result};
use crate::eval::{Dataset, Truth};
use crate::geo::GeoPoint;
use crate::library::LocationSource;
use crate::model::build::Rng;

/// A photo whose location is supervision.
#[derive(Debug, Clone)]
pub struct TaggedPhoto {
    pub path: PathBuf,
    pub position: GeoPoint,
}

/// The evaluation dataset (held-out queries against every other tagged photo) and which of its
/// database rows training may use.
#[derive(Debug, Clone)]
pub struct PlaceSplit {
    pub dataset: Dataset,
    /// Indices into `dataset.database` of the photos in training blocks.
    pub train_rows: Vec<usize>,
    pub summary: SplitSummary,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitSummary {
    pub block_m: f64,
    pub blocks: usize,
    pub held_out_blocks: usize,
    pub training_photos: usize,
    /// Reference-database images that joined training (in `training_photos` too), and those
    /// left out because they lie in a held-out block.
    pub training_references: usize,
    pub held_out_references: usize,
    pub queries: usize,
    pub database: usize,
}

/// The catalog's present still photos (not videos) tagged by camera, sidecar or the user.
pub fn tagged_photos(catalog: &Catalog) -> Result<Vec<TaggedPhoto>> {
    let photos = catalog.photos(&PhotoFilter {
        tagged: Some(true),
        ..Default::default()
    })?;
    Ok(photos
        .into_iter()
        .filter(|p| p.format.is_still())
        .filter(|p| p.gps_source != Some(LocationSource::Proposal))
        .filter_map(|p| {
            Some(TaggedPhoto {
                position: p.gps?,
                path: p.path,
            })
        })
        .collect())
}

/// At most this many reference images join training: each costs a feature extraction, and the
/// nearest ones matter most.
pub const MAX_REFERENCES: usize = 2000;

/// Images of the installed, enabled reference databases that carry them, within `near_m` of one
/// of `photos` (the nearest `max` of them), written once under `folder/<database>/<id>.jpg` so
/// that training reads them like photos. Returns them and the databases they came from.
pub fn reference_images(
    catalog: &Catalog,
    photos: &[TaggedPhoto],
    near_m: f64,
    max: usize,
    folder: &Path,
) -> Result<(Vec<TaggedPhoto>, Vec<String>)> {
    if photos.is_empty() || max == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    // Photos by grid cell of `near_m`: a reference is near a photo only if one is in its cell or
    // a neighbouring one.
    let mut cells: HashMap<(i64, i64), Vec<GeoPoint>> = HashMap::new();
    for p in photos {
        cells
            .entry(block_of(&p.position, near_m))
            .or_default()
            .push(p.position);
    }
    let nearest_photo_m = |at: &GeoPoint| -> Option<f64> {
        let (y, x) = block_of(at, near_m);
        (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (y + dy, x + dx)))
            .filter_map(|c| cells.get(&c))
            .flatten()
            .map(|p| p.distance_m(at))
            .filter(|&d| d <= near_m)
            .min_by(f64::total_cmp)
    };
    // (distance to the nearest photo, database, id, position)
    let mut found: Vec<(f64, usize, i64, GeoPoint)> = Vec::new();
    let mut databases = Vec::new();
    for db in catalog.refdbs()? {
        if !db.enabled {
            continue;
        }
        let file = crate::refdb::format::RefDb::open_installed(&db.path)?;
        if !file.manifest.has_images {
            continue;
        }
        let before = found.len();
        {
            let mut stmt = file
                .connection()
                .prepare("SELECT id, lat, lon FROM refs WHERE image IS NOT NULL")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, GeoPoint::new(r.get(1)?, r.get(2)?)))
            })?;
            for row in rows {
                let (id, at) = row?;
                if let Some(d) = nearest_photo_m(&at) {
                    found.push((d, databases.len(), id, at));
                }
            }
        }
        if found.len() > before {
            databases.push((db.name, file));
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    found.truncate(max);
    // In file order, database by database.
    found.sort_by_key(|f| (f.1, f.2));
    let mut out = Vec::with_capacity(found.len());
    for (_, d, id, position) in found {
        let (name, file) = &databases[d];
        let dir = folder.join(file_name_safe(name));
        let path = dir.join(format!("{id}.jpg"));
        if !path.exists() {
            let image: Vec<u8> =
                file.connection()
                    .query_row("SELECT image FROM refs WHERE id = ?1", [id], |r| r.get(0))?;
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            // Written beside, then renamed: a stopped run never leaves half an image.
            let partial = dir.join(format!("{id}.jpg.partial"));
            std::fs::write(&partial, &image).map_err(|e| Error::io(&partial, e))?;
            std::fs::rename(&partial, &path).map_err(|e| Error::io(&path, e))?;
        }
        out.push(TaggedPhoto { path, position });
    }
    Ok((out, databases.into_iter().map(|(name, _)| name).collect()))
}

/// A database name as a folder name.
fn file_name_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The block of a position: a square of `block_m` on a local equirectangular grid.
fn block_of(p: &GeoPoint, block_m: f64) -> (i64, i64) {
    const M_PER_DEGREE: f64 = 111_320.0;
    let y = p.lat * M_PER_DEGREE;
    let x = p.lon * M_PER_DEGREE * p.lat.to_radians().cos();
    ((y / block_m).floor() as i64, (x / block_m).floor() as i64)
}

/// Holds out whole blocks, in an order drawn from `seed`, until about `held_out_fraction` of the
/// photos are held out. A block is held out only if it has at least two photos (a query needs a
/// database photo of its place); a query without any database photo within `radius_m` is put
/// back in the database, since no answer could be right. `references` (reference-database images)
/// join training unless they lie in a held-out block; they never decide which blocks are held out.
pub fn split_by_place(
    photos: &[TaggedPhoto],
    references: &[TaggedPhoto],
    block_m: f64,
    held_out_fraction: f64,
    radius_m: f64,
    seed: u64,
) -> Result<PlaceSplit> {
    let mut blocks: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (i, p) in photos.iter().enumerate() {
        blocks
            .entry(block_of(&p.position, block_m))
            .or_default()
            .push(i);
    }
    let keys: Vec<(i64, i64)> = blocks.keys().copied().collect();
    let mut rng = Rng::new(seed);
    let order = rng.sample(keys.len(), keys.len());
    let wanted = (photos.len() as f64 * held_out_fraction).ceil() as usize;
    let mut held_out = Vec::new();
    let mut held_photos = 0;
    for &k in &order {
        // Always keep at least one block for training.
        if held_photos >= wanted || held_out.len() + 1 >= keys.len() {
            break;
        }
        let members = &blocks[&keys[k]];
        if members.len() >= 2 {
            held_out.push(keys[k]);
            held_photos += members.len();
        }
    }
    if held_out.is_empty() {
        return Err(Error::invalid(format!(
            "training needs tagged photos in at least two places {block_m:.0} m apart, one of them with two photos or more, to judge the model on a place it did not train on; the catalog has {} tagged photos in {} such place(s)",
            photos.len(),
            keys.len()
        )));
    }
    let mut queries = Vec::new();
    let mut database = Vec::new();
    for key in &held_out {
        for (n, &i) in blocks[key].iter().enumerate() {
            if n % 2 == 1 {
                queries.push(i);
            } else {
                database.push(i);
            }
        }
    }
    let train: Vec<usize> = keys
        .iter()
        .filter(|k| !held_out.contains(k))
        .flat_map(|k| blocks[k].iter().copied())
        .collect();
    let (training_references, held_out_references): (Vec<&TaggedPhoto>, Vec<&TaggedPhoto>) =
        references
            .iter()
            .partition(|r| !held_out.contains(&block_of(&r.position, block_m)));
    // A query with no database photo of its place could never be answered right.
    let (answerable, lonely): (Vec<usize>, Vec<usize>) = queries.into_iter().partition(|&q| {
        database
            .iter()
            .any(|&d| photos[q].position.distance_m(&photos[d].position) <= radius_m)
    });
    database.extend(lonely);
    if answerable.is_empty() {
        return Err(Error::invalid(format!(
            "none of the held-out photos has another photo within {radius_m:.0} m: there is nothing to judge the model on"
        )));
    }
    // The database: training blocks' photos and references first, then the held-out blocks'
    // database photos.
    let db: Vec<&TaggedPhoto> = train
        .iter()
        .map(|&i| &photos[i])
        .chain(training_references.iter().copied())
        .chain(database.iter().map(|&i| &photos[i]))
        .collect();
    let training = train.len() + training_references.len();
    let dataset = Dataset {
        name: "tagged photos".into(),
        queries: answerable.iter().map(|&i| photos[i].path.clone()).collect(),
        database: db.iter().map(|p| p.path.clone()).collect(),
        truth: Truth::Positions {
            queries: answerable.iter().map(|&i| photos[i].position).collect(),
            database: db.iter().map(|p| p.position).collect(),
            radius_m,
        },
        database_areas: None,
    };
    let summary = SplitSummary {
        block_m,
        blocks: keys.len(),
        held_out_blocks: held_out.len(),
        training_photos: training,
        training_references: training_references.len(),
        held_out_references: held_out_references.len(),
        queries: answerable.len(),
        database: db.len(),
    };
    Ok(PlaceSplit {
        dataset,
        train_rows: (0..training).collect(),
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(name: &str, lat: f64, lon: f64) -> TaggedPhoto {
        TaggedPhoto {
            path: PathBuf::from(name),
            position: GeoPoint::new(lat, lon),
        }
    }

    /// Four places kilometres apart, four photos each within a few metres, and a lone photo.
    fn library() -> Vec<TaggedPhoto> {
        let mut v = Vec::new();
        for (c, (lat, lon)) in [(48.85, 2.35), (48.87, 2.30), (52.52, 13.40), (43.47, 11.88)]
            .iter()
            .enumerate()
        {
            for k in 0..4 {
                v.push(photo(&format!("p{c}-{k}.jpg"), lat + k as f64 * 1e-5, *lon));
            }
        }
        v.push(photo("lone.jpg", 40.0, -3.7));
        v
    }

    #[test]
    fn held_out_places_are_never_trained_on() {
        let photos = library();
        let s = split_by_place(&photos, &[], 250.0, 0.25, 25.0, 1).unwrap();
        assert_eq!(s.summary.blocks, 5);
        assert!(s.summary.held_out_blocks >= 1);
        let Truth::Positions {
            queries, database, ..
        } = &s.dataset.truth
        else {
            unreachable!()
        };
        // No training photo is within a block's reach of any query: the places are disjoint.
        for &r in &s.train_rows {
            for q in queries {
                assert!(database[r].distance_m(q) > 1000.0);
            }
        }
        // Every query has its place in the database (outside the training rows).
        for q in queries {
            assert!(database
                .iter()
                .enumerate()
                .any(|(i, d)| !s.train_rows.contains(&i) && d.distance_m(q) <= 25.0));
        }
        assert_eq!(
            s.summary.queries + s.summary.database,
            photos.len(),
            "every photo is a query or in the database"
        );
        // The lone photo is never held out (nothing to match it against).
        assert!(!s.dataset.queries.contains(&PathBuf::from("lone.jpg")));
        // Another seed may hold out other blocks, but the same seed the same ones.
        let again = split_by_place(&photos, &[], 250.0, 0.25, 25.0, 1).unwrap();
        assert_eq!(again.dataset.queries, s.dataset.queries);
    }

    #[test]
    fn one_place_cannot_be_split() {
        let photos: Vec<TaggedPhoto> = (0..6)
            .map(|k| photo(&format!("{k}.jpg"), 48.85 + k as f64 * 1e-5, 2.35))
            .collect();
        let err = split_by_place(&photos, &[], 250.0, 0.2, 25.0, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("at least two places"), "{err}");
    }

    /// A reference database with images, installed into `catalog`: two references near the
    /// library's first two places, one far from every photo, one without an image.
    fn install_references(catalog: &Catalog, dir: &Path) -> Vec<u8> {
        use crate::refdb::format::{Manifest, FORMAT_VERSION, SCHEMA};
        let jpeg = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/places/berlin-triplet/01.jpg"),
        )
        .unwrap();
        let path = dir.join("refs.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let refs: [(f64, f64, bool); 4] = [
            (48.8501, 2.3501, true),
            (48.8701, 2.3001, true),
            (60.0, 25.0, true),
            (52.5201, 13.4001, false),
        ];
        for (id, (lat, lon, image)) in refs.iter().enumerate() {
            conn.execute(
                "INSERT INTO refs (id, lat, lon, preview, image) VALUES (?1, ?2, ?3, x'00', ?4)",
                rusqlite::params![id as i64 + 1, lat, lon, image.then_some(&jpeg)],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO descriptors (id, vector) VALUES (?1, ?2)",
                rusqlite::params![id as i64 + 1, vec![0u8; 8]],
            )
            .unwrap();
        }
        let manifest = Manifest {
            name: "city refs".into(),
            version: "1".into(),
            bbox: [43.0, 2.0, 61.0, 26.0],
            count: 4,
            licence: "CC BY 4.0".into(),
            attribution: "test".into(),
            created_at: "2026-11-27".into(),
            model_name: "m".into(),
            model_sha256: "h".into(),
            descriptor_dim: 2,
            descriptor_type: "f32".into(),
            has_images: true,
            format_version: FORMAT_VERSION,
        };
        manifest.write(&conn).unwrap();
        catalog
            .record_refdb(&crate::catalog::InstalledDb {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                path,
                index_path: None,
                sha256: "s".into(),
                model_hash: "h".into(),
                count: 4,
                manifest: serde_json::to_value(&manifest).unwrap(),
                enabled: true,
                installed_at: 0,
            })
            .unwrap();
        jpeg
    }

    #[test]
    fn reference_images_near_the_photos_join_training_unless_held_out() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let jpeg = install_references(&catalog, dir.path());
        let photos = library();
        let out = dir.path().join("references");
        let (refs, databases) = reference_images(&catalog, &photos, 1000.0, 10, &out).unwrap();
        // The far reference and the one without an image stay out.
        assert_eq!(databases, vec!["city refs".to_string()]);
        assert_eq!(refs.len(), 2);
        for r in &refs {
            assert!(r.path.starts_with(out.join("city_refs")), "{:?}", r.path);
            assert_eq!(std::fs::read(&r.path).unwrap(), jpeg);
        }
        // At most `max`, the nearest first.
        let (one, _) = reference_images(&catalog, &photos, 1000.0, 1, &out).unwrap();
        assert_eq!(one.len(), 1);

        // Whichever blocks are held out, a reference joins training exactly when its block is
        // not one of them, and it is never a query.
        for seed in 1..6 {
            let s = split_by_place(&photos, &refs, 250.0, 0.25, 25.0, seed).unwrap();
            let Truth::Positions { queries, .. } = &s.dataset.truth else {
                panic!("positions")
            };
            let held: Vec<(i64, i64)> = queries.iter().map(|q| block_of(q, 250.0)).collect();
            let training: Vec<&PathBuf> = s
                .train_rows
                .iter()
                .map(|&r| &s.dataset.database[r])
                .collect();
            for r in &refs {
                let in_training = training.contains(&&r.path);
                assert_eq!(in_training, !held.contains(&block_of(&r.position, 250.0)));
                assert!(!s.dataset.queries.contains(&r.path));
            }
            assert_eq!(
                s.summary.training_references + s.summary.held_out_references,
                2
            );
            assert_eq!(s.summary.training_photos, s.train_rows.len());
        }
        // A disabled database gives nothing.
        catalog.set_refdb_enabled("city refs", false).unwrap();
        let (none, _) = reference_images(&catalog, &photos, 1000.0, 10, &out).unwrap();
        assert!(none.is_empty());
    }
}
