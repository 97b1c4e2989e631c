//! Enrollment offices, shifts, special needs and the ranking of free seats
//! (docs/domain/booking.md «انتخاب زمان و مکان تکمیل ثبت نام»).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use chrono::{Datelike, NaiveDate};

use crate::error::DomainError;
use crate::text::{ascii_digits, digits_only, normalize_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shift {
    Morning,
    Afternoon,
}

impl Shift {
    pub const ALL: [Shift; 2] = [Shift::Morning, Shift::Afternoon];

    pub fn as_str(self) -> &'static str {
        match self {
            Shift::Morning => "morning",
            Shift::Afternoon => "afternoon",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    pub fn label_fa(self) -> &'static str {
        match self {
            Shift::Morning => "صبح",
            Shift::Afternoon => "عصر",
        }
    }
    /// Tehran wall-clock hour at which the shift opens.
    pub fn starts_at_hour(self) -> u32 {
        match self {
            Shift::Morning => 8,
            Shift::Afternoon => 14,
        }
    }
    /// Tehran wall-clock hour at which the shift is over (after which a no-show is certain).
    pub fn ends_at_hour(self) -> u32 {
        match self {
            Shift::Morning => 13,
            Shift::Afternoon => 19,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfficeKind {
    /// اداره ثبت احوال
    CivilRegistry,
    /// دفتر پیشخوان خدمات دولت
    GovernmentCounter,
    /// دفتر پست
    PostOffice,
}

impl OfficeKind {
    pub const ALL: [OfficeKind; 3] = [OfficeKind::CivilRegistry, OfficeKind::GovernmentCounter, OfficeKind::PostOffice];
    pub fn as_str(self) -> &'static str {
        match self {
            OfficeKind::CivilRegistry => "civil_registry",
            OfficeKind::GovernmentCounter => "government_counter",
            OfficeKind::PostOffice => "post_office",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Counter and post offices collect their own enrollment and delivery fees (docs/domain/payments.md).
    pub fn collects_office_fees(self) -> bool {
        !matches!(self, OfficeKind::CivilRegistry)
    }
}

/// What an office can do for citizens with special needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Facilities {
    pub step_free_access: bool,
    pub eye_exception_capture: bool,
    pub fingerprint_exception_capture: bool,
    pub home_visits: bool,
}

/// The four yes/no questions of «شناسایی شهروندان نیازمند به تکمیل ثبت نام خاص».
/// A typical citizen answers yes to all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialNeeds {
    pub can_leave_home: bool,
    pub can_climb_stairs: bool,
    pub pupils_visible: bool,
    pub fingers_intact: bool,
}

impl SpecialNeeds {
    pub const TYPICAL: SpecialNeeds =
        SpecialNeeds { can_leave_home: true, can_climb_stairs: true, pupils_visible: true, fingers_intact: true };

    /// "No" to the first question puts the citizen in the home-visit queue (no office seat).
    pub fn needs_home_visit(&self) -> bool {
        !self.can_leave_home
    }

    /// Whether these needs make the citizen's list of offices differ from everyone's: a
    /// home visit (no office at all), or a facility some offices lack. Needs every office
    /// serves (what most citizens answer) give everyone's list.
    pub fn narrow_the_offices(&self) -> bool {
        self.needs_home_visit() || !(self.can_climb_stairs && self.pupils_visible && self.fingers_intact)
    }

    /// Whether an office's facilities serve these needs.
    pub fn suits(&self, f: &Facilities) -> bool {
        (self.can_climb_stairs || f.step_free_access)
            && (self.pupils_visible || f.eye_exception_capture)
            && (self.fingers_intact || f.fingerprint_exception_capture)
    }
}

/// The first four digits of a landline number: the neighbourhood (exchange) it belongs to.
/// Only used to sort offices; never stored as part of a citizen's data (docs/domain/booking.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourhoodPrefix(String);

impl NeighbourhoodPrefix {
    /// Takes a landline number without the city code (4 to 8 digits, Persian digits fine).
    pub fn from_phone(input: &str) -> Result<Self, DomainError> {
        let digits = digits_only(input).ok_or(DomainError::PhoneInvalid)?;
        if !(4..=8).contains(&digits.len()) {
            return Err(DomainError::PhoneInvalid);
        }
        Ok(Self(digits[..4].to_owned()))
    }

    /// How many leading digits (0–4) two neighbourhoods share: more is nearer.
    pub fn closeness(&self, office_phone: &str) -> u8 {
        self.0.bytes().zip(office_phone.bytes()).take_while(|(a, b)| a == b).count() as u8
    }
}

/// One office's seats in one shift on the searched date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftSeats<Id> {
    pub office_id: Id,
    /// The office's landline without the city code.
    pub office_phone: String,
    pub facilities: Facilities,
    pub shift: Shift,
    pub approved: u32,
    pub free: u32,
}

impl<Id> ShiftSeats<Id> {
    /// Free seats as a whole percentage of the approved capacity (20 approved, 10 free → 50).
    pub fn free_percent(&self) -> u8 {
        if self.approved == 0 { 0 } else { (u64::from(self.free) * 100 / u64::from(self.approved)) as u8 }
    }

    /// Compares free-capacity ratios exactly (no floats): 10/20 ranks above 15/45.
    fn cmp_free_ratio(&self, other: &Self) -> Ordering {
        let a = u64::from(self.free) * u64::from(other.approved.max(1));
        let b = u64::from(other.free) * u64::from(self.approved.max(1));
        a.cmp(&b)
    }
}

/// A row of the availability list, with how near it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked<Id> {
    pub seats: ShiftSeats<Id>,
    pub closeness: u8,
}

/// Filters rows by the citizen's special needs (none given: no filter), drops shifts with
/// no approved capacity, and orders the rest: nearest neighbourhood first, then by free
/// percentage (highest first), then by free seats and office id for a stable order.
/// Rows for both shifts of an office stay separate, as the seed shows them.
pub fn rank<Id: Ord + Clone>(
    rows: Vec<ShiftSeats<Id>>,
    needs: Option<&SpecialNeeds>,
    near: Option<&NeighbourhoodPrefix>,
) -> Vec<Ranked<Id>> {
    let mut ranked: Vec<Ranked<Id>> = rows
        .into_iter()
        .filter(|r| r.approved > 0)
        .filter(|r| needs.is_none_or(|n| n.suits(&r.facilities)))
        .map(|seats| {
            let closeness = near.map_or(0, |p| p.closeness(&seats.office_phone));
            Ranked { seats, closeness }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.closeness
            .cmp(&a.closeness)
            .then_with(|| b.seats.cmp_free_ratio(&a.seats))
            .then_with(|| b.seats.free.cmp(&a.seats.free))
            .then_with(|| a.seats.office_id.cmp(&b.seats.office_id))
            .then_with(|| a.seats.shift.cmp(&b.seats.shift))
    });
    ranked
}

/// A shift's place in [`rank`]'s order without a neighbourhood, as one integer: a higher
/// key ranks first, equal keys tie (the office id and the shift then decide), and `None`
/// (no approved capacity) is not ranked. The free ratio, truncated to nine decimals,
/// times 2³¹, plus the free seats: two ratios `a/b ≠ c/d` with `b, d ≤` 31,622 differ by
/// at least `1/(b·d)` > 10⁻⁹, so their truncations differ, and equal ratios truncate
/// alike; the free seats (< 2³¹) then break the tie as [`rank`] does. Capacities are at
/// most [`MAX_SHIFT_CAPACITY`]. The database keeps the same expression as the stored
/// `slots.rank_key` (docs/decisions/0014-indexed-search.md); the two are kept equal by a
/// black-box test.
pub fn rank_key(approved: u32, free: u32) -> Option<i64> {
    if approved == 0 {
        return None;
    }
    let free = i64::from(free.min(approved));
    Some(free * RANK_KEY_SCALE / i64::from(approved) * RANK_KEY_FREE_SPAN + free)
}

/// The ratio's scale in [`rank_key`].
pub const RANK_KEY_SCALE: i64 = 1_000_000_000;
/// The span left for the free seats in [`rank_key`] (2³¹).
pub const RANK_KEY_FREE_SPAN: i64 = 1 << 31;

// ---------------------------------------------------------------- administration

/// Days of the Iranian week, Saturday first; `index` is what the weekly rules store (0–6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Saturday,
    Sunday,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Saturday,
        Weekday::Sunday,
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];

    pub fn index(self) -> i32 {
        self as i32
    }

    pub fn from_index(i: i32) -> Option<Self> {
        usize::try_from(i).ok().and_then(|i| Self::ALL.get(i).copied())
    }

    pub fn of(date: NaiveDate) -> Self {
        // chrono counts from Monday; the Iranian week starts on Saturday.
        Self::ALL[(date.weekday().num_days_from_monday() as usize + 2) % 7]
    }
}

