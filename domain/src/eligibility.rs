//! Who may register (docs/domain/eligibility.md): the ordered checks at entry and the
//! checks of the personal information against the civil registry.

use chrono::{DateTime, NaiveDate, Utc};

use crate::calendar::{
    HijriDate, JalaliDate, age_in_full_years, lunar_birth_options, tehran_date, working_hours_between,
};
use crate::error::DomainError;
use crate::ids::BirthCertSerial;
use crate::person::{Gender, PersonName};
use crate::policy::Policy;
use crate::ports::RegistryRecord;

/// The entry checks after the formats were parsed, in the order of docs/domain/eligibility.md:
/// a record exists and the serial belongs to it (one answer for both, so nobody can
/// learn which national codes exist); the person is alive; at least `min_age` full years;
/// the serial did not change less than 48 working hours ago.
pub fn check_entry(
    record: Option<&RegistryRecord>,
    serial: &BirthCertSerial,
    now: DateTime<Utc>,
    policy: &Policy,
    holidays: &[NaiveDate],
) -> Result<(), DomainError> {
    let record = record.filter(|r| r.serial == serial.number()).ok_or(DomainError::IdentityMismatch)?;
    if !record.alive {
        return Err(DomainError::PersonNotAlive);
    }
    let today = JalaliDate::from_gregorian(tehran_date(now))?;
    if age_in_full_years(record.birth_date, today) < policy.min_age_years as i32 {
        return Err(DomainError::Underage { min_age: policy.min_age_years });
    }
    if let Some(changed) = record.serial_changed_at
        && working_hours_between(changed, now, holidays) < policy.serial_change_wait_hours
    {
        return Err(DomainError::SerialRecentlyChanged);
    }
    Ok(())
}

/// What the citizen states on the personal-information page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalClaim {
    pub birth_date: JalaliDate,
    pub gender: Gender,
    pub lunar_birth_date: HijriDate,
    /// The mother's first name alone (docs/domain/eligibility.md: «منظور صرفا نام مادر بدون نام خانوادگی است»).
    pub mother_name: PersonName,
}

/// The lunar date must be one of the five options for the stated solar date. This
/// needs no registry, so it is checked even when the registry is unreachable.
pub fn check_lunar_option(claim: &PersonalClaim) -> Result<(), DomainError> {
    if lunar_birth_options(claim.birth_date).contains(&claim.lunar_birth_date) {
        Ok(())
    } else {
        Err(DomainError::LunarDateNotOffered)
    }
}

