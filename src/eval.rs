//! The evaluation harness every model change is judged by: retrieval recall@k on labelled place
//! datasets, and location error in metres on geotagged ones.
//!
//! Datasets:
//! - CSV with columns `path,split,label` or `path,split,lat,lon` (`split` is `query` or
//!   `database`, `gallery` accepted for `database`; paths relative to the CSV): a query's hit is a
//!   database item with the same label, or within a radius (25 m by default). An optional `area`
//!   column narrows training positives (`pinpoint train`) to the same label and area.
//! - VPR-Bench folders (`query/`, `ref/`, `ground_truth.csv` with `query_index,matching_ref_indices`):
//!   a hit is one of the listed reference frames.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::csv_table::CsvTable;
use crate::error::{Error, IoContext, Result};
use crate::geo::GeoPoint;

/// What makes a retrieved database item right for a query.
#[derive(Debug, Clone)]
pub enum Truth {
    /// Same label (place id) as the query.
    Labels {
        queries: Vec<String>,
        database: Vec<String>,
    },
    /// Within `radius_m` of the query's position.
    Positions {
        queries: Vec<GeoPoint>,
        database: Vec<GeoPoint>,
        radius_m: f64,
    },
    /// An explicit set of matching database indices per query.
    MatchSets(Vec<Vec<usize>>),
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub queries: Vec<PathBuf>,
    pub database: Vec<PathBuf>,
    pub truth: Truth,
    /// An optional `area` per database item (a labelled dataset's `area` column): training takes
    /// positives only within the same label and area. Evaluation ignores it.
    pub database_areas: Option<Vec<String>>,
}

impl Dataset {
    /// A dataset CSV (`path,split,label` or `path,split,lat,lon`).
    pub fn from_csv(csv: &Path, radius_m: f64) -> Result<Dataset> {
        let table = CsvTable::read(csv)?;
        if table.header.is_empty() {
            return Err(table.error("empty CSV"));
        }
        let path_col = table
            .column(&["path", "image_path"])
            .ok_or_else(|| table.error("no `path` column"))?;
        let split_col = table
            .column(&["split"])
            .ok_or_else(|| table.error("no `split` column"))?;
        let label_col = table.column(&["label"]);
        let area_col = table.column(&["area"]);
        let (lat_col, lon_col) = (
            table.column(&["lat", "latitude"]),
            table.column(&["lon", "lng", "longitude"]),
        );
        if label_col.is_none() && (lat_col.is_none() || lon_col.is_none()) {
            return Err(table.error("needs a `label` column or `lat` and `lon` columns"));
        }
        let base = csv.parent().unwrap_or(Path::new("."));
        let (mut q, mut d) = (Vec::new(), Vec::new());
        let (mut ql, mut dl) = (Vec::new(), Vec::new());
        let (mut qp, mut dp) = (Vec::new(), Vec::new());
        let mut areas = Vec::new();
        for row in &table.records {
            let bad = |reason: String| table.row_error(row, reason);
            let is_query = match row.cell(split_col) {
                "query" => true,
                "database" | "gallery" | "db" | "reference" => false,
                other => return Err(bad(format!("split {other:?} is not query or database"))),
            };
            let (paths, labels, points) = if is_query {
                (&mut q, &mut ql, &mut qp)
            } else {
                (&mut d, &mut dl, &mut dp)
            };
            paths.push(base.join(row.cell(path_col)));
            if let (Some(c), false) = (area_col, is_query) {
                areas.push(row.cell(c).to_string());
            }
            if let Some(c) = label_col {
                labels.push(row.cell(c).to_string());
            } else {
                let num = |c: usize| {
                    row.cell(c)
                        .parse::<f64>()
                        .map_err(|_| bad(format!("bad coordinate {:?}", row.cell(c))))
                };
                let p = GeoPoint::validated(num(lat_col.unwrap())?, num(lon_col.unwrap())?, None)
                    .map_err(|e| bad(e.to_string()))?;
                points.push(p);
            }
        }
        if q.is_empty() || d.is_empty() {
            return Err(table.error(format!(
                "{} queries and {} database items: need both",
                q.len(),
                d.len()
            )));
        }
        let truth = if label_col.is_some() {
            Truth::Labels {
                queries: ql,
                database: dl,
            }
        } else {
            Truth::Positions {
                queries: qp,
                database: dp,
                radius_m,
            }
        };
        let name = csv
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Dataset {
            name,
            queries: q,
            database: d,
            truth,
            database_areas: area_col.map(|_| areas),
        })
    }

    /// A VPR-Bench dataset folder: `query/`, `ref/` and `ground_truth.csv`.
    pub fn from_vpr_bench(folder: &Path) -> Result<Dataset> {
        let list = |sub: &str| -> Result<Vec<PathBuf>> {
            let dir = folder.join(sub);
            let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
                .at(&dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            Ok(v)
        };
        let (queries, database) = (list("query")?, list("ref")?);
        let gt_path = folder.join("ground_truth.csv");
        let table = CsvTable::read(&gt_path)?;
        let mut sets = vec![Vec::new(); queries.len()];
        for row in &table.records {
            let bad = || table.row_error(row, format!("bad row {:?}", row.cells));
            let qi: usize = row.cell(0).parse().map_err(|_| bad())?;
            let refs: Vec<usize> = row
                .cell(1)
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if qi >= sets.len() || refs.iter().any(|&r| r >= database.len()) {
                return Err(bad());
            }
            sets[qi] = refs;
        }
        let name = folder
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Dataset {
            name,
            queries,
            database,
            truth: Truth::MatchSets(sets),
            database_areas: None,
        })
    }

    /// Loads a dataset from a CSV file or a VPR-Bench folder.
    pub fn load(path: &Path, radius_m: f64) -> Result<Dataset> {
        if path.is_dir() {
            Dataset::from_vpr_bench(path)
        } else {
            Dataset::from_csv(path, radius_m)
        }
    }

    fn is_hit(&self, query: usize, db: usize) -> bool {
        match &self.truth {
            Truth::Labels { queries, database } => queries[query] == database[db],
            Truth::Positions {
                queries,
                database,
                radius_m,
            } => queries[query].distance_m(&database[db]) <= *radius_m,
            Truth::MatchSets(sets) => sets[query].contains(&db),
        }
    }

    /// Queries that have at least one correct database item (the others cannot be found).
    pub fn answerable(&self, query: usize) -> bool {
        (0..self.database.len()).any(|d| self.is_hit(query, d))
    }
}

