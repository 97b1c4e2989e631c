//! Re-issue (issue 19; docs/domain/application.md: «در صورتی که تا پیش از تغییر سریال مرحله ی تولید کارت
//! آغاز شده باشد پس از تحویل کارت تولید شده در دفتر تکمیل ثبت نام نسبت به ثبت درخواست صدور
//! مجدد اقدام نموده و کارت جدید دریافت خواهد کرد»): after delivery — the serial changed after
//! production, or the card was lost or damaged, or the holder's data changed — the citizen
//! starts a new card cycle, linked to the delivered one, that books and pays the re-issue fee
//! like a first registration. Rules: `domain::application::start_reissue`.

use domain::application::{ReissueReason, State, start_reissue};
use domain::record_ids::CitizenId;
use persistence::applications::{self, ApplicationRow};
use persistence::audit::{self, Actor};

use super::{Target, mutate};
use crate::error::ApiError;
use crate::state::AppState;

/// Starts the re-issue cycle; returns it and whether it was created now (`false`: the same
/// request again, answered with the cycle it created).
pub async fn request(
    state: &AppState,
    citizen_id: &CitizenId,
    reason: ReissueReason,
    actor: Actor,
) -> Result<(ApplicationRow, bool), ApiError> {
    let policy = state.policy.clone();
    let (new, _) = mutate(state, Target::Citizen(citizen_id.to_owned()), move |conn, row, app, now| {
        // The same request again (a retry after a lost answer): the cycle it created.
        if app.reissue == Some(reason) && app.state == State::Draft && row.previous_application_id.is_some() {
            return Ok((row.clone(), false));
        }
        let next = start_reissue(app, reason, now, &policy)?;
        let mut new = super::personal::blank_row(
            &row.citizen_id,
            row.cycle + 1,
            &row.nid_hash,
            &row.nid_enc,
            &row.serial_enc,
            now,
        );
        new.set_domain(&next);
        new.personal_enc = row.personal_enc.clone();
        new.mobile_hash = row.mobile_hash.clone();
        new.mobile_enc = row.mobile_enc.clone();
        new.family_enc = row.family_enc.clone();
        new.previous_application_id = Some(row.id.clone());
        new.created_by_client = None;
        // Two racing requests both read the delivered cycle; the second insert meets the
        // first's (citizen, cycle) and is retried, then answered with the cycle it made.
        applications::insert(conn, &new).map_err(|e| match e {
            persistence::DbError::Duplicate(_) => persistence::DbError::Stale,
            other => other,
        })?;
        let details = serde_json::json!({
            "reason": reason.as_str(),
            "previous_application_id": row.id,
            "previous_tracking_code": row.tracking_code,
        });
        audit::append(conn, &actor, "reissue_requested", Some(&new.id), Some(details), now)?;
        audit::append(
            conn,
            &actor,
            "reissued",
            Some(&row.id),
            Some(serde_json::json!({"reason": reason.as_str(), "next_application_id": new.id})),
            now,
        )?;
        Ok((new, true))
    })
    .await?;
    Ok(new)
}
