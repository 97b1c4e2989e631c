//! The application as every API answer about it shows it: state, facts, the operations
//! allowed now and the next step (docs/domain/application.md).

use chrono::{DateTime, NaiveDate, Utc};
use domain::Lang;
use domain::application::{allowed_operations, next_step, next_step_text};
use domain::record_ids::OfficeId;
use persistence::applications::ApplicationRow;
use persistence::{DbConn, PiiKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{self, OfficeSummary};

/// A family member (docs/domain/application.md: father, mother, spouses).
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

/// A child (docs/domain/application.md), with a Jalali birth date.
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

/// Where a home visit goes, as the citizen gave it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HomeVisitView {
    #[schema(example = "تهران - تجریش - خیابان شهید دربندی - کوچه ۵ - پلاک ۱۲ - طبقه دوم")]
    pub address: String,
    #[schema(example = "1964713811")]
    pub postal_code: String,
    #[schema(example = "02122712345")]
    pub landline: String,
    #[schema(example = "زنگ دوم؛ لطفا قبل از مراجعه تماس بگیرید.")]
    pub notes: Option<String>,
    /// The city whose home-visit offices see the request (the landline's area code).
    #[schema(example = "021")]
    pub city_code: String,
}

/// An earlier card cycle of the same citizen (issue 19: the history of cycles).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CycleView {
    /// 1 for the first application, then one more for each new cycle.
    #[schema(example = 1)]
    pub cycle: i32,
    pub state: wire::State,
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    /// Set when that cycle was itself a re-issue.
    pub reissue_reason: Option<wire::ReissueReason>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-12-20T08:10:00Z")]
    pub updated_at: DateTime<Utc>,
}

/// A re-issue cycle: why, and the card it replaces.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReissueView {
    pub reason: wire::ReissueReason,
    /// The tracking code of the cycle whose delivered card this one replaces.
    #[schema(example = "4973201670")]
    pub previous_tracking_code: Option<String>,
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
    /// The operations allowed now (the permission table of docs/domain/application.md).
    pub allowed_operations: Vec<wire::Operation>,
    pub next_step: wire::NextStep,
    /// The next step in plain words, in the request's language.
    #[schema(example = "زمان و مکان تکمیل ثبت نام را انتخاب کنید.")]
    pub next_step_text: String,
    /// Issued when the payment succeeds.
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    /// The card cycle: 1, then one more after a cancelled application or a re-issue.
    #[schema(example = 1)]
    pub cycle: i32,
    /// This cycle re-issues a delivered card (`POST /api/v1/citizen/application/reissue`).
    pub reissue: Option<ReissueView>,
    /// The citizen's earlier cycles, the latest first (empty for a first application).
    pub history: Vec<CycleView>,
    #[schema(example = 3)]
    pub edits_left: u8,
    pub personal_info: PersonalInfoView,
    pub special_needs: Option<wire::SpecialNeeds>,
    /// The citizen cannot leave home: a home visit instead of an office seat.
    #[schema(example = false)]
    pub home_visit: bool,
    /// The address of the home visit, once given (`PUT /api/v1/citizen/application/home-visit`).
    pub home_visit_address: Option<HomeVisitView>,
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
    let mut ids: Vec<OfficeId> = row
        .slot_office_id
        .iter()
        .chain(row.delivery_office_id.iter())
        .filter(|id| !offices.iter().any(|o| &o.id == *id))
        .cloned()
        .collect();
    ids.dedup();
    let wants_visit = row.can_leave_home == Some(false) && row.home_visit_address;
    let wants_history = row.cycle > 1;
    let mut visit = None;
    let mut history = Vec::new();
    if !ids.is_empty() || wants_visit || wants_history {
        let (id, citizen_id) = (row.id.clone(), row.citizen_id.clone());
        let catalog = state.catalog.clone();
        let (found, v, h) = state
            .run(move |conn| {
                let found = if ids.is_empty() { Vec::new() } else { catalog.get(conn)?.offices(&ids) };
                let v = if wants_visit { persistence::home_visits::find(conn, &id)? } else { None };
                let h =
                    if wants_history { persistence::applications::cycles_of(conn, &citizen_id)? } else { Vec::new() };
                Ok((found, v, h))
            })
            .await?;
        offices.extend(found);
        visit = v;
        history = h;
    }
    view_from(state, &row, &offices, visit, &history, lang)
}

