//! Demo data for the embedded default (`ncr seed-demo`): deterministic and idempotent.
//! A crate of its own beside the server: it writes through `persistence` only, and the
//! server (`api::seed`) hands it the database and the clock's "now".
//!
//! - [`population`]: 5,000 synthetic people for the sandbox civil registry (with fixed,
//!   documented test personas, the original guide's sample citizen first) and the sandbox
//!   mobile-ownership pairs;
//! - [`offices`]: real-looking offices in seven cities, their weekly capacity, the national
//!   holidays ahead and 90 days of slots;
//! - [`national`]: a national-scale office and slot generator for benchmarks
//!   (`ncr seed-national`), not part of the demo data;
//! - [`loadtest`]: that plus synthetic eligible citizens for the load-test tool
//!   (`ncr seed-loadtest`).
//!
//! Everything is a function of the clock's "now" and fixed seeds, so the same clock gives
//! the same data; a second run adds nothing.

pub mod loadtest;
pub mod national;
pub mod offices;
pub mod population;

use std::time::Instant;

use chrono::{DateTime, Utc};
use persistence::{Db, DbError};

/// Whether the database holds no demo data yet: no registry person and no office.
pub fn is_empty(db: &Db) -> Result<bool, DbError> {
    let mut conn = db.get()?;
    Ok(persistence::registry::count(&mut conn)? == 0 && persistence::offices::count(&mut conn)? == 0)
}

/// Loads the demo data as of `now` (what is already there is left alone); returns a
/// one-line summary.
pub fn seed_demo(db: &Db, now: DateTime<Utc>) -> Result<String, DbError> {
    let started = Instant::now();
    let population = population::generate(now);
    let mut conn = db.get()?;
    let people = persistence::registry::insert_people(&mut conn, &population.people)?;
    let owners = persistence::registry::insert_owners(&mut conn, &population.owners)?;
    let offices = offices::seed(&mut conn, now)?;
    Ok(format!(
        "demo data: added {people} of {} people, {owners} of {} mobile-ownership pairs, {} of {} offices, \
         {} holidays, {} slots ({} ms)",
        population.people.len(),
        population.owners.len(),
        offices.offices,
        offices::OFFICES.len(),
        offices.holidays,
        offices.slots,
        started.elapsed().as_millis()
    ))
}

/// SplitMix64: a tiny, fixed pseudo-random generator, so the synthetic data stays the same
/// forever whatever happens to outside crates.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (the modulo bias is irrelevant for demo data).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below(hi.abs_diff(lo) + 1) as i64
    }

    /// True `per_mille` times in a thousand.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn splitmix_is_the_reference_sequence() {
        // The first outputs of SplitMix64 seeded with 1234567 (the reference implementation).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        let mut r = SplitMix64::new(7);
        for _ in 0..1000 {
            let v = r.range(-3, 5);
            assert!((-3..=5).contains(&v));
        }
    }
}
