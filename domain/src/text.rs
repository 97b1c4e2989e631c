//! Normalising what people type: Persian and Arabic-Indic digits, separators,
//! and Persian names (docs/domain/identifiers.md).

use unicode_normalization::UnicodeNormalization;

const ZWNJ: char = '\u{200C}';

/// Maps Persian (۰–۹) and Arabic-Indic (٠–٩) digits to ASCII; other characters pass through.
pub fn ascii_digits(input: &str) -> String {
    input.chars().map(ascii_digit).collect()
}

fn ascii_digit(c: char) -> char {
    match c {
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        _ => c,
    }
}

/// Separators people put inside numbers: spaces of any kind, dashes, underscores, ZWNJ, LRM/RLM marks.
fn is_number_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{2212}')
}

/// The digits of a typed number: digits normalised to ASCII and separators removed.
/// Returns `None` if anything other than digits and separators is present.
pub fn digits_only(input: &str) -> Option<String> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars().map(ascii_digit) {
        if c.is_ascii_digit() {
            out.push(c);
        } else if !is_number_separator(c) {
            return None;
        }
    }
    Some(out)
}

/// Normalises a Persian (or Latin) name: NFKC, Arabic Yeh/Alef Maksura → Persian Yeh,
/// Arabic Kaf → Persian Keheh, tatweel removed, runs of white space collapsed, and
/// zero-width non-joiners kept only between two letters.
pub fn normalize_name(input: &str) -> String {
    let mapped: Vec<char> = input
        .nfkc()
        .filter(|&c| c != '\u{0640}')
        .map(|c| match c {
            '\u{064A}' | '\u{0649}' => '\u{06CC}',
            '\u{0643}' => '\u{06A9}',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    let mut out = String::with_capacity(input.len());
    for (i, &c) in mapped.iter().enumerate() {
        match c {
            ' ' => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            ZWNJ => {
                let prev_is_letter = out.chars().last().is_some_and(char::is_alphabetic);
                // The first character after this run of ZWNJs (`mapped[i]` is this one).
                let next_is_letter = mapped[i..].iter().find(|&&n| n != ZWNJ).is_some_and(|n| n.is_alphabetic());
                if prev_is_letter && next_is_letter && !out.ends_with(ZWNJ) {
                    out.push(ZWNJ);
                }
            }
            c => out.push(c),
        }
    }
    out.trim_end().to_owned()
}

/// The key names are compared by: the normalised name without spaces or ZWNJ, lower-cased.
pub fn name_key(normalized: &str) -> String {
    normalized.chars().filter(|&c| c != ' ' && c != ZWNJ).flat_map(char::to_lowercase).collect()
}

/// Writes ASCII digits as Persian digits (for the printable receipt and SMS texts).
pub fn persian_digits(input: &str) -> String {
    input
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(0x06F0 + (c as u32 - '0' as u32)).unwrap_or(c),
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_mapped_from_both_scripts() {
        assert_eq!(ascii_digits("۲۵۸۰٢٠٠٦٠٦"), "2580200606");
        assert_eq!(digits_only("۰۹۱۴-۵۱۲ ۸۱۳۶").as_deref(), Some("09145128136"));
        assert_eq!(digits_only("12a4"), None);
        assert_eq!(digits_only("+98"), None);
    }

    #[test]
    fn names_are_normalised_per_spec_3_1() {
        // Arabic Yeh and Kaf become Persian; spaces collapse; tatweel goes.
        assert_eq!(normalize_name("  علي   كاظمـــي "), "علی کاظمی");
        // ZWNJ survives only between letters.
        assert_eq!(normalize_name("\u{200C}محمد\u{200C}\u{200C}رضا\u{200C} "), "محمد\u{200C}رضا");
        assert_eq!(normalize_name("محمد \u{200C}رضا"), "محمد رضا");
        assert_eq!(normalize_name("ى"), "ی");
    }

    #[test]
    fn name_key_ignores_spaces_and_zwnj() {
        let a = name_key(&normalize_name("محمد\u{200C}رضا"));
        let b = name_key(&normalize_name("محمد رضا"));
        let c = name_key(&normalize_name("محمدرضا"));
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_ne!(a, name_key(&normalize_name("محمد")));
    }

    #[test]
    fn persian_digits_for_display() {
        assert_eq!(persian_digits("1369/03/19"), "۱۳۶۹/۰۳/۱۹");
    }

    /// Tabs, line breaks and other white space inside a name become one plain space.
    #[test]
    fn every_kind_of_white_space_is_one_space() {
        assert_eq!(normalize_name("علی\tرضا"), "علی رضا");
        assert_eq!(normalize_name("علی \n\r رضا\u{2003}"), "علی رضا");
    }
}
