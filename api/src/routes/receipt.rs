//! The registration receipt over HTTP (docs/domain/payments.md «نتیجه ثبت نام کارت هوشمند ملی»):
//! JSON, the printable page and the PDF by content negotiation (or by suffix), the
//! receipt by e-mail, the public check of a printed receipt's signature, and the fonts the
//! page is set in.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use domain::application::Operation;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::{CitizenPrincipal, CitizenToken};
use crate::error::{ApiCode, ApiError, Problem};
use crate::journey::receipt::render_pdf;
use crate::journey::{Target, actor};
use crate::receipt::enrollment::{EnrollmentReceipt, EnrollmentReceiptView};
use crate::receipt::{self, ReceiptKind, ReceiptView};
use crate::routes::problems::{CitizenRead, CitizenWrite, PublicRead};
use crate::state::AppState;
use crate::wire;

/// A file's bytes (the PDF, a font), for the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "only describes binary bodies in the OpenAPI document")]
pub struct BinaryFile(Vec<u8>);

/// The formats a receipt comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptFormat {
    Json,
    Html,
    Pdf,
}

impl ReceiptFormat {
    /// The permission-table operation a format stands for (docs/domain/application.md: print, save as file).
    fn operation(self) -> Operation {
        match self {
            ReceiptFormat::Json | ReceiptFormat::Html => Operation::PrintReceipt,
            ReceiptFormat::Pdf => Operation::SaveReceiptFile,
        }
    }
}

/// Picks a format from an `Accept` header: the offer with the highest quality, where each
/// offer takes the quality of the most specific range that matches it; ties go to JSON,
/// then HTML. No header (or `*/*`) means JSON; nothing acceptable means `None` (406).
pub fn negotiate(accept: Option<&str>) -> Option<ReceiptFormat> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Some(ReceiptFormat::Json) };
    let ranges: Vec<(String, String, f32)> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            let (kind, sub) = media.split_once('/')?;
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            Some((kind.trim().to_owned(), sub.trim().to_owned(), q))
        })
        .collect();
    let offers = [
        (ReceiptFormat::Json, "application", "json"),
        (ReceiptFormat::Html, "text", "html"),
        (ReceiptFormat::Pdf, "application", "pdf"),
    ];
    let mut best: Option<(ReceiptFormat, f32)> = None;
    for (format, kind, sub) in offers {
        let mut quality: Option<(u8, f32)> = None;
        for (k, s, q) in &ranges {
            let specificity = if k == kind && s == sub {
                2
            } else if k == kind && s == "*" {
                1
            } else if k == "*" && s == "*" {
                0
            } else {
                continue;
            };
            if quality.is_none_or(|(best_spec, _)| specificity > best_spec) {
                quality = Some((specificity, *q));
            }
        }
        if let Some((_, q)) = quality
            && q > 0.0
            && best.is_none_or(|(_, bq)| q > bq)
        {
            best = Some((format, q));
        }
    }
    best.map(|(format, _)| format)
}

async fn respond(state: &AppState, citizen: CitizenToken, format: ReceiptFormat) -> Result<HttpResponse, ApiError> {
    let receipt = receipt::for_citizen(state, Target::Session(citizen).reader(), format.operation()).await?;
    match format {
        ReceiptFormat::Json => Ok(HttpResponse::Ok().json(receipt.view)),
        ReceiptFormat::Html => {
            let nonce = crate::html::nonce();
            let body =
                receipt::html::render(&receipt.doc, &receipt::html::Options { nonce: Some(&nonce), asset_base: "" });
            Ok(crate::html::page(body, &nonce, "'none'"))
        }
        ReceiptFormat::Pdf => {
            let filename = receipt.pdf_filename();
            let pdf = render_pdf(receipt).await?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "application/pdf"))
                .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(pdf))
        }
    }
}

/// The registration receipt, once the payment has succeeded (docs/domain/application.md; otherwise 409
/// `payment_required`). Content negotiation by `Accept`: JSON by default, `text/html` for
/// the printable right-to-left page (Persian digits, Jalali dates, the QR code of
/// `verify_url`), `application/pdf` for the A4 file; anything else is 406. The same page
/// and file are at `receipt.html` and `receipt.pdf`.
#[utoipa::path(operation_id = "citizen_get_receipt", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "The receipt in the negotiated format", content(
            (ReceiptView = "application/json"),
            (String = "text/html"),
            (BinaryFile = "application/pdf"))),
        (status = 406, description = "None of the `Accept`ed formats can be produced (`not_acceptable`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No successful payment yet (`payment_required`) or the application is cancelled", body = Problem, content_type = "application/problem+json"),
        CitizenRead))]
