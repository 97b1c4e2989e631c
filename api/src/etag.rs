//! `ETag` and `If-None-Match` (RFC 9110 §8.8.3, §13.1.2) on the documents clients poll:
//! the application (citizen and kiosk), the public pages and the region list. The tag is
//! a hash of the JSON answer, so it changes exactly when the answer does (state, language,
//! fees, offices); a request whose `If-None-Match` names it gets `304 Not Modified`
//! without a body.
//!
//! [`OPERATIONS`] lists them; `contract::finish` documents the parameter, the header and
//! the 304 on each, and `tests/tests/contract.rs` holds every one of them to it.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The operations answering with an `ETag` and honouring `If-None-Match`.
pub const OPERATIONS: [&str; 5] = [
    "citizen_get_application",
    "kiosk_get_application",
    "public_get_process_info",
    "public_get_registration_conditions",
    "public_list_regions",
];

/// A strong entity tag of a body: `"` + 32 hex digits of its SHA-256 + `"`.
pub fn tag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", &hex::encode(digest)[..32])
}

/// Whether `If-None-Match` names `tag` (or is `*`). The weak comparison applies
/// (RFC 9110 §13.1.2): `W/"x"` matches `"x"`.
pub fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/") == tag
    })
}

/// `value` as JSON with its `ETag`, or `304 Not Modified` (same headers, no body) when the
/// request already holds it. `builder` carries the answer's other headers (caching).
pub fn json(
    req: &HttpRequest,
    mut builder: HttpResponseBuilder,
    value: &impl Serialize,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("serialising an answer: {e}")))?;
    let tag = tag_of(&body);
    builder.insert_header((header::ETAG, tag.clone()));
    if none_match(req.headers(), &tag) {
        return Ok(builder.status(actix_web::http::StatusCode::NOT_MODIFIED).finish());
    }
    Ok(builder.content_type("application/json").body(body))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    #[test]
    fn tags_follow_the_body_and_match_weakly() {
        let a = tag_of(b"{\"state\":\"draft\"}");
        assert_eq!(a, tag_of(b"{\"state\":\"draft\"}"));
        assert_ne!(a, tag_of(b"{\"state\":\"registered\"}"));
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34);
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, &a));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"other\", W/{a}")).unwrap());
        assert!(none_match(&h, &a));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!none_match(&h, &a));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, &a));
    }
}