/// Builds the view inside a transaction that already holds a connection.
pub fn build_view_in(
    state: &AppState,
    conn: &mut DbConn,
    row: &ApplicationRow,
    lang: Lang,
) -> Result<ApplicationView, ApiError> {
    let ids: Vec<OfficeId> = row.slot_office_id.iter().chain(row.delivery_office_id.iter()).cloned().collect();
    let offices = if ids.is_empty() { Vec::new() } else { state.catalog.get(conn)?.offices(&ids) };
    let visit = super::home_visit::find(conn, row)?;
    let history = if row.cycle > 1 { persistence::applications::cycles_of(conn, &row.citizen_id)? } else { Vec::new() };
    view_from(state, row, &offices, visit, &history, lang)
}

fn view_from(
    state: &AppState,
    row: &ApplicationRow,
    offices: &[persistence::offices::OfficeRow],
    visit: Option<persistence::home_visits::HomeVisitRow>,
    cycles: &[ApplicationRow],
    lang: Lang,
) -> Result<ApplicationView, ApiError> {
    let now = state.now();
    let app = row.to_domain()?;
    let office = |id: &OfficeId| offices.iter().find(|o| &o.id == id).map(OfficeSummary::from);
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
    let p = row.personal(&state.pii)?;
    let hijri = domain::calendar::HijriDate::parse(&p.birth_date_hijri)?;
    let step = next_step(Some(&app), now);
    let mut history = cycles
        .iter()
        .filter(|c| c.cycle < row.cycle)
        .map(|c| {
            let a = c.to_domain()?;
            Ok(CycleView {
                cycle: c.cycle,
                state: a.state.into(),
                tracking_code: c.tracking_code.clone(),
                reissue_reason: a.reissue.map(Into::into),
                created_at: c.created_at.and_utc(),
                updated_at: c.updated_at.and_utc(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    history.sort_by_key(|c| std::cmp::Reverse(c.cycle));
    let reissue = app.reissue.map(|reason| ReissueView {
        reason: reason.into(),
        previous_tracking_code: row
            .previous_application_id
            .as_deref()
            .and_then(|id| cycles.iter().find(|c| c.id == id))
            .and_then(|c| c.tracking_code.clone()),
    });
    let home_visit_address = match visit.filter(|_| app.home_visit()) {
        Some(v) => {
            let d = v.details(&state.pii)?;
            Some(HomeVisitView {
                address: d.address,
                postal_code: d.postal_code,
                landline: d.landline,
                notes: d.notes,
                city_code: v.city_code,
            })
        }
        None => None,
    };
    Ok(ApplicationView {
        id: row.id.clone().into(),
        state: app.state.into(),
        identity_status: app.identity.into(),
        payment_status: app.payment.into(),
        appointment_status: app.appointment.into(),
        allowed_operations: allowed_operations(&app, now, &state.policy).into_iter().map(Into::into).collect(),
        next_step: step.into(),
        next_step_text: next_step_text(Some(&app), now, lang),
        tracking_code: row.tracking_code.clone(),
        cycle: row.cycle,
        reissue,
        history,
        edits_left: app.edits_left,
        personal_info: PersonalInfoView {
            birth_date: p.birth_date,
            birth_date_hijri_label: hijri.label_fa(),
            gender: domain::person::Gender::parse(&p.gender).map(Into::into).unwrap_or(wire::Gender::Female),
            religion: domain::person::Religion::parse(&p.religion).map(Into::into).unwrap_or(wire::Religion::Other),
            mobile: state.pii.open(PiiKind::Mobile, &row.mobile_enc)?,
            birth_date_jalali: p.birth_date_jalali,
            birth_date_hijri: p.birth_date_hijri,
            mother_name: p.mother_name,
            first_name: p.first_name,
            last_name: p.last_name,
        },
        special_needs: app.special_needs.map(Into::into),
        home_visit: app.home_visit(),
        home_visit_address,
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