#[get("/api/v1/citizen/application/receipt")]
pub async fn get_receipt(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
) -> Result<HttpResponse, ApiError> {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = negotiate(accept).ok_or(ApiError::NotAcceptable)?;
    let mut response = respond(&state, citizen, format).await?;
    response.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(response)
}

/// The printable receipt page (right to left, Persian digits, A4 print styles, the QR code
/// of `verify_url`), whatever the `Accept` header says.
#[utoipa::path(operation_id = "citizen_get_receipt_html", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "The printable page", content_type = "text/html", body = String),
        (status = 409, description = "No successful payment yet (`payment_required`)", body = Problem, content_type = "application/problem+json"),
        CitizenRead))]
#[get("/api/v1/citizen/application/receipt.html")]
pub async fn get_receipt_html(state: web::Data<AppState>, citizen: CitizenToken) -> Result<HttpResponse, ApiError> {
    respond(&state, citizen, ReceiptFormat::Html).await
}

/// The receipt as an A4 PDF file, `receipt-<tracking code>.pdf` (docs/domain/payments.md «ذخیره فایل»).
#[utoipa::path(operation_id = "citizen_get_receipt_pdf", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "The PDF, as an attachment", content_type = "application/pdf", body = BinaryFile,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"receipt-4973201670.pdf\"`"))),
        (status = 409, description = "No successful payment yet (`payment_required`)", body = Problem, content_type = "application/problem+json"),
        CitizenRead))]
#[get("/api/v1/citizen/application/receipt.pdf")]
pub async fn get_receipt_pdf(state: web::Data<AppState>, citizen: CitizenToken) -> Result<HttpResponse, ApiError> {
    respond(&state, citizen, ReceiptFormat::Pdf).await
}

/// The booked appointment as an iCalendar file (RFC 5545) for the citizen's calendar: the
/// shift at the office (UTC times), its address and the tracking code, and an alarm the
/// evening before. The receipt e-mail carries the same file. 409 `no_booked_appointment`
/// until a seat is booked (paid).
#[utoipa::path(operation_id = "citizen_get_appointment_ics", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "The calendar file, as an attachment", content_type = "text/calendar", body = String,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"appointment.ics\"`"))),
        (status = 409, description = "No booked appointment (`no_booked_appointment`)", body = Problem, content_type = "application/problem+json"),
        CitizenRead))]
#[get("/api/v1/citizen/application/appointment.ics")]
pub async fn get_appointment_ics(
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
) -> Result<HttpResponse, ApiError> {
    let ics = receipt::appointment_file(&state, &citizen.citizen_id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, crate::ics::CONTENT_TYPE))
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"appointment.ics\""))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(ics))
}

// ---------------------------------------------------------------- enrollment receipt

/// The format an `Accept` header asks for (406 when none can be produced).
pub fn accepted_format(req: &HttpRequest) -> Result<ReceiptFormat, ApiError> {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    negotiate(accept).ok_or(ApiError::NotAcceptable)
}

/// An enrollment receipt in a format: JSON, the printable page, or the PDF as a file.
pub async fn send_enrollment_receipt(
    receipt: EnrollmentReceipt,
    format: ReceiptFormat,
) -> Result<HttpResponse, ApiError> {
    let mut response = match format {
        ReceiptFormat::Json => HttpResponse::Ok().json(receipt.view),
        ReceiptFormat::Html => {
            let nonce = crate::html::nonce();
            let body = receipt::html::render_sheet(
                &receipt.sheet,
                &receipt::html::Options { nonce: Some(&nonce), asset_base: "" },
            );
            crate::html::page(body, &nonce, "'none'")
        }
        ReceiptFormat::Pdf => {
            let filename = receipt.pdf_filename();
            let sheet = receipt.sheet;
            let pdf = web::block(move || receipt::pdf::render_sheet_pdf(&sheet)).await?.map_err(ApiError::internal)?;
            HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "application/pdf"))
                .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(pdf)
        }
    };
    response.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(response)
}

/// The enrollment receipt (docs/domain/back-office.md: given when the office completes the enrollment, to be
/// kept until the card is handed over), with the delivery office and the day the card is
/// expected there (`policy.card_ready_days` after enrollment). Allowed once the enrollment
/// is completed (`print_enrollment_receipt` in `allowed_operations`); before that 409
/// `enrollment_not_completed`. Content negotiation by `Accept` as for the registration
/// receipt: JSON by default, `text/html` for the printable page, `application/pdf` for the
/// file `enrollment-receipt-<tracking code>.pdf`. Its `verify_url` (the QR code) is checked
/// by `GET /api/v1/public/receipts/verify`.
#[utoipa::path(operation_id = "citizen_get_enrollment_receipt", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "The enrollment receipt in the negotiated format", content(
            (EnrollmentReceiptView = "application/json"),
            (String = "text/html"),
            (BinaryFile = "application/pdf"))),
        (status = 406, description = "None of the `Accept`ed formats can be produced (`not_acceptable`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The office has not completed the enrollment yet (`enrollment_not_completed`), or the application is cancelled", body = Problem, content_type = "application/problem+json"),
        CitizenRead))]
