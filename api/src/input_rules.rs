//! The input rules the contract states: a `pattern` (and lengths) for every identifier a
//! client sends — national code, birth-certificate serial, mobile, postal code, tracking
//! code, Jalali and lunar dates, Sheba — applied to the request side of the document
//! (request bodies and parameters) by field name, so every operation states the same
//! rule and a client generator or a fuzzer produces mostly valid values.
//!
//! Each pattern describes exactly the forms the domain's parser accepts — Persian and
//! Arabic-Indic digits, and the separators people type (spaces, dashes, ZWNJ…) — except
//! what a regular expression cannot say (check digits, calendar validity, "the first four
//! digits not all equal"): a value outside the pattern is always refused, a value inside
//! it may still be refused with a 422 naming the field. The tests below hold each pattern
//! against the parser.

use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi, RefOr};

/// A character class of one ASCII digit range in the three digit scripts people type.
fn digits(from: char, to: char) -> String {
    let shift = |c: char, base: u32| char::from_u32(c as u32 - '0' as u32 + base).expect("digit");
    let range = |base: u32| {
        let (a, b) = (shift(from, base), shift(to, base));
        if a == b { format!("{a}") } else { format!("{a}-{b}") }
    };
    format!("[{}{}{}]", range('0' as u32), range(0x06F0), range(0x0660))
}

fn digit() -> String {
    digits('0', '9')
}

/// Rust's `char::is_whitespace`, as a regular-expression class body.
const WHITE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// What may stand between the digits of a number (`domain::text::digits_only`).
fn separator() -> String {
    format!(r"[{WHITE}_\u2010-\u2015\u200C\u200E\u200F\u2212\-]")
}

/// `n` digits (`min..=max`), any separators around and between them.
fn number(min: usize, max: usize) -> String {
    let s = separator();
    let d = digit();
    let count = if min == max { format!("{{{min}}}") } else { format!("{{{min},{max}}}") };
    format!("^{s}*(?:{d}{s}*){count}$")
}

/// A national code: 8–10 digits (shorter ones are left-padded with zeros).
pub fn national_id() -> String {
    number(8, 10)
}

/// A tracking code: 10 digits.
pub fn tracking_code() -> String {
    number(10, 10)
}

/// A postal code: 10 digits, none of the first five a 0 or a 2.
pub fn postal_code() -> String {
    let s = separator();
    let first = "[13-9۱۳-۹١٣-٩]";
    let d = digit();
    format!("^{s}*(?:{first}{s}*){{5}}(?:{d}{s}*){{5}}$")
}

/// A mobile: `+98`, `0098`, `98`, `0` or nothing, then 9, a known operator's two digits
/// and seven more; separators and parentheses anywhere.
pub fn mobile() -> String {
    let s = format!(r"[{WHITE}_\u2010-\u2015\u200C\u200E\u200F\u2212\-()]*");
    let d = |c: char| digits(c, c);
    let any = digit();
    let (d0, d1, d2, d3, d4, d8, d9) = (d('0'), d('1'), d('2'), d('3'), d('4'), d('8'), d('9'));
    let prefix = format!(r"(?:\+{s}{d9}{s}{d8}|{d0}{s}{d0}{s}{d9}{s}{d8}|{d9}{s}{d8}|{d0})?");
    let operator = format!(
        "(?:{d0}{s}{}|{d1}{s}{any}|{d2}{s}{}|{d3}{s}{any}|{d4}{s}{d1}|{d9}{s}{})",
        digits('0', '5'),
        digits('0', '3'),
        "[0-689۰-۶۸۹٠-٦٨٩]"
    );
    format!(r"^[{WHITE}]*{s}{prefix}{s}{d9}{s}{operator}(?:{s}{any}){{7}}{s}[{WHITE}]*$")
}

