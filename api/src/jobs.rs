//! Background jobs. Each is a plain function that does one pass and says how much it
//! did, so tests (and `POST /api/v1/admin/jobs/{name}`) can run it directly; the
//! scheduler in [`spawn`] runs them periodically. Every job is safe to run on several
//! instances at once: rows are claimed by versioned updates (or `SKIP LOCKED`), so no
//! row is processed twice.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use domain::application::{Event, IdentityStatus, transition};
use domain::eligibility::{PersonalClaim, check_personal_info};
use domain::ids::NationalId;
use persistence::audit::{self, Actor};
use persistence::{PiiKind, applications};

use crate::error::{ApiCode, ApiError};
use crate::journey::{Target, mutate};
use crate::notify::{self, Template};
use crate::state::AppState;

/// Why a job's pass failed. The scheduler logs it and tries again at the job's next turn;
/// the admin "run now" endpoint answers it like a request's error (`From<JobError> for
/// ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No job has this name (404 `not_found` at the admin endpoint).
    #[error("no job named {0:?}")]
    Unknown(String),
    /// A step of the pass failed: the database, an outside system, or a use case the job
    /// called (whose error keeps its own status at the admin endpoint).
    #[error(transparent)]
    Step(#[from] ApiError),
}

impl From<persistence::DbError> for JobError {
    fn from(e: persistence::DbError) -> Self {
        JobError::Step(e.into())
    }
}

impl From<domain::DomainError> for JobError {
    fn from(e: domain::DomainError) -> Self {
        JobError::Step(e.into())
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Unknown(_) => ApiError::NotFound(ApiCode::NotFound),
            JobError::Step(e) => e,
        }
    }
}

/// Releases holds whose payment time ran out (docs/domain/application.md: "Payment failure or timeout
/// releases the held slot").
pub async fn release_expired_holds(state: &AppState) -> Result<usize, JobError> {
    let now = state.now();
    let policy = state.policy.clone();
    let released = state
        .run_api(move |conn| {
            let ids = applications::expired_holds(conn, now, 500)?;
            let mut released = 0;
            for id in ids {
                if crate::journey::booking::release_expired_hold(conn, &id, now, &policy)? {
                    released += 1;
                }
            }
            Ok(released)
        })
        .await?;
    if released > 0 {
        state.full_slots.clear();
    }
    Ok(released)
}

/// The hours within which the identity inquiry's answer is promised (docs/domain/eligibility.md).
pub const IDENTITY_WINDOW_HOURS: i64 = 24;

