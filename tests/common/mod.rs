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

/// A frame of the IE-tower sample, as its `dataset.csv` lists it (read by column name).
pub struct IeTowerFrame {
    /// The path `dataset.csv` gives, relative to the sample's `data/` folder.
    pub image_path: String,
    /// The frame's file.
    pub path: PathBuf,
    /// Its floor (the place label).
    pub label: String,
    /// A query frame (else a database, "gallery", frame).
    pub is_query: bool,
}

/// The IE-tower sample's frames in `dataset.csv` order.
pub fn ie_tower_frames() -> Vec<IeTowerFrame> {
    #[derive(serde::Deserialize)]
    struct Row {
        image_path: String,
        label: String,
        split: String,
    }
    let root = places().join("ie-tower-sample");
    let csv = root.join("dataset.csv");
    csv::Reader::from_path(&csv)
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()))
        .deserialize::<Row>()
        .map(|row| {
            let row = row.unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
            IeTowerFrame {
                path: root.join("data").join(&row.image_path),
                image_path: row.image_path,
                label: row.label,
                is_query: row.split == "query",
            }
        })
        .collect()
}

/// Writes a CSV file: `header`, then `rows`, quoted where a field needs it (a comma or a quote
/// in a path).
pub fn write_csv<R: AsRef<[String]>>(path: &Path, header: &[&str], rows: &[R]) {
    let mut w = csv::Writer::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    w.write_record(header).unwrap();
    for row in rows {
        w.write_record(row.as_ref()).unwrap();
    }
    w.flush().unwrap();
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

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
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

/// A real HTTP/1.1 file server on 127.0.0.1 for download tests: GET with Range support, 404s,
/// and a switch that cuts the connection after a number of body bytes (a dropped download).
pub struct HttpServer {
    pub base: String,
    cut_after: std::sync::Arc<std::sync::Mutex<Option<usize>>>,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The User-Agent header of each request, in order.
    pub user_agents: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
}

impl HttpServer {
    pub fn serve(root: &Path) -> HttpServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let cut_after = std::sync::Arc::new(std::sync::Mutex::new(None::<usize>));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let user_agents = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (root, cut, log) = (root.to_path_buf(), cut_after.clone(), requests.clone());
        let (agents, stop) = (user_agents.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break; // dropping the listener: later connections are refused
                }
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut range: Option<u64> = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = v.trim().trim_end_matches('-').parse().ok();
                    }
                    if h.to_ascii_lowercase().starts_with("user-agent:") {
                        agents
                            .lock()
                            .unwrap()
                            .push(h["user-agent:".len()..].trim().to_string());
                    }
                }
                log.lock()
                    .unwrap()
                    .push(format!("{} range={range:?}", request_line.trim()));
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_string();
                let file = root.join(&path);
                let Ok(body) = std::fs::read(&file) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let start = range.unwrap_or(0) as usize;
                if start >= body.len() && range.is_some() {
                    let _ = write!(stream, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", body.len());
                    continue;
                }
                let part = &body[start..];
                let head = if range.is_some() {
                    format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len() - 1, body.len(), part.len())
                } else {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", part.len())
                };
                let _ = stream.write_all(head.as_bytes());
                // Only a response longer than the limit is cut (not a small catalog fetched first).
                let limit = {
                    let mut c = cut.lock().unwrap();
                    if c.is_some_and(|l| l < part.len()) {
                        c.take()
                    } else {
                        None
                    }
                };
                let n = limit.unwrap_or(part.len());
                let _ = stream.write_all(&part[..n]);
                let _ = stream.flush();
                // Dropping the stream closes the connection, mid-body when cut.
            }
        });
        HttpServer {
            base,
            cut_after,
            requests,
            user_agents,
            stopped,
            addr,
        }
    }

    /// Shuts the server down: from now on connections to it are refused (the network is gone).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and drops the listener.
        let _ = std::net::TcpStream::connect(self.addr);
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(self.addr).is_ok() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "the server did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The next response whose body is longer than `bytes` stops after `bytes`.
    pub fn cut_next_after(&self, bytes: usize) {
        *self.cut_after.lock().unwrap() = Some(bytes);
    }
}

/// Nothing of a reference database is installed: the install folder holds at most resumable
/// downloads, and the catalog lists no database.
pub fn nothing_half_installed(catalog_db: &Path) {
    let dir = PathBuf::from(format!("{}.refdbs", catalog_db.display()));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(name == ".staging", "left in the install folder: {name}");
        }
        if let Ok(staging) = std::fs::read_dir(dir.join(".staging")) {
            for e in staging.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(name.ends_with(".download"), "staging holds {name}");
            }
        }
    }
    let (_, list) = pinpoint_json(catalog_db, &["refdb", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}
