//! The registration receipt (docs/domain/payments.md «نتیجه ثبت نام کارت هوشمند ملی», docs/domain/payments.md): JSON,
//! a printable right-to-left HTML page, a PDF, and an e-mail carrying both.
//!
//! Everything is built from one [`Receipt`]: the application row, its verified payment and
//! the offices it names, with personal identifiers opened from their sealed columns. Every
//! receipt carries a signed `verify_url` (also its QR code), so an office can check a
//! printed receipt: `…/api/v1/public/receipts/verify?t=<tracking code>&d=<issued on>&s=<signature>`,
//! the signature being Ed25519 by the server's active signing key (see `auth::receipt_message`).

pub mod enrollment;

use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{Application, Operation, check};
use domain::calendar::{HijriDate, JalaliDate, tehran, tehran_date};
use domain::record_ids::ApplicationId;
use domain::record_ids::CitizenId;
use domain::record_ids::OfficeId;
use persistence::applications::{self, ApplicationRow};
use persistence::offices::{self, OfficeRow};
use persistence::payments::{self, PaymentRow};
use persistence::{DbConn, PiiKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiCode, ApiError};
use crate::state::AppState;
pub use crate::tokens::ReceiptKind;
use crate::wire::{self, OfficeSummary};

// The layout and its renderers (HTML page, PDF, QR code) are the `receipt` crate's: plain
// strings in, bytes out. Re-exported so `crate::receipt::…` names one place.
pub use ::receipt::{
    BOLD_TTF, NONE_FA, REGULAR_TTF, ReceiptDoc, Sheet, SheetField, SheetSection, TITLE, font, html, pdf, slashed,
};

/// A text in Persian and English.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Bilingual {
    #[schema(example = "هنگام مراجعه برای تکمیل ثبت نام برای عکسبرداری آماده باشید.")]
    pub fa: String,
    #[schema(example = "Be ready to have your photo taken when you come to complete the enrollment.")]
    pub en: String,
}

/// The enrollment appointment on a receipt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptEnrollment {
    pub office: OfficeSummary,
    #[schema(example = "2026-11-25")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-04")]
    pub date_jalali: String,
    pub shift: wire::Shift,
    /// «صبح» / «عصر»
    #[schema(example = "صبح")]
    pub shift_label: String,
    pub status: wire::AppointmentStatus,
}

/// The card-fee payment on a receipt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptPayment {
    pub status: wire::PaymentStatus,
    /// «موفق» once paid (docs/domain/payments.md «وضعیت پرداخت»).
    #[schema(example = "موفق")]
    pub status_label: String,
    /// The bank's reference number.
    #[schema(example = "731906284415")]
    pub reference: Option<String>,
    /// Rials.
    #[schema(example = 200000)]
    pub amount: Option<i64>,
    #[schema(example = "sandbox")]
    pub gateway: Option<String>,
    #[schema(example = "2026-11-22T06:35:00Z")]
    pub paid_at: Option<DateTime<Utc>>,
}

/// The registration receipt (docs/domain/payments.md «نتیجه ثبت نام کارت هوشمند ملی»). Codes hold ASCII
/// digits; the printable page and the PDF show them with Persian digits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptView {
    #[schema(example = "نتیجه ثبت نام کارت هوشمند ملی")]
    pub title: String,
    #[schema(example = "4973201670")]
    pub tracking_code: String,
    pub state: wire::State,
    #[schema(example = "2580200606")]
    pub national_id: String,
    /// The birth-certificate serial as entered.
    #[schema(example = "883810")]
    pub serial: String,
    #[schema(example = "1990-06-09")]
    pub birth_date: NaiveDate,
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    #[schema(example = "1410-11-15")]
    pub birth_date_hijri: String,
    #[schema(example = "15 ذیقعده 1410")]
    pub birth_date_hijri_label: String,
    pub gender: wire::Gender,
    #[schema(example = "زن")]
    pub gender_label: String,
    pub religion: wire::Religion,
    #[schema(example = "اسلام")]
    pub religion_label: String,
    #[schema(example = "شهرزاد")]
    pub mother_name: String,
    #[schema(example = "09145128136")]
    pub mobile: String,
    /// The chosen office, date and shift; absent for a home visit or while a lost seat is re-booked.
    pub enrollment: Option<ReceiptEnrollment>,
    /// The citizen cannot leave home: enrollment comes to them.
    #[schema(example = false)]
    pub home_visit: bool,
    /// Where a home visit goes (absent for an office appointment).
    #[schema(example = "تهران - تجریش - خیابان شهید دربندی - کوچه ۵ - پلاک ۱۲")]
    pub home_visit_address: Option<String>,
    pub payment: ReceiptPayment,
    /// Where the card will be handed over (defaults to the enrollment office).
    pub delivery_office: Option<OfficeSummary>,
    /// «پیش نیاز تکمیل ثبت نام»: what to bring, what to expect, how to follow up.
    pub prerequisites: Vec<Bilingual>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub issued_at: DateTime<Utc>,
    /// The Tehran date of issue, Jalali `YYYY-MM-DD` like every `*_jalali` date.
    #[schema(example = "1405-09-01")]
    pub issued_at_jalali: String,
    /// The Tehran time of issue, `HH:MM`.
    #[schema(example = "10:00")]
    pub issued_at_tehran_time: String,
    /// Signed link an office opens (the QR code on the printout) to check this receipt; see
    /// `GET /api/v1/public/receipts/verify`.
    #[schema(
        example = "https://ncr.example.ir/api/v1/public/receipts/verify?t=4973201670&d=2026-11-22&s=uN3dY1dSg0a6Jm6L5Pj0k3Jq2cVZ7W0o2s9k3ZcQm8u1f0oBq6Yc5d8mN7J1kQ2gVQ4xR0hX9sQ1yK5a3bC2dA"
    )]
    pub verify_url: String,
}

