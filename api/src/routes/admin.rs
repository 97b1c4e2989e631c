//! Administration: staff accounts, machine clients, fees, statistics, the audit log and
//! running a background job now. Every route requires an administrator (`AdminPrincipal`).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use persistence::back_office::ClientRow;
use persistence::staff::StaffUser;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminPrincipal;
use crate::error::{ApiCode, ApiError};
use crate::journey::actor;
use crate::journey::admin as admin_usecase;
use crate::page::{PageQuery, PageRequest};
use crate::routes::problems::{StaffRead, StaffWrite};
use crate::state::AppState;
use crate::wire;

// ---------------------------------------------------------------- staff

#[derive(Serialize, ToSchema)]
pub struct StaffView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "operator.maragheh")]
    pub username: String,
    #[schema(value_type = wire::StaffRole, example = "operator")]
    pub role: String,
    #[schema(example = "041-MRG-01")]
    pub office_id: Option<String>,
    #[schema(example = false)]
    pub disabled: bool,
    /// Locked after failed sign-ins until then.
    #[schema(example = "2026-11-22T07:00:00Z")]
    pub locked_until: Option<DateTime<Utc>>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
}

impl From<&StaffUser> for StaffView {
    fn from(u: &StaffUser) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            role: u.role.clone(),
            office_id: u.office_id.clone().map(String::from),
            disabled: u.disabled,
            locked_until: u.locked_until.map(|t| t.and_utc()),
            created_at: u.created_at.and_utc(),
        }
    }
}

crate::page_type!(
    /// Staff accounts, by username.
    StaffPage,
    StaffView,
    "operator.maragheh"
);

/// Staff accounts, by username.
#[utoipa::path(operation_id = "admin_list_staff", tag = "admin", security(("staff" = [])), params(PageQuery),
    responses((status = 200, description = "Staff", body = StaffPage), StaffRead))]
#[get("/api/v1/admin/staff")]
pub async fn list_staff(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = q.request()?;
    let (cursor, fetch) = (paging.cursor.clone(), paging.fetch());
    let rows = state.run(move |conn| persistence::staff::list(conn, cursor.as_deref(), fetch)).await?;
    let page = paging.page(rows, |u| u.username.clone()).map(|u| StaffView::from(&u));
    Ok(HttpResponse::Ok().json(StaffPage::from(page)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    #[schema(example = "operator.maragheh")]
    pub username: String,
    /// `operator` needs `office_id`.
    #[schema(value_type = wire::StaffRole, example = "operator")]
    pub role: String,
    #[schema(example = "041-MRG-01")]
    pub office_id: Option<String>,
    /// At least 10 characters; if absent one is generated and shown once.
    #[schema(example = "a-long-passphrase-42")]
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StaffCreated {
    pub staff: StaffView,
    /// Shown only when the password was generated (and only this once).
    #[schema(example = "Xk3-pq9-Lm2-vr7")]
    pub generated_password: Option<String>,
}

/// Creates a staff account (argon2id-hashed password).
#[utoipa::path(operation_id = "admin_create_staff", tag = "admin", security(("staff" = [])), request_body = NewStaff,
    responses((status = 201, description = "Created", body = StaffCreated), StaffWrite))]
#[post("/api/v1/admin/staff")]
pub async fn create_staff(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    body: crate::extract::Json<NewStaff>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let username = b.username.trim().to_lowercase();
    if !(3..=64).contains(&username.len())
        || !username.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        return Err(ApiError::field("username", ApiCode::Invalid));
    }
    let (role, office_id) = match (b.role.as_str(), b.office_id) {
        ("admin", _) => ("admin", None),
        ("operator", Some(o)) => ("operator", Some(o)),
        ("operator", None) => return Err(ApiError::field("office_id", ApiCode::Required)),
        _ => return Err(ApiError::field("role", ApiCode::Invalid)),
    };
    let actor = actor(&req, "admin", &admin.0.staff_id);
    let new = admin_usecase::NewStaff { username, role, office_id, password: b.password };
    let (user, generated) = admin_usecase::create_staff(&state, actor, new).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/api/v1/admin/staff"))
        .json(StaffCreated { staff: StaffView::from(&user), generated_password: generated }))
}