/// A birth-certificate serial: one run of six digits, optionally a series letter and a
/// one- or two-digit series number (`883810`, `ج/۱۲ ۳۴۵۶۷۸`, `12/ج/345678`).
pub fn serial() -> String {
    let d = digit();
    let other = format!(r"[{WHITE}/\\|_\u200C\-\u0621-\u064A\u067E\u0686\u0698\u06A9\u06AF\u06CC0-9۰-۹٠-٩]");
    format!("^{other}*{d}{{6}}{other}*$")
}

/// `-MM-DD` (or with `/`): month 1–12, day 1–31; `zeros` is how many leading zeros the
/// parser takes (`?` for the solar date's two digits, `*` for the lunar date's numbers).
fn month_day(zeros: &str) -> String {
    let d = |c: char| digits(c, c);
    let sep = "[-/]";
    let z = format!("{}{zeros}", d('0'));
    let month = format!("(?:{z}{}|{z}{}{})", digits('1', '9'), d('1'), digits('0', '2'));
    let day =
        format!("(?:{z}{}|{z}{}{}|{z}{}{})", digits('1', '9'), digits('1', '2'), digit(), d('3'), digits('0', '1'));
    format!("{sep}{month}{sep}{day}")
}

/// A solar (Jalali) date, `YYYY-MM-DD` or with `/`, any digit script.
pub fn jalali_date() -> String {
    format!("^[{WHITE}]*{}{{4}}{}[{WHITE}]*$", digit(), month_day("?"))
}

/// A lunar (Hijri) date, `YYYY-MM-DD` or with `/`.
pub fn hijri_date() -> String {
    format!("^[{WHITE}]*{}+{}[{WHITE}]*$", digit(), month_day("*"))
}

/// A Sheba (IBAN) number: `IR` and 24 digits, spaces allowed.
pub fn sheba() -> String {
    let s = format!("[{WHITE}]");
    format!("^{s}*[Ii]{s}*[Rr](?:{s}*{}){{24}}{s}*$", digit())
}

/// A rule for a field or parameter name, if it has one: (pattern, min length, max length).
fn rule(name: &str) -> Option<(String, Option<usize>, Option<usize>)> {
    Some(match name {
        "national_id" => (national_id(), Some(8), None),
        "tracking_code" | "t" => (tracking_code(), Some(10), None),
        "postal_code" => (postal_code(), Some(10), None),
        // (Not the USSD gateway's `phoneNumber`: any number gets a USSD screen back.)
        "mobile" => (mobile(), Some(10), None),
        "serial" => (serial(), Some(6), None),
        "birth_date_jalali" => (jalali_date(), Some(8), None),
        "birth_date_hijri" => (hijri_date(), Some(5), None),
        "sheba" | "iban" => (sheba(), Some(26), None),
        _ => return None,
    })
}

/// Lengths the server enforces on free text (as stated, or more strictly).
fn lengths(name: &str) -> Option<(Option<usize>, Option<usize>)> {
    Some(match name {
        "new_password" => (Some(10), Some(128)),
        "event_id" | "capture_reference" => (Some(1), Some(100)),
        _ => return None,
    })
}

fn apply_to_schema(name: &str, schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else { return };
    let is_string = serde_json::to_value(&object.schema_type)
        .is_ok_and(|t| t == "string" || t.as_array().is_some_and(|a| a.iter().any(|x| x == "string")));
    if !is_string {
        return;
    }
    if let Some((pattern, min, max)) = rule(name) {
        object.pattern = Some(pattern);
        object.min_length = min;
        object.max_length = max;
    } else if let Some((min, max)) = lengths(name) {
        object.min_length = object.min_length.or(min);
        object.max_length = object.max_length.or(max);
    }
}