/// Recall and errors for one search method, as `pinpoint eval --json` prints them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalResult {
    pub search: String,
    pub queries: usize,
    pub recall: BTreeMap<String, f64>,
    pub median_error_m: Option<f64>,
    pub p90_error_m: Option<f64>,
}

pub const RECALL_AT: [usize; 4] = [1, 5, 10, 20];

/// Exact nearest neighbours by dot product (unit vectors): the `k` best database indices per query.
pub fn exact_top_k(
    queries: &[Vec<f32>],
    database: &[Vec<f32>],
    k: usize,
) -> Vec<Vec<(usize, f32)>> {
    use rayon::prelude::*;
    queries
        .par_iter()
        .map(|q| {
            let mut scored: Vec<(usize, f32)> = database
                .iter()
                .enumerate()
                .map(|(i, d)| (i, q.iter().zip(d).map(|(a, b)| a * b).sum()))
                .collect();
            let k = k.min(scored.len());
            if k < scored.len() {
                scored.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1));
                scored.truncate(k);
            }
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            scored
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    Some(sorted[rank.min(sorted.len() - 1)])
}

/// Scores ranked retrievals (`ranked[q]` = database indices, best first) against the truth.
/// Queries without any correct database item are left out, as VPR benchmarks do.
pub fn score(dataset: &Dataset, ranked: &[Vec<usize>], search: &str) -> EvalResult {
    let mut hits = [0usize; RECALL_AT.len()];
    let mut counted = 0;
    let mut errors = Vec::new();
    for (q, list) in ranked.iter().enumerate() {
        if !dataset.answerable(q) {
            continue;
        }
        counted += 1;
        let first_hit = list.iter().position(|&d| dataset.is_hit(q, d));
        for (i, &k) in RECALL_AT.iter().enumerate() {
            if first_hit.is_some_and(|p| p < k) {
                hits[i] += 1;
            }
        }
        if let (
            Truth::Positions {
                queries, database, ..
            },
            Some(&top),
        ) = (&dataset.truth, list.first())
        {
            errors.push(queries[q].distance_m(&database[top]));
        }
    }
    errors.sort_by(f64::total_cmp);
    let recall = RECALL_AT
        .iter()
        .zip(hits)
        .map(|(k, h)| {
            (
                k.to_string(),
                if counted > 0 {
                    h as f64 / counted as f64
                } else {
                    0.0
                },
            )
        })
        .collect();
    EvalResult {
        search: search.to_string(),
        queries: counted,
        recall,
        median_error_m: percentile(&errors, 0.5),
        p90_error_m: percentile(&errors, 0.9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_from_labels_and_match_sets() {
        let ds = Dataset {
            name: "t".into(),
            queries: vec![PathBuf::new(); 3],
            database: vec![PathBuf::new(); 4],
            truth: Truth::Labels {
                queries: vec!["a".into(), "b".into(), "z".into()],
                database: vec!["b".into(), "a".into(), "c".into(), "a".into()],
            },
            database_areas: None,
        };
        // q0 (a): first hit at rank 2 (index 1); q1 (b): rank 1; q2 (z): unanswerable.
        let r = score(&ds, &[vec![2, 0, 1], vec![0, 1, 2], vec![0, 1, 2]], "exact");
        assert_eq!(r.queries, 2);
        assert_eq!(r.recall["1"], 0.5);
        assert_eq!(r.recall["5"], 1.0);
        let ms = Dataset {
            truth: Truth::MatchSets(vec![vec![3], vec![], vec![0, 1]]),
            ..ds
        };
        let r = score(&ms, &[vec![3], vec![0], vec![2, 3, 1]], "exact");
        assert_eq!((r.queries, r.recall["1"], r.recall["5"]), (2, 0.5, 1.0));
    }

    #[test]
    fn an_area_column_is_kept_for_the_database_rows() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("floors.csv");
        std::fs::write(
            &csv,
            "path,split,label,area\na.jpg,database,f1,lift\nb.jpg,query,f1,lift\nc.jpg,gallery,f2,hall\n",
        )
        .unwrap();
        let ds = Dataset::from_csv(&csv, 25.0).unwrap();
        assert_eq!(
            ds.database_areas,
            Some(vec!["lift".to_string(), "hall".to_string()])
        );
        std::fs::write(
            &csv,
            "path,split,label\na.jpg,database,f1\nb.jpg,query,f1\n",
        )
        .unwrap();
        assert_eq!(Dataset::from_csv(&csv, 25.0).unwrap().database_areas, None);
    }

    /// Image names with a comma and a quote, listed in a dataset CSV as spreadsheets quote them.
    #[test]
    fn dataset_paths_may_hold_commas_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let names = [r#"Tower, floor "1" a.jpg"#, r#"Tower, floor "1" b.jpg"#];
        for n in names {
            std::fs::write(dir.path().join(n), n).unwrap();
        }
        let csv = dir.path().join("tower.csv");
        std::fs::write(
            &csv,
            "path,split,lat,lon\n\
             \"Tower, floor \"\"1\"\" a.jpg\",database,45.0,10.0\n\
             \"Tower, floor \"\"1\"\" b.jpg\",query,45.0001,10.0\n",
        )
        .unwrap();
        let ds = Dataset::from_csv(&csv, 25.0).unwrap();
        assert_eq!(ds.database, [dir.path().join(names[0])]);
        assert_eq!(ds.queries, [dir.path().join(names[1])]);
        assert_eq!(std::fs::read_to_string(&ds.queries[0]).unwrap(), names[1]);
        assert!(ds.answerable(0));

        // A bad row is named by its line.
        std::fs::write(&csv, "path,split,label\na.jpg,database,x\nb.jpg,train,x\n").unwrap();
        let e = Dataset::from_csv(&csv, 25.0).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: line 3: split \"train\" is not query or database",
                csv.display()
            )
        );
    }

    #[test]
    fn positions_give_errors() {
        let p = |lat| GeoPoint::new(lat, 10.0);
        let ds = Dataset {
            name: "t".into(),
            queries: vec![PathBuf::new(); 2],
            database: vec![PathBuf::new(); 2],
            truth: Truth::Positions {
                queries: vec![p(45.0), p(46.0)],
                database: vec![p(45.0001), p(46.01)],
                radius_m: 25.0,
            },
            database_areas: None,
        };
        let r = score(&ds, &[vec![0, 1], vec![0, 1]], "exact");
        assert_eq!(r.queries, 1, "q1 has nothing within 25 m");
        assert_eq!(r.recall["1"], 1.0);
        assert!((r.median_error_m.unwrap() - 11.1).abs() < 0.2);
    }

    /// Per-query outcomes: the rank of the first correct item, the top-1 with its similarity and
    /// error; written as CSV with paths that need quoting, read back field for field.
    #[test]
    fn per_query_outcomes_rank_the_first_correct_item_and_round_trip_as_csv() {
        let p = |lat| GeoPoint::new(lat, 10.0);
        let ds = Dataset {
            name: "t".into(),
            queries: vec![PathBuf::from(r#"q, "one".jpg"#), PathBuf::from("q2.jpg")],
            database: vec![PathBuf::from("far.jpg"), PathBuf::from("near.jpg")],
            truth: Truth::Positions {
                queries: vec![p(45.0), p(46.0)],
                database: vec![p(45.01), p(45.0001)],
                radius_m: 25.0,
            },
            database_areas: None,
        };
        let (q, d) = (
            vec![vec![0.6, 0.8], vec![1.0, 0.0]],
            vec![vec![0.0, 1.0], vec![1.0, 0.0]],
        );
        let ranked = [vec![0, 1], vec![1, 0]];
        let out = per_query_outcomes(
            &ds,
            &ranked,
            (&q, &d),
            |q| ds.answerable(q),
            |q, d| ds.is_hit(q, d),
        );
        assert!(out[0].answerable && !out[1].answerable);
        assert_eq!(out[0].first_correct_rank, Some(2), "near.jpg is second");
        assert_eq!(out[1].first_correct_rank, None);
        assert_eq!(out[0].top1.as_deref(), Some(Path::new("far.jpg")));
        assert!((out[0].top1_similarity.unwrap() - 0.8).abs() < 1e-6);
        assert!((out[0].top1_error_m.unwrap() - 1112.0).abs() < 2.0);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("per-query.csv");
        write_per_query_csv(&file, &out).unwrap();
        let mut r = csv::Reader::from_path(&file).unwrap();
        assert_eq!(
            r.headers().unwrap(),
            vec![
                "query",
                "answerable",
                "first_correct_rank",
                "top1",
                "top1_similarity",
                "top1_error_m"
            ]
        );
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][0], r#"q, "one".jpg"#);
        assert_eq!(&rows[0][1], "true");
        assert_eq!(&rows[0][2], "2");
        assert_eq!(&rows[0][3], "far.jpg");
        assert_eq!(&rows[0][4], "0.800000");
        assert_eq!(&rows[1][2], "", "no correct item: an empty cell");
    }

    #[test]
    fn exact_search_orders_by_similarity() {
        let db = vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0]];
        let top = exact_top_k(&[vec![0.8, 0.6]], &db, 2);
        assert_eq!(top[0].iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 0]);
    }
}

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub describe: crate::model::describe::DescribeOptions,
    /// Also search with HNSW (built over the database) and report it.
    pub hnsw: bool,
    pub hnsw_params: crate::index::HnswParams,
    /// Also measure the full NetVLAD vectors, alone ("full") and re-scoring this many best
    /// matches of the compact descriptor ("two-stage"), on a model with whitening.
    pub two_stage: Option<usize>,
    /// Also measure geometric re-ranking of this many best exact matches ("reranked").
    pub rerank: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            describe: Default::default(),
            hnsw: true,
            hnsw_params: Default::default(),
            two_stage: None,
            rerank: None,
        }
    }
}

