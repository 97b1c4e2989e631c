//! An Iranian bank account number in IBAN form, the Sheba number (شماره شبا): `IR`, two
//! ISO 13616 check digits, then 22 digits (bank code and account) — `IR` and 24 digits in
//! all. A withdrawal refunds a paid fee to it (issue 19 item 3; docs/domain/payments.md).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// A Sheba number whose check digits hold. Built only by [`Iban::parse`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iban(String);

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban({})", self.masked())
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Iban {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Iban> for String {
    fn from(v: Iban) -> String {
        v.0
    }
}

impl Iban {
    /// Parses what a person typed: `IR` in either case, then the 24 digits (Persian or
    /// Arabic-Indic digits too), spaces anywhere — the contract's `iban` pattern, exactly.
    /// The ISO 13616 check — the number moved to end with `IR` and its check digits,
    /// letters as 18 and 27, is 1 modulo 97 — catches every single mistyped digit and every
    /// swap of two neighbours.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let rest = match compact.get(..2) {
            Some(p) if p.eq_ignore_ascii_case("IR") => &compact[2..],
            _ => return Err(DomainError::IbanInvalid),
        };
        let digits = crate::text::ascii_digits(rest);
        if digits.len() != 24 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::IbanInvalid);
        }
        let iban = format!("IR{digits}");
        if mod97(&iban) != 1 {
            return Err(DomainError::IbanInvalid);
        }
        Ok(Self(iban))
    }

    /// The canonical form: `IR` and 24 ASCII digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs and lists: `IR` and the last four digits (`IR********************1001`).
    pub fn masked(&self) -> String {
        crate::mask::keep_ends(&self.0, 2, 4)
    }
}

/// The ISO 7064 MOD 97-10 remainder of an IBAN: the first four characters moved to the
/// end, letters as two-digit numbers (A = 10 … Z = 35), read as one decimal number.
fn mod97(iban: &str) -> u32 {
    let (head, tail) = iban.split_at(4);
    tail.chars().chain(head.chars()).fold(0u32, |acc, c| {
        let v = c.to_digit(36).unwrap_or(0);
        // A letter is two decimal digits, a digit one.
        let shift = if v >= 10 { 100 } else { 10 };
        (acc * shift + v) % 97
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published Sheba numbers: the SWIFT IBAN registry's example for Iran, and three
    /// banks' sample accounts.
    const VALID: [&str; 4] = [
        "IR710570029971601460641001",
        "IR062960000000100324200001",
        "IR580540105180021273113007",
        "IR820540102680020817909002",
    ];

    #[test]
    fn published_numbers_parse_to_their_canonical_form() {
        for s in VALID {
            assert_eq!(Iban::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn typed_forms_are_normalised() {
        let want = "IR710570029971601460641001";
        for typed in [
            "ir710570029971601460641001",
            "IR71 0570 0299 7160 1460 6410 01",
            "I R 71 0570\t0299 7160 1460 6410 01 ",
            "IR۷۱۰۵۷۰۰۲۹۹۷۱۶۰۱۴۶۰۶۴۱۰۰۱",
            "iR٧١٠٥٧٠٠٢٩٩٧١٦٠١٤٦٠٦٤١٠٠١",
        ] {
            assert_eq!(Iban::parse(typed).map(|i| i.as_str().to_owned()), Ok(want.to_owned()), "{typed:?}");
        }
    }

    #[test]
    fn the_check_digits_catch_every_single_digit_mistake() {
        let good = VALID[0];
        for i in 2..good.len() {
            for d in b'0'..=b'9' {
                let mut b = good.as_bytes().to_vec();
                if b[i] == d {
                    continue;
                }
                b[i] = d;
                let s = String::from_utf8(b).unwrap();
                assert_eq!(Iban::parse(&s), Err(DomainError::IbanInvalid), "{s}");
            }
        }
    }

    #[test]
    fn adjacent_swaps_are_caught() {
        let good = VALID[1];
        for i in 4..good.len() - 1 {
            let mut b = good.as_bytes().to_vec();
            if b[i] == b[i + 1] {
                continue;
            }
            b.swap(i, i + 1);
            let s = String::from_utf8(b).unwrap();
            assert_eq!(Iban::parse(&s), Err(DomainError::IbanInvalid), "{s}");
        }
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for s in [
            "",
            "IR",
            "IR71057002997160146064100",   // 23 digits
            "IR7105700299716014606410011", // 25 digits
            "DE89370400440532013000",      // another country
            "GB82WEST12345698765432",
            "IR71057002997160146064100A",
            "IR71 0570 0299 7160 1460 6410 0.1",
            "IR71-0570-0299-7160-1460-6410-01", // the contract's pattern allows spaces only
            "710570029971601460641001",         // the country code is part of the number
        ] {
            assert_eq!(Iban::parse(s), Err(DomainError::IbanInvalid), "{s:?}");
        }
    }

    #[test]
    fn masked_shows_only_the_country_and_the_last_four_digits() {
        let i = Iban::parse(VALID[0]).unwrap();
        assert_eq!(i.masked(), "IR********************1001");
        assert_eq!(format!("{i:?}"), "Iban(IR********************1001)");
        assert!(!format!("{i:?}").contains("0570029971"));
    }

    #[test]
    fn mod97_agrees_with_the_iso_example() {
        // ISO 13616's worked example (a German IBAN) through the same arithmetic.
        assert_eq!(mod97("DE89370400440532013000"), 1);
        assert_eq!(mod97("DE88370400440532013000"), 0);
    }

    /// Only Iranian numbers: another country's prefix is refused even when the digits after
    /// it would make a valid Sheba. The text forms are the canonical one.
    #[test]
    fn only_ir_numbers_and_their_text_forms() {
        let valid = VALID[0];
        assert_eq!(Iban::parse(&format!("DE{}", &valid[2..])), Err(DomainError::IbanInvalid));
        let iban = Iban::parse(valid).unwrap();
        assert_eq!(iban.to_string(), valid);
        assert_eq!(String::from(iban.clone()), valid);
        assert_eq!(format!("{iban:?}"), "Iban(IR********************1001)");
    }
}
