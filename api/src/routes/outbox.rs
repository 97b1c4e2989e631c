//! Administration of notifications: the outbox (recipient hints only, never a recipient
//! or a message's parameters), and the sandbox phone and mailbox, which stand in for the
//! citizens' own devices in demos and tests and so show the messages in clear.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use domain::delivery::Status;
use domain::ids::Mobile;
use persistence::PiiKind;
use persistence::outbox::{OutboxFilter, OutboxRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminPrincipal;
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::journey::{actor, sandbox};
use crate::page::PageRequest;
use crate::routes::problems::StaffRead;
use crate::state::AppState;
use crate::wire;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    #[param(value_type = Option<wire::OutboxStatus>, example = "failed_temporary")]
    pub status: Option<String>,
    #[param(value_type = Option<wire::Channel>, example = "sms")]
    pub channel: Option<String>,
    /// e.g. `registration`, `booking`, `reminder`, `receipt`.
    #[param(example = "booking")]
    pub template: Option<String>,
    /// Only messages about this application.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub application_id: Option<String>,
    /// 1–500, default 50.
    #[param(example = 50, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

/// One queued notification, without its recipient or contents.
#[derive(Serialize, ToSchema)]
pub struct OutboxItem {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(value_type = wire::Channel, example = "sms")]
    pub channel: String,
    /// The recipient, masked.
    #[schema(example = "0914***8136")]
    pub recipient_hint: String,
    #[schema(example = "booking")]
    pub template: String,
    #[schema(value_type = wire::Lang, example = "fa")]
    pub lang: String,
    #[schema(value_type = wire::OutboxStatus, example = "sent")]
    pub status: String,
    /// Attempts made so far.
    #[schema(example = 1)]
    pub attempts: i32,
    /// When the next attempt is due (or the current claim ends, while `sending`).
    #[schema(example = "2026-11-22T06:31:00Z")]
    pub next_attempt_at: DateTime<Utc>,
    /// The provider's message id once sent.
    #[schema(example = "8792343")]
    pub provider_id: Option<String>,
    /// The last failure, as the provider described it.
    #[schema(example = "sandbox sms outage")]
    pub last_error: Option<String>,
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub application_id: Option<String>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:30:02Z")]
    pub updated_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:30:02Z")]
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<OutboxRow> for OutboxItem {
    fn from(r: OutboxRow) -> Self {
        Self {
            id: r.id,
            channel: r.channel,
            recipient_hint: r.recipient_hint,
            template: r.template,
            lang: r.lang,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.and_utc(),
            provider_id: r.provider_id,
            last_error: r.last_error,
            application_id: r.application_id.map(String::from),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
            sent_at: r.sent_at.map(|t| t.and_utc()),
        }
    }
}

crate::page_type!(
    /// Messages, newest first.
    OutboxPage,
    OutboxItem,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

/// The notification outbox, newest first: delivery status, attempts, last error and
/// times of each message. Recipients are shown masked; parameters are never shown.
#[utoipa::path(operation_id = "admin_list_outbox", tag = "admin", params(OutboxQuery), security(("staff" = [])),
    responses((status = 200, description = "A page of messages", body = OutboxPage), StaffRead))]
