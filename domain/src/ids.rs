//! Identifier newtypes. Each is built only by parsing what a person typed, and
//! holds the canonical ASCII form (docs/domain/identifiers.md). Once a value exists it is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::text::digits_only;

/// What every newtype over a `String` has: its text, shown and given back as it is.
macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            /// The text (for an identifier, its canonical ASCII form).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}
pub(crate) use text_newtype;

macro_rules! string_newtype {
    ($name:ident) => {
        text_newtype!($name);
        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
    };
}

fn digit_values(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.bytes().map(|b| u32::from(b - b'0'))
}

fn all_same(s: &str) -> bool {
    let first = s.as_bytes()[0];
    s.bytes().all(|b| b == first)
}

// ---------------------------------------------------------------- national code

/// A natural person's 10-digit national code (کد ملی).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NationalId(String);
string_newtype!(NationalId);

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({})", crate::mask::national_id(&self.0))
    }
}

impl NationalId {
    /// Parses a national code: Persian/Arabic digits, spaces and dashes accepted;
    /// 8 or 9 digits are left-padded with zeros; the mod-11 check digit must hold;
    /// codes of one repeated digit, and codes whose middle six digits are zeros, are refused.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let digits = digits_only(input).ok_or(DomainError::NationalIdInvalid)?;
        if !(8..=10).contains(&digits.len()) {
            return Err(DomainError::NationalIdInvalid);
        }
        let code = format!("{digits:0>10}");
        if all_same(&code) || &code[3..9] == "000000" {
            return Err(DomainError::NationalIdInvalid);
        }
        if national_check_digit(&code[..9]) != u32::from(code.as_bytes()[9] - b'0') {
            return Err(DomainError::NationalIdInvalid);
        }
        Ok(Self(code))
    }

    /// Builds a valid code from nine digits by appending the check digit.
    /// Returns `None` if the result would be one of the refused forms.
    pub fn from_first_nine(nine: &str) -> Option<Self> {
        if nine.len() != 9 || !nine.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Self::parse(&format!("{nine}{}", national_check_digit(nine))).ok()
    }
}

/// The mod-11 check digit: weights 10..2 over the first nine digits; r = sum mod 11;
/// check = r if r < 2, else 11 − r.
fn national_check_digit(nine: &str) -> u32 {
    let sum: u32 = digit_values(nine).zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    let r = sum % 11;
    if r < 2 { r } else { 11 - r }
}

// ---------------------------------------------------------------- legal person id

/// A legal person's 11-digit national ID (شناسه ملی اشخاص حقوقی).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LegalId(String);
string_newtype!(LegalId);

impl LegalId {
    /// The standard algorithm: d = 10th digit + 2; Σ (digitᵢ + d) × wᵢ over the first ten
    /// digits with w = 29,27,23,19,17,29,27,23,19,17; r = Σ mod 11 (10 counts as 0); the
    /// 11th digit must equal r.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        const WEIGHTS: [u32; 10] = [29, 27, 23, 19, 17, 29, 27, 23, 19, 17];
        let code = digits_only(input).ok_or(DomainError::LegalIdInvalid)?;
        if code.len() != 11 || all_same(&code) || &code[3..9] == "000000" {
            return Err(DomainError::LegalIdInvalid);
        }
        let d: Vec<u32> = digit_values(&code).collect();
        let plus = d[9] + 2;
        let sum: u32 = d[..10].iter().zip(WEIGHTS).map(|(x, w)| (x + plus) * w).sum();
        let r = match sum % 11 {
            10 => 0,
            r => r,
        };
        if r != d[10] {
            return Err(DomainError::LegalIdInvalid);
        }
        Ok(Self(code))
    }
}

// ---------------------------------------------------------------- mobile

/// An Iranian mobile operator, recognised from the number's prefix (for information only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MobileOperator {
    Mci,
    Irancell,
    Rightel,
    Shatel,
    Mvno,
}