/// Geometric re-ranking: of each query's `k` best (`ranked`), the candidates whose local features
/// match the query's under one transform (`geometry`: mutual matches, RANSAC) move ahead,
/// most inliers first; the others, and everything after the `k`th, keep their order.
fn rerank(
    model: &crate::model::LoadedModel,
    (queries, database): (&[PathBuf], &[PathBuf]),
    ranked: &[Vec<usize>],
    k: usize,
    progress: &dyn crate::progress::ProgressSink,
    cancel: &crate::progress::CancelToken,
) -> Result<Vec<Vec<usize>>> {
    use crate::geometry::{verify, Extractor, LocalFeatures, VerifyOptions};
    let opts = VerifyOptions::default();
    let extractor = Extractor::new(model, &opts)?;
    // Leave-one-out queries are database items too: each image is extracted once.
    let mut features: std::collections::HashMap<PathBuf, LocalFeatures> = Default::default();
    let mut features_of = |path: &PathBuf| -> Result<LocalFeatures> {
        if !features.contains_key(path) {
            features.insert(path.clone(), extractor.extract(path)?);
        }
        Ok(features[path].clone())
    };
    let mut meter = crate::progress::ProgressMeter::new(progress, "eval");
    meter.stage("re-ranking", Some(ranked.len() as u64));
    let mut out = Vec::with_capacity(ranked.len());
    for (q, list) in ranked.iter().enumerate() {
        cancel.check()?;
        let fq = features_of(&queries[q])?;
        let head = k.min(list.len());
        let mut verified: Vec<(usize, usize)> = Vec::new(); // (inliers, position)
        for (pos, &d) in list[..head].iter().enumerate() {
            let v = verify(&fq, &features_of(&database[d])?, &opts);
            if v.verified {
                verified.push((v.inliers, pos));
            }
        }
        verified.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut order: Vec<usize> = verified.iter().map(|&(_, pos)| list[pos]).collect();
        order.extend(
            list.iter()
                .enumerate()
                .filter(|(pos, _)| *pos >= head || !verified.iter().any(|v| v.1 == *pos))
                .map(|(_, &d)| d),
        );
        out.push(order);
        meter.advance(1);
    }
    meter.finish();
    Ok(out)
}

