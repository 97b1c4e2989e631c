//! Money is an integer number of rials, never a float.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// An amount in Iranian rials (non-negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Rials(i64);

impl Rials {
    pub const ZERO: Rials = Rials(0);

    pub fn new(amount: i64) -> Result<Self, DomainError> {
        if amount < 0 {
            return Err(DomainError::AmountInvalid);
        }
        Ok(Self(amount))
    }

    pub const fn value(self) -> i64 {
        self.0
    }

    /// `200000` → `200,000`.
    pub fn grouped(self) -> String {
        let digits = self.0.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}

impl TryFrom<i64> for Rials {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<Rials> for i64 {
    fn from(r: Rials) -> i64 {
        r.0
    }
}

impl fmt::Display for Rials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rials", self.grouped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rials_are_non_negative_integers() {
        assert_eq!(Rials::new(200_000).unwrap().grouped(), "200,000");
        assert_eq!(Rials::new(1_000).unwrap().grouped(), "1,000");
        assert_eq!(Rials::new(0).unwrap().grouped(), "0");
        assert_eq!(Rials::new(-1), Err(DomainError::AmountInvalid));
        assert_eq!(Rials::new(1_234_567).unwrap().grouped(), "1,234,567");
        assert_eq!(Rials::new(999).unwrap().grouped(), "999");
        assert_eq!(Rials::new(12_345).unwrap().to_string(), "12,345 rials");
        assert_eq!(Rials::new(7).unwrap().value(), 7);
        assert_eq!(i64::from(Rials::new(42).unwrap()), 42);
        assert_eq!(Rials::try_from(90_000), Ok(Rials::new(90_000).unwrap()));
        assert_eq!(Rials::try_from(-5), Err(DomainError::AmountInvalid));
        let json = serde_json::to_string(&Rials::new(250_000).unwrap()).unwrap();
        assert_eq!(json, "250000");
        assert!(serde_json::from_str::<Rials>("-1").is_err());
    }
}