/// A receipt ready to render in any format.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub application_id: ApplicationId,
    pub view: ReceiptView,
    pub doc: ReceiptDoc,
    /// The booked appointment as an iCalendar file (attached to the e-mail), if booked.
    pub ics: Option<String>,
}

impl Receipt {
    /// `receipt-<tracking code>.pdf`
    pub fn pdf_filename(&self) -> String {
        format!("receipt-{}.pdf", self.view.tracking_code)
    }
}

/// What a receipt is built from, read in one go.
struct Sources {
    row: ApplicationRow,
    app: Application,
    payment: Option<PaymentRow>,
    offices: Vec<OfficeRow>,
    visit: Option<persistence::home_visits::HomeVisitRow>,
}

/// The citizen's receipt, if `op` (print, save as file, e-mail) is allowed now — otherwise
/// the domain's reason (e.g. 409 `payment_required`). `current` reads the citizen's current
/// application (at the time given), first in the request's turn.
pub async fn for_citizen<F>(state: &AppState, current: F, op: Operation) -> Result<Receipt, ApiError>
where
    F: FnOnce(&mut DbConn, DateTime<Utc>) -> Result<Option<ApplicationRow>, ApiError> + Send + 'static,
{
    let now = state.now();
    let policy = state.policy.clone();
    let catalog = state.catalog.clone();
    let sources = state
        .run_api(move |conn| {
            let row = current(conn, now)?.ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
            let app = row.to_domain()?;
            check(&app, op, now, &policy)?;
            load_sources(conn, &catalog, row, app)
        })
        .await?;
    build(state, sources, now)
}

fn load_sources(
    conn: &mut DbConn,
    catalog: &persistence::catalog::Catalog,
    row: ApplicationRow,
    app: Application,
) -> Result<Sources, ApiError> {
    let payment =
        payments::for_application(conn, &row.id)?.into_iter().find(|p| p.status == payments::PaymentStatus::Verified);
    let ids: Vec<OfficeId> =
        app.slot.iter().map(|s| s.office_id.clone()).chain(app.effective_delivery_office().cloned()).collect();
    let offices = if ids.is_empty() { Vec::new() } else { catalog.get(conn)?.offices(&ids) };
    let visit = persistence::home_visits::for_application(conn, &row)?;
    Ok(Sources { row, app, payment, offices, visit })
}

/// The signed verification link of a registration receipt issued on `issued_on`.
pub fn verify_url(state: &AppState, tracking_code: &str, issued_on: NaiveDate) -> String {
    verify_url_of(state, ReceiptKind::Registration, tracking_code, issued_on)
}

/// The signed verification link of a receipt of `kind`: an enrollment receipt's link adds
/// `k=enrollment` and carries that kind's signature.
pub fn verify_url_of(state: &AppState, kind: ReceiptKind, tracking_code: &str, issued_on: NaiveDate) -> String {
    let d = issued_on.format("%Y-%m-%d").to_string();
    let s = state.tokens.sign_receipt_of(kind, tracking_code, &d);
    let k = match kind {
        ReceiptKind::Registration => "",
        ReceiptKind::Enrollment => "&k=enrollment",
    };
    format!(
        "{}/api/v1/public/receipts/verify?t={tracking_code}&d={d}{k}&s={s}",
        state.config.public_url.trim_end_matches('/')
    )
}

