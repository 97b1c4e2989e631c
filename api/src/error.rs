//! The API's one error type and its RFC 9457 `application/problem+json` rendering.
//! Every failure — domain rules, validation, auth, actix's own (bad JSON, wrong content
//! type, unknown path, wrong method, body too large) and internal errors — leaves
//! through here. Messages are in Persian by default, English by `Accept-Language`.
//! Internal errors are logged with an id and never leak details.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, ErrorKind, Lang};
use persistence::DbError;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name in the request (dotted for nested fields).
    #[schema(example = "national_id")]
    pub field: String,
    #[schema(example = "national_id_invalid")]
    pub code: String,
    #[schema(example = "شماره ملی وارد شده معتبر نیست.")]
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[schema(example = "urn:ncr:problem:slot_full")]
    pub r#type: String,
    #[schema(example = "Conflict")]
    pub title: String,
    #[schema(example = 409)]
    pub status: u16,
    /// The user-facing message, in Persian or English per `Accept-Language`.
    #[schema(example = "ظرفیت این دفتر در تاریخ و شیفت انتخاب شده تکمیل است؛ لطفا تاریخ یا دفتر دیگری انتخاب کنید.")]
    pub detail: String,
    /// A stable machine code to switch on.
    #[schema(example = "slot_full")]
    pub code: String,
    /// The request's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "/api/v1/citizen/application/appointment")]
    pub instance: Option<String>,
    /// The request's id, as in the `X-Request-Id` header and the server's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10")]
    pub request_id: Option<String>,
    /// One entry per invalid field (422 `validation_failed` and field rules); absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!([{"field": "national_id", "code": "national_id_invalid", "message": "شماره ملی وارد شده معتبر نیست."}]))]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before retrying (429 and some 503 answers), as in `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = 30)]
    pub retry_after: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Domain(DomainError),
    #[error("validation failed")]
    Fields(Vec<(String, String, String, String)>),
    #[error("bad request: {code}")]
    BadRequest { code: &'static str, detail: String },
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("not acceptable")]
    NotAcceptable,
    #[error("conflict: {code}")]
    Conflict { code: &'static str, retry_after: Option<u64> },
    #[error("unprocessable: {code}")]
    Unprocessable { code: &'static str },
    #[error("too many requests: {code}")]
    TooManyRequests { code: &'static str, retry_after: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A feature this deployment has not configured (503 with its own code, no retry).
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// A single-field validation error with a code from the messages table.
    pub fn field(field: &str, code: &'static str) -> Self {
        let (fa, en) = message(code);
        ApiError::Fields(vec![(field.to_owned(), code.to_owned(), fa.to_owned(), en.to_owned())])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Domain(e) => match e.kind() {
                ErrorKind::Invalid | ErrorKind::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
            },
            ApiError::Fields(_) | ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Domain(e) => e.code(),
            ApiError::Fields(_) => "validation_failed",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(code)
            | ApiError::Forbidden(code)
            | ApiError::NotFound(code)
            | ApiError::NotConfigured(code) => code,
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::NotAcceptable => "not_acceptable",
            ApiError::Conflict { code, .. } | ApiError::Unprocessable { code } => code,
            ApiError::TooManyRequests { code, .. } => code,
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            ApiError::Conflict { retry_after, .. } => *retry_after,
            ApiError::Unavailable(_) => Some(5),
            ApiError::Domain(e) if e.kind() == ErrorKind::Unavailable => Some(30),
            _ => None,
        }
    }

    /// The problem document in a language.
    pub fn problem(&self, lang: Lang) -> Problem {
        let status = self.status();
        let code = self.code().to_owned();
        let pick = |fa: &str, en: &str| match lang {
            Lang::Fa => fa.to_owned(),
            Lang::En => en.to_owned(),
        };
        let (detail, errors) = match self {
            ApiError::Domain(e) => {
                let errors = e
                    .field()
                    .map(|f| vec![FieldError { field: f.into(), code: code.clone(), message: e.message(lang) }])
                    .unwrap_or_default();
                (e.message(lang), errors)
            }
            ApiError::Fields(fields) => {
                let (fa, en) = message("validation_failed");
                let errors = fields
                    .iter()
                    .map(|(field, code, fa, en)| FieldError {
                        field: field.clone(),
                        code: code.clone(),
                        message: pick(fa, en),
                    })
                    .collect();
                (pick(fa, en), errors)
            }
            ApiError::BadRequest { detail, code } => {
                let (fa, en) = message(code);
                let base = pick(fa, en);
                (if detail.is_empty() || lang == Lang::Fa { base } else { format!("{base} {detail}") }, vec![])
            }
            other => {
                let (fa, en) = message(other.code());
                (pick(fa, en), vec![])
            }
        };
        Problem {
            r#type: format!("urn:ncr:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code,
            instance: None,
            request_id: None,
            errors,
            retry_after: self.retry_after(),
        }
    }
}

/// Builds the HTTP response for a problem.
pub fn problem_response(status: StatusCode, problem: &Problem, allow: Option<&[String]>) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON)).insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(secs) = problem.retry_after {
        builder.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    if status == StatusCode::UNAUTHORIZED {
        builder.insert_header((header::WWW_AUTHENTICATE, challenge(&problem.code)));
    }
    if let Some(methods) = allow {
        builder.insert_header((header::ALLOW, methods.join(", ")));
    }
    builder.body(serde_json::to_string(problem).unwrap_or_default())
}

