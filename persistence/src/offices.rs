//! Offices, their capacity rules, closures and holidays, and the slot counters that
//! make overselling impossible: a seat is taken by a conditional `UPDATE … SET taken =
//! taken + 1 WHERE taken < capacity`, and a `CHECK (taken BETWEEN 0 AND capacity)`
//! backs it in the schema.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use domain::DomainError;
use domain::offices::{Facilities, Shift, SlotPlan, Weekday, plan_slot};
use domain::record_ids::OfficeId;

use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::prepared::KeepPrepared;
use crate::schema::{
    applications, capacity_overrides, holidays, office_capacity, office_closures, offices, slot_counts, slots,
};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = offices)]
pub struct OfficeRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: OfficeId,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub province: String,
    pub city: String,
    pub city_code: String,
    pub phone: String,
    pub address: String,
    pub step_free_access: bool,
    pub eye_exception_capture: bool,
    pub fingerprint_exception_capture: bool,
    pub home_visits: bool,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl OfficeRow {
    pub fn facilities(&self) -> Facilities {
        Facilities {
            step_free_access: self.step_free_access,
            eye_exception_capture: self.eye_exception_capture,
            fingerprint_exception_capture: self.fingerprint_exception_capture,
            home_visits: self.home_visits,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = slots)]
pub struct SlotRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub office_id: OfficeId,
    pub date: NaiveDate,
    pub shift: String,
    pub capacity: i32,
    pub taken: i32,
    pub closed: bool,
    /// The office's `city_code`, kept with each slot so that a search reads one city's
    /// slots of a date as one range of `slots_by_city` (issue 11).
    pub city_code: String,
}

/// Weekday index used in `office_capacity`: Saturday = 0 … Friday = 6 (the Iranian week).
pub fn weekday_index(date: NaiveDate) -> i32 {
    Weekday::of(date).index()
}

pub fn find(conn: &mut DbConn, id: &OfficeId) -> Result<Option<OfficeRow>, DbError> {
    offices::table.find(id.as_str()).select(OfficeRow::as_select()).first(conn).optional().map_err(DbError::from)
}

