//! Administration's use cases (`routes/admin.rs`): staff accounts, machine clients and the
//! fee tariff. Every change is written with its audit entry in one transaction.
//! Statistics are a read of their own (`persistence::stats`).

use actix_web::web;
use domain::record_ids::OfficeId;
use domain::record_ids::{ClientId, StaffId};
use persistence::audit::{self, Actor};
use persistence::back_office::ClientRow;
use persistence::payments::FeeRateRow;
use persistence::staff::StaffUser;
use persistence::{DbError, write_tx};

use crate::error::{ApiCode, ApiError};
use crate::secrets::{hash_secret, random_secret};
use crate::state::AppState;
use domain::DomainError;

// ---------------------------------------------------------------- staff

/// A staff account to create, its fields checked.
pub struct NewStaff {
    pub username: String,
    /// `admin` or `operator`.
    pub role: &'static str,
    /// An operator's office.
    pub office_id: Option<String>,
    /// At least 10 characters; `None` to generate one.
    pub password: Option<String>,
}

/// Creates a staff account (argon2id-hashed password); returns it and the generated
/// password, if one was generated (shown only this once).
pub async fn create_staff(
    state: &AppState,
    actor: Actor,
    new: NewStaff,
) -> Result<(StaffUser, Option<String>), ApiError> {
    let generated = new.password.is_none().then(|| random_secret(state.random.as_ref(), 12));
    let password = new.password.or(generated.clone()).unwrap_or_default();
    if password.chars().count() < 10 {
        return Err(ApiError::field("password", ApiCode::Length));
    }
    let hash = web::block(move || crate::passwords::hash(&password)).await?;
    let now = state.now();
    let user = StaffUser {
        id: persistence::new_id(),
        username: new.username,
        password_hash: hash,
        role: new.role.into(),
        office_id: new.office_id.map(OfficeId::from),
        disabled: false,
        failed_attempts: 0,
        locked_until: None,
        token_version: 0,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
    };
    let saved = user.clone();
    state
        .run_api(move |conn| {
            if let Some(o) = &saved.office_id
                && persistence::offices::find(conn, o)?.is_none()
            {
                return Err(ApiError::Domain(domain::DomainError::OfficeNotFound));
            }
            write_tx(conn, |conn| {
                persistence::staff::insert(conn, &saved).map_err(|e| match e {
                    DbError::Duplicate(_) => ApiError::Domain(DomainError::UsernameTaken),
                    e => e.into(),
                })?;
                audit::append(
                    conn,
                    &actor,
                    "staff_created",
                    None,
                    Some(serde_json::json!({"staff_id": saved.id, "role": saved.role})),
                    now,
                )?;
                Ok(())
            })
        })
        .await?;
    Ok((user, generated))
}

/// Disables (its tokens stop working at once) or enables a staff account; an
/// administrator cannot disable their own.
pub async fn set_staff_disabled(state: &AppState, actor: Actor, id: String, disabled: bool) -> Result<(), ApiError> {
    let id = StaffId::from(id);
    if actor.id.as_deref() == Some(id.as_str()) && disabled {
        return Err(ApiError::Domain(DomainError::CannotDisableSelf));
    }
    let now = state.now();
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                if !persistence::staff::set_disabled(conn, &id, disabled, now.naive_utc())? {
                    return Err(ApiError::NotFound(ApiCode::NotFound));
                }
                let action = if disabled { "staff_disabled" } else { "staff_enabled" };
                audit::append(conn, &actor, action, None, Some(serde_json::json!({"staff_id": id})), now)?;
                Ok(())
            })
        })
        .await
}

