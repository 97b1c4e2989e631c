//! A partner kiosk's whole registration for a citizen in one call (`routes/kiosk.rs`),
//! through the same journey functions and domain rules as the citizen path: entry checks,
//! personal information, special needs, family, the chosen seat (held for the payment
//! timeout) and the citizen's payment link.
//!
//! Everything checkable is checked before anything is written. The writes are the
//! citizen journey's own steps, each its own transaction as on the citizen path: saving
//! personal information asks the civil registry and starting the payment asks the bank,
//! and neither outside call may sit inside a database transaction; a seat the database
//! refuses leaves the saved answers in place, as when a citizen is refused one. The
//! application is read back only after the bank was asked (the only step that does not
//! hand back the row it saved).

use domain::DomainError;
use domain::application::{Operation, Slot, State};
use domain::ids::{BirthCertSerial, NationalId};
use domain::offices::SpecialNeeds;
use persistence::applications::ApplicationRow;
use persistence::audit::Actor;
use persistence::payments::PaymentRow;
use persistence::{PiiKind, citizens};

use super::personal::PersonalInfo;
use super::view::Family;
use super::{Target, entry, payment, personal};
use crate::error::{ApiCode, ApiError};
use crate::state::AppState;

/// A kiosk's registration, parsed.
pub struct Registration {
    pub national_id: NationalId,
    pub serial: BirthCertSerial,
    pub info: PersonalInfo,
    pub needs: SpecialNeeds,
    /// Already validated ([`personal::validate_family`]).
    pub family: Option<Family>,
    /// The office, date and shift chosen with the citizen (absent for a home visit).
    pub slot: Option<Slot>,
    /// Gateway for the citizen's payment link.
    pub gateway: String,
}

/// The application as registered, and the payment the citizen is to make (if one is due).
pub struct Registered {
    pub application: ApplicationRow,
    pub payment: Option<PaymentRow>,
}

/// Registers a citizen at a kiosk. `client_id` is the kiosk (it counts the serial guesses,
/// and the application records it as its creator).
pub async fn register(
    state: &AppState,
    client_id: &str,
    actor: Actor,
    input: Registration,
) -> Result<Registered, ApiError> {
    let Registration { national_id, serial, info, needs, family, slot, gateway } = input;
    payment::gateway(state, &gateway)?;

    // Everything checkable is checked before anything is written.
    let now = state.now();
    // The serial is a guess like a citizen's at entry: counted against the same national
    // code's budget (the kiosk is the client) before the registry's answer is compared.
    let subject = state.pii.lookup(PiiKind::NationalId, national_id.as_str());
    let (pii, rule, guesser) =
        (state.pii.clone(), crate::guard::Rule::entry(&state.config), crate::guard::Client::machine(client_id));
    let (attempt, holidays) = state
        .run_api(move |conn| {
            let attempt = crate::guard::begin(conn, &pii, &rule, &subject, &guesser, now)?;
            Ok((attempt, super::holidays_near(conn, now)?))
        })
        .await?;
    state.metrics.event("guess_checked", "entry");
    let Ok(record) = state.registry.find(&national_id).await else {
        entry::withdraw(state, attempt).await?;
        return Err(DomainError::RegistryUnavailable.into());
    };
    match domain::eligibility::check_entry(record.as_ref(), &serial, now, &state.policy, &holidays) {
        Err(DomainError::IdentityMismatch) => return Err(entry::wrong_serial(&attempt, now).await),
        other => {
            entry::release(state, attempt).await?;
            other?;
        }
    }
    if let Some(slot) = &slot {
        let office_id = slot.office_id.clone();
        let office = state.run(move |conn| persistence::offices::find(conn, &office_id)).await?;
        let office = office.filter(|o| o.active).ok_or(ApiError::Domain(DomainError::OfficeNotFound))?;
        if !needs.suits(&office.facilities()) {
            return Err(DomainError::OfficeUnsuitable.into());
        }
    }

    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let nid_enc = state.pii.seal(PiiKind::NationalId, national_id.as_str());
    let serial_enc = state.pii.seal(PiiKind::Serial, serial.number());
    let citizen = state
        .run(move |conn| {
            citizens::upsert(
                conn,
                &citizens::Entry { hashes: &hashes, nid_enc, serial_enc, serial_verified: true },
                now,
            )
        })
        .await?;
    let (row, _) =
        personal::save_personal_info(state, personal::Applicant::Citizen(citizen.id.clone()), info, actor.clone())
            .await?;
    if let Some(other) = row.created_by_client.as_deref().filter(|c| *c != client_id) {
        tracing::info!(other_kiosk = other, "a citizen registered at another kiosk is being updated");
    }
    let target = || Target::Id(row.id.clone());
    let mut latest = row.clone();
    if latest.to_domain()?.special_needs != Some(needs) {
        latest = personal::answer_special_needs(state, target(), needs, actor.clone()).await?;
    }
    if let Some(f) = family {
        latest = personal::save_family(state, target(), f, actor.clone()).await?;
    }
    if let Some(slot) = slot {
        (latest, _) = super::booking::take_slot(state, target(), slot, actor.clone()).await?;
    }
    let app = latest.to_domain()?;
    if app.state == State::PaymentPending {
        let id = latest.id.clone();
        let open = state
            .run(move |conn| persistence::payments::for_application(conn, &id))
            .await?
            .into_iter()
            .find(|p| p.is_open());
        return Ok(Registered { application: latest, payment: open });
    }
    if domain::application::check(&app, Operation::Pay, state.now(), &state.policy).is_err() {
        return Ok(Registered { application: latest, payment: None });
    }
    let started = payment::start(state, target(), &gateway, actor).await?;
    // Starting the payment moved the application on; `start` hands back only the payment.
    let id = latest.id.clone();
    let application = state
        .run(move |conn| persistence::applications::find(conn, &id))
        .await?
        .ok_or(ApiError::NotFound(ApiCode::NotFound))?;
    Ok(Registered { application, payment: Some(started) })
}