/// The compact descriptors and, when `opts.two_stage` asks for them on a model with whitening,
/// the full NetVLAD vectors they were whitened from (one pass through the network for both).
struct Described {
    compact: Vec<Vec<f32>>,
    full: Option<Vec<Vec<f32>>>,
}

fn describe_for_eval(
    model: &crate::model::LoadedModel,
    paths: &[PathBuf],
    opts: &EvalOptions,
    cache: &crate::model::cache::DescriptorCache,
    progress: &dyn crate::progress::ProgressSink,
    cancel: &crate::progress::CancelToken,
) -> Result<Described> {
    use crate::model::Stage;
    let whiten = model
        .net
        .whiten
        .as_ref()
        .filter(|_| opts.two_stage.is_some());
    let Some(whiten) = whiten else {
        let compact = cache.describe(model, paths, &opts.describe, progress, cancel)?;
        return Ok(Described {
            compact,
            full: None,
        });
    };
    let describe = crate::model::describe::DescribeOptions {
        stage: Stage::NetVlad,
        ..opts.describe.clone()
    };
    let full = cache.describe(model, paths, &describe, progress, cancel)?;
    let mut compact = Vec::with_capacity(full.len());
    for chunk in full.chunks(64) {
        let dim = chunk[0].len();
        let flat: Vec<f32> = chunk.iter().flatten().copied().collect();
        let t = candle_core::Tensor::from_vec(flat, (chunk.len(), dim), &model.device)?;
        let w = candle_core::Module::forward(whiten, &t)?;
        compact.extend(w.to_device(&candle_core::Device::Cpu)?.to_vec2::<f32>()?);
    }
    Ok(Described {
        compact,
        full: Some(full),
    })
}

