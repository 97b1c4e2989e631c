//! Entry (seed 001 §2.2–2.4): national code + serial + captcha. The SPEC §3.4 checks run
//! in order; "no such person" and "serial does not match" give the same answer; alive,
//! age and the 48-hour rule are told only once the serial matched. Repeated wrong serials
//! for one national code are slowed down, then locked for a while.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use domain::DomainError;
use domain::application::{Event, transition};
use domain::ids::{BirthCertSerial, NationalId};
use persistence::audit::Actor;
use persistence::{PiiKind, applications, citizens, write_tx};

use crate::auth::Audience;
use crate::error::ApiError;
use crate::journey::view::{ApplicationView, build_view};
use crate::state::AppState;

/// What entry answers.
pub struct EntryOutcome {
    pub citizen_id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// Whether the registry confirmed the serial (false while it is unreachable).
    pub identity_confirmed: bool,
    pub application: Option<ApplicationView>,
    pub next_step: domain::application::NextStep,
}

/// Checks a captcha answer and spends it (a replay fails on every instance).
pub async fn spend_captcha(state: &AppState, id: &str, answer: &str) -> Result<(), ApiError> {
    let (nonce, expires_at) = check_captcha(state, id, answer)?;
    let fresh = state.run(move |conn| citizens::use_captcha(conn, &nonce, expires_at)).await?;
    if fresh { Ok(()) } else { Err(captcha_refused()) }
}

fn captcha_refused() -> ApiError {
    ApiError::field("captcha_answer", "captcha_invalid")
}

/// The captcha's nonce and expiry when the answer is right (nothing is spent yet).
fn check_captcha(state: &AppState, id: &str, answer: &str) -> Result<(String, DateTime<Utc>), ApiError> {
    crate::captcha::check(&state.captcha_key, id, answer, state.now()).map_err(|_| captcha_refused())
}

/// Verifies who is entering and issues a citizen token. The captcha (id, answer) is
/// checked first and spent; then the lock on repeated wrong serials, the civil registry
/// and the SPEC §3.4 rules. The database is visited twice: before the registry is asked
/// (captcha, lock, holidays) and after it (the citizen and the application).
pub async fn enter(
    state: &AppState,
    national_id: NationalId,
    serial: BirthCertSerial,
    captcha: (&str, &str),
    actor: Actor,
) -> Result<EntryOutcome, ApiError> {
    let (nonce, captcha_expires) = check_captcha(state, captcha.0, captcha.1)?;
    let now = state.now();
    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let hash = hashes[0].clone();
    let (locked, holidays) = {
        let hashes = hashes.clone();
        state
            .run_api(move |conn| {
                if !citizens::use_captcha(conn, &nonce, captcha_expires)? {
                    return Err(captcha_refused());
                }
                for h in &hashes {
                    if let Some(until) = citizens::entry_locked_until(conn, h, now)? {
                        return Ok((Some(until), Vec::new()));
                    }
                }
                Ok((None, super::holidays_near(conn, now)?))
            })
            .await?
    };
    if let Some(until) = locked {
        return Err(ApiError::TooManyRequests {
            code: "entry_locked",
            retry_after: (until - now).num_seconds().max(1) as u64,
        });
    }

    let record = state.registry.find(&national_id).await;
    let confirmed = match record {
        Ok(record) => match domain::eligibility::check_entry(record.as_ref(), &serial, now, &state.policy, &holidays) {
            // Earlier wrong serials are forgotten with the citizen's write below.
            Ok(()) => true,
            Err(DomainError::IdentityMismatch) => return Err(wrong_serial(state, hash, now).await),
            Err(other) => return Err(other.into()),
        },
        // The registry is down: let the citizen in; the identity stays pending and is
        // settled by the inquiry job (SPEC §3.4).
        Err(_) => {
            state.metrics.event("registry", "unavailable_at_entry");
            false
        }
    };

    let entry_hashes = hashes.clone();
    let nid_enc = state.pii.seal(PiiKind::NationalId, national_id.as_str());
    let serial_enc = state.pii.seal(PiiKind::Serial, serial.number());
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let (citizen, row) = state
        .run_api(move |conn| {
            let entry = citizens::Entry {
                hashes: &entry_hashes,
                nid_enc,
                serial_enc: serial_enc.clone(),
                serial_verified: confirmed,
            };
            if confirmed {
                citizens::clear_entry_failures(conn, &entry_hashes[0])?;
            }
            let citizen = citizens::upsert(conn, &entry, now)?;
            let mut row = applications::current_for_citizen(conn, &citizen.id)?;
            // A confirmed new serial replaces the application's; after production started
            // the citizen is told to ask for a re-issue after delivery (seed 001 §3.2).
            if let Some(r) = row.as_mut().filter(|r| {
                confirmed && pii.open(PiiKind::Serial, &r.serial_enc).ok().as_deref() != Some(serial.number())
            }) {
                write_tx(conn, |conn| {
                    let app = r.to_domain()?;
                    let next = transition(&app, Event::SerialChanged, now, &policy)?;
                    r.set_domain(&next);
                    r.serial_enc = serial_enc.clone();
                    applications::update(conn, r, now)?;
                    persistence::audit::append(conn, &actor, "serial_changed", Some(&r.id), None, now)?;
                    Ok::<_, ApiError>(())
                })?;
            }
            Ok((citizen, row))
        })
        .await?;

    let minutes = state.config.auth.citizen_token_minutes;
    let token = state.tokens.issue(&state.tokens.claims(Audience::Citizen, &citizen.id, now, minutes))?;
    let view = match row {
        Some(row) => Some(build_view(state, row).await?),
        None => None,
    };
    let next_step = view.as_ref().map_or(domain::application::NextStep::EnterPersonalInfo, |v| v.next_step.into());
    Ok(EntryOutcome {
        citizen_id: citizen.id,
        token,
        expires_at: now + Duration::minutes(minutes),
        identity_confirmed: confirmed,
        application: view,
        next_step,
    })
}

/// Counts a wrong serial: slowed down from the third, locked at the configured count.
async fn wrong_serial(state: &AppState, hash: String, now: DateTime<Utc>) -> ApiError {
    let threshold = state.config.limits.entry_failures_before_lock;
    let lock = Duration::minutes(state.config.limits.entry_lock_minutes);
    let failures = match state.run(move |conn| citizens::record_entry_failure(conn, &hash, now, threshold, lock)).await
    {
        Ok(n) => n,
        Err(e) => return e,
    };
    if failures >= threshold {
        return ApiError::TooManyRequests { code: "entry_locked", retry_after: lock.num_seconds() as u64 };
    }
    if failures >= 3 {
        tokio::time::sleep(StdDuration::from_millis(500 * u64::try_from(failures - 2).unwrap_or(1).min(4))).await;
    }
    ApiError::Domain(DomainError::IdentityMismatch)
}