/// An Iranian mobile number, stored as `09xxxxxxxxx`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);
string_newtype!(Mobile);

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", crate::mask::mobile(&self.0))
    }
}

impl Mobile {
    /// Accepts `+98`, `0098`, `98`, `0` or no prefix, then ten digits starting with 9,
    /// with a known operator prefix. Persian digits, spaces, dashes and parentheses are fine.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let cleaned: String = rest.chars().filter(|c| !matches!(c, '(' | ')')).collect();
        let digits = digits_only(&cleaned).ok_or(DomainError::MobileInvalid)?;
        let national = match digits.len() {
            12 if digits.starts_with("98") => &digits[2..],
            14 if !plus && digits.starts_with("0098") => &digits[4..],
            11 if !plus && digits.starts_with('0') => &digits[1..],
            10 if !plus => &digits[..],
            _ => return Err(DomainError::MobileInvalid),
        };
        if !national.starts_with('9') {
            return Err(DomainError::MobileInvalid);
        }
        let mobile = Self(format!("0{national}"));
        mobile.operator().ok_or(DomainError::MobileInvalid)?;
        Ok(mobile)
    }

    /// The operator owning the number's prefix.
    pub fn operator(&self) -> Option<MobileOperator> {
        use MobileOperator::*;
        let p: u32 = self.0[1..4].parse().ok()?;
        Some(match p {
            910..=919 | 990..=996 => Mci,
            900..=905 | 930 | 933 | 935..=939 | 941 => Irancell,
            920..=923 => Rightel,
            998 => Shatel,
            931 | 932 | 934 | 999 => Mvno,
            _ => return None,
        })
    }

    /// `0914***8136`: what may be shown to someone who has not proved they own the number.
    pub fn masked(&self) -> String {
        crate::mask::mobile(&self.0)
    }
}

// ---------------------------------------------------------------- postal code

/// A 10-digit Iranian postal code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PostalCode(String);
string_newtype!(PostalCode);

impl PostalCode {
    /// Ten digits; no 0 and no 2 among the first five; the first four not all equal.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let code = digits_only(input).ok_or(DomainError::PostalCodeInvalid)?;
        if code.len() != 10 || code[..5].bytes().any(|b| b == b'0' || b == b'2') || all_same(&code[..4]) {
            return Err(DomainError::PostalCodeInvalid);
        }
        Ok(Self(code))
    }
}

// ---------------------------------------------------------------- landline

/// An Iranian landline with its area code: 11 digits, `0` + a two-digit area code + eight
/// digits (e.g. `04137221234`, `02122712345`). A mobile (`09…`) is not a landline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Landline(String);
string_newtype!(Landline);

impl Landline {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let mut digits = digits_only(input.trim().trim_start_matches('+')).ok_or(DomainError::PhoneInvalid)?;
        if let Some(rest) = digits.strip_prefix("0098").or_else(|| digits.strip_prefix("98")).filter(|r| r.len() == 10)
        {
            digits = format!("0{rest}");
        }
        let ok = digits.len() == 11
            && digits.starts_with('0')
            && !digits.starts_with("09")
            && !digits.starts_with("00")
            && !all_same(&digits[3..]);
        if ok { Ok(Self(digits)) } else { Err(DomainError::PhoneInvalid) }
    }

    /// The city's phone code, as offices are filed under it (`041`).
    pub fn city_code(&self) -> &str {
        &self.0[..3]
    }
}

// ---------------------------------------------------------------- birth certificate serial

/// The serial of a birth certificate (سریال شناسنامه): the six-digit number a citizen
/// types, and optionally the letter series and its two-digit number (e.g. `ج/12 345678`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BirthCertSerial {
    number: String,
    series: Option<(String, u8)>,
}

impl fmt::Debug for BirthCertSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BirthCertSerial(******)")
    }
}

impl fmt::Display for BirthCertSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.series {
            Some((letter, n)) => write!(f, "{letter}/{n:02} {}", self.number),
            None => f.write_str(&self.number),
        }
    }
}

