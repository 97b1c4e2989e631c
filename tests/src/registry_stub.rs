//! A stand-in for the civil registry's HTTP inquiry service, speaking the wire contract of
//! `adapters/src/registry_http.rs` (README "Civil registry over HTTP"), served on its
//! own port inside the test so the server under test reaches it over real HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The bearer token the stub expects (anything else: 401).
pub const STUB_TOKEN: &str = "stub-registry-token";

/// How the stub answers every inquiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the person, 404 for an unknown national code.
    Normal,
    /// 503: the registry is down.
    Down,
    /// 202: the registry queued the inquiry and has no answer yet.
    Pending,
}

struct Inner {
    people: HashMap<String, Value>,
    answer: Answer,
    requests: usize,
}

/// A running stub; it stops when dropped.
pub struct RegistryStub {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
    server: actix_web::dev::ServerHandle,
}

impl Drop for RegistryStub {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

async fn person(req: HttpRequest, path: web::Path<String>, inner: web::Data<Arc<Mutex<Inner>>>) -> HttpResponse {
    let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
    inner.requests += 1;
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {STUB_TOKEN}")) {
        return HttpResponse::Unauthorized().finish();
    }
    match inner.answer {
        Answer::Down => HttpResponse::ServiceUnavailable().body("registry maintenance"),
        Answer::Pending => HttpResponse::Accepted().insert_header(("Retry-After", "60")).finish(),
        Answer::Normal => match inner.people.get(path.as_str()) {
            Some(p) => HttpResponse::Ok().json(p),
            None => HttpResponse::NotFound().json(json!({"error": "not_found"})),
        },
    }
}

impl RegistryStub {
    /// Starts an empty stub answering normally.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner { people: HashMap::new(), answer: Answer::Normal, requests: 0 }));
        let data = web::Data::new(inner.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base_url = format!("http://{}/registry/v1", listener.local_addr().expect("addr"));
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route("/registry/v1/persons/{id}", web::get().to(person))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { base_url, inner, server: handle }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `[registry]` settings pointing at this stub: one attempt, a short timeout, and a
    /// breaker that does not open during a test.
    pub fn config(&self) -> api::config::RegistryConfig {
        api::config::RegistryConfig {
            mode: api::config::RegistryMode::Http,
            http: Some(api::adapters::registry_http::RegistryHttpConfig {
                base_url: self.base_url.clone(),
                token: Some(STUB_TOKEN.into()),
                resilience: api::adapters::resilience::ResilienceConfig {
                    timeout_ms: 2_000,
                    retries: 0,
                    backoff_base_ms: 1,
                    breaker_failures: 10_000,
                    breaker_cooldown_ms: 1,
                },
                ..Default::default()
            }),
        }
    }

    pub fn answer(&self, answer: Answer) {
        self.lock().answer = answer;
    }

    /// Inquiries received so far.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Adds (or replaces) a person, in the wire form.
    pub fn put(&self, person: Value) {
        let id = person["national_id"].as_str().expect("national_id").to_owned();
        self.lock().people.insert(id, person);
    }

    /// Changes one field of a person the stub holds.
    pub fn set_field(&self, national_id: &str, field: &str, value: Value) {
        self.lock().people.get_mut(national_id).expect("a person the stub holds")[field] = value;
    }

    /// Copies a person of the synthetic population (the template's `registry_people`)
    /// into the stub, in the wire form.
    pub async fn load(&self, app: &crate::TestApp, national_id: &str) {
        let db = app.state.db.clone();
        let id = national_id.to_owned();
        let record = tokio::task::spawn_blocking(move || {
            persistence::registry::find(&mut db.get().expect("conn"), &id)
                .expect("query")
                .expect("a person of the synthetic population")
                .to_record()
                .expect("record")
        })
        .await
        .expect("join");
        self.put(json!({
            "national_id": record.national_id.as_str(),
            "serial": record.serial,
            "first_name": record.first_name.as_str(),
            "last_name": record.last_name.as_str(),
            "father_name": record.father_name.as_str(),
            "mother_name": record.mother_name.as_str(),
            "gender": record.gender.as_str(),
            "birth_date_jalali": record.birth_date.to_string(),
            "alive": record.alive,
            "serial_changed_at": record.serial_changed_at.map(|t| t.to_rfc3339()),
        }));
    }
}