/// Settles identities left `pending` because the registry was unreachable (or its answer
/// was pending): asks again with exponential backoff (2, 4, 8 … minutes, at most 64 apart,
/// so a registry back within the promised 24 hours (docs/domain/eligibility.md) settles it within the hour), and
/// notifies the citizen of the result by SMS. `verified` needs the entry checks (serial,
/// alive, age) and the personal information (birth date, gender, mother's name) to hold.
pub async fn settle_identities(state: &AppState) -> Result<usize, JobError> {
    let now = state.now();
    let ids = state.run(move |conn| applications::identity_due(conn, now, 200)).await?;
    let mut settled = 0;
    for id in ids {
        let row = {
            let id = id.clone();
            state.run(move |conn| applications::find(conn, &id)).await?
        };
        let Some(row) = row.filter(|r| r.identity_status == "pending") else { continue };
        let national_id = NationalId::parse(&state.pii.open(PiiKind::NationalId, &row.nid_enc)?)?;
        let serial = state.pii.open(PiiKind::Serial, &row.serial_enc)?;
        let verdict = match state.registry.find(&national_id).await {
            // Down, or its answer is still pending: ask again after the backoff.
            Err(_) => None,
            Ok(None) => Some((false, None)),
            Ok(Some(record)) => 'verdict: {
                // The entry checks too (docs/domain/eligibility.md): a citizen let in while the registry was
                // down never had them. A serial replaced less than 48 working hours ago is
                // "not yet", not "no": asked again later.
                let serial = domain::ids::BirthCertSerial::parse(&serial)?;
                let holidays = state.run(move |conn| crate::journey::holidays_near(conn, now)).await?;
                match domain::eligibility::check_entry(Some(&record), &serial, now, &state.policy, &holidays) {
                    Ok(()) => {}
                    Err(domain::DomainError::SerialRecentlyChanged) => break 'verdict None,
                    Err(_) => break 'verdict Some((false, None)),
                }
                let p = row.personal(&state.pii)?;
                let claim = PersonalClaim {
                    birth_date: domain::calendar::JalaliDate::parse(&p.birth_date_jalali)?,
                    gender: domain::person::Gender::parse(&p.gender).ok_or_else(|| ApiError::internal("gender"))?,
                    lunar_birth_date: domain::calendar::HijriDate::parse(&p.birth_date_hijri)?,
                    mother_name: domain::person::PersonName::parse(&p.mother_name)?,
                };
                Some((check_personal_info(&record, &claim).is_ok(), Some(record)))
            }
        };
        let verdict_label = match &verdict {
            None => "identity_retry_later",
            Some((true, _)) => "identity_verified",
            Some((false, _)) => "identity_rejected",
        };
        let policy = state.policy.clone();
        let pii = state.pii.clone();
        let overdue = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let overdue_seen = overdue.clone();
        let outcome = mutate(state, Target::Id(id), move |conn, row, app, now| {
            if app.identity != IdentityStatus::Pending {
                return Ok(false);
            }
            match &verdict {
                None => {
                    row.identity_attempts += 1;
                    let wait = domain::backoff::exponential(
                        Duration::minutes(1),
                        row.identity_attempts,
                        Duration::minutes(64),
                    );
                    row.identity_next_check_at = Some((now + wait).naive_utc());
                    // The identity answer is promised within 24 hours (docs/domain/eligibility.md); past that, someone must
                    // look at the registry link (an outage is still never a refusal).
                    let since = *row.identity_pending_since.get_or_insert(now.naive_utc());
                    if now.naive_utc() - since > Duration::hours(IDENTITY_WINDOW_HOURS) {
                        tracing::error!(
                            application = %row.id,
                            pending_hours = (now.naive_utc() - since).num_hours(),
                            "identity inquiry overdue: the civil registry has not answered within the window"
                        );
                        overdue.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(false)
                }
                Some((verified, record)) => {
                    let next = transition(app, Event::IdentitySettled { verified: *verified }, now, &policy)?;
                    row.set_domain(&next);
                    row.identity_next_check_at = None;
                    row.identity_pending_since = None;
                    if let Some(r) = record.as_ref().filter(|_| *verified) {
                        let mut p = row.personal(&pii)?;
                        p.first_name = Some(r.first_name.as_str().into());
                        p.last_name = Some(r.last_name.as_str().into());
                        row.set_personal(&pii, &p);
                    }
                    let result = if *verified { "verified" } else { "rejected" };
                    audit::append(
                        conn,
                        &Actor::system(),
                        "identity_settled",
                        Some(&row.id),
                        Some(serde_json::json!({"result": result})),
                        now,
                    )?;
                    notify::sms_to_applicant(
                        conn,
                        &pii,
                        row,
                        Template::IdentityResult,
                        serde_json::json!({"verified": verified}),
                        Some(format!("identity:{}:{}", row.id, row.identity_attempts)),
                        now,
                    )?;
                    Ok(true)
                }
            }
        })
        .await?;
        if outcome.0 {
            settled += 1;
        }
        if outcome.0 || verdict_label == "identity_retry_later" {
            state.metrics.event("registry", verdict_label);
        }
        if overdue_seen.load(std::sync::atomic::Ordering::Relaxed) {
            state.metrics.event("registry", "identity_overdue");
        }
    }
    Ok(settled)
}

