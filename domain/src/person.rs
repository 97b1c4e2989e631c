//! A person's name, gender and religion as typed on forms and held by the registry.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::text::{name_key, normalize_name};

/// A normalised personal name (docs/domain/identifiers.md) — letters, spaces, ZWNJ and `.-'` only, 1–60 characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = normalize_name(input);
        let len = name.chars().count();
        let allowed = |c: char| {
            c.is_alphabetic()
                || matches!(c, ' ' | '\u{200C}' | '.' | '-' | '\'')
                // Arabic-script combining marks (harakat) that appear in some registered names;
                // the superscript alef (U+0670) is already alphabetic.
                || ('\u{064B}'..='\u{065F}').contains(&c)
        };
        // An empty name has no letter, so the last test refuses it too.
        if len > 60 || !name.chars().all(allowed) || !name.chars().any(char::is_alphabetic) {
            return Err(DomainError::NameInvalid);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used whenever names are matched against the registry: no spaces, no ZWNJ.
    pub fn key(&self) -> String {
        name_key(&self.0)
    }

    /// Whether two names are the same person-name for matching purposes.
    pub fn matches(&self, other: &PersonName) -> bool {
        self.key() == other.key()
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName(…)")
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PersonName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PersonName> for String {
    fn from(n: PersonName) -> String {
        n.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "female" => Some(Gender::Female),
            "male" => Some(Gender::Male),
            _ => None,
        }
    }
    pub fn label_fa(self) -> &'static str {
        match self {
            Gender::Female => "زن",
            Gender::Male => "مرد",
        }
    }
}

/// Religion as recorded on the receipt (docs/domain/identifiers.md: «دین»).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Religion {
    Islam,
    Christianity,
    Judaism,
    Zoroastrianism,
    Other,
}

impl Religion {
    pub fn as_str(self) -> &'static str {
        match self {
            Religion::Islam => "islam",
            Religion::Christianity => "christianity",
            Religion::Judaism => "judaism",
            Religion::Zoroastrianism => "zoroastrianism",
            Religion::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Islam, Self::Christianity, Self::Judaism, Self::Zoroastrianism, Self::Other]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
    pub fn label_fa(self) -> &'static str {
        match self {
            Religion::Islam => "اسلام",
            Religion::Christianity => "مسیحی",
            Religion::Judaism => "کلیمی",
            Religion::Zoroastrianism => "زرتشتی",
            Religion::Other => "سایر",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_checked() {
        let n = PersonName::parse(" شهرزاد ").unwrap();
        assert_eq!(n.as_str(), "شهرزاد");
        assert!(PersonName::parse("علي").unwrap().matches(&PersonName::parse("علی").unwrap()));
        assert!(PersonName::parse("محمد رضا").unwrap().matches(&PersonName::parse("محمد\u{200C}رضا").unwrap()));
        assert!(PersonName::parse("O'Brien").is_ok(), "apostrophes occur in names and must be stored safely");
        for bad in ["", "   ", "<script>", "a;drop table", "۱۲۳", &"ا".repeat(61), ".-'", "\u{200C}"] {
            assert_eq!(PersonName::parse(bad), Err(DomainError::NameInvalid), "{bad}");
        }
        // The edges: 60 letters; each allowed mark; harakat and the superscript alef.
        assert!(PersonName::parse(&"ا".repeat(60)).is_ok());
        for good in ["ژان-پل", "J. Smith", "مُحَمَّد", "رحمٰن", "محمد\u{200C}رضا"] {
            assert!(PersonName::parse(good).is_ok(), "{good}");
        }
        assert!(!PersonName::parse("علی").unwrap().matches(&PersonName::parse("رضا").unwrap()));
        assert_eq!(PersonName::parse("رضا").unwrap().key(), "رضا");
        assert_eq!(String::from(PersonName::parse("سارا").unwrap()), "سارا");
        assert_eq!(PersonName::try_from("سارا".to_owned()).unwrap().to_string(), "سارا");
        assert_eq!(
            format!("{:?}", PersonName::parse("سارا").unwrap()),
            "PersonName(…)",
            "names stay out of debug output"
        );
    }

    #[test]
    fn genders_and_religions_round_trip_with_their_labels() {
        for g in [Gender::Female, Gender::Male] {
            assert_eq!(Gender::parse(g.as_str()), Some(g));
        }
        assert_eq!((Gender::Female.label_fa(), Gender::Male.label_fa()), ("زن", "مرد"));
        assert_eq!(Gender::parse("other"), None);
        let all =
            [Religion::Islam, Religion::Christianity, Religion::Judaism, Religion::Zoroastrianism, Religion::Other];
        let labels: Vec<&str> = all.iter().map(|r| r.label_fa()).collect();
        assert_eq!(labels, ["اسلام", "مسیحی", "کلیمی", "زرتشتی", "سایر"]);
        for r in all {
            assert_eq!(Religion::parse(r.as_str()), Some(r));
        }
        assert_eq!(Religion::parse("islam "), None);
    }

    /// A name may have up to 60 characters, not one more.
    #[test]
    fn a_name_has_at_most_sixty_characters() {
        assert!(PersonName::parse(&"ب".repeat(60)).is_ok());
        assert_eq!(PersonName::parse(&"ب".repeat(61)), Err(DomainError::NameInvalid));
    }

    /// Registered names may carry harakat and the superscript alef (as in «رحمٰن»).
    #[test]
    fn names_keep_harakat_and_the_superscript_alef() {
        for name in ["رحمٰن", "مُحَمَّد"] {
            assert!(PersonName::parse(name).is_ok(), "{name}");
        }
        assert_eq!(PersonName::parse("علی؟"), Err(DomainError::NameInvalid));
    }
}
