//! Demo offices in seven cities, their weekly capacity, national holidays and 90 days of
//! slots. Office ids are their codes, so a second run finds them and adds nothing.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::calendar::tehran_date;
use domain::offices::Shift;
use persistence::offices::OfficeRow;
use persistence::{DbConn, DbError, write_tx};

/// The Maragheh civil-registry office of the original guide's example (phone `11222226`).
pub const MARAGHEH_OFFICE_ID: &str = "041-MRG-01";
pub const MARAGHEH_OFFICE_CODE: &str = MARAGHEH_OFFICE_ID;

/// How many days ahead slots are created (from tomorrow, Tehran time).
pub const SLOT_DAYS: i64 = 90;

/// One demo office. `morning`/`afternoon` are the Saturday–Wednesday seats per shift;
/// Thursday opens in the morning only, Friday is closed.
#[derive(Debug, Clone, Copy)]
pub struct DemoOffice {
    pub code: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub province: &'static str,
    pub city: &'static str,
    pub city_code: &'static str,
    /// Landline without the city code; its first four digits are the neighbourhood.
    pub phone: &'static str,
    pub address: &'static str,
    pub step_free: bool,
    pub eye_exception: bool,
    pub fingerprint_exception: bool,
    pub home_visits: bool,
    pub morning: i32,
    pub afternoon: i32,
}

const CIVIL: &str = "civil_registry";
const COUNTER: &str = "government_counter";
const POST: &str = "post_office";