/// Marks booked appointments as missed once their shift is over (docs/domain/booking.md: a no-show may
/// not book again for N days) and tells the citizen. Never on a closed day (issue 19): a
/// booking there is the closure's, moved by [`displace_closed_bookings`] without a ban.
pub async fn mark_no_shows(state: &AppState) -> Result<usize, JobError> {
    let now = state.now();
    let today = domain::calendar::tehran_date(now);
    let candidates = state.run(move |conn| applications::booked_until(conn, today, 500)).await?;
    let mut marked = 0;
    for row in candidates {
        let slot = match (
            &row.slot_office_id,
            row.slot_date,
            row.slot_shift.as_deref().and_then(domain::offices::Shift::parse),
        ) {
            (Some(office), Some(date), Some(shift)) => (office.clone(), date, shift),
            _ => continue,
        };
        if domain::calendar::tehran_instant(slot.1, slot.2.ends_at_hour(), 0) > now {
            continue;
        }
        let s = slot.clone();
        let closed =
            state.run(move |conn| persistence::offices::slot(conn, &s.0, s.1, s.2)).await?.is_some_and(|s| s.closed);
        if closed {
            continue;
        }
        let policy = state.policy.clone();
        let pii = state.pii.clone();
        let (did, _) = mutate(state, Target::Id(row.id.clone()), move |conn, row, app, now| {
            if app.appointment != domain::application::AppointmentStatus::Booked {
                return Ok(false);
            }
            // Closed since it was read: the closure's, not a no-show.
            if let Some(s) = &app.slot
                && persistence::offices::slot(conn, &s.office_id, s.date, s.shift)?.is_some_and(|s| s.closed)
            {
                return Ok(false);
            }
            let next = transition(app, Event::MarkNoShow, now, &policy)?;
            row.set_domain(&next);
            audit::append(conn, &Actor::system(), "no_show", Some(&row.id), None, now)?;
            let until = next.no_show_ban_until.map(|d| d.to_string());
            notify::sms_to_applicant(
                conn,
                &pii,
                row,
                Template::NoShow,
                serde_json::json!({"ban_until": until}),
                Some(format!("no_show:{}:{}", row.id, row.slot_date.map(|d| d.to_string()).unwrap_or_default())),
                now,
            )?;
            Ok(true)
        })
        .await?;
        if did {
            marked += 1;
        }
    }
    Ok(marked)
}

