//! The contract's conventions, applied to every operation after the handlers have
//! registered theirs — so an endpoint added tomorrow follows them without anyone
//! remembering to:
//!
//! - every error answer is `application/problem+json` with a `$ref` to the one
//!   `Problem` component and an example that fits its status (the code is the first
//!   backticked code of the response's description that this server knows);
//! - every answer documents `X-Request-Id`; 401 documents `WWW-Authenticate`, 429
//!   `Retry-After` (and 503 may carry it), 201 `Location`, a PDF `Content-Disposition`,
//!   and an operation taking `Idempotency-Key` documents `Idempotent-Replayed`;
//! - every operation declares `Accept-Language` and its `security` (`[]` when public);
//! - the operations of [`crate::etag::OPERATIONS`] declare `If-None-Match`, `ETag` and 304;
//! - optional header and query parameters are plain types, not "string or null";
//! - the staff role an operation needs is written into its description.
//!
//! What each handler still says itself: its `operation_id` (`<tag>_<verb>_<noun>`, unique;
//! `tests/tests/contract.rs` fails otherwise), its `tag`, its `security` (see
//! [`SecuritySchemes`] for the names) and the codes its error responses can carry.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, Response};

use crate::error::{ApiCode, ApiError};
use domain::DomainError;

/// Where the embedded default serves (the committed contract's server); a running
/// server lists its own `public_url` first in the document it serves.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The machine-client scopes and what each allows.
pub const SCOPES: [(&str, &str); 2] = [
    ("kiosk:applications", "Partner kiosks: register applications for citizens and read their own"),
    ("production:events", "The card production line: report production events"),
];

/// The security schemes operations name in `security(...)`:
/// `citizen`, `staff`, `efolder` (bearer JWTs from the sign-in operations), `machine`
/// (OAuth 2.0 client credentials with [`SCOPES`]) and `ussd_secret` (the gateway's
/// `X-USSD-Secret` header). A public operation names none.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("citizen", "Citizen token from `POST /api/v1/citizen/sessions` (30 minutes)."),
            (
                "staff",
                "Staff token from `POST /api/v1/staff/sessions`. The role (`operator` of one office, or `admin`) \
                 decides what it opens; each operation says which role it needs, the other role gets 403.",
            ),
            ("efolder", "E-folder token from `POST /api/v1/efolder/sessions`."),
        ] {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.bearer_format = Some("JWT".into());
            http.description = Some(what.into());
            components.add_security_scheme(name, SecurityScheme::Http(http));
        }
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "Client authentication at the token endpoint (RFC 6749 §2.3.1): `client_id:client_secret`, \
             each form-urlencoded, in HTTP Basic. The form body may carry them instead."
                .into(),
        );
        components.add_security_scheme("client_basic", SecurityScheme::Http(basic));
        let scopes = Scopes::from_iter(SCOPES.iter().map(|(s, d)| ((*s).to_owned(), (*d).to_owned())));
        components.add_security_scheme(
            "machine",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new("/api/v1/oauth/token", scopes))],
                "Machine clients (kiosks, the production line): OAuth 2.0 client credentials \
                 (RFC 6749 §4.4) at `POST /api/v1/oauth/token`, client authentication by HTTP Basic \
                 or in the form body. Send the token as `Authorization: Bearer …`.",
            )),
        );
        components.add_security_scheme(
            "ussd_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-USSD-Secret",
                "The USSD gateway's shared secret (`[ussd] secret`). A deployment may instead (or as well) \
                 admit the gateway by address (`[ussd] allowed_ips`).",
            ))),
        );
    }
}

/// Applies the conventions (see the module docs) to the whole document.
pub fn finish(api: &mut OpenApi) {
    api.servers = Some(vec![
        Server::builder()
            .url(DEFAULT_SERVER)
            .description(Some(
                "The embedded default (`cargo run --bin ncr`); a deployment serves the same paths at its `public_url`",
            ))
            .build(),
    ]);
    let components = api.components.get_or_insert_with(Default::default);
    components.headers.extend(headers());
    components.parameters.insert("AcceptLanguage".into(), RefOr::T(accept_language()));
    components.parameters.insert("IfNoneMatch".into(), RefOr::T(if_none_match()));
    for (path, item) in api.paths.paths.iter_mut() {
        for op in operations_mut(item) {
            operation(path, op);
        }
    }
}