/// The most seats one shift of one office may offer.
pub const MAX_SHIFT_CAPACITY: u32 = 1_000;

/// The longest name, city, province, address or closure reason accepted.
pub const MAX_TEXT_CHARS: usize = 200;

/// Approved seats of one shift on one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyRule {
    pub weekday: Weekday,
    pub shift: Shift,
    pub capacity: u32,
}

/// An office's weekly capacity: at most one rule per weekday and shift. A shift without a
/// rule (or with 0 seats) is closed — Fridays included, unless a rule opens them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeeklyCapacity(Vec<WeeklyRule>);

impl WeeklyCapacity {
    /// Checks every rule; the errors name the rule's position in the list.
    pub fn parse(rules: &[WeeklyRule]) -> Result<Self, Vec<(usize, DomainError)>> {
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, r) in rules.iter().enumerate() {
            if r.capacity > MAX_SHIFT_CAPACITY {
                errors.push((i, DomainError::CapacityInvalid { max: MAX_SHIFT_CAPACITY }));
            }
            if !seen.insert((r.weekday, r.shift)) {
                errors.push((i, DomainError::CapacityRuleDuplicate));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut rules = rules.to_vec();
        rules.sort_by_key(|r| (r.weekday, r.shift));
        Ok(Self(rules))
    }

    /// The usual week of a bulk-imported office: both shifts Saturday to Wednesday, Thursday
    /// morning only, Friday closed.
    pub fn standard(morning: u32, afternoon: u32) -> Result<Self, Vec<(usize, DomainError)>> {
        let mut rules = Vec::with_capacity(11);
        for weekday in &Weekday::ALL[..5] {
            rules.push(WeeklyRule { weekday: *weekday, shift: Shift::Morning, capacity: morning });
            rules.push(WeeklyRule { weekday: *weekday, shift: Shift::Afternoon, capacity: afternoon });
        }
        rules.push(WeeklyRule { weekday: Weekday::Thursday, shift: Shift::Morning, capacity: morning });
        Self::parse(&rules)
    }

    /// The rules that open a shift (0-seat rules are the same as none).
    pub fn rules(&self) -> impl Iterator<Item = &WeeklyRule> {
        self.0.iter().filter(|r| r.capacity > 0)
    }

    pub fn capacity(&self, weekday: Weekday, shift: Shift) -> u32 {
        self.0.iter().find(|r| r.weekday == weekday && r.shift == shift).map_or(0, |r| r.capacity)
    }
}

/// What one slot offers under the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPlan {
    pub capacity: u32,
    pub closed: bool,
}

