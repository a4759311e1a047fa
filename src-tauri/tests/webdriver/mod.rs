//! A minimal W3C WebDriver client and the launch of the real app under Xvfb through tauri-driver,
//! shared by the end-to-end test and the 100k-photo UI benchmark.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The W3C WebDriver key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecb";

/// Stops a child process and its process group when dropped (tauri-driver's WebKitWebDriver, and
/// Xvfb, which removes its lock file on SIGTERM), so that a test leaves nothing running.
pub struct Reaper(Child, &'static str);

impl Drop for Reaper {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn tool(name: &str, hint: &str) -> PathBuf {
    let local = workspace().join("target/tools/bin").join(name);
    if local.is_file() {
        return local;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join(name).is_file() {
            return dir.join(name);
        }
    }
    panic!("{name} not found: {hint}");
}

pub struct Xvfb {
    pub display: String,
    _proc: Reaper,
}

pub fn start_xvfb() -> Xvfb {
    let xvfb = tool(
        "Xvfb",
        "apt-get install xvfb (scripts/install-deps.sh does)",
    );
    for n in 0..20 {
        let num = 90 + (std::process::id() % 100) as usize + n * 7;
        let display = format!(":{num}");
        let lock = format!("/tmp/.X{num}-lock");
        if Path::new(&lock).exists() {
            continue;
        }
        let child = Command::new(&xvfb)
            .process_group(0)
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut proc = Reaper(child, "Xvfb");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if Path::new(&format!("/tmp/.X11-unix/X{num}")).exists() {
                return Xvfb {
                    display,
                    _proc: proc,
                };
            }
            if let Ok(Some(_)) = proc.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("could not start Xvfb on a free display");
}

/// A W3C WebDriver session spoken over HTTP.
pub struct Session {
    /// The X display of the app's window.
    pub display: String,
    pub base: String,
    pub id: String,
    pub agent: ureq::Agent,
    pub shots: PathBuf,
}

impl Session {
    pub fn post(&self, path: &str, body: Value) -> Value {
        self.try_post(path, &body)
            .unwrap_or_else(|err| panic!("POST {path} {body}: {err}"))
    }

    /// A command's value, or the WebDriver error ("stale element reference" and its message).
    fn try_post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}/session/{}{}", self.base, self.id, path);
        let mut r = self
            .agent
            .post(&url)
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let v: Value = r.body_mut().read_json().unwrap();
        match v["value"].get("error") {
            Some(err) => Err(format!("{err} {}", v["value"]["message"])),
            None => Ok(v["value"].clone()),
        }
    }

    pub fn get(&self, path: &str) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.id, path);
        let mut r = self
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let v: Value = r.body_mut().read_json().unwrap();
        v["value"].clone()
    }

    pub fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Runs an async script: the last argument is the callback.
    pub fn js_async(&self, script: &str) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": [] }))
    }

    pub fn find(&self, css: &str) -> Option<String> {
        let url = format!("{}/session/{}/element", self.base, self.id);
        let mut r = self
            .agent
            .post(&url)
            .send_json(json!({ "using": "css selector", "value": css }))
            .ok()?;
        let v: Value = r.body_mut().read_json().ok()?;
        // A found element comes as {"element-6066-...": id} (or the legacy {"ELEMENT": id});
        // "no such element" as {"error": ..., "message": ...}, which is not an element.
        let value = v["value"].as_object()?;
        if value.contains_key("error") {
            return None;
        }
        value
            .get(ELEMENT_KEY)
            .or_else(|| value.get("ELEMENT"))
            .or_else(|| value.values().next())
            .and_then(|x| x.as_str())
            .map(str::to_string)
    }

    pub fn wait_for(&self, css: &str, secs: u64) -> String {
        let start = Instant::now();
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                self.screenshot("failure");
                panic!("{css} did not appear within {secs} s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a script returns something truthy; returns it.
    pub fn wait_until(&self, what: &str, script: &str, secs: u64) -> Value {
        let start = Instant::now();
        loop {
            let v = self.js(script);
            let truthy = !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""));
            if truthy {
                return v;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                self.screenshot("failure");
                panic!("timed out after {secs} s waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Clicks the element `css` selects. A view that re-renders between the lookup and the click
    /// (a list refreshed by a catalog event) makes the element stale: it is looked up again.
    pub fn click(&self, css: &str) {
        for _ in 0..5 {
            let e = self.wait_for(css, 20);
            match self.try_post(&format!("/element/{e}/click"), &json!({})) {
                Ok(_) => return,
                Err(err) if err.contains("stale element reference") => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(err) => panic!("click {css}: {err}"),
            }
        }
        panic!("click {css}: the element went stale five times");
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css, 20);
        self.post(&format!("/element/{e}/clear"), json!({}));
        self.post(&format!("/element/{e}/value"), json!({ "text": text }));
    }

    /// Captures the X display the app runs on (the real window as a user sees it). WebDriver's own
    /// screenshot command hangs in WebKitWebDriver once a WebGL or canvas map is on the page.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        std::fs::create_dir_all(&self.shots).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys; from PIL import ImageGrab; ImageGrab.grab(xdisplay=sys.argv[1]).save(sys.argv[2])",
                &self.display,
            ])
            .arg(&path)
            .output()
            .expect("python3 with Pillow (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "screenshot of {}: {}",
            self.display,
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }
}

