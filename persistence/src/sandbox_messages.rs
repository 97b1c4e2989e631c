//! The sandbox phone and mailbox: messages the sandbox SMS and e-mail senders "delivered"
//! (stand-ins for the operator network and a mail server, read back by admins, demos and
//! tests). Recipients and contents are sealed like any personal data at rest.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::DbError;
use crate::pii::{Kind, Pii};
use crate::prepared::KeepPrepared;
use crate::schema::{sandbox_emails, sandbox_sms};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sandbox_sms)]
pub struct SmsRow {
    pub id: String,
    pub recipient_hash: String,
    pub recipient_enc: String,
    pub recipient_hint: String,
    pub text_enc: String,
    pub created_at: NaiveDateTime,
    /// The sender's id of the message (Kavenegar's `localid`), when it gave one.
    pub local_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sandbox_emails)]
pub struct EmailRow {
    pub id: String,
    pub recipient_hash: String,
    pub recipient_enc: String,
    pub recipient_hint: String,
    pub subject: String,
    pub body_enc: String,
    /// A JSON array of file names.
    pub attachment_names: String,
    pub created_at: NaiveDateTime,
}

/// Stores a delivered SMS; returns its id (the sandbox "provider id"). A `local_id` the
/// phone already has is not a second message: the first one's id is returned.
pub fn store_sms(
    conn: &mut DbConn,
    pii: &Pii,
    to: &str,
    text: &str,
    local_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, DbError> {
    let row = SmsRow {
        id: crate::new_id(),
        recipient_hash: pii.lookup(Kind::Mobile, to),
        recipient_enc: pii.seal(Kind::Mobile, to),
        recipient_hint: domain::mask::mobile(to),
        text_enc: pii.seal(Kind::Secret, text),
        created_at: now.naive_utc(),
        local_id: local_id.map(str::to_owned),
    };
    crate::db::single_write(conn, |conn| {
        // Kept prepared: the sandbox phone takes every SMS the journeys send.
        let inserted = match conn {
            DbConn::Pg(c) => {
                diesel::insert_into(sandbox_sms::table).values(&row).on_conflict_do_nothing().prepared().execute(c)?
            }
            DbConn::Sqlite(c) => {
                diesel::insert_into(sandbox_sms::table).values(&row).on_conflict_do_nothing().prepared().execute(c)?
            }
        };
        if inserted == 1 {
            return Ok(row.id.clone());
        }
        sandbox_sms::table
            .filter(sandbox_sms::local_id.eq(local_id))
            .select(sandbox_sms::id)
            .first::<String>(conn)
            .map_err(DbError::from)
    })
}

/// A delivered e-mail, as the sandbox mailbox keeps it.
#[derive(Debug, Clone)]
pub struct NewEmail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub attachment_names: Vec<String>,
}

/// Stores a delivered e-mail; returns its id.
pub fn store_email(conn: &mut DbConn, pii: &Pii, m: &NewEmail<'_>, now: DateTime<Utc>) -> Result<String, DbError> {
    let to = m.to.trim().to_lowercase();
    let body = serde_json::json!({"text": m.text, "html": m.html});
    let row = EmailRow {
        id: crate::new_id(),
        recipient_hash: pii.lookup(Kind::Email, &to),
        recipient_enc: pii.seal(Kind::Email, &to),
        recipient_hint: email_hint(&to),
        subject: m.subject.to_owned(),
        body_enc: pii.seal(Kind::Secret, &body.to_string()),
        attachment_names: serde_json::Value::from(m.attachment_names.clone()).to_string(),
        created_at: now.naive_utc(),
    };
    diesel::insert_into(sandbox_emails::table).values(&row).execute(conn)?;
    Ok(row.id)
}

/// `maryam@example.com` → `ma****@example.com`.
fn email_hint(to: &str) -> String {
    match to.rsplit_once('@') {
        Some((local, host)) => format!("{}@{host}", domain::mask::keep_ends(local, 2, 0)),
        None => domain::mask::keep_ends(to, 2, 0),
    }
}

/// SMS to one phone (or to any, with `to` = `None`), newest first, older than `before_id`.
pub fn list_sms(
    conn: &mut DbConn,
    pii: &Pii,
    to: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<SmsRow>, DbError> {
    let mut q = sandbox_sms::table.select(SmsRow::as_select()).into_boxed();
    if let Some(to) = to {
        q = q.filter(sandbox_sms::recipient_hash.eq_any(pii.lookups(Kind::Mobile, to)));
    }
    if let Some(id) = before_id {
        q = q.filter(sandbox_sms::id.lt(id.to_owned()));
    }
    q.order(sandbox_sms::id.desc()).limit(limit).load(conn).map_err(DbError::from)
}

/// E-mails to one address (or to any), newest first, older than `before_id`.
pub fn list_emails(
    conn: &mut DbConn,
    pii: &Pii,
    to: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<EmailRow>, DbError> {
    let mut q = sandbox_emails::table.select(EmailRow::as_select()).into_boxed();
    if let Some(to) = to {
        q = q.filter(sandbox_emails::recipient_hash.eq_any(pii.lookups(Kind::Email, &to.trim().to_lowercase())));
    }
    if let Some(id) = before_id {
        q = q.filter(sandbox_emails::id.lt(id.to_owned()));
    }
    q.order(sandbox_emails::id.desc()).limit(limit).load(conn).map_err(DbError::from)
}