/// A header's `required: true`. utoipa's `Header` has no such field, so it is written as
/// this extension and renamed in the serialised document ([`to_json`], [`to_yaml`]).
const REQUIRED_MARK: &str = "x-required";

/// The document as JSON text.
pub fn to_json(api: &OpenApi) -> String {
    api.to_json().expect("OpenAPI serialises").replace("\"x-required\":true", "\"required\":true")
}

/// Plain scalars a YAML 1.1 reader (PyYAML, many generators) would turn into a date, a
/// timestamp or a base-60 number, though YAML 1.2 reads them as strings.
static YAML11_TRAPS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(\s*(?:- |[^\s:'\x22#][^:\x22]*: |- [^\s:'\x22#][^:\x22]*: ))(\d{4}-\d{1,2}-\d{1,2}(?:[Tt ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|[1-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$")
        .expect("regex")
});

/// The document as YAML text, with date-like and base-60-like strings quoted so YAML 1.1
/// readers see the same document as JSON readers.
pub fn to_yaml(api: &OpenApi) -> String {
    let text = api.to_yaml().expect("OpenAPI serialises").replace(" x-required: true\n", " required: true\n");
    YAML11_TRAPS.replace_all(&text, "$1'$2'").into_owned()
}

/// The document a running server serves lists where this deployment is reached first.
pub fn serve_at(api: &mut OpenApi, public_url: &str) {
    let url = public_url.trim_end_matches('/');
    let servers = api.servers.get_or_insert_with(Vec::new);
    if !url.is_empty() && !servers.iter().any(|s| s.url == url) {
        servers.insert(0, Server::builder().url(url).description(Some("This deployment")).build());
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .filter_map(Option::as_mut)
}

fn header_ref(name: &str) -> RefOr<Header> {
    RefOr::Ref(Ref::new(format!("#/components/headers/{name}")))
}

fn header(kind: Type, description: &str, example: Value, required: bool) -> RefOr<Header> {
    let mut h = Header::new(Object::with_type(kind));
    h.description = Some(description.into());
    h.example = Some(example);
    if required {
        h.extensions = Some(ExtensionsBuilder::new().add(REQUIRED_MARK.trim_start_matches("x-"), true).build());
    }
    RefOr::T(h)
}

fn headers() -> BTreeMap<String, RefOr<Header>> {
    BTreeMap::from([
        (
            "X-Request-Id".into(),
            header(
                Type::String,
                "The request's id (the caller's own `X-Request-Id` when it is 1–64 letters, digits, `-` or `_`); \
                 also in problem bodies as `request_id` and in the server's log line. Quote it when reporting a problem.",
                json!("0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10"),
                true,
            ),
        ),
        ("Retry-After".into(), header(Type::Integer, "Seconds to wait before trying again.", json!(30), true)),
        (
            "Retry-After-Optional".into(),
            header(Type::Integer, "Seconds to wait before trying again, when a retry can help.", json!(5), false),
        ),
        (
            "WWW-Authenticate".into(),
            header(
                Type::String,
                "The authentication the operation wants (RFC 9110 §11.6.1).",
                json!("Bearer realm=\"ncr\", error=\"invalid_token\""),
                true,
            ),
        ),
        (
            "Location".into(),
            header(Type::String, "Where the created resource is read.", json!("/api/v1/citizen/application"), true),
        ),
        (
            "Idempotent-Replayed".into(),
            header(
                Type::String,
                "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key` and body.",
                json!("true"),
                false,
            ),
        ),
        (
            "ETag".into(),
            header(
                Type::String,
                "The answer's entity tag: send it back as `If-None-Match` to get 304 while nothing changed.",
                json!("\"5d41402abc4b2a76b9719d911017c592\""),
                true,
            ),
        ),
        (
            "Content-Disposition".into(),
            header(
                Type::String,
                "The file's name for saving (with a PDF answer).",
                json!("attachment; filename=\"receipt-4973201670.pdf\""),
                false,
            ),
        ),
    ])
}

fn accept_language() -> Parameter {
    let mut schema = Object::with_type(Type::String);
    schema.example = Some(json!("en"));
    let mut p = Parameter::new("Accept-Language");
    p.parameter_in = ParameterIn::Header;
    p.required = Required::False;
    p.description = Some(
        "Language of messages (`detail`, `errors[].message`, texts): Persian unless English is preferred \
         (`en`, `en-US`, `fa;q=0.5, en`)."
            .into(),
    );
    p.schema = Some(RefOr::T(Schema::Object(schema)));
    p
}

fn if_none_match() -> Parameter {
    let mut schema = Object::with_type(Type::String);
    schema.example = Some(json!("\"5d41402abc4b2a76b9719d911017c592\""));
    let mut p = Parameter::new("If-None-Match");
    p.parameter_in = ParameterIn::Header;
    p.required = Required::False;
    p.description =
        Some("The `ETag` of the answer already held: while it is still the answer, 304 without a body.".into());
    p.schema = Some(RefOr::T(Schema::Object(schema)));
    p
}

static BACKTICKED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([a-z][a-z0-9_]+)`").expect("regex"));

/// A problem document to show under `status`: the first known code of the description
/// (the API's own or a domain refusal answered with that status), else the status's
/// usual one.
pub fn example_problem(status: u16, description: &str, path: &str) -> Value {
    let error = BACKTICKED
        .captures_iter(description)
        .find_map(|c| example_error(status, c.get(1).map_or("", |m| m.as_str())))
        .unwrap_or_else(|| api_error(status, default_code(status)));
    let mut problem = error.problem(domain::Lang::Fa);
    problem.status = status;
    problem.title = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
        .to_owned();
    if matches!(status, 405 | 406 | 413 | 415) {
        let code = default_code(status);
        problem.code = code.as_str().into();
        problem.r#type = format!("urn:ncr:problem:{code}");
        problem.detail = code.message(domain::Lang::Fa).into();
    }
    if problem.code == "national_id_invalid" || problem.code == "validation_failed" {
        problem.errors[0].message = "شماره ملی وارد شده معتبر نیست.".into();
    }
    problem.instance = Some(path.to_owned());
    problem.request_id = Some("0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10".into());
    serde_json::to_value(problem).unwrap_or(Value::Null)
}

/// The error a code named in a description stands for under `status`, when it is one.
fn example_error(status: u16, code: &str) -> Option<ApiError> {
    if let Some(code) = ApiCode::parse(code) {
        return default_status(code).is_none_or(|s| s == status).then(|| api_error(status, code));
    }
    let refusal = DomainError::every().into_iter().find(|e| e.code() == code)?;
    let error = ApiError::Domain(refusal);
    (error.status().as_u16() == status).then_some(error)
}

/// An API code's error under `status`.
fn api_error(status: u16, code: ApiCode) -> ApiError {
    match status {
        401 => ApiError::Unauthorized(code),
        403 => ApiError::Forbidden(code),
        404 => ApiError::NotFound(code),
        409 => ApiError::Conflict { code, retry_after: None },
        422 if code == ApiCode::ValidationFailed => ApiError::field("national_id", DomainError::NationalIdInvalid),
        422 => ApiError::Unprocessable { code },
        429 => ApiError::TooManyRequests { code, retry_after: 30 },
        503 => ApiError::Unavailable(String::new()),
        500 => ApiError::Internal(String::new()),
        _ => ApiError::BadRequest { code, detail: String::new() },
    }
}

fn default_code(status: u16) -> ApiCode {
    match status {
        400 => ApiCode::MalformedJson,
        401 => ApiCode::TokenMissing,
        403 => ApiCode::Forbidden,
        404 => ApiCode::NotFound,
        405 => ApiCode::MethodNotAllowed,
        406 => ApiCode::NotAcceptable,
        409 => ApiCode::ConcurrentUpdate,
        413 => ApiCode::PayloadTooLarge,
        415 => ApiCode::UnsupportedMediaType,
        422 => ApiCode::ValidationFailed,
        429 => ApiCode::RateLimited,
        500 => ApiCode::InternalError,
        _ => ApiCode::ServiceUnavailable,
    }
}

/// The status an API code always has, when it has one.
fn default_status(code: ApiCode) -> Option<u16> {
    use ApiCode::*;
    Some(match code {
        TokenMissing | TokenInvalid | TokenExpired | CredentialsInvalid | ClientInvalid | UssdSecretInvalid => 401,
        Forbidden | PasswordChangeRequired | UssdAddressForbidden | TokenWrongKind => 403,
        RateLimited | AccountLocked | EntryLocked | StatusLookupLimit | RecoveryLimit | ReceiptEmailLimit => 429,
        ValidationFailed => 422,
        MalformedJson | MalformedQuery | MalformedForm | MalformedPath | MalformedBody => 400,
        ServiceUnavailable | UssdNotConfigured => 503,
        _ => return None,
    })
}

fn security_names(op: &Operation) -> Vec<String> {
    let mut names: Vec<String> = op
        .security
        .iter()
        .flatten()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect();
    names.dedup();
    names
}

/// Drops `null` from an optional parameter's type: absent is how a parameter is left out.
fn not_null(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::Object(o)) = schema
        && let SchemaType::Array(types) = &o.schema_type
    {
        let rest: Vec<Type> = types.iter().filter(|t| **t != Type::Null).cloned().collect();
        if rest.len() == 1 {
            o.schema_type = SchemaType::Type(rest[0].clone());
        }
    }
}

fn operation(path: &str, op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    let mut idempotent = false;
    for p in params.iter_mut() {
        if let RefOr::T(p) = p {
            idempotent |= p.name == "Idempotency-Key";
            if !matches!(p.required, Required::True)
                && let Some(s) = p.schema.as_mut()
            {
                not_null(s);
            }
        }
    }
    params.push(RefOr::Ref(Ref::new("#/components/parameters/AcceptLanguage")));
    let tagged = op.operation_id.as_deref().is_some_and(|id| crate::etag::OPERATIONS.contains(&id));
    if tagged {
        params.push(RefOr::Ref(Ref::new("#/components/parameters/IfNoneMatch")));
        op.responses.responses.insert(
            "304".into(),
            RefOr::T(
                Response::builder().description("Not modified: the `If-None-Match` tag is still the answer").build(),
            ),
        );
    }

    let schemes = security_names(op);
    if op.security.is_none() {
        op.security = Some(Vec::new());
    }
    if schemes.iter().any(|s| s == "staff") {
        let role = if path.starts_with("/api/v1/office/") {
            "Staff role: `operator` (of the application's office); an administrator gets 403."
        } else {
            "Staff role: `admin`; an operator gets 403."
        };
        let description = op.description.get_or_insert_with(String::new);
        if !description.contains("Staff role:") {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(role);
        }
    }

    // Every authenticated operation can answer 401 (no or a bad token) and 403 (a valid
    // token of another kind, or a role or scope that does not reach this).
    let bearer = schemes.iter().any(|s| s != "ussd_secret" && s != "client_basic");
    if bearer {
        for (status, text) in [
            ("401", "Missing, invalid or expired token (`token_missing`, `token_invalid`, `token_expired`)"),
            ("403", "A valid token of another kind (`token_wrong_kind`), or a role or scope that does not reach this"),
        ] {
            op.responses.responses.entry(status.into()).or_insert_with(|| {
                RefOr::T(
                    Response::builder()
                        .description(text)
                        .content(crate::error::PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
                        .build(),
                )
            });
        }
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        let code: u16 = status.parse().unwrap_or(0);
        response.headers.insert("X-Request-Id".into(), header_ref("X-Request-Id"));
        if code >= 400 {
            let example = example_problem(code, &response.description, path);
            for (media, content) in response.content.iter_mut() {
                if media.starts_with(crate::error::PROBLEM_JSON)
                    && let RefOr::T(content) = content
                {
                    content.schema = Some(RefOr::Ref(Ref::from_schema_name("Problem")));
                    content.example = Some(example.clone());
                    content.examples.clear();
                }
            }
        }
        match code {
            401 => {
                response.headers.insert("WWW-Authenticate".into(), header_ref("WWW-Authenticate"));
            }
            429 => {
                response.headers.insert("Retry-After".into(), header_ref("Retry-After"));
            }
            503 => {
                response.headers.insert("Retry-After".into(), header_ref("Retry-After-Optional"));
            }
            201 => {
                response.headers.insert("Location".into(), header_ref("Location"));
            }
            _ => {}
        }
        if tagged && (code == 200 || code == 304) {
            response.headers.insert("ETag".into(), header_ref("ETag"));
        }
        if idempotent && (200..500).contains(&code) {
            response.headers.insert("Idempotent-Replayed".into(), header_ref("Idempotent-Replayed"));
        }
        if (200..300).contains(&code) && response.content.keys().any(|m| m == "application/pdf") {
            response.headers.insert("Content-Disposition".into(), header_ref("Content-Disposition"));
        }
    }
}