/// The `WWW-Authenticate` challenge of a 401 (RFC 9110 §11.6.1, RFC 6750 §3).
pub fn challenge(code: &str) -> String {
    match code {
        "token_invalid" | "token_expired" => {
            format!("Bearer realm=\"ncr\", error=\"invalid_token\", error_description=\"{code}\"")
        }
        "client_invalid" => "Basic realm=\"ncr\"".into(),
        "ussd_secret_invalid" => "ApiKey realm=\"ncr\", header=\"X-USSD-Secret\"".into(),
        _ => "Bearer realm=\"ncr\"".into(),
    }
}

/// Marks an error response whose body is deliberately not a problem document (the OAuth
/// token endpoint's RFC 6749 §5.2 errors), so the middleware leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

/// Kept in the response so the request middleware can re-render it in the caller's
/// language and add the request id and path.
#[derive(Debug, Clone)]
pub struct ProblemSource(pub std::sync::Arc<ApiError>);

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let allow = match self {
            ApiError::MethodNotAllowed(m) => Some(m.as_slice()),
            _ => None,
        };
        let mut response = problem_response(self.status(), &self.problem(Lang::Fa), allow);
        response.extensions_mut().insert(ProblemSource(std::sync::Arc::new(self.clone_shallow())));
        response
    }
}

