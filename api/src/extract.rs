//! The JSON body extractor every handler uses instead of `web::Json`: `application/json`
//! only (415 otherwise), the body must be a JSON *object* (serde would otherwise accept
//! an array for a struct), whole-number floats such as `200000.0` count as integers (JSON
//! Schema's `integer` allows them), and every failure is a problem+json 400.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiCode, ApiError, FieldError};

/// A JSON object body deserialised into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Whether a request declares a JSON body.
pub fn is_json(req: &HttpRequest) -> bool {
    req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

/// Parses bytes as a JSON object into `T` (see the module docs). Text that is not JSON,
/// or not an object, is 400 `malformed_json`; a well-formed object with a missing,
/// unknown or mistyped field is 422 `validation_failed` naming the field in `errors[]`.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bad = |detail: String| ApiError::BadRequest { code: ApiCode::MalformedJson, detail };
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("the body must be a JSON object".into()));
    }
    whole_floats_to_integers(&mut value);
    if let Some(field) = nul_in(&value, "") {
        // No text column can hold it (PostgreSQL refuses the byte outright), and no field
        // of this API means one: refused here, in one place, as an invalid field.
        return Err(nul_refused(field));
    }
    serde_path_to_error::deserialize(value).map_err(|e| field_error(&e.path().to_string(), &e.inner().to_string()))
}

fn nul_refused(field: String) -> ApiError {
    let mut error = FieldError::new(field, ApiCode::Invalid);
    error.note = Some("contains a NUL character (U+0000)".into());
    ApiError::Fields(vec![error])
}

/// A query string with a parameter holding U+0000 (`%00`, in its name or its value) is
/// refused as that parameter being invalid, for every route at once (the request
/// middleware asks): as in a JSON body, no parameter of this API means one, and text
/// holding it must never reach the database.
pub fn nul_in_query(query: &str) -> Option<ApiError> {
    if !query.contains("%00") {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let (name, _) = pairs.into_iter().find(|(k, v)| k.contains('\0') || v.contains('\0'))?;
    Some(nul_refused(name.replace('\0', "")))
}

/// The path (`a.b[2].c`, as in `errors[].field`) of the first string holding U+0000.
fn nul_in(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| nul_in(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            nul_in(item, &at)
        }),
        _ => None,
    }
}

/// The field and code of a deserialisation failure at `path` (`.` for the top level).
pub fn field_error(path: &str, message: &str) -> ApiError {
    let at = |name: &str| match path.trim_start_matches('.') {
        "" => name.to_owned(),
        // An unknown field is already the last step of the path.
        known if known == name || known.ends_with(&format!(".{name}")) => known.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    let quoted = || message.split('`').nth(1).unwrap_or("").to_owned();
    let (field, code) = if message.starts_with("missing field") {
        (at(&quoted()), ApiCode::Required)
    } else if message.starts_with("unknown field") {
        (at(&quoted()), ApiCode::UnknownField)
    } else if message.starts_with("invalid type") {
        (path.trim_start_matches('.').to_owned(), ApiCode::Type)
    } else {
        (path.trim_start_matches('.').to_owned(), ApiCode::Invalid)
    };
    // The English message adds the parser's words (what was expected), for developers.
    let detail = message.split(" at line ").next().unwrap_or(message);
    let mut error = FieldError::new(field, code);
    error.note = Some(detail.to_owned());
    ApiError::Fields(vec![error])
}

fn whole_floats_to_integers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(whole_floats_to_integers),
        _ => {}
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(req) {
            return Box::pin(async { Err(ApiError::UnsupportedMediaType) });
        }
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|e| match e.as_response_error().status_code().as_u16() {
                413 => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest { code: ApiCode::MalformedBody, detail: String::new() },
            })?;
            parse_object(&bytes).map(Json)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Body {
        amount: i64,
        name: Option<String>,
    }

    #[test]
    fn objects_only_and_whole_floats_are_integers() {
        let b: Body = parse_object(br#"{"amount": 200000.0}"#).unwrap();
        assert_eq!(b.amount, 200_000);
        assert!(b.name.is_none());
        assert!(parse_object::<Body>(br#"[200000, null]"#).is_err(), "no arrays for structs");
        assert!(parse_object::<Body>(br#"{"amount": 1.5}"#).is_err());
        assert!(parse_object::<Body>(br#"{"amount": 1, "x": 2}"#).is_err());
    }

    fn fields(r: Result<Body, ApiError>) -> (u16, Vec<(String, String)>) {
        let e = r.unwrap_err();
        let p = e.problem(domain::Lang::En);
        (p.status, p.errors.into_iter().map(|f| (f.field, f.code)).collect())
    }

    #[test]
    fn missing_unknown_and_mistyped_fields_are_named() {
        let one = |f: &str, c: &str| vec![(f.to_owned(), c.to_owned())];
        assert_eq!(fields(parse_object(br#"{"name": "x"}"#)), (422, one("amount", "required")));
        assert_eq!(fields(parse_object(br#"{"amount": "ten"}"#)), (422, one("amount", "type")));
        assert_eq!(fields(parse_object(br#"{"amount": 1, "zz": 2}"#)), (422, one("zz", "unknown_field")));
        assert_eq!(fields(parse_object(br#"{"amount": 1, "name": 5}"#)), (422, one("name", "type")));
        assert_eq!(fields(parse_object(br#"{"amount": 1,"#)).0, 400, "not JSON at all");
        let p = parse_object::<Body>(br#"{}"#).unwrap_err().problem(domain::Lang::Fa);
        assert_eq!(p.errors[0].message, "این مورد الزامی است.");
    }
}
