//! The API's one error type and its RFC 9457 `application/problem+json` rendering.
//! Every failure — domain rules, validation, auth, actix's own (bad JSON, wrong content
//! type, unknown path, wrong method, body too large) and internal errors — leaves
//! through here. Messages are in Persian by default, English by `Accept-Language`.
//! Internal errors are logged with an id and never leak details.
//!
//! Business refusals are `domain::DomainError`s and carry their own messages; the
//! HTTP-level rest is an [`ApiCode`], whose messages are one exhaustive match
//! ([`ApiCode::texts`]): a code without its message does not compile
//! (docs/architecture.md, "Errors").

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, ErrorKind, Lang};
use persistence::DbError;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Declares [`ApiCode`] from one list of variants and wire codes, so [`ApiCode::ALL`]
/// and [`ApiCode::as_str`] cannot leave one out.
macro_rules! api_codes {
    ($($variant:ident = $code:literal,)+) => {
        /// The API's own codes: validation of the request's shape, authentication and
        /// permissions, missing routes, rate limits, idempotency, uploaded files'
        /// format, unavailability. Business refusals are `DomainError`s instead.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ApiCode {
            $($variant,)+
        }

        impl ApiCode {
            /// Every code, in the order declared.
            pub const ALL: &'static [ApiCode] = &[$(ApiCode::$variant,)+];

            /// The stable wire code (`code` and `type` of the problem document).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ApiCode::$variant => $code,)+
                }
            }
        }
    };
}

api_codes! {
    ValidationFailed = "validation_failed",
    Required = "required",
    UnknownField = "unknown_field",
    Type = "type",
    Length = "length",
    Range = "range",
    Email = "email",
    Invalid = "invalid",
    Exclusive = "exclusive",
    DatesDisagree = "dates_disagree",
    MalformedJson = "malformed_json",
    MalformedQuery = "malformed_query",
    MalformedPath = "malformed_path",
    MalformedForm = "malformed_form",
    MalformedBody = "malformed_body",
    IdempotencyKeyRequired = "idempotency_key_required",
    IdempotencyKeyInvalid = "idempotency_key_invalid",
    IdempotencyKeyReused = "idempotency_key_reused",
    IdempotencyRequestInProgress = "idempotency_request_in_progress",
    TokenMissing = "token_missing",
    TokenInvalid = "token_invalid",
    TokenExpired = "token_expired",
    SessionEnded = "session_ended",
    SessionIdle = "session_idle",
    TokenWrongKind = "token_wrong_kind",
    CredentialsInvalid = "credentials_invalid",
    InvalidScope = "invalid_scope",
    ClientInvalid = "client_invalid",
    AccountDisabled = "account_disabled",
    AccountLocked = "account_locked",
    PasswordChangeRequired = "password_change_required",
    Forbidden = "forbidden",
    NotFound = "not_found",
    RouteNotFound = "route_not_found",
    MethodNotAllowed = "method_not_allowed",
    PayloadTooLarge = "payload_too_large",
    UnsupportedMediaType = "unsupported_media_type",
    NotAcceptable = "not_acceptable",
    RateLimited = "rate_limited",
    EfolderRegistrationLimit = "efolder_registration_limit",
    EfolderRecoveryLimit = "efolder_recovery_limit",
    GuessesLimited = "guesses_limited",
    EntryLocked = "entry_locked",
    CaptchaInvalid = "captcha_invalid",
    ReceiptEmailLimit = "receipt_email_limit",
    CsvColumnUnknown = "csv_column_unknown",
    CsvColumnMissing = "csv_column_missing",
    CsvColumnDuplicate = "csv_column_duplicate",
    CsvRowMalformed = "csv_row_malformed",
    CsvTooManyRows = "csv_too_many_rows",
    CsvEmpty = "csv_empty",
    CsvTooManyErrors = "csv_too_many_errors",
    StatusLookupLimit = "status_lookup_limit",
    RecoveryLimit = "recovery_limit",
    UssdNotConfigured = "ussd_not_configured",
    UssdSecretInvalid = "ussd_secret_invalid",
    UssdAddressForbidden = "ussd_address_forbidden",
    ConcurrentUpdate = "concurrent_update",
    ServiceUnavailable = "service_unavailable",
    InternalError = "internal_error",
}