impl ApiError {
    /// A copy for re-rendering (internal details are not needed there).
    fn clone_shallow(&self) -> ApiError {
        match self {
            ApiError::Domain(e) => ApiError::Domain(e.clone()),
            ApiError::Fields(f) => ApiError::Fields(f.clone()),
            ApiError::BadRequest { code, detail } => ApiError::BadRequest { code, detail: detail.clone() },
            ApiError::Unauthorized(c) => ApiError::Unauthorized(c),
            ApiError::Forbidden(c) => ApiError::Forbidden(c),
            ApiError::NotFound(c) => ApiError::NotFound(c),
            ApiError::MethodNotAllowed(m) => ApiError::MethodNotAllowed(m.clone()),
            ApiError::PayloadTooLarge => ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            ApiError::NotAcceptable => ApiError::NotAcceptable,
            ApiError::Conflict { code, retry_after } => ApiError::Conflict { code, retry_after: *retry_after },
            ApiError::Unprocessable { code } => ApiError::Unprocessable { code },
            ApiError::TooManyRequests { code, retry_after } => {
                ApiError::TooManyRequests { code, retry_after: *retry_after }
            }
            // The cause is kept for the log line; the answer never shows it.
            ApiError::Unavailable(cause) => ApiError::Unavailable(cause.clone()),
            ApiError::NotConfigured(c) => ApiError::NotConfigured(c),
            ApiError::Internal(cause) => ApiError::Internal(cause.clone()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Domain(e)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Domain(d) => ApiError::Domain(d),
            DbError::NotFound => ApiError::NotFound("not_found"),
            DbError::Unavailable(m) => ApiError::Unavailable(m),
            DbError::Stale => ApiError::Conflict { code: "concurrent_update", retry_after: Some(1) },
            DbError::Duplicate(m) => ApiError::Internal(format!("unexpected duplicate: {m}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut out = Vec::new();
        collect_validation(&errors, "", &mut out);
        out.sort();
        ApiError::Fields(out)
    }
}

fn collect_validation(
    errors: &validator::ValidationErrors,
    prefix: &str,
    out: &mut Vec<(String, String, String, String)>,
) {
    for (field, kind) in errors.errors() {
        let name = if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") };
        match kind {
            validator::ValidationErrorsKind::Field(list) => {
                for e in list {
                    let code = e.code.to_string();
                    let (fa, en) = message(&code);
                    out.push((name.clone(), code, fa.to_owned(), en.to_owned()));
                }
            }
            validator::ValidationErrorsKind::Struct(inner) => collect_validation(inner, &name, out),
            validator::ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect_validation(inner, &format!("{name}[{i}]"), out);
                }
            }
        }
    }
}

/// Picks Persian or English from `Accept-Language` (Persian unless English is preferred).
pub fn lang_from_header(value: Option<&HeaderValue>) -> Lang {
    let Some(v) = value.and_then(|v| v.to_str().ok()) else { return Lang::Fa };
    let mut best: Option<(f32, Lang)> = None;
    for part in v.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        let lang = if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else if tag == "fa" || tag.starts_with("fa-") || tag == "*" {
            Lang::Fa
        } else {
            continue;
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::Fa, |(_, l)| l)
}

/// Messages for the API's own codes (domain codes carry their own).
pub fn message(code: &str) -> (&'static str, &'static str) {
    match code {
        "validation_failed" => ("برخی از اطلاعات وارد شده معتبر نیست.", "Some fields are not valid."),
        "required" => ("این مورد الزامی است.", "This field is required."),
        "unknown_field" => ("این مورد در این درخواست تعریف نشده است.", "This field is not part of this request."),
        "type" => ("نوع مقدار این مورد نادرست است.", "The value has the wrong type."),
        "length" => ("طول مقدار وارد شده مجاز نیست.", "The value's length is not allowed."),
        "range" => ("مقدار وارد شده خارج از محدوده مجاز است.", "The value is out of range."),
        "email" => ("نشانی رایانامه معتبر نیست.", "The e-mail address is not valid."),
        "invalid" => ("مقدار وارد شده معتبر نیست.", "The value is not valid."),
        "exclusive" => (
            "فقط یکی از سریال شناسنامه، کد رهگیری یا تاریخ تولد را وارد کنید.",
            "Give only one of serial, tracking_code and birth_date_jalali.",
        ),
        "province_unknown" => ("در این استان دفتری وجود ندارد.", "No office lies in this province."),
        "dates_disagree" => (
            "تاریخ شمسی و میلادی داده شده یک روز نیستند.",
            "The Jalali and the Gregorian date given are not the same day.",
        ),
        "malformed_json" => ("بدنه درخواست JSON معتبر نیست.", "The request body is not valid JSON for this operation."),
        "malformed_query" => ("پارامترهای درخواست معتبر نیست.", "The query parameters are not valid."),
        "malformed_path" => ("نشانی درخواست معتبر نیست.", "The path parameters are not valid."),
        "malformed_form" => ("فرم ارسالی معتبر نیست.", "The form body is not valid."),
        "malformed_body" => ("بدنه درخواست معتبر نیست.", "The request body is not valid."),
        "idempotency_key_required" => ("سرآیند Idempotency-Key الزامی است.", "The Idempotency-Key header is required."),
        "idempotency_key_invalid" => ("سرآیند Idempotency-Key معتبر نیست.", "The Idempotency-Key header is not valid."),
        "idempotency_key_reused" => (
            "این کلید قبلا برای درخواست دیگری به کار رفته است.",
            "This Idempotency-Key was already used with a different request body.",
        ),
        "idempotency_request_in_progress" => (
            "درخواستی با همین کلید در حال انجام است؛ کمی بعد دوباره تلاش کنید.",
            "A request with this Idempotency-Key is still in progress; retry shortly.",
        ),
        "token_missing" => ("برای این عملیات باید وارد شوید.", "Sign in first: a bearer token is required."),
        "token_invalid" => ("نشست شما معتبر نیست؛ دوباره وارد شوید.", "The token is not valid; sign in again."),
        "token_expired" => {
            ("نشست شما به پایان رسیده است؛ دوباره وارد شوید.", "Your session has expired; sign in again.")
        }
        "session_ended" => ("این نشست پایان یافته است؛ دوباره وارد شوید.", "This session has ended; sign in again."),
        "session_idle" => (
            "نشست شما به دلیل عدم فعالیت پایان یافته است؛ دوباره وارد شوید.",
            "Your session ended after a period without activity; sign in again.",
        ),
        "token_wrong_kind" => (
            "این نشست برای این بخش از سامانه نیست؛ با حساب مناسب وارد شوید.",
            "This token is for another kind of caller; this operation needs a different sign-in.",
        ),
        "credentials_invalid" => ("نام کاربری یا کلمه عبور نادرست است.", "The username or password is wrong."),
        "invalid_scope" => (
            "محدوده دسترسی درخواست شده به این سرویس‌گیرنده داده نشده است.",
            "The requested scope is not granted to this client.",
        ),
        "client_invalid" => ("شناسه یا رمز سرویس‌گیرنده نادرست است.", "The client id or secret is wrong."),
        "account_disabled" => ("حساب کاربری غیرفعال است.", "The account is disabled."),
        "account_locked" => (
            "به دلیل تلاش‌های ناموفق، حساب موقتا قفل شده است؛ بعدا تلاش کنید.",
            "Too many failed attempts; the account is temporarily locked.",
        ),
        "reset_code_invalid" => ("کد بازیابی نادرست است.", "The reset code is wrong."),
        "reset_code_expired" => {
            ("کد بازیابی منقضی شده است؛ کد جدید درخواست کنید.", "The reset code has expired; ask for a new one.")
        }
        "reset_code_attempts_exhausted" => (
            "کد بازیابی سه بار نادرست وارد شد و باطل شد؛ کد جدید درخواست کنید.",
            "The reset code was entered wrongly three times and is void; ask for a new one.",
        ),
        "password_change_required" => {
            ("پیش از ادامه باید کلمه عبور خود را تغییر دهید.", "Change your password before doing anything else.")
        }
        "forbidden" => ("شما مجاز به انجام این عملیات نیستید.", "You are not allowed to do this."),
        "not_found" => ("موردی یافت نشد.", "Not found."),
        "route_not_found" => ("چنین نشانی‌ای در این سرویس وجود ندارد.", "There is no such path in this API."),
        "method_not_allowed" => {
            ("این روش درخواست برای این نشانی مجاز نیست.", "This method is not allowed on this path.")
        }
        "payload_too_large" => ("حجم درخواست بیش از حد مجاز است.", "The request body is too large."),
        "unsupported_media_type" => ("نوع محتوای درخواست پشتیبانی نمی‌شود.", "This content type is not supported here."),
        "not_acceptable" => ("قالب درخواست شده پشتیبانی نمی‌شود.", "None of the accepted formats can be produced."),
        "rate_limited" => ("تعداد درخواست‌ها بیش از حد مجاز است؛ کمی بعد تلاش کنید.", "Too many requests; slow down."),
        "efolder_registration_limit" => (
            // One text for both budgets (national code, client address): the answer does
            // not tell which was spent.
            "ثبت نام به دفعات مجاز تلاش شده است؛ بعدا دوباره تلاش کنید.",
            "Registration was tried as often as allowed; try again later.",
        ),
        "efolder_recovery_limit" => (
            "بازیابی نام کاربری و کلمه عبور برای این کد ملی امروز به دفعات مجاز درخواست شده است؛ فردا دوباره تلاش کنید.",
            "Credentials recovery was asked for this national code as often as allowed today; try again tomorrow.",
        ),
        "guesses_limited" => (
            "از این نشانی تلاش‌های نادرست زیادی انجام شده است؛ بعدا تلاش کنید.",
            "Too many wrong attempts from this address; try again later.",
        ),
        "entry_locked" => (
            "به دلیل تلاش‌های نادرست مکرر، ورود با این شماره ملی موقتا ممکن نیست؛ بعدا تلاش کنید.",
            "Too many wrong attempts for this national code; try again later.",
        ),
        "captcha_invalid" => {
            ("پاسخ سوال امنیتی نادرست است یا منقضی شده است.", "The captcha answer is wrong or expired.")
        }
        "receipt_signature_invalid" => (
            "امضای این رسید معتبر نیست؛ رسید تغییر داده شده یا توسط این سامانه صادر نشده است.",
            "The receipt's signature is not valid: it was altered or not issued by this service.",
        ),
        "receipt_email_limit" => (
            "رسید امروز به دفعات مجاز ارسال شده است؛ بعدا تلاش کنید.",
            "The receipt was e-mailed as often as allowed today; try again later.",
        ),
        "csv_column_unknown" => {
            ("این ستون در قالب فایل تعریف نشده است.", "This column is not part of the import format.")
        }
        "csv_column_missing" => ("این ستون در سطر عنوان فایل نیست.", "The header row lacks this column."),
        "csv_column_duplicate" => ("این ستون دو بار آمده است.", "This column appears twice."),
        "csv_row_malformed" => (
            "تعداد خانه‌های این سطر با سطر عنوان برابر نیست یا سطر قابل خواندن نیست.",
            "This row cannot be read or has a different number of cells than the header.",
        ),
        "csv_too_many_rows" => (
            "فایل بیش از ۱۰٬۰۰۰ سطر دارد؛ آن را در چند فایل بارگذاری کنید.",
            "The file has more than 10,000 rows; split it.",
        ),
        "csv_empty" => ("فایل هیچ سطر داده‌ای ندارد.", "The file has no data rows."),
        "csv_too_many_errors" => (
            "خطاهای بیشتری وجود دارد؛ موارد بالا را اصلاح و دوباره بارگذاری کنید.",
            "There are more errors; fix those listed and upload again.",
        ),
        "cannot_reset_self" | "cannot_disable_self" => (
            "مدیر نمی‌تواند حساب خود را از این مسیر غیرفعال یا کلمه عبور آن را بازنشانی کند.",
            "An administrator cannot disable or reset their own account here.",
        ),
        "status_not_found" => (
            "درخواستی با این مشخصات یافت نشد؛ شماره ملی و کد رهگیری یا تاریخ تولد را بررسی کنید.",
            "No application matches these details; check the national code and the tracking code or birth date.",
        ),
        "status_lookup_limit" => (
            "استعلام وضعیت با این شماره ملی امروز بیش از حد مجاز انجام شده است؛ فردا تلاش کنید.",
            "This national code was looked up too often today; try again tomorrow.",
        ),
        "recovery_not_found" => (
            "درخواستی با این شماره ملی و تاریخ تولد یافت نشد.",
            "No application matches this national code and birth date.",
        ),
        "no_tracking_code" => (
            "برای این درخواست هنوز کد رهگیری صادر نشده است؛ کد رهگیری پس از پرداخت موفق صادر می‌شود.",
            "No tracking code has been issued yet: it is issued once the fee is paid.",
        ),
        "recovery_limit" => (
            "بازیابی کد رهگیری با این شماره ملی امروز به دفعات مجاز انجام شده است؛ فردا تلاش کنید.",
            "The tracking code was recovered as often as allowed today for this national code; try again tomorrow.",
        ),
        "ussd_not_configured" => (
            "سرویس USSD در این استقرار پیکربندی نشده است.",
            "The USSD service is not configured on this deployment (set [ussd] secret or allowed_ips).",
        ),
        "ussd_secret_invalid" => {
            ("سرآیند X-USSD-Secret نادرست است یا ارسال نشده است.", "The X-USSD-Secret header is missing or wrong.")
        }
        "ussd_address_forbidden" => {
            ("این نشانی مجاز به فراخوانی سرویس USSD نیست.", "This address is not on the USSD gateway allow-list.")
        }
        "legacy_state_invalid" => (
            "وضعیت باید draft (پرداخت‌نشده) یا registered (پرداخت‌شده) باشد.",
            "The state must be draft (unpaid) or registered (paid).",
        ),
        "not_for_draft" => (
            "درخواست پرداخت‌نشده (draft) کد رهگیری یا نوبت ندارد؛ این خانه باید خالی باشد.",
            "An unpaid (draft) application has no tracking code or appointment: leave this cell empty.",
        ),
        "legacy_id_duplicate" => ("این شناسه در فایل دو بار آمده است.", "This legacy id appears twice in the file."),
        "legacy_changed" => (
            "این درخواست پیش‌تر با داده‌های دیگری منتقل شده است و دوباره منتقل نمی‌شود.",
            "This application was imported before with other data; it is not imported again.",
        ),
        "tracking_code_taken" => {
            ("این کد رهگیری به درخواست دیگری تعلق دارد.", "This tracking code belongs to another application.")
        }
        "no_booked_appointment" => (
            "هنوز نوبتی برای شما قطعی نشده است؛ پس از پرداخت، نوبت قطعی می‌شود.",
            "No appointment is booked yet: a seat is booked once the fee is paid.",
        ),
        "concurrent_update" => {
            ("اطلاعات همزمان تغییر کرد؛ دوباره تلاش کنید.", "The data changed at the same time; try again.")
        }
        "service_unavailable" => (
            "سرویس موقتا در دسترس نیست؛ لطفا دقایقی بعد تلاش کنید.",
            "The service is temporarily unavailable; please try again shortly.",
        ),
        "internal_error" => (
            "خطای داخلی رخ داد؛ شناسه درخواست را هنگام پیگیری اعلام کنید.",
            "An internal error occurred; quote the request id when reporting it.",
        ),
        "username_taken" => ("این نام کاربری قبلا ثبت شده است.", "This username is already taken."),
        "client_id_taken" => ("این شناسه سرویس‌گیرنده قبلا ثبت شده است.", "This client id is already registered."),
        "fee_exists_for_date" => (
            "برای این نوع هزینه از این تاریخ قبلا تعرفه‌ای ثبت شده است.",
            "A fee of this kind is already set from this date.",
        ),
        "fee_not_applicable" => {
            ("این دفتر چنین هزینه‌ای دریافت نمی‌کند.", "This kind of office does not collect this fee.")
        }
        "documents_not_checked" => (
            "پیش از تکمیل ثبت نام، بررسی مدارک باید تایید شود.",
            "Confirm that the documents were checked before completing the enrollment.",
        ),
        "fingerprint_mismatch" => (
            "اثر انگشت با اثر ثبت شده روی کارت مطابقت ندارد؛ کارت تحویل نشد.",
            "The fingerprint does not match the card's; the card was not handed over.",
        ),
        "office_no_home_visits" => ("این دفتر مراجعه در منزل انجام نمی‌دهد.", "This office does not make home visits."),
        "event_id_reused" => (
            "این شناسه رویداد قبلا برای رویداد دیگری به کار رفته است.",
            "This event id was already used for a different event.",
        ),
        _ => FALLBACK,
    }
}

/// Bad cells of an uploaded CSV file (the office import, the legacy import), each named
/// `row N: column`, answered as one 422 listing at most [`RowErrors::MAX`] of them.
#[derive(Default)]
pub struct RowErrors(pub Vec<(String, String, String, String)>);

impl RowErrors {
    /// Problem documents list at most this many bad cells (then `csv_too_many_errors`).
    pub const MAX: usize = 1000;

    /// A domain refusal of one cell (`column` empty: the whole row).
    pub fn domain(&mut self, row: usize, column: &str, e: &DomainError) {
        let field = if column.is_empty() { format!("row {row}") } else { format!("row {row}: {column}") };
        self.0.push((field, e.code().to_owned(), e.message(Lang::Fa), e.message(Lang::En)));
    }

    /// An API code against a field of the caller's naming.
    pub fn code(&mut self, field: String, code: &str) {
        let (fa, en) = message(code);
        self.0.push((field, code.to_owned(), fa.to_owned(), en.to_owned()));
    }

    /// The parsed value, or its error recorded against `row: column`.
    pub fn take<T>(&mut self, row: usize, column: &str, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.domain(row, column, &e);
                None
            }
        }
    }

