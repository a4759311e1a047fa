//! Scan benchmark: a cold scan (empty catalog) and an unchanged rescan of the same tree, against
//! `exiftool -n -fast2 -r -j -GPSLatitude -GPSLongitude -DateTimeOriginal` on that tree.
//!
//! The tree is made of hard links to the real photos of the shared corpus (every photo format
//! Pinpoint reads), spread over folders of 500 files, so that 100k files take no disk space.
//! The page cache is warm for both tools: this compares CPU work, not the disk.
//!
//!     cargo bench --bench scan -- [--files 10000] [--rescan-files 100000] [--exiftool-files 5000]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pinpoint::library::format::format_from_extension;
use pinpoint::library::{read_photo_metadata, scan, ScanOptions};
use pinpoint::progress::{CancelToken, NoProgress};
use pinpoint::Catalog;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn corpus_photos() -> Vec<PathBuf> {
    let shared = std::env::var_os("PINPOINT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(shared.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && format_from_extension(e.path()).is_some())
        .map(|e| e.into_path())
        .filter(|p| read_photo_metadata(p, None).is_ok())
        .collect();
    out.sort();
    out
}

fn build_tree(dir: &Path, sources: &[PathBuf], n: usize) {
    if dir.join(".complete").is_file() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    for i in 0..n {
        let src = &sources[i % sources.len()];
        let folder = dir.join(format!("{:04}", i / 500));
        if i % 500 == 0 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        let ext = src.extension().unwrap().to_string_lossy();
        std::fs::hard_link(src, folder.join(format!("photo_{i:06}.{ext}"))).unwrap();
    }
    std::fs::write(dir.join(".complete"), b"").unwrap();
}

fn timed_scan(catalog: &mut Catalog) -> (f64, pinpoint::library::ScanReport) {
    let t = Instant::now();
    let r = scan(
        catalog,
        &[],
        &ScanOptions::default(),
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    (t.elapsed().as_secs_f64(), r)
}

fn scan_tree(work: &Path, tree: &Path) -> (f64, f64, u64) {
    let db = work.join(format!(
        "{}.sqlite",
        tree.file_name().unwrap().to_string_lossy()
    ));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let mut catalog = Catalog::open(&db).unwrap();
    catalog.add_root(tree).unwrap();
    let (cold, r) = timed_scan(&mut catalog);
    let (warm, r2) = timed_scan(&mut catalog);
    assert_eq!(r2.read, 0, "rescan read files");
    (cold, warm, r.files_seen)
}

fn main() {
    let files = arg("--files", 10_000);
    let rescan_files = arg("--rescan-files", 100_000);
    let exiftool_files = arg("--exiftool-files", 5_000);
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&work).unwrap();
    let sources = corpus_photos();
    println!(
        "sources: {} distinct real photos from the shared corpus",
        sources.len()
    );

    let tree = work.join(format!("scan-tree-{files}"));
    build_tree(&tree, &sources, files);
    let (cold, warm, seen) = scan_tree(&work, &tree);
    println!(
        "pinpoint cold scan   {seen:>7} files  {cold:>7.2} s  {:>9.0} files/s",
        seen as f64 / cold
    );
    println!(
        "pinpoint rescan      {seen:>7} files  {warm:>7.2} s  {:>9.0} files/s",
        seen as f64 / warm
    );

    let big = work.join(format!("scan-tree-{rescan_files}"));
    build_tree(&big, &sources, rescan_files);
    let (cold_big, warm_big, seen_big) = scan_tree(&work, &big);
    println!(
        "pinpoint cold scan   {seen_big:>7} files  {cold_big:>7.2} s  {:>9.0} files/s",
        seen_big as f64 / cold_big
    );
    println!("pinpoint rescan      {seen_big:>7} files  {warm_big:>7.2} s  {:>9.0} files/s   (target < 5 s)", seen_big as f64 / warm_big);

    let small = work.join(format!("scan-tree-{exiftool_files}"));
    build_tree(&small, &sources, exiftool_files);
    let t = Instant::now();
    let out = Command::new("exiftool")
        .args([
            "-n",
            "-fast2",
            "-r",
            "-j",
            "-q",
            "-q",
            "-GPSLatitude",
            "-GPSLongitude",
            "-DateTimeOriginal",
        ])
        .arg(&small)
        .output()
        .expect("exiftool (Debian: libimage-exiftool-perl)");
    let et = t.elapsed().as_secs_f64();
    let n: usize = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .map(|v| v.as_array().map_or(0, |a| a.len()))
        .unwrap_or(0);
    let (cold_small, _, seen_small) = scan_tree(&work, &small);
    let et_rate = n as f64 / et;
    let pp_rate = seen_small as f64 / cold_small;
    println!("exiftool -fast2      {n:>7} files  {et:>7.2} s  {et_rate:>9.0} files/s");
    println!(
        "pinpoint cold scan   {seen_small:>7} files  {cold_small:>7.2} s  {pp_rate:>9.0} files/s"
    );
    println!(
        "cold scan vs exiftool: {:.1}x (target >= 20x)",
        pp_rate / et_rate
    );
}