/// The names of the component schemas reachable from `schema`.
fn refs_in(schema: &RefOr<Schema>, out: &mut Vec<String>) {
    match schema {
        RefOr::Ref(r) => {
            if let Some(name) = r.ref_location.strip_prefix("#/components/schemas/") {
                out.push(name.to_owned());
            }
        }
        RefOr::T(Schema::Object(o)) => {
            for p in o.properties.values() {
                refs_in(p, out);
            }
        }
        RefOr::T(Schema::Array(a)) => {
            if let ArrayItems::RefOrSchema(items) = &a.items {
                refs_in(items, out);
            }
        }
        RefOr::T(Schema::OneOf(o)) => o.items.iter().for_each(|i| refs_in(i, out)),
        RefOr::T(Schema::AllOf(o)) => o.items.iter().for_each(|i| refs_in(i, out)),
        RefOr::T(Schema::AnyOf(o)) => o.items.iter().for_each(|i| refs_in(i, out)),
        _ => {}
    }
}

fn apply_to_properties(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::Object(o)) => {
            for (name, p) in o.properties.iter_mut() {
                apply_to_schema(name, p);
                apply_to_properties(p);
            }
        }
        RefOr::T(Schema::Array(a)) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                apply_to_properties(items);
            }
        }
        RefOr::T(Schema::OneOf(o)) => o.items.iter_mut().for_each(apply_to_properties),
        RefOr::T(Schema::AllOf(o)) => o.items.iter_mut().for_each(apply_to_properties),
        RefOr::T(Schema::AnyOf(o)) => o.items.iter_mut().for_each(apply_to_properties),
        _ => {}
    }
}