    pub fn finish(mut self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        if self.0.len() > Self::MAX {
            self.0.truncate(Self::MAX);
            self.code("file".into(), "csv_too_many_errors");
        }
        Err(ApiError::Fields(self.0))
    }
}

/// Reads an uploaded CSV file's header row: the column positions by lower-case name (a
/// byte-order mark ignored), or one 422 naming every unknown, repeated or missing column
/// as `row 1: column`.
pub fn csv_header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    known: &[&str],
    required: &[&str],
) -> Result<std::collections::HashMap<String, usize>, ApiError> {
    let mut errors = RowErrors::default();
    let Ok(header) = reader.headers() else {
        errors.code("row 1".into(), "csv_row_malformed");
        return Err(errors.finish().expect_err("one error"));
    };
    let header: Vec<String> =
        header.iter().map(|c| c.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()).collect();
    let mut at = std::collections::HashMap::new();
    for (i, name) in header.into_iter().enumerate() {
        if !known.contains(&name.as_str()) {
            errors.code(format!("row 1: {name}"), "csv_column_unknown");
        } else if let std::collections::hash_map::Entry::Vacant(e) = at.entry(name.clone()) {
            e.insert(i);
        } else {
            errors.code(format!("row 1: {name}"), "csv_column_duplicate");
        }
    }
    for column in required {
        if !at.contains_key(*column) {
            errors.code(format!("row 1: {column}"), "csv_column_missing");
        }
    }
    errors.finish().map(|()| at)
}