/// The two-stage rankings: "full" (exact search over the full vectors) and "two-stage" (each
/// query's `shortlist` best by the compact descriptor, re-scored by the full vectors), `k` each.
fn full_vector_searches(
    (queries, database): (&Described, &Described),
    shortlist: usize,
    k: usize,
) -> Vec<(String, Vec<Vec<usize>>)> {
    let (Some(qf), Some(df)) = (&queries.full, &database.full) else {
        return Vec::new();
    };
    let ids = |r: Vec<Vec<(usize, f32)>>| -> Vec<Vec<usize>> {
        r.into_iter()
            .map(|l| l.into_iter().map(|(i, _)| i).collect())
            .collect()
    };
    let full = ids(exact_top_k(qf, df, k));
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let two_stage = exact_top_k(&queries.compact, &database.compact, shortlist.max(k))
        .into_iter()
        .enumerate()
        .map(|(q, short)| {
            let mut rescored: Vec<(usize, f32)> = short
                .into_iter()
                .map(|(d, _)| (d, dot(&qf[q], &df[d])))
                .collect();
            rescored.sort_by(|a, b| b.1.total_cmp(&a.1));
            rescored.truncate(k);
            rescored.into_iter().map(|(d, _)| d).collect()
        })
        .collect();
    vec![
        ("full".to_string(), full),
        ("two-stage".to_string(), two_stage),
    ]
}

