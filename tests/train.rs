//! `pinpoint train --dataset` on the IE-tower sample (floors as places): before and after recall
//! on held-out frames, the new model written only when it is better, and runs that repeat exactly
//! for a fixed seed.

mod common;

use std::path::{Path, PathBuf};

use common::{ie_tower_frames, pinpoint_json, places, write_csv};

/// A subset of the IE-tower sample in Pinpoint's CSV format: `per_floor` database frames of each
/// floor (every few frames, so that they span the floor's areas) and every `query_every`th query.
fn ie_tower_subset(dir: &Path, per_floor: usize, query_every: usize) -> PathBuf {
    let mut by_floor: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut queries = Vec::new();
    for f in ie_tower_frames() {
        let path = f.path.display().to_string();
        if f.is_query {
            queries.push(vec![path, "query".to_string(), f.label]);
        } else {
            by_floor.entry(f.label).or_default().push(path);
        }
    }
    let mut rows = Vec::new();
    for (floor, frames) in &by_floor {
        let step = (frames.len() / per_floor).max(1);
        for p in frames.iter().step_by(step).take(per_floor) {
            rows.push(vec![p.clone(), "database".to_string(), floor.clone()]);
        }
    }
    rows.extend(queries.into_iter().step_by(query_every));
    let path = dir.join("ie-tower-subset.csv");
    write_csv(&path, &["path", "split", "label"], &rows);
    path
}

