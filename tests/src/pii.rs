//! The personal-data scan of a run's logs (`pii-scan`): what it looks for and how it
//! proves it can see it.
//!
//! It looks for the personal data the tests and the fuzzer actually use — the demo
//! population's and the load-test citizens' national codes, mobiles and full names, the
//! personas' serials — plus anything shaped like a birth date, an e-mail address or a JWT,
//! and the passwords the tests type. National codes and mobiles are digit runs the log
//! writer masks unconditionally, so on their own they could never be found; names, birth
//! dates, e-mail addresses and serials pass the mask and are what makes this scan able to
//! fail. [`Scanner::control`] plants one value of every kind, written through the real
//! log mask, and the scan refuses to report "clean" unless it finds each of them.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

/// The kinds of personal data the scan reports.
pub const KINDS: [&str; 8] =
    ["national code", "mobile", "serial", "full name", "birth date", "e-mail address", "password", "JWT"];

/// Passwords the tests and the fuzzer type.
pub const PASSWORDS: [&str; 11] = [
    crate::ADMIN_PASSWORD,
    "operator-password-1",
    "fuzz-admin-password",
    "fuzz-operator-password",
    "fuzz e-folder passphrase",
    "matrix passphrase 1",
    "chosen passphrase 7431",
    "reset passphrase 5512",
    "a long passphrase of mine",
    "another long passphrase",
    "planted passphrase 9931",
];

/// Load-test citizens the test suite uses (`loadtest.rs` seeds 120 of them).
const LOADTEST_CITIZENS: u64 = 1_000;

/// Addresses of the system itself, never of a person.
const SYSTEM_MAIL: [&str; 3] = ["no-reply@ncr.local", "no-reply@ncr.test", "no-reply@example.ir"];

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+").expect("regex"));
/// A birth date: a Jalali date of the 1300s or a Gregorian one before 2012, with `-` or
/// `/`, in ASCII or Persian digits. No date the service itself logs (appointments, holidays,
/// timestamps) is that old.
static BIRTH_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[^0-9۰-۹])(?:13[0-9]{2}|19[0-9]{2}|200[0-9]|201[01]|۱۳[۰-۹]{2})[-/](?:[01][0-9]|[۰۱][۰-۹])[-/](?:[0-3][0-9]|[۰-۳][۰-۹])(?:[^0-9۰-۹]|$)",
    )
    .expect("regex")
});
static JWT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}").expect("regex"));