#[expect(clippy::too_many_arguments, reason = "a table row, read in columns")]
const fn office(
    code: &'static str,
    name: &'static str,
    kind: &'static str,
    (province, city, city_code): (&'static str, &'static str, &'static str),
    phone: &'static str,
    address: &'static str,
    [step_free, eye_exception, fingerprint_exception, home_visits]: [bool; 4],
    (morning, afternoon): (i32, i32),
) -> DemoOffice {
    DemoOffice {
        code,
        name,
        kind,
        province,
        city,
        city_code,
        phone,
        address,
        step_free,
        eye_exception,
        fingerprint_exception,
        home_visits,
        morning,
        afternoon,
    }
}

const TEHRAN: (&str, &str, &str) = ("تهران", "تهران", "021");
const TABRIZ: (&str, &str, &str) = ("آذربایجان شرقی", "تبریز", "041");
const MARAGHEH: (&str, &str, &str) = ("آذربایجان شرقی", "مراغه", "041");
const MASHHAD: (&str, &str, &str) = ("خراسان رضوی", "مشهد", "051");
const ISFAHAN: (&str, &str, &str) = ("اصفهان", "اصفهان", "031");
const SHIRAZ: (&str, &str, &str) = ("فارس", "شیراز", "071");
const BORUJERD: (&str, &str, &str) = ("لرستان", "بروجرد", "066");

/// Facility flags: [step-free access, eye-exception capture, fingerprint-exception capture, home visits].
const ALL: [bool; 4] = [true, true, true, true];

pub const OFFICES: [DemoOffice; 19] = [
    office(
        "021-TEH-01",
        "اداره ثبت احوال شمیرانات",
        CIVIL,
        TEHRAN,
        "22712345",
        "تهران - تجریش - خیابان شهید دربندی - اداره ثبت احوال شمیرانات",
        ALL,
        (45, 35),
    ),
    office(
        "021-TEH-02",
        "دفتر پیشخوان دولت ونک",
        COUNTER,
        TEHRAN,
        "88781234",
        "تهران - میدان ونک - خیابان ملاصدرا - پلاک ۲۴",
        [true, false, false, false],
        (30, 25),
    ),
    office(
        "021-TEH-03",
        "اداره پست انقلاب",
        POST,
        TEHRAN,
        "66401234",
        "تهران - خیابان انقلاب - نبش خیابان فلسطین",
        [false, false, false, false],
        (25, 20),
    ),
    office(
        "021-TEH-04",
        "دفتر پیشخوان دولت تهرانپارس",
        COUNTER,
        TEHRAN,
        "77881234",
        "تهران - تهرانپارس - خیابان رشید - نبش خیابان ۱۹۶",
        [false, false, true, false],
        (35, 30),
    ),
    office(
        "021-TEH-05",
        "اداره ثبت احوال منطقه غرب تهران",
        CIVIL,
        TEHRAN,
        "44012345",
        "تهران - صادقیه - بلوار آیت الله کاشانی - اداره ثبت احوال غرب تهران",
        [true, true, false, false],
        (40, 35),
    ),
    office(
        "021-TEH-06",
        "اداره پست بازار",
        POST,
        TEHRAN,
        "55601234",
        "تهران - خیابان پانزده خرداد - روبروی بازار بزرگ",
        [false, false, false, false],
        (20, 20),
    ),
    office(
        "041-TBZ-01",
        "اداره ثبت احوال تبریز",
        CIVIL,
        TABRIZ,
        "35261234",
        "تبریز - خیابان امام خمینی - اداره کل ثبت احوال آذربایجان شرقی",
        [true, true, true, false],
        (45, 40),
    ),
    office(
        "041-TBZ-02",
        "دفتر پیشخوان دولت ولیعصر تبریز",
        COUNTER,
        TABRIZ,
        "33331234",
        "تبریز - ولیعصر - خیابان توانیر - پلاک ۸",
        [false, false, false, false],
        (30, 25),
    ),
    office(
        "041-TBZ-03",
        "اداره پست مرکزی تبریز",
        POST,
        TABRIZ,
        "35551234",
        "تبریز - خیابان ارتش - اداره پست مرکزی",
        [true, false, false, false],
        (25, 20),
    ),
    office(
        MARAGHEH_OFFICE_CODE,
        "اداره ثبت احوال مراغه",
        CIVIL,
        MARAGHEH,
        "11222226",
        "مراغه - خ پاسداران - اداره ثبت احوال مراغه",
        [true, false, false, false],
        (20, 20),
    ),
    office(
        "041-MRG-02",
        "دفتر پیشخوان دولت مراغه",
        COUNTER,
        MARAGHEH,
        "37251234",
        "مراغه - خیابان خواجه نصیر - پلاک ۱۲",
        [false, false, false, false],
        (25, 20),
    ),
    office(
        "051-MHD-01",
        "اداره ثبت احوال ناحیه یک مشهد",
        CIVIL,
        MASHHAD,
        "38431234",
        "مشهد - خیابان امام رضا - اداره ثبت احوال ناحیه یک",
        [true, true, true, true],
        (45, 40),
    ),
    office(
        "051-MHD-02",
        "اداره پست احمدآباد",
        POST,
        MASHHAD,
        "38451234",
        "مشهد - خیابان احمدآباد - نبش خیابان عارف",
        [true, false, false, false],
        (25, 20),
    ),
    office(
        "051-MHD-03",
        "دفتر پیشخوان دولت وکیل آباد",
        COUNTER,
        MASHHAD,
        "38801234",
        "مشهد - بلوار وکیل آباد - پلاک ۳۱۰",
        [false, true, false, false],
        (30, 30),
    ),
    office(
        "031-ISF-01",
        "اداره ثبت احوال اصفهان",
        CIVIL,
        ISFAHAN,
        "32221234",
        "اصفهان - خیابان چهارباغ عباسی - اداره ثبت احوال",
        [true, true, true, false],
        (40, 35),
    ),
    office(
        "031-ISF-02",
        "دفتر پیشخوان دولت جلفا",
        COUNTER,
        ISFAHAN,
        "36241234",
        "اصفهان - جلفا - خیابان نظر شرقی",
        [false, false, false, false],
        (25, 20),
    ),
    office(
        "071-SHZ-01",
        "اداره ثبت احوال شیراز",
        CIVIL,
        SHIRAZ,
        "32301234",
        "شیراز - خیابان زند - اداره ثبت احوال فارس",
        [true, false, true, false],
        (40, 35),
    ),
    office(
        "071-SHZ-02",
        "اداره پست معالی آباد",
        POST,
        SHIRAZ,
        "36351234",
        "شیراز - بلوار معالی آباد - اداره پست",
        [true, false, false, false],
        (20, 20),
    ),
    office(
        "066-BRJ-01",
        "دفتر خدمات اینترنتی پویا",
        COUNTER,
        BORUJERD,
        "42621234",
        "بروجرد - خیابان چمران - دفتر خدمات اینترنتی پویا",
        [false, false, false, false],
        (20, 20),
    ),
];

/// National holidays from Azar 1405 to Farvardin 1406 (Gregorian date, Persian name). The
/// lunar ones are computed dates; the official calendar may differ by a day.
pub const HOLIDAYS: [(i32, u32, u32, &str); 13] = [
    (2026, 12, 23, "ولادت حضرت امام علی (ع) و روز پدر"),
    (2027, 1, 6, "مبعث حضرت رسول اکرم (ص)"),
    (2027, 1, 24, "ولادت حضرت قائم (عج)"),
    (2027, 2, 11, "پیروزی انقلاب اسلامی"),
    (2027, 2, 28, "شهادت حضرت علی (ع)"),
    (2027, 3, 10, "عید سعید فطر"),
    (2027, 3, 11, "تعطیل به مناسبت عید سعید فطر"),
    (2027, 3, 20, "روز ملی شدن صنعت نفت"),
    (2027, 3, 21, "جشن نوروز"),
    (2027, 3, 22, "عید نوروز"),
    (2027, 3, 23, "عید نوروز"),
    (2027, 3, 24, "عید نوروز"),
    (2027, 4, 1, "روز جمهوری اسلامی"),
];

/// The weekly rules of an office: Saturday (0) to Wednesday (4) both shifts, a little less
/// on Wednesday afternoon; Thursday (5) morning only; nothing on Friday (6).
pub fn weekly_rules(morning: i32, afternoon: i32) -> Vec<(i32, Shift, i32)> {
    let mut rules = Vec::with_capacity(11);
    for weekday in 0..=4 {
        rules.push((weekday, Shift::Morning, morning));
        let afternoon = if weekday == 4 { (afternoon * 4 / 5).max(1) } else { afternoon };
        rules.push((weekday, Shift::Afternoon, afternoon));
    }
    rules.push((5, Shift::Morning, (morning * 2 / 3).max(1)));
    rules
}

fn row(o: &DemoOffice, now: DateTime<Utc>) -> OfficeRow {
    let now = now.naive_utc();
    OfficeRow {
        id: o.code.into(),
        code: o.code.to_owned(),
        name: o.name.to_owned(),
        kind: o.kind.to_owned(),
        province: o.province.to_owned(),
        city: o.city.to_owned(),
        city_code: o.city_code.to_owned(),
        phone: o.phone.to_owned(),
        address: o.address.to_owned(),
        step_free_access: o.step_free,
        eye_exception_capture: o.eye_exception,
        fingerprint_exception_capture: o.fingerprint_exception,
        home_visits: o.home_visits,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// What [`seed`] added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Added {
    pub offices: usize,
    pub holidays: usize,
    pub slots: usize,
}

/// [`HOLIDAYS`] as dates.
pub fn holiday_dates() -> Vec<(NaiveDate, &'static str)> {
    HOLIDAYS
        .iter()
        .filter_map(|(y, m, d, name)| NaiveDate::from_ymd_opt(*y, *m, *d).map(|date| (date, *name)))
        .collect()
}

/// Adds the [`HOLIDAYS`] from `today` on that are not there yet; returns how many.
pub fn add_holidays(conn: &mut DbConn, today: NaiveDate) -> Result<usize, DbError> {
    let mut added = 0;
    for (date, name) in holiday_dates().into_iter().filter(|(d, _)| *d >= today) {
        if persistence::offices::holidays_between(conn, date, date)?.is_empty() {
            persistence::offices::add_holiday(conn, date, name)?;
            added += 1;
        }
    }
    Ok(added)
}

/// Adds the missing demo offices (with their weekly rules), the upcoming holidays that are
/// not there yet, and the missing slots of the demo offices from tomorrow to 90 days ahead.
/// Offices already present (by code) are left exactly as they are.
pub fn seed(conn: &mut DbConn, now: DateTime<Utc>) -> Result<Added, DbError> {
    let today = tehran_date(now);
    let mut added = Added::default();
    write_tx(conn, |conn| {
        let codes: Vec<&str> = OFFICES.iter().map(|o| o.code).collect();
        let existing: Vec<String> = {
            use diesel::prelude::*;
            use persistence::schema::offices;
            offices::table.filter(offices::code.eq_any(&codes)).select(offices::code).load(conn)?
        };
        let missing: Vec<&DemoOffice> = OFFICES.iter().filter(|o| !existing.iter().any(|c| c == o.code)).collect();
        let rows: Vec<OfficeRow> = missing.iter().map(|o| row(o, now)).collect();
        persistence::offices::insert(conn, &rows)?;
        for o in &missing {
            persistence::offices::set_weekly_capacity(conn, &o.code.into(), &weekly_rules(o.morning, o.afternoon))?;
        }
        added.offices = missing.len();
        added.holidays = add_holidays(conn, today)?;
        Ok::<_, DbError>(())
    })?;
    let (from, to) = (today + Duration::days(1), today + Duration::days(SLOT_DAYS));
    for o in &OFFICES {
        added.slots += persistence::offices::materialize(conn, Some(&o.code.into()), from, to)?;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_office_table_is_consistent() {
        let codes: HashSet<&str> = OFFICES.iter().map(|o| o.code).collect();
        assert_eq!(codes.len(), OFFICES.len(), "codes are unique");
        let cities: HashSet<&str> = OFFICES.iter().map(|o| o.city).collect();
        assert!(cities.len() >= 6);
        for o in &OFFICES {
            assert!(o.code.starts_with(o.city_code), "{}", o.code);
            assert_eq!(o.phone.len(), 8);
            assert!(o.phone.bytes().all(|b| b.is_ascii_digit()));
            assert!(domain::offices::NeighbourhoodPrefix::from_phone(o.phone).is_ok());
            assert!([CIVIL, COUNTER, POST].contains(&o.kind));
            assert!((20..=45).contains(&o.morning) && (20..=45).contains(&o.afternoon));
            for text in [o.name, o.province, o.city, o.address] {
                assert!(!text.contains(['\u{064A}', '\u{0643}']), "{text} has an Arabic yeh or kaf");
            }
        }
        let tehran_prefixes: HashSet<&str> =
            OFFICES.iter().filter(|o| o.city_code == "021").map(|o| &o.phone[..4]).collect();
        assert!(tehran_prefixes.len() >= 5, "Tehran offices are in different neighbourhoods");
        assert!(OFFICES.iter().any(|o| o.home_visits));
        let maragheh = OFFICES.iter().find(|o| o.code == MARAGHEH_OFFICE_CODE).unwrap();
        assert_eq!((maragheh.name, maragheh.phone, maragheh.city_code), ("اداره ثبت احوال مراغه", "11222226", "041"));
        assert!(maragheh.step_free);
        for (_, name) in holiday_dates() {
            assert!(!name.contains(['\u{064A}', '\u{0643}']), "{name}");
        }
        assert_eq!(holiday_dates().len(), HOLIDAYS.len());
    }

    #[test]
    fn friday_is_closed_and_thursday_afternoon_too() {
        for o in &OFFICES {
            let rules = weekly_rules(o.morning, o.afternoon);
            assert!(!rules.iter().any(|r| r.0 == 6));
            assert!(!rules.iter().any(|r| r.0 == 5 && r.1 == Shift::Afternoon));
            assert_eq!(rules.len(), 11);
            assert!(rules.iter().all(|r| r.2 > 0));
        }
    }
}
