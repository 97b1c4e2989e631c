//! Fees (docs/domain/payments.md): the card fee paid online, and the fees counter and post
//! offices collect themselves. Amounts are rials.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::money::Rials;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// Paid online at pre-registration (200,000 rials in the 2017 tariff).
    Card,
    /// Collected by a counter or post office at enrollment (at most 90,000 rials).
    CounterEnrollment,
    /// Collected by a counter or post office when it hands the card over (20,000 rials).
    Delivery,
    /// Paid online for a new card cycle after delivery (re-issue: lost, damaged, serial or
    /// data changed). The tariff's default is 300,000 rials; admins set it in `/admin/fees`.
    Reissue,
}

impl FeeKind {
    pub const ALL: [FeeKind; 4] = [FeeKind::Card, FeeKind::CounterEnrollment, FeeKind::Delivery, FeeKind::Reissue];
    pub fn as_str(self) -> &'static str {
        match self {
            FeeKind::Card => "card",
            FeeKind::CounterEnrollment => "counter_enrollment",
            FeeKind::Delivery => "delivery",
            FeeKind::Reissue => "reissue",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// The tariff's default amount.
    pub fn default_amount(self) -> Rials {
        Rials::new(match self {
            FeeKind::Card => 200_000,
            FeeKind::CounterEnrollment => 90_000,
            FeeKind::Delivery => 20_000,
            FeeKind::Reissue => 300_000,
        })
        .expect("non-negative")
    }
    /// The legal ceiling, where there is one: charging more is an offence (docs/domain/payments.md).
    pub fn maximum(self) -> Option<Rials> {
        match self {
            FeeKind::Card | FeeKind::Reissue => None,
            FeeKind::CounterEnrollment => Some(Rials::new(90_000).expect("non-negative")),
            FeeKind::Delivery => Some(Rials::new(20_000).expect("non-negative")),
        }
    }
}

/// One tariff line: this fee is this amount from this date on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRate {
    pub kind: FeeKind,
    pub amount: Rials,
    pub effective_from: NaiveDate,
}

/// The amount of a fee on a date: the latest rate in effect, or the tariff default.
/// A payment keeps the amount it was created with; a later rate never changes it.
pub fn fee_on(rates: &[FeeRate], kind: FeeKind, date: NaiveDate) -> Rials {
    rates
        .iter()
        .filter(|r| r.kind == kind && r.effective_from <= date)
        .max_by_key(|r| r.effective_from)
        .map_or_else(|| kind.default_amount(), |r| r.amount)
}

/// A fee an office reports collecting must not exceed the legal ceiling.
pub fn check_collected(kind: FeeKind, amount: Rials) -> Result<(), DomainError> {
    match kind.maximum() {
        Some(max) if amount > max => Err(DomainError::FeeExceedsMaximum { max: max.value() }),
        _ => Ok(()),
    }
}

/// A new tariff line must respect the ceiling too.
pub fn check_rate(rate: &FeeRate) -> Result<(), DomainError> {
    check_collected(rate.kind, rate.amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn latest_rate_in_effect_wins() {
        let rates = [
            FeeRate { kind: FeeKind::Card, amount: Rials::new(1_000).unwrap(), effective_from: d("2018-01-01") },
            FeeRate { kind: FeeKind::Card, amount: Rials::new(300_000).unwrap(), effective_from: d("2027-01-01") },
        ];
        assert_eq!(fee_on(&[], FeeKind::Card, d("2026-11-22")).value(), 200_000);
        assert_eq!(fee_on(&rates, FeeKind::Card, d("2026-11-22")).value(), 1_000);
        assert_eq!(fee_on(&rates, FeeKind::Card, d("2027-01-01")).value(), 300_000);
        assert_eq!(fee_on(&rates, FeeKind::Delivery, d("2027-01-01")).value(), 20_000);
        assert_eq!(fee_on(&rates, FeeKind::Reissue, d("2027-01-01")).value(), 300_000, "a rate of its own");
    }

    #[test]
    fn office_fees_have_ceilings() {
        assert!(check_collected(FeeKind::CounterEnrollment, Rials::new(90_000).unwrap()).is_ok());
        assert_eq!(
            check_collected(FeeKind::CounterEnrollment, Rials::new(90_001).unwrap()),
            Err(DomainError::FeeExceedsMaximum { max: 90_000 })
        );
        assert!(check_collected(FeeKind::Card, Rials::new(10_000_000).unwrap()).is_ok());
    }

    /// The names fees are stored and sent under.
    #[test]
    fn fee_kinds_by_name() {
        let names: Vec<&str> = FeeKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["card", "counter_enrollment", "delivery", "reissue"]);
        for kind in FeeKind::ALL {
            assert_eq!(FeeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FeeKind::parse("Card"), None);
        assert_eq!(FeeKind::parse(""), None);
    }

    /// An admin cannot put a fee above its legal ceiling into the tariff.
    #[test]
    fn tariff_lines_respect_the_ceilings() {
        let on = "2027-01-01".parse().unwrap();
        let rate = |kind, amount| FeeRate { kind, amount: Rials::new(amount).unwrap(), effective_from: on };
        assert_eq!(check_rate(&rate(FeeKind::Delivery, 20_000)), Ok(()));
        assert_eq!(check_rate(&rate(FeeKind::Delivery, 20_001)), Err(DomainError::FeeExceedsMaximum { max: 20_000 }));
        assert_eq!(check_rate(&rate(FeeKind::Card, 5_000_000)), Ok(()));
    }
}
