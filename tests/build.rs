//! Fingerprints what a test database template is made of (migrations and demo-data
//! code), so the harness rebuilds its templates whenever either changes.

use std::path::Path;

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["migrations", "api/src/seed", "api/data"] {
        let d = root.join(dir);
        println!("cargo:rerun-if-changed={}", d.display());
        visit(&d, &mut files);
    }
    files.sort();
    // FNV-1a over names and contents.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let name = f.strip_prefix(&root).unwrap_or(&f).to_string_lossy().into_owned();
        for b in name.bytes().chain(std::fs::read(&f).unwrap_or_default()) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=NCR_TEMPLATE_FINGERPRINT={hash:016x}");
    println!("cargo:rustc-env=NCR_TEMPLATE_DIR={}", std::env::var("OUT_DIR").expect("OUT_DIR"));
}