impl ApiCode {
    /// The code named `code` on the wire, if the API has it.
    pub fn parse(code: &str) -> Option<ApiCode> {
        ApiCode::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The message in a language.
    pub fn message(self, lang: Lang) -> &'static str {
        let (fa, en) = self.texts();
        match lang {
            Lang::Fa => fa,
            Lang::En => en,
        }
    }

    /// The Persian and English messages. No catch-all arm: a new code needs its texts.
    pub fn texts(self) -> (&'static str, &'static str) {
        match self {
            ApiCode::ValidationFailed => ("برخی از اطلاعات وارد شده معتبر نیست.", "Some fields are not valid."),
            ApiCode::Required => ("این مورد الزامی است.", "This field is required."),
            ApiCode::UnknownField => {
                ("این مورد در این درخواست تعریف نشده است.", "This field is not part of this request.")
            }
            ApiCode::Type => ("نوع مقدار این مورد نادرست است.", "The value has the wrong type."),
            ApiCode::Length => ("طول مقدار وارد شده مجاز نیست.", "The value's length is not allowed."),
            ApiCode::Range => ("مقدار وارد شده خارج از محدوده مجاز است.", "The value is out of range."),
            ApiCode::Email => ("نشانی رایانامه معتبر نیست.", "The e-mail address is not valid."),
            ApiCode::Invalid => ("مقدار وارد شده معتبر نیست.", "The value is not valid."),
            ApiCode::Exclusive => (
                "فقط یکی از سریال شناسنامه، کد رهگیری یا تاریخ تولد را وارد کنید.",
                "Give only one of serial, tracking_code and birth_date_jalali.",
            ),
            ApiCode::DatesDisagree => (
                "تاریخ شمسی و میلادی داده شده یک روز نیستند.",
                "The Jalali and the Gregorian date given are not the same day.",
            ),
            ApiCode::MalformedJson => {
                ("بدنه درخواست JSON معتبر نیست.", "The request body is not valid JSON for this operation.")
            }
            ApiCode::MalformedQuery => ("پارامترهای درخواست معتبر نیست.", "The query parameters are not valid."),
            ApiCode::MalformedPath => ("نشانی درخواست معتبر نیست.", "The path parameters are not valid."),
            ApiCode::MalformedForm => ("فرم ارسالی معتبر نیست.", "The form body is not valid."),
            ApiCode::MalformedBody => ("بدنه درخواست معتبر نیست.", "The request body is not valid."),
            ApiCode::IdempotencyKeyRequired => {
                ("سرآیند Idempotency-Key الزامی است.", "The Idempotency-Key header is required.")
            }
            ApiCode::IdempotencyKeyInvalid => {
                ("سرآیند Idempotency-Key معتبر نیست.", "The Idempotency-Key header is not valid.")
            }
            ApiCode::IdempotencyKeyReused => (
                "این کلید قبلا برای درخواست دیگری به کار رفته است.",
                "This Idempotency-Key was already used with a different request body.",
            ),
            ApiCode::IdempotencyRequestInProgress => (
                "درخواستی با همین کلید در حال انجام است؛ کمی بعد دوباره تلاش کنید.",
                "A request with this Idempotency-Key is still in progress; retry shortly.",
            ),
            ApiCode::TokenMissing => ("برای این عملیات باید وارد شوید.", "Sign in first: a bearer token is required."),
            ApiCode::TokenInvalid => {
                ("نشست شما معتبر نیست؛ دوباره وارد شوید.", "The token is not valid; sign in again.")
            }
            ApiCode::TokenExpired => {
                ("نشست شما به پایان رسیده است؛ دوباره وارد شوید.", "Your session has expired; sign in again.")
            }
            ApiCode::SessionEnded => {
                ("این نشست پایان یافته است؛ دوباره وارد شوید.", "This session has ended; sign in again.")
            }
            ApiCode::SessionIdle => (
                "نشست شما به دلیل عدم فعالیت پایان یافته است؛ دوباره وارد شوید.",
                "Your session ended after a period without activity; sign in again.",
            ),
            ApiCode::TokenWrongKind => (
                "این نشست برای این بخش از سامانه نیست؛ با حساب مناسب وارد شوید.",
                "This token is for another kind of caller; this operation needs a different sign-in.",
            ),
            ApiCode::CredentialsInvalid => {
                ("نام کاربری یا کلمه عبور نادرست است.", "The username or password is wrong.")
            }
            ApiCode::InvalidScope => (
                "محدوده دسترسی درخواست شده به این سرویس‌گیرنده داده نشده است.",
                "The requested scope is not granted to this client.",
            ),
            ApiCode::ClientInvalid => ("شناسه یا رمز سرویس‌گیرنده نادرست است.", "The client id or secret is wrong."),
            ApiCode::AccountDisabled => ("حساب کاربری غیرفعال است.", "The account is disabled."),
            ApiCode::AccountLocked => (
                "به دلیل تلاش‌های ناموفق، حساب موقتا قفل شده است؛ بعدا تلاش کنید.",
                "Too many failed attempts; the account is temporarily locked.",
            ),
            ApiCode::PasswordChangeRequired => {
                ("پیش از ادامه باید کلمه عبور خود را تغییر دهید.", "Change your password before doing anything else.")
            }
            ApiCode::Forbidden => ("شما مجاز به انجام این عملیات نیستید.", "You are not allowed to do this."),
            ApiCode::NotFound => ("موردی یافت نشد.", "Not found."),
            ApiCode::RouteNotFound => ("چنین نشانی‌ای در این سرویس وجود ندارد.", "There is no such path in this API."),
            ApiCode::MethodNotAllowed => {
                ("این روش درخواست برای این نشانی مجاز نیست.", "This method is not allowed on this path.")
            }
            ApiCode::PayloadTooLarge => ("حجم درخواست بیش از حد مجاز است.", "The request body is too large."),
            ApiCode::UnsupportedMediaType => {
                ("نوع محتوای درخواست پشتیبانی نمی‌شود.", "This content type is not supported here.")
            }
            ApiCode::NotAcceptable => {
                ("قالب درخواست شده پشتیبانی نمی‌شود.", "None of the accepted formats can be produced.")
            }
            ApiCode::RateLimited => {
                ("تعداد درخواست‌ها بیش از حد مجاز است؛ کمی بعد تلاش کنید.", "Too many requests; slow down.")
            }
            ApiCode::EfolderRegistrationLimit => (
                // One text for both budgets (national code, client address): the answer does
                // not tell which was spent.
                "ثبت نام به دفعات مجاز تلاش شده است؛ بعدا دوباره تلاش کنید.",
                "Registration was tried as often as allowed; try again later.",
            ),
            ApiCode::EfolderRecoveryLimit => (
                "بازیابی نام کاربری و کلمه عبور برای این کد ملی امروز به دفعات مجاز درخواست شده است؛ فردا دوباره تلاش کنید.",
                "Credentials recovery was asked for this national code as often as allowed today; try again tomorrow.",
            ),
            ApiCode::GuessesLimited => (
                "از این نشانی تلاش‌های نادرست زیادی انجام شده است؛ بعدا تلاش کنید.",
                "Too many wrong attempts from this address; try again later.",
            ),
            ApiCode::EntryLocked => (
                "به دلیل تلاش‌های نادرست مکرر، ورود با این شماره ملی موقتا ممکن نیست؛ بعدا تلاش کنید.",
                "Too many wrong attempts for this national code; try again later.",
            ),
            ApiCode::CaptchaInvalid => {
                ("پاسخ سوال امنیتی نادرست است یا منقضی شده است.", "The captcha answer is wrong or expired.")
            }
            ApiCode::ReceiptEmailLimit => (
                "رسید امروز به دفعات مجاز ارسال شده است؛ بعدا تلاش کنید.",
                "The receipt was e-mailed as often as allowed today; try again later.",
            ),
            ApiCode::CsvColumnUnknown => {
                ("این ستون در قالب فایل تعریف نشده است.", "This column is not part of the import format.")
            }
            ApiCode::CsvColumnMissing => ("این ستون در سطر عنوان فایل نیست.", "The header row lacks this column."),
            ApiCode::CsvColumnDuplicate => ("این ستون دو بار آمده است.", "This column appears twice."),
            ApiCode::CsvRowMalformed => (
                "تعداد خانه‌های این سطر با سطر عنوان برابر نیست یا سطر قابل خواندن نیست.",
                "This row cannot be read or has a different number of cells than the header.",
            ),
            ApiCode::CsvTooManyRows => (
                "فایل بیش از ۱۰٬۰۰۰ سطر دارد؛ آن را در چند فایل بارگذاری کنید.",
                "The file has more than 10,000 rows; split it.",
            ),
            ApiCode::CsvEmpty => ("فایل هیچ سطر داده‌ای ندارد.", "The file has no data rows."),
            ApiCode::CsvTooManyErrors => (
                "خطاهای بیشتری وجود دارد؛ موارد بالا را اصلاح و دوباره بارگذاری کنید.",
                "There are more errors; fix those listed and upload again.",
            ),
            ApiCode::StatusLookupLimit => (
                "استعلام وضعیت با این شماره ملی امروز بیش از حد مجاز انجام شده است؛ فردا تلاش کنید.",
                "This national code was looked up too often today; try again tomorrow.",
            ),
            ApiCode::RecoveryLimit => (
                "بازیابی کد رهگیری با این شماره ملی امروز به دفعات مجاز انجام شده است؛ فردا تلاش کنید.",
                "The tracking code was recovered as often as allowed today for this national code; try again tomorrow.",
            ),
            ApiCode::UssdNotConfigured => (
                "سرویس USSD در این استقرار پیکربندی نشده است.",
                "The USSD service is not configured on this deployment (set [ussd] secret or allowed_ips).",
            ),
            ApiCode::UssdSecretInvalid => {
                ("سرآیند X-USSD-Secret نادرست است یا ارسال نشده است.", "The X-USSD-Secret header is missing or wrong.")
            }
            ApiCode::UssdAddressForbidden => {
                ("این نشانی مجاز به فراخوانی سرویس USSD نیست.", "This address is not on the USSD gateway allow-list.")
            }
            ApiCode::ConcurrentUpdate => {
                ("اطلاعات همزمان تغییر کرد؛ دوباره تلاش کنید.", "The data changed at the same time; try again.")
            }
            ApiCode::ServiceUnavailable => (
                "سرویس موقتا در دسترس نیست؛ لطفا دقایقی بعد تلاش کنید.",
                "The service is temporarily unavailable; please try again shortly.",
            ),
            ApiCode::InternalError => (
                "خطای داخلی رخ داد؛ شناسه درخواست را هنگام پیگیری اعلام کنید.",
                "An internal error occurred; quote the request id when reporting it.",
            ),
        }
    }
}