/// States the input rules in the document: on every parameter and on every property of a
/// schema a request body of an `/api/` operation uses (responses keep their own shapes).
pub fn apply(doc: &mut OpenApi) {
    let mut request_schemas: Vec<String> = Vec::new();
    // The API's operations; pages for browsers (the payment result, the sandbox bank)
    // show whatever they are given.
    for (_, item) in doc.paths.paths.iter_mut().filter(|(path, _)| path.starts_with("/api/")) {
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            for p in op.parameters.iter_mut().flatten() {
                if let RefOr::T(p) = p
                    && let Some(schema) = p.schema.as_mut()
                {
                    apply_to_schema(&p.name, schema);
                }
            }
            if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                for content in body.content.values_mut() {
                    if let RefOr::T(content) = content
                        && let Some(schema) = content.schema.as_mut()
                    {
                        refs_in(schema, &mut request_schemas);
                        apply_to_properties(schema);
                    }
                }
            }
        }
    }
    let Some(components) = doc.components.as_mut() else { return };
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = request_schemas.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get_mut(&name) {
            refs_in(schema, &mut request_schemas);
            apply_to_properties(schema);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::calendar::{HijriDate, JalaliDate};
    use domain::ids::{BirthCertSerial, Mobile, NationalId, PostalCode, TrackingCode};

    /// Whether the domain's parser accepts a value.
    type Accepts = fn(&str) -> bool;

    fn re(pattern: String) -> regex::Regex {
        regex::Regex::new(&pattern).expect("the pattern is a valid regular expression")
    }

    /// Every value the parser accepts matches its pattern (the contract never refuses what
    /// the server takes), and typical refusals the pattern can see are outside it.
    #[test]
    fn each_pattern_admits_what_the_parser_accepts() {
        let tracking = TrackingCode::from_random(497_320_167).as_str().to_owned();
        let tracking_fa: String =
            tracking.chars().map(|c| char::from_u32(c as u32 - '0' as u32 + 0x06F0).unwrap()).collect();
        let tracking_spaced = format!("{} {}", &tracking[..4], &tracking[4..]);
        type Case<'a> = (&'a str, regex::Regex, Accepts, Vec<&'a str>, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "national code",
                re(national_id()),
                |s| NationalId::parse(s).is_ok(),
                vec!["2580200606", "۲۵۸۰۲۰۰۶۰۶", "258-020060-6", " 2580200606 "],
                vec!["2580200606x", "12345678901", "1234567", ""],
            ),
            (
                "tracking code",
                re(tracking_code()),
                |s| TrackingCode::parse(s).is_ok(),
                vec![tracking.as_str(), tracking_fa.as_str(), tracking_spaced.as_str()],
                vec!["497320167", "49732016700", "abc"],
            ),
            (
                "postal code",
                re(postal_code()),
                |s| PostalCode::parse(s).is_ok(),
                vec!["5518743111", "۵۵۱۸۷-۴۳۱۱۱"],
                vec!["5518043111", "5528743111", "551874311"],
            ),
            (
                "mobile",
                re(mobile()),
                |s| Mobile::parse(s).is_ok(),
                vec![
                    "09145128136",
                    "+989145128136",
                    "00989145128136",
                    "989145128136",
                    "9145128136",
                    "۰۹۱۴۵۱۲۸۱۳۶",
                    "0914 512 8136",
                    "(0914) 512-8136",
                    "09901234567",
                    "09411234567",
                ],
                vec!["08145128136", "0914512813", "+09145128136", "09401234567", "09971234567"],
            ),
            (
                "serial",
                re(serial()),
                |s| BirthCertSerial::parse(s).is_ok(),
                vec!["883810", "۸۸۳۸۱۰", "ج/۱۲ ۳۴۵۶۷۸", "12/ج/345678", "الف/۲۱-۱۲۳۴۵۶"],
                vec!["88381", "abc", "8838x0"],
            ),
            (
                "Jalali date",
                re(jalali_date()),
                |s| JalaliDate::parse(s).is_ok(),
                vec!["1369-03-19", "1369/3/9", "۱۳۶۹-۰۳-۱۹", " 1369-03-19 "],
                vec!["1369-13-01", "1369-00-10", "69-03-19", "1369-03-32"],
            ),
            (
                "lunar date",
                re(hijri_date()),
                |s| HijriDate::parse(s).is_ok(),
                vec!["1410-11-15", "۱۴۱۰/۱۱/۱۵"],
                vec!["1410-13-15", "1410-11"],
            ),
        ];
        for (what, pattern, accepts, good, bad) in cases {
            for v in good {
                assert!(accepts(v), "{what}: the parser accepts {v:?} (test data)");
                assert!(pattern.is_match(v), "{what}: the pattern refuses {v:?}, which the server accepts");
            }
            for v in bad {
                assert!(!pattern.is_match(v), "{what}: the pattern admits {v:?}");
                assert!(!accepts(v), "{what}: the server accepts {v:?} (test data)");
            }
        }
        let sheba = re(sheba());
        assert!(sheba.is_match("IR062960000000100324200001") && sheba.is_match("IR06 2960 0000 0010 0324 2000 01"));
        assert!(!sheba.is_match("IR0629600000001003242000") && !sheba.is_match("DE06296000000010032420000"));
    }

    /// Random strings the parser accepts never fall outside the pattern (the contract is
    /// never narrower than the server), over many generated near-valid inputs.
    #[test]
    fn no_accepted_input_falls_outside_its_pattern() {
        let alphabet: Vec<char> = "0123456789۰۱۲۳۴۵۶۷۸۹ -+()/ج".chars().collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let checks: Vec<(regex::Regex, Accepts)> = vec![
            (re(national_id()), |s| NationalId::parse(s).is_ok()),
            (re(tracking_code()), |s| TrackingCode::parse(s).is_ok()),
            (re(postal_code()), |s| PostalCode::parse(s).is_ok()),
            (re(mobile()), |s| Mobile::parse(s).is_ok()),
            (re(serial()), |s| BirthCertSerial::parse(s).is_ok()),
            (re(jalali_date()), |s| JalaliDate::parse(s).is_ok()),
            (re(hijri_date()), |s| HijriDate::parse(s).is_ok()),
        ];
        let mut accepted = 0;
        for _ in 0..200_000 {
            let len = 6 + (next() % 11) as usize;
            let s: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            for (pattern, accepts) in &checks {
                if accepts(&s) {
                    accepted += 1;
                    assert!(pattern.is_match(&s), "{s:?} is accepted but outside {pattern}");
                }
            }
        }
        assert!(accepted > 100, "the generator reaches accepted inputs ({accepted})");
    }
}
