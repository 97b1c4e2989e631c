//! The enrollment receipt (docs/domain/back-office.md «تکمیل ثبت نام»: «پس از پایان ثبت نام رسیدی در اختیار
//! متقاضی قرار خواهد گرفت که می بایست آن را تا زمان تحویل کارت نزد خود نگاه دارد»): issued
//! once the office has completed the enrollment, to the office and to the citizen, with the
//! office the card will be handed over at and the day it is expected there.
//!
//! It is laid out as a [`Sheet`] like the registration receipt — same page, same PDF, same QR
//! code — and signed the same way, as its own kind ([`ReceiptKind::Enrollment`]): its link
//! carries `k=enrollment`, so a registration receipt's signature never passes for it.

use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{Application, Operation, check, expected_ready_on};
use domain::calendar::{JalaliDate, tehran, tehran_date};
use domain::record_ids::ApplicationId;
use domain::record_ids::CitizenId;
use domain::record_ids::OfficeId;
use persistence::applications::{self, ApplicationRow};
use persistence::back_office::{self, EnrollmentRow};
use persistence::offices::{self, OfficeRow};
use persistence::{DbConn, PiiKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Bilingual, NONE_FA, ReceiptKind, Sheet, SheetField, SheetSection, slashed, verify_url_of};
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{self, OfficeSummary};

/// «رسید تکمیل ثبت نام کارت هوشمند ملی»
pub const TITLE: &str = "رسید تکمیل ثبت نام کارت هوشمند ملی";

/// The enrollment receipt (docs/domain/back-office.md). Codes hold ASCII digits; the printable page and the
/// PDF show them with Persian digits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnrollmentReceiptView {
    #[schema(example = "رسید تکمیل ثبت نام کارت هوشمند ملی")]
    pub title: String,
    #[schema(example = "4973201670")]
    pub tracking_code: String,
    pub state: wire::State,
    #[schema(example = "2580200606")]
    pub national_id: String,
    /// From the civil registry once the identity is verified.
    #[schema(example = "مریم")]
    pub first_name: Option<String>,
    #[schema(example = "احمدی")]
    pub last_name: Option<String>,
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    /// Where the enrollment was completed.
    pub enrollment_office: OfficeSummary,
    /// The citizen was enrolled at home (a home visit).
    #[schema(example = false)]
    pub home_visit: bool,
    #[schema(example = "2026-11-25T05:40:00Z")]
    pub enrolled_at: DateTime<Utc>,
    #[schema(example = "1405-09-04")]
    pub enrolled_on_jalali: String,
    /// The capture system's reference for the photo and fingerprints.
    #[schema(example = "CAP-2026-000123")]
    pub capture_reference: String,
    /// Where the card will be handed over (it can still change until production starts).
    pub delivery_office: Option<OfficeSummary>,
    /// When the card is expected at the delivery office: the enrollment day plus
    /// `policy.card_ready_days` (docs/domain/back-office.md: about 20 days; it may be sooner or later).
    #[schema(example = "2026-12-15")]
    pub expected_ready_on: NaiveDate,
    #[schema(example = "1405-09-24")]
    pub expected_ready_on_jalali: String,
    /// «نکات مهم»: keep the receipt, how long issuing takes, how to follow up, how delivery works.
    pub notes: Vec<Bilingual>,
    #[schema(example = "2026-11-25T06:00:00Z")]
    pub issued_at: DateTime<Utc>,
    #[schema(example = "1405-09-04")]
    pub issued_at_jalali: String,
    #[schema(example = "09:30")]
    pub issued_at_tehran_time: String,
    /// Signed link (the QR code on the printout) to check this receipt; see
    /// `GET /api/v1/public/receipts/verify` with `k=enrollment`.
    #[schema(
        example = "https://ncr.example.ir/api/v1/public/receipts/verify?t=4973201670&d=2026-11-25&k=enrollment&s=uN3dY1dSg0a6Jm6L5Pj0k3Jq2cVZ7W0o2s9k3ZcQm8u1f0oBq6Yc5d8mN7J1kQ2gVQ4xR0hX9sQ1yK5a3bC2dA"
    )]
    pub verify_url: String,
}

/// An enrollment receipt ready to render in any format.
#[derive(Debug, Clone)]
pub struct EnrollmentReceipt {
    pub application_id: ApplicationId,
    pub view: EnrollmentReceiptView,
    pub sheet: Sheet,
}

impl EnrollmentReceipt {
    /// `enrollment-receipt-<tracking code>.pdf`
    pub fn pdf_filename(&self) -> String {
        format!("enrollment-receipt-{}.pdf", self.view.tracking_code)
    }
}

struct Sources {
    row: ApplicationRow,
    app: Application,
    enrollment: EnrollmentRow,
    offices: Vec<OfficeRow>,
}

