//! Carrying applications over from the old Portal (docs/domain/legacy-import.md: «اطلاعات درخواست همه‌ی
//! شهروندانی که در سامانه‌ی Portal مشخصات خویش را ثبت کرده‌اند … به سامانه ثبت نام جدید
//! منتقل شده است»), issue 20: a CSV file, all or nothing, idempotent on re-run, every bad
//! cell named `row N: column` (the header is row 1). The CLI (`ncr import-legacy FILE`)
//! and `POST /api/v1/admin/legacy-applications` both call [`import`].
//!
//! An imported application is an ordinary one: its personal data sealed like any other
//! (national code, serial and mobile as HMAC + AES-GCM, the personal facts in
//! `personal_enc`), a citizen row the entry finds by national code, and — when it brings
//! an appointment — a seat taken in the slot's counter. The citizen then enters with the
//! serial (or the tracking code, or an unpaid draft's birth date) and continues.
//!
//! The columns are documented in `docs/domain/legacy-import.md`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{Application, AppointmentStatus, IdentityStatus, PaymentStatus, Slot, State};
use domain::calendar::{HijriDate, JalaliDate, lunar_birth_options, tehran_date};
use domain::ids::{BirthCertSerial, Mobile, NationalId, TrackingCode};
use domain::offices::{Shift, SpecialNeeds};
use domain::person::{Gender, PersonName, Religion};
use domain::record_ids::ApplicationId;
use domain::record_ids::OfficeId;
use persistence::applications::Personal;
use persistence::audit::{self, Actor};
use persistence::{DbConn, DbError, Pii, PiiKind, write_tx};

use crate::error::{ApiCode, ApiError, FieldErrors as Errors};

/// The most data rows one file may carry.
pub const MAX_ROWS: usize = 50_000;
/// The largest file the HTTP endpoint takes.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// The file's columns, in the documented order (any order is accepted; the optional ones
/// may be left out of the header).
pub const COLUMNS: [&str; 21] = [
    "legacy_id",
    "national_id",
    "serial",
    "birth_date_jalali",
    "birth_date_hijri",
    "gender",
    "religion",
    "mother_name",
    "mobile",
    "first_name",
    "last_name",
    "state",
    "tracking_code",
    "appointment_office",
    "appointment_date_jalali",
    "appointment_shift",
    "delivery_office",
    "can_leave_home",
    "can_climb_stairs",
    "pupils_visible",
    "fingers_intact",
];

/// The columns every file must have.
pub const REQUIRED_COLUMNS: [&str; 10] = [
    "legacy_id",
    "national_id",
    "serial",
    "birth_date_jalali",
    "gender",
    "religion",
    "mother_name",
    "mobile",
    "state",
    "tracking_code",
];

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LegacyResult {
    /// Applications created.
    #[schema(example = 998)]
    pub created: usize,
    /// Rows imported before, exactly as in this file (a re-run changes nothing).
    #[schema(example = 2)]
    pub unchanged: usize,
    /// Seats taken for the appointments the rows bring.
    #[schema(example = 640)]
    pub seats_taken: usize,
}

/// One checked row.
#[derive(Debug, Clone)]
struct Row {
    row: usize,
    legacy_id: String,
    national_id: NationalId,
    serial: BirthCertSerial,
    birth_date: JalaliDate,
    birth_date_hijri: HijriDate,
    gender: Gender,
    religion: Religion,
    mother_name: PersonName,
    mobile: Mobile,
    names: Option<(String, String)>,
    paid: Option<TrackingCode>,
    appointment: Option<(String, NaiveDate, Shift)>,
    delivery_office: Option<String>,
    needs: Option<SpecialNeeds>,
    /// The row's content, to tell a re-run from a change.
    canonical: String,
}

fn take<T>(errors: &mut Errors, row: usize, column: &str, result: Result<T, DomainError>) -> Option<T> {
    errors.take_cell(row, column, result)
}

