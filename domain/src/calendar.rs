//! Solar Hijri (Jalali), Lunar Hijri and Gregorian dates, ages and "today" in Tehran
//! (docs/domain/identifiers.md). Calendar arithmetic is done by `icu_calendar`; nothing here hand-rolls it.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};
use icu_calendar::cal::hijri::{TabularAlgorithmEpoch, TabularAlgorithmLeapYears};
use icu_calendar::cal::{Hijri, Persian, hijri::TabularAlgorithm};
use icu_calendar::{Date, Gregorian};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Iran Standard Time. Iran has kept UTC+03:30 all year since daylight saving was abolished in 2022.
pub fn tehran() -> FixedOffset {
    FixedOffset::east_opt(3 * 3600 + 1800).expect("valid offset")
}

/// The calendar date in Tehran at an instant.
pub fn tehran_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tehran()).date_naive()
}

/// The instant a Tehran wall-clock date and time happens.
pub fn tehran_instant(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let naive = date.and_hms_opt(hour, minute, 0).expect("valid time");
    tehran().from_local_datetime(&naive).single().expect("fixed offset is unambiguous").with_timezone(&Utc)
}

fn to_icu(date: NaiveDate) -> Result<Date<Gregorian>, DomainError> {
    Date::try_new_gregorian(date.year(), date.month() as u8, date.day() as u8).map_err(|_| DomainError::DateInvalid)
}

fn from_icu(date: Date<Gregorian>) -> Result<NaiveDate, DomainError> {
    NaiveDate::from_ymd_opt(
        date.era_year().extended_year,
        u32::from(date.month().ordinal),
        u32::from(date.day_of_month().0),
    )
    .ok_or(DomainError::DateInvalid)
}

// ---------------------------------------------------------------- Jalali

/// A Solar Hijri date, as written in Iranian birth certificates (`1369-03-19`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JalaliDate {
    year: i32,
    month: u8,
    day: u8,
}

impl JalaliDate {
    /// A valid Jalali date, or `DateInvalid` (e.g. 1404-12-30: 1404 is not a leap year).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DomainError> {
        if !(1..=3000).contains(&year) {
            return Err(DomainError::DateInvalid);
        }
        let date = Date::try_new_persian(year, month, day).map_err(|_| DomainError::DateInvalid)?;
        if date.month().ordinal != month || date.day_of_month().0 != day {
            return Err(DomainError::DateInvalid);
        }
        Ok(Self { year, month, day })
    }

    /// Parses `1369-03-19`, `1369/3/19` or `۱۳۶۹/۰۳/۱۹`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let ascii = crate::text::ascii_digits(input.trim());
        let parts: Vec<&str> = ascii.split(['-', '/']).collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(DomainError::DateInvalid);
        };
        if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
            return Err(DomainError::DateInvalid);
        }
        // Digits only: `u16::from_str` would also take a sign (`1369-+3-19`).
        if !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DomainError::DateInvalid);
        }
        let num = |s: &str| s.parse::<u16>().map_err(|_| DomainError::DateInvalid);
        Self::new(i32::from(num(y)?), num(m)? as u8, num(d)? as u8)
    }

    pub fn from_gregorian(date: NaiveDate) -> Result<Self, DomainError> {
        let persian = to_icu(date)?.to_calendar(Persian);
        Ok(Self {
            year: persian.era_year().extended_year,
            month: persian.month().ordinal,
            day: persian.day_of_month().0,
        })
    }

    pub fn to_gregorian(self) -> NaiveDate {
        let persian = Date::try_new_persian(self.year, self.month, self.day).expect("constructed valid");
        from_icu(persian.to_calendar(Gregorian)).expect("Jalali years 1..=3000 map into chrono's range")
    }

    pub fn year(self) -> i32 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    pub fn is_leap_year(year: i32) -> bool {
        Date::try_new_persian(year, 1, 1).is_ok_and(|d| d.is_in_leap_year())
    }

    fn days_in_month(year: i32, month: u8) -> u8 {
        Date::try_new_persian(year, month, 1).map(|d| d.days_in_month()).unwrap_or(29)
    }

    /// The Persian name of the month (فروردین … اسفند).
    pub fn month_name_fa(self) -> &'static str {
        const NAMES: [&str; 12] =
            ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند"];
        NAMES[usize::from(self.month - 1)]
    }
}

