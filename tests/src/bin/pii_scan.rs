//! Scans the logs of a whole test run (the files `NCR_TEST_LOG_DIR` collected) for
//! personal data in clear: the personas' national codes, mobiles and serials, JWTs,
//! and the passwords tests use. Exits non-zero listing each hit.

use std::process::ExitCode;

#[expect(clippy::print_stdout, reason = "a command-line tool")]
fn main() -> ExitCode {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "target/test-logs".into());
    let mut needles: Vec<(&str, String)> = Vec::new();
    for p in api::seed::population::PERSONAS {
        needles.push(("national code", p.national_id.into()));
        needles.push(("serial", p.serial.into()));
        if let Some(m) = p.mobile {
            needles.push(("mobile", m.into()));
            needles.push(("mobile", m[1..].into()));
        }
    }
    for pw in [ncr_tests::ADMIN_PASSWORD, "operator-password-1", "fuzz-admin-password"] {
        needles.push(("password", pw.into()));
    }
    let jwt = regex::Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}").expect("regex");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("pii-scan: no log directory {dir}");
        return ExitCode::FAILURE;
    };
    let mut files = 0;
    let mut lines = 0;
    let mut hits = Vec::new();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        files += 1;
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            for (what, needle) in &needles {
                if line.contains(needle.as_str()) {
                    hits.push(format!("{}:{}: {what} in clear", entry.path().display(), n + 1));
                }
            }
            if jwt.is_match(line) {
                hits.push(format!("{}:{}: a JWT in clear", entry.path().display(), n + 1));
            }
        }
    }
    if files == 0 || lines == 0 {
        println!("pii-scan: {dir} holds no log lines — did the tests run with NCR_TEST_LOG_DIR?");
        return ExitCode::FAILURE;
    }
    if hits.is_empty() {
        println!("pii-scan: {files} log files, {lines} lines, no personal data or token in clear");
        ExitCode::SUCCESS
    } else {
        for h in hits.iter().take(50) {
            println!("{h}");
        }
        println!("pii-scan: {} hits in {files} files", hits.len());
        ExitCode::FAILURE
    }
}
