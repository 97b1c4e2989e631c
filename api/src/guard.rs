//! Guessing at secrets — entry serials, staff and e-folder passwords, the proof of a
//! status lookup, the details of a tracking-code recovery — bounded without letting
//! strangers lock the owner out (issue 24; the rule is written down in the README,
//! "Guessing and lockouts").
//!
//! Every guess is counted in the database *before* the secret is compared, in one write
//! transaction, against three budgets:
//! - **per subject and client** (national code or account × client address, or × kiosk):
//!   failures in a row earn a lock (fixed for entry, growing for logins);
//! - **per client address**, all subjects together, per window;
//! - **per subject**, all clients together, per window. Once a subject's budget is spent
//!   it is *guarded* until the window ends: each client may then make one guess at it
//!   (a client that already failed on it waits), so strangers stay bounded while the
//!   owner, from an address of their own, still gets in with the right proof.
//!
//! A guess that turns out right — or that could not be judged (the registry was down) —
//! is given back ([`release`]): successes never spend a failure budget.

use std::net::IpAddr;

use actix_web::HttpRequest;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use persistence::attempts::{self, Reservation};
use persistence::{DbConn, Pii, PiiKind, write_tx};

use crate::config::Config;
use crate::error::{ApiCode, ApiError};

/// How the failures in a row of one subject and client are locked.
#[derive(Debug, Clone, Copy)]
pub enum PairLock {
    /// Locked for `minutes` from the `after`-th failure in a row (and at each one after).
    Fixed { after: i32, minutes: i64 },
    /// The e-folder's growing lock: none for four failures, then 1, 2, 4 … minutes, at
    /// most an hour ([`domain::efolder::login_lock`]).
    Growing,
}

impl PairLock {
    fn lock_after(self, failures: i32) -> Option<Duration> {
        match self {
            PairLock::Fixed { after, minutes } => (failures >= after).then(|| Duration::minutes(minutes)),
            PairLock::Growing => domain::efolder::login_lock(failures),
        }
    }

    /// The lock in seconds (`0`: none) that each failure in a row sets, from the first to
    /// the one from which every further failure sets the same: a fixed lock from its
    /// `after`-th failure, the growing one from its hour-long lock (the 11th). `None` when
    /// that is beyond [`LOCK_SCHEDULE`].
    fn schedule(self) -> Option<Vec<i64>> {
        let last = match self {
            PairLock::Fixed { after, .. } => after.max(1),
            PairLock::Growing => (1..=LOCK_SCHEDULE).find(|&f| self.lock_after(f) == self.lock_after(LOCK_SCHEDULE))?,
        };
        (last <= LOCK_SCHEDULE).then(|| (1..=last).map(|f| self.lock_after(f).map_or(0, |d| d.num_seconds())).collect())
    }
}

/// One kind of guess and its budgets.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Names the counters and the `guess_checked` metric.
    pub name: &'static str,
    /// The problem code when the subject × client pair is locked.
    pub locked_code: ApiCode,
    pub pair: PairLock,
    /// Failures at one subject from all clients per window before it is guarded.
    pub subject_failures: i32,
    /// Failures from one client address at all subjects per window.
    pub client_failures: i32,
    pub window: Duration,
}

impl Rule {
    /// Citizen entry and kiosk registrations: wrong serials for one national code.
    pub fn entry(config: &Config) -> Self {
        let l = &config.limits;
        Rule {
            name: "entry",
            locked_code: ApiCode::EntryLocked,
            pair: PairLock::Fixed { after: l.entry_failures_before_lock, minutes: l.entry_lock_minutes },
            subject_failures: l.subject_failures_per_window,
            client_failures: l.client_failures_per_window,
            window: Duration::minutes(l.failure_window_minutes),
        }
    }

    /// Staff sign-in: the e-folder's growing lock per account and address.
    pub fn staff_login(config: &Config) -> Self {
        Self::login("staff_login", config)
    }

    /// E-folder login and the current password of a password change.
    pub fn efolder_login(config: &Config) -> Self {
        Self::login("efolder_login", config)
    }