/// The values searched for literally, with their kinds.
pub struct Scanner {
    literals: AhoCorasick,
    kinds: Vec<&'static str>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// The people of the test template (the demo population at the tests' clock), the
    /// load-test citizens and the passwords.
    pub fn new() -> Self {
        let mut needles: Vec<(String, &'static str)> = Vec::new();
        let mut person = |national_id: &str, mobile: Option<&str>, first: &str, last: &str| {
            needles.push((national_id.to_owned(), "national code"));
            if let Some(m) = mobile {
                needles.push((m.to_owned(), "mobile"));
                // Also without its leading 0 (as in +98…).
                needles.push((m[1..].to_owned(), "mobile"));
            }
            needles.push((format!("{first} {last}"), "full name"));
        };
        for p in api::seed::population::generate(crate::t0()).people {
            person(&p.national_id, p.mobile.as_deref(), &p.first_name, &p.last_name);
        }
        for i in 0..LOADTEST_CITIZENS {
            if let Some(p) = api::seed::loadtest::citizen(i) {
                person(&p.national_id, p.mobile.as_deref(), &p.first_name, &p.last_name);
            }
        }
        // Serials are six digits: only the personas', whose serials tests type most.
        for p in api::seed::population::PERSONAS {
            needles.push((p.serial.to_owned(), "serial"));
        }
        for pw in PASSWORDS {
            needles.push((pw.to_owned(), "password"));
        }
        needles.sort();
        needles.dedup_by(|a, b| a.0 == b.0);
        let literals = AhoCorasick::new(needles.iter().map(|(n, _)| n)).expect("needles");
        Self { literals, kinds: needles.into_iter().map(|(_, k)| k).collect() }
    }

    /// The kinds of personal data in one log line (empty: clean).
    pub fn scan_line(&self, line: &str) -> Vec<&'static str> {
        let mut found: Vec<&'static str> = Vec::new();
        for m in self.literals.find_overlapping_iter(line) {
            let kind = self.kinds[m.pattern().as_usize()];
            // A serial is six digits: only a whole number counts — not part of a longer
            // one, not the fraction of a log timestamp (`…:23.731552Z`) or of a number, and
            // not a measurement the log writes itself (`latency_us=731552`), not the tail of a
            // request id's hex group (`request_id=…-39c89b731552`).
            if kind == "serial" && !stands_alone(line, m.start(), m.end()) {
                continue;
            }
            found.push(kind);
        }
        if EMAIL.find_iter(line).any(|m| !SYSTEM_MAIL.contains(&m.as_str())) {
            found.push("e-mail address");
        }
        if BIRTH_DATE.find_iter(line).any(|m| !is_closure_day(line, m.start())) {
            found.push("birth date");
        }
        if JWT.is_match(line) {
            found.push("JWT");
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The positive control: one planted log line per kind; every kind must be found, or
    /// the scan is blind to it. Kinds the log mask leaves alone (names, birth dates,
    /// e-mail addresses, serials, passwords in a field not named like a secret) are planted
    /// through the real mask, so the control also shows that a leak of them would reach the
    /// file; national codes, mobiles and JWTs, which the mask hides, are planted raw, as a
    /// writer that skipped the mask would leave them.
    pub fn control(&self) -> Result<(), String> {
        let sample = &api::seed::population::SAMPLE;
        let planted: [(&str, String, bool); 8] = [
            ("national code", format!("citizen entered national_id={}", sample.national_id), false),
            ("mobile", format!("sms queued for {}", sample.mobile.expect("SAMPLE has a mobile")), false),
            ("serial", format!("entry refused, serial {} wrong", sample.serial), true),
            ("full name", format!("registered {} {}", sample.first_name, sample.last_name), true),
            ("birth date", format!("eligibility checked for birth_date={}", sample.birth_date), true),
            ("e-mail address", "receipt mailed to maryam.ahmadi@example.ir".into(), true),
            ("password", "login body {\"pw\": \"planted passphrase 9931\"}".into(), true),
            ("JWT", "header eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0x.c2lnbmF0dXJlMTIz".into(), false),
        ];
        let mut blind = Vec::new();
        for (kind, line, through_mask) in planted {
            let line = if through_mask { api::logging::mask_text(&line).into_owned() } else { line };
            if !self.scan_line(&line).contains(&kind) {
                blind.push(format!("{kind} (planted line: {line})"));
            }
        }
        // And a clean line stays clean.
        let clean = "2026-11-22T06:30:00Z INFO request finished method=GET path=/api/v1/captcha status=200 \
                     request_id=0b6f3f7e-3c1a-4c57-9a53-2f0d7c1e9b11 from=no-reply@ncr.local appointment=1405-09-01";
        let false_alarm = self.scan_line(clean);
        if !false_alarm.is_empty() {
            blind.push(format!("a clean line reported as {false_alarm:?}: {clean}"));
        }
        if blind.is_empty() { Ok(()) } else { Err(blind.join("\n")) }
    }
}

/// Whether the digits at `start..end` of `line` are a number of their own rather than part
/// of a longer number, a decimal fraction (a timestamp's microseconds) or a measurement.
/// Whether the date found at `start` is the `{date}` of an office closure's path
/// (`…/closures/1985-12-20`): an office's day, not a person's — contract fuzzing sends any
/// date there, old ones too, and the request line logs the path.
fn is_closure_day(line: &str, start: usize) -> bool {
    // The regex match starts at the character before the date (or at the line's start).
    let head = &line[..start + 1];
    head.ends_with("/closures/") || line[..start].ends_with("/closures/")
}

fn stands_alone(line: &str, start: usize, end: usize) -> bool {
    let before = line[..start].chars().next_back();
    let after = line[end..].chars().next();
    // A letter or digit on either side makes the digits part of a longer token: a request
    // id's hex group (`…-39c89b118406`), a hash, a word.
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
    if glued(before) || glued(after) {
        return false;
    }
    let head = &line[..start];
    !["_us=", "_ms=", "_ns=", "_bytes="].iter().any(|unit| head.ends_with(unit))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_closure_day_in_a_path_is_not_a_birth_date_but_the_same_date_elsewhere_is() {
        let scanner = super::Scanner::new();
        let path = "request{method=DELETE path=/api/v1/admin/offices/01a2/closures/1985-12-20 client=127.0.0.1}: request status=401";
        assert!(scanner.scan_line(path).is_empty(), "{:?}", scanner.scan_line(path));
        assert_eq!(scanner.scan_line("personal info saved birth_date=1985-12-20"), vec!["birth date"]);
        assert_eq!(scanner.scan_line("path=/api/v1/x/1985-12-20 and /closures/2026-12-20"), vec!["birth date"]);
    }

    use super::*;

    #[test]
    fn the_planted_control_is_found_kind_by_kind() {
        Scanner::new().control().expect("the scan sees every kind");
    }

    #[test]
    fn the_mask_hides_digit_identifiers_but_not_names_or_dates() {
        let scanner = Scanner::new();
        let sample = &api::seed::population::SAMPLE;
        let masked =
            api::logging::mask_text(&format!("national_id={} mobile={}", sample.national_id, sample.mobile.unwrap()))
                .into_owned();
        assert!(scanner.scan_line(&masked).is_empty(), "masked identifiers are clean: {masked}");
        let leak = format!("{} {} 1369-03-19", sample.first_name, sample.last_name);
        assert_eq!(scanner.scan_line(&api::logging::mask_text(&leak)), vec!["birth date", "full name"]);
    }

    #[test]
    fn a_synthetic_citizen_of_the_template_is_known() {
        let scanner = Scanner::new();
        let people = api::seed::population::generate(crate::t0()).people;
        let p = &people[4_321];
        assert_eq!(scanner.scan_line(&format!("x {} {} y", p.first_name, p.last_name)), vec!["full name"]);
        assert_eq!(scanner.scan_line(&format!("nid:{}", p.national_id)), vec!["national code"]);
        let loadtest = api::seed::loadtest::citizen(42).expect("citizen 42");
        assert_eq!(scanner.scan_line(&loadtest.national_id), vec!["national code"]);
    }

    #[test]
    fn six_digit_numbers_of_the_log_itself_are_not_serials() {
        let scanner = Scanner::new();
        let serial = api::seed::population::SAMPLE.serial;
        let stamp = format!("2026-12-06T16:21:23.{serial}Z INFO request finished latency_us={serial} status=200");
        assert!(scanner.scan_line(&stamp).is_empty(), "a timestamp's fraction is not a serial: {stamp}");
        assert_eq!(scanner.scan_line(&format!("entry refused, serial {serial} wrong")), vec!["serial"]);
        assert_eq!(scanner.scan_line(&format!("serial={serial}")), vec!["serial"]);
        let id = format!("request{{request_id=55cff569-45cd-449d-b4e7-39c89b{serial} method=POST}}");
        assert!(scanner.scan_line(&id).is_empty(), "a request id's hex digits are not a serial: {id}");
        let hex = format!("request_id=55cff569-45cd-449d-b4e7-{serial}ab9c12");
        assert!(scanner.scan_line(&hex).is_empty(), "nor at the head of a hex group: {hex}");
        assert_eq!(scanner.scan_line(&format!("serial:{serial}, retried")), vec!["serial"]);
    }
}