#[test]
fn training_reports_recall_before_and_after_and_repeats_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let csv = ie_tower_subset(dir.path(), 20, 4);
    let catalog = dir.path().join("c.sqlite");
    let out = dir.path().join("tuned");
    let run = |seed: &str, steps: &str| {
        pinpoint_json(
            &catalog,
            &[
                "train",
                "--dataset",
                csv.to_str().unwrap(),
                "--max-steps",
                steps,
                "--seed",
                seed,
                "--long-side",
                "224",
                // Verification is exercised by the tests below; here it would only repeat work.
                "--no-verify",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    let (code, a) = run("7", "12");
    assert_eq!(code, 0, "{a}");
    assert_eq!(a["steps"], 12);
    assert_eq!(a["before"][0]["queries"], 16, "{a}");
    assert_eq!(a["after"][0]["queries"], 16, "{a}");
    let losses: Vec<f64> = a["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 12);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l >= 0.0),
        "{losses:?}"
    );
    assert!(
        losses.iter().any(|l| *l > 0.0),
        "no triplet ever violated the margin: {losses:?}"
    );
    for key in ["1", "5"] {
        let r = a["after"][0]["recall"][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&r));
    }
    // Adopted means written (and loadable); not adopted means nothing written.
    if a["adopted"] == true {
        let m = pinpoint::model::LoadedModel::load(&out, &candle_core::Device::Cpu).unwrap();
        assert!(m.card.descriptor.crn);
        assert!(m.net.crn.is_some());
        std::fs::remove_dir_all(&out).unwrap();
    } else {
        assert!(!out.exists());
        assert!(a["reason"].as_str().unwrap().contains("stays"), "{a}");
    }

    // The same seed gives the same run; another seed another one.
    let (_, b) = run("7", "12");
    assert_eq!(a["losses"], b["losses"]);
    assert_eq!(a["after"], b["after"]);
    let (_, c) = run("8", "12");
    assert_ne!(a["losses"], c["losses"]);
}

#[test]
fn datasets_without_places_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("c.sqlite");
    // Corridor (VPR-Bench): query-to-reference matches only, no place per reference.
    let corridor = places().join("corridor");
    let out = common::pinpoint(
        &catalog,
        &[
            "train",
            "--dataset",
            corridor.to_str().unwrap(),
            "--max-steps",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("labels or positions"), "{err}");
}

/// A run stopped part-way (here by cancelling it from its progress, as Ctrl-C or the app's Cancel
/// do) keeps a checkpoint; the same run started again continues from it and ends exactly where an
/// uninterrupted run with the same seed ends: same losses, same held-out recall.
#[test]
fn a_stopped_run_continues_from_its_checkpoint_with_identical_results() {
    use pinpoint::progress::{CancelToken, NoProgress, ProgressUpdate};
    use pinpoint::train::{train_on_dataset, TrainOptions};

    let dir = tempfile::tempdir().unwrap();
    let csv = ie_tower_subset(dir.path(), 8, 16);
    let model = pinpoint::model::LoadedModel::load(
        &pinpoint::model::default_model_path(),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let dataset = pinpoint::eval::Dataset::load(&csv, 25.0).unwrap();
    let cache =
        pinpoint::model::cache::DescriptorCache::open(&dir.path().join("cache.sqlite")).unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let opts = TrainOptions {
        max_steps: 10,
        queries: 2,
        extra: 4,
        long_side: Some(224),
        seed: 11,
        checkpoint_every: 3,
        checkpoints: Some(checkpoints.clone()),
        ..Default::default()
    };
    let out = dir.path().join("model");

    let whole = train_on_dataset(
        &model,
        &dataset,
        &TrainOptions {
            checkpoints: None,
            ..opts.clone()
        },
        &out,
        &cache,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(whole.steps, 10);
    if out.exists() {
        std::fs::remove_dir_all(&out).unwrap();
    }

    // Stopped once training has passed step 4.
    let cancel = CancelToken::new();
    let stop = cancel.clone();
    let sink = move |u: &ProgressUpdate| {
        if u.stage == "training" && u.done >= 4 {
            stop.cancel();
        }
    };
    let stopped = train_on_dataset(&model, &dataset, &opts, &out, &cache, &sink, &cancel).unwrap();
    assert!(stopped.cancelled);
    assert!(!stopped.adopted && !out.exists());
    assert!(
        (4..10).contains(&stopped.steps),
        "stopped at {}",
        stopped.steps
    );
    assert_eq!(stopped.losses[..], whole.losses[..stopped.steps]);
    let kept = stopped
        .checkpoint
        .clone()
        .expect("a stopped run keeps its checkpoint");
    assert!(kept.starts_with(&checkpoints));
    assert!(kept.join("state.json").is_file() && kept.join("loss.svg").is_file());
    assert!(stopped.reason.contains("continue"), "{}", stopped.reason);

    // The same run again: it continues, and ends as the uninterrupted one did.
    let resumed = train_on_dataset(
        &model,
        &dataset,
        &opts,
        &out,
        &cache,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(resumed.resumed_from, Some(stopped.steps));
    assert_eq!(resumed.steps, 10);
    assert_eq!(resumed.losses, whole.losses);
    assert_eq!(
        serde_json::to_value(&resumed.after).unwrap(),
        serde_json::to_value(&whole.after).unwrap()
    );
    assert_eq!(resumed.adopted, whole.adopted);
    // Finished: nothing left to continue.
    assert!(resumed.checkpoint.is_none());
    assert!(!kept.exists());

    // Another seed is another run: it does not pick up a checkpoint of this one.
    let other = train_on_dataset(
        &model,
        &dataset,
        &TrainOptions {
            seed: 12,
            max_steps: 1,
            ..opts.clone()
        },
        &dir.path().join("other"),
        &cache,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(other.resumed_from, None);
}

/// Copies the bundled sample library (Tuscany, Berlin and Sacre-Coeur photos; 14 of them tagged
/// by EXIF or sidecar) into `dir` and catalogues it.
fn sample_catalog(dir: &Path, folders: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-library");
    let lib = dir.join("library");
    for folder in folders {
        for e in std::fs::read_dir(src.join(folder)).unwrap() {
            let p = e.unwrap().path();
            common::copy_into(&p, &lib.join(folder).join(p.file_name().unwrap()));
        }
    }
    let catalog = dir.join("catalog.sqlite");
    let (code, r) = pinpoint_json(&catalog, &["library", "add", lib.to_str().unwrap()]);
    assert_eq!(code, 0, "{r}");
    let (code, r) = pinpoint_json(&catalog, &["scan"]);
    assert_eq!(code, 0, "{r}");
    catalog
}

/// `pinpoint train` without a dataset learns from the catalog's own tagged photos, holding whole
/// places out to judge on; an adopted model becomes the catalog's model.
#[test]
fn training_on_the_catalog_holds_out_whole_places() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = sample_catalog(dir.path(), &["tuscany", "berlin", "sacre-coeur"]);
    let out = dir.path().join("tuned");
    let (code, r) = pinpoint_json(
        &catalog,
        &[
            "train",
            "--max-steps",
            "6",
            "--long-side",
            "224",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{r}");
    let split = &r["split"];
    // 14 tagged photos: 9 around a Tuscan village (several 250 m blocks), 3 in Berlin, 2 at the
    // Sacre-Coeur (sidecars).
    assert_eq!(
        split["queries"].as_u64().unwrap() + split["database"].as_u64().unwrap(),
        14,
        "{split}"
    );
    assert!(split["blocks"].as_u64().unwrap() >= 4, "{split}");
    assert!(split["held_out_blocks"].as_u64().unwrap() >= 1, "{split}");
    let queries = split["queries"].as_u64().unwrap();
    assert!(queries >= 1);
    assert!(split["training_photos"].as_u64().unwrap() < 14 - queries);
    assert_eq!(r["before"][0]["queries"], queries);
    assert_eq!(r["after"][0]["queries"], queries);
    assert_eq!(r["steps"], 6);
    // Positives were checked geometrically (the Berlin and Sacre-Coeur neighbours at least).
    let v = &r["verification"];
    assert!(v["pairs_checked"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["pairs_verified"].as_u64().unwrap() <= v["pairs_checked"].as_u64().unwrap());
    let (_, info) = pinpoint_json(&catalog, &["model", "info"]);
    if r["adopted"] == true {
        // The catalog now describes and proposes with the new model.
        let m = pinpoint::model::LoadedModel::load(&out, &candle_core::Device::Cpu).unwrap();
        assert_eq!(info["sha256"], m.hash.as_str());
        assert!(out.join("loss.svg").is_file());
    } else {
        assert!(!out.exists());
        let builtin = pinpoint::model::LoadedModel::load(
            &pinpoint::model::default_model_path(),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_eq!(info["sha256"], builtin.hash.as_str());
    }
}

#[test]
fn a_catalog_of_one_place_cannot_be_judged() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = sample_catalog(dir.path(), &["berlin"]);
    let out = common::pinpoint(&catalog, &["train", "--max-steps", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least two places"), "{err}");
}