/// The prerequisites list of the registration receipt (docs/domain/payments.md); the last item names this service's site.
pub fn prerequisites(public_url: &str) -> Vec<Bilingual> {
    let site = public_url.split_once("://").map_or(public_url, |(_, rest)| rest).trim_end_matches('/');
    let item = |fa: String, en: String| Bilingual { fa, en };
    vec![
        item(
            "برای تکمیل ثبت نام شخصا با در دست داشتن شناسنامه و شماره ملی به دفتر تکمیل ثبت نام مراجعه کنید.".into(),
            "Come in person to the enrollment office with your birth certificate and your national code.".into(),
        ),
        item(
            "هنگام مراجعه برای تکمیل ثبت نام برای عکسبرداری آماده باشید.".into(),
            "Be ready to have your photo taken when you come to complete the enrollment.".into(),
        ),
        item(
            "هنگام مراجعه به دفتر تکمیل ثبت نام برای اسکن اثر انگشتان آماده باشید.".into(),
            "Be ready to have your fingerprints scanned at the enrollment office.".into(),
        ),
        item(
            "از این لحظه به بعد می‌توانید با شماره‌گیری *4*6090# در موبایل درخواست خود را پیگیری نمایید.".into(),
            "From now on you can follow your application by dialling *4*6090# on your mobile.".into(),
        ),
        item(
            format!("پیگیری درخواست همچنین از طریق همین سایت ({site}) امکان‌پذیر است."),
            format!("You can also follow your application on this website ({site})."),
        ),
    ]
}

