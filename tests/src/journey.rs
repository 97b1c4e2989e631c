//! Journey helpers: a persona from the first page to a held seat, through the sandbox
//! bank's HTML form and back to the callback — what a browser would do.

use chrono::NaiveDate;
use regex::Regex;
use serde_json::{Value, json};

use crate::TestApp;
use crate::client::{personal_info, typical_needs};

/// Someone from the synthetic registry (a persona or a generated person).
#[derive(Debug, Clone)]
pub struct Person {
    pub national_id: String,
    pub serial: String,
    pub gender: String,
    pub birth_date: String,
    pub mother_name: String,
    pub mobile: String,
}

impl From<&api::seed::population::Persona> for Person {
    fn from(p: &api::seed::population::Persona) -> Self {
        Self {
            national_id: p.national_id.into(),
            serial: p.serial.into(),
            gender: p.gender.as_str().into(),
            birth_date: p.birth_date.into(),
            mother_name: p.mother_name.into(),
            mobile: p.mobile.unwrap_or("09121234567").into(),
        }
    }
}

impl Person {
    pub fn personal_info(&self) -> Value {
        let d = domain::calendar::JalaliDate::parse(&self.birth_date).expect("date");
        let hijri = domain::calendar::lunar_birth_options(d)[2].to_string();
        personal_info(&self.birth_date, &hijri, &self.gender, &self.mother_name, &self.mobile)
    }
}

/// `n` eligible people from the synthetic registry (alive, 15+, serial not just changed),
/// excluding the fixed personas.
pub async fn eligible_people(app: &TestApp, n: usize) -> Vec<Person> {
    let db = app.state.db.clone();
    let now = app.clock_now();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use persistence::schema::registry_people::dsl::*;
        let mut conn = db.get().expect("conn");
        let rows: Vec<persistence::registry::PersonRow> = registry_people
            .filter(alive.eq(true))
            .filter(serial_changed_at.is_null())
            .filter(mobile.is_not_null())
            .order(national_id.asc())
            .limit((n * 3) as i64)
            .select(persistence::registry::PersonRow::as_select())
            .load(&mut conn)
            .expect("people");
        let today = domain::calendar::JalaliDate::from_gregorian(domain::calendar::tehran_date(now)).expect("today");
        let personas: Vec<&str> = api::seed::population::PERSONAS.iter().map(|p| p.national_id).collect();
        rows.into_iter()
            .filter(|r| !personas.contains(&r.national_id.as_str()))
            .filter(|r| {
                let b = domain::calendar::JalaliDate::parse(&r.birth_date_jalali).expect("date");
                domain::calendar::age_in_full_years(b, today) >= 16
            })
            .take(n)
            .map(|r| Person {
                national_id: r.national_id,
                serial: r.serial,
                gender: r.gender,
                birth_date: r.birth_date_jalali,
                mother_name: r.mother_name,
                mobile: r.mobile.expect("mobile"),
            })
            .collect()
    })
    .await
    .expect("join")
}

