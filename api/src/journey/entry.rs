//! Entry (docs/domain/eligibility.md): national code + serial + captcha. The docs/domain/eligibility.md checks run
//! in order; "no such person" and "serial does not match" give the same answer; alive,
//! age and the 48-hour rule are told only once the serial matched. Repeated wrong serials
//! for one national code are slowed down, then locked for a while.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{Event, transition};
use domain::ids::{BirthCertSerial, NationalId, TrackingCode};
use domain::record_ids::CitizenId;
use persistence::audit::Actor;
use persistence::{PiiKind, applications, citizens, write_tx};

use crate::error::{ApiCode, ApiError};
use crate::guard::{self, Attempt, Client, Rule};
use crate::journey::view::{ApplicationView, build_view};
use crate::state::AppState;
use crate::tokens::Audience;

/// What entry answers.
pub struct EntryOutcome {
    pub citizen_id: CitizenId,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// Whether the registry confirmed the serial (false while it is unreachable).
    pub identity_confirmed: bool,
    pub application: Option<ApplicationView>,
    pub next_step: domain::application::NextStep,
}

/// Checks a captcha answer and spends the challenge, whether the answer was right or not:
/// a replay or a second guess fails on every instance.
pub async fn spend_captcha(state: &AppState, id: &str, answer: &str) -> Result<(), ApiError> {
    let checked = check_captcha(state, id, answer)?;
    let right = checked.right;
    let fresh = state.run(move |conn| citizens::use_captcha(conn, &checked.nonce, checked.expires_at)).await?;
    if fresh && right { Ok(()) } else { Err(captcha_refused()) }
}

fn captcha_refused() -> ApiError {
    ApiError::field("captcha_answer", ApiCode::CaptchaInvalid)
}

/// A genuine, live challenge and whether the answer was right (nothing is spent yet).
fn check_captcha(state: &AppState, id: &str, answer: &str) -> Result<crate::captcha::Checked, ApiError> {
    crate::captcha::check(&state.captcha_key, id, answer, state.now()).map_err(|_| captcha_refused())
}