impl std::fmt::Display for ApiCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// The wire form of a [`FieldError`], in the caller's language; the contract names it
// `FieldError`.
/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
#[schema(as = FieldError)]
pub struct ProblemField {
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
    pub errors: Vec<ProblemField>,
    /// Seconds to wait before retrying (429 and some 503 answers), as in `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = 30)]
    pub retry_after: Option<u64>,
}

/// Why one field was refused: a rule of the domain or one of the API's own checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Domain(DomainError),
    Api(ApiCode),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Domain(e) => e.code(),
            Refusal::Api(c) => c.as_str(),
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match self {
            Refusal::Domain(e) => e.message(lang),
            Refusal::Api(c) => c.message(lang).to_owned(),
        }
    }
}

impl From<DomainError> for Refusal {
    fn from(e: DomainError) -> Self {
        Refusal::Domain(e)
    }
}

impl From<ApiCode> for Refusal {
    fn from(c: ApiCode) -> Self {
        Refusal::Api(c)
    }
}

/// One refused input field, kept in both languages until the answer is rendered in the
/// caller's. `field` is the request's name for it: dotted for nested fields,
/// `row N: column` for a cell of an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub refusal: Refusal,
    /// Added to the English message in parentheses (the JSON parser's words, for developers).
    pub note: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, refusal: impl Into<Refusal>) -> Self {
        FieldError { field: field.into(), refusal: refusal.into(), note: None }
    }

    pub fn code(&self) -> &'static str {
        self.refusal.code()
    }

    pub fn message(&self, lang: Lang) -> String {
        let text = self.refusal.message(lang);
        match (&self.note, lang) {
            (Some(note), Lang::En) => format!("{text} ({note})"),
            _ => text,
        }
    }

    fn render(&self, lang: Lang) -> ProblemField {
        ProblemField { field: self.field.clone(), code: self.code().to_owned(), message: self.message(lang) }
    }
}