/// Disables an account; its tokens stop working at once.
#[utoipa::path(operation_id = "admin_disable_staff", tag = "admin", security(("staff" = [])), params(("id" = String, Path, description = "Staff account id", example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")),
    responses((status = 204, description = "Disabled"), StaffWrite))]
#[post("/api/v1/admin/staff/{id}/disable")]
pub async fn disable_staff(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&req, &state, &admin, id.into_inner(), true).await
}

/// Enables a disabled account.
#[utoipa::path(operation_id = "admin_enable_staff", tag = "admin", security(("staff" = [])), params(("id" = String, Path, description = "Staff account id", example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")),
    responses((status = 204, description = "Enabled"), StaffWrite))]
#[post("/api/v1/admin/staff/{id}/enable")]
pub async fn enable_staff(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&req, &state, &admin, id.into_inner(), false).await
}

async fn set_disabled(
    req: &HttpRequest,
    state: &AppState,
    admin: &AdminPrincipal,
    id: String,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    admin_usecase::set_staff_disabled(state, actor(req, "admin", &admin.0.staff_id), id, disabled).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct PasswordReset {
    /// The new password, shown this once.
    #[schema(example = "Xk3-pq9-Lm2-vr7")]
    pub password: String,
}

/// Resets a staff password to a generated one; the account's old tokens stop working.
#[utoipa::path(operation_id = "admin_reset_staff_password", tag = "admin", security(("staff" = [])), params(("id" = String, Path, description = "Staff account id", example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")),
    responses((status = 200, description = "The new password", body = PasswordReset), StaffWrite))]
#[post("/api/v1/admin/staff/{id}/reset-password")]
pub async fn reset_staff_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = actor(&req, "admin", &admin.0.staff_id);
    let password = admin_usecase::reset_staff_password(&state, actor, id.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(PasswordReset { password }))
}

// ---------------------------------------------------------------- machine clients

#[derive(Serialize, ToSchema)]
pub struct ClientView {
    #[schema(example = "kiosk-pouya-borujerd")]
    pub client_id: String,
    #[schema(example = "دفتر خدمات اینترنتی پویا")]
    pub name: String,
    #[schema(value_type = wire::ClientKind, example = "kiosk")]
    pub kind: String,
    #[schema(example = "kiosk:applications")]
    pub scopes: String,
    #[schema(example = "041-MRG-01")]
    pub office_id: Option<String>,
    #[schema(example = false)]
    pub disabled: bool,
    /// Requests per minute this client may make.
    #[schema(example = 120)]
    pub rate_per_minute: i32,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
}

impl From<&ClientRow> for ClientView {
    fn from(c: &ClientRow) -> Self {
        Self {
            client_id: c.client_id.to_string(),
            name: c.name.clone(),
            kind: c.kind.clone(),
            scopes: c.scopes.clone(),
            office_id: c.office_id.clone().map(String::from),
            disabled: c.disabled,
            rate_per_minute: c.rate_per_minute,
            created_at: c.created_at.and_utc(),
        }
    }
}

crate::page_type!(
    /// Machine clients, by client id.
    ClientsPage,
    ClientView,
    "kiosk-tabriz-01"
);

/// Kiosk and production clients.
#[utoipa::path(operation_id = "admin_list_machine_clients", tag = "admin", security(("staff" = [])), params(PageQuery),
    responses((status = 200, description = "Clients", body = ClientsPage), StaffRead))]