impl BirthCertSerial {
    /// Parses `883810`, `۸۸۳۸۱۰`, `ج/۱۲ ۳۴۵۶۷۸`, `12/ج/345678`, `الف/۲۱-۱۲۳۴۵۶`…
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let normalized = crate::text::ascii_digits(input);
        let mut digit_groups: Vec<String> = Vec::new();
        let mut letters: Vec<String> = Vec::new();
        let mut current = String::new();
        let flush = |cur: &mut String, digits: &mut Vec<String>, letters: &mut Vec<String>| {
            if cur.is_empty() {
                return;
            }
            if cur.bytes().all(|b| b.is_ascii_digit()) {
                digits.push(std::mem::take(cur));
            } else {
                letters.push(std::mem::take(cur));
            }
        };
        for c in normalized.chars() {
            let kind = |c: char| {
                if c.is_ascii_digit() {
                    Some(true)
                } else if is_series_letter(c) {
                    Some(false)
                } else {
                    None
                }
            };
            match kind(c) {
                Some(is_digit) => {
                    if let Some(last) = current.chars().last()
                        && last.is_ascii_digit() != is_digit
                    {
                        flush(&mut current, &mut digit_groups, &mut letters);
                    }
                    current.push(c);
                }
                None if c.is_whitespace() || matches!(c, '/' | '\\' | '-' | '_' | '|' | '\u{200C}') => {
                    flush(&mut current, &mut digit_groups, &mut letters);
                }
                None => return Err(DomainError::SerialInvalid),
            }
        }
        flush(&mut current, &mut digit_groups, &mut letters);

        let six: Vec<&String> = digit_groups.iter().filter(|g| g.len() == 6).collect();
        let small: Vec<&String> = digit_groups.iter().filter(|g| g.len() <= 2).collect();
        if six.len() != 1 || six.len() + small.len() != digit_groups.len() || letters.len() > 1 {
            return Err(DomainError::SerialInvalid);
        }
        let number = six[0].clone();
        if number == "000000" {
            return Err(DomainError::SerialInvalid);
        }
        let series = match (letters.first(), small.as_slice()) {
            (None, []) => None,
            (Some(letter), [n]) => Some((letter.clone(), n.parse().map_err(|_| DomainError::SerialInvalid)?)),
            _ => return Err(DomainError::SerialInvalid),
        };
        Ok(Self { number, series })
    }

    /// The six-digit number, which is what the registry matches on.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The letter series and its two-digit number, if given.
    pub fn series(&self) -> Option<(&str, u8)> {
        self.series.as_ref().map(|(l, n)| (l.as_str(), *n))
    }
}

fn is_series_letter(c: char) -> bool {
    matches!(c, '\u{0621}'..='\u{064A}' | '\u{067E}' | '\u{0686}' | '\u{0698}' | '\u{06A9}' | '\u{06AF}' | '\u{06CC}')
}

// ---------------------------------------------------------------- tracking code

/// The 10-digit tracking code (کد رهگیری): nine random digits and a Verhoeff check digit,
/// so that any single mistyped digit or swapped neighbours are caught before a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackingCode(String);
string_newtype!(TrackingCode);

impl TrackingCode {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let code = digits_only(input).ok_or(DomainError::TrackingCodeInvalid)?;
        if code.len() != 10 || !verhoeff::is_valid(&code) {
            return Err(DomainError::TrackingCodeInvalid);
        }
        Ok(Self(code))
    }

    /// A new code from a random number (only its value modulo 10⁹ is used).
    pub fn from_random(random: u64) -> Self {
        let body = format!("{:09}", random % 1_000_000_000);
        let check = verhoeff::check_digit(&body);
        Self(format!("{body}{check}"))
    }
}