/// Collects refused fields while a request (or an uploaded file) is parsed, so a client
/// learns about every bad field at once: one 422 `validation_failed` listing them.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// An uploaded file's answer lists at most this many bad cells (then `csv_too_many_errors`).
    pub const MAX_CELLS: usize = 1000;

    /// Keeps the value, or records the error against `field`.
    pub fn take<T>(&mut self, field: impl Into<String>, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(field, e);
                None
            }
        }
    }

    /// Records a refusal of `field`.
    pub fn push(&mut self, field: impl Into<String>, refusal: impl Into<Refusal>) {
        self.0.push(FieldError::new(field, refusal));
    }

    /// Records a refusal of one cell of an uploaded file, named `row N: column`
    /// (`column` empty: the whole row).
    pub fn cell(&mut self, row: usize, column: &str, refusal: impl Into<Refusal>) {
        let field = if column.is_empty() { format!("row {row}") } else { format!("row {row}: {column}") };
        self.push(field, refusal);
    }

    /// The parsed cell, or its error recorded against `row N: column`.
    pub fn take_cell<T>(&mut self, row: usize, column: &str, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.cell(row, column, e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok` when every field parsed; otherwise one 422 listing them all.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::Fields(self.0)) }
    }

    /// Like [`finish`](Self::finish) for an uploaded file: at most
    /// [`MAX_CELLS`](Self::MAX_CELLS) cells, then `file: csv_too_many_errors`.
    pub fn finish_file(mut self) -> Result<(), ApiError> {
        if self.0.len() > Self::MAX_CELLS {
            self.0.truncate(Self::MAX_CELLS);
            self.push("file", ApiCode::CsvTooManyErrors);
        }
        self.finish()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Domain(DomainError),
    #[error("validation failed")]
    Fields(Vec<FieldError>),
    #[error("bad request: {code}")]
    BadRequest { code: ApiCode, detail: String },
    #[error("unauthorized: {0}")]
    Unauthorized(ApiCode),
    #[error("forbidden: {0}")]
    Forbidden(ApiCode),
    #[error("not found: {0}")]
    NotFound(ApiCode),
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("not acceptable")]
    NotAcceptable,
    #[error("conflict: {code}")]
    Conflict { code: ApiCode, retry_after: Option<u64> },
    #[error("unprocessable: {code}")]
    Unprocessable { code: ApiCode },
    #[error("too many requests: {code}")]
    TooManyRequests { code: ApiCode, retry_after: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A feature this deployment has not configured (503 with its own code, no retry).
    #[error("not configured: {0}")]
    NotConfigured(ApiCode),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// A 422 `validation_failed` naming one field.
    pub fn field(field: &str, refusal: impl Into<Refusal>) -> Self {
        ApiError::Fields(vec![FieldError::new(field, refusal)])
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

    /// The API's own code of this error; `None` for a domain refusal.
    pub fn api_code(&self) -> Option<ApiCode> {
        Some(match self {
            ApiError::Domain(_) => return None,
            ApiError::Fields(_) => ApiCode::ValidationFailed,
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized(code)
            | ApiError::Forbidden(code)
            | ApiError::NotFound(code)
            | ApiError::NotConfigured(code)
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code }
            | ApiError::TooManyRequests { code, .. } => *code,
            ApiError::MethodNotAllowed(_) => ApiCode::MethodNotAllowed,
            ApiError::PayloadTooLarge => ApiCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ApiCode::UnsupportedMediaType,
            ApiError::NotAcceptable => ApiCode::NotAcceptable,
            ApiError::Unavailable(_) => ApiCode::ServiceUnavailable,
            ApiError::Internal(_) => ApiCode::InternalError,
        })
    }

    /// The wire code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Domain(e) => e.code(),
            other => other.api_code().unwrap_or(ApiCode::InternalError).as_str(),
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
        let (detail, errors) = match self {
            ApiError::Domain(e) => {
                let errors = e.field().map(|f| vec![FieldError::new(f, e.clone()).render(lang)]).unwrap_or_default();
                (e.message(lang), errors)
            }
            ApiError::Fields(fields) => {
                (ApiCode::ValidationFailed.message(lang).to_owned(), fields.iter().map(|f| f.render(lang)).collect())
            }
            ApiError::BadRequest { detail, code } => {
                let base = code.message(lang).to_owned();
                (if detail.is_empty() || lang == Lang::Fa { base } else { format!("{base} {detail}") }, vec![])
            }
            other => (other.api_code().map_or_else(String::new, |c| c.message(lang).to_owned()), vec![]),
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
        response.extensions_mut().insert(ProblemSource(std::sync::Arc::new(self.clone())));
        response
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
            DbError::NotFound => ApiError::NotFound(ApiCode::NotFound),
            DbError::Unavailable(m) => ApiError::Unavailable(m),
            DbError::Stale => ApiError::Conflict { code: ApiCode::ConcurrentUpdate, retry_after: Some(1) },
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
        out.sort_by(|a, b| (&a.field, a.code()).cmp(&(&b.field, b.code())));
        ApiError::Fields(out)
    }
}

/// The `validator` crate's codes are the API's (`length`, `range`, `email`, …); one it
/// does not know is `invalid`.
fn collect_validation(errors: &validator::ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let name = if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") };
        match kind {
            validator::ValidationErrorsKind::Field(list) => {
                for e in list {
                    out.push(FieldError::new(name.clone(), ApiCode::parse(&e.code).unwrap_or(ApiCode::Invalid)));
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

/// Reads an uploaded CSV file's header row: the column positions by lower-case name (a
/// byte-order mark ignored), or one 422 naming every unknown, repeated or missing column
/// as `row 1: column`.
pub fn csv_header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    known: &[&str],
    required: &[&str],
) -> Result<std::collections::HashMap<String, usize>, ApiError> {
    let mut errors = FieldErrors::default();
    let Ok(header) = reader.headers() else {
        errors.push("row 1", ApiCode::CsvRowMalformed);
        return Err(errors.finish_file().expect_err("one error"));
    };
    let header: Vec<String> =
        header.iter().map(|c| c.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()).collect();
    let mut at = std::collections::HashMap::new();
    for (i, name) in header.into_iter().enumerate() {
        if !known.contains(&name.as_str()) {
            errors.push(format!("row 1: {name}"), ApiCode::CsvColumnUnknown);
        } else if let std::collections::hash_map::Entry::Vacant(e) = at.entry(name.clone()) {
            e.insert(i);
        } else {
            errors.push(format!("row 1: {name}"), ApiCode::CsvColumnDuplicate);
        }
    }
    for column in required {
        if !at.contains_key(*column) {
            errors.push(format!("row 1: {column}"), ApiCode::CsvColumnMissing);
        }
    }
    errors.finish_file().map(|()| at)
}

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
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code())).collect();
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

    /// Every API code has its own Persian sentence (Persian letters, not the old generic
    /// «درخواست قابل انجام نیست.») and an English one, and reads back from its wire code.
    #[test]
    fn every_api_code_has_its_own_persian_and_english_message() {
        assert!(ApiCode::ALL.len() > 50, "{}", ApiCode::ALL.len());
        let mut seen = std::collections::HashSet::new();
        for &code in ApiCode::ALL {
            assert!(seen.insert(code.as_str()), "{code}: one wire code, once");
            assert_eq!(ApiCode::parse(code.as_str()), Some(code));
            let (fa, en) = code.texts();
            assert!(fa.chars().filter(|c| ('\u{0621}'..='\u{06CC}').contains(c)).count() >= 3, "{code}: {fa}");
            assert_ne!(fa, "درخواست قابل انجام نیست.", "{code}");
            assert!(en.chars().filter(char::is_ascii_alphabetic).count() >= 3 && en.ends_with('.'), "{code}: {en}");
            assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
        assert_eq!(ApiCode::parse("no_such_code"), None);
    }

    /// The refusals that answered with the generic message until they moved into the
    /// domain answer their own, on the wire as before.
    #[test]
    fn business_refusals_answer_their_own_message() {
        let cases = [
            (DomainError::UsernameTaken, 409, "این نام کاربری قبلا ثبت شده است."),
            (DomainError::ClientIdTaken, 409, "این شناسه سرویس‌گیرنده قبلا ثبت شده است."),
            (DomainError::FeeExistsForDate, 409, "برای این نوع هزینه از این تاریخ قبلا تعرفه‌ای ثبت شده است."),
            (DomainError::FingerprintMismatch, 409, "اثر انگشت با اثر ثبت شده روی کارت مطابقت ندارد؛ کارت تحویل نشد."),
            (DomainError::EventIdReused, 409, "این شناسه رویداد قبلا برای رویداد دیگری به کار رفته است."),
            (DomainError::OfficeNoHomeVisits, 409, "این دفتر مراجعه در منزل انجام نمی‌دهد."),
            (
                DomainError::StatusNotFound,
                404,
                "درخواستی با این مشخصات یافت نشد؛ شماره ملی و کد رهگیری یا تاریخ تولد را بررسی کنید.",
            ),
            (DomainError::ResetCodeInvalid, 422, "کد بازیابی نادرست است."),
        ];
        for (e, status, fa) in cases {
            let code = e.code();
            let p = ApiError::Domain(e).problem(Lang::Fa);
            assert_eq!((p.status, p.code.as_str(), p.detail.as_str()), (status, code, fa));
            assert!(p.errors.is_empty() && p.retry_after.is_none(), "{code}: no fields, no retry");
        }
        for (e, field, fa) in [
            (DomainError::FeeNotApplicable, "counter_fee", "این دفتر چنین هزینه‌ای دریافت نمی‌کند."),
            (
                DomainError::DocumentsNotChecked,
                "documents_checked",
                "پیش از تکمیل ثبت نام، بررسی مدارک باید تایید شود.",
            ),
        ] {
            let code = e.code();
            let p = ApiError::field(field, e).problem(Lang::Fa);
            assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
            assert_eq!(p.errors, [ProblemField { field: field.into(), code: code.into(), message: fa.into() }]);
        }
    }

    #[test]
    fn field_errors_keep_both_languages_and_a_note_in_english() {
        let mut errors = FieldErrors::default();
        errors.push("limit", ApiCode::Range);
        errors.cell(7, "mobile", DomainError::MobileInvalid);
        let mut note = FieldError::new("age", ApiCode::Type);
        note.note = Some("expected an integer".into());
        let Err(ApiError::Fields(mut fields)) = errors.finish() else { panic!("refused") };
        fields.push(note);
        let en = ApiError::Fields(fields).problem(Lang::En);
        let shown: Vec<(&str, &str, &str)> =
            en.errors.iter().map(|e| (e.field.as_str(), e.code.as_str(), e.message.as_str())).collect();
        assert_eq!(
            shown,
            [
                ("limit", "range", "The value is out of range."),
                ("row 7: mobile", "mobile_invalid", DomainError::MobileInvalid.message(Lang::En).as_str()),
                ("age", "type", "The value has the wrong type. (expected an integer)"),
            ]
        );
    }

    #[test]
    fn a_file_answer_lists_at_most_its_cap_of_cells() {
        let mut errors = FieldErrors::default();
        for row in 2..FieldErrors::MAX_CELLS + 12 {
            errors.cell(row, "code", DomainError::OfficeCodeInvalid);
        }
        let Err(ApiError::Fields(cells)) = errors.finish_file() else { panic!("refused") };
        assert_eq!(cells.len(), FieldErrors::MAX_CELLS + 1);
        assert_eq!(
            (cells[FieldErrors::MAX_CELLS].field.as_str(), cells[FieldErrors::MAX_CELLS].code()),
            ("file", "csv_too_many_errors")
        );
    }
}