impl fmt::Display for JalaliDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl TryFrom<String> for JalaliDate {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<JalaliDate> for String {
    fn from(d: JalaliDate) -> String {
        d.to_string()
    }
}

/// Age in full years on the Jalali calendar. Someone born on 30 Esfand of a leap year
/// has their birthday on the last day of Esfand (29th) in common years.
pub fn age_in_full_years(birth: JalaliDate, today: JalaliDate) -> i32 {
    let birthday_day = birth.day.min(JalaliDate::days_in_month(today.year, birth.month));
    let had_birthday = (today.month, today.day) >= (birth.month, birthday_day);
    today.year - birth.year - i32::from(!had_birthday)
}

// ---------------------------------------------------------------- Lunar Hijri

const HIJRI_MONTHS_FA: [&str; 12] = [
    "محرم",
    "صفر",
    "ربیع‌الاول",
    "ربیع‌الثانی",
    "جمادی‌الاول",
    "جمادی‌الثانی",
    "رجب",
    "شعبان",
    "رمضان",
    "شوال",
    "ذیقعده",
    "ذیحجه",
];

/// A Lunar Hijri date. Iran's official lunar calendar follows moon sightings, so a
/// computed date can be a day or two off; the citizen chooses among five options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HijriDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl HijriDate {
    fn calendar() -> Hijri<TabularAlgorithm> {
        Hijri::new_tabular(TabularAlgorithmLeapYears::TypeII, TabularAlgorithmEpoch::Friday)
    }

    /// The tabular (civil) Hijri date of a Gregorian date.
    pub fn from_gregorian(date: NaiveDate) -> Result<Self, DomainError> {
        let h = to_icu(date)?.to_calendar(Self::calendar());
        Ok(Self { year: h.era_year().extended_year, month: h.month().ordinal, day: h.day_of_month().0 })
    }

    /// Parses `1410-11-15`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let ascii = crate::text::ascii_digits(input.trim());
        let parts: Vec<u16> = ascii
            .split(['-', '/'])
            // Digits only: `u16::from_str` would also take a sign.
            .map(|p| if p.bytes().all(|b| b.is_ascii_digit()) { p.parse::<u16>().ok() } else { None })
            .map(|n| n.ok_or(DomainError::DateInvalid))
            .collect::<Result<_, _>>()?;
        let [y, m, d] = parts.as_slice() else {
            return Err(DomainError::DateInvalid);
        };
        if !(1..=12).contains(m) || !(1..=30).contains(d) || *y == 0 || *y > 2000 {
            return Err(DomainError::DateInvalid);
        }
        Ok(Self { year: i32::from(*y), month: *m as u8, day: *d as u8 })
    }

    pub fn month_name_fa(&self) -> &'static str {
        HIJRI_MONTHS_FA[usize::from(self.month - 1)]
    }

    /// `15 ذیقعده 1410`, as the original guide's receipt writes it.
    pub fn label_fa(&self) -> String {
        format!("{} {} {}", self.day, self.month_name_fa(), self.year)
    }
}

impl fmt::Display for HijriDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The five Lunar Hijri birth-date options for a solar birth date: the computed day
/// and the two days before and after it (docs/domain/identifiers.md, «تاریخ تولد قمری»).
pub fn lunar_birth_options(birth: JalaliDate) -> Vec<HijriDate> {
    let g = birth.to_gregorian();
    (-2..=2).filter_map(|offset| HijriDate::from_gregorian(g + Duration::days(offset)).ok()).collect()
}

// ---------------------------------------------------------------- working hours

