//! Real bank protocol clients behind [`domain::ports::PaymentGateway`].
//!
//! Both clients keep "the bank said no" apart from "the bank did not answer": a timeout,
//! a refused connection or a 5xx is always [`PortError::Unavailable`], never a refusal,
//! because a citizen's card may already have been charged.

pub mod parsian;
pub mod sadad;

use domain::ports::PortError;
use reqwest::StatusCode;

/// A gateway's names for clients to offer: (Persian, English).
pub fn display_names(id: &str) -> (&'static str, &'static str) {
    match id {
        "sadad" => ("بانک ملی ایران (سداد)", "Bank Melli Iran (Sadad)"),
        "parsian" => ("بانک پارسیان", "Parsian Bank"),
        "sandbox" => ("درگاه آزمایشی", "Sandbox bank (test payments)"),
        _ => ("درگاه پرداخت", "Payment gateway"),
    }
}

/// Classifies a transport failure. Everything except a malformed request we built is
/// "unknown answer": the bank may or may not have acted on it.
pub(crate) fn transport_error(bank: &str, error: reqwest::Error) -> PortError {
    if error.is_builder() {
        return PortError::Protocol(format!("{bank}: could not build the request (check base_url)"));
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // Without the URL: keeps the message short and free of anything request-specific.
    PortError::Unavailable(format!("{bank}: {kind}: {}", error.without_url()))
}

/// Maps a non-success HTTP status. 5xx, 408 and 429 mean "try again later"; any other
/// status means the bank refused what we sent, which retrying will not fix.
pub(crate) fn http_status_error(bank: &str, status: StatusCode) -> PortError {
    let message = format!("{bank}: HTTP {status}");
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS {
        PortError::Unavailable(message)
    } else {
        PortError::Protocol(message)
    }
}

/// The first non-empty value of a callback field. Banks are inconsistent about the case
/// of field names (Sadad posts `token`, its documentation says `Token`), so the match
/// ignores case.
pub(crate) fn callback_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
        .find(|value| !value.is_empty())
}

/// `base_url` without a trailing slash, so paths can be appended.
pub(crate) fn trim_base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        assert!(matches!(http_status_error("x", StatusCode::BAD_GATEWAY), PortError::Unavailable(_)));
        assert!(matches!(http_status_error("x", StatusCode::TOO_MANY_REQUESTS), PortError::Unavailable(_)));
        assert!(matches!(http_status_error("x", StatusCode::NOT_FOUND), PortError::Protocol(_)));
    }

    #[test]
    fn callback_fields_ignore_case_and_blanks() {
        let fields = vec![("Token".to_owned(), " ".to_owned()), ("token".to_owned(), " abc ".to_owned())];
        assert_eq!(callback_field(&fields, "TOKEN"), Some("abc"));
        assert_eq!(callback_field(&fields, "OrderId"), None);
        assert_eq!(trim_base("https://x.example//"), "https://x.example");
    }
}
pub mod sandbox;
