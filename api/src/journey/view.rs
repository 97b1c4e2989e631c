//! The application as every API answer about it shows it: state, facts, the operations
//! allowed now and the next step (SPEC §3.7).

use chrono::{DateTime, NaiveDate, Utc};
use domain::Lang;
use domain::application::{allowed_operations, next_step};
use persistence::applications::ApplicationRow;
use persistence::{DbConn, PiiKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{self, OfficeSummary};

/// A family member (seed 002: father, mother, spouses).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FamilyMember {
    #[schema(example = "علی")]
    pub first_name: String,
    #[schema(example = "احمدی")]
    pub last_name: String,
    /// Validated national code, when known.
    #[schema(example = "0499370899")]
    pub national_id: Option<String>,
}

/// A child (seed 002), with a Jalali birth date.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Child {
    #[schema(example = "سارا")]
    pub first_name: String,
    #[schema(example = "احمدی")]
    pub last_name: String,
    #[schema(example = "0790419904")]
    pub national_id: Option<String>,
    #[schema(example = "1395-02-10")]
    pub birth_date_jalali: String,
}

/// Father, mother, spouses and children.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Family {
    pub father: Option<FamilyMember>,
    pub mother: Option<FamilyMember>,
    #[serde(default)]
    pub spouses: Vec<FamilyMember>,
    #[serde(default)]
    pub children: Vec<Child>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonalInfoView {
    #[schema(example = "1990-06-09")]
    pub birth_date: NaiveDate,
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    #[schema(example = "1410-11-15")]
    pub birth_date_hijri: String,
    #[schema(example = "15 ذیقعده 1410")]
    pub birth_date_hijri_label: String,
    pub gender: wire::Gender,
    pub religion: wire::Religion,
    #[schema(example = "شهرزاد")]
    pub mother_name: String,
    #[schema(example = "09145128136")]
    pub mobile: String,
    /// From the civil registry once the identity is verified.
    #[schema(example = "مریم")]
    pub first_name: Option<String>,
    #[schema(example = "احمدی")]
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppointmentView {
    pub status: wire::AppointmentStatus,
    pub office: OfficeSummary,
    #[schema(example = "2026-11-25")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-04")]
    pub date_jalali: String,
    pub shift: wire::Shift,
    /// While held: when the seat is released unless paid.
    #[schema(example = "2026-11-22T06:45:00Z")]
    pub hold_expires_at: Option<DateTime<Utc>>,
}

/// An application, with what the citizen may do now and where to go next.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplicationView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    pub state: wire::State,
    pub identity_status: wire::IdentityStatus,
    pub payment_status: wire::PaymentStatus,
    pub appointment_status: wire::AppointmentStatus,
    /// The operations allowed now (the permission table of SPEC §3.7).
    pub allowed_operations: Vec<wire::Operation>,
    pub next_step: wire::NextStep,
    /// The next step in plain words, in the request's language.
    #[schema(example = "زمان و مکان تکمیل ثبت نام را انتخاب کنید.")]
    pub next_step_text: String,
    /// Issued when the payment succeeds.
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    #[schema(example = 3)]
    pub edits_left: u8,
    pub personal_info: PersonalInfoView,
    pub special_needs: Option<wire::SpecialNeeds>,
    /// The citizen cannot leave home: a home visit instead of an office seat.
    #[schema(example = false)]
    pub home_visit: bool,
    pub family: Option<Family>,
    pub appointment: Option<AppointmentView>,
    /// Where the card will be handed over (defaults to the enrollment office).
    pub delivery_office: Option<OfficeSummary>,
    /// Last day of a no-show ban.
    #[schema(example = "2026-12-22")]
    pub no_show_ban_until: Option<NaiveDate>,
    /// A paid citizen without a booking must book before this, or the application expires.
    #[schema(example = "2026-12-07T20:29:59Z")]
    pub booking_deadline: Option<DateTime<Utc>>,
    /// The serial changed after production started: ask for a re-issue after delivery.
    #[schema(example = false)]
    pub reissue_required: bool,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:45:00Z")]
    pub updated_at: DateTime<Utc>,
}

/// Builds the view (reads the offices it mentions).
pub async fn build_view(state: &AppState, row: ApplicationRow) -> Result<ApplicationView, ApiError> {
    build_view_lang(state, row, Lang::Fa).await
}

