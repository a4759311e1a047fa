//! `pinpoint train --dataset` on the IE-tower sample (floors as places): before and after recall
//! on held-out frames, the new model written only when it is better, and runs that repeat exactly
//! for a fixed seed.

mod common;

use std::path::{Path, PathBuf};

use common::{pinpoint_json, places};

/// A subset of the IE-tower sample in Pinpoint's CSV format: `per_floor` database frames of each
/// floor (every few frames, so that they span the floor's areas) and every `query_every`th query.
fn ie_tower_subset(dir: &Path, per_floor: usize, query_every: usize) -> PathBuf {
    let root = places().join("ie-tower-sample");
    let text = std::fs::read_to_string(root.join("dataset.csv")).unwrap();
    let mut by_floor: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut queries = Vec::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let path = root.join("data").join(c[0]).display().to_string();
        if c[2] == "query" {
            queries.push(format!("{path},query,{}", c[1]));
        } else {
            by_floor.entry(c[1].to_string()).or_default().push(path);
        }
    }
    let mut csv = String::from("path,split,label\n");
    for (floor, frames) in &by_floor {
        let step = (frames.len() / per_floor).max(1);
        for p in frames.iter().step_by(step).take(per_floor) {
            csv.push_str(&format!("{p},database,{floor}\n"));
        }
    }
    for q in queries.iter().step_by(query_every) {
        csv.push_str(q);
        csv.push('\n');
    }
    let path = dir.join("ie-tower-subset.csv");
    std::fs::write(&path, csv).unwrap();
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