/// A slot's seats from its rule (`capacity`: the override or weekly rule, 0 if none) and the
/// calendar (`calendar_closed`: a holiday or a closure), given the seats already `taken`.
/// A closed calendar day keeps its bookings (they are reported, not cancelled), so its
/// capacity never drops below them. Otherwise the capacity — 0 included — may not go below
/// the seats taken: those citizens must be moved, or the day declared closed, first.
pub fn plan_slot(
    date: NaiveDate,
    shift: Shift,
    capacity: u32,
    calendar_closed: bool,
    taken: u32,
) -> Result<SlotPlan, DomainError> {
    if calendar_closed {
        return Ok(SlotPlan { capacity: capacity.max(taken), closed: true });
    }
    if capacity < taken {
        return Err(DomainError::CapacityBelowBookings { date, shift, taken, capacity });
    }
    Ok(SlotPlan { capacity, closed: capacity == 0 })
}

/// An office's descriptive fields as typed by an administrator or read from a CSV file.
#[derive(Debug, Clone, Copy)]
pub struct OfficeInput<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub province: &'a str,
    pub city: &'a str,
    pub city_code: &'a str,
    pub phone: &'a str,
    pub address: &'a str,
}

/// Valid office fields, normalised: ASCII digits, Persian letters, collapsed spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeDetails {
    pub code: String,
    pub name: String,
    pub kind: OfficeKind,
    pub province: String,
    pub city: String,
    pub city_code: String,
    /// The landline without the city code; its first four digits are the neighbourhood.
    pub phone: String,
    pub address: String,
}