pub async fn build_view_lang(state: &AppState, row: ApplicationRow, lang: Lang) -> Result<ApplicationView, ApiError> {
    build_view_with(state, row, Vec::new(), lang).await
}

/// Builds the view with offices the caller has already read; only the others are read.
pub async fn build_view_with(
    state: &AppState,
    row: ApplicationRow,
    mut offices: Vec<persistence::offices::OfficeRow>,
    lang: Lang,
) -> Result<ApplicationView, ApiError> {
    let mut ids: Vec<String> = row
        .slot_office_id
        .iter()
        .chain(row.delivery_office_id.iter())
        .filter(|id| !offices.iter().any(|o| &o.id == *id))
        .cloned()
        .collect();
    ids.dedup();
    if !ids.is_empty() {
        let db_state = state.db.clone();
        offices.extend(
            actix_web::web::block(move || {
                let mut conn = db_state.get()?;
                persistence::offices::find_many(&mut conn, &ids)
            })
            .await??,
        );
    }
    view_from(state, &row, &offices, lang)
}

/// Builds the view inside a transaction that already holds a connection.
pub fn build_view_in(
    state: &AppState,
    conn: &mut DbConn,
    row: &ApplicationRow,
    lang: Lang,
) -> Result<ApplicationView, ApiError> {
    let ids: Vec<String> = row.slot_office_id.iter().chain(row.delivery_office_id.iter()).cloned().collect();
    let offices = if ids.is_empty() { Vec::new() } else { persistence::offices::find_many(conn, &ids)? };
    view_from(state, row, &offices, lang)
}

fn view_from(
    state: &AppState,
    row: &ApplicationRow,
    offices: &[persistence::offices::OfficeRow],
    lang: Lang,
) -> Result<ApplicationView, ApiError> {
    let now = state.now();
    let app = row.to_domain()?;
    let office = |id: &str| offices.iter().find(|o| o.id == id).map(OfficeSummary::from);
    let appointment = app.slot.as_ref().and_then(|slot| {
        Some(AppointmentView {
            status: app.appointment.into(),
            office: office(&slot.office_id)?,
            date: slot.date,
            date_jalali: domain::calendar::JalaliDate::from_gregorian(slot.date)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            shift: slot.shift.into(),
            hold_expires_at: app.hold_expires_at,
        })
    });
    let family = row
        .family_enc
        .as_deref()
        .map(|sealed| state.pii.open(PiiKind::Family, sealed))
        .transpose()?
        .map(|json| serde_json::from_str::<Family>(&json))
        .transpose()
        .map_err(ApiError::internal)?;
    let hijri = domain::calendar::HijriDate::parse(&row.birth_date_hijri)?;
    let step = next_step(Some(&app), now);
    Ok(ApplicationView {
        id: row.id.clone(),
        state: app.state.into(),
        identity_status: app.identity.into(),
        payment_status: app.payment.into(),
        appointment_status: app.appointment.into(),
        allowed_operations: allowed_operations(&app, now, &state.policy).into_iter().map(Into::into).collect(),
        next_step: step.into(),
        next_step_text: step.describe(lang).to_owned(),
        tracking_code: row.tracking_code.clone(),
        edits_left: app.edits_left,
        personal_info: PersonalInfoView {
            birth_date: row.birth_date,
            birth_date_jalali: row.birth_date_jalali.clone(),
            birth_date_hijri: row.birth_date_hijri.clone(),
            birth_date_hijri_label: hijri.label_fa(),
            gender: domain::person::Gender::parse(&row.gender).map(Into::into).unwrap_or(wire::Gender::Female),
            religion: domain::person::Religion::parse(&row.religion).map(Into::into).unwrap_or(wire::Religion::Other),
            mother_name: row.mother_name.clone(),
            mobile: state.pii.open(PiiKind::Mobile, &row.mobile_enc)?,
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
        },
        special_needs: app.special_needs.map(Into::into),
        home_visit: app.home_visit(),
        family,
        appointment,
        delivery_office: app.effective_delivery_office().and_then(office),
        no_show_ban_until: app.no_show_ban_until,
        booking_deadline: app.booking_deadline(&state.policy),
        reissue_required: app.reissue_required,
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
    })
}
