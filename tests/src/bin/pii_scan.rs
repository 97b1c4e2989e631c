//! Scans the logs of a whole run — every file in each directory given (the test processes'
//! logs that `NCR_TEST_LOG_DIR` collected, the fuzz servers' logs) — for personal data in
//! clear: see [`ncr_tests::pii`]. First it proves it can see each kind (a planted positive
//! control); then it fails on any hit, and on any directory that holds no log lines.
//!
//! ```sh
//! pii-scan target/test-logs target/fuzz-logs
//! ```

use std::process::ExitCode;

use ncr_tests::pii::Scanner;

#[expect(clippy::print_stdout, reason = "a command-line tool")]
fn main() -> ExitCode {
    let mut dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        dirs.push("target/test-logs".into());
    }
    let scanner = Scanner::new();
    if let Err(blind) = scanner.control() {
        println!("pii-scan: the positive control failed — the scan cannot see:\n{blind}");
        return ExitCode::FAILURE;
    }
    let mut hits = Vec::new();
    let (mut files, mut lines) = (0, 0);
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            println!("pii-scan: no log directory {dir}");
            return ExitCode::FAILURE;
        };
        let (mut dir_files, mut dir_lines) = (0, 0);
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
            dir_files += 1;
            for (n, line) in text.lines().enumerate() {
                dir_lines += 1;
                for kind in scanner.scan_line(line) {
                    let shown: String = line.chars().take(300).collect();
                    hits.push(format!("{}:{}: {kind} in clear: {shown}", entry.path().display(), n + 1));
                }
            }
        }
        if dir_lines == 0 {
            println!("pii-scan: {dir} holds no log lines — did the run write its logs there?");
            return ExitCode::FAILURE;
        }
        files += dir_files;
        lines += dir_lines;
    }
    if hits.is_empty() {
        println!(
            "pii-scan: positive control found all {} kinds; {files} log files in {}, {lines} lines: no personal data or token in clear",
            ncr_tests::pii::KINDS.len(),
            dirs.join(", ")
        );
        ExitCode::SUCCESS
    } else {
        for h in hits.iter().take(50) {
            println!("{h}");
        }
        println!("pii-scan: {} hits in {files} files", hits.len());
        ExitCode::FAILURE
    }
}