#[get("/api/v1/admin/kiosk-clients")]
pub async fn list_clients(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = q.request()?;
    let (cursor, fetch) = (paging.cursor.clone(), paging.fetch());
    let rows = state.run(move |conn| persistence::back_office::list_clients(conn, cursor.as_deref(), fetch)).await?;
    let page = paging.page(rows, |c| c.client_id.to_string()).map(|c| ClientView::from(&c));
    Ok(HttpResponse::Ok().json(ClientsPage::from(page)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    #[schema(example = "kiosk-pouya-borujerd")]
    pub client_id: String,
    #[schema(example = "دفتر خدمات اینترنتی پویا")]
    pub name: String,
    #[schema(value_type = wire::ClientKind, example = "kiosk")]
    pub kind: String,
    #[schema(example = "041-MRG-01")]
    pub office_id: Option<String>,
    /// Default 120.
    #[schema(minimum = 1, maximum = 100000, example = 120)]
    pub rate_per_minute: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientSecret {
    pub client: ClientView,
    /// Shown only now; store it safely. Rotate to get a new one.
    #[schema(example = "q8V1cS3nT0yR5wE7uI9oP2aD4fG6hJ8k")]
    pub client_secret: String,
}

fn scopes_for(kind: &str) -> Option<&'static str> {
    match kind {
        "kiosk" => Some("kiosk:applications"),
        "production" => Some("production:events"),
        _ => None,
    }
}

/// Registers a machine client; the secret is shown once.
#[utoipa::path(operation_id = "admin_create_machine_client", tag = "admin", security(("staff" = [])), request_body = NewClient,
    responses((status = 201, description = "Created", body = ClientSecret), StaffWrite))]
#[post("/api/v1/admin/kiosk-clients")]
pub async fn create_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    body: crate::extract::Json<NewClient>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    if !(3..=64).contains(&b.client_id.len())
        || !b.client_id.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        return Err(ApiError::field("client_id", ApiCode::Invalid));
    }
    let scopes = scopes_for(&b.kind).ok_or(ApiError::field("kind", ApiCode::Invalid))?;
    let name = b.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", ApiCode::Length));
    }
    let rate = b.rate_per_minute.unwrap_or(120);
    if !(1..=100_000).contains(&rate) {
        return Err(ApiError::field("rate_per_minute", ApiCode::Range));
    }
    let actor = actor(&req, "admin", &admin.0.staff_id);
    let new = admin_usecase::NewClient {
        client_id: b.client_id,
        name,
        kind: b.kind,
        scopes,
        office_id: b.office_id,
        rate_per_minute: rate,
    };
    let (row, secret) = admin_usecase::create_client(&state, actor, new).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Location", "/api/v1/admin/kiosk-clients"))
        .json(ClientSecret { client: ClientView::from(&row), client_secret: secret }))
}

/// A new secret for a client; the old one and every token issued with it stop working at once.
#[utoipa::path(operation_id = "admin_rotate_machine_client_secret", tag = "admin", security(("staff" = [])), params(("client_id" = String, Path, example = "kiosk-pouya-borujerd")),
    responses((status = 200, description = "The new secret", body = ClientSecret), StaffWrite))]
#[post("/api/v1/admin/kiosk-clients/{client_id}/rotate")]
pub async fn rotate_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = actor(&req, "admin", &admin.0.staff_id);
    let (row, secret) = admin_usecase::rotate_client(&state, actor, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ClientSecret { client: ClientView::from(&row), client_secret: secret }))
}

/// Disables a client: no new tokens, and its tokens already issued stop working at once.
#[utoipa::path(operation_id = "admin_disable_machine_client", tag = "admin", security(("staff" = [])), params(("client_id" = String, Path, example = "kiosk-pouya-borujerd")),
    responses((status = 200, description = "Disabled", body = ClientView), StaffWrite))]
#[post("/api/v1/admin/kiosk-clients/{client_id}/disable")]
pub async fn disable_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = actor(&req, "admin", &admin.0.staff_id);
    let row = admin_usecase::disable_client(&state, actor, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ClientView::from(&row)))
}

// ---------------------------------------------------------------- fees

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeLine {
    #[schema(value_type = wire::FeeKind, example = "card")]
    pub kind: String,
    /// Rials.
    #[schema(example = 200000, minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    #[schema(example = "2027-03-21")]
    pub effective_from: NaiveDate,
}

#[derive(Serialize, ToSchema)]
pub struct Fees {
    /// The amounts in effect today.
    pub current: Vec<FeeLine>,
    /// Every tariff line, past and future.
    pub schedule: Vec<FeeLine>,
}

