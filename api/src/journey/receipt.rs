//! The registration receipt's use cases beside its rendering (`crate::receipt`): e-mailing
//! it through the outbox, at most [`EMAILS_PER_DAY`] a day per application.

use actix_web::web;
use chrono::Duration;
use domain::application::Operation;
use domain::record_ids::CitizenId;
use persistence::audit::{self, Actor};
use persistence::outbox::{self, NewMessage};

use crate::error::{ApiCode, ApiError};
use crate::receipt::{self, Receipt};
use crate::state::AppState;

/// E-mails sent per application per day, so the endpoint cannot be used to flood a mailbox.
pub const EMAILS_PER_DAY: usize = 5;

/// Lays the PDF out on the blocking pool (shaping and font subsetting take a moment).
pub async fn render_pdf(receipt: Receipt) -> Result<Vec<u8>, ApiError> {
    web::block(move || receipt::pdf::render_pdf(&receipt.doc)).await?.map_err(ApiError::internal)
}

/// Queues the citizen's receipt for `email` (the printable page as the body, a plain text
/// part, the PDF attached) and audits it, in one transaction; 429 `receipt_email_limit`
/// after [`EMAILS_PER_DAY`] in 24 hours. Returns the address masked.
pub async fn email(state: &AppState, citizen_id: &CitizenId, email: String, actor: Actor) -> Result<String, ApiError> {
    let receipt =
        receipt::for_citizen(state, super::Target::Citizen(citizen_id.clone()).reader(), Operation::EmailReceipt)
            .await?;
    let params = {
        let pdf = render_pdf(receipt.clone()).await?;
        receipt::email_params(state, &receipt, &pdf)
    };
    let hint = receipt::mask_email(&email);
    let now = state.now();
    let pii = state.pii.clone();
    let application_id = receipt.application_id.clone();
    let recipient_hint = hint.clone();
    state
        .run_api(move |conn| {
            persistence::write_tx(conn, |conn| {
                let since = (now - Duration::hours(24)).naive_utc();
                let recent: Vec<_> = outbox::for_application(conn, &application_id)?
                    .into_iter()
                    .filter(|m| m.channel == "email" && m.template == "receipt" && m.created_at > since)
                    .collect();
                if recent.len() >= EMAILS_PER_DAY {
                    let oldest = recent.iter().map(|m| m.created_at).min().unwrap_or(since);
                    let wait = (oldest - since).num_seconds().max(1);
                    return Err(ApiError::TooManyRequests {
                        code: ApiCode::ReceiptEmailLimit,
                        retry_after: wait as u64,
                    });
                }
                outbox::enqueue(
                    conn,
                    &pii,
                    NewMessage {
                        channel: "email",
                        recipient: &email,
                        recipient_hint: recipient_hint.clone(),
                        template: "receipt",
                        params,
                        lang: "fa",
                        application_id: Some(&application_id),
                        dedupe_key: None,
                    },
                    now,
                )?;
                audit::append(
                    conn,
                    &actor,
                    "receipt_emailed",
                    Some(&application_id),
                    Some(serde_json::json!({"recipient": recipient_hint})),
                    now,
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(hint)
}