/// Closes paid applications that never booked within the window (docs/domain/booking.md: two months).
pub async fn expire_unbooked(state: &AppState) -> Result<usize, JobError> {
    let now = state.now();
    let months = chrono::Months::new(state.policy.booking_window_months);
    let Some(before) = now.checked_sub_months(months) else { return Ok(0) };
    let ids = state.run(move |conn| applications::unbooked_paid_before(conn, before, 500)).await?;
    let mut expired = 0;
    for id in ids {
        let policy = state.policy.clone();
        let (did, _) = mutate(state, Target::Id(id), move |conn, row, app, now| {
            let Ok(next) = transition(app, Event::Expire, now, &policy) else { return Ok(false) };
            row.set_domain(&next);
            audit::append(conn, &Actor::system(), "expired_unbooked", Some(&row.id), None, now)?;
            Ok(true)
        })
        .await?;
        if did {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Moves citizens booked on a day their office will not receive them (closed, a holiday,
/// out of service) back to choosing, with a seat offered and an SMS, without a no-show
/// (issue 19; see [`crate::journey::closures`]). The administrators' actions do this at
/// once; the job catches what they did not reach.
pub async fn displace_closed_bookings(state: &AppState) -> Result<usize, JobError> {
    Ok(crate::journey::closures::displace_everywhere(state).await?)
}

/// Forgets used captchas that expired, the public lookup counters of past days, guess
/// counters two days old, expired sessions, and production-queue leases ended a day ago.
pub async fn purge_captchas(state: &AppState) -> Result<usize, JobError> {
    let now = state.now();
    let yesterday = domain::calendar::tehran_date(now) - Duration::days(1);
    let purged = state
        .run(move |conn| {
            Ok(persistence::citizens::purge_captchas(conn, now)?
                + persistence::public_lookups::purge_before(conn, yesterday)?
                + persistence::attempts::purge(conn, (now - Duration::days(2)).naive_utc())?
                + persistence::sessions::purge(conn, now.naive_utc())?
                + persistence::production::purge(conn, (now - Duration::days(1)).naive_utc())?)
        })
        .await?;
    Ok(purged)
}

/// Creates the slots of the booking horizon that do not exist yet (daily).
pub async fn materialize_slots(state: &AppState) -> Result<usize, JobError> {
    let today = domain::calendar::tehran_date(state.now());
    let horizon = i64::from(state.policy.booking_horizon_days) + 1;
    let created = state
        .run(move |conn| {
            persistence::offices::materialize(conn, None, today + Duration::days(1), today + Duration::days(horizon))
        })
        .await?;
    Ok(created)
}

/// Delivers due notifications from the outbox (see [`crate::delivery`]).
pub async fn deliver_outbox(state: &AppState) -> Result<usize, JobError> {
    Ok(crate::delivery::deliver(state).await?)
}

/// Queues tomorrow's appointment reminders (see [`crate::delivery::queue_reminders`]).
pub async fn queue_reminders(state: &AppState) -> Result<usize, JobError> {
    Ok(crate::delivery::queue_reminders(state).await?)
}

/// Queues the reminders of cards waiting 30 days uncollected (see
/// [`crate::delivery::queue_uncollected`]).
pub async fn queue_uncollected(state: &AppState) -> Result<usize, JobError> {
    Ok(crate::delivery::queue_uncollected(state).await?)
}

/// One named job, for the scheduler and the admin "run now" endpoint.
pub async fn run(state: &AppState, name: &str) -> Result<usize, JobError> {
    match name {
        "release_expired_holds" => release_expired_holds(state).await,
        "settle_identities" => settle_identities(state).await,
        "purge_captchas" => purge_captchas(state).await,
        "materialize_slots" => materialize_slots(state).await,
        "reconcile_payments" => Ok(crate::journey::payment::reconcile(state).await?),
        "mark_no_shows" => mark_no_shows(state).await,
        "expire_unbooked" => expire_unbooked(state).await,
        "deliver_outbox" => deliver_outbox(state).await,
        "queue_reminders" => queue_reminders(state).await,
        "displace_closed_bookings" => displace_closed_bookings(state).await,
        "queue_uncollected" => queue_uncollected(state).await,
        _ => Err(JobError::Unknown(name.to_owned())),
    }
}

/// The jobs the scheduler runs, with their periods in units of the base interval.
pub const SCHEDULE: &[(&str, u64)] = &[
    ("release_expired_holds", 1),
    ("deliver_outbox", 1),
    ("reconcile_payments", 6),
    ("settle_identities", 6),
    ("displace_closed_bookings", 6),
    ("mark_no_shows", 60),
    ("expire_unbooked", 360),
    ("purge_captchas", 60),
    ("queue_reminders", 720),
    ("queue_uncollected", 720),
    ("materialize_slots", 720),
];

/// Runs the schedule until the process ends.
pub fn spawn(state: Arc<AppState>) {
    let base = StdDuration::from_secs(state.config.jobs.interval_seconds.max(1));
    actix_web::rt::spawn(async move {
        let mut tick: u64 = 0;
        loop {
            for (name, every) in SCHEDULE {
                // Shutting down: no new work (a running job finishes; outbox claims left
                // unfinished are free again after their lease).
                if state.is_draining() {
                    return;
                }
                if tick.is_multiple_of(*every) {
                    match run(&state, name).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(job = name, processed = n, "job ran"),
                        Err(e) => tracing::warn!(job = name, error = %e, "job failed"),
                    }
                }
            }
            tick += 1;
            actix_web::rt::time::sleep(base).await;
        }
    });
}