/// The citizen's enrollment receipt, once the office has completed the enrollment
/// (otherwise 409 `enrollment_not_completed`).
pub async fn for_citizen(state: &AppState, citizen_id: &CitizenId) -> Result<EnrollmentReceipt, ApiError> {
    let id = citizen_id.to_owned();
    let now = state.now();
    let policy = state.policy.clone();
    let sources = state
        .run_api(move |conn| {
            let row = applications::current_for_citizen(conn, &id)?
                .ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
            let app = row.to_domain()?;
            check(&app, Operation::PrintEnrollmentReceipt, now, &policy)?;
            load(conn, row, app)
        })
        .await?;
    build(state, sources, now)
}

/// The enrollment receipt of an application of this office — the office that enrolled the
/// citizen or the one the card is to be handed over at (any other office: 404, as if it did
/// not exist). `read` records the staff read in the audit log in the same turn.
pub async fn for_office<F>(
    state: &AppState,
    office_id: &OfficeId,
    tracking_code: &str,
    read: F,
) -> Result<EnrollmentReceipt, ApiError>
where
    F: FnOnce(&mut DbConn, &ApplicationRow) -> Result<(), ApiError> + Send + 'static,
{
    let (office, code) = (office_id.to_owned(), tracking_code.to_owned());
    let now = state.now();
    let policy = state.policy.clone();
    let sources = state
        .run_api(move |conn| {
            let not_found = || ApiError::Domain(DomainError::ApplicationNotFound);
            let row = applications::find_by_tracking_code(conn, &code)?.ok_or_else(not_found)?;
            let app = row.to_domain()?;
            let enrolled_here = back_office::enrollment(conn, &row.id)?.is_some_and(|e| e.office_id == office);
            let ours = enrolled_here
                || row.slot_office_id.as_ref() == Some(&office)
                || app.effective_delivery_office() == Some(&office);
            if !ours {
                return Err(not_found());
            }
            read(conn, &row)?;
            check(&app, Operation::PrintEnrollmentReceipt, now, &policy)?;
            load(conn, row, app)
        })
        .await?;
    build(state, sources, now)
}

fn load(conn: &mut DbConn, row: ApplicationRow, app: Application) -> Result<Sources, ApiError> {
    let enrollment =
        back_office::enrollment(conn, &row.id)?.ok_or(ApiError::Domain(DomainError::EnrollmentNotCompleted))?;
    let ids: Vec<OfficeId> =
        std::iter::once(enrollment.office_id.clone()).chain(app.effective_delivery_office().cloned()).collect();
    let offices = offices::find_many(conn, &ids)?;
    Ok(Sources { row, app, enrollment, offices })
}

/// The notes of the receipt, in the original guide's words (docs/domain/back-office.md «تکمیل ثبت نام», «صدور کارت», «تحویل کارت»).
pub fn notes(public_url: &str, ready_days: u32) -> Vec<Bilingual> {
    let site = public_url.split_once("://").map_or(public_url, |(_, rest)| rest).trim_end_matches('/');
    let days_fa = domain::text::persian_digits(&ready_days.to_string());
    let item = |fa: String, en: String| Bilingual { fa, en };
    vec![
        item(
            "این رسید را تا زمان تحویل کارت نزد خود نگاه دارید.".into(),
            "Keep this receipt until your card is handed over.".into(),
        ),
        item(
            format!(
                "فرآیند صدور کارت به طور متوسط حدود {days_fa} روز طول می‌کشد و ممکن است با توجه به حجم درخواست‌ها کوتاه‌تر یا طولانی‌تر شود."
            ),
            format!(
                "Issuing the card takes about {ready_days} days on average; it may be shorter or longer depending on demand."
            ),
        ),
        item(
            format!(
                "از آخرین وضعیت صدور کارت از بخش «مشاهده وضعیت» همین سایت ({site}) یا با شماره‌گیری *4*6090# مطلع شوید."
            ),
            format!("Follow the card's status under \"status\" on this website ({site}) or by dialling *4*6090#."),
        ),
        item(
            "برای دریافت کارت شخصا با این رسید و مدارک هویتی به دفتر تحویل کارت مراجعه کنید؛ کارت تنها پس از تطبیق اثر انگشت شما با اثر انگشت درج شده در تراشه کارت تحویل می‌شود.".into(),
            "Collect the card in person at the delivery office with this receipt and your identity documents; it is handed over only after your fingerprint matches the one on the card's chip.".into(),
        ),
    ]
}

fn jalali(d: NaiveDate) -> String {
    JalaliDate::from_gregorian(d).map(|d| d.to_string()).unwrap_or_default()
}

