//! The fingerprint of everything that shapes a test database template: the migrations,
//! every line of `domain`, `persistence`, `seed`, `adapters`, `receipt` and `api` (sealing,
//! hashing, seeding and the rules that decide what is stored), their data files and
//! manifests, the lock file and the harness's own configuration. A change to any of them names a new template, so no
//! test runs on data written by older code. Shared by `build.rs` (which bakes it into the
//! harness) and a test that proves it moves.

use std::path::{Path, PathBuf};

/// Folders and files, relative to the workspace root.
pub const INPUTS: [&str; 17] = [
    "migrations",
    "domain/src",
    "domain/Cargo.toml",
    "persistence/src",
    "persistence/Cargo.toml",
    "seed/src",
    "seed/Cargo.toml",
    "adapters/src",
    "adapters/Cargo.toml",
    "receipt/src",
    "receipt/Cargo.toml",
    "api/src",
    "api/data",
    "api/Cargo.toml",
    "Cargo.lock",
    "Cargo.toml",
    "tests/src/lib.rs",
];

fn visit(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_file() {
        files.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else { return };
    for entry in entries.flatten() {
        visit(&entry.path(), files);
    }
}

/// FNV-1a over the names and contents of every input file under `root`, in name order.
pub fn fingerprint(root: &Path) -> String {
    let mut files = Vec::new();
    for input in INPUTS {
        visit(&root.join(input), &mut files);
    }
    let mut named: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|f| (f.strip_prefix(root).unwrap_or(&f).to_string_lossy().replace('\\', "/"), f))
        .collect();
    named.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, f) in named {
        for b in name.bytes().chain([0]).chain(std::fs::read(&f).unwrap_or_default()).chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