/// Ranked database indices per query from each search kind requested: [("exact", ..), ("hnsw", ..)].
pub fn search_all(
    queries: &[Vec<f32>],
    database: &[Vec<f32>],
    k: usize,
    opts: &EvalOptions,
) -> Result<Vec<(String, Vec<Vec<usize>>)>> {
    let dim = database.first().map(|v| v.len()).unwrap_or(0);
    let exact = crate::index::ExactIndex::with_vectors(
        dim,
        database
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| (i as i64, v)),
    );
    let to_ranked = |r: Vec<Vec<crate::index::Neighbor>>| -> Vec<Vec<usize>> {
        r.into_iter()
            .map(|l| l.into_iter().map(|n| n.id as usize).collect())
            .collect()
    };
    let mut out = vec![("exact".to_string(), to_ranked(exact.search(queries, k)))];
    if opts.hnsw {
        let items: Vec<(i64, Vec<f32>)> = database
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .collect();
        let index = crate::index::HnswIndex::build(dim, &items, opts.hnsw_params, "eval")?;
        out.push(("hnsw".to_string(), to_ranked(index.search(queries, k))));
    }
    Ok(out)
}

/// One query's outcome under exact search, for looking at the failures (`pinpoint eval
/// --per-query FILE.csv`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueryOutcome {
    pub query: PathBuf,
    /// Whether some database item is correct for it; recall counts only these queries.
    pub answerable: bool,
    /// 1-based rank of the first correct database item among the top 20; `None` when none is.
    pub first_correct_rank: Option<usize>,
    /// The database item ranked first, and its similarity to the query (dot product of unit
    /// descriptors).
    pub top1: Option<PathBuf>,
    pub top1_similarity: Option<f32>,
    /// Metres from the query's position to the first item's (datasets with positions).
    pub top1_error_m: Option<f64>,
}

/// What an evaluation found: recall and errors per search method, and each query's outcome under
/// exact search.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub results: Vec<EvalResult>,
    pub per_query: Vec<QueryOutcome>,
}

/// Each query's outcome under `ranked` (database indices, best first, the query itself left out);
/// `is_hit(q, d)` and `answerable(q)` are the dataset's truth.
fn per_query_outcomes(
    dataset: &Dataset,
    ranked: &[Vec<usize>],
    (queries, database): (&[Vec<f32>], &[Vec<f32>]),
    answerable: impl Fn(usize) -> bool,
    is_hit: impl Fn(usize, usize) -> bool,
) -> Vec<QueryOutcome> {
    ranked
        .iter()
        .enumerate()
        .map(|(q, list)| {
            let top = list.first().copied();
            QueryOutcome {
                query: dataset.queries[q].clone(),
                answerable: answerable(q),
                first_correct_rank: list.iter().position(|&d| is_hit(q, d)).map(|p| p + 1),
                top1: top.map(|d| dataset.database[d].clone()),
                top1_similarity: top.map(|d| {
                    queries[q]
                        .iter()
                        .zip(&database[d])
                        .map(|(a, b)| a * b)
                        .sum()
                }),
                top1_error_m: match (&dataset.truth, top) {
                    (
                        Truth::Positions {
                            queries, database, ..
                        },
                        Some(d),
                    ) => Some(queries[q].distance_m(&database[d])),
                    _ => None,
                },
            }
        })
        .collect()
}

/// Writes `outcomes` as CSV: query, answerable, first_correct_rank, top1, top1_similarity,
/// top1_error_m (empty cells where there is nothing to say).
pub fn write_per_query_csv(path: &Path, outcomes: &[QueryOutcome]) -> Result<()> {
    let write = || -> std::result::Result<(), csv::Error> {
        let mut w = csv::Writer::from_path(path)?;
        w.write_record([
            "query",
            "answerable",
            "first_correct_rank",
            "top1",
            "top1_similarity",
            "top1_error_m",
        ])?;
        let opt = |v: Option<String>| v.unwrap_or_default();
        for o in outcomes {
            w.write_record([
                o.query.display().to_string(),
                o.answerable.to_string(),
                opt(o.first_correct_rank.map(|r| r.to_string())),
                opt(o.top1.as_ref().map(|p| p.display().to_string())),
                opt(o.top1_similarity.map(|s| format!("{s:.6}"))),
                opt(o.top1_error_m.map(|m| format!("{m:.1}"))),
            ])?;
        }
        w.flush()?;
        Ok(())
    };
    write().map_err(|e| Error::invalid(format!("{}: cannot write: {e}", path.display())))
}