fn build(state: &AppState, s: Sources, now: DateTime<Utc>) -> Result<EnrollmentReceipt, ApiError> {
    let Sources { row, app, enrollment, offices } = s;
    let tracking_code = row.tracking_code.clone().ok_or(ApiError::Domain(DomainError::PaymentRequired))?;
    let office = |id: &OfficeId| offices.iter().find(|o| &o.id == id);
    let enrollment_office = office(&enrollment.office_id)
        .map(OfficeSummary::from)
        .ok_or_else(|| ApiError::internal("the enrollment office is missing"))?;
    let delivery = app.effective_delivery_office().and_then(office).map(OfficeSummary::from);

    let national_id = state.pii.open(PiiKind::NationalId, &row.nid_enc)?;
    let personal = row.personal(&state.pii)?;
    let enrolled_at = enrollment.completed_at.and_utc();
    let enrolled_on = tehran_date(enrolled_at);
    let ready_on = expected_ready_on(enrolled_on, &state.policy);

    let issued_on = tehran_date(now);
    let view = EnrollmentReceiptView {
        title: TITLE.to_owned(),
        tracking_code: tracking_code.clone(),
        state: app.state.into(),
        national_id,
        first_name: personal.first_name.clone(),
        last_name: personal.last_name.clone(),
        birth_date_jalali: personal.birth_date_jalali.clone(),
        enrollment_office,
        home_visit: app.home_visit(),
        enrolled_at,
        enrolled_on_jalali: jalali(enrolled_on),
        capture_reference: enrollment.capture_reference.clone(),
        delivery_office: delivery,
        expected_ready_on: ready_on,
        expected_ready_on_jalali: jalali(ready_on),
        notes: notes(&state.config.public_url, state.policy.card_ready_days),
        issued_at: now,
        issued_at_jalali: jalali(issued_on),
        issued_at_tehran_time: now.with_timezone(&tehran()).format("%H:%M").to_string(),
        verify_url: verify_url_of(state, ReceiptKind::Enrollment, &tracking_code, issued_on),
    };
    let sheet = sheet(&view);
    Ok(EnrollmentReceipt { application_id: row.id, view, sheet })
}

/// The receipt laid out for the page and the PDF.
pub fn sheet(v: &EnrollmentReceiptView) -> Sheet {
    let f = SheetField::new;
    let name = match (&v.first_name, &v.last_name) {
        (Some(first), Some(last)) => format!("{first} {last}"),
        (Some(one), None) | (None, Some(one)) => one.clone(),
        (None, None) => NONE_FA.into(),
    };
    let enrolled_time = v.enrolled_at.with_timezone(&tehran()).format("%H:%M").to_string();
    let enrollment_place = if v.home_visit {
        format!("{} (مراجعه در منزل)", v.enrollment_office.name)
    } else {
        v.enrollment_office.name.clone()
    };
    let d = v.delivery_office.as_ref();
    Sheet {
        title: v.title.clone(),
        code: v.tracking_code.clone(),
        issued_at: format!("{} {}", slashed(&v.issued_at_jalali), v.issued_at_tehran_time),
        sections: vec![
            SheetSection {
                heading: "مشخصات متقاضی".into(),
                fields: vec![
                    f("national-id", "شماره ملی", &v.national_id),
                    f("tracking-code", "شماره پیگیری", &v.tracking_code),
                    f("full-name", "نام و نام خانوادگی", &name),
                    f("birth-date-jalali", "تاریخ تولد شمسی", &slashed(&v.birth_date_jalali)),
                ],
            },
            SheetSection {
                heading: "تکمیل ثبت نام".into(),
                fields: vec![
                    f("enrollment-office", "محل تکمیل ثبت نام", &enrollment_place).wide(),
                    f(
                        "enrolled-at",
                        "تاریخ تکمیل ثبت نام",
                        &format!("{} {enrolled_time}", slashed(&v.enrolled_on_jalali)),
                    ),
                    f("capture-reference", "شماره مرجع اخذ اثر انگشت و تصویر", &v.capture_reference),
                ],
            },
            SheetSection {
                heading: "تحویل کارت".into(),
                fields: vec![
                    f("delivery-office", "دفتر تحویل کارت", d.map_or(NONE_FA, |o| o.name.as_str())).wide(),
                    f("delivery-address", "نشانی دفتر تحویل کارت", d.map_or(NONE_FA, |o| o.address.as_str())).wide(),
                    f("delivery-phone", "تلفن دفتر تحویل کارت", d.map_or(NONE_FA, |o| o.phone.as_str())),
                    f("expected-ready-date", "تاریخ تقریبی آماده شدن کارت", &slashed(&v.expected_ready_on_jalali)),
                ],
            },
        ],
        list_heading: "نکات مهم".into(),
        list: v.notes.iter().map(|n| n.fa.clone()).collect(),
        verify_url: v.verify_url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notes_quote_seed_002_and_name_the_days_and_the_site() {
        let notes = notes("https://ncr.example.ir/", 20);
        assert_eq!(notes.len(), 4);
        assert!(notes[0].fa.contains("تا زمان تحویل کارت نزد خود نگاه دارید"), "{}", notes[0].fa);
        assert!(notes[1].fa.contains("حدود ۲۰ روز") && notes[1].en.contains("about 20 days"));
        assert!(notes[2].fa.contains("(ncr.example.ir)") && notes[2].fa.contains("*4*6090#"));
        assert!(notes[3].fa.contains("اثر انگشت") && notes[3].en.contains("fingerprint"));
    }
}