pub fn copy_tree(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let d = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&d).unwrap();
            copy_tree(&p, &d);
        } else {
            std::fs::copy(&p, &d).unwrap();
        }
    }
}

/// The location a photo carries, in its own metadata or in its `photo.jpg.xmp` sidecar.
pub fn gps_of(path: &Path) -> Option<(f64, f64)> {
    let sidecar = PathBuf::from(format!("{}.xmp", path.display()));
    let sidecar = sidecar.is_file().then_some(sidecar);
    pinpoint::library::read_photo_metadata(path, sidecar.as_deref())
        .ok()?
        .location
        .map(|l| (l.point.lat, l.point.lon))
}

pub struct Driver {
    pub session: Session,
    _driver: Reaper,
    _xvfb: Xvfb,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.session.base, self.session.id);
        let _ = self.session.agent.delete(&url).call();
    }
}

/// Starts Xvfb, tauri-driver and the app on `catalog`; returns the WebDriver session once the
/// app's shell is on screen, and how long that took.
pub fn launch(catalog: &Path, shots: &str) -> (Driver, Duration) {
    launch_with_args(catalog, shots, &[])
}

/// As [`launch`], with command-line arguments for the app (`pinpoint-desktop FOLDER...`).
pub fn launch_with_args(catalog: &Path, shots: &str, args: &[&str]) -> (Driver, Duration) {
    let xvfb = start_xvfb();
    let tauri_driver = tool(
        "tauri-driver",
        "cargo install tauri-driver --version '^2' --locked --root target/tools (scripts/install-deps.sh does)",
    );
    let native = tool(
        "WebKitWebDriver",
        "apt-get install webkit2gtk-driver (scripts/install-deps.sh does)",
    );
    let port = free_port();
    let native_port = free_port();
    let mut log = std::fs::File::create(catalog.with_extension("driver.log")).unwrap();
    let _ = std::io::Write::flush(&mut log);
    let child = Command::new(&tauri_driver)
        .process_group(0)
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native_port.to_string(),
        ])
        .arg("--native-driver")
        .arg(&native)
        .env("DISPLAY", &xvfb.display)
        .env("PINPOINT_CATALOG", catalog)
        // Software rendering: Xvfb has no GPU.
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start tauri-driver");
    let driver = Reaper(child, "tauri-driver");
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let start = Instant::now();
    while agent.get(format!("{base}/status")).call().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tauri-driver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let app = env!("CARGO_BIN_EXE_pinpoint-desktop");
    let launched = Instant::now();
    let mut r = agent
        .post(format!("{base}/session"))
        .send_json(json!({ "capabilities": { "alwaysMatch": {
            "browserName": "wry",
            "tauri:options": { "application": app, "args": args }
        } } }))
        .expect("new session");
    let v: Value = r.body_mut().read_json().unwrap();
    let id = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| {
            let mut s = String::new();
            let _ = std::fs::File::open(catalog.with_extension("driver.log"))
                .map(|mut f| f.read_to_string(&mut s));
            panic!("no session: {v}\n{s}")
        })
        .to_string();
    let session = Session {
        display: xvfb.display.clone(),
        base,
        id,
        agent,
        shots: workspace().join("target/e2e-screenshots").join(shots),
    };
    session.wait_for("#nav-library", 30);
    let shown = launched.elapsed();
    (
        Driver {
            session,
            _driver: driver,
            _xvfb: xvfb,
        },
        shown,
    )
}