#[get("/api/v1/citizen/application/enrollment-receipt")]
pub async fn get_enrollment_receipt(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
) -> Result<HttpResponse, ApiError> {
    let format = accepted_format(&req)?;
    let receipt = receipt::enrollment::for_citizen(&state, &citizen.citizen_id).await?;
    send_enrollment_receipt(receipt, format).await
}

// ---------------------------------------------------------------- e-mail

#[derive(Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct ReceiptEmailRequest {
    /// Where to send the receipt (the page in the body, the PDF attached). Not stored on the application.
    #[validate(email, length(max = 254))]
    #[schema(example = "maryam.ahmadi@example.ir")]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptEmailQueued {
    /// Always `queued`: the outbox worker sends it, with retries.
    #[schema(value_type = crate::wire::Queued, example = "queued")]
    pub status: &'static str,
    /// The address, masked.
    #[schema(example = "m***@example.ir")]
    pub recipient_hint: String,
}

/// E-mails the receipt (docs/domain/payments.md «ارسال به ایمیل»): the printable page as the body, a plain
/// text part, and the PDF attached. The message is queued in the outbox and sent by its
/// worker with retries, so a slow mail server never slows this request (202). At most five
/// a day per application (429 `receipt_email_limit`).
#[utoipa::path(operation_id = "citizen_email_receipt", tag = "citizen", security(("citizen" = [])), request_body = ReceiptEmailRequest,
    responses(
        (status = 202, description = "Queued", body = ReceiptEmailQueued),
        (status = 429, description = "Five receipts were e-mailed in the last 24 hours (`receipt_email_limit`) or rate limited", body = Problem, content_type = "application/problem+json"),
        CitizenWrite))]
#[post("/api/v1/citizen/application/receipt/email")]
pub async fn email_receipt(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
    body: crate::extract::Json<ReceiptEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut body = body.into_inner();
    body.email = body.email.trim().to_owned();
    body.validate()?;
    let actor = actor(&req, "citizen", &citizen.citizen_id);
    let hint = crate::journey::receipt::email(&state, &citizen.citizen_id, body.email, actor).await?;
    Ok(HttpResponse::Accepted().json(ReceiptEmailQueued { status: "queued", recipient_hint: hint }))
}

// ---------------------------------------------------------------- public check

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// The tracking code.
    #[param(example = "4973201670")]
    pub t: String,
    /// The day the receipt was issued (Tehran), ISO-8601.
    #[param(example = "2026-11-22")]
    pub d: String,
    /// The kind of receipt: absent for the registration receipt, `enrollment` for the
    /// enrollment receipt (whose signature covers `ncr-enrollment-receipt:v1:<t>:<d>`).
    #[param(example = "enrollment")]
    pub k: Option<VerifyKind>,
    /// Ed25519 signature by the server's signing key over `ncr-receipt:v1:<t>:<d>` (UTF-8),
    /// base64url without padding. The public keys are at `/.well-known/jwks.json`.
    #[param(example = "uN3dY1dSg0a6Jm6L5Pj0k3Jq2cVZ7W0o2s9k3ZcQm8u1f0oBq6Yc5d8mN7J1kQ2gVQ4xR0hX9sQ1yK5a3bC2dA")]
    pub s: String,
}

/// The kind of a receipt in its verification link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyKind {
    /// «نتیجه ثبت نام», after payment.
    Registration,
    /// «رسید تکمیل ثبت نام», at enrollment.
    Enrollment,
}

impl From<VerifyKind> for ReceiptKind {
    fn from(k: VerifyKind) -> Self {
        match k {
            VerifyKind::Registration => ReceiptKind::Registration,
            VerifyKind::Enrollment => ReceiptKind::Enrollment,
        }
    }
}