impl OfficeDetails {
    /// Parses every field; on failure lists each bad field (by its input name) at once.
    pub fn parse(input: &OfficeInput<'_>) -> Result<Self, Vec<(&'static str, DomainError)>> {
        let mut errors = Vec::new();
        let mut keep = |field: &'static str, r: Result<String, DomainError>| {
            r.map_err(|e| errors.push((field, e))).unwrap_or_default()
        };
        let code = keep("code", office_code(input.code));
        let name = keep("name", text(input.name));
        let province = keep("province", text(input.province));
        let city = keep("city", text(input.city));
        let city_code = keep("city_code", city_code(input.city_code));
        let phone = keep("phone", office_phone(input.phone));
        let address = keep("address", text(input.address));
        let kind = OfficeKind::parse(input.kind.trim());
        if kind.is_none() {
            errors.push(("kind", DomainError::OfficeKindInvalid));
        }
        if !errors.is_empty() {
            // Report in the order the fields are read.
            const ORDER: [&str; 8] = ["code", "name", "kind", "province", "city", "city_code", "phone", "address"];
            errors.sort_by_key(|(f, _)| ORDER.iter().position(|o| o == f));
            return Err(errors);
        }
        let kind = kind.expect("checked");
        Ok(Self { code, name, kind, province, city, city_code, phone, address })
    }
}

/// A short free text (name, city, address, reason): normalised, non-empty, at most
/// [`MAX_TEXT_CHARS`] characters.
pub fn text(input: &str) -> Result<String, DomainError> {
    let t = normalize_name(input);
    if t.is_empty() {
        Err(DomainError::Required)
    } else if t.chars().count() > MAX_TEXT_CHARS {
        Err(DomainError::TooLong { max: MAX_TEXT_CHARS })
    } else {
        Ok(t)
    }
}

/// An office code: 1–32 Latin letters, digits or dashes (Persian digits accepted).
pub fn office_code(input: &str) -> Result<String, DomainError> {
    let code = ascii_digits(input.trim());
    let ok = (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok { Ok(code) } else { Err(DomainError::OfficeCodeInvalid) }
}

/// A city's phone code: 2–4 digits starting with 0, e.g. `041`.
pub fn city_code(input: &str) -> Result<String, DomainError> {
    let d = digits_only(input).ok_or(DomainError::CityCodeInvalid)?;
    let ok = (2..=4).contains(&d.len()) && d.starts_with('0') && d.bytes().any(|b| b != b'0');
    if ok { Ok(d) } else { Err(DomainError::CityCodeInvalid) }
}

/// An office landline without the city code: 4–8 digits.
pub fn office_phone(input: &str) -> Result<String, DomainError> {
    let d = digits_only(input).ok_or(DomainError::PhoneInvalid)?;
    if (4..=8).contains(&d.len()) { Ok(d) } else { Err(DomainError::PhoneInvalid) }
}

/// A yes/no cell of an import file: `true`/`false`, `1`/`0`, `yes`/`no`, `بله`/`خیر`.
pub fn flag(input: &str) -> Result<bool, DomainError> {
    match ascii_digits(input.trim()).to_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "بله" | "بلی" => Ok(true),
        "false" | "0" | "no" | "n" | "خیر" => Ok(false),
        _ => Err(DomainError::FlagInvalid),
    }
}

/// A seat count typed in a cell (Persian digits accepted), 0 to [`MAX_SHIFT_CAPACITY`].
pub fn seats(input: &str) -> Result<u32, DomainError> {
    let d = ascii_digits(input.trim());
    let ok = (1..=6).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit());
    d.parse::<u32>()
        .ok()
        .filter(|_| ok)
        .ok_or(DomainError::CapacityInvalid { max: MAX_SHIFT_CAPACITY })
        .and_then(seat_count)
}