fn build(state: &AppState, s: Sources, now: DateTime<Utc>) -> Result<Receipt, ApiError> {
    let Sources { row, app, payment, offices, visit } = s;
    let tracking_code = row.tracking_code.clone().ok_or(ApiError::Domain(DomainError::PaymentRequired))?;
    let office = |id: &OfficeId| offices.iter().find(|o| &o.id == id);

    let national_id = state.pii.open(PiiKind::NationalId, &row.nid_enc)?;
    let serial = state.pii.open(PiiKind::Serial, &row.serial_enc)?;
    let mobile = state.pii.open(PiiKind::Mobile, &row.mobile_enc)?;

    let personal = row.personal(&state.pii)?;
    let gender = domain::person::Gender::parse(&personal.gender)
        .ok_or_else(|| ApiError::internal(format!("unknown gender {:?}", personal.gender)))?;
    let religion = domain::person::Religion::parse(&personal.religion).unwrap_or(domain::person::Religion::Other);
    let hijri = HijriDate::parse(&personal.birth_date_hijri)?;

    let enrollment = app.slot.as_ref().and_then(|slot| {
        let o = office(&slot.office_id)?;
        Some(ReceiptEnrollment {
            office: OfficeSummary::from(o),
            date: slot.date,
            date_jalali: JalaliDate::from_gregorian(slot.date).map(|d| d.to_string()).unwrap_or_default(),
            shift: slot.shift.into(),
            shift_label: slot.shift.label_fa().to_owned(),
            status: app.appointment.into(),
        })
    });
    let delivery = app.effective_delivery_office().and_then(office);

    let issued_local = now.with_timezone(&tehran());
    let issued_on = tehran_date(now);
    let issued_at_jalali = JalaliDate::from_gregorian(issued_on).map(|d| d.to_string()).unwrap_or_default();
    let issued_at_tehran_time = issued_local.format("%H:%M").to_string();
    let verify_url = verify_url(state, &tracking_code, issued_on);
    let mut prerequisites = prerequisites(&state.config.public_url);
    let home_address = match visit.filter(|_| app.home_visit()) {
        Some(v) => Some(v.details(&state.pii)?.address),
        None => None,
    };
    if app.home_visit() {
        prerequisites[0] = Bilingual {
            fa: "برای تکمیل ثبت نام به منزل شما مراجعه می‌کنیم؛ در زمان مراجعه با شناسنامه و شماره ملی در منزل باشید."
                .into(),
            en: "We will visit you at home to complete the enrollment; be at home with your birth certificate and national code at the visit."
                .into(),
        };
    }
    let paid = app.payment == domain::application::PaymentStatus::Paid;

    let view = ReceiptView {
        title: TITLE.to_owned(),
        tracking_code: tracking_code.clone(),
        state: app.state.into(),
        national_id,
        serial,
        birth_date: personal.birth_date,
        birth_date_jalali: personal.birth_date_jalali.clone(),
        birth_date_hijri: personal.birth_date_hijri.clone(),
        birth_date_hijri_label: hijri.label_fa(),
        gender: gender.into(),
        gender_label: gender.label_fa().to_owned(),
        religion: religion.into(),
        religion_label: religion.label_fa().to_owned(),
        mother_name: personal.mother_name.clone(),
        mobile,
        enrollment,
        home_visit: app.home_visit(),
        home_visit_address: home_address,
        payment: ReceiptPayment {
            status: app.payment.into(),
            status_label: if paid { "موفق" } else { "ناموفق" }.to_owned(),
            reference: payment.as_ref().and_then(|p| p.reference.clone()),
            amount: payment.as_ref().map(|p| p.amount),
            gateway: payment.as_ref().map(|p| p.gateway.clone()),
            paid_at: app.paid_at,
        },
        delivery_office: delivery.map(OfficeSummary::from),
        prerequisites,
        issued_at: now,
        issued_at_jalali,
        issued_at_tehran_time,
        verify_url,
    };

    let e = view.enrollment.as_ref();
    let doc = ReceiptDoc {
        title: view.title.clone(),
        national_id: view.national_id.clone(),
        tracking_code: view.tracking_code.clone(),
        serial: view.serial.clone(),
        birth_date_jalali: slashed(&view.birth_date_jalali),
        birth_date_hijri: view.birth_date_hijri_label.clone(),
        gender: view.gender_label.clone(),
        religion: view.religion_label.clone(),
        mother_name: view.mother_name.clone(),
        mobile: view.mobile.clone(),
        office_heading: if view.home_visit {
            "تکمیل ثبت نام در منزل"
        } else {
            "دفتر تکمیل ثبت نام منتخب"
        }
        .into(),
        office_label: if view.home_visit {
            "دفتر مراجعه کننده"
        } else {
            "دفتر تکمیل ثبت نام"
        }
        .into(),
        address_label: if view.home_visit {
            "نشانی محل مراجعه"
        } else {
            "نشانی دفتر تکمیل ثبت نام"
        }
        .into(),
        office_name: e.map_or_else(|| enrollment_placeholder(&view), |e| e.office.name.clone()),
        office_address: match (&view.home_visit_address, e) {
            (Some(home), _) => home.clone(),
            (None, Some(e)) if !view.home_visit => e.office.address.clone(),
            _ => NONE_FA.into(),
        },
        office_phone: e.map_or(NONE_FA.into(), |e| e.office.phone.clone()),
        shift: e.map_or(NONE_FA.into(), |e| e.shift_label.clone()),
        appointment_date_jalali: e.map_or(NONE_FA.into(), |e| slashed(&e.date_jalali)),
        payment_status: view.payment.status_label.clone(),
        payment_reference: view.payment.reference.clone().unwrap_or_else(|| NONE_FA.into()),
        delivery_office: view.delivery_office.as_ref().map_or(NONE_FA.into(), |o| o.name.clone()),
        prerequisites: view.prerequisites.iter().map(|p| p.fa.clone()).collect(),
        verify_url: view.verify_url.clone(),
        issued_at: format!("{} {}", slashed(&view.issued_at_jalali), view.issued_at_tehran_time),
    };
    let ics = app
        .slot
        .as_ref()
        .filter(|_| app.appointment == domain::application::AppointmentStatus::Booked)
        .and_then(|slot| Some((slot, office(&slot.office_id)?)))
        .map(|(slot, o)| appointment_ics(state, row.id.as_str(), &tracking_code, slot, o, now));
    Ok(Receipt { application_id: row.id, view, doc, ics })
}

/// The `.ics` of a booked appointment (see [`crate::ics`]).
fn appointment_ics(
    state: &AppState,
    application_id: &str,
    tracking_code: &str,
    slot: &domain::application::Slot,
    office: &OfficeRow,
    now: DateTime<Utc>,
) -> String {
    let url = state.config.public_url.as_str();
    let host = url.split_once("://").map_or(url, |(_, rest)| rest).split(['/', ':']).next().unwrap_or("ncr");
    crate::ics::appointment(&crate::ics::Appointment {
        application_id,
        tracking_code,
        slot,
        office,
        now,
        host: if host.is_empty() { "ncr" } else { host },
    })
}