/// A genuine receipt: where its application stands now. Nothing personal.
#[derive(Serialize, ToSchema)]
pub struct ReceiptVerification {
    /// Always `true` (a forged or altered receipt gets 422).
    #[schema(example = true)]
    pub valid: bool,
    /// Which receipt was checked.
    pub kind: VerifyKind,
    #[schema(example = "4973201670")]
    pub tracking_code: String,
    #[schema(example = "2026-11-22")]
    pub issued_on: NaiveDate,
    /// The application's state now.
    pub state: wire::State,
    #[schema(example = "اداره ثبت احوال مراغه")]
    pub office_name: Option<String>,
    #[schema(example = "2026-11-25")]
    pub appointment_date: Option<NaiveDate>,
    #[schema(example = "1405-09-04")]
    pub appointment_date_jalali: Option<String>,
    pub shift: Option<wire::Shift>,
    pub appointment_status: wire::AppointmentStatus,
    /// Where the card is to be handed over now.
    #[schema(example = "اداره ثبت احوال مراغه")]
    pub delivery_office_name: Option<String>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub checked_at: DateTime<Utc>,
}

/// Checks a printed receipt (the link in its QR code), without login: an office or the
/// citizen learns whether the receipt is genuine and where the application stands. The
/// signature can also be checked offline with the keys at `/.well-known/jwks.json`.
#[utoipa::path(operation_id = "public_verify_receipt", tag = "public", params(VerifyQuery),
    responses(
        (status = 200, description = "A genuine receipt", body = ReceiptVerification),
        (status = 404, description = "Signed, but no such application any more (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The signature does not match (`receipt_signature_invalid`): altered or forged", body = Problem, content_type = "application/problem+json"),
        PublicRead))]
#[get("/api/v1/public/receipts/verify")]
pub async fn verify_receipt(
    state: web::Data<AppState>,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    let kind = query.k.unwrap_or(VerifyKind::Registration);
    let (v, issued_on) = receipt::verify(&state, kind.into(), &query.t, &query.d, &query.s).await?;
    let slot = v.app.slot.as_ref();
    Ok(HttpResponse::Ok().json(ReceiptVerification {
        valid: true,
        kind,
        tracking_code: v.row.tracking_code.clone().unwrap_or_default(),
        issued_on,
        state: v.app.state.into(),
        office_name: v.office.map(|o| o.name),
        appointment_date: slot.map(|s| s.date),
        appointment_date_jalali: slot
            .and_then(|s| domain::calendar::JalaliDate::from_gregorian(s.date).ok())
            .map(|d| d.to_string()),
        shift: slot.map(|s| s.shift.into()),
        appointment_status: v.app.appointment.into(),
        delivery_office_name: v.delivery_office.map(|o| o.name),
        checked_at: state.now(),
    }))
}

// ---------------------------------------------------------------- fonts

/// The fonts the printable receipt is set in (Vazirmatn, SIL Open Font License):
/// `Vazirmatn-Regular.ttf`, `Vazirmatn-Bold.ttf`. Cacheable; any origin may load them, so a
/// saved copy of the page still finds its font.
#[utoipa::path(operation_id = "operations_get_font", tag = "operations", params(("name" = String, Path, description = "`Vazirmatn-Regular.ttf` or `Vazirmatn-Bold.ttf`", example = "Vazirmatn-Regular.ttf")),
    responses(
        (status = 200, description = "The TrueType font", content_type = "font/ttf", body = BinaryFile),
        (status = 404, description = "No such font (`not_found`)", body = Problem, content_type = "application/problem+json")))]
#[get("/assets/fonts/{name}")]
pub async fn font(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let bytes = receipt::font(&name).ok_or(ApiError::NotFound(ApiCode::NotFound))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "font/ttf"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=604800"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::ReceiptFormat::{Html, Json, Pdf};
    use super::negotiate;

    #[test]
    fn accept_headers_pick_the_format() {
        assert_eq!(negotiate(None), Some(Json));
        assert_eq!(negotiate(Some("*/*")), Some(Json));
        assert_eq!(negotiate(Some("application/json")), Some(Json));
        assert_eq!(negotiate(Some("text/html")), Some(Html));
        assert_eq!(negotiate(Some("application/pdf")), Some(Pdf));
        // A browser's header: the page.
        assert_eq!(
            negotiate(Some("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8")),
            Some(Html)
        );
        assert_eq!(negotiate(Some("application/*;q=0.5, application/pdf")), Some(Pdf));
        assert_eq!(negotiate(Some("application/pdf;q=0.4, text/html;q=0.6")), Some(Html));
        assert_eq!(negotiate(Some("text/*")), Some(Html));
        assert_eq!(negotiate(Some("image/png")), None);
        assert_eq!(negotiate(Some("application/json;q=0, text/plain")), None);
        assert_eq!(negotiate(Some("*/*, application/json;q=0")), Some(Html), "JSON refused explicitly");
    }
}
