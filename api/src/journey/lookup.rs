//! Public lookups without a login (docs/domain/public.md): the status of an
//! application by national code plus tracking code or birth date, and tracking-code
//! recovery by SMS. A wrong second factor is treated exactly like an unknown national
//! code, and both are counted as failed guesses before anything is compared
//! ([`crate::guard`]): per address and national code, per address, and per national code
//! — whether the code exists or not, so neither answers nor limits tell who is
//! registered. The owner's right proof spends no failure budget, so strangers' failures
//! cannot lock them out; recoveries that send an SMS have their own daily allowance.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::calendar::{tehran_date, tehran_instant};
use domain::ids::{NationalId, TrackingCode};
use domain::record_ids::OfficeId;
use persistence::applications::{self, ApplicationRow};
use persistence::audit::{self, Actor};
use persistence::offices::{self, OfficeRow};
use persistence::public_lookups::{self, Purpose};
use persistence::{DbConn, PiiKind, write_tx};

use crate::error::{ApiCode, ApiError};
use crate::guard::{self, Client, Rule};
use crate::notify::{self, Template};
use crate::state::AppState;
use domain::DomainError;

/// What the caller knows besides the national code. At least one is given; all given must match.
#[derive(Debug, Clone)]
pub struct Proof {
    pub tracking_code: Option<TrackingCode>,
    pub birth_date: Option<NaiveDate>,
}

impl Proof {
    fn matches(&self, row: &ApplicationRow, pii: &persistence::Pii) -> bool {
        self.tracking_code.as_ref().is_none_or(|c| row.tracking_code.as_deref() == Some(c.as_str()))
            && self.birth_date.is_none_or(|d| row.personal(pii).is_ok_and(|p| p.birth_date == d))
    }
}

/// An application found by a public lookup, with the offices it mentions.
pub struct Found {
    pub row: ApplicationRow,
    pub offices: Vec<OfficeRow>,
}

/// Seconds until the next Tehran midnight, when the daily allowances start again.
fn until_tomorrow(now: DateTime<Utc>) -> u64 {
    let tomorrow = tehran_date(now) + Duration::days(1);
    (tehran_instant(tomorrow, 0, 0) - now).num_seconds().max(1) as u64
}

/// Counts one lookup for the national code; 429 `code` once the day's allowance is used.
fn spend_allowance(
    conn: &mut DbConn,
    nid_hash: &str,
    purpose: Purpose,
    per_day: i32,
    code: ApiCode,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let hits = public_lookups::hit(conn, nid_hash, purpose, tehran_date(now), now)?;
    if hits > per_day { Err(ApiError::TooManyRequests { code, retry_after: until_tomorrow(now) }) } else { Ok(()) }
}

/// The newest application of this national code that the proof matches; `None` for an
/// unknown code and for a wrong proof alike (both counted as failures). One write
/// transaction (the guess, the applications, the guess given back), then the offices.
pub async fn status(
    state: &AppState,
    national_id: &NationalId,
    proof: Proof,
    client: Client,
) -> Result<Option<Found>, ApiError> {
    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let (pii, rule) = (state.pii.clone(), Rule::status(&state.config));
    let now = state.now();
    let found = state
        .run_api(move |conn| {
            // One write transaction: the guess counted (its rows locked, so parallel
            // guesses queue), compared, and given back if right.
            let row = write_tx(conn, |conn| {
                let attempt = guard::begin_in(conn, &pii, &rule, &hashes[0], &client, now)?;
                let found = applications::find_by_nid(conn, &hashes)?.into_iter().find(|r| proof.matches(r, &pii));
                if found.is_some() {
                    guard::release_in(conn, &attempt)?;
                }
                Ok::<_, ApiError>(found)
            })?;
            let Some(row) = row else { return Ok(None) };
            let ids: Vec<OfficeId> = row.slot_office_id.iter().chain(row.delivery_office_id.iter()).cloned().collect();
            let offices = if ids.is_empty() { Vec::new() } else { offices::find_many(conn, &ids)? };
            Ok(Some(Found { row, offices }))
        })
        .await?;
    state.metrics.event("guess_checked", "status");
    Ok(found)
}

/// Sends the tracking code by SMS to the registered mobile of the application with this
/// national code and birth date; returns the masked mobile. 404 `recovery_not_found` when
/// nothing matches (unknown code and wrong birth date alike, counted as failed guesses),
/// 409 `no_tracking_code` when the application was never paid, 429 `recovery_limit`
/// when this address's guesses at the code are spent or the day's SMS were sent.
pub async fn recover_tracking_code(
    state: &AppState,
    national_id: &NationalId,
    birth_date: NaiveDate,
    client: Client,
    actor: Actor,
) -> Result<String, ApiError> {
    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let per_day = state.config.limits.recoveries_per_day;
    let rule = Rule::recovery(&state.config);
    let now = state.now();
    let pii = state.pii.clone();
    let hint = state
        .run_api(move |conn| {
            let attempt = guard::begin(conn, &pii, &rule, &hashes[0], &client, now)?;
            let matching: Vec<ApplicationRow> = applications::find_by_nid(conn, &hashes)?
                .into_iter()
                .filter(|r| r.personal(&pii).is_ok_and(|p| p.birth_date == birth_date))
                .collect();
            if matching.is_empty() {
                return Err(ApiError::Domain(DomainError::RecoveryNotFound));
            }
            // The details were right: no failure, whatever follows.
            guard::release(conn, &attempt)?;
            let Some(row) = matching.into_iter().find(|r| r.tracking_code.is_some()) else {
                return Err(ApiError::Domain(DomainError::NoTrackingCode));
            };
            // The owner's own allowance: SMS sent per national code per day.
            spend_allowance(conn, &hashes[0], Purpose::Recovery, per_day, ApiCode::RecoveryLimit, now)?;
            let code = row.tracking_code.clone().unwrap_or_default();
            let hint = domain::mask::mobile(&pii.open(PiiKind::Mobile, &row.mobile_enc)?);
            write_tx(conn, |conn| {
                notify::sms_to_applicant(
                    conn,
                    &pii,
                    &row,
                    Template::TrackingCodeRecovery,
                    serde_json::json!({ "tracking_code": code }),
                    None,
                    now,
                )?;
                audit::append(
                    conn,
                    &actor,
                    "tracking_code_recovery",
                    Some(&row.id),
                    Some(serde_json::json!({ "recipient": hint })),
                    now,
                )?;
                Ok::<_, ApiError>(())
            })?;
            Ok(hint)
        })
        .await;
    state.metrics.event("guess_checked", "recovery");
    hint
}
