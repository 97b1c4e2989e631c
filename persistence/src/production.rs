//! The card production line's queue (issue 20): enrolled applications, oldest enrollment
//! first, each handed to one production client at a time under a lease.
//!
//! A poll claims the page it answers: every application on it is leased to the polling
//! client until the lease ends, and no other client is handed it before then. The claim
//! is one conditional upsert per application — insert the lease, or take over one that
//! ended or is already this client's — so of two clients racing for an application
//! exactly one gets it, on both databases: PostgreSQL makes the second writer wait for the
//! first and re-checks the condition against what it committed; SQLite runs the whole
//! poll in one immediate transaction. Leaving `enrolled` (the `production_started` event)
//! takes an application out of the queue whatever its lease.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use domain::record_ids::{ApplicationId, ClientId};

use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::schema::production_leases;

/// Where a page of the queue starts: after this enrollment (time, then application id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    pub completed_at: NaiveDateTime,
    pub application_id: ApplicationId,
}

impl QueuePosition {
    /// The opaque cursor clients pass back: `<completed_at>~<application id>`.
    pub fn encode(&self) -> String {
        format!("{}~{}", self.completed_at.format("%Y-%m-%dT%H:%M:%S%.9f"), self.application_id)
    }

    pub fn decode(cursor: &str) -> Option<Self> {
        let (at, id) = cursor.split_once('~')?;
        let completed_at = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
        let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| QueuePosition { completed_at, application_id: id.into() })
    }

    fn start() -> Self {
        QueuePosition { completed_at: chrono::DateTime::UNIX_EPOCH.naive_utc(), application_id: String::new().into() }
    }
}

/// A page the polling client now holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The applications leased to the client, in queue order.
    pub items: Vec<QueuePosition>,
    /// Where the next page starts, when more applications follow.
    pub next: Option<QueuePosition>,
}

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Timestamp)]
    completed_at: NaiveDateTime,
}

#[derive(QueryableByName)]
struct Leased {
    #[diesel(sql_type = Text, deserialize_as = String)]
    application_id: ApplicationId,
}

/// Polls that lose every candidate to other clients look further, at most this often.
const ROUNDS: usize = 4;