/// Hours between two instants that fall on working days in Tehran: Fridays and the
/// given holidays do not count.
pub fn working_hours_between(from: DateTime<Utc>, to: DateTime<Utc>, holidays: &[NaiveDate]) -> i64 {
    if to <= from {
        return 0;
    }
    let tz = tehran();
    let mut total = Duration::zero();
    let mut cursor = from.with_timezone(&tz);
    let end = to.with_timezone(&tz);
    while cursor < end {
        let day = cursor.date_naive();
        let next_midnight = tz
            .from_local_datetime(&(day + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight"))
            .single()
            .expect("fixed offset");
        let segment_end = next_midnight.min(end);
        if day.weekday() != Weekday::Fri && !holidays.contains(&day) {
            total += segment_end - cursor;
        }
        cursor = segment_end;
    }
    total.num_hours()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn j(s: &str) -> JalaliDate {
        JalaliDate::parse(s).unwrap()
    }

    #[test]
    fn seed_birth_date_converts_both_ways() {
        let g = NaiveDate::from_ymd_opt(1990, 6, 9).unwrap();
        assert_eq!(j("1369-03-19").to_gregorian(), g);
        assert_eq!(JalaliDate::from_gregorian(g).unwrap(), j("1369-03-19"));
        assert_eq!(j("۱۳۶۹/۰۳/۱۹"), j("1369-3-19"));
    }

    #[test]
    fn esfand_30_only_in_leap_years() {
        assert!(JalaliDate::parse("1403-12-30").is_ok());
        assert_eq!(JalaliDate::parse("1404-12-30"), Err(DomainError::DateInvalid));
        assert!(JalaliDate::is_leap_year(1403));
        assert!(!JalaliDate::is_leap_year(1404));
        for bad in ["1369-13-01", "1369-00-10", "1369-07-31", "1369-03-32", "1369-03", "13690319", "abcd-01-01"] {
            assert_eq!(JalaliDate::parse(bad), Err(DomainError::DateInvalid), "{bad}");
        }
    }

    /// Four-digit years, one- or two-digit months and days: a padded or short part is a
    /// typing mistake, not another date (`01369` is not 1369, `369` is not 1369).
    #[test]
    fn each_part_of_a_jalali_date_has_its_length() {
        assert_eq!(j("1369-3-9"), j("1369-03-09"));
        assert_eq!((j("1369-3-9").year(), j("1369-3-9").month(), j("1369-3-9").day()), (1369, 3, 9));
        assert_eq!((j("1404-12-29").month(), j("1404-12-29").day()), (12, 29));
        for bad in ["01369-03-19", "369-03-19", "1369-003-19", "1369-03-019", "1369--19", "1369-03-", "-03-19"] {
            assert_eq!(JalaliDate::parse(bad), Err(DomainError::DateInvalid), "{bad}");
        }
    }

    #[test]
    fn jalali_month_names_and_text_form() {
        assert_eq!(j("1369-01-01").month_name_fa(), "فروردین");
        assert_eq!(j("1369-03-19").month_name_fa(), "خرداد");
        assert_eq!(j("1369-12-01").month_name_fa(), "اسفند");
        assert_eq!(String::from(j("1369-3-9")), "1369-03-09");
    }

    /// A lunar birth date as the citizen picks it: months 1–12, days 1–30, years 1–2000.
    #[test]
    fn hijri_dates_parse_within_their_ranges_and_print_back() {
        let h = HijriDate::parse("۱۴۱۰/۱۱/۱۵").unwrap();
        assert_eq!(h, HijriDate { year: 1410, month: 11, day: 15 });
        assert_eq!(h.to_string(), "1410-11-15");
        assert_eq!(HijriDate::parse("1-1-1").unwrap().to_string(), "0001-01-01");
        assert_eq!(HijriDate::parse("2000-12-30").unwrap(), HijriDate { year: 2000, month: 12, day: 30 });
        for bad in
            ["1410-13-01", "1410-00-15", "1410-11-31", "1410-11-00", "0-11-15", "2001-01-01", "1410-11", "1410-+1-15"]
        {
            assert_eq!(HijriDate::parse(bad), Err(DomainError::DateInvalid), "{bad}");
        }
    }

    #[test]
    fn lunar_options_for_the_seed_citizen_include_15_dhu_al_qada_1410() {
        let options = lunar_birth_options(j("1369-03-19"));
        assert_eq!(options.len(), 5);
        let expected = HijriDate { year: 1410, month: 11, day: 15 };
        assert_eq!(options[2], expected, "the computed day is in the middle");
        assert_eq!(expected.label_fa(), "15 ذیقعده 1410");
        assert_eq!(options[0], HijriDate { year: 1410, month: 11, day: 13 });
        assert_eq!(options[4], HijriDate { year: 1410, month: 11, day: 17 });
    }

    #[test]
    fn age_is_counted_in_full_jalali_years() {
        let birth = j("1390-05-10");
        assert_eq!(age_in_full_years(birth, j("1405-05-09")), 14);
        assert_eq!(age_in_full_years(birth, j("1405-05-10")), 15);
        assert_eq!(age_in_full_years(birth, j("1406-01-01")), 15);
    }

    #[test]
    fn born_on_30_esfand_of_a_leap_year_has_a_birthday_in_common_years() {
        let birth = j("1387-12-30"); // 1387 was a leap year
        assert!(JalaliDate::is_leap_year(1387));
        assert_eq!(age_in_full_years(birth, j("1402-12-28")), 14);
        // 1402 is a common year: the birthday is its last day, 29 Esfand.
        assert_eq!(age_in_full_years(birth, j("1402-12-29")), 15);
        // In a leap year the birthday is 30 Esfand itself.
        assert_eq!(age_in_full_years(birth, j("1403-12-29")), 15);
        assert_eq!(age_in_full_years(birth, j("1403-12-30")), 16);
    }

    #[test]
    fn today_is_tehran_time() {
        // 21:00 UTC is 00:30 the next day in Tehran.
        let now = Utc.with_ymd_and_hms(2026, 3, 19, 21, 0, 0).unwrap();
        assert_eq!(tehran_date(now), NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 20, 29, 0).unwrap();
        assert_eq!(tehran_date(summer), NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(), "no DST: still +03:30 in summer");
        assert_eq!(tehran_instant(NaiveDate::from_ymd_opt(2026, 7, 2).unwrap(), 0, 0), summer + Duration::minutes(1));
    }

    #[test]
    fn working_hours_skip_fridays_and_holidays() {
        // Thursday 2026-11-19 10:00 Tehran → Saturday 2026-11-21 10:00: Friday does not count.
        let thu = tehran_instant(NaiveDate::from_ymd_opt(2026, 11, 19).unwrap(), 10, 0);
        let sat = tehran_instant(NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(), 10, 0);
        assert_eq!(working_hours_between(thu, sat, &[]), 24);
        let holiday = [NaiveDate::from_ymd_opt(2026, 11, 19).unwrap()];
        assert_eq!(working_hours_between(thu, sat, &holiday), 10);
        assert_eq!(working_hours_between(sat, thu, &[]), 0);
    }

    proptest! {
        #[test]
        fn jalali_gregorian_round_trip_every_day_1300_to_1500(day_offset in 0i64..(201 * 366)) {
            let start = j("1300-01-01").to_gregorian();
            let g = start + Duration::days(day_offset);
            let jal = JalaliDate::from_gregorian(g).unwrap();
            prop_assert_eq!(jal.to_gregorian(), g);
            prop_assert_eq!(JalaliDate::parse(&jal.to_string()).unwrap(), jal);
        }
    }

    /// Exhaustive companion of the property: every single day from 1300-01-01 to 1500-12-29.
    #[test]
    fn jalali_round_trip_is_exhaustive_over_1300_to_1500() {
        let mut g = j("1300-01-01").to_gregorian();
        let end = j("1500-12-29").to_gregorian();
        let mut previous = JalaliDate::from_gregorian(g - Duration::days(1)).unwrap();
        while g <= end {
            let jal = JalaliDate::from_gregorian(g).unwrap();
            assert!(jal > previous, "{jal} follows {previous}");
            assert_eq!(jal.to_gregorian(), g);
            previous = jal;
            g += Duration::days(1);
        }
    }
}
