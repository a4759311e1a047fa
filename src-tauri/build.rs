fn main() {
    // The window serves ui/dist, built from ui/ by `npm --prefix ui run build`.
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist/index.html");
    if !dist.exists() {
        panic!(
            "{} is missing: build the front end first with `npm --prefix ui ci && npm --prefix ui run build`",
            dist.display()
        );
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build()
}