/// The citizen's booked appointment as an iCalendar file: 409 `no_booked_appointment`
/// when the application has no booked seat (none, held for payment, missed or used).
pub async fn appointment_file(state: &AppState, citizen_id: &CitizenId) -> Result<String, ApiError> {
    let id = citizen_id.to_owned();
    let now = state.now();
    let (row, slot, office) = state
        .run_api(move |conn| {
            let row = applications::current_for_citizen(conn, &id)?
                .ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
            let app = row.to_domain()?;
            let slot = app
                .slot
                .filter(|_| app.appointment == domain::application::AppointmentStatus::Booked)
                .ok_or(ApiError::Domain(DomainError::NoBookedAppointment))?;
            let office = offices::find(conn, &slot.office_id)?.ok_or(ApiError::Domain(DomainError::OfficeNotFound))?;
            Ok((row, slot, office))
        })
        .await?;
    let tracking_code = row.tracking_code.clone().unwrap_or_default();
    Ok(appointment_ics(state, row.id.as_str(), &tracking_code, &slot, &office, now))
}

fn enrollment_placeholder(view: &ReceiptView) -> String {
    if view.home_visit {
        "مراجعه در منزل (زمان مراجعه پیامک می‌شود)".into()
    } else {
        "تعیین نشده؛ زمان و مکان تکمیل ثبت نام را انتخاب کنید".into()
    }
}

/// What the public verification endpoint may tell about a receipt: nothing personal.
#[derive(Debug, Clone)]
pub struct Verified {
    pub row: ApplicationRow,
    pub app: Application,
    pub office: Option<OfficeRow>,
    pub delivery_office: Option<OfficeRow>,
}

/// Checks a receipt's signature, then looks its application up. A signature that does not
/// verify (any of `t`, `d`, `k`, `s` altered) is 422 `receipt_signature_invalid`.
pub async fn verify(
    state: &AppState,
    kind: ReceiptKind,
    t: &str,
    d: &str,
    s: &str,
) -> Result<(Verified, NaiveDate), ApiError> {
    let invalid = || ApiError::Domain(DomainError::ReceiptSignatureInvalid);
    if !state.tokens.verify_receipt_of(kind, t, d, s) {
        return Err(invalid());
    }
    let issued_on = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| invalid())?;
    let t = t.to_owned();
    let verified = state
        .run_api(move |conn| {
            let row = applications::find_by_tracking_code(conn, &t)?.ok_or(ApiError::NotFound(ApiCode::NotFound))?;
            let app = row.to_domain()?;
            let office = match &app.slot {
                Some(slot) => offices::find(conn, &slot.office_id)?,
                None => None,
            };
            let delivery_office = match app.effective_delivery_office() {
                Some(id) => offices::find(conn, id)?,
                None => None,
            };
            Ok(Verified { row, app, office, delivery_office })
        })
        .await?;
    Ok((verified, issued_on))
}

/// The recipient as admins see it in the outbox: `m***@example.ir`.
pub fn mask_email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The e-mail of a receipt, exactly as the outbox worker sends it (`template: "receipt"`):
/// `{"subject", "text", "html", "attachments": [{"filename", "content_type", "base64"}]}`.
pub fn email_params(state: &AppState, receipt: &Receipt, pdf: &[u8]) -> serde_json::Value {
    use base64::Engine;
    let doc = &receipt.doc;
    let tracking_fa = domain::text::persian_digits(&doc.tracking_code);
    let subject = format!("رسید ثبت نام کارت هوشمند ملی - کد پیگیری {tracking_fa}");
    let html =
        html::render(doc, &html::Options { nonce: None, asset_base: state.config.public_url.trim_end_matches('/') });
    let mut attachments = vec![serde_json::json!({
        "filename": receipt.pdf_filename(),
        "content_type": "application/pdf",
        "base64": base64::engine::general_purpose::STANDARD.encode(pdf),
    })];
    if let Some(ics) = &receipt.ics {
        attachments.push(serde_json::json!({
            "filename": "appointment.ics",
            "content_type": crate::ics::CONTENT_TYPE,
            "base64": base64::engine::general_purpose::STANDARD.encode(ics.as_bytes()),
        }));
    }
    serde_json::json!({
        "subject": subject,
        "text": html::plain_text(doc),
        "html": html,
        "attachments": attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prerequisites_name_the_site_without_its_scheme() {
        let list = prerequisites("https://ncr.example.ir/");
        assert_eq!(list.len(), 5);
        assert!(list[0].fa.contains("شناسنامه") && list[0].en.contains("birth certificate"));
        assert!(list[3].fa.contains("*4*6090#") && list[3].en.contains("*4*6090#"));
        assert!(list[4].fa.contains("(ncr.example.ir)"), "{}", list[4].fa);
    }

    #[test]
    fn e_mail_addresses_are_masked() {
        assert_eq!(mask_email("maryam.ahmadi@example.ir"), "m***@example.ir");
        assert_eq!(mask_email("nobody"), "***");
    }
}