    fn login(name: &'static str, config: &Config) -> Self {
        let l = &config.limits;
        Rule {
            name,
            locked_code: ApiCode::AccountLocked,
            pair: PairLock::Growing,
            subject_failures: l.subject_failures_per_window,
            client_failures: l.client_failures_per_window,
            window: Duration::minutes(l.failure_window_minutes),
        }
    }

    /// Public status lookups: a wrong tracking code or birth date (or an unknown code).
    pub fn status(config: &Config) -> Self {
        let l = &config.limits;
        Rule {
            name: "status",
            locked_code: ApiCode::StatusLookupLimit,
            pair: PairLock::Fixed { after: 5, minutes: 60 },
            subject_failures: l.status_lookups_per_day,
            client_failures: l.client_failures_per_window,
            window: Duration::days(1),
        }
    }

    /// Tracking-code recovery: a wrong birth date (or an unknown code).
    pub fn recovery(config: &Config) -> Self {
        let l = &config.limits;
        Rule {
            name: "recovery",
            locked_code: ApiCode::RecoveryLimit,
            pair: PairLock::Fixed { after: 3, minutes: 60 },
            subject_failures: l.status_lookups_per_day,
            client_failures: l.client_failures_per_window,
            window: Duration::days(1),
        }
    }
}

/// Who is guessing: a client address (IPv6 by its /64, which one subscriber holds) or a
/// machine client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client(String);

impl Client {
    /// The request's client address (behind a trusted proxy, the client's own:
    /// [`crate::client_addr`]).
    pub fn of(req: &HttpRequest) -> Self {
        match crate::client_addr::of(req) {
            Some(ip) => Self::ip(ip),
            None => Client("unknown".into()),
        }
    }

