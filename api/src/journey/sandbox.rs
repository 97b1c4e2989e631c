//! Reading the sandbox phone and mailbox (`routes/outbox.rs`): the messages the sandbox
//! SMS and e-mail senders "delivered", in clear, for demos and tests. Each read is
//! recorded in the audit log in the same database visit.

use domain::ids::Mobile;
use persistence::audit::Actor;
use persistence::sandbox_messages::{EmailRow, SmsRow};

use crate::error::ApiError;
use crate::page::PageRequest;
use crate::state::AppState;

/// SMS the sandbox phone received (to one mobile, or all), newest first: the rows of one
/// page ([`PageRequest::fetch`]), the read audited as `sandbox_sms_read`.
pub async fn read_sms(
    state: &AppState,
    who: Actor,
    to: Option<Mobile>,
    paging: &PageRequest,
) -> Result<Vec<SmsRow>, ApiError> {
    let (pii, now) = (state.pii.clone(), state.now());
    let (cursor, limit, fetch) = (paging.cursor.clone(), paging.limit, paging.fetch());
    state
        .run(move |conn| {
            let rows = persistence::sandbox_messages::list_sms(
                conn,
                &pii,
                to.as_ref().map(Mobile::as_str),
                cursor.as_deref(),
                fetch,
            )?;
            let count = rows.len().min(usize::try_from(limit).unwrap_or(0));
            let details = serde_json::json!({"to": to.as_ref().map(|m| m.masked()), "count": count});
            persistence::audit::append(conn, &who, "sandbox_sms_read", None, Some(details), now)?;
            Ok(rows)
        })
        .await
}

/// E-mails the sandbox mailbox received (to one address, or all), newest first: the rows
/// of one page, the read audited as `sandbox_emails_read`.
pub async fn read_emails(
    state: &AppState,
    who: Actor,
    to: Option<String>,
    paging: &PageRequest,
) -> Result<Vec<EmailRow>, ApiError> {
    let (pii, now) = (state.pii.clone(), state.now());
    let (cursor, limit, fetch) = (paging.cursor.clone(), paging.limit, paging.fetch());
    state
        .run(move |conn| {
            let rows = persistence::sandbox_messages::list_emails(conn, &pii, to.as_deref(), cursor.as_deref(), fetch)?;
            let count = rows.len().min(usize::try_from(limit).unwrap_or(0));
            let details = serde_json::json!({"filtered": to.is_some(), "count": count});
            persistence::audit::append(conn, &who, "sandbox_emails_read", None, Some(details), now)?;
            Ok(rows)
        })
        .await
}