#[get("/api/v1/admin/outbox")]
pub async fn list_outbox(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    query: web::Query<OutboxQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut errors = FieldErrors::default();
    let paging = PageRequest::reporting(q.limit, q.cursor, &mut errors);
    if q.status.as_deref().is_some_and(|s| Status::parse(s).is_none()) {
        errors.push("status", ApiCode::Invalid);
    }
    if q.channel.as_deref().is_some_and(|c| c != "sms" && c != "email") {
        errors.push("channel", ApiCode::Invalid);
    }
    errors.finish()?;
    let filter = OutboxFilter {
        status: q.status,
        channel: q.channel,
        template: q.template,
        application_id: q.application_id,
        before_id: paging.cursor.clone(),
    };
    let fetch = paging.fetch();
    let rows = state.run(move |conn| persistence::outbox::list(conn, &filter, fetch)).await?;
    let page = paging.page(rows, |r| r.id.clone()).map(OutboxItem::from);
    Ok(HttpResponse::Ok().json(OutboxPage::from(page)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SandboxQuery {
    /// Only messages to this mobile (any common form) or e-mail address.
    #[param(example = "09145128136")]
    pub to: Option<String>,
    /// 1–500, default 50.
    #[param(example = 50, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

/// An SMS as the sandbox phone received it.
#[derive(Serialize, ToSchema)]
pub struct SandboxSmsItem {
    /// Also the provider id the outbox recorded.
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "09145128136")]
    pub to: String,
    #[schema(example = "یادآوری: نوبت کارت ملی فردا ۱۴۰۵/۰۹/۱۰ صبح، اداره ثبت احوال مراغه")]
    pub text: String,
    #[schema(example = "2026-11-22T06:30:02Z")]
    pub received_at: DateTime<Utc>,
}

crate::page_type!(
    /// SMS, newest first.
    SandboxSmsPage,
    SandboxSmsItem,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

/// The sandbox phone: SMS "delivered" by the sandbox operator (`[sms] mode = "sandbox"`),
/// newest first, in clear, so demos and tests can read what a citizen got. Reading it is
/// recorded in the audit log. 404 when the SMS sandbox is off.
#[utoipa::path(operation_id = "admin_list_sandbox_sms", tag = "admin", params(SandboxQuery), security(("staff" = [])),
    responses((status = 200, description = "A page of SMS", body = SandboxSmsPage), StaffRead))]
#[get("/api/v1/admin/sandbox/sms")]
pub async fn list_sandbox_sms(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    query: web::Query<SandboxQuery>,
) -> Result<HttpResponse, ApiError> {
    // A sandbox that is off has no routes.
    if state.sandboxes.sms.is_none() {
        return Err(ApiError::NotFound(ApiCode::RouteNotFound));
    }
    let q = query.into_inner();
    let mut errors = FieldErrors::default();
    let paging = PageRequest::reporting(q.limit, q.cursor, &mut errors);
    let to = q.to.as_deref().and_then(|m| errors.take("to", Mobile::parse(m)));
    errors.finish()?;
    let who = actor(&req, "admin", &admin.0.staff_id);
    let rows = sandbox::read_sms(&state, who, to, &paging).await?;
    let page = paging.page(rows, |r| r.id.clone());
    let items = page
        .items
        .into_iter()
        .map(|r| {
            Ok(SandboxSmsItem {
                to: state.pii.open(PiiKind::Mobile, &r.recipient_enc)?,
                text: state.pii.open(PiiKind::Secret, &r.text_enc)?,
                received_at: r.created_at.and_utc(),
                id: r.id,
            })
        })
        .collect::<Result<Vec<_>, persistence::DbError>>()?;
    Ok(HttpResponse::Ok().json(SandboxSmsPage { items, next_cursor: page.next_cursor }))
}

/// An e-mail as the sandbox mailbox received it.
#[derive(Serialize, ToSchema)]
pub struct SandboxEmailItem {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "maryam@example.com")]
    pub to: String,
    #[schema(example = "رسید پیش ثبت نام کارت هوشمند ملی")]
    pub subject: String,
    #[schema(example = "کد رهگیری: ۴۹۷۳۲۰۱۶۷۵")]
    pub text: String,
    #[schema(example = "<p>کد رهگیری: ۴۹۷۳۲۰۱۶۷۵</p>")]
    pub html: Option<String>,
    #[schema(example = json!(["receipt-4973201675.pdf"]))]
    pub attachments: Vec<String>,
    #[schema(example = "2026-11-22T06:30:02Z")]
    pub received_at: DateTime<Utc>,
}

crate::page_type!(
    /// E-mails, newest first.
    SandboxEmailPage,
    SandboxEmailItem,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

#[derive(Deserialize)]
struct StoredBody {
    text: String,
    html: Option<String>,
}

/// The sandbox mailbox: e-mails "delivered" by the sandbox mail server
/// (`[email] mode = "sandbox"`), newest first, in clear. Reading it is audited. 404 when
/// the e-mail sandbox is off.
#[utoipa::path(operation_id = "admin_list_sandbox_emails", tag = "admin", params(SandboxQuery), security(("staff" = [])),
    responses((status = 200, description = "A page of e-mails", body = SandboxEmailPage), StaffRead))]
#[get("/api/v1/admin/sandbox/emails")]
pub async fn list_sandbox_emails(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    query: web::Query<SandboxQuery>,
) -> Result<HttpResponse, ApiError> {
    if state.sandboxes.email.is_none() {
        return Err(ApiError::NotFound(ApiCode::RouteNotFound));
    }
    let q = query.into_inner();
    let mut errors = FieldErrors::default();
    let paging = PageRequest::reporting(q.limit, q.cursor, &mut errors);
    errors.finish()?;
    let who = actor(&req, "admin", &admin.0.staff_id);
    let rows = sandbox::read_emails(&state, who, q.to, &paging).await?;
    let page = paging.page(rows, |r| r.id.clone());
    let items = page
        .items
        .into_iter()
        .map(|r| {
            let body: StoredBody = serde_json::from_str(&state.pii.open(PiiKind::Secret, &r.body_enc)?)
                .map_err(|e| ApiError::internal(format!("sandbox e-mail body: {e}")))?;
            Ok(SandboxEmailItem {
                to: state.pii.open(PiiKind::Email, &r.recipient_enc)?,
                subject: r.subject,
                text: body.text,
                html: body.html,
                attachments: serde_json::from_str(&r.attachment_names).unwrap_or_default(),
                received_at: r.created_at.and_utc(),
                id: r.id,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(SandboxEmailPage { items, next_cursor: page.next_cursor }))
}