/// The tariff: the card fee paid online, the counter enrollment and delivery fees, and the
/// re-issue fee (`reissue`, paid online by a new card cycle after delivery).
#[utoipa::path(operation_id = "admin_list_fees", tag = "admin", security(("staff" = [])),
    responses((status = 200, description = "Fees", body = Fees), StaffRead))]
#[get("/api/v1/admin/fees")]
pub async fn fees(state: web::Data<AppState>, _admin: AdminPrincipal) -> Result<HttpResponse, ApiError> {
    let rows = state.run(persistence::payments::fee_rates).await?;
    let tariff = state.run(persistence::payments::tariff).await?;
    let today = domain::calendar::tehran_date(state.now());
    let current = domain::fees::FeeKind::ALL
        .iter()
        .map(|k| FeeLine {
            kind: k.as_str().into(),
            amount: domain::fees::fee_on(&tariff, *k, today).value(),
            effective_from: today,
        })
        .collect();
    let schedule = rows
        .iter()
        .map(|r| FeeLine { kind: r.kind.clone(), amount: r.amount, effective_from: r.effective_from })
        .collect();
    Ok(HttpResponse::Ok().json(Fees { current, schedule }))
}

/// Adds a tariff line effective from a date (today or later). Payments keep the amount
/// they were created with.
#[utoipa::path(operation_id = "admin_add_fee", tag = "admin", security(("staff" = [])), request_body = FeeLine,
    responses((status = 201, description = "Added", body = FeeLine), StaffWrite))]
#[post("/api/v1/admin/fees")]
pub async fn add_fee(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    body: crate::extract::Json<FeeLine>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let kind = domain::fees::FeeKind::parse(&b.kind).ok_or(ApiError::field("kind", ApiCode::Invalid))?;
    let amount = domain::Rials::new(b.amount).map_err(|_| ApiError::field("amount", ApiCode::Range))?;
    let today = domain::calendar::tehran_date(state.now());
    if b.effective_from < today {
        return Err(ApiError::field("effective_from", ApiCode::Range));
    }
    let actor = actor(&req, "admin", &admin.0.staff_id);
    admin_usecase::add_fee(&state, actor, kind, amount, b.effective_from).await?;
    Ok(HttpResponse::Created().insert_header(("Location", "/api/v1/admin/fees")).json(b))
}

// ---------------------------------------------------------------- statistics

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    #[param(example = "2026-11-01")]
    pub from: NaiveDate,
    #[param(example = "2026-11-30")]
    pub to: NaiveDate,
}

#[derive(Serialize, ToSchema)]
pub struct DayCount {
    #[schema(example = "2026-11-22")]
    pub date: NaiveDate,
    #[schema(example = 42)]
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Utilisation {
    #[schema(example = "041")]
    pub city_code: String,
    #[schema(value_type = wire::Shift, example = "morning")]
    pub shift: String,
    #[schema(example = 40)]
    pub capacity: i64,
    #[schema(example = 30)]
    pub taken: i64,
    /// `taken / capacity`, 0–1.
    #[schema(example = 0.75)]
    pub rate: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Stats {
    #[schema(example = "2026-11-01")]
    pub from: NaiveDate,
    #[schema(example = "2026-11-30")]
    pub to: NaiveDate,
    /// Applications that paid (registered), per day.
    pub registrations_per_day: Vec<DayCount>,
    #[schema(example = 120)]
    pub payments_settled: i64,
    #[schema(example = 114)]
    pub payments_verified: i64,
    /// verified / settled, 0–1 (null without payments).
    #[schema(example = 0.95)]
    pub payment_success_rate: Option<f64>,
    #[schema(example = 6)]
    pub appointments_missed: i64,
    #[schema(example = 94)]
    pub appointments_attended: i64,
    /// missed / (missed + attended), 0–1.
    #[schema(example = 0.06)]
    pub no_show_rate: Option<f64>,
    /// Seats taken over approved capacity, per city and shift.
    pub utilisation: Vec<Utilisation>,
}

/// Registrations per day, payment success rate, no-show rate, and office utilisation
/// per city and shift, over a date range (at most 366 days).
#[utoipa::path(operation_id = "admin_get_stats", tag = "admin", security(("staff" = [])), params(RangeQuery),
    responses((status = 200, description = "Statistics", body = Stats), StaffRead))]