/// The personal information against the registry's record (docs/domain/eligibility.md item 2):
/// the solar birth date, the gender and the mother's first name must equal the
/// registry's (names compared as [`PersonName::matches`]: Arabic and Persian letter forms,
/// spaces and ZWNJ do not count).
pub fn check_personal_info(record: &RegistryRecord, claim: &PersonalClaim) -> Result<(), DomainError> {
    check_lunar_option(claim)?;
    if record.birth_date != claim.birth_date {
        return Err(DomainError::BirthDateMismatch);
    }
    if record.gender != claim.gender {
        return Err(DomainError::GenderMismatch);
    }
    if !record.mother_name.matches(&claim.mother_name) {
        return Err(DomainError::MotherNameMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::tehran_instant;
    use crate::ids::NationalId;
    use chrono::Duration;

    fn sample() -> RegistryRecord {
        RegistryRecord {
            national_id: NationalId::parse("2580200606").unwrap(),
            serial: "883810".into(),
            first_name: PersonName::parse("مریم").unwrap(),
            last_name: PersonName::parse("احمدی").unwrap(),
            father_name: PersonName::parse("علی").unwrap(),
            mother_name: PersonName::parse("شهرزاد").unwrap(),
            gender: Gender::Female,
            birth_date: JalaliDate::parse("1369-03-19").unwrap(),
            alive: true,
            serial_changed_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        tehran_instant(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(), 10, 0)
    }

    fn serial(s: &str) -> BirthCertSerial {
        BirthCertSerial::parse(s).unwrap()
    }

    #[test]
    fn the_seed_citizen_is_eligible() {
        assert_eq!(check_entry(Some(&sample()), &serial("883810"), now(), &Policy::default(), &[]), Ok(()));
    }

    #[test]
    fn unknown_person_and_wrong_serial_give_the_same_answer() {
        let p = Policy::default();
        assert_eq!(check_entry(None, &serial("883810"), now(), &p, &[]), Err(DomainError::IdentityMismatch));
        assert_eq!(check_entry(Some(&sample()), &serial("883811"), now(), &p, &[]), Err(DomainError::IdentityMismatch));
    }

    #[test]
    fn alive_age_and_serial_change_are_told_only_after_the_serial_matched() {
        let p = Policy::default();
        let mut dead = sample();
        dead.alive = false;
        assert_eq!(check_entry(Some(&dead), &serial("883810"), now(), &p, &[]), Err(DomainError::PersonNotAlive));
        assert_eq!(check_entry(Some(&dead), &serial("111111"), now(), &p, &[]), Err(DomainError::IdentityMismatch));

        let mut child = sample();
        child.birth_date = JalaliDate::parse("1391-01-01").unwrap(); // 14 in 1405
        assert_eq!(
            check_entry(Some(&child), &serial("883810"), now(), &p, &[]),
            Err(DomainError::Underage { min_age: 15 })
        );

        let mut changed = sample();
        changed.serial_changed_at = Some(now() - Duration::hours(30));
        assert_eq!(
            check_entry(Some(&changed), &serial("883810"), now(), &p, &[]),
            Err(DomainError::SerialRecentlyChanged)
        );
        changed.serial_changed_at = Some(now() - Duration::hours(24 * 5));
        assert_eq!(check_entry(Some(&changed), &serial("883810"), now(), &p, &[]), Ok(()));
    }

    /// A changed serial is accepted once 48 working hours have passed, not a minute before.
    #[test]
    fn a_changed_serial_is_accepted_after_exactly_its_working_hours() {
        let p = Policy::default();
        // Sunday 2026-11-22 10:00 → Tuesday 2026-11-24 10:00 Tehran: 48 working hours.
        let tuesday = tehran_instant(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(), 10, 0);
        let mut changed = sample();
        changed.serial_changed_at = Some(now());
        assert_eq!(p.serial_change_wait_hours, 48);
        assert_eq!(check_entry(Some(&changed), &serial("883810"), tuesday, &p, &[]), Ok(()));
        changed.serial_changed_at = Some(now() + Duration::minutes(1));
        assert_eq!(
            check_entry(Some(&changed), &serial("883810"), tuesday, &p, &[]),
            Err(DomainError::SerialRecentlyChanged)
        );
    }

    #[test]
    fn turning_15_tomorrow_is_refused_today() {
        let mut r = sample();
        // Tehran date of now() is 1405-09-01.
        r.birth_date = JalaliDate::parse("1390-09-02").unwrap();
        assert!(check_entry(Some(&r), &serial("883810"), now(), &Policy::default(), &[]).is_err());
        r.birth_date = JalaliDate::parse("1390-09-01").unwrap();
        assert!(check_entry(Some(&r), &serial("883810"), now(), &Policy::default(), &[]).is_ok());
    }

    #[test]
    fn personal_info_must_match_the_registry() {
        let r = sample();
        let good = PersonalClaim {
            birth_date: r.birth_date,
            gender: Gender::Female,
            lunar_birth_date: HijriDate { year: 1410, month: 11, day: 15 },
            mother_name: PersonName::parse("شهرزاد").unwrap(),
        };
        assert_eq!(check_personal_info(&r, &good), Ok(()));
        assert_eq!(
            check_personal_info(&r, &PersonalClaim { gender: Gender::Male, ..good.clone() }),
            Err(DomainError::GenderMismatch)
        );
        assert_eq!(
            check_personal_info(&r, &PersonalClaim { mother_name: PersonName::parse("مریم").unwrap(), ..good.clone() }),
            Err(DomainError::MotherNameMismatch),
            "the mother's first name is compared (docs/domain/eligibility.md)"
        );
        // Arabic letter forms, spaces and ZWNJ are not a different name.
        let mut arabic = r.clone();
        arabic.mother_name = PersonName::parse("فاطمه زهرا").unwrap();
        let claim =
            PersonalClaim { mother_name: PersonName::parse("فاطمه\u{200c}زهرا").unwrap(), ..good.clone() };
        assert_eq!(check_personal_info(&arabic, &claim), Ok(()));
        let other_day = JalaliDate::parse("1369-03-20").unwrap();
        assert_eq!(
            check_personal_info(
                &r,
                &PersonalClaim {
                    birth_date: other_day,
                    lunar_birth_date: HijriDate { year: 1410, month: 11, day: 16 },
                    ..good.clone()
                }
            ),
            Err(DomainError::BirthDateMismatch)
        );
        assert_eq!(
            check_personal_info(
                &r,
                &PersonalClaim { lunar_birth_date: HijriDate { year: 1410, month: 11, day: 20 }, ..good }
            ),
            Err(DomainError::LunarDateNotOffered)
        );
    }
}