/// Resets another staff account's password to a generated one (returned, shown once); the
/// account's old tokens stop working.
pub async fn reset_staff_password(state: &AppState, actor: Actor, id: String) -> Result<String, ApiError> {
    let id = StaffId::from(id);
    if actor.id.as_deref() == Some(id.as_str()) {
        return Err(ApiError::Domain(DomainError::CannotResetSelf));
    }
    let password = random_secret(state.random.as_ref(), 12);
    let p = password.clone();
    let hash = web::block(move || crate::passwords::hash(&p)).await?;
    let now = state.now();
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                if !persistence::staff::reset_password(conn, &id, &hash, now.naive_utc())? {
                    return Err(ApiError::NotFound(ApiCode::NotFound));
                }
                audit::append(
                    conn,
                    &actor,
                    "staff_password_reset",
                    None,
                    Some(serde_json::json!({"staff_id": id})),
                    now,
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(password)
}

// ---------------------------------------------------------------- machine clients

/// A machine client to register, its fields checked.
pub struct NewClient {
    pub client_id: String,
    pub name: String,
    pub kind: String,
    pub scopes: &'static str,
    pub office_id: Option<String>,
    pub rate_per_minute: i32,
}

/// Registers a machine client; returns it and its secret (shown only this once).
pub async fn create_client(state: &AppState, actor: Actor, new: NewClient) -> Result<(ClientRow, String), ApiError> {
    let secret = random_secret(state.random.as_ref(), 32);
    let now = state.now();
    let row = ClientRow {
        client_id: new.client_id.into(),
        name: new.name,
        kind: new.kind,
        secret_hash: hash_secret(&secret),
        scopes: new.scopes.into(),
        office_id: new.office_id.map(OfficeId::from),
        disabled: false,
        rate_per_minute: new.rate_per_minute,
        token_version: 0,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
    };
    let saved = row.clone();
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                persistence::back_office::insert_client(conn, &saved).map_err(|e| match e {
                    DbError::Duplicate(_) => ApiError::Domain(DomainError::ClientIdTaken),
                    e => e.into(),
                })?;
                audit::append(
                    conn,
                    &actor,
                    "client_created",
                    None,
                    Some(serde_json::json!({"client_id": saved.client_id})),
                    now,
                )?;
                Ok(())
            })
        })
        .await?;
    Ok((row, secret))
}

/// A new secret for a client (returned with the client, shown once); the old one and
/// every token issued with it stop working at once.
pub async fn rotate_client(state: &AppState, actor: Actor, id: String) -> Result<(ClientRow, String), ApiError> {
    let secret = random_secret(state.random.as_ref(), 32);
    let hash = hash_secret(&secret);
    let row = change_client(state, actor, id, "client_rotated", move |r| {
        r.secret_hash = hash;
        r.token_version += 1;
    })
    .await?;
    Ok((row, secret))
}

/// Disables a client: no new tokens, and its tokens already issued stop working at once.
pub async fn disable_client(state: &AppState, actor: Actor, id: String) -> Result<ClientRow, ApiError> {
    change_client(state, actor, id, "client_disabled", |r| {
        r.disabled = true;
        r.token_version += 1;
    })
    .await
}

async fn change_client(
    state: &AppState,
    actor: Actor,
    id: String,
    action: &'static str,
    change: impl FnOnce(&mut ClientRow) + Send + 'static,
) -> Result<ClientRow, ApiError> {
    let now = state.now();
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                let mut row = persistence::back_office::client(conn, &ClientId::from(id.as_str()))?
                    .ok_or(ApiError::NotFound(ApiCode::NotFound))?;
                change(&mut row);
                row.updated_at = now.naive_utc();
                persistence::back_office::update_client(conn, &row)?;
                audit::append(conn, &actor, action, None, Some(serde_json::json!({"client_id": row.client_id})), now)?;
                Ok(row)
            })
        })
        .await
}

// ---------------------------------------------------------------- fees

/// Adds a tariff line (its rate checked by `domain::fees::check_rate`); payments keep the
/// amount they were created with.
pub async fn add_fee(
    state: &AppState,
    actor: Actor,
    kind: domain::fees::FeeKind,
    amount: domain::Rials,
    effective_from: chrono::NaiveDate,
) -> Result<(), ApiError> {
    domain::fees::check_rate(&domain::fees::FeeRate { kind, amount, effective_from })?;
    let now = state.now();
    let row = FeeRateRow {
        id: persistence::new_id(),
        kind: kind.as_str().into(),
        amount: amount.value(),
        effective_from,
        created_at: now.naive_utc(),
        created_by: actor.id.clone(),
    };
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                persistence::payments::insert_fee_rate(conn, &row).map_err(|e| match e {
                    DbError::Duplicate(_) => ApiError::Domain(DomainError::FeeExistsForDate),
                    e => e.into(),
                })?;
                audit::append(
                    conn,
                    &actor,
                    "fee_added",
                    None,
                    Some(serde_json::json!({"kind": row.kind, "amount": row.amount, "effective_from": row.effective_from})),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}