#[get("/api/v1/admin/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let RangeQuery { from, to } = q.into_inner();
    if to < from || (to - from).num_days() > 366 {
        return Err(ApiError::field("to", ApiCode::Range));
    }
    let s = state.run(move |conn| persistence::stats::between(conn, from, to)).await?;
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    let stats = Stats {
        from,
        to,
        registrations_per_day: s
            .registrations_per_day
            .into_iter()
            .map(|(date, count)| DayCount { date, count })
            .collect(),
        payments_settled: s.payments_settled,
        payments_verified: s.payments_verified,
        payment_success_rate: ratio(s.payments_verified, s.payments_settled),
        appointments_missed: s.appointments_missed,
        appointments_attended: s.appointments_attended,
        no_show_rate: ratio(s.appointments_missed, s.appointments_missed + s.appointments_attended),
        utilisation: s
            .utilisation
            .into_iter()
            .map(|u| Utilisation {
                rate: ratio(u.taken, u.capacity).unwrap_or(0.0),
                city_code: u.city_code,
                shift: u.shift,
                capacity: u.capacity,
                taken: u.taken,
            })
            .collect(),
    };
    Ok(HttpResponse::Ok().json(stats))
}

// ---------------------------------------------------------------- audit log

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub application_id: Option<String>,
    #[param(value_type = Option<wire::ActorKind>, example = "operator")]
    pub actor_kind: Option<String>,
    #[param(example = "checked_in")]
    pub action: Option<String>,
    #[param(example = "2026-11-22T00:00:00Z")]
    pub from: Option<DateTime<Utc>>,
    #[param(example = "2026-11-23T00:00:00Z")]
    pub to: Option<DateTime<Utc>>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub at: DateTime<Utc>,
    #[schema(value_type = wire::ActorKind, example = "operator")]
    pub actor_kind: String,
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c")]
    pub actor_id: Option<String>,
    #[schema(example = "checked_in")]
    pub action: String,
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub application_id: Option<String>,
    #[schema(example = "0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10")]
    pub request_id: Option<String>,
    #[schema(schema_with = audit_details)]
    pub details: Option<serde_json::Value>,
    /// The caller's address (behind the load balancer, the client's own).
    #[schema(example = "198.51.100.7")]
    pub client_ip: Option<String>,
}

/// What the action recorded: a JSON object whose keys depend on the action, or `null`.
fn audit_details() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::SchemaType;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some("What the action recorded: keys depend on the action."))
        .examples([serde_json::json!({"office_id": "041-MRG-01"})])
        .build()
}

crate::page_type!(
    /// Audit entries, newest first.
    AuditPage,
    AuditEntry,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

/// The audit log (append-only), newest first.
#[utoipa::path(operation_id = "admin_list_audit_log", tag = "admin", security(("staff" = [])), params(AuditQuery),
    responses((status = 200, description = "Entries", body = AuditPage), StaffRead))]
#[get("/api/v1/admin/audit-log")]
pub async fn audit_log(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let filter = persistence::audit::AuditFilter {
        application_id: q.application_id,
        actor_kind: q.actor_kind,
        action: q.action,
        from: q.from.map(|t| t.naive_utc()),
        to: q.to.map(|t| t.naive_utc()),
        before_id: paging.cursor.clone(),
    };
    let fetch = paging.fetch();
    let rows = state.run(move |conn| persistence::audit::list(conn, &filter, fetch)).await?;
    let page = paging.page(rows, |r| r.id.clone()).map(|r| AuditEntry {
        id: r.id,
        at: r.at.and_utc(),
        actor_kind: r.actor_kind,
        actor_id: r.actor_id,
        action: r.action,
        application_id: r.application_id.map(String::from),
        request_id: r.request_id,
        details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
        client_ip: r.client_ip,
    });
    Ok(HttpResponse::Ok().json(AuditPage::from(page)))
}