/// Claims for `client` up to `limit` enrolled applications after `after` (from the start
/// when `None`), oldest enrollment first, leasing them until `until`. Applications leased
/// to another client whose lease has not ended are skipped; this client's own are handed
/// again (a restarted client finds what it held) and their leases renewed.
pub fn claim(
    conn: &mut DbConn,
    client: &ClientId,
    after: Option<&QueuePosition>,
    limit: i64,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Claimed, DbError> {
    write_tx(conn, |conn| {
        let mut items: Vec<QueuePosition> = Vec::new();
        let mut position = after.cloned().unwrap_or_else(QueuePosition::start);
        let mut more = false;
        for _ in 0..ROUNDS {
            let need = limit - i64::try_from(items.len()).unwrap_or(limit);
            let candidates = diesel::sql_query(
                "SELECT a.id AS id, e.completed_at AS completed_at
                   FROM applications a
                   JOIN enrollments e ON e.application_id = a.id
                   LEFT JOIN production_leases l ON l.application_id = a.id
                  WHERE a.state = 'enrolled'
                    AND (e.completed_at > $1 OR (e.completed_at = $1 AND a.id > $2))
                    AND (l.application_id IS NULL OR l.leased_until <= $3 OR l.client_id = $4)
                  ORDER BY e.completed_at, a.id
                  LIMIT $5",
            )
            .bind::<Timestamp, _>(position.completed_at)
            .bind::<Text, _>(position.application_id.as_str())
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(client.as_str())
            .bind::<BigInt, _>(need + 1)
            .load::<Candidate>(conn)?;
            more = i64::try_from(candidates.len()).unwrap_or(0) > need;
            for c in candidates.into_iter().take(usize::try_from(need).unwrap_or(0)) {
                position = QueuePosition { completed_at: c.completed_at, application_id: c.id.into() };
                if lease(conn, &position.application_id, client, now, until)? {
                    items.push(position.clone());
                }
            }
            if !more || i64::try_from(items.len()).unwrap_or(limit) >= limit {
                break;
            }
        }
        Ok(Claimed { items, next: more.then_some(position) })
    })
}

/// Leases one application to `client` unless another client's lease still runs, or it has
/// left the queue since the candidates were read; whether it did.
///
/// The lease is written only while the application is still enrolled, read as it is now:
/// a client that starts production releases its lease in the same transaction, and the
/// candidates of a poll running at that moment were read before — without this condition
/// the poll would lease (and hand out) an application already in production. On PostgreSQL
/// the application row is read `FOR SHARE`: a start in progress holds it `FOR UPDATE`
/// (`mutate_in` locks it first), so the lease waits for that start and sees its outcome;
/// SQLite runs one writer at a time.
fn lease(
    conn: &mut DbConn,
    application_id: &ApplicationId,
    client: &ClientId,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<bool, DbError> {
    let lock = if matches!(conn, DbConn::Pg(_)) { " FOR SHARE" } else { "" };
    // SQLite numbers `$n` parameters in order of first appearance: keep them in order. An
    // upsert from a SELECT needs its WHERE clause there (SQLite's parser).
    let taken = diesel::sql_query(format!(
        "INSERT INTO production_leases (application_id, client_id, leased_until)
         SELECT $1, $2, $3 FROM applications WHERE id = $1 AND state = 'enrolled'{lock}
         ON CONFLICT (application_id) DO UPDATE
            SET client_id = excluded.client_id, leased_until = excluded.leased_until
          WHERE production_leases.leased_until <= $4 OR production_leases.client_id = excluded.client_id
         RETURNING application_id"
    ))
    .bind::<Text, _>(application_id.as_str())
    .bind::<Text, _>(client.as_str())
    .bind::<Timestamp, _>(until)
    .bind::<Timestamp, _>(now)
    .load::<Leased>(conn)?;
    Ok(taken.iter().any(|l| &l.application_id == application_id))
}

/// Forgets a lease (the application left the queue).
pub fn release(conn: &mut DbConn, application_id: &ApplicationId) -> Result<(), DbError> {
    diesel::delete(production_leases::table.find(application_id.as_str()))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

/// Forgets leases that ended before `before` (their applications are in the queue or
/// gone from it either way).
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> Result<usize, DbError> {
    diesel::delete(production_leases::table.filter(production_leases::leased_until.lt(before)))
        .execute(conn)
        .map_err(DbError::from)
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Timestamp)]
    ready_at: NaiveDateTime,
}

/// Cards ready for delivery since before `ready_before` and still waiting (the application
/// is `ready_for_delivery`), whose `card_uncollected` reminder was not queued yet: the
/// application ids and when the card became ready, oldest first.
pub fn uncollected(
    conn: &mut DbConn,
    ready_before: NaiveDateTime,
    limit: i64,
) -> Result<Vec<(ApplicationId, NaiveDateTime)>, DbError> {
    let rows = diesel::sql_query(
        "SELECT a.id AS id, MAX(e.received_at) AS ready_at
           FROM applications a
           JOIN production_events e ON e.application_id = a.id AND e.kind = 'ready_for_delivery'
          WHERE a.state = 'ready_for_delivery'
            AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = 'card_uncollected:' || a.id)
          GROUP BY a.id
         HAVING MAX(e.received_at) <= $1
          ORDER BY MAX(e.received_at), a.id
          LIMIT $2",
    )
    .bind::<Timestamp, _>(ready_before)
    .bind::<BigInt, _>(limit)
    .load::<Waiting>(conn)?;
    Ok(rows.into_iter().map(|w| (w.id.into(), w.ready_at)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let p = QueuePosition {
            completed_at: chrono::DateTime::from_timestamp(1_795_000_000, 123_456_789).unwrap().naive_utc(),
            application_id: "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".into(),
        };
        assert_eq!(QueuePosition::decode(&p.encode()), Some(p.clone()));
        for bad in ["", "~", "2026-11-22T06:30:00~", "yesterday~0193", "2026-11-22T06:30:00~a b", "2026-11-22T06:30:00"]
        {
            assert_eq!(QueuePosition::decode(bad), None, "{bad}");
        }
    }
}
