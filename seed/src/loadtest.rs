//! The load-test data set (`ncr seed-loadtest`): the national-scale offices and slots of
//! [`super::national`] plus `citizens` synthetic, eligible people in the sandbox civil
//! registry, each owning their mobile. Citizen `i` is a pure function of `i`
//! ([`citizen`]), so the load-test tool knows who exists without asking the database.
//! Idempotent: what exists is skipped.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Instant;

use domain::calendar::JalaliDate;
use domain::ids::NationalId;
use persistence::registry::PersonRow;
use persistence::{Db, DbError};

/// National codes and mobiles of the demo population, which load-test citizens avoid.
static DEMO: LazyLock<(HashSet<String>, HashSet<String>)> = LazyLock::new(|| {
    // The demo population's codes and mobiles do not depend on the clock's value.
    let epoch = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let pop = super::population::generate(epoch);
    let ids = pop.people.iter().map(|p| p.national_id.clone()).collect();
    let mobiles = pop.people.iter().filter_map(|p| p.mobile.clone()).collect();
    (ids, mobiles)
});

const FEMALE: [&str; 6] = ["زهرا", "فاطمه", "مریم", "سارا", "نرگس", "لیلا"];
const MALE: [&str; 6] = ["علی", "محمد", "حسین", "رضا", "مهدی", "امیر"];
const LAST: [&str; 6] = ["محمدی", "حسینی", "کریمی", "رحیمی", "موسوی", "جعفری"];

/// Load-test citizen `i` (`i` < 10,000,000): an eligible adult (aged 20–59) whose mobile is
/// registered to them, or `None` for the few indexes whose code would be invalid or would
/// clash with the demo population.
pub fn citizen(i: u64) -> Option<PersonRow> {
    if i >= 10_000_000 {
        return None;
    }
    let id = NationalId::from_first_nine(&format!("7{i:08}"))?;
    let mobile = format!("0939{:07}", i % 10_000_000);
    let (ids, mobiles) = &*DEMO;
    if ids.contains(id.as_str()) || mobiles.contains(&mobile) {
        return None;
    }
    let female = i.is_multiple_of(2);
    let n = (i / 2) as usize;
    let year = 1345 + (i % 40) as i32;
    let month = 1 + (i / 40 % 12) as u8;
    let day = 1 + (i / 480 % 29) as u8;
    let birth = JalaliDate::new(year, month, day).ok()?;
    Some(PersonRow {
        national_id: id.into(),
        serial: format!("{:06}", 100_000 + (i * 7_919) % 900_000),
        first_name: if female { FEMALE[n % 6] } else { MALE[n % 6] }.to_owned(),
        last_name: LAST[(n / 6) % 6].to_owned(),
        father_name: MALE[(n / 36) % 6].to_owned(),
        mother_name: FEMALE[(n / 216) % 6].to_owned(),
        gender: if female { "female" } else { "male" }.to_owned(),
        birth_date_jalali: birth.to_string(),
        alive: true,
        serial_changed_at: None,
        mobile: Some(mobile),
    })
}

/// Adds load-test citizens `0..citizens` (skipping [`citizen`]'s gaps) to the sandbox
/// registry with their mobile-ownership pairs, in batched transactions; returns how many
/// were new.
pub fn seed_citizens(db: &Db, citizens: u64) -> Result<usize, DbError> {
    let mut conn = db.get()?;
    let mut added = 0;
    let mut start = 0;
    while start < citizens {
        let end = (start + 20_000).min(citizens);
        let people: Vec<PersonRow> = (start..end).filter_map(citizen).collect();
        let owners: Vec<(String, String)> =
            people.iter().map(|p| (p.mobile.clone().unwrap_or_default(), p.national_id.clone())).collect();
        added += persistence::registry::insert_people(&mut conn, &people)?;
        persistence::registry::insert_owners(&mut conn, &owners)?;
        start = end;
    }
    Ok(added)
}

/// Offices and slots (see [`super::national::generate`]) and the citizens; a summary line.
pub fn generate(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    offices: usize,
    days: u32,
    citizens: u64,
) -> Result<String, DbError> {
    let started = Instant::now();
    let national = super::national::generate(db, now, offices, days)?;
    let people_started = Instant::now();
    let added = seed_citizens(db, citizens)?;
    Ok(format!(
        "{national}; {added} new load-test citizens of {citizens} in {:.1} s; all in {:.1} s",
        people_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citizens_are_valid_distinct_and_adults() {
        let mut seen = HashSet::new();
        let mut mobiles = HashSet::new();
        let mut valid = 0;
        for i in 0..20_000 {
            if let Some(p) = citizen(i) {
                valid += 1;
                assert!(NationalId::parse(&p.national_id).is_ok());
                assert!(domain::ids::Mobile::parse(p.mobile.as_deref().unwrap()).is_ok());
                assert!(JalaliDate::parse(&p.birth_date_jalali).is_ok());
                assert!(seen.insert(p.national_id.clone()));
                assert!(mobiles.insert(p.mobile.clone()));
            }
        }
        assert!(valid > 19_000, "{valid}");
    }
}
