//! Training data from the user's own tagged photos, split by place. Frames of one street corner
//! are near-duplicates, so a random split would judge the model on the photos it trained on; here
//! whole spatial blocks (squares of `block_m`, 250 m by default) are held out. The held-out
//! blocks' photos are split again, alternately, into queries and database photos; training never
//! sees a held-out block, and the judgement asks whether the model learned places it never saw.
//!
//! Locations that Pinpoint itself proposed are not supervision (the model would learn its own
//! guesses): only tags from the camera, sidecars and the user's own placements count.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    pub queries: usize,
    pub database: usize,
}

/// The catalog's present, describable photos tagged by camera, sidecar or the user.
pub fn tagged_photos(catalog: &Catalog) -> Result<Vec<TaggedPhoto>> {
    let photos = catalog.photos(&PhotoFilter {
        tagged: Some(true),
        ..Default::default()
    })?;
    Ok(photos
        .into_iter()
        .filter(|p| crate::catalog::describable(p.format))
        .filter(|p| p.gps_source != Some(LocationSource::Proposal))
        .filter_map(|p| {
            Some(TaggedPhoto {
                position: p.gps?,
                path: p.path,
            })
        })
        .collect())
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
/// back in the database, since no answer could be right.
pub fn split_by_place(
    photos: &[TaggedPhoto],
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
    // The database: training blocks first, then the held-out blocks' database photos.
    let db_rows: Vec<usize> = train.iter().chain(&database).copied().collect();
    let dataset = Dataset {
        name: "tagged photos".into(),
        queries: answerable.iter().map(|&i| photos[i].path.clone()).collect(),
        database: db_rows.iter().map(|&i| photos[i].path.clone()).collect(),
        truth: Truth::Positions {
            queries: answerable.iter().map(|&i| photos[i].position).collect(),
            database: db_rows.iter().map(|&i| photos[i].position).collect(),
            radius_m,
        },
    };
    let summary = SplitSummary {
        block_m,
        blocks: keys.len(),
        held_out_blocks: held_out.len(),
        training_photos: train.len(),
        queries: answerable.len(),
        database: db_rows.len(),
    };
    Ok(PlaceSplit {
        dataset,
        train_rows: (0..train.len()).collect(),
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
        let s = split_by_place(&photos, 250.0, 0.25, 25.0, 1).unwrap();
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
        let again = split_by_place(&photos, 250.0, 0.25, 25.0, 1).unwrap();
        assert_eq!(again.dataset.queries, s.dataset.queries);
    }

    #[test]
    fn one_place_cannot_be_split() {
        let photos: Vec<TaggedPhoto> = (0..6)
            .map(|k| photo(&format!("{k}.jpg"), 48.85 + k as f64 * 1e-5, 2.35))
            .collect();
        let err = split_by_place(&photos, 250.0, 0.2, 25.0, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("at least two places"), "{err}");
    }
}