impl TestApp {
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use domain::ports::Clock;
        self.clock.now()
    }

    /// Entry, personal information and typical special needs; returns the token.
    pub async fn draft(&self, p: &Person) -> String {
        let token = self.login(&p.national_id, &p.serial).await;
        let (status, body) =
            self.put("/api/v1/citizen/application/personal-info", Some(&token), &p.personal_info()).await;
        assert!(status == 201 || status == 200, "personal info: {body}");
        let (status, body) =
            self.put("/api/v1/citizen/application/special-needs", Some(&token), &typical_needs()).await;
        assert_eq!(status, 200, "special needs: {body}");
        token
    }

    /// The first open weekday (Saturday–Wednesday, not a holiday) at least `after` days ahead.
    pub async fn open_date(&self, office_id: &str, after: i64) -> NaiveDate {
        let (db, office_id) = (self.state.db.clone(), office_id.to_owned());
        let today = domain::calendar::tehran_date(self.clock_now());
        tokio::task::spawn_blocking(move || open_date_in(&db, &office_id, today, after)).await.expect("join")
    }

    /// Sets a slot's capacity and taken count directly (test set-up).
    pub async fn set_slot(&self, office_id: &str, date: NaiveDate, shift: &str, capacity: i32) {
        let db = self.state.db.clone();
        let (office, shift) = (office_id.to_owned(), shift.to_owned());
        tokio::task::spawn_blocking(move || {
            use diesel::prelude::*;
            use persistence::schema::slots::dsl as s;
            let mut conn = db.get().expect("conn");
            diesel::update(
                s::slots.filter(s::office_id.eq(office)).filter(s::date.eq(date)).filter(s::shift.eq(shift)),
            )
            .set((s::capacity.eq(capacity), s::closed.eq(false)))
            .execute(&mut conn)
            .expect("update slot");
        })
        .await
        .expect("join");
    }

    /// (capacity, taken) of a slot.
    pub async fn slot_counts(&self, office_id: &str, date: NaiveDate, shift: &str) -> (i32, i32) {
        let db = self.state.db.clone();
        let office = domain::record_ids::OfficeId::from(office_id);
        let shift = domain::offices::Shift::parse(shift).expect("shift");
        tokio::task::spawn_blocking(move || {
            let s = persistence::offices::slot(&mut db.get().expect("conn"), &office, date, shift)
                .expect("slot")
                .expect("exists");
            (s.capacity, s.taken)
        })
        .await
        .expect("join")
    }

    pub async fn hold(&self, token: &str, office_id: &str, date: NaiveDate, shift: &str) -> (u16, Value) {
        self.put(
            "/api/v1/citizen/application/appointment",
            Some(token),
            &json!({"office_id": office_id, "date": date, "shift": shift}),
        )
        .await
    }

    /// Starts a sandbox payment; returns the payment view.
    pub async fn start_payment(&self, token: &str) -> Value {
        let (status, body) =
            self.post("/api/v1/citizen/application/payments", Some(token), &json!({"gateway": "sandbox"})).await;
        assert_eq!(status, 201, "start payment: {body}");
        body
    }

    /// Opens the bank page and presses a button; returns the callback form (action, fields).
    pub async fn bank_choose(&self, redirect_url: &str, outcome: &str) -> (String, Vec<(String, String)>) {
        let page = self.http.get(redirect_url).send().await.expect("bank page");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        let action = Regex::new(r#"<form method="post" action="([^"]+)""#).expect("re").captures(&html).expect("form")
            [1]
        .to_owned();
        assert!(html.contains(r#"name="outcome" value="success""#) && html.contains("failed_after_debit"));
        let res = self.http.post(self.url(&action)).form(&[("outcome", outcome)]).send().await.expect("choose");
        assert_eq!(res.status(), 200);
        let back = res.text().await.expect("html");
        let action = Regex::new(r#"action="([^"]+)""#).expect("re").captures(&back).expect("callback form")[1]
            .replace("&amp;", "&");
        let fields = Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)">"#)
            .expect("re")
            .captures_iter(&back)
            .map(|c| (c[1].to_owned(), c[2].to_owned()))
            .collect();
        (action, fields)
    }

    /// Posts the bank's form to the callback, as the browser does; returns the redirect.
    pub async fn post_callback(&self, action: &str, fields: &[(String, String)]) -> String {
        let res = self.http.post(action).form(fields).send().await.expect("callback");
        assert_eq!(res.status(), 303, "callback answers with a redirect");
        res.headers()["location"].to_str().expect("location").to_owned()
    }

    /// Draft → hold at an office → sandbox payment with `outcome` → callback.
    /// Returns (token, the redirect location).
    pub async fn hold_and_pay(&self, p: &Person, office_id: &str, date: NaiveDate, outcome: &str) -> (String, String) {
        let token = self.draft(p).await;
        let (status, body) = self.hold(&token, office_id, date, "morning").await;
        assert_eq!(status, 200, "hold: {body}");
        let payment = self.start_payment(&token).await;
        let (action, fields) = self.bank_choose(payment["redirect_url"].as_str().expect("url"), outcome).await;
        let location = self.post_callback(&action, &fields).await;
        (token, location)
    }

    /// Runs one SQL statement (test set-up, such as a registry record to match).
    pub async fn exec_sql(&self, sql: &str) -> usize {
        let db = self.state.db.clone();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            use diesel::prelude::*;
            diesel::sql_query(sql).execute(&mut db.get().expect("conn")).expect("statement")
        })
        .await
        .expect("join")
    }

    /// Counts of a table's rows matching a condition, for invariant checks.
    pub async fn count_sql(&self, sql: &str) -> i64 {
        let db = self.state.db.clone();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            use diesel::prelude::*;
            #[derive(QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let rows: Vec<N> = diesel::sql_query(sql).load(&mut db.get().expect("conn")).expect("count");
            rows[0].n
        })
        .await
        .expect("join")
    }

    /// The search's per-city counts of ranked shifts (docs/decisions/0014-indexed-search.md)
    /// against the slots: (cities and dates whose count is wrong, cities and dates with
    /// ranked shifts but no count). Both are 0 when the triggers kept up.
    pub async fn slot_counts_off(&self) -> (i64, i64) {
        let wrong = self
            .count_sql(
                "SELECT COUNT(*) AS n FROM slot_counts c
                  WHERE c.ranked <> (SELECT COUNT(*) FROM slots s
                                      WHERE s.date = c.date AND s.city_code = c.city_code AND s.rank_key IS NOT NULL)",
            )
            .await;
        let missing = self
            .count_sql(
                "SELECT COUNT(*) AS n FROM (SELECT date, city_code FROM slots WHERE rank_key IS NOT NULL
                                              GROUP BY date, city_code) g
                  WHERE NOT EXISTS (SELECT 1 FROM slot_counts c WHERE c.date = g.date AND c.city_code = g.city_code)",
            )
            .await;
        (wrong, missing)
    }
}

/// The first date at least `after` days from `today` on which `office_id` is open, morning
/// (with a few seats free) and afternoon — a weekday, not a holiday — read from `db`
/// (blocking; [`TestApp::open_date`] for an in-process server).
pub fn open_date_in(db: &persistence::Db, office_id: &str, today: NaiveDate, after: i64) -> NaiveDate {
    let office = domain::record_ids::OfficeId::from(office_id);
    let mut conn = db.get().expect("conn");
    (after..90)
        .map(|d| today + chrono::Duration::days(d))
        .find(|d| {
            persistence::offices::slot(&mut conn, &office, *d, domain::offices::Shift::Morning)
                .expect("slot")
                .is_some_and(|s| !s.closed && s.capacity > s.taken + 5)
                && persistence::offices::slot(&mut conn, &office, *d, domain::offices::Shift::Afternoon)
                    .expect("slot")
                    .is_some_and(|s| !s.closed)
        })
        .expect("an open date")
}