/// Evaluates `model` on a dataset: describes its images (through `cache`), searches, scores.
pub fn evaluate_dataset(
    model: &crate::model::LoadedModel,
    dataset: &Dataset,
    opts: &EvalOptions,
    cache: &crate::model::cache::DescriptorCache,
    progress: &dyn crate::progress::ProgressSink,
    cancel: &crate::progress::CancelToken,
) -> Result<Evaluation> {
    let queries = describe_for_eval(model, &dataset.queries, opts, cache, progress, cancel)?;
    let database = describe_for_eval(model, &dataset.database, opts, cache, progress, cancel)?;
    let (q, d) = (&queries.compact, &database.compact);
    let k = *RECALL_AT.last().unwrap();
    let mut results = Vec::new();
    let mut per_query = Vec::new();
    let mut searches = search_all(q, d, k, opts)?;
    if let Some(shortlist) = opts.two_stage {
        searches.extend(full_vector_searches((&queries, &database), shortlist, k));
    }
    if let Some(k) = opts.rerank {
        let exact = &searches[0].1;
        let files = (dataset.queries.as_slice(), dataset.database.as_slice());
        let reranked = rerank(model, files, exact, k, progress, cancel)?;
        searches.push(("reranked".to_string(), reranked));
    }
    for (kind, ranked) in searches {
        if kind == "exact" {
            per_query = per_query_outcomes(
                dataset,
                &ranked,
                (q, d),
                |q| dataset.answerable(q),
                |q, d| dataset.is_hit(q, d),
            );
        }
        results.push(score(dataset, &ranked, &kind));
    }
    Ok(Evaluation { results, per_query })
}

/// (confidence, landed within the radius) of one held-out proposal.
pub type CalibrationSample = (f64, bool);

/// What leave-one-out found: the evaluation, and for each photo its visual proposal's confidence
/// and whether that landed within its radius (for the calibration table).
pub struct LeaveOneOut {
    pub evaluation: Evaluation,
    pub calibration: Vec<CalibrationSample>,
}

