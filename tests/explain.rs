//! `pinpoint explain`: the CRN mask of a real street photo as a heat map, and a clear refusal for
//! a model without CRN.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::{pinpoint, pinpoint_json, places};

/// The built-in model's weights plus a CRN with fixed, non-trivial filters (what `train` adds).
fn model_with_crn(dir: &std::path::Path) -> std::path::PathBuf {
    let weights = pinpoint::model::default_model_path().join("model.safetensors");
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    for (name, k, out) in pinpoint::model::crn::FILTERS {
        let n = out * 512 * k * k;
        let w: Vec<f32> = (0..n).map(|i| 0.02 * (i as f32 * 0.7).sin()).collect();
        tensors.insert(
            format!("aggregation.crn.{name}.weight"),
            Tensor::from_vec(w, (out, 512, k, k), &Device::Cpu).unwrap(),
        );
        tensors.insert(
            format!("aggregation.crn.{name}.bias"),
            Tensor::full(0.05f32, out, &Device::Cpu).unwrap(),
        );
    }
    tensors.insert(
        "aggregation.crn.acc_w.bias".into(),
        Tensor::full(0.2f32, 1, &Device::Cpu).unwrap(),
    );
    let tensors: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, v)| (k, v.to_dtype(DType::F32).unwrap()))
        .collect();
    let path = dir.join("with-crn.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

#[test]
fn explain_draws_the_crn_mask_over_the_photo() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("c.sqlite");
    let photo = places().join("berlin-triplet/01.jpg");
    let out = dir.path().join("heat.png");

    // The built-in model has no CRN: nothing to show, and the message says why and what to do.
    let refused = pinpoint(
        &catalog,
        &[
            "explain",
            photo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("no CRN") && err.contains("pinpoint train"),
        "{err}"
    );
    assert!(!out.exists());

    let model = model_with_crn(dir.path());
    let (code, j) = pinpoint_json(
        &catalog,
        &[
            "explain",
            photo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{j}");
    // 3264x2448 fitted to 640x480: a 40x30 conv5_3 grid.
    assert_eq!(j["mask"]["input"], serde_json::json!([640, 480]));
    assert_eq!(j["mask"]["grid"], serde_json::json!([40, 30]));
    let values: Vec<f64> = j["mask"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 1200);
    let (min, max) = (
        j["mask"]["min"].as_f64().unwrap(),
        j["mask"]["max"].as_f64().unwrap(),
    );
    assert!(values.iter().all(|v| (min..=max).contains(v)));
    assert!(max > min * 1.5, "a flat mask ({min}..{max}) shows nothing");

    // The picture: the photo's size, brightest where the mask is largest, darkest where smallest
    // (the palette runs from dark blue to yellow).
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (640, 480));
    let cell = |i: usize| {
        let (x, y) = ((i % 40) as u32 * 16 + 8, (i / 40) as u32 * 16 + 8);
        img.get_pixel(x, y).0
    };
    let argmax = (0..1200)
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap();
    let argmin = (0..1200)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap();
    let (hot, cold) = (cell(argmax), cell(argmin));
    assert!(
        hot[0] as i32 + hot[1] as i32 > cold[0] as i32 + cold[1] as i32 + 60,
        "hot {hot:?} vs cold {cold:?}"
    );
    assert!(
        cold[2] > cold[1],
        "the least weighted region is blue: {cold:?}"
    );

    // A photo that cannot be read: an error naming it.
    let bad = dir.path().join("not-a-photo.jpg");
    std::fs::write(&bad, b"plain text").unwrap();
    let failed = pinpoint(
        &catalog,
        &[
            "explain",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(failed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("not-a-photo.jpg"));
}