/// Reads, checks and imports a whole file in one write transaction: if any cell is bad
/// (in the file, or against the database: a national code with another application, a
/// tracking code in use, a full slot), nothing is written and every bad cell is listed.
pub fn import(
    conn: &mut DbConn,
    pii: &Pii,
    policy: &domain::Policy,
    bytes: &[u8],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<LegacyResult, ApiError> {
    let rows = parse(bytes, tehran_date(now))?;
    write_tx(conn, |conn| apply(conn, pii, policy, &rows, actor, now))
}

/// [`import`] on a connection of the state's pool, as the administrator of the command
/// line (`ncr import-legacy`).
pub fn import_now(state: &crate::AppState, bytes: &[u8]) -> Result<LegacyResult, ApiError> {
    let mut conn = state.db.get()?;
    let actor = Actor { kind: "admin", id: Some("ncr import-legacy".into()), request_id: None, client_ip: None };
    import(&mut conn, &state.pii, &state.policy, bytes, &actor, state.now())
}

fn parse(bytes: &[u8], today: NaiveDate) -> Result<Vec<Row>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let at = crate::error::csv_header(&mut reader, &COLUMNS, &REQUIRED_COLUMNS)?;

    let mut rows = Vec::new();
    let mut errors = Errors::default();
    let (mut ids, mut nids, mut codes) = (HashSet::new(), HashSet::new(), HashSet::new());
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        if i >= MAX_ROWS {
            return Err(ApiError::Unprocessable { code: ApiCode::CsvTooManyRows });
        }
        let record = match record {
            Ok(r) if r.len() == at.len() => r,
            _ => {
                errors.push(format!("row {row}"), ApiCode::CsvRowMalformed);
                continue;
            }
        };
        let cell = |column: &str| at.get(column).and_then(|&i| record.get(i)).unwrap_or("").trim();
        let before = errors.len();
        let legacy_id = match cell("legacy_id") {
            "" => {
                errors.cell(row, "legacy_id", DomainError::Required);
                None
            }
            id if id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) => {
                Some(id.to_owned())
            }
            _ => {
                errors.push(format!("row {row}: legacy_id"), ApiCode::Invalid);
                None
            }
        };
        let national_id = take(&mut errors, row, "national_id", NationalId::parse(cell("national_id")));
        let serial = take(&mut errors, row, "serial", BirthCertSerial::parse(cell("serial")));
        let birth_date = take(&mut errors, row, "birth_date_jalali", JalaliDate::parse(cell("birth_date_jalali")));
        let birth_date_hijri = match (birth_date, cell("birth_date_hijri")) {
            (Some(d), "") => Some(lunar_birth_options(d)[2]),
            (Some(d), given) => take(
                &mut errors,
                row,
                "birth_date_hijri",
                HijriDate::parse(given).and_then(|h| {
                    if lunar_birth_options(d).contains(&h) { Ok(h) } else { Err(DomainError::LunarDateNotOffered) }
                }),
            ),
            (None, _) => None,
        };
        let gender = take(&mut errors, row, "gender", Gender::parse(cell("gender")).ok_or(DomainError::Required));
        let religion =
            take(&mut errors, row, "religion", Religion::parse(cell("religion")).ok_or(DomainError::Required));
        let mother_name = take(&mut errors, row, "mother_name", PersonName::parse(cell("mother_name")));
        let mobile = take(&mut errors, row, "mobile", Mobile::parse(cell("mobile")));
        let names = match (cell("first_name"), cell("last_name")) {
            ("", "") => Some(None),
            (first, last) => {
                let first = take(&mut errors, row, "first_name", PersonName::parse(first));
                let last = take(&mut errors, row, "last_name", PersonName::parse(last));
                first.zip(last).map(|(f, l)| Some((f.as_str().to_owned(), l.as_str().to_owned())))
            }
        };
        let state = match cell("state") {
            "draft" => Some(State::Draft),
            "registered" => Some(State::Registered),
            _ => {
                errors.push(format!("row {row}: state"), DomainError::LegacyStateInvalid);
                None
            }
        };
        let paid = match (state, cell("tracking_code")) {
            (Some(State::Registered), code) => match TrackingCode::parse(code) {
                Ok(c) => Some(Some(c)),
                Err(_) => {
                    let e = if code.is_empty() { DomainError::Required } else { DomainError::TrackingCodeInvalid };
                    errors.cell(row, "tracking_code", e);
                    None
                }
            },
            (_, "") => Some(None),
            (_, _) => {
                errors.push(format!("row {row}: tracking_code"), DomainError::NotForDraft);
                None
            }
        };
        let appointment = appointment(
            &mut |column, e| match e {
                Some(e) => errors.cell(row, column, e),
                None => errors.push(format!("row {row}: {column}"), DomainError::NotForDraft),
            },
            state,
            (cell("appointment_office"), cell("appointment_date_jalali"), cell("appointment_shift")),
            today,
        );
        let delivery_office = match cell("delivery_office") {
            "" => Some(None),
            code => match domain::offices::office_code(code) {
                Ok(c) => Some(Some(c)),
                Err(e) => {
                    errors.cell(row, "delivery_office", e);
                    None
                }
            },
        };
        let flags = [cell("can_leave_home"), cell("can_climb_stairs"), cell("pupils_visible"), cell("fingers_intact")];
        let needs = special_needs(&mut |column, e| errors.cell(row, column, e), flags);
        // One row per old application, one application per national code.
        if let Some(id) = &legacy_id
            && !ids.insert(id.clone())
        {
            errors.push(format!("row {row}: legacy_id"), DomainError::LegacyIdDuplicate);
        }
        if let Some(n) = &national_id
            && !nids.insert(n.as_str().to_owned())
        {
            errors.cell(row, "national_id", DomainError::ApplicationExists);
        }
        if let Some(Some(code)) = &paid
            && !codes.insert(code.as_str().to_owned())
        {
            errors.push(format!("row {row}: tracking_code"), DomainError::TrackingCodeTaken);
        }
        if errors.len() > before {
            continue;
        }
        let canonical = COLUMNS.iter().map(|c| cell(c)).collect::<Vec<_>>().join("\u{1f}");
        rows.push(Row {
            row,
            legacy_id: legacy_id.expect("checked"),
            national_id: national_id.expect("checked"),
            serial: serial.expect("checked"),
            birth_date: birth_date.expect("checked"),
            birth_date_hijri: birth_date_hijri.expect("checked"),
            gender: gender.expect("checked"),
            religion: religion.expect("checked"),
            mother_name: mother_name.expect("checked"),
            mobile: mobile.expect("checked"),
            names: names.expect("checked"),
            paid: paid.expect("checked"),
            appointment: appointment.expect("checked"),
            delivery_office: delivery_office.expect("checked"),
            needs: needs.expect("checked"),
            canonical,
        });
    }
    errors.finish_file()?;
    if rows.is_empty() {
        return Err(ApiError::Unprocessable { code: ApiCode::CsvEmpty });
    }
    Ok(rows)
}

