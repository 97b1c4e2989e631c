//! Applications: the row, its conversion to and from the domain's `Application`, and
//! optimistic-concurrency updates (`version`), so two racing writers never both win.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::application::{Application, AppointmentStatus, IdentityStatus, PaymentStatus, ReissueReason, Slot, State};
use domain::ids::TrackingCode;
use domain::offices::{Shift, SpecialNeeds};
use domain::record_ids::{ApplicationId, CitizenId, OfficeId};

use crate::db::DbConn;
use crate::error::DbError;
use crate::nullable_id::NullableText;
use crate::pii::{Kind, Pii};
use crate::prepared::{FirstRow, KeepPrepared};
use crate::schema::applications;

/// An application's personal facts, sealed together at rest like the e-folder's fields
/// (issue 24): nothing here is ever looked up by value, so no index column is needed.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Personal {
    /// Gregorian, for comparisons with a claimed birth date.
    pub birth_date: NaiveDate,
    pub birth_date_jalali: String,
    pub birth_date_hijri: String,
    pub gender: String,
    pub religion: String,
    pub mother_name: String,
    /// From the civil registry once the identity is verified.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl Personal {
    pub fn seal(&self, pii: &Pii) -> String {
        pii.seal(Kind::Personal, &serde_json::to_string(self).expect("plain fields serialise"))
    }

    pub fn open(pii: &Pii, sealed: &str) -> Result<Self, DbError> {
        if sealed.is_empty() {
            return Err(DbError::Internal("an application's personal facts are not sealed yet".into()));
        }
        serde_json::from_str(&pii.open(Kind::Personal, sealed)?)
            .map_err(|e| DbError::Internal(format!("an application's personal facts do not parse: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = applications, treat_none_as_null = true)]
pub struct ApplicationRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: ApplicationId,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub citizen_id: CitizenId,
    pub cycle: i32,
    pub state: String,
    pub identity_status: String,
    pub payment_status: String,
    pub appointment_status: String,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub slot_office_id: Option<OfficeId>,
    pub slot_date: Option<NaiveDate>,
    pub slot_shift: Option<String>,
    pub hold_expires_at: Option<NaiveDateTime>,
    pub can_leave_home: Option<bool>,
    pub can_climb_stairs: Option<bool>,
    pub pupils_visible: Option<bool>,
    pub fingers_intact: Option<bool>,
    pub edits_left: i32,
    pub no_show_ban_until: Option<NaiveDate>,
    pub tracking_code: Option<String>,
    pub paid_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub delivery_office_id: Option<OfficeId>,
    pub reissue_required: bool,
    /// A home visit's address is given (the address itself is in `home_visits`, sealed).
    pub home_visit_address: bool,
    /// A re-issue cycle: why (`serial_changed`, `lost`, `damaged`, `data_changed`).
    pub reissue_reason: Option<String>,
    /// A re-issue cycle: the application whose delivered card it replaces.
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub previous_application_id: Option<ApplicationId>,
    pub nid_hash: String,
    pub nid_enc: String,
    pub serial_enc: String,
    /// The [`Personal`] facts, sealed ([`ApplicationRow::personal`]).
    pub personal_enc: String,
    pub mobile_hash: String,
    pub mobile_enc: String,
    pub family_enc: Option<String>,
    pub identity_attempts: i32,
    pub identity_next_check_at: Option<NaiveDateTime>,
    /// Since when the identity has been `pending` (unset once settled).
    pub identity_pending_since: Option<NaiveDateTime>,
    pub created_by_client: Option<String>,
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When a closure took the booked day away (the domain's `displaced_at`).
    pub displaced_at: Option<NaiveDateTime>,
    /// Why the citizen withdrew, sealed (`Kind::Personal`).
    pub withdrawal_reason_enc: Option<String>,
}

fn bad(column: &str, value: &str) -> DbError {
    DbError::Internal(format!("applications.{column} holds an unknown value {value:?}"))
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

impl ApplicationRow {
    /// Opens the personal facts.
    pub fn personal(&self, pii: &Pii) -> Result<Personal, DbError> {
        Personal::open(pii, &self.personal_enc)
    }

    /// Seals new personal facts into the row (saved with the row).
    pub fn set_personal(&mut self, pii: &Pii, personal: &Personal) {
        self.personal_enc = personal.seal(pii);
    }

    /// The facts the domain rules look at.
    pub fn to_domain(&self) -> Result<Application, DbError> {
        let slot = match (&self.slot_office_id, self.slot_date, &self.slot_shift) {
            (Some(office_id), Some(date), Some(shift)) => Some(Slot {
                office_id: office_id.clone(),
                date,
                shift: Shift::parse(shift).ok_or_else(|| bad("slot_shift", shift))?,
            }),
            _ => None,
        };
        let special_needs = match (self.can_leave_home, self.can_climb_stairs, self.pupils_visible, self.fingers_intact)
        {
            (Some(a), Some(b), Some(c), Some(d)) => {
                Some(SpecialNeeds { can_leave_home: a, can_climb_stairs: b, pupils_visible: c, fingers_intact: d })
            }
            _ => None,
        };
        Ok(Application {
            state: State::parse(&self.state).ok_or_else(|| bad("state", &self.state))?,
            identity: IdentityStatus::parse(&self.identity_status)
                .ok_or_else(|| bad("identity_status", &self.identity_status))?,
            payment: PaymentStatus::parse(&self.payment_status)
                .ok_or_else(|| bad("payment_status", &self.payment_status))?,
            appointment: AppointmentStatus::parse(&self.appointment_status)
                .ok_or_else(|| bad("appointment_status", &self.appointment_status))?,
            slot,
            hold_expires_at: self.hold_expires_at.map(utc),
            special_needs,
            edits_left: u8::try_from(self.edits_left).map_err(|_| bad("edits_left", &self.edits_left.to_string()))?,
            no_show_ban_until: self.no_show_ban_until,
            tracking_code: self
                .tracking_code
                .as_deref()
                .map(TrackingCode::parse)
                .transpose()
                .map_err(|_| bad("tracking_code", "…"))?,
            paid_at: self.paid_at.map(utc),
            delivery_office_id: self.delivery_office_id.clone(),
            reissue_required: self.reissue_required,
            home_visit_address: self.home_visit_address,
            reissue: self
                .reissue_reason
                .as_deref()
                .map(|r| ReissueReason::parse(r).ok_or_else(|| bad("reissue_reason", r)))
                .transpose()?,
            displaced_at: self.displaced_at.map(utc),
        })
    }

    /// Writes the domain facts back into the row.
    pub fn set_domain(&mut self, app: &Application) {
        self.state = app.state.as_str().into();
        self.identity_status = app.identity.as_str().into();
        self.payment_status = app.payment.as_str().into();
        self.appointment_status = app.appointment.as_str().into();
        self.slot_office_id = app.slot.as_ref().map(|s| s.office_id.clone());
        self.slot_date = app.slot.as_ref().map(|s| s.date);
        self.slot_shift = app.slot.as_ref().map(|s| s.shift.as_str().to_owned());
        self.hold_expires_at = app.hold_expires_at.map(|t| t.naive_utc());
        self.can_leave_home = app.special_needs.map(|n| n.can_leave_home);
        self.can_climb_stairs = app.special_needs.map(|n| n.can_climb_stairs);
        self.pupils_visible = app.special_needs.map(|n| n.pupils_visible);
        self.fingers_intact = app.special_needs.map(|n| n.fingers_intact);
        self.edits_left = i32::from(app.edits_left);
        self.no_show_ban_until = app.no_show_ban_until;
        self.tracking_code = app.tracking_code.as_ref().map(|t| t.as_str().to_owned());
        self.paid_at = app.paid_at.map(|t| t.naive_utc());
        self.delivery_office_id = app.delivery_office_id.clone();
        self.reissue_required = app.reissue_required;
        self.home_visit_address = app.home_visit_address;
        self.reissue_reason = app.reissue.map(|r| r.as_str().to_owned());
        self.displaced_at = app.displaced_at.map(|t| t.naive_utc());
    }
}

/// The citizen's current application (the latest card cycle).
pub fn current_for_citizen(conn: &mut DbConn, citizen_id: &CitizenId) -> Result<Option<ApplicationRow>, DbError> {
    applications::table
        .filter(applications::citizen_id.eq(citizen_id.as_str()))
        .order(applications::cycle.desc())
        .select(ApplicationRow::as_select())
        .limit_one()
        .get_result(conn)
        .optional()
        .map_err(DbError::from)
}

/// Every card cycle of a citizen, the first first.
pub fn cycles_of(conn: &mut DbConn, citizen_id: &CitizenId) -> Result<Vec<ApplicationRow>, DbError> {
    applications::table
        .filter(applications::citizen_id.eq(citizen_id.as_str()))
        .order(applications::cycle.asc())
        .select(ApplicationRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

pub fn find(conn: &mut DbConn, id: &ApplicationId) -> Result<Option<ApplicationRow>, DbError> {
    applications::table
        .find(id.as_str())
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn find_by_tracking_code(conn: &mut DbConn, code: &str) -> Result<Option<ApplicationRow>, DbError> {
    applications::table
        .filter(applications::tracking_code.eq(code))
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// Reads an application and locks its row for the rest of the write transaction, in one
/// statement: `SELECT … FOR UPDATE` on PostgreSQL (which waits for a concurrent writer and
/// then returns its committed row). On SQLite the transaction's writer already holds the
/// database (`BEGIN IMMEDIATE`), so a plain read is the same. Replaces a read followed by
/// [`lock`] inside `write_tx` (docs/architecture.md, "The database layer").
pub fn find_locked(conn: &mut DbConn, id: &ApplicationId) -> Result<Option<ApplicationRow>, DbError> {
    match conn {
        DbConn::Pg(pg) => applications::table
            .find(id.as_str())
            .select(ApplicationRow::as_select())
            .for_update()
            .first(pg)
            .optional()
            .map_err(DbError::from),
        DbConn::Sqlite(_) => find(conn, id),
    }
}

/// [`current_for_citizen`], locked as [`find_locked`] is.
pub fn current_for_citizen_locked(
    conn: &mut DbConn,
    citizen_id: &CitizenId,
) -> Result<Option<ApplicationRow>, DbError> {
    match conn {
        DbConn::Pg(pg) => applications::table
            .filter(applications::citizen_id.eq(citizen_id.as_str()))
            .order(applications::cycle.desc())
            .select(ApplicationRow::as_select())
            .for_update()
            .limit_one()
            .get_result(pg)
            .optional()
            .map_err(DbError::from),
        DbConn::Sqlite(_) => current_for_citizen(conn, citizen_id),
    }
}

/// [`find_by_tracking_code`], locked as [`find_locked`] is.
pub fn find_by_tracking_code_locked(conn: &mut DbConn, code: &str) -> Result<Option<ApplicationRow>, DbError> {
    match conn {
        DbConn::Pg(pg) => applications::table
            .filter(applications::tracking_code.eq(code))
            .select(ApplicationRow::as_select())
            .for_update()
            .first(pg)
            .optional()
            .map_err(DbError::from),
        DbConn::Sqlite(_) => find_by_tracking_code(conn, code),
    }
}

/// Applications of a national code, newest cycle first (`hashes`: its lookup values under every key).
pub fn find_by_nid(conn: &mut DbConn, hashes: &[String]) -> Result<Vec<ApplicationRow>, DbError> {
    // One lookup value per key (one or two): `nid_hash = $1 OR nid_hash = $2`, which
    // PostgreSQL plans once, not `= ANY($1)`, which it plans on every run.
    if hashes.len() <= crate::prepared::FEW {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            applications::table.select(ApplicationRow::as_select()).order(applications::cycle.desc()).into_boxed();
        for hash in hashes {
            query = query.or_filter(applications::nid_hash.eq(hash));
        }
        return query.load(conn).map_err(DbError::from);
    }
    applications::table
        .filter(applications::nid_hash.eq_any(hashes))
        .order(applications::cycle.desc())
        .select(ApplicationRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Applications registered with a mobile (a mother may have several).
pub fn find_by_mobile(conn: &mut DbConn, hashes: &[String], limit: i64) -> Result<Vec<ApplicationRow>, DbError> {
    applications::table
        .filter(applications::mobile_hash.eq_any(hashes))
        // Ids are time-ordered too: a stable order for applications created in the same instant.
        .order((applications::created_at.asc(), applications::id.asc()))
        .limit(limit)
        .select(ApplicationRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

pub fn insert(conn: &mut DbConn, row: &ApplicationRow) -> Result<(), DbError> {
    diesel::insert_into(applications::table)
        .values(row.clone())
        .prepared()
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

/// Saves a changed row if nobody else changed it since it was read (`row.version` is the
/// version read); bumps the version. `Stale` when another writer won.
pub fn update(conn: &mut DbConn, row: &mut ApplicationRow, now: DateTime<Utc>) -> Result<(), DbError> {
    let read_version = row.version;
    row.version += 1;
    row.updated_at = now.naive_utc();
    let n = diesel::update(
        applications::table.filter(applications::id.eq(row.id.as_str())).filter(applications::version.eq(read_version)),
    )
    .set(row.clone())
    .prepared()
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        row.version = read_version;
        Err(DbError::Stale)
    }
}

/// Locks the row for the rest of the transaction if it still has the version that was
/// read (PostgreSQL: the row lock; SQLite: the immediate transaction already serialises
/// writers). `Stale` if another writer committed a change since: re-read and retry.
/// Taking this lock before touching seat counters makes racing writers queue up instead
/// of both acting on the same stale read.
pub fn lock(conn: &mut DbConn, row: &ApplicationRow) -> Result<(), DbError> {
    let n = diesel::update(
        applications::table.filter(applications::id.eq(row.id.as_str())).filter(applications::version.eq(row.version)),
    )
    .set(applications::version.eq(row.version))
    .prepared()
    .execute(conn)?;
    if n == 1 { Ok(()) } else { Err(DbError::Stale) }
}

/// An office's appointments on a date (booked, used or missed), in id order after a cursor.
pub fn at_office(
    conn: &mut DbConn,
    office_id: &OfficeId,
    date: NaiveDate,
    shift: Option<&str>,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<ApplicationRow>, DbError> {
    let mut q = applications::table
        .filter(applications::slot_office_id.eq(office_id.as_str()))
        .filter(applications::slot_date.eq(date))
        .filter(applications::appointment_status.eq_any(["booked", "used", "missed"]))
        .select(ApplicationRow::as_select())
        .into_boxed();
    if let Some(s) = shift {
        q = q.filter(applications::slot_shift.eq(s.to_owned()));
    }
    if let Some(a) = after_id {
        q = q.filter(applications::id.gt(a.to_owned()));
    }
    q.order(applications::id.asc()).limit(limit).load(conn).map_err(DbError::from)
}

/// Ids of held seats whose hold has expired, then of seats offered after a closure whose
/// offer has (one query each, so each uses its partial index).
pub fn expired_holds(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> Result<Vec<ApplicationId>, DbError> {
    let mut ids = Vec::new();
    for status in ["held", "offered"] {
        let left = limit - ids.len() as i64;
        if left <= 0 {
            break;
        }
        ids.extend(
            applications::table
                .filter(applications::appointment_status.eq(status))
                .filter(applications::hold_expires_at.lt(now.naive_utc()))
                .order(applications::hold_expires_at.asc())
                .limit(left)
                .select(applications::id)
                .load::<String>(conn)?
                .into_iter()
                .map(ApplicationId::from),
        );
    }
    Ok(ids)
}

/// Ids of applications whose identity inquiry is due.
pub fn identity_due(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> Result<Vec<ApplicationId>, DbError> {
    applications::table
        .filter(applications::identity_status.eq("pending"))
        .filter(applications::identity_next_check_at.le(now.naive_utc()))
        .order(applications::identity_next_check_at.asc())
        .limit(limit)
        .select(applications::id)
        .load::<String>(conn)
        .map(typed_ids)
        .map_err(DbError::from)
}

/// Booked appointments on or before a date (candidates for the no-show job).
pub fn booked_until(conn: &mut DbConn, date: NaiveDate, limit: i64) -> Result<Vec<ApplicationRow>, DbError> {
    applications::table
        .filter(applications::appointment_status.eq("booked"))
        .filter(applications::slot_date.le(date))
        .order(applications::slot_date.asc())
        .limit(limit)
        .select(ApplicationRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Paid applications without a booking, paid (and not displaced by a closure) before
/// `before` (candidates for expiry).
pub fn unbooked_paid_before(
    conn: &mut DbConn,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ApplicationId>, DbError> {
    applications::table
        .filter(applications::state.eq("registered"))
        .filter(applications::appointment_status.eq("none"))
        .filter(applications::paid_at.lt(before.naive_utc()))
        .filter(applications::displaced_at.is_null().or(applications::displaced_at.lt(before.naive_utc())))
        .limit(limit)
        .select(applications::id)
        .load::<String>(conn)
        .map(typed_ids)
        .map_err(DbError::from)
}

/// Booked appointments on one day, by id after `after_id` (for paging through a day).
pub fn booked_on(
    conn: &mut DbConn,
    date: NaiveDate,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<ApplicationRow>, DbError> {
    let mut q = applications::table
        .filter(applications::appointment_status.eq("booked"))
        .filter(applications::slot_date.eq(date))
        .select(ApplicationRow::as_select())
        .into_boxed();
    if let Some(id) = after_id {
        q = q.filter(applications::id.gt(id.to_owned()));
    }
    q.order(applications::id.asc()).limit(limit).load(conn).map_err(DbError::from)
}

/// Applications by id (any order).
pub fn find_many(conn: &mut DbConn, ids: &[ApplicationId]) -> Result<Vec<ApplicationRow>, DbError> {
    applications::table
        .filter(applications::id.eq_any(ids.iter().map(ApplicationId::as_str).collect::<Vec<_>>()))
        .select(ApplicationRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Ids read as text, typed.
fn typed_ids(texts: Vec<String>) -> Vec<ApplicationId> {
    texts.into_iter().map(ApplicationId::from).collect()
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Which seats a closure sweep looks at: one office on some dates, or every office.
#[derive(Debug, Clone, Default)]
pub struct DisplacedScope {
    pub office_id: Option<OfficeId>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// Ids of applications whose booked (or offered) seat the office will not honour: its slot
/// is closed (a closure or a holiday), or the office is out of service and the day is
/// `today` or later. Driven from the slots that still count seats (`taken > 0`): closed
/// ones through their partial index, inactive offices' from the few inactive offices.
pub fn displaced(
    conn: &mut DbConn,
    scope: &DisplacedScope,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<ApplicationId>, DbError> {
    use diesel::sql_types::{BigInt, Date, Nullable, Text};
    let scoped = "($2::TEXT IS NULL OR s.office_id = $2) AND ($3::DATE IS NULL OR s.date >= $3) \
                  AND ($4::DATE IS NULL OR s.date <= $4)";
    let seated = "a.slot_office_id = s.office_id AND a.slot_date = s.date AND a.slot_shift = s.shift \
                  AND a.appointment_status IN ('booked', 'offered')";
    let closed = format!(
        "SELECT a.id FROM slots s JOIN applications a ON {seated} \
         WHERE s.closed AND s.taken > 0 AND $1 = $1 AND {scoped} ORDER BY a.id LIMIT $5"
    );
    let inactive = format!(
        "SELECT a.id FROM offices o JOIN slots s ON s.office_id = o.id JOIN applications a ON {seated} \
         WHERE NOT o.active AND s.date >= $1 AND s.taken > 0 AND {scoped} ORDER BY a.id LIMIT $5"
    );
    let mut ids = Vec::new();
    for sql in [closed, inactive] {
        // SQLite has no `::TYPE` casts: they are only PostgreSQL's way to type a NULL.
        let sql = match conn {
            DbConn::Pg(_) => sql,
            DbConn::Sqlite(_) => sql.replace("::TEXT", "").replace("::DATE", ""),
        };
        let rows: Vec<IdRow> = diesel::sql_query(sql)
            .bind::<Date, _>(today)
            .bind::<Nullable<Text>, _>(scope.office_id.as_deref())
            .bind::<Nullable<Date>, _>(scope.from)
            .bind::<Nullable<Date>, _>(scope.to)
            .bind::<BigInt, _>(limit)
            .load(conn)?;
        ids.extend(rows.into_iter().map(|r| ApplicationId::from(r.id)));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