/// What an API code without its own message would say: never reached by a code the API
/// answers with (tests/tests/foundation.rs walks the source for them).
const FALLBACK: (&str, &str) = ("درخواست قابل انجام نیست.", "The request cannot be processed.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_header_names_every_unknown_repeated_and_missing_column() {
        let read = |text: &str| {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
            csv_header(&mut reader, &["code", "name", "city"], &["code", "name"])
        };
        let at = read("\u{feff}Code, NAME\nx,y\n").expect("a good header");
        assert_eq!((at["code"], at["name"]), (0, 1));
        let Err(ApiError::Fields(errors)) = read("code,colour,code\n") else { panic!("refused") };
        let named: Vec<(&str, &str)> = errors.iter().map(|(f, c, _, _)| (f.as_str(), c.as_str())).collect();
        assert_eq!(
            named,
            [
                ("row 1: colour", "csv_column_unknown"),
                ("row 1: code", "csv_column_duplicate"),
                ("row 1: name", "csv_column_missing")
            ]
        );
    }

    #[test]
    fn accept_language_picks_english_only_when_preferred() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(lang_from_header(None), Lang::Fa);
        assert_eq!(lang_from_header(Some(&h("en-US,en;q=0.9"))), Lang::En);
        assert_eq!(lang_from_header(Some(&h("fa-IR,en;q=0.5"))), Lang::Fa);
        assert_eq!(lang_from_header(Some(&h("de, en;q=0.8"))), Lang::En);
        assert_eq!(lang_from_header(Some(&h("de"))), Lang::Fa);
    }

    #[test]
    fn domain_errors_keep_their_code_and_field() {
        let p = ApiError::Domain(DomainError::NationalIdInvalid).problem(Lang::En);
        assert_eq!(p.status, 422);
        assert_eq!(p.code, "national_id_invalid");
        assert_eq!(p.errors[0].field, "national_id");
        assert_eq!(ApiError::Domain(DomainError::SlotFull).status(), StatusCode::CONFLICT);
    }

    #[test]
    fn internal_errors_hide_their_details() {
        let p = ApiError::Internal("password=hunter2 at db.rs:12".into()).problem(Lang::En);
        assert!(!serde_json::to_string(&p).unwrap().contains("hunter2"));
        assert_eq!(p.status, 500);
    }
}

/// Collects per-field errors while a request is parsed into domain types, so a client
/// learns about every bad field at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<(String, DomainError)>);

impl FieldErrors {
    /// Keeps the value, or records the error against `field`.
    pub fn take<T>(&mut self, field: &str, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push((field.to_owned(), e));
                None
            }
        }
    }

    pub fn push(&mut self, field: &str, error: DomainError) {
        self.0.push((field.to_owned(), error));
    }

    /// `Ok` when every field parsed; otherwise one 422 listing them all.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(ApiError::Fields(
            self.0
                .into_iter()
                .map(|(f, e)| (f, e.code().to_owned(), e.message(Lang::Fa), e.message(Lang::En)))
                .collect(),
        ))
    }
}