/// The appointment cells: all three or none, only for a paid (`registered`) row, a day
/// from tomorrow on. `Some(None)`: no appointment; `None`: a bad cell (reported).
fn appointment(
    bad: &mut dyn FnMut(&str, Option<DomainError>),
    state: Option<State>,
    (office, date, shift): (&str, &str, &str),
    today: NaiveDate,
) -> Option<Option<(String, NaiveDate, Shift)>> {
    if office.is_empty() && date.is_empty() && shift.is_empty() {
        return Some(None);
    }
    if state == Some(State::Draft) {
        bad("appointment_office", None);
        return None;
    }
    let mut ok = true;
    let office = match domain::offices::office_code(office) {
        Ok(o) => Some(o),
        Err(e) => {
            bad("appointment_office", Some(if office.is_empty() { DomainError::Required } else { e }));
            None
        }
    };
    let date = match JalaliDate::parse(date).map(JalaliDate::to_gregorian) {
        Ok(d) if d > today => Some(d),
        Ok(_) => {
            let (first, last) = (today + Duration::days(1), today + Duration::days(365));
            bad("appointment_date_jalali", Some(DomainError::DateOutsideBookingWindow { first, last }));
            None
        }
        Err(e) => {
            bad("appointment_date_jalali", Some(if date.is_empty() { DomainError::Required } else { e }));
            None
        }
    };
    let shift = Shift::parse(shift);
    if shift.is_none() {
        bad("appointment_shift", Some(DomainError::Required));
        ok = false;
    }
    match (office, date, shift) {
        (Some(o), Some(d), Some(s)) if ok => Some(Some((o, d, s))),
        _ => None,
    }
}

