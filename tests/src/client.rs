//! Small helpers for talking to the API in tests, as a client app would.

use serde_json::{Value, json};

use crate::{TestApp, json as read_json};

impl TestApp {
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read_json(req.send().await.expect("request")).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read_json(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, token, body).await
    }

    /// Just the status of a request (for answers without a body, like 204).
    pub async fn status_of(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: &Value) -> u16 {
        let mut req = self.http.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request").status().as_u16()
    }

    /// A fresh captcha and its answer (sandbox mode).
    pub async fn captcha(&self) -> (String, String) {
        let (status, c) = self.get("/api/v1/captcha", None).await;
        assert_eq!(status, 200, "{c}");
        (c["captcha_id"].as_str().expect("id").to_owned(), c["sandbox_answer"].to_string())
    }

    /// POST /citizen/sessions with a fresh captcha.
    pub async fn enter(&self, national_id: &str, serial: &str) -> (u16, Value) {
        let (id, answer) = self.captcha().await;
        self.post(
            "/api/v1/citizen/sessions",
            None,
            &json!({"national_id": national_id, "serial": serial, "captcha_id": id, "captcha_answer": answer}),
        )
        .await
    }

    /// A citizen token (panics if entry fails).
    pub async fn login(&self, national_id: &str, serial: &str) -> String {
        let (status, body) = self.enter(national_id, serial).await;
        assert_eq!(status, 201, "entry failed: {body}");
        body["token"].as_str().expect("token").to_owned()
    }
}

impl TestApp {
    /// A staff token (panics if sign-in fails).
    pub async fn staff_token(&self, username: &str, password: &str) -> String {
        let (status, body) =
            self.post("/api/v1/staff/sessions", None, &json!({"username": username, "password": password})).await;
        assert_eq!(status, 201, "staff sign-in failed: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// The bootstrap administrator's token.
    pub async fn admin_token(&self) -> String {
        self.staff_token("admin", crate::ADMIN_PASSWORD).await
    }

    /// Creates an operator of an office (as `admin`); returns their staff id and token.
    pub async fn create_operator(&self, admin: &str, username: &str, office: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/admin/staff",
                Some(admin),
                &json!({"username": username, "role": "operator", "office_id": office, "password": "operator-password-1"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["staff"]["id"].as_str().expect("staff id").to_owned();
        (id, self.staff_token(username, "operator-password-1").await)
    }

    /// Registers a machine client (`kiosk` or `production`, as `admin`) and returns a
    /// client-credentials token for it.
    pub async fn machine_token(&self, admin: &str, client_id: &str, kind: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/admin/kiosk-clients",
                Some(admin),
                &json!({"client_id": client_id, "name": client_id, "kind": kind}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let secret = body["client_secret"].as_str().expect("secret").to_owned();
        let res = self
            .http
            .post(self.url("/api/v1/oauth/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", &secret)])
            .send()
            .await
            .expect("request");
        let (status, body) = read_json(res).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }
}

/// Personal information for a persona.
pub fn personal_info(birth_jalali: &str, hijri: &str, gender: &str, mother: &str, mobile: &str) -> Value {
    json!({
        "birth_date_jalali": birth_jalali,
        "birth_date_hijri": hijri,
        "gender": gender,
        "religion": "islam",
        "mother_name": mother,
        "mobile": mobile,
    })
}

pub fn typical_needs() -> Value {
    json!({"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true})
}

/// The value of a hidden form field in a page (the sandbox bank's auto-submitting form).
fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in:\n{html}")) + marker.len();
    html[start..].split('"').next().expect("closing quote").to_owned()
}

impl TestApp {
    /// Walks a persona through the whole journey — entry, personal info, special needs, a
    /// seat at the Maragheh office on the first day with one free, and a successful payment
    /// at the sandbox bank (its page, its choice, its auto-submitted callback) — and returns
    /// the citizen token. The application is then `registered` with a tracking code.
    pub async fn register_and_pay(&self, persona: &api::seed::population::Persona) -> String {
        use api::seed::offices::MARAGHEH_OFFICE_ID;

        let token = self.login(persona.national_id, persona.serial).await;
        let birth = domain::calendar::JalaliDate::parse(persona.birth_date).expect("persona birth date");
        let hijri = domain::calendar::lunar_birth_options(birth)[2].to_string();
        let gender = match persona.gender {
            domain::person::Gender::Female => "female",
            domain::person::Gender::Male => "male",
        };
        let info = personal_info(
            persona.birth_date,
            &hijri,
            gender,
            persona.mother_name,
            persona.mobile.unwrap_or("09121234567"),
        );
        let (status, body) = self.put("/api/v1/citizen/application/personal-info", Some(&token), &info).await;
        assert!(status == 201 || status == 200, "personal info: {body}");
        let (status, body) =
            self.put("/api/v1/citizen/application/special-needs", Some(&token), &typical_needs()).await;
        assert_eq!(status, 200, "special needs: {body}");

        // The first day from tomorrow on which Maragheh has a free seat.
        let today = domain::calendar::tehran_date(self.state.now());
        let mut seat = None;
        for ahead in 1..=30 {
            let date = today + chrono::Duration::days(ahead);
            let (status, availability) =
                self.get(&format!("/api/v1/offices/availability?date={date}&city_code=041"), Some(&token)).await;
            assert_eq!(status, 200, "availability: {availability}");
            let rows = availability["items"].as_array().expect("items");
            if let Some(row) =
                rows.iter().find(|r| r["office"]["id"] == MARAGHEH_OFFICE_ID && r["free"].as_u64() > Some(0))
            {
                seat = Some((date, row["shift"].as_str().expect("shift").to_owned()));
                break;
            }
        }
        let (date, shift) = seat.expect("a free seat at Maragheh within 30 days");
        let (status, body) = self
            .put(
                "/api/v1/citizen/application/appointment",
                Some(&token),
                &json!({"office_id": MARAGHEH_OFFICE_ID, "date": date, "shift": shift}),
            )
            .await;
        assert_eq!(status, 200, "appointment: {body}");

        // Pay at the sandbox bank as a browser would.
        let (status, payment) =
            self.post("/api/v1/citizen/application/payments", Some(&token), &json!({"gateway": "sandbox"})).await;
        assert_eq!(status, 201, "payment: {payment}");
        let pay_url = payment["redirect_url"].as_str().expect("redirect_url").to_owned();
        let page = self.http.get(&pay_url).send().await.expect("bank page");
        assert_eq!(page.status().as_u16(), 200, "the bank's page");
        let back = self.http.post(&pay_url).form(&[("outcome", "success")]).send().await.expect("pay");
        assert_eq!(back.status().as_u16(), 200, "the bank's answer");
        let html = back.text().await.expect("body");
        let fields: Vec<(&str, String)> =
            ["token", "order_id", "status"].into_iter().map(|name| (name, hidden_field(&html, name))).collect();
        let callback =
            self.http.post(self.url("/api/v1/payments/sandbox/callback")).form(&fields).send().await.expect("callback");
        assert_eq!(callback.status().as_u16(), 303, "callback");
        let location = callback.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(location.contains("outcome=success"), "payment result: {location}");

        let (status, view) = self.get("/api/v1/citizen/application", Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(view["state"], "registered", "{view}");
        assert!(view["tracking_code"].is_string(), "{view}");
        token
    }
}