/// Leave-one-out over a folder of geotagged photos: each photo is a query against all the others.
pub fn leave_one_out(
    model: &crate::model::LoadedModel,
    folder: &Path,
    radius_m: f64,
    opts: &EvalOptions,
    cache: &crate::model::cache::DescriptorCache,
    progress: &dyn crate::progress::ProgressSink,
    cancel: &crate::progress::CancelToken,
) -> Result<LeaveOneOut> {
    let mut photos: Vec<(PathBuf, GeoPoint)> = Vec::new();
    for entry in walkdir::WalkDir::new(folder)
        .follow_links(true)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let p = entry.path();
        if !entry.file_type().is_file()
            || !crate::library::format::format_from_extension(p)
                .is_some_and(|f| f.has_decodable_pixels() || f == crate::library::PhotoFormat::Raw)
        {
            continue;
        }
        let sidecar = crate::library::xmp::find_sidecar(p);
        if let Ok(md) = crate::library::read_photo_metadata(p, sidecar.as_deref()) {
            if let Some(loc) = md.location {
                photos.push((p.to_path_buf(), loc.point));
            }
        }
    }
    photos.sort_by(|a, b| a.0.cmp(&b.0));
    if photos.len() < 2 {
        return Err(Error::invalid(format!(
            "{}: needs at least two geotagged photos, found {}",
            folder.display(),
            photos.len()
        )));
    }
    let paths: Vec<PathBuf> = photos.iter().map(|p| p.0.clone()).collect();
    let described = describe_for_eval(model, &paths, opts, cache, progress, cancel)?;
    let vectors = &described.compact;
    let points: Vec<GeoPoint> = photos.iter().map(|p| p.1).collect();
    let dataset = Dataset {
        name: folder.display().to_string(),
        queries: paths.clone(),
        database: paths.clone(),
        truth: Truth::Positions {
            queries: points.clone(),
            database: points.clone(),
            radius_m,
        },
        database_areas: None,
    };
    let k = *RECALL_AT.last().unwrap() + 1;
    let mut results = Vec::new();
    let mut per_query = Vec::new();
    let mut searches = search_all(vectors, vectors, k, opts)?;
    if let Some(shortlist) = opts.two_stage {
        searches.extend(full_vector_searches((&described, &described), shortlist, k));
    }
    // Drop each query itself from its own list.
    let mut searches: Vec<(String, Vec<Vec<usize>>)> = searches
        .into_iter()
        .map(|(kind, ranked)| {
            let ranked = ranked
                .into_iter()
                .enumerate()
                .map(|(q, l)| l.into_iter().filter(|&d| d != q).collect())
                .collect();
            (kind, ranked)
        })
        .collect();
    if let Some(k) = opts.rerank {
        let reranked = rerank(model, (&paths, &paths), &searches[0].1, k, progress, cancel)?;
        searches.push(("reranked".to_string(), reranked));
    }
    for (kind, ranked) in searches {
        if kind == "exact" {
            let within =
                |q: usize, d: usize| d != q && points[q].distance_m(&points[d]) <= radius_m;
            per_query = per_query_outcomes(
                &dataset,
                &ranked,
                (vectors, vectors),
                |q| (0..points.len()).any(|d| within(q, d)),
                &within,
            );
        }
        results.push(score_excluding_self(&dataset, &ranked, &kind));
    }
    // Calibration: the visual proposal of each photo from the others.
    let exact = crate::index::ExactIndex::with_vectors(
        vectors[0].len(),
        vectors
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| (i as i64, v)),
    );
    let found = exact.search(&vectors, crate::locate::LocateOptions::default().k + 1);
    let calibration = crate::locate::calibrate::Calibration::default();
    let opts_l = crate::locate::LocateOptions::default();
    let mut samples = Vec::new();
    for (q, list) in found.into_iter().enumerate() {
        let matches: Vec<crate::locate::visual::Match> = list
            .into_iter()
            .filter(|n| n.id as usize != q)
            .map(|n| crate::locate::visual::Match {
                similarity: n.similarity,
                reference: crate::locate::references::RefInfo {
                    location: points[n.id as usize],
                    source: "library".into(),
                    path_or_id: paths[n.id as usize].display().to_string(),
                    photo_id: Some(n.id),
                    taken_at: None,
                    camera: None,
                    attribution: None,
                    ref_id: None,
                },
                inliers: None,
            })
            .collect();
        let clusters = crate::locate::visual::cluster(&matches, opts_l.cluster_radius_m);
        if let Some(best) = clusters.first() {
            let f = crate::locate::visual::features(&matches, &clusters, 0);
            let conf = calibration.visual.probability(&f.as_vec());
            let within = points[q].distance_m(&best.centre)
                <= crate::locate::visual::radius(best, opts_l.cluster_radius_m);
            samples.push((conf, within));
        }
    }
    Ok(LeaveOneOut {
        evaluation: Evaluation { results, per_query },
        calibration: samples,
    })
}

/// [`score`] for leave-one-out, where the query is also a database item: it is not its own match.
fn score_excluding_self(dataset: &Dataset, ranked: &[Vec<usize>], search: &str) -> EvalResult {
    let Truth::Positions {
        queries,
        database,
        radius_m,
    } = &dataset.truth
    else {
        return score(dataset, ranked, search);
    };
    let mut hits = [0usize; RECALL_AT.len()];
    let mut counted = 0;
    let mut errors = Vec::new();
    for (q, list) in ranked.iter().enumerate() {
        let answerable =
            (0..database.len()).any(|d| d != q && queries[q].distance_m(&database[d]) <= *radius_m);
        if let Some(&top) = list.first() {
            errors.push(queries[q].distance_m(&database[top]));
        }
        if !answerable {
            continue;
        }
        counted += 1;
        let first_hit = list
            .iter()
            .position(|&d| queries[q].distance_m(&database[d]) <= *radius_m);
        for (i, &k) in RECALL_AT.iter().enumerate() {
            if first_hit.is_some_and(|p| p < k) {
                hits[i] += 1;
            }
        }
    }
    errors.sort_by(f64::total_cmp);
    EvalResult {
        search: search.to_string(),
        queries: counted,
        recall: RECALL_AT
            .iter()
            .zip(hits)
            .map(|(k, h)| {
                (
                    k.to_string(),
                    if counted > 0 {
                        h as f64 / counted as f64
                    } else {
                        0.0
                    },
                )
            })
            .collect(),
        median_error_m: percentile(&errors, 0.5),
        p90_error_m: percentile(&errors, 0.9),
    }
}