/// The four special-needs flags: all four or none.
fn special_needs(bad: &mut dyn FnMut(&str, DomainError), cells: [&str; 4]) -> Option<Option<SpecialNeeds>> {
    let columns = ["can_leave_home", "can_climb_stairs", "pupils_visible", "fingers_intact"];
    if cells.iter().all(|c| c.is_empty()) {
        return Some(None);
    }
    let mut flags = [false; 4];
    let mut ok = true;
    for (i, column) in columns.iter().enumerate() {
        match domain::offices::flag(cells[i]) {
            Ok(f) => flags[i] = f,
            Err(e) => {
                bad(column, e);
                ok = false;
            }
        }
    }
    ok.then_some(Some(SpecialNeeds {
        can_leave_home: flags[0],
        can_climb_stairs: flags[1],
        pupils_visible: flags[2],
        fingers_intact: flags[3],
    }))
}

/// Writes checked rows; every row the database refuses is a bad cell like any other.
fn apply(
    conn: &mut DbConn,
    pii: &Pii,
    policy: &domain::Policy,
    rows: &[Row],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<LegacyResult, ApiError> {
    let mut result = LegacyResult::default();
    let mut errors = Errors::default();
    let mut codes: Vec<String> =
        rows.iter().flat_map(|r| r.appointment.iter().map(|a| a.0.clone()).chain(r.delivery_office.clone())).collect();
    codes.sort_unstable();
    codes.dedup();
    let offices: HashMap<String, persistence::offices::OfficeRow> =
        persistence::offices::find_by_codes(conn, &codes)?.into_iter().map(|o| (o.code.clone(), o)).collect();
    for r in rows {
        let digests = pii.lookups(PiiKind::Secret, &format!("legacy|{}", r.canonical));
        if let Some(seen) = persistence::legacy::find(conn, &r.legacy_id)? {
            if digests.contains(&seen.row_digest) {
                result.unchanged += 1;
            } else {
                errors.push(format!("row {}: legacy_id", r.row), DomainError::LegacyChanged);
            }
            continue;
        }
        let hashes = pii.lookups(PiiKind::NationalId, r.national_id.as_str());
        if !persistence::applications::find_by_nid(conn, &hashes)?.is_empty() {
            errors.cell(r.row, "national_id", DomainError::ApplicationExists);
            continue;
        }
        if let Some(code) = &r.paid
            && persistence::applications::find_by_tracking_code(conn, code.as_str())?.is_some()
        {
            errors.push(format!("row {}: tracking_code", r.row), DomainError::TrackingCodeTaken);
            continue;
        }
        let office_of = |column: &str, code: &str, errors: &mut Errors| match offices.get(code) {
            Some(o) if o.active => Some(o.id.clone()),
            _ => {
                errors.cell(r.row, column, DomainError::OfficeNotFound);
                None
            }
        };
        let slot = match &r.appointment {
            Some((code, date, shift)) => match office_of("appointment_office", code, &mut errors) {
                Some(office_id) => Some(Slot { office_id, date: *date, shift: *shift }),
                None => continue,
            },
            None => None,
        };
        let delivery = match &r.delivery_office {
            Some(code) => match office_of("delivery_office", code, &mut errors) {
                Some(id) => Some(id),
                None => continue,
            },
            None => None,
        };
        if let Some(s) = &slot {
            match persistence::offices::take_seat(conn, &s.office_id, s.date, s.shift) {
                Ok(()) => result.seats_taken += 1,
                Err(DbError::Domain(e)) => {
                    errors.cell(r.row, "appointment_date_jalali", e);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let id = write_row(conn, pii, policy, r, &hashes, slot, delivery, now)?;
        persistence::legacy::insert(conn, &r.legacy_id, &id, &digests[0], now)?;
        audit::append(
            conn,
            actor,
            "legacy_imported",
            Some(&id),
            Some(
                serde_json::json!({"legacy_id": r.legacy_id, "state": if r.paid.is_some() { "registered" } else { "draft" }}),
            ),
            now,
        )?;
        result.created += 1;
    }
    errors.finish_file()?;
    audit::append(
        conn,
        actor,
        "legacy_import",
        None,
        Some(
            serde_json::json!({"created": result.created, "unchanged": result.unchanged, "seats_taken": result.seats_taken}),
        ),
        now,
    )?;
    Ok(result)
}

/// The citizen (found or created) and the application of one row; its id.
#[expect(clippy::too_many_arguments, reason = "one row and what was looked up for it")]
fn write_row(
    conn: &mut DbConn,
    pii: &Pii,
    policy: &domain::Policy,
    r: &Row,
    hashes: &[String],
    slot: Option<Slot>,
    delivery: Option<OfficeId>,
    now: DateTime<Utc>,
) -> Result<ApplicationId, ApiError> {
    let nid_enc = pii.seal(PiiKind::NationalId, r.national_id.as_str());
    let serial_enc = pii.seal(PiiKind::Serial, r.serial.number());
    let citizen = persistence::citizens::find_or_insert(
        conn,
        &persistence::citizens::Entry {
            hashes,
            nid_enc: nid_enc.clone(),
            serial_enc: serial_enc.clone(),
            // The new system's registry has not checked it; the next entry does.
            serial_verified: false,
        },
        now,
    )?;
    // The old Portal verified a paid applicant's identity before payment; a draft is
    // asked about again by the inquiry job.
    let identity = if r.paid.is_some() { IdentityStatus::Verified } else { IdentityStatus::Pending };
    let mut app = Application::new_draft(policy, identity);
    app.special_needs = r.needs;
    app.delivery_office_id = delivery;
    if let Some(code) = &r.paid {
        app.state = State::Registered;
        app.payment = PaymentStatus::Paid;
        app.tracking_code = Some(code.clone());
        // The booking window (two months) counts from the import, not from the old payment.
        app.paid_at = Some(now);
        if let Some(s) = slot {
            app.appointment = AppointmentStatus::Booked;
            app.slot = Some(s);
        }
    }
    let mut row = crate::journey::personal::blank_row(&citizen.id, 1, &hashes[0], &nid_enc, &serial_enc, now);
    row.set_domain(&app);
    row.mobile_hash = pii.lookup(PiiKind::Mobile, r.mobile.as_str());
    row.mobile_enc = pii.seal(PiiKind::Mobile, r.mobile.as_str());
    row.set_personal(
        pii,
        &Personal {
            birth_date: r.birth_date.to_gregorian(),
            birth_date_jalali: r.birth_date.to_string(),
            birth_date_hijri: r.birth_date_hijri.to_string(),
            gender: r.gender.as_str().into(),
            religion: r.religion.as_str().into(),
            mother_name: r.mother_name.as_str().into(),
            first_name: r.names.as_ref().map(|n| n.0.clone()),
            last_name: r.names.as_ref().map(|n| n.1.clone()),
        },
    );
    if identity == IdentityStatus::Pending {
        row.identity_next_check_at = Some(now.naive_utc());
        row.identity_pending_since = Some(now.naive_utc());
    }
    persistence::applications::insert(conn, &row)?;
    Ok(row.id)
}