/// Verifies who is entering and issues a citizen token. The captcha (id, answer) is
/// checked first and spent; then the guess is counted against the national code and the
/// client ([`crate::guard`]) before the civil registry compares the serial, so parallel
/// wrong serials are bounded; then the docs/domain/eligibility.md rules. The database is visited twice:
/// before the registry is asked (captcha, guess, holidays) and after it (the citizen and
/// the application).
pub async fn enter(
    state: &AppState,
    national_id: NationalId,
    serial: BirthCertSerial,
    captcha: (&str, &str),
    client: Client,
    actor: Actor,
) -> Result<EntryOutcome, ApiError> {
    let captcha = check_captcha(state, captcha.0, captcha.1)?;
    let now = state.now();
    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let (attempt, holidays) = {
        let subject = hashes[0].clone();
        let (pii, rule, catalog) = (state.pii.clone(), Rule::entry(&state.config), state.catalog.clone());
        state
            .run_api(move |conn| {
                // The first answer spends the challenge, right or wrong; the same statement
                // reads the catalog's version (the holidays come from the catalog).
                let seen = citizens::spend_captcha(conn, &captcha.nonce, captcha.expires_at)?;
                let Some(seen) = seen.filter(|_| captcha.right) else { return Err(captcha_refused()) };
                let attempt = guard::begin(conn, &pii, &rule, &subject, &client, now)?;
                Ok((attempt, super::holidays_around(&*catalog.at_least(conn, seen)?, now)))
            })
            .await?
    };
    state.metrics.event("guess_checked", "entry");

    let record = state.registry.find(&national_id).await;
    let confirmed = match record {
        Ok(record) => match domain::eligibility::check_entry(record.as_ref(), &serial, now, &state.policy, &holidays) {
            // The guess is given back with (SQLite) or after (PostgreSQL) the citizen's write below.
            Ok(()) => true,
            Err(DomainError::IdentityMismatch) => return Err(wrong_serial(&attempt, now).await),
            Err(other) => {
                // The serial matched (alive, age and the 48-hour rule are told only then).
                release(state, attempt).await?;
                return Err(other.into());
            }
        },
        // The registry could not check the serial. Only a national code with nothing to
        // open may come in on it (its identity then stays pending and the inquiry job
        // settles it, docs/domain/eligibility.md); see the closure below.
        Err(error) => {
            state.metrics.event("registry", "unavailable_at_entry");
            tracing::warn!(national_id = %domain::mask::national_id(national_id.as_str()), %error, "entry with a serial the registry could not check");
            false
        }
    };

    let entry_hashes = hashes.clone();
    let nid_enc = state.pii.seal(PiiKind::NationalId, national_id.as_str());
    let serial_enc = state.pii.seal(PiiKind::Serial, serial.number());
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let minutes = state.config.auth.citizen_token_minutes;
    let (citizen, row, sid) = state
        .run_api(move |conn| {
            let entry = citizens::Entry {
                hashes: &entry_hashes,
                nid_enc,
                serial_enc: serial_enc.clone(),
                serial_verified: confirmed,
            };
            // The application a confirmed new serial replaces the stored one of, and the
            // session, in the citizen's transaction. After production started the
            // citizen is told to ask for a re-issue after delivery (docs/domain/application.md):
            // that refusal is returned as the inner `Err`, so the rest still commits.
            let finish =
                |conn: &mut persistence::DbConn,
                 citizen: &citizens::CitizenRow,
                 new: bool|
                 -> Result<Result<(Option<applications::ApplicationRow>, String), ApiError>, ApiError> {
                    // A citizen inserted by this transaction has no application yet.
                    let mut row = if new { None } else { applications::current_for_citizen(conn, &citizen.id)? };
                    if let Some(r) = row.as_mut().filter(|r| {
                        confirmed && pii.open(PiiKind::Serial, &r.serial_enc).ok().as_deref() != Some(serial.number())
                    }) {
                        let app = r.to_domain()?;
                        let next = match transition(&app, Event::SerialChanged, now, &policy) {
                            Ok(next) => next,
                            Err(refused) => return Ok(Err(refused.into())),
                        };
                        r.set_domain(&next);
                        r.serial_enc = serial_enc.clone();
                        applications::update(conn, r, now)?;
                        persistence::audit::append(conn, &actor, "serial_changed", Some(&r.id), None, now)?;
                    }
                    let sid = crate::tokens::open_session(conn, Audience::Citizen, citizen.id.as_str(), now, minutes)?;
                    Ok(Ok((row, sid)))
                };
            if confirmed {
                // One write transaction: the citizen, a changed serial, the session. Two
                // first entries of one national code racing make one insert a duplicate:
                // that one runs again. The guess is given back (a right serial spends no
                // failure budget and clears the failures in a row) on PostgreSQL after it,
                // in a statement of its own: it takes the client address's row, which
                // everyone behind one NAT shares, and must not hold it through a
                // transaction. SQLite has no row locks (its one writer holds the whole
                // database for the transaction anyway): there it rides in the transaction.
                let sqlite = matches!(conn, persistence::DbConn::Sqlite(_));
                // PostgreSQL: a first entry (most of them on deadline day) writes the
                // citizen and her session in one statement; a returning one, or one racing
                // another first entry, takes the transaction.
                let first = if sqlite {
                    None
                } else {
                    let id = persistence::new_id::<String>();
                    let session = crate::tokens::session_row(Audience::Citizen, &id, now, minutes);
                    citizens::enter_new_alone(conn, &entry, &session, now)?
                        .map(|citizen| Ok((citizen, None, session.id)))
                };
                let entered = match first {
                    Some(entered) => entered,
                    None => {
                        let mut tries = 0;
                        loop {
                            tries += 1;
                            let done = write_tx(conn, |conn| {
                                let (before, citizen) = citizens::upsert_in(conn, &entry, now)?;
                                let new = before.is_none();
                                // A confirmed serial replacing one the registry never checked (or
                                // another one) ends the sessions opened with it.
                                if before.is_some_and(|b| {
                                    !b.serial_verified
                                        || pii.open(PiiKind::Serial, &b.serial_enc).ok().as_deref()
                                            != Some(serial.number())
                                }) {
                                    citizens::end_other_sessions(conn, &citizen.id, None, now)?;
                                }
                                let entered = finish(conn, &citizen, new)?.map(|(row, sid)| (citizen, row, sid));
                                if sqlite {
                                    guard::release_in(conn, &attempt)?;
                                }
                                Ok::<_, ApiError>(entered)
                            });
                            match done {
                                Err(ApiError::Internal(m)) if tries < 2 && m.contains("duplicate") => continue,
                                other => break other?,
                            }
                        }
                    }
                };
                if !sqlite && let Err(e) = guard::release(conn, &attempt) {
                    // The citizen is in; the guess stays counted (one failure too many at
                    // worst, never one too few).
                    tracing::warn!(error = %e, "a right serial's guess could not be given back");
                }
                Ok(entered)
            } else {
                // Unjudged: counted against nobody, neither the citizen's entry lock nor
                // the client's budget.
                guard::withdraw(conn, &attempt)?;
                let same = |sealed: &str| pii.open(PiiKind::Serial, sealed).ok().as_deref() == Some(serial.number());
                let citizen = match citizens::enter_unchecked(conn, &entry, &same, now)? {
                    citizens::UncheckedEntry::Entered(citizen) => citizen,
                    // An application (or a live session, or a confirmed other serial) must
                    // never be opened with a serial nobody checked: try again later.
                    citizens::UncheckedEntry::Refused => return Err(DomainError::RegistryUnavailable.into()),
                };
                Ok(finish(conn, &citizen, false)?.map(|(row, sid)| (citizen, row, sid)))
            }
        })
        .await??;

    let mut claims = state.tokens.claims(Audience::Citizen, citizen.id.as_str(), now, minutes);
    claims.sid = Some(sid);
    let token = state.tokens.issue(&claims)?;
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

/// What a returning applicant proves besides the national code instead of the serial
/// (docs/domain/eligibility.md): the tracking code of a registration, or the birth date of an unpaid one.
#[derive(Debug, Clone)]
pub enum Proof {
    TrackingCode(TrackingCode),
    BirthDate(NaiveDate),
}

/// Entry by national code and tracking code (docs/domain/eligibility.md), or by
/// national code and birth date (an unpaid registration, docs/domain/eligibility.md «ویرایش ثبت نام
/// قبلی»): the same captcha, and the same guess counting and lock as the serial
/// ([`crate::guard`], [`Rule::entry`] — a wrong tracking code or birth date counts against
/// the national code's entry lock like a wrong serial). The civil registry is not asked:
/// the application's identity was checked when it was made. The token opens the citizen's
/// current application, as an entry by serial does.
pub async fn enter_with_proof(
    state: &AppState,
    national_id: NationalId,
    proof: Proof,
    captcha: (&str, &str),
    client: Client,
) -> Result<EntryOutcome, ApiError> {
    let captcha = check_captcha(state, captcha.0, captcha.1)?;
    let now = state.now();
    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let (pii, rule) = (state.pii.clone(), Rule::entry(&state.config));
    let minutes = state.config.auth.citizen_token_minutes;
    let by_tracking_code = matches!(proof, Proof::TrackingCode(_));
    let found = state
        .run_api(move |conn| {
            if !citizens::use_captcha(conn, &captcha.nonce, captcha.expires_at)? || !captcha.right {
                return Err(captcha_refused());
            }
            let attempt = guard::begin(conn, &pii, &rule, &hashes[0], &client, now)?;
            let rows = applications::find_by_nid(conn, &hashes)?;
            let matched = match &proof {
                Proof::TrackingCode(code) => {
                    rows.into_iter().find(|r| r.tracking_code.as_deref() == Some(code.as_str()))
                }
                // Only the current card cycle: an older one was paid and delivered.
                Proof::BirthDate(date) => {
                    rows.into_iter().next().filter(|r| r.personal(&pii).is_ok_and(|p| p.birth_date == *date))
                }
            };
            let Some(row) = matched else { return Ok(Err(attempt)) };
            // The right proof: it spends no failure budget and clears the failures in a row.
            guard::release(conn, &attempt)?;
            if matches!(proof, Proof::BirthDate(_)) && row.tracking_code.is_some() {
                return Err(DomainError::TrackingCodeRequired.into());
            }
            let current = applications::current_for_citizen(conn, &row.citizen_id)?.unwrap_or(row);
            let sid = crate::tokens::open_session(conn, Audience::Citizen, current.citizen_id.as_str(), now, minutes)?;
            Ok(Ok((current, sid)))
        })
        .await?;
    state.metrics.event("guess_checked", "entry");
    let (row, sid) = match found {
        Ok(found) => found,
        Err(attempt) => {
            let refused = wrong_serial(&attempt, now).await;
            return Err(match refused {
                ApiError::Domain(DomainError::IdentityMismatch) => ApiError::Domain(if by_tracking_code {
                    DomainError::TrackingCodeMismatch
                } else {
                    DomainError::DraftNotFound
                }),
                locked => locked,
            });
        }
    };
    let citizen_id = row.citizen_id.clone();
    let mut claims = state.tokens.claims(Audience::Citizen, citizen_id.as_str(), now, minutes);
    claims.sid = Some(sid);
    let token = state.tokens.issue(&claims)?;
    let view = build_view(state, row).await?;
    let identity_confirmed = view.identity_status == crate::wire::IdentityStatus::Verified;
    let next_step = view.next_step.into();
    Ok(EntryOutcome {
        citizen_id,
        token,
        expires_at: now + Duration::minutes(minutes),
        identity_confirmed,
        application: Some(view),
        next_step,
    })
}

/// Answers a wrong serial (already counted): slowed down from the third in a row, 429
/// once it locked the national code for this client.
pub async fn wrong_serial(attempt: &Attempt, now: DateTime<Utc>) -> ApiError {
    if let Some(until) = attempt.locks_until {
        return ApiError::TooManyRequests {
            code: ApiCode::EntryLocked,
            retry_after: (until - now).num_seconds().max(1) as u64,
        };
    }
    if attempt.failures >= 3 {
        tokio::time::sleep(StdDuration::from_millis(500 * u64::try_from(attempt.failures - 2).unwrap_or(1).min(4)))
            .await;
    }
    ApiError::Domain(DomainError::IdentityMismatch)
}

/// Takes back a guess the registry could not judge (it counts against nobody).
pub async fn withdraw(state: &AppState, attempt: Attempt) -> Result<(), ApiError> {
    state.run_api(move |conn| guard::withdraw(conn, &attempt)).await
}

/// Gives back a guess that turned out right.
pub async fn release(state: &AppState, attempt: Attempt) -> Result<(), ApiError> {
    state.run_api(move |conn| guard::release(conn, &attempt)).await
}