// ---------------------------------------------------------------- payments

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentsQuery {
    /// Only payments in this status, e.g. `refund_failed` (money the bank would not give
    /// back after every retry) or `refund_pending`.
    #[param(value_type = Option<wire::PaymentState>, example = "refund_failed")]
    pub status: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

/// A payment as administrators see it (no card number beyond the bank's mask).
#[derive(Serialize, ToSchema)]
pub struct AdminPayment {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub payment_id: String,
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c")]
    pub application_id: String,
    #[schema(value_type = wire::Gateway, example = "sadad")]
    pub gateway: String,
    #[schema(example = 179_532_096_001_234_i64)]
    pub order_id: i64,
    /// Rials.
    #[schema(example = 200000)]
    pub amount: i64,
    #[schema(value_type = wire::PaymentState, example = "refund_failed")]
    pub status: String,
    /// The bank's reference once verified.
    #[schema(example = "700000810000002")]
    pub reference: Option<String>,
    /// Why the money is given back (`duplicate payment`, `amount or order mismatch`) or the
    /// last verification error.
    #[schema(example = "duplicate payment")]
    pub last_error: Option<String>,
    /// Reversals the bank did not confirm.
    #[schema(example = 10)]
    pub reversal_attempts: i32,
    /// The bank's reason for the last reversal it did not confirm.
    #[schema(example = "parsian: ReversalRequest refused with Status -1: internal error")]
    pub reversal_error: Option<String>,
    /// When it is next checked with the bank (absent once settled).
    #[schema(example = "2026-11-22T06:45:00Z")]
    pub next_check_at: Option<DateTime<Utc>>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:31:00Z")]
    pub updated_at: DateTime<Utc>,
}

crate::page_type!(
    /// Payments, newest first.
    AdminPaymentsPage,
    AdminPayment,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

/// Payments, newest first, optionally of one status: `?status=refund_failed` lists the
/// money the bank did not give back after every retry, with the bank's reason.
#[utoipa::path(operation_id = "admin_list_payments", tag = "admin", security(("staff" = [])), params(PaymentsQuery),
    responses((status = 200, description = "A page of payments", body = AdminPaymentsPage), StaffRead))]
#[get("/api/v1/admin/payments")]
pub async fn list_payments(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    q: web::Query<PaymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => {
            Some(persistence::payments::PaymentStatus::parse(s).ok_or(ApiError::field("status", ApiCode::Invalid))?)
        }
    };
    let (cursor, fetch) = (paging.cursor.clone(), paging.fetch());
    let rows = state.run(move |conn| persistence::payments::list(conn, status, cursor.as_deref(), fetch)).await?;
    let page = paging.page(rows, |p| p.id.to_string()).map(|p| AdminPayment {
        payment_id: p.id.into(),
        application_id: p.application_id.into(),
        gateway: p.gateway,
        order_id: p.order_id,
        amount: p.amount,
        status: p.status.to_string(),
        reference: p.reference,
        last_error: p.last_error,
        reversal_attempts: p.reversal_attempts,
        reversal_error: p.reversal_error,
        next_check_at: p.next_check_at.map(|t| t.and_utc()),
        created_at: p.created_at.and_utc(),
        updated_at: p.updated_at.and_utc(),
    });
    Ok(HttpResponse::Ok().json(AdminPaymentsPage::from(page)))
}

// ---------------------------------------------------------------- jobs

#[derive(Serialize, ToSchema)]
pub struct JobRun {
    #[schema(example = "release_expired_holds")]
    pub job: String,
    /// Rows the run processed.
    #[schema(example = 3)]
    pub processed: usize,
}

/// Runs a background job once, now (e.g. `release_expired_holds`, `reconcile_payments`).
#[utoipa::path(operation_id = "admin_run_job", tag = "admin", security(("staff" = [])), params(("name" = String, Path, example = "reconcile_payments")),
    responses((status = 200, description = "Ran", body = JobRun), StaffWrite))]
#[post("/api/v1/admin/jobs/{name}")]
pub async fn run_job(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let processed = crate::jobs::run(&state, &name).await?;
    Ok(HttpResponse::Ok().json(JobRun { job: name, processed }))
}
