//! Fingerprints what a test database template is made of (see `src/fingerprint.rs`), so
//! the harness rebuilds its templates whenever any of it changes.

#[path = "src/fingerprint.rs"]
mod fingerprint;

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for input in fingerprint::INPUTS {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rustc-env=NCR_TEMPLATE_FINGERPRINT={}", fingerprint::fingerprint(&root));
    println!("cargo:rustc-env=NCR_TEMPLATE_DIR={}", std::env::var("OUT_DIR").expect("OUT_DIR"));
}
