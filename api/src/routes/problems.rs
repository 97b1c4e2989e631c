//! Reusable sets of documented error responses, so every operation lists the
//! problem+json answers it can give without repeating them.

use utoipa::IntoResponses;

use crate::error::Problem;

macro_rules! problems {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $status:literal : $desc:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(IntoResponses)]
        pub enum $name {
            $(
                #[response(status = $status, description = $desc, content_type = "application/problem+json")]
                $variant(#[to_schema] Problem),
            )+
        }
    };
}

problems!(
    /// Errors of citizen reads.
    CitizenRead {
        Unauthorized = 401: "Missing, invalid or expired citizen token (`token_missing`, `token_invalid`, `token_expired`)",
        Forbidden = 403: "A valid token of another kind (`token_wrong_kind`)",
        NotFound = 404: "No application yet (`application_not_found`)",
        TooMany = 429: "Rate limited (`rate_limited`); see `Retry-After`",
        Unavailable = 503: "Database unavailable; retry after `Retry-After`",
    }
);

problems!(
    /// Errors of citizen writes.
    CitizenWrite {
        BadRequest = 400: "The body is not JSON or not an object (`malformed_json`)",
        Unauthorized = 401: "Missing, invalid or expired citizen token (`token_missing`, `token_invalid`, `token_expired`)",
        Forbidden = 403: "A valid token of another kind (`token_wrong_kind`)",
        NotFound = 404: "No application yet, or the office does not exist",
        Conflict = 409: "Not allowed in the application's state; `code` says why (e.g. `edit_limit_reached`, `enrollment_started`, `slot_full`, `no_show_ban_active`)",
        TooLarge = 413: "Body too large",
        MediaType = 415: "Body is not application/json",
        Invalid = 422: "A missing, unknown or mistyped field or an invalid value (`validation_failed`; `errors[]` names each field), or a rule said no (e.g. `birth_date_mismatch`)",
        TooMany = 429: "Rate limited",
        Unavailable = 503: "Database or an outside system unavailable",
    }
);

problems!(
    /// Errors of a logout.
    SessionEnd {
        Unauthorized = 401: "Missing, invalid or expired token, or the session already ended (`session_ended`)",
        TooMany = 429: "Rate limited",
        Unavailable = 503: "Database unavailable",
    }
);

problems!(
    /// Errors of public reads.
    PublicRead {
        BadRequest = 400: "A query parameter cannot be read (`malformed_query`)",
        Invalid = 422: "A missing, unknown or invalid parameter (`validation_failed`; `errors[]` names it)",
        TooMany = 429: "Rate limited",
        Unavailable = 503: "Database unavailable",
    }
);

problems!(
    /// Errors of public writes.
    PublicWrite {
        BadRequest = 400: "The body is not JSON or not an object (`malformed_json`)",
        TooLarge = 413: "Body too large (`payload_too_large`)",
        MediaType = 415: "Body is not application/json (`unsupported_media_type`)",
        Invalid = 422: "A missing, unknown or mistyped field or an invalid value (`validation_failed`; `errors[]` names each field), a wrong captcha (`captcha_invalid`), or a rule said no",
        TooMany = 429: "Rate limited or locked; see `Retry-After`",
        Unavailable = 503: "Database or an outside system unavailable",
    }
);

problems!(
    /// Errors of citizen entry.
    CitizenEntry {
        BadRequest = 400: "The body is not JSON or not an object (`malformed_json`)",
        TooLarge = 413: "Body too large (`payload_too_large`)",
        MediaType = 415: "Body is not application/json (`unsupported_media_type`)",
        Conflict = 409: "`tracking_code_required`: the registration entered by birth date is paid; enter with the tracking code",
        Invalid = 422: "A missing, unknown or mistyped field or an invalid value (`validation_failed`; `errors[]` names each field; two of serial, tracking code and birth date: `exclusive`), a wrong captcha (`captcha_invalid`), or a rule said no (`identity_mismatch`, `tracking_code_mismatch`, `draft_not_found`, `person_not_alive`, `underage`)",
        TooMany = 429: "Rate limited, or locked after wrong serials, tracking codes or birth dates (`entry_locked`), or `serial_recently_changed`; see `Retry-After`",
        Unavailable = 503: "`registry_unavailable`: the civil registry could not check the serial and the national code already has an application, a live session or another confirmed serial — no session is opened, nothing is written or counted; try again after `Retry-After`. Also: database unavailable",
    }
);

problems!(
    /// Errors of staff and machine operations.
    StaffWrite {
        BadRequest = 400: "The body is not JSON or not an object (`malformed_json`), or the query cannot be read",
        Unauthorized = 401: "Missing, invalid or expired token, or a disabled account (`token_missing`, `token_invalid`, `token_expired`)",
        Forbidden = 403: "The token's role or scope does not allow this (`forbidden`), or it is a token of another kind (`token_wrong_kind`)",
        NotFound = 404: "Not found (or not in the caller's office)",
        Conflict = 409: "Not allowed in the current state",
        TooLarge = 413: "Body too large",
        MediaType = 415: "Wrong content type",
        Invalid = 422: "A missing, unknown or mistyped field or an invalid value (`validation_failed`; `errors[]` names each field)",
        Unavailable = 503: "Database unavailable",
    }
);

problems!(
    /// Errors of staff and machine reads.
    StaffRead {
        BadRequest = 400: "A query parameter cannot be read (`malformed_query`)",
        Unauthorized = 401: "Missing, invalid or expired token, or a disabled account (`token_missing`, `token_invalid`, `token_expired`)",
        Forbidden = 403: "The token's role or scope does not allow this (`forbidden`), or it is a token of another kind (`token_wrong_kind`)",
        NotFound = 404: "Not found (or not in the caller's office)",
        Invalid = 422: "A missing, unknown or invalid parameter (`validation_failed`; `errors[]` names it)",
        Unavailable = 503: "Database unavailable",
    }
);