mod verhoeff {
    // The dihedral group D5 multiplication table, the position permutation and the inverse table
    // of Verhoeff's scheme (1969).
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    const INV: [u8; 10] = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];

    fn fold(digits: &str, offset: usize) -> u8 {
        digits
            .bytes()
            .rev()
            .enumerate()
            .fold(0, |c, (i, b)| D[c as usize][P[(i + offset) % 8][(b - b'0') as usize] as usize])
    }

    pub(super) fn check_digit(body: &str) -> u8 {
        INV[fold(body, 1) as usize]
    }

    pub(super) fn is_valid(code: &str) -> bool {
        fold(code, 0) == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn landlines_carry_their_city_code() {
        let l = Landline::parse("041-3722 1234").unwrap();
        assert_eq!((l.as_str(), l.city_code()), ("04137221234", "041"));
        assert_eq!(Landline::parse("۰۲۱۲۲۷۱۲۳۴۵").unwrap().city_code(), "021");
        assert_eq!(Landline::parse("+982122712345").unwrap().as_str(), "02122712345");
        for bad in ["09145128136", "0413722123", "041372212345", "04100000000", "00137221234", "tel"] {
            assert_eq!(Landline::parse(bad), Err(DomainError::PhoneInvalid), "{bad}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    const VALID_NATIONAL: &str = "2580200606 0499370899 0790419904 1583250689 0684159414 4400276201 2540201288 0084575948 0067749828 11537027 787833770";
    const INVALID_NATIONAL: &str =
        "1234567890 0000000000 1111111111 3333333333 0684159415 0010000000 10499370899 079041a904 +583250689";

    #[test]
    fn national_ids_from_the_domain_issue() {
        for code in VALID_NATIONAL.split(' ') {
            let id = NationalId::parse(code).unwrap_or_else(|e| panic!("{code} should be valid: {e}"));
            assert_eq!(id.as_str().len(), 10);
            assert!(id.as_str().ends_with(code), "{code} is left-padded, not changed");
        }
        for code in INVALID_NATIONAL.split(' ') {
            assert_eq!(NationalId::parse(code), Err(DomainError::NationalIdInvalid), "{code}");
        }
        assert_eq!(NationalId::parse("۲۵۸۰۲۰۰۶۰۶").unwrap().as_str(), "2580200606");
        assert_eq!(NationalId::parse("٢٥٨-٠٢٠٠٦٠٦").unwrap().as_str(), "2580200606");
        assert_eq!(NationalId::parse("258 020 0606").unwrap().as_str(), "2580200606");
        assert!(NationalId::parse("1234567").is_err());
        assert!(NationalId::parse("").is_err());
    }

    #[test]
    fn national_id_debug_is_masked() {
        let id = NationalId::parse("2580200606").unwrap();
        assert!(!format!("{id:?}").contains("2580200606"));
    }

    #[test]
    fn legal_ids() {
        for code in ["10380284790", "10100387143", "77111986110"] {
            assert!(LegalId::parse(code).is_ok(), "{code}");
        }
        for code in ["10380284792", "11111111111", "84735069516", "1038028479", "103802847900"] {
            assert_eq!(LegalId::parse(code), Err(DomainError::LegalIdInvalid), "{code}");
        }
    }

    #[test]
    fn mobiles_in_every_prefix_form() {
        for input in [
            "09145128136",
            "9145128136",
            "+989145128136",
            "989145128136",
            "00989145128136",
            "۰۹۱۴۵۱۲۸۱۳۶",
            "+98 914 512 8136",
            "0914-512-8136",
            "(0914) 512 8136",
        ] {
            assert_eq!(Mobile::parse(input).map(|m| m.0), Ok("09145128136".to_owned()), "{input}");
        }
        for input in
            ["08145128136", "0914512813", "091451281366", "+0989145128136", "09705128136", "abc", "+09145128136"]
        {
            assert_eq!(Mobile::parse(input), Err(DomainError::MobileInvalid), "{input}");
        }
        assert_eq!(Mobile::parse("09145128136").unwrap().operator(), Some(MobileOperator::Mci));
        assert_eq!(Mobile::parse("09351234567").unwrap().operator(), Some(MobileOperator::Irancell));
        assert_eq!(Mobile::parse("09211234567").unwrap().operator(), Some(MobileOperator::Rightel));
        assert_eq!(Mobile::parse("09145128136").unwrap().masked(), "0914***8136");
    }

    #[test]
    fn postal_codes() {
        assert!(PostalCode::parse("1311656374").is_ok());
        assert!(PostalCode::parse("۵۵۱۸۷۴۳۱۱۱").is_ok());
        for bad in ["1031656374", "1321656374", "1111656374", "131165637", "13116563745", "13116x6374"] {
            assert_eq!(PostalCode::parse(bad), Err(DomainError::PostalCodeInvalid), "{bad}");
        }
    }

    #[test]
    fn birth_certificate_serials() {
        let plain = BirthCertSerial::parse("883810").unwrap();
        assert_eq!(plain.number(), "883810");
        assert_eq!(plain.series(), None);
        assert_eq!(BirthCertSerial::parse("۸۸۳۸۱۰").unwrap(), plain);

        let a = BirthCertSerial::parse("ج/۱۲ ۳۴۵۶۷۸").unwrap();
        assert_eq!(a.number(), "345678");
        assert_eq!(a.series(), Some(("ج", 12)));
        let b = BirthCertSerial::parse("12/ج/345678").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_string(), "ج/12 345678");
        let alef = BirthCertSerial::parse("الف/۲۱-۱۲۳۴۵۶").unwrap();
        assert_eq!(alef.series(), Some(("الف", 21)));

        for bad in ["", "12345", "1234567", "000000", "ج/12", "12 345678", "ج ب 12 345678", "x12345", "12/ج/345678/9"]
        {
            assert_eq!(BirthCertSerial::parse(bad), Err(DomainError::SerialInvalid), "{bad:?}");
        }
    }

    #[test]
    fn tracking_code_known_vector() {
        // Verhoeff's classic example: 236 has check digit 3.
        assert_eq!(verhoeff::check_digit("236"), 3);
        assert!(verhoeff::is_valid("2363"));
        let code = TrackingCode::from_random(497_320_167);
        assert_eq!(code.as_str().len(), 10);
        assert_eq!(TrackingCode::parse(code.as_str()), Ok(code.clone()));
    }

    proptest! {
        #[test]
        fn generated_national_ids_validate(nine in "[0-9]{9}") {
            if let Some(id) = NationalId::from_first_nine(&nine) {
                prop_assert_eq!(NationalId::parse(id.as_str()), Ok(id.clone()));
            }
        }

        /// Any single-digit change is rejected, except in the one blind spot of the standard
        /// rule: remainders 1 and 10 both give check digit 1, so a change that moves the
        /// remainder between them keeps the code valid. The test pins that exception exactly.
        #[test]
        fn any_single_digit_change_of_a_national_id_is_rejected(nine in "[1-9][0-9]{8}", pos in 0usize..10, delta in 1u8..10) {
            if let Some(id) = NationalId::from_first_nine(&nine) {
                let mut bytes = id.as_str().as_bytes().to_vec();
                bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
                let changed = String::from_utf8(bytes).unwrap();
                let remainder = |code: &str| {
                    digit_values(&code[..9]).zip((2..=10).rev()).map(|(d, w)| d * w).sum::<u32>() % 11
                };
                let blind_spot = pos < 9
                    && id.as_str().ends_with('1')
                    && [remainder(id.as_str()), remainder(&changed)].iter().all(|r| *r == 1 || *r == 10);
                prop_assert_eq!(NationalId::parse(&changed).is_ok(), blind_spot, "{} from {}", changed, id);
            }
        }

        #[test]
        fn tracking_codes_catch_every_single_digit_error(random in any::<u64>(), pos in 0usize..10, delta in 1u8..10) {
            let code = TrackingCode::from_random(random);
            let mut bytes = code.as_str().as_bytes().to_vec();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            prop_assert!(TrackingCode::parse(std::str::from_utf8(&bytes).unwrap()).is_err());
        }

        #[test]
        fn tracking_codes_catch_adjacent_swaps(random in any::<u64>(), pos in 0usize..9) {
            let code = TrackingCode::from_random(random);
            let mut bytes = code.as_str().as_bytes().to_vec();
            prop_assume!(bytes[pos] != bytes[pos + 1]);
            bytes.swap(pos, pos + 1);
            prop_assert!(TrackingCode::parse(std::str::from_utf8(&bytes).unwrap()).is_err());
        }

        #[test]
        fn mobile_parsing_never_panics(s in "\\PC{0,20}") {
            let _ = Mobile::parse(&s);
            let _ = NationalId::parse(&s);
            let _ = BirthCertSerial::parse(&s);
        }
    }

    /// Nine digits become a valid code with its check digit; anything else is refused.
    #[test]
    fn a_code_is_completed_from_its_first_nine_digits() {
        assert_eq!(NationalId::from_first_nine("258020060"), Some(NationalId::parse("2580200606").unwrap()));
        // "10000019" would complete to the valid 0100000193: eight digits are still refused.
        for bad in ["25802006", "10000019", "2580200600", "25802006x", "111111111"] {
            assert_eq!(NationalId::from_first_nine(bad), None, "{bad}");
        }
        assert_eq!(format!("{:?}", NationalId::parse("2580200606").unwrap()), "NationalId(258****606)");
    }

    /// Checksum-valid but placeholder legal IDs are refused: one repeated digit, or zeros in
    /// the middle six.
    #[test]
    fn placeholder_legal_ids_are_refused_even_with_a_valid_check_digit() {
        for placeholder in ["33333333333", "10000000005"] {
            assert_eq!(LegalId::parse(placeholder), Err(DomainError::LegalIdInvalid), "{placeholder}");
        }
    }

    /// A country code only where one can be: `98` or `+98` with 12 digits, `0098` without a
    /// plus with 14; ten digits only without a plus. Other 12- and 14-digit numbers are not
    /// Iranian mobiles.
    #[test]
    fn mobile_prefixes_are_read_strictly() {
        for good in ["+989145128136", "989145128136", "00989145128136", "09145128136", "9145128136"] {
            assert_eq!(Mobile::parse(good).unwrap().as_str(), "09145128136", "{good}");
        }
        for bad in ["119145128136", "+119145128136", "11119145128136", "+00989145128136", "+9145128136", "+09145128136"]
        {
            assert_eq!(Mobile::parse(bad), Err(DomainError::MobileInvalid), "{bad}");
        }
    }

    #[test]
    fn mobile_operators_and_masks() {
        let op = |s: &str| Mobile::parse(s).unwrap().operator();
        assert_eq!(op("09981234567"), Some(MobileOperator::Shatel));
        for mvno in ["09311234567", "09321234567", "09341234567", "09991234567"] {
            assert_eq!(op(mvno), Some(MobileOperator::Mvno), "{mvno}");
        }
        assert_eq!(format!("{:?}", Mobile::parse("09145128136").unwrap()), "Mobile(0914***8136)");
        assert_eq!(format!("{:?}", BirthCertSerial::parse("883810").unwrap()), "BirthCertSerial(******)");
    }

    /// Separators between a serial's parts are spaces, slashes, dashes, underscores, bars
    /// and the zero-width non-joiner; any other mark makes it invalid.
    #[test]
    fn a_serial_with_a_stray_mark_is_invalid() {
        assert!(BirthCertSerial::parse("ج/۱۲ ۳۴۵۶۷۸").is_ok());
        for bad in ["883810!", "88@3810", "883810.", "ج/۱۲ ۳۴۵۶۷۸#"] {
            assert_eq!(BirthCertSerial::parse(bad), Err(DomainError::SerialInvalid), "{bad}");
        }
    }
}
