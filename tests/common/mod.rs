//! Helpers shared by the integration tests: where the shared corpora are, running the CLI,
//! fresh temporary libraries and catalogs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The read-only shared test data (`../shared/data` beside the project, or `$PINPOINT_SHARED/data`).
pub fn shared() -> PathBuf {
    let base = std::env::var_os("PINPOINT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let data = base.join("data");
    assert!(
        data.is_dir(),
        "shared test data not found at {} (set PINPOINT_SHARED to the folder holding data/)",
        data.display()
    );
    data
}

pub fn exif_corpus() -> PathBuf {
    shared().join("exif")
}

pub fn places() -> PathBuf {
    shared().join("places")
}

/// Runs the `pinpoint` binary with a catalog; returns its output.
pub fn pinpoint(catalog: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinpoint"))
        .arg("--catalog")
        .arg(catalog)
        .arg("--quiet")
        .args(args)
        .output()
        .expect("run pinpoint")
}

/// Runs `pinpoint ... --json` and parses standard output.
pub fn pinpoint_json(catalog: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a: Vec<&str> = args.to_vec();
    a.push("--json");
    let out = pinpoint(catalog, &a);
    let code = out.status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pinpoint {args:?} printed no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, json)
}

/// Copies a file, creating parent folders. The copy is writable, as photos in a library are
/// (the shared corpus itself is read-only).
pub fn copy_into(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(src, dst)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dst.display()));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A small library of real photos with GPS copied from the shared corpus: (name, source).
pub fn gps_sample() -> Vec<(String, PathBuf)> {
    let dir = exif_corpus().join("ianare-exif-samples/jpg/gps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect()
}

/// exiftool must be installed (Debian: libimage-exiftool-perl); the tests compare against it.
pub fn exiftool_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("exiftool")
        .args(args)
        .output()
        .expect("exiftool is required for these tests: apt-get install libimage-exiftool-perl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("exiftool printed no JSON: {e}"))
}