pub fn find_many(conn: &mut DbConn, ids: &[OfficeId]) -> Result<Vec<OfficeRow>, DbError> {
    // A few ids (a status lookup's offices) as `id = $1 OR id = $2 …`: PostgreSQL keeps
    // one plan for it, while `id = ANY($1)` is planned again on every run (see
    // `crate::prepared::LimitOne`).
    if ids.len() <= crate::prepared::FEW {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = offices::table.select(OfficeRow::as_select()).into_boxed();
        for id in ids {
            query = query.or_filter(offices::id.eq(id.as_str()));
        }
        return query.load(conn).map_err(DbError::from);
    }
    offices::table
        .filter(offices::id.eq_any(ids.iter().map(OfficeId::as_str).collect::<Vec<_>>()))
        .select(OfficeRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

pub fn find_by_code(conn: &mut DbConn, code: &str) -> Result<Option<OfficeRow>, DbError> {
    offices::table
        .filter(offices::code.eq(code))
        .select(OfficeRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
    offices::table.count().get_result(conn).map_err(DbError::from)
}

/// Filters for listing offices.
#[derive(Debug, Clone, Default)]
pub struct OfficeFilter {
    pub city_code: Option<String>,
    pub active: Option<bool>,
    /// Offices with a code after this one (the cursor).
    pub after_code: Option<String>,
}

pub fn list(conn: &mut DbConn, f: &OfficeFilter, limit: i64) -> Result<Vec<OfficeRow>, DbError> {
    let mut q = offices::table.select(OfficeRow::as_select()).into_boxed();
    if let Some(c) = &f.city_code {
        q = q.filter(offices::city_code.eq(c.clone()));
    }
    if let Some(a) = f.active {
        q = q.filter(offices::active.eq(a));
    }
    if let Some(c) = &f.after_code {
        q = q.filter(offices::code.gt(c.clone()));
    }
    q.order(offices::code.asc()).limit(limit).load(conn).map_err(DbError::from)
}

pub fn insert(conn: &mut DbConn, rows: &[OfficeRow]) -> Result<(), DbError> {
    for chunk in rows.chunks(200) {
        match conn {
            DbConn::Pg(c) => diesel::insert_into(offices::table).values(chunk.to_vec()).execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(offices::table).values(chunk.to_vec()).execute(c)?,
        };
    }
    Ok(())
}

pub fn update(conn: &mut DbConn, row: &OfficeRow) -> Result<(), DbError> {
    diesel::update(offices::table.find(row.id.as_str())).set(row.clone()).execute(conn)?;
    // The slots carry the office's city (see `SlotRow::city_code`).
    diesel::update(
        slots::table.filter(slots::office_id.eq(row.id.as_str())).filter(slots::city_code.ne(&row.city_code)),
    )
    .set(slots::city_code.eq(&row.city_code))
    .execute(conn)?;
    Ok(())
}

/// The weekly capacity rules of an office: (weekday, shift, capacity).
pub fn weekly_capacity(conn: &mut DbConn, office_id: &OfficeId) -> Result<Vec<(i32, String, i32)>, DbError> {
    office_capacity::table
        .filter(office_capacity::office_id.eq(office_id.as_str()))
        .order((office_capacity::weekday, office_capacity::shift))
        .select((office_capacity::weekday, office_capacity::shift, office_capacity::capacity))
        .load(conn)
        .map_err(DbError::from)
}

/// Replaces an office's weekly rules.
pub fn set_weekly_capacity(
    conn: &mut DbConn,
    office_id: &OfficeId,
    rules: &[(i32, Shift, i32)],
) -> Result<(), DbError> {
    diesel::delete(office_capacity::table.filter(office_capacity::office_id.eq(office_id.as_str()))).execute(conn)?;
    let rows: Vec<_> = rules
        .iter()
        .map(|(w, s, c)| {
            (
                office_capacity::office_id.eq(office_id.as_str()),
                office_capacity::weekday.eq(*w),
                office_capacity::shift.eq(s.as_str()),
                office_capacity::capacity.eq(*c),
            )
        })
        .collect();
    match conn {
        DbConn::Pg(c) => diesel::insert_into(office_capacity::table).values(&rows).execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(office_capacity::table).values(&rows).execute(c)?,
    };
    Ok(())
}

pub fn set_override(
    conn: &mut DbConn,
    office_id: &OfficeId,
    date: NaiveDate,
    shift: Shift,
    capacity: i32,
) -> Result<(), DbError> {
    diesel::delete(
        capacity_overrides::table
            .filter(capacity_overrides::office_id.eq(office_id.as_str()))
            .filter(capacity_overrides::date.eq(date))
            .filter(capacity_overrides::shift.eq(shift.as_str())),
    )
    .execute(conn)?;
    diesel::insert_into(capacity_overrides::table)
        .values((
            capacity_overrides::office_id.eq(office_id.as_str()),
            capacity_overrides::date.eq(date),
            capacity_overrides::shift.eq(shift.as_str()),
            capacity_overrides::capacity.eq(capacity),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn add_closure(
    conn: &mut DbConn,
    office_id: &OfficeId,
    date: NaiveDate,
    shift: Shift,
    reason: &str,
) -> Result<(), DbError> {
    remove_closure(conn, office_id, date, shift)?;
    diesel::insert_into(office_closures::table)
        .values((
            office_closures::office_id.eq(office_id.as_str()),
            office_closures::date.eq(date),
            office_closures::shift.eq(shift.as_str()),
            office_closures::reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn remove_closure(
    conn: &mut DbConn,
    office_id: &OfficeId,
    date: NaiveDate,
    shift: Shift,
) -> Result<usize, DbError> {
    diesel::delete(
        office_closures::table
            .filter(office_closures::office_id.eq(office_id.as_str()))
            .filter(office_closures::date.eq(date))
            .filter(office_closures::shift.eq(shift.as_str())),
    )
    .execute(conn)
    .map_err(DbError::from)
}

/// Closures of an office from a date on: (date, shift, reason).
pub fn closures(
    conn: &mut DbConn,
    office_id: &OfficeId,
    from: NaiveDate,
) -> Result<Vec<(NaiveDate, String, String)>, DbError> {
    office_closures::table
        .filter(office_closures::office_id.eq(office_id.as_str()))
        .filter(office_closures::date.ge(from))
        .order((office_closures::date, office_closures::shift))
        .select((office_closures::date, office_closures::shift, office_closures::reason))
        .load(conn)
        .map_err(DbError::from)
}

pub fn holidays_between(conn: &mut DbConn, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, DbError> {
    holidays::table.filter(holidays::date.between(from, to)).select(holidays::date).load(conn).map_err(DbError::from)
}

pub fn add_holiday(conn: &mut DbConn, date: NaiveDate, name: &str) -> Result<(), DbError> {
    diesel::delete(holidays::table.find(date)).execute(conn)?;
    diesel::insert_into(holidays::table).values((holidays::date.eq(date), holidays::name.eq(name))).execute(conn)?;
    Ok(())
}

/// The rules behind slots — weekly capacity, date overrides, closures and holidays —
/// loaded once for some offices and a date range, so slots are planned without a query each.
struct Rules {
    weekly: HashMap<(String, i32, String), i32>,
    overrides: HashMap<(String, NaiveDate, String), i32>,
    closures: HashSet<(String, NaiveDate, String)>,
    holidays: HashSet<NaiveDate>,
}

/// Bind-parameter lists stay well below both databases' limits.
const IDS_PER_QUERY: usize = 1000;

impl Rules {
    fn load(conn: &mut DbConn, ids: &[String], from: NaiveDate, to: NaiveDate) -> Result<Self, DbError> {
        let mut rules = Rules {
            weekly: HashMap::new(),
            overrides: HashMap::new(),
            closures: HashSet::new(),
            holidays: holidays_between(conn, from, to)?.into_iter().collect(),
        };
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let weekly: Vec<(String, i32, String, i32)> = office_capacity::table
                .filter(office_capacity::office_id.eq_any(chunk))
                .select((
                    office_capacity::office_id,
                    office_capacity::weekday,
                    office_capacity::shift,
                    office_capacity::capacity,
                ))
                .load(conn)?;
            rules.weekly.extend(weekly.into_iter().map(|(o, w, s, c)| ((o, w, s), c)));
            let overrides: Vec<(String, NaiveDate, String, i32)> = capacity_overrides::table
                .filter(capacity_overrides::office_id.eq_any(chunk))
                .filter(capacity_overrides::date.between(from, to))
                .select((
                    capacity_overrides::office_id,
                    capacity_overrides::date,
                    capacity_overrides::shift,
                    capacity_overrides::capacity,
                ))
                .load(conn)?;
            rules.overrides.extend(overrides.into_iter().map(|(o, d, s, c)| ((o, d, s), c)));
            let closed: Vec<(String, NaiveDate, String)> = office_closures::table
                .filter(office_closures::office_id.eq_any(chunk))
                .filter(office_closures::date.between(from, to))
                .select((office_closures::office_id, office_closures::date, office_closures::shift))
                .load(conn)?;
            rules.closures.extend(closed);
        }
        Ok(rules)
    }

    /// The rule's seats (the date's override, else the weekday's rule, else 0) and whether
    /// the calendar closes the slot (a holiday or a closure).
    fn seats(&self, office_id: &str, date: NaiveDate, shift: Shift) -> (u32, bool) {
        let s = shift.as_str().to_owned();
        let o = office_id.to_owned();
        let capacity = self
            .overrides
            .get(&(o.clone(), date, s.clone()))
            .or_else(|| self.weekly.get(&(o.clone(), weekday_index(date), s.clone())))
            .copied()
            .unwrap_or(0);
        let calendar_closed = self.holidays.contains(&date) || self.closures.contains(&(o, date, s));
        (u32::try_from(capacity).unwrap_or(0), calendar_closed)
    }

    fn plan(&self, office_id: &str, date: NaiveDate, shift: Shift, taken: i32) -> Result<SlotPlan, DomainError> {
        let (capacity, calendar_closed) = self.seats(office_id, date, shift);
        plan_slot(date, shift, capacity, calendar_closed, u32::try_from(taken).unwrap_or(0))
    }
}

fn seats_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn typed(ids: Vec<String>) -> Vec<OfficeId> {
    ids.into_iter().map(OfficeId::from).collect()
}

/// A slot not stored yet, as its plan says.
fn new_slot(office_id: &str, city_code: &str, date: NaiveDate, shift: Shift, plan: &SlotPlan) -> SlotRow {
    SlotRow {
        office_id: OfficeId::from(office_id),
        date,
        shift: shift.as_str().to_owned(),
        capacity: seats_i32(plan.capacity),
        taken: 0,
        closed: plan.closed,
        city_code: city_code.to_owned(),
    }
}

/// Inserts slots that do not exist yet and returns how many were new: another instance
/// materialising the same days at the same moment is not an error (its rows stay).
fn insert_slots(conn: &mut DbConn, rows: &[SlotRow]) -> Result<usize, DbError> {
    let mut added = 0;
    for chunk in rows.chunks(1000) {
        added += match conn {
            DbConn::Pg(c) => {
                diesel::insert_into(slots::table).values(chunk.to_vec()).on_conflict_do_nothing().execute(c)?
            }
            DbConn::Sqlite(c) => diesel::insert_or_ignore_into(slots::table).values(chunk.to_vec()).execute(c)?,
        };
    }
    Ok(added)
}

/// Brings one slot in line with the rules (creating it if missing); a capacity below the
/// seats already taken is refused with `capacity_below_bookings` (see
/// [`domain::offices::plan_slot`]). Returns the seats taken.
pub fn recompute_slot(conn: &mut DbConn, office_id: &OfficeId, date: NaiveDate, shift: Shift) -> Result<i32, DbError> {
    recompute(conn, office_id, date, date, &[shift])?;
    Ok(slot(conn, office_id, date, shift)?.map_or(0, |s| s.taken))
}

/// [`recompute_slot`] for every slot of an office from `from` to `to` inclusive, with the
/// rules read once. Stops at the first slot (in date order) whose bookings the new rules
/// would strand; run it in a transaction so nothing is half-written. Returns how many slots
/// were created or changed.
pub fn recompute_range(
    conn: &mut DbConn,
    office_id: &OfficeId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<usize, DbError> {
    recompute(conn, office_id, from, to, &Shift::ALL)
}

fn recompute(
    conn: &mut DbConn,
    office_id: &OfficeId,
    from: NaiveDate,
    to: NaiveDate,
    shifts: &[Shift],
) -> Result<usize, DbError> {
    let rules = Rules::load(conn, &[office_id.to_string()], from, to)?;
    let city_code: String = offices::table.find(office_id.as_str()).select(offices::city_code).first(conn)?;
    let existing: HashMap<(NaiveDate, String), SlotRow> = slots::table
        .filter(slots::office_id.eq(office_id.as_str()))
        .filter(slots::date.between(from, to))
        .select(SlotRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|s| ((s.date, s.shift.clone()), s))
        .collect();
    let mut changed = 0;
    let mut new_rows = Vec::new();
    let mut d = from;
    while d <= to {
        for &shift in shifts {
            match existing.get(&(d, shift.as_str().to_owned())) {
                Some(s) => {
                    let p = rules.plan(office_id, d, shift, s.taken)?;
                    let capacity = seats_i32(p.capacity);
                    if capacity != s.capacity || p.closed != s.closed {
                        diesel::update(slots::table.find((office_id.as_str(), d, shift.as_str())))
                            .set((slots::capacity.eq(capacity), slots::closed.eq(p.closed)))
                            .execute(conn)?;
                        changed += 1;
                    }
                }
                None => {
                    new_rows.push(new_slot(office_id, &city_code, d, shift, &rules.plan(office_id, d, shift, 0)?));
                }
            }
        }
        d += Duration::days(1);
    }
    insert_slots(conn, &new_rows)?;
    Ok(changed + new_rows.len())
}

/// Creates the missing slots of every active office (or one office) from `from` to `to`
/// inclusive, from the weekly rules, overrides, closures and holidays; existing slots
/// are left alone. Returns how many were created.
pub fn materialize(
    conn: &mut DbConn,
    office_id: Option<&OfficeId>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<usize, DbError> {
    let ids: Vec<OfficeId> = match office_id {
        Some(id) => vec![id.clone()],
        None => typed(offices::table.filter(offices::active.eq(true)).select(offices::id).load(conn)?),
    };
    // A transaction per thousand offices: on SQLite a write transaction holds the only
    // writer's lock, and citizens booking meanwhile must not wait for the whole country.
    let mut added = 0;
    for chunk in ids.chunks(IDS_PER_QUERY) {
        added += write_tx(conn, |conn| materialize_in(conn, Some(chunk), from, to))?;
    }
    Ok(added)
}

/// [`materialize`] for some offices (all active ones when `None`), inside the caller's
/// transaction.
pub fn materialize_in(
    conn: &mut DbConn,
    office_ids: Option<&[OfficeId]>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<usize, DbError> {
    let ids: Vec<String> = match office_ids {
        None => offices::table.filter(offices::active.eq(true)).select(offices::id).load(conn)?,
        Some(wanted) => {
            let mut ids = Vec::with_capacity(wanted.len());
            for chunk in wanted.chunks(IDS_PER_QUERY) {
                ids.extend(
                    offices::table
                        .filter(offices::active.eq(true))
                        .filter(offices::id.eq_any(chunk.iter().map(OfficeId::as_str).collect::<Vec<_>>()))
                        .select(offices::id)
                        .load::<String>(conn)?,
                );
            }
            ids
        }
    };
    // A thousand offices at a time, so memory stays small however many offices there are
    // (10,000 offices × 60 days is over a million slots).
    let mut added = 0;
    let wanted = 2 * ((to - from).num_days() + 1);
    for chunk in ids.chunks(IDS_PER_QUERY) {
        // Offices whose every slot exists already (the usual case, every day but the
        // first) are not read slot by slot.
        let complete: HashSet<String> = slots::table
            .filter(slots::date.between(from, to))
            .filter(slots::office_id.eq_any(chunk))
            .group_by(slots::office_id)
            .select((slots::office_id, diesel::dsl::count_star()))
            .load::<(String, i64)>(conn)?
            .into_iter()
            .filter(|(_, n)| *n >= wanted)
            .map(|(id, _)| id)
            .collect();
        let chunk: Vec<String> = chunk.iter().filter(|id| !complete.contains(*id)).cloned().collect();
        if chunk.is_empty() {
            continue;
        }
        let chunk = chunk.as_slice();
        let rules = Rules::load(conn, chunk, from, to)?;
        let cities: HashMap<String, String> = offices::table
            .filter(offices::id.eq_any(chunk))
            .select((offices::id, offices::city_code))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        let existing: HashSet<(String, NaiveDate, String)> = slots::table
            .filter(slots::date.between(from, to))
            .filter(slots::office_id.eq_any(chunk))
            .select((slots::office_id, slots::date, slots::shift))
            .load::<(String, NaiveDate, String)>(conn)?
            .into_iter()
            .collect();
        let mut rows = Vec::new();
        for id in chunk {
            let mut d = from;
            while d <= to {
                for shift in Shift::ALL {
                    if existing.contains(&(id.clone(), d, shift.as_str().to_owned())) {
                        continue;
                    }
                    let city = cities.get(id).map_or("", String::as_str);
                    rows.push(new_slot(id, city, d, shift, &rules.plan(id, d, shift, 0)?));
                }
                d += Duration::days(1);
            }
        }
        added += insert_slots(conn, &rows)?;
    }
    Ok(added)
}

/// One slot.
pub fn slot(
    conn: &mut DbConn,
    office_id: &OfficeId,
    date: NaiveDate,
    shift: Shift,
) -> Result<Option<SlotRow>, DbError> {
    slots::table
        .find((office_id.as_str(), date, shift.as_str()))
        .select(SlotRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// Open slots with a free seat at some offices between two dates, earliest first (at most
/// `limit`): the candidates for a seat offered after a closure.
pub fn free_slots(
    conn: &mut DbConn,
    office_ids: &[OfficeId],
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
) -> Result<Vec<SlotRow>, DbError> {
    slots::table
        .filter(slots::office_id.eq_any(office_ids.iter().map(OfficeId::as_str).collect::<Vec<_>>()))
        .filter(slots::date.between(from, to))
        .filter(slots::closed.eq(false))
        .filter(slots::taken.lt(slots::capacity))
        .order((slots::date.asc(), slots::shift.desc(), slots::office_id.asc()))
        .limit(limit)
        .select(SlotRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Takes one seat, or says why not. Safe under any concurrency on both databases: the
/// condition and the increment are one statement.
pub fn take_seat(conn: &mut DbConn, office_id: &OfficeId, date: NaiveDate, shift: Shift) -> Result<(), DbError> {
    let n = diesel::update(open_seat(office_id.as_str(), date, shift.as_str()))
        .set(slots::taken.eq(slots::taken + 1))
        .prepared()
        .execute(conn)?;
    if n == 1 { Ok(()) } else { Err(no_seat(conn, office_id, date, shift)?) }
}

/// The slot's row while it is open and has a seat free: what taking a seat updates.
#[diesel::dsl::auto_type(no_type_alias)]
pub(crate) fn open_seat<'a>(office_id: &'a str, date: NaiveDate, shift: &'a str) -> _ {
    slots::table
        .filter(slots::office_id.eq(office_id))
        .filter(slots::date.eq(date))
        .filter(slots::shift.eq(shift))
        .filter(slots::closed.eq(false))
        .filter(slots::taken.lt(slots::capacity))
}

/// Why a seat could not be taken (read after the conditional update matched nothing).
pub(crate) fn no_seat(
    conn: &mut DbConn,
    office_id: &OfficeId,
    date: NaiveDate,
    shift: Shift,
) -> Result<DbError, DbError> {
    Ok(match slot(conn, office_id, date, shift)? {
        Some(s) if !s.closed => DbError::Domain(DomainError::SlotFull),
        _ => DbError::Domain(DomainError::SlotClosed),
    })
}

/// Gives one seat back. Callers release only what they hold (the application's own
/// versioned update guarantees a seat is released once).
pub fn release_seat(conn: &mut DbConn, office_id: &OfficeId, date: NaiveDate, shift: Shift) -> Result<(), DbError> {
    let n = diesel::update(
        slots::table
            .filter(slots::office_id.eq(office_id.as_str()))
            .filter(slots::date.eq(date))
            .filter(slots::shift.eq(shift.as_str()))
            .filter(slots::taken.gt(0)),
    )
    .set(slots::taken.eq(slots::taken - 1))
    .prepared()
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(DbError::Internal(format!("no taken seat to release at {office_id} {date} {}", shift.as_str())))
    }
}

/// Where a seat search looks: a city (by phone code), a province, or both, optionally one
/// kind of office. At least one of `city_code` and `province` is given by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatScope {
    pub city_code: Option<String>,
    pub province: Option<String>,
    pub kind: Option<String>,
}

/// The places the active offices are in: (province, city, city code, office kind), each
/// once, ordered. The region lists are derived from it.
pub fn regions(conn: &mut DbConn) -> Result<Vec<(String, String, String, String)>, DbError> {
    offices::table
        .filter(offices::active.eq(true))
        .select((offices::province, offices::city, offices::city_code, offices::kind))
        .distinct()
        .order((offices::province.asc(), offices::city.asc(), offices::city_code.asc(), offices::kind.asc()))
        .load(conn)
        .map_err(DbError::from)
}

/// Whether an active office lies in this province.
pub fn province_exists(conn: &mut DbConn, province: &str) -> Result<bool, DbError> {
    let n: i64 = offices::table
        .filter(offices::active.eq(true))
        .filter(offices::province.eq(province))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The active offices of a scope with their slots on a date (one row per office and shift).
pub fn availability(conn: &mut DbConn, scope: &SeatScope, date: NaiveDate) -> Result<Vec<SeatRow>, DbError> {
    // Two range reads, no per-office lookups: the scope's active offices (with what ranking
    // needs) — by the `offices_city` index when a city is given — and their cities' slots of
    // the date from `slots_by_city`, joined here.
    let offices = scope_offices(conn, scope)?;
    seats_of(conn, offices, date)
}

/// The slots of a date of the given offices (id → city code, phone, facilities), read by
/// their cities from `slots_by_city` (one range per city) and joined here.
pub fn seats_of(
    conn: &mut DbConn,
    offices: HashMap<OfficeId, (String, String, Facilities)>,
    date: NaiveDate,
) -> Result<Vec<SeatRow>, DbError> {
    if offices.is_empty() {
        return Ok(Vec::new());
    }
    let mut cities: Vec<String> = offices.values().map(|(c, _, _)| c.clone()).collect();
    cities.sort_unstable();
    cities.dedup();
    let mut seats = Vec::new();
    for chunk in cities.chunks(IDS_PER_QUERY) {
        seats.extend(
            slots::table
                .filter(slots::date.eq(date))
                .filter(slots::city_code.eq_any(chunk))
                .select((slots::office_id, slots::shift, slots::capacity, slots::taken, slots::closed))
                .load::<(String, String, i32, i32, bool)>(conn)?,
        );
    }
    Ok(seats
        .into_iter()
        .filter_map(|(office_id, shift, capacity, taken, closed)| {
            let (_, phone, facilities) = offices.get(office_id.as_str())?.clone();
            Some(SeatRow { office_id: office_id.into(), phone, facilities, shift, capacity, taken, closed })
        })
        .collect())
}

/// One shift of a city's ranked list (see [`ranked_page`]).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RankedSeat {
    #[diesel(sql_type = diesel::sql_types::Text, deserialize_as = String)]
    pub office_id: OfficeId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub shift: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub capacity: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub taken: i32,
    /// The city's ranked shifts on the date (`slot_counts`), read in the same statement.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    ranked: Option<i32>,
}

/// The rows a search from the top reads are rounded up to a multiple of this.
const ROWS_PER_TEXT: usize = 20;

/// Rows `offset..offset + limit` of a city's shifts on a date that offer seats, in the
/// order of [`domain::offices::rank`] without a neighbourhood or special needs, and how
/// many such shifts there are, leaving out the offices of `skip` (the city's offices the
/// search does not cover): one range of the `slots_ranked` index, read as far as the page
/// (plus two shifts per skipped office), and the city's count from `slot_counts`
/// (docs/decisions/0014-indexed-search.md). `None` when `skip` is too long to be worth it.
pub fn ranked_page(
    conn: &mut DbConn,
    date: NaiveDate,
    city_code: &str,
    skip: &HashSet<&str>,
    offset: usize,
    limit: usize,
) -> Result<Option<(Vec<RankedSeat>, usize)>, DbError> {
    use diesel::sql_types::{BigInt, Date, Text};
    if skip.len() > IDS_PER_QUERY {
        return Ok(None);
    }
    // Office ids in byte order, as Rust compares them, whatever the database's collation.
    let collate = match conn {
        DbConn::Pg(_) => " COLLATE \"C\"",
        DbConn::Sqlite(_) => "",
    };
    // Skipped offices' rows are dropped here, so the read starts at the top of the list.
    let (from, read) = if skip.is_empty() { (offset, limit) } else { (0, offset + limit + 2 * skip.len()) };
    // A read from the top has its limit in the statement's text, rounded up to a multiple
    // of 20 (at most ten texts; the rows past `read` are dropped here): PostgreSQL then
    // keeps one generic plan for it instead of planning it again on every search, as it
    // does with the limit or the offset a parameter (see `prepared::LimitOne`). Deeper
    // pages keep both as parameters.
    let bucket = read.div_ceil(ROWS_PER_TEXT).max(1) * ROWS_PER_TEXT;
    let literal = from == 0 && bucket <= 10 * ROWS_PER_TEXT;
    let page = if literal { format!("LIMIT {bucket}") } else { "LIMIT $3 OFFSET $4".to_owned() };
    let sql = format!(
        "SELECT office_id, shift, capacity, taken,
                (SELECT ranked FROM slot_counts WHERE date = $1 AND city_code = $2) AS ranked
           FROM slots
          WHERE date = $1 AND city_code = $2 AND rank_key IS NOT NULL
          ORDER BY rank_key DESC, office_id{collate}, shift DESC
          {page}"
    );
    let query = diesel::sql_query(sql).bind::<Date, _>(date).bind::<Text, _>(city_code);
    let mut rows: Vec<RankedSeat> = if literal {
        query.prepared().load(conn)?
    } else {
        query
            .bind::<BigInt, _>(i64::try_from(read).unwrap_or(i64::MAX))
            .bind::<BigInt, _>(i64::try_from(from).unwrap_or(i64::MAX))
            .prepared()
            .load(conn)?
    };
    rows.truncate(read);
    let ranked = match rows.first() {
        Some(r) => r.ranked.unwrap_or(0),
        // Read from the top and nothing found (a closed day): nothing to count.
        None if from == 0 => 0,
        // Past the end: the count alone.
        None => {
            slot_counts::table.find((date, city_code)).select(slot_counts::ranked).first(conn).optional()?.unwrap_or(0)
        }
    };
    let mut total = usize::try_from(ranked).unwrap_or(0);
    if skip.is_empty() {
        return Ok(Some((rows, total)));
    }
    let ids: Vec<&str> = skip.iter().copied().collect();
    let skipped: i64 = slots::table
        .filter(slots::date.eq(date))
        .filter(slots::office_id.eq_any(&ids))
        .filter(slots::city_code.eq(city_code))
        .filter(slots::rank_key.is_not_null())
        .count()
        .get_result(conn)?;
    total = total.saturating_sub(usize::try_from(skipped).unwrap_or(0));
    let page = rows.into_iter().filter(|r| !skip.contains(r.office_id.as_str())).skip(offset).take(limit).collect();
    Ok(Some((page, total)))
}

/// The active offices of a scope with what ranking needs: id → (city code, phone, facilities).
fn scope_offices(
    conn: &mut DbConn,
    scope: &SeatScope,
) -> Result<HashMap<OfficeId, (String, String, Facilities)>, DbError> {
    let mut q = offices::table.filter(offices::active.eq(true)).into_boxed();
    if let Some(c) = &scope.city_code {
        q = q.filter(offices::city_code.eq(c.clone()));
    }
    if let Some(p) = &scope.province {
        q = q.filter(offices::province.eq(p.clone()));
    }
    if let Some(k) = &scope.kind {
        q = q.filter(offices::kind.eq(k.clone()));
    }
    let offices: HashMap<OfficeId, (String, String, Facilities)> = q
        .select((
            offices::id,
            offices::city_code,
            offices::phone,
            offices::step_free_access,
            offices::eye_exception_capture,
            offices::fingerprint_exception_capture,
            offices::home_visits,
        ))
        .load::<(String, String, String, bool, bool, bool, bool)>(conn)?
        .into_iter()
        .map(
            |(
                id,
                city_code,
                phone,
                step_free_access,
                eye_exception_capture,
                fingerprint_exception_capture,
                home_visits,
            )| {
                let facilities =
                    Facilities { step_free_access, eye_exception_capture, fingerprint_exception_capture, home_visits };
                (OfficeId::from(id), (city_code, phone, facilities))
            },
        )
        .collect();
    Ok(offices)
}

/// What ranking one office's shift needs, and nothing more: a search reads every office
/// of a city, so the office's name and address are read only for the page answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    pub office_id: OfficeId,
    pub phone: String,
    pub facilities: Facilities,
    pub shift: String,
    pub capacity: i32,
    pub taken: i32,
    pub closed: bool,
}

// ---------------------------------------------------------------- administration

/// Offices by code (any number of codes).
pub fn find_by_codes(conn: &mut DbConn, codes: &[String]) -> Result<Vec<OfficeRow>, DbError> {
    let mut out = Vec::with_capacity(codes.len());
    for chunk in codes.chunks(IDS_PER_QUERY) {
        out.extend(offices::table.filter(offices::code.eq_any(chunk)).select(OfficeRow::as_select()).load(conn)?);
    }
    Ok(out)
}

/// Opens or closes an office for booking; `false` if there is no such office.
pub fn set_active(conn: &mut DbConn, id: &OfficeId, active: bool, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(offices::table.find(id.as_str()))
        .set((offices::active.eq(active), offices::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Date overrides of an office from a date on: (date, shift, capacity).
pub fn overrides(
    conn: &mut DbConn,
    office_id: &OfficeId,
    from: NaiveDate,
) -> Result<Vec<(NaiveDate, String, i32)>, DbError> {
    capacity_overrides::table
        .filter(capacity_overrides::office_id.eq(office_id.as_str()))
        .filter(capacity_overrides::date.ge(from))
        .order((capacity_overrides::date, capacity_overrides::shift))
        .select((capacity_overrides::date, capacity_overrides::shift, capacity_overrides::capacity))
        .load(conn)
        .map_err(DbError::from)
}

/// Closures of an office between two dates inclusive: (date, shift, reason).
pub fn closures_between(
    conn: &mut DbConn,
    office_id: &OfficeId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, String, String)>, DbError> {
    office_closures::table
        .filter(office_closures::office_id.eq(office_id.as_str()))
        .filter(office_closures::date.between(from, to))
        .order((office_closures::date, office_closures::shift))
        .select((office_closures::date, office_closures::shift, office_closures::reason))
        .load(conn)
        .map_err(DbError::from)
}

/// National holidays between two dates inclusive, with their names.
pub fn holidays_named(conn: &mut DbConn, from: NaiveDate, to: NaiveDate) -> Result<Vec<(NaiveDate, String)>, DbError> {
    holidays::table
        .filter(holidays::date.between(from, to))
        .order(holidays::date)
        .select((holidays::date, holidays::name))
        .load(conn)
        .map_err(DbError::from)
}

/// Closes every office's slots on a date (a national holiday); bookings stay. Returns how
/// many slots were open.
pub fn close_all_on(conn: &mut DbConn, date: NaiveDate) -> Result<usize, DbError> {
    diesel::update(slots::table.filter(slots::date.eq(date)).filter(slots::closed.eq(false)))
        .set(slots::closed.eq(true))
        .execute(conn)
        .map_err(DbError::from)
}

/// The last date an office has slots for.
pub fn last_slot_date(conn: &mut DbConn, office_id: &OfficeId) -> Result<Option<NaiveDate>, DbError> {
    slots::table
        .filter(slots::office_id.eq(office_id.as_str()))
        .select(diesel::dsl::max(slots::date))
        .first(conn)
        .map_err(DbError::from)
}

/// Citizens holding or having booked seats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appointments {
    /// Paid bookings.
    pub booked: i64,
    /// Unpaid holds (they lapse by themselves when the payment window closes).
    pub held: i64,
}

/// Which seats to count: one office or all, from a date, up to a date, one shift or both.
#[derive(Debug, Clone, Default)]
pub struct SeatsQuery<'a> {
    pub office_id: Option<&'a OfficeId>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub shift: Option<Shift>,
}

/// Counts the appointments held or booked in some slots.
pub fn appointments(conn: &mut DbConn, q: &SeatsQuery<'_>) -> Result<Appointments, DbError> {
    let mut count = |status: &str| -> Result<i64, DbError> {
        let mut query = applications::table.filter(applications::appointment_status.eq(status.to_owned())).into_boxed();
        if let Some(o) = q.office_id {
            query = query.filter(applications::slot_office_id.eq(o.as_str()));
        }
        if let Some(d) = q.from {
            query = query.filter(applications::slot_date.ge(d));
        }
        if let Some(d) = q.to {
            query = query.filter(applications::slot_date.le(d));
        }
        if let Some(s) = q.shift {
            query = query.filter(applications::slot_shift.eq(s.as_str()));
        }
        query.count().get_result(conn).map_err(DbError::from)
    };
    Ok(Appointments { booked: count("booked")?, held: count("held")? })
}