    pub fn ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Client(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(v4.to_string()),
                None => {
                    let s = v6.segments();
                    Client(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }

    /// The client as counted (an address, a /64, or `machine:<id>`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A kiosk or other machine client, which guesses on its own account.
    pub fn machine(client_id: &str) -> Self {
        Client(format!("machine:{client_id}"))
    }
}

/// A counted guess, to be [`release`]d if it turns out right.
#[derive(Debug, Clone)]
pub struct Attempt {
    pair: String,
    subject: String,
    client: String,
    window: NaiveDateTime,
    /// This guess's place among the failures in a row of its subject and client.
    pub failures: i32,
    /// The lock that stands if this guess fails (already set).
    pub locks_until: Option<DateTime<Utc>>,
}

/// Counts a guess by `client` at `subject` (an opaque value such as the national code's
/// lookup hash or an account id) before it is compared; 429 when a budget is spent.
/// Runs in its own write transaction; a refused guess is not counted.
///
/// On PostgreSQL one statement without a transaction ([`attempts::count_and_reserve`]); a
/// refused guess's counts are then taken back by a second one.
pub fn begin(
    conn: &mut DbConn,
    pii: &Pii,
    rule: &Rule,
    subject: &str,
    client: &Client,
    now: DateTime<Utc>,
) -> Result<Attempt, ApiError> {
    let lock_seconds = match (&*conn, rule.pair.schedule()) {
        (DbConn::Pg(_), Some(schedule)) => schedule,
        _ => return write_tx(conn, |conn| begin_in(conn, pii, rule, subject, client, now)),
    };
    let attempt = Attempt::new(pii, rule, subject, client, now);
    let at = now.naive_utc();
    let keys = attempts::GuessKeys { client: &attempt.client, subject: &attempt.subject, pair: &attempt.pair };
    let budgets =
        attempts::Budgets { client: rule.client_failures, subject: rule.subject_failures, lock_seconds: &lock_seconds };
    let limited =
        || ApiError::TooManyRequests { code: ApiCode::GuessesLimited, retry_after: attempt.window_left(rule, at) };
    let (client_hits, failures) = match attempts::count_and_reserve(conn, keys, attempt.window, at, budgets)? {
        attempts::Counted::Counted { client, failures, .. } => (client, failures),
        // Not counted: the client's budget (checked first, as `begin_in` does), or the
        // pair's lock or cap.
        attempts::Counted::Refused => {
            return Err(if attempts::hits(conn, &attempt.client, attempt.window)? >= rule.client_failures {
                limited()
            } else {
                refused(rule, attempts::why_refused(conn, &attempt.pair, at)?, &attempt, at)
            });
        }
    };
    let refusal = match failures {
        _ if client_hits > rule.client_failures => limited(),
        Some(failures) => {
            let locks_until = rule.pair.lock_after(failures).map(|d| (at + d).and_utc());
            return Ok(Attempt { failures, locks_until, ..attempt });
        }
        None => refused(rule, attempts::why_refused(conn, &attempt.pair, at)?, &attempt, at),
    };
    // Counted, then refused after waiting for its rows: a refused guess is not counted.
    if let Err(e) = attempts::uncount_many(conn, &[&attempt.client, &attempt.subject], attempt.window) {
        // Counted once too often at worst (never once too few); the refusal stands.
        tracing::warn!(error = %e, "a refused guess's counts could not be taken back");
    }
    Err(refusal)
}

/// Failures in a row whose locks [`begin`] writes into its statement at most.
const LOCK_SCHEDULE: i32 = 32;

/// [`begin`] in the caller's write transaction (a lookup that counts, compares and gives
/// back a right guess in one): a refusal is an `Err`, on which the caller rolls back.
pub fn begin_in(
    conn: &mut DbConn,
    pii: &Pii,
    rule: &Rule,
    subject: &str,
    client: &Client,
    now: DateTime<Utc>,
) -> Result<Attempt, ApiError> {
    let attempt = Attempt::new(pii, rule, subject, client, now);
    let at = now.naive_utc();
    let window_left = || attempt.window_left(rule, at);
    // Both budgets in one statement (client first, then subject: every caller locks
    // the rows in this order). The subject's count before this guess (one less) says
    // whether it is guarded; a refusal below rolls both back.
    let counted = attempts::count_many(conn, &[&attempt.client, &attempt.subject], attempt.window, at)?;
    if counted[0] > rule.client_failures {
        return Err(ApiError::TooManyRequests { code: ApiCode::GuessesLimited, retry_after: window_left() });
    }
    let guarded = counted[1] > rule.subject_failures;
    let lock = |failures| rule.pair.lock_after(failures);
    let reservation = attempts::reserve(conn, &attempt.pair, at, guarded.then_some(1), &lock)?;
    let (failures, locks_until) = match reservation {
        Reservation::Granted { failures, locks_until } => (failures, locks_until.map(|t| t.and_utc())),
        other => return Err(refused(rule, other, &attempt, at)),
    };
    Ok(Attempt { failures, locks_until, ..attempt.clone() })
}

/// The 429 of a guess its pair may not make: until the lock ends, or (capped) the window.
fn refused(rule: &Rule, reservation: Reservation, attempt: &Attempt, at: NaiveDateTime) -> ApiError {
    let retry_after = match reservation {
        Reservation::Locked(until) => (until - at).num_seconds().max(1) as u64,
        _ => attempt.window_left(rule, at),
    };
    ApiError::TooManyRequests { code: rule.locked_code, retry_after }
}

impl Attempt {
    /// A guess not yet counted: its keys and window.
    fn new(pii: &Pii, rule: &Rule, subject: &str, client: &Client, now: DateTime<Utc>) -> Self {
        let key = |scope: &str, value: &str| {
            format!(
                "{}:{scope}:{}",
                rule.name,
                pii.lookup(PiiKind::Secret, &format!("guess|{}|{scope}|{value}", rule.name))
            )
        };
        Attempt {
            pair: key("pair", &format!("{subject}|{}", client.0)),
            subject: key("subject", subject),
            client: key("client", &client.0),
            window: window_start(now, rule.window),
            failures: 0,
            locks_until: None,
        }
    }

    /// Seconds until the window ends (at least one).
    fn window_left(&self, rule: &Rule, at: NaiveDateTime) -> u64 {
        ((self.window + rule.window) - at).num_seconds().max(1) as u64
    }
}

/// Gives a guess back: it was right (or could not be judged), so it spends no failure
/// budget and clears the failures in a row of its subject and client.
pub fn release(conn: &mut DbConn, attempt: &Attempt) -> Result<(), ApiError> {
    // One statement on PostgreSQL (no transaction needed), two together on SQLite. The
    // client address's row it takes is shared by everyone behind one NAT: entry gives its
    // guess back this way after the citizen's transaction, not inside it.
    persistence::single_write(conn, |conn| release_in(conn, attempt))
}

/// [`release`] in the caller's write transaction.
pub fn release_in(conn: &mut DbConn, attempt: &Attempt) -> Result<(), ApiError> {
    attempts::give_back(conn, &[&attempt.client, &attempt.subject], attempt.window, &attempt.pair)?;
    Ok(())
}

/// Takes back a guess that could not be judged (the service holding the secret did not
/// answer): it spends no budget of the subject or the client, and the failures in a row
/// before it still stand (a right guess [`release`]s them; an unjudged one must not).
pub fn withdraw(conn: &mut DbConn, attempt: &Attempt) -> Result<(), ApiError> {
    write_tx(conn, |conn| {
        attempts::uncount_many(conn, &[&attempt.client, &attempt.subject], attempt.window)?;
        attempts::unreserve(conn, &attempt.pair, attempt.locks_until.is_some())?;
        Ok(())
    })
}

/// The start of the fixed window `now` falls in (windows are aligned to the Unix epoch;
/// a day starts at Tehran midnight).
pub fn window_start(now: DateTime<Utc>, window: Duration) -> NaiveDateTime {
    // Tehran is UTC+03:30 all year (no daylight saving since 2022).
    const TEHRAN_OFFSET: i64 = 3 * 3600 + 1800;
    let len = window.num_seconds().max(1);
    let offset = if len % 86_400 == 0 { TEHRAN_OFFSET } else { 0 };
    let t = now.timestamp() + offset;
    let start = t - t.rem_euclid(len) - offset;
    DateTime::from_timestamp(start, 0).unwrap_or(now).naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_schedule_written_into_the_statement_is_the_lock_of_every_failure() {
        // PostgreSQL's one-statement guess reads the lock of its n-th failure in a row
        // from the schedule (failures past its end: the last entry's).
        for pair in [
            PairLock::Fixed { after: 5, minutes: 15 },
            PairLock::Fixed { after: 1, minutes: 60 },
            PairLock::Fixed { after: 32, minutes: 1 },
            PairLock::Growing,
        ] {
            let schedule = pair.schedule().expect("expressible");
            for failures in 1..=200 {
                let at = schedule[(failures as usize).min(schedule.len()) - 1];
                let expected = pair.lock_after(failures).map_or(0, |d| d.num_seconds());
                assert_eq!(at, expected, "{pair:?}, failure {failures}");
            }
        }
        assert_eq!(PairLock::Growing.schedule().map(|s| s.len()), Some(11), "an hour from the 11th");
        assert_eq!(PairLock::Fixed { after: 33, minutes: 1 }.schedule(), None, "counted in a transaction");
    }

    #[test]
    fn windows_are_aligned_and_days_start_at_tehran_midnight() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T06:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(window_start(t, Duration::minutes(15)).to_string(), "2026-11-22 06:30:00");
        let t2 = t + Duration::minutes(14);
        assert_eq!(window_start(t2, Duration::minutes(15)).to_string(), "2026-11-22 06:30:00");
        // 10:00 in Tehran: the day began at 20:30 UTC the evening before.
        assert_eq!(window_start(t, Duration::days(1)).to_string(), "2026-11-21 20:30:00");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a = Client::ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Client::ip("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = Client::ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Client::ip("::ffff:10.0.0.1".parse().unwrap()), Client::ip("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn fixed_and_growing_pair_locks() {
        let fixed = PairLock::Fixed { after: 5, minutes: 15 };
        assert_eq!(fixed.lock_after(4), None);
        assert_eq!(fixed.lock_after(5), Some(Duration::minutes(15)));
        assert_eq!(PairLock::Growing.lock_after(5), Some(Duration::minutes(1)));
        assert_eq!(PairLock::Growing.lock_after(6), Some(Duration::minutes(2)));
    }
}