/// A seat count for one shift: 0 to [`MAX_SHIFT_CAPACITY`].
pub fn seat_count(n: u32) -> Result<u32, DomainError> {
    if n <= MAX_SHIFT_CAPACITY { Ok(n) } else { Err(DomainError::CapacityInvalid { max: MAX_SHIFT_CAPACITY }) }
}

/// How far ahead overrides, closures and holidays may be planned, in days.
pub const PLANNING_DAYS: i64 = 366;

/// A date an administrator may plan an override, closure or holiday for: today (Tehran) up
/// to [`PLANNING_DAYS`] ahead. The past cannot be changed.
pub fn planning_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, DomainError> {
    if date >= today && date <= today + chrono::Duration::days(PLANNING_DAYS) {
        Ok(date)
    } else {
        Err(DomainError::DateInvalid)
    }
}

/// The dates a calendar listing covers: `from` defaults to today, `to` to a year after
/// `from`; at most two years at once. An error names the bad parameter.
pub fn listing_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), (&'static str, DomainError)> {
    let from = from.unwrap_or(today);
    let to = to.unwrap_or(from + chrono::Duration::days(PLANNING_DAYS));
    if to < from || to > from + chrono::Duration::days(2 * PLANNING_DAYS) {
        return Err(("to", DomainError::DateInvalid));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_narrow_the_offices_exactly_when_some_office_would_not_do() {
        let bare = Facilities::default();
        for bits in 0..16u8 {
            let n = SpecialNeeds {
                can_leave_home: bits & 1 != 0,
                can_climb_stairs: bits & 2 != 0,
                pupils_visible: bits & 4 != 0,
                fingers_intact: bits & 8 != 0,
            };
            // An office with no special facility is the one any need can fail.
            assert_eq!(n.narrow_the_offices(), n.needs_home_visit() || !n.suits(&bare), "{n:?}");
        }
        assert!(!SpecialNeeds::TYPICAL.narrow_the_offices());
    }

    fn row(id: u32, phone: &str, shift: Shift, approved: u32, free: u32) -> ShiftSeats<u32> {
        ShiftSeats {
            office_id: id,
            office_phone: phone.into(),
            facilities: Facilities::default(),
            shift,
            approved,
            free,
        }
    }

    #[test]
    fn twenty_with_ten_free_ranks_above_forty_five_with_fifteen_free() {
        let rows = vec![row(1, "11222226", Shift::Morning, 45, 15), row(2, "11222227", Shift::Morning, 20, 10)];
        let ranked = rank(rows, None, None);
        assert_eq!(ranked[0].seats.office_id, 2);
        assert_eq!(ranked[0].seats.free_percent(), 50);
        assert_eq!(ranked[1].seats.free_percent(), 33);
    }

    #[test]
    fn nearest_neighbourhood_comes_first() {
        let near = NeighbourhoodPrefix::from_phone("۱۱۲۲۲۲۶۵").unwrap();
        let rows = vec![row(1, "33445566", Shift::Morning, 20, 20), row(2, "11229999", Shift::Afternoon, 20, 1)];
        let ranked = rank(rows, None, Some(&near));
        assert_eq!(ranked[0].seats.office_id, 2, "same exchange beats more free seats");
        assert_eq!(ranked[0].closeness, 4);
        assert_eq!(ranked[1].closeness, 0);
    }

    #[test]
    fn one_row_per_office_per_shift_and_closed_shifts_dropped() {
        let rows = vec![
            row(1, "1", Shift::Morning, 10, 5),
            row(1, "1", Shift::Afternoon, 10, 7),
            row(2, "1", Shift::Morning, 0, 0),
        ];
        let ranked = rank(rows, None, None);
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].seats.shift, Shift::Afternoon);
    }

    #[test]
    fn special_needs_filter_offices() {
        let mut accessible = row(1, "1", Shift::Morning, 10, 5);
        accessible.facilities.step_free_access = true;
        let stairs_only = row(2, "1", Shift::Morning, 10, 9);
        let needs = SpecialNeeds { can_climb_stairs: false, ..SpecialNeeds::TYPICAL };
        let ranked = rank(vec![accessible.clone(), stairs_only.clone()], Some(&needs), None);
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].seats.office_id, 1);

        let eyes = SpecialNeeds { pupils_visible: false, ..SpecialNeeds::TYPICAL };
        assert!(rank(vec![accessible.clone()], Some(&eyes), None).is_empty());
        let fingers = SpecialNeeds { fingers_intact: false, ..SpecialNeeds::TYPICAL };
        let mut fp = stairs_only;
        fp.facilities.fingerprint_exception_capture = true;
        assert_eq!(rank(vec![accessible, fp], Some(&fingers), None).len(), 1);
        assert!(SpecialNeeds { can_leave_home: false, ..SpecialNeeds::TYPICAL }.needs_home_visit());
    }

    #[test]
    fn phone_prefix_needs_at_least_four_digits() {
        assert!(NeighbourhoodPrefix::from_phone("112").is_err());
        assert!(NeighbourhoodPrefix::from_phone("11a22265").is_err());
    }

    #[test]
    fn the_iranian_week_starts_on_saturday() {
        let sat = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(Weekday::of(sat), Weekday::Saturday);
        assert_eq!(Weekday::of(sat.succ_opt().unwrap()).index(), 1);
        assert_eq!(Weekday::of(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()), Weekday::Friday);
        assert_eq!(Weekday::from_index(6), Some(Weekday::Friday));
        assert_eq!(Weekday::from_index(7), None);
    }

    #[test]
    fn weekly_capacity_refuses_duplicates_and_huge_numbers() {
        let r = |weekday, shift, capacity| WeeklyRule { weekday, shift, capacity };
        let errors = WeeklyCapacity::parse(&[
            r(Weekday::Sunday, Shift::Morning, 10),
            r(Weekday::Sunday, Shift::Morning, 12),
            r(Weekday::Monday, Shift::Afternoon, MAX_SHIFT_CAPACITY + 1),
        ])
        .unwrap_err();
        assert_eq!(errors[0], (1, DomainError::CapacityRuleDuplicate));
        assert_eq!(errors[1].0, 2);
        let week = WeeklyCapacity::standard(20, 15).unwrap();
        assert_eq!(week.rules().count(), 11);
        assert_eq!(week.capacity(Weekday::Thursday, Shift::Morning), 20);
        assert_eq!(week.capacity(Weekday::Thursday, Shift::Afternoon), 0);
        assert_eq!(week.capacity(Weekday::Friday, Shift::Morning), 0, "Friday closed");
        assert_eq!(WeeklyCapacity::standard(0, 0).unwrap().rules().count(), 0);
    }

    #[test]
    fn a_capacity_never_strands_booked_citizens() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(plan_slot(d, Shift::Morning, 5, false, 3), Ok(SlotPlan { capacity: 5, closed: false }));
        assert_eq!(
            plan_slot(d, Shift::Morning, 2, false, 3),
            Err(DomainError::CapacityBelowBookings { date: d, shift: Shift::Morning, taken: 3, capacity: 2 })
        );
        assert!(plan_slot(d, Shift::Morning, 0, false, 1).is_err(), "closing by capacity 0 too");
        assert_eq!(plan_slot(d, Shift::Morning, 0, false, 0), Ok(SlotPlan { capacity: 0, closed: true }));
        assert_eq!(
            plan_slot(d, Shift::Afternoon, 0, true, 4),
            Ok(SlotPlan { capacity: 4, closed: true }),
            "a closure keeps its bookings"
        );
    }

    #[test]
    fn office_fields_are_normalised_and_every_bad_one_is_listed() {
        let ok = OfficeInput {
            code: "041-MRG-۰۳",
            name: "دفتر  پيشخوان",
            kind: "government_counter",
            province: "آذربایجان شرقی",
            city: "مراغه",
            city_code: "۰۴۱",
            phone: "3725-1234",
            address: "مراغه - خیابان اول",
        };
        let d = OfficeDetails::parse(&ok).unwrap();
        assert_eq!((d.code.as_str(), d.city_code.as_str(), d.phone.as_str()), ("041-MRG-03", "041", "37251234"));
        assert_eq!(d.name, "دفتر پیشخوان");
        let long = "ا".repeat(MAX_TEXT_CHARS + 1);
        let bad = OfficeInput { kind: "bank", city_code: "41", phone: "123", name: " ", address: &long, ..ok };
        let fields: Vec<&str> = OfficeDetails::parse(&bad).unwrap_err().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["name", "kind", "city_code", "phone", "address"]);
        assert!(city_code("00").is_err() && city_code("02155").is_err() && city_code("021").is_ok());
        assert_eq!((flag("بله"), flag("0"), flag("TRUE")), (Ok(true), Ok(false), Ok(true)));
        assert!(flag("maybe").is_err());
        assert_eq!(seats("۲۰"), Ok(20));
        assert!(seats("-1").is_err() && seats("").is_err() && seats("1001").is_err());
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert!(planning_date(today, today).is_ok());
        assert!(planning_date(today.pred_opt().unwrap(), today).is_err(), "the past");
        assert!(planning_date(today + chrono::Duration::days(PLANNING_DAYS + 1), today).is_err());
        assert_eq!(listing_range(None, None, today).unwrap().1, today + chrono::Duration::days(PLANNING_DAYS));
        assert!(listing_range(Some(today), today.pred_opt(), today).is_err());
    }

    /// The two shifts by name, in Persian, and their hours (a no-show is marked once its
    /// shift is over).
    #[test]
    fn shifts_by_name_label_and_hours() {
        assert_eq!(Shift::ALL.map(Shift::as_str), ["morning", "afternoon"]);
        assert_eq!(Shift::ALL.map(|s| Shift::parse(s.as_str())), [Some(Shift::Morning), Some(Shift::Afternoon)]);
        assert_eq!(Shift::parse("evening"), None);
        assert_eq!(Shift::ALL.map(Shift::label_fa), ["صبح", "عصر"]);
        assert_eq!(Shift::ALL.map(|s| (s.starts_at_hour(), s.ends_at_hour())), [(8, 13), (14, 19)]);
    }

    /// Free-capacity ratios compared exactly, both ways round, ties included.
    #[test]
    fn free_ratios_compare_exactly_both_ways() {
        let half = row(1, "11222226", Shift::Morning, 20, 10);
        let third = row(2, "11222227", Shift::Morning, 45, 15);
        assert_eq!(half.cmp_free_ratio(&third), Ordering::Greater);
        assert_eq!(third.cmp_free_ratio(&half), Ordering::Less);
        let also_half = row(3, "11222228", Shift::Morning, 6, 3);
        assert_eq!(half.cmp_free_ratio(&also_half), Ordering::Equal);
        assert_eq!(also_half.cmp_free_ratio(&half), Ordering::Equal);
    }

    /// The stored rank key orders shifts exactly as `rank` does without a neighbourhood:
    /// every pair of (approved, free) with approved up to 48, and pairs around the largest
    /// capacities, compare the same way both ways round, ties included.
    #[test]
    fn rank_key_orders_exactly_like_rank() {
        let by_rank = |a: &ShiftSeats<u32>, b: &ShiftSeats<u32>| {
            let ranked = rank(vec![a.clone(), b.clone()], None, None);
            // Which of the two comes first, or a tie before the office id decides.
            if b.cmp_free_ratio(a) == Ordering::Equal && a.free == b.free {
                Ordering::Equal
            } else if ranked[0].seats.office_id == a.office_id {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        };
        let mut cases = Vec::new();
        for approved in 1..=48 {
            for free in 0..=approved {
                cases.push((approved, free));
            }
        }
        for approved in MAX_SHIFT_CAPACITY - 3..=MAX_SHIFT_CAPACITY {
            for free in [0, 1, 2, approved / 3, approved / 2, approved - 2, approved - 1, approved] {
                cases.push((approved, free));
            }
        }
        for (i, &(a_approved, a_free)) in cases.iter().enumerate() {
            let a = row(1, "1", Shift::Morning, a_approved, a_free);
            let ka = rank_key(a_approved, a_free).unwrap();
            for &(b_approved, b_free) in &cases[i..] {
                let b = row(2, "1", Shift::Morning, b_approved, b_free);
                let kb = rank_key(b_approved, b_free).unwrap();
                assert_eq!(ka.cmp(&kb), by_rank(&a, &b), "{a_free}/{a_approved} vs {b_free}/{b_approved}");
            }
        }
        assert_eq!(rank_key(0, 0), None, "no approved capacity: not ranked");
        assert_eq!(rank(vec![row(1, "1", Shift::Morning, 0, 0)], None, None).len(), 0);
        let max = rank_key(MAX_SHIFT_CAPACITY, MAX_SHIFT_CAPACITY).unwrap();
        assert!(max < i64::MAX / 2 && rank_key(MAX_SHIFT_CAPACITY, 0) == Some(0));
    }

    /// Counter and post offices collect their own fees; a civil-registry office does not.
    #[test]
    fn only_counter_and_post_offices_collect_office_fees() {
        assert_eq!(OfficeKind::ALL.map(OfficeKind::collects_office_fees), [false, true, true]);
    }

    /// Weekly rules store a weekday as its place in the Iranian week, Saturday = 0.
    #[test]
    fn weekday_indexes_run_from_saturday() {
        assert_eq!(Weekday::ALL.map(Weekday::index), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(Weekday::ALL.map(|w| Weekday::from_index(w.index())), Weekday::ALL.map(Some));
    }

    /// A shift may offer exactly the maximum, not one seat more.
    #[test]
    fn a_shift_may_offer_exactly_the_maximum() {
        let rule = |capacity| [WeeklyRule { weekday: Weekday::Saturday, shift: Shift::Morning, capacity }];
        assert!(WeeklyCapacity::parse(&rule(MAX_SHIFT_CAPACITY)).is_ok());
        assert_eq!(
            WeeklyCapacity::parse(&rule(MAX_SHIFT_CAPACITY + 1)),
            Err(vec![(0, DomainError::CapacityInvalid { max: MAX_SHIFT_CAPACITY })])
        );
    }

    /// Free texts: required, at most 200 characters, both ends checked.
    #[test]
    fn free_texts_are_required_and_bounded() {
        assert_eq!(text("  "), Err(DomainError::Required));
        assert_eq!(text(&"ب".repeat(MAX_TEXT_CHARS)).map(|t| t.chars().count()), Ok(MAX_TEXT_CHARS));
        assert_eq!(text(&"ب".repeat(MAX_TEXT_CHARS + 1)), Err(DomainError::TooLong { max: MAX_TEXT_CHARS }));
    }

    /// Office codes: 1–32 Latin letters, digits or dashes, nothing else.
    #[test]
    fn office_codes_are_short_latin_words() {
        assert_eq!(office_code(" MRG-۰۱ "), Ok("MRG-01".to_owned()));
        assert_eq!(office_code(&"a".repeat(32)).map(|c| c.len()), Ok(32));
        for bad in ["", "ab c", "مراغه", "a_b", &"a".repeat(33)] {
            assert_eq!(office_code(bad), Err(DomainError::OfficeCodeInvalid), "{bad:?}");
        }
    }

    /// A seat count cell: one to six digits only; no sign, no padding past six digits.
    #[test]
    fn seat_cells_are_plain_digits() {
        assert_eq!(seats("۱۲"), Ok(12));
        assert_eq!(seats("0"), Ok(0));
        for bad in ["+5", "-5", "0000001", "1e3", "", "5 5"] {
            assert!(seats(bad).is_err(), "{bad:?}");
        }
        assert_eq!(seats("1001"), Err(DomainError::CapacityInvalid { max: MAX_SHIFT_CAPACITY }));
    }

    /// A listing covers from today to a year on by default; one day or up to two years of
    /// 366 days may be asked for, never a range that ends before it starts.
    #[test]
    fn listing_ranges_default_to_a_year_and_allow_two() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let days = |n| today + chrono::Duration::days(n);
        assert_eq!(listing_range(None, None, today), Ok((today, days(PLANNING_DAYS))));
        assert_eq!(listing_range(Some(days(3)), Some(days(3)), today), Ok((days(3), days(3))));
        assert_eq!(listing_range(None, Some(days(700)), today), Ok((today, days(700))));
        assert_eq!(listing_range(None, Some(days(2 * PLANNING_DAYS)), today), Ok((today, days(2 * PLANNING_DAYS))));
        for to in [days(2 * PLANNING_DAYS + 1), days(-1)] {
            assert_eq!(listing_range(None, Some(to), today), Err(("to", DomainError::DateInvalid)));
        }
    }
}
