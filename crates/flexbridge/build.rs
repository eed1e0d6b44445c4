//! Builds the customer web chat (`widget/`, an npm project) into
//! `$OUT_DIR/widget/{index.html,widget.js,widget.css,embed.js}`, which the bridge
//! embeds with `include_bytes!`.
//!
//! The contract with `widget/`:
//! - `npm ci` runs when `widget/node_modules` is missing;
//! - `npm run build` runs with `WIDGET_OUT_DIR` set to the output directory
//!   and must write the four files there (`widget.js` bundles the official
//!   `socket.io-client`);
//! - the build reruns when `widget/package.json`, `package-lock.json`,
//!   `build.mjs` or anything under `widget/src` changes.
//!
//! When `npm` is not installed or `widget/package.json` does not exist, a
//! `cargo:warning` is printed and a small page saying how to build the
//! widget is embedded instead. `FLEXBRIDGE_SKIP_WIDGET=1` does the same on
//! purpose. When npm exists but the build fails, the Rust build fails.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [&str; 4] = ["index.html", "widget.js", "widget.css", "embed.js"];

/// The inputs of the widget bundle, relative to `widget/`; `src` is a
/// directory, which cargo scans as a whole.
const WATCHED: [&str; 4] = ["package.json", "package-lock.json", "build.mjs", "src"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FLEXBRIDGE_SKIP_WIDGET");
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    let out = out_dir.join("widget");
    if let Err(e) = std::fs::create_dir_all(&out) {
        panic!("cannot create {}: {e}", out.display());
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let widget = manifest.join("../../widget");
    let package_json = widget.join("package.json");
    // What `npm run build` reads (widget/build.mjs): the sources under
    // `src/` (`index.html` is among them) and the build script, plus the
    // dependencies the package files pin. A watched path that does not exist
    // counts as changed on every build, so list only real inputs.
    for watched in WATCHED {
        println!("cargo:rerun-if-changed={}", widget.join(watched).display());
    }

    if std::env::var_os("FLEXBRIDGE_SKIP_WIDGET").is_some_and(|v| v == "1") {
        placeholder(&out, "FLEXBRIDGE_SKIP_WIDGET=1 was set");
        return;
    }
    if !package_json.is_file() {
        warn("widget/package.json does not exist; embedding a placeholder page");
        placeholder(&out, "widget/package.json does not exist in this checkout");
        return;
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if Command::new(npm).arg("--version").output().is_err() {
        warn("npm is not installed; embedding a placeholder page instead of the web chat");
        placeholder(&out, "npm was not installed when the bridge was built");
        return;
    }
    if !widget.join("node_modules").is_dir() {
        run(Command::new(npm).arg("ci").current_dir(&widget), "npm ci");
    }
    run(
        Command::new(npm)
            .args(["run", "build"])
            .env("WIDGET_OUT_DIR", &out)
            .current_dir(&widget),
        "npm run build",
    );
    for file in FILES {
        if !out.join(file).is_file() {
            panic!(
                "`npm run build` in widget/ did not write {file} to WIDGET_OUT_DIR ({})",
                out.display()
            );
        }
    }
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`{what}` in widget/ failed ({status}); fix the widget build or set FLEXBRIDGE_SKIP_WIDGET=1"
        ),
        Err(e) => panic!("`{what}` in widget/ could not start: {e}"),
    }
}

fn warn(message: &str) {
    println!("cargo:warning={message}");
}

/// Writes `content` unless the file already holds it (so an unchanged
/// placeholder does not look modified).
fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return;
    }
    if let Err(e) = std::fs::write(path, content) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fn placeholder(out: &Path, why: &str) {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>flexbridge</title><link rel=\"stylesheet\" href=\"/widget.css\"></head>\n\
         <body><main><h1>The web chat was not built</h1>\
         <p>{why}.</p><p>Install Node.js (npm), then rebuild the bridge:</p>\
         <pre>cargo build -p flexbridge</pre>\
         <p>The bridge itself works: any Socket.IO client can speak \
         its protocol (docs/protocol.md).</p></main></body></html>\n"
    );
    write_if_changed(&out.join("index.html"), &html);
    write_if_changed(
        &out.join("widget.js"),
        "// The web chat was not built (see index.html).\n",
    );
    write_if_changed(
        &out.join("embed.js"),
        "// The web chat was not built (see the bridge's index.html).\n",
    );
    write_if_changed(
        &out.join("widget.css"),
        "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}\n",
    );
}
