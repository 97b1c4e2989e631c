//! [`CivilRegistry`] over HTTP: the civil registry (ثبت احوال) inquiry service.
//!
//! # Protocol (the wire contract; the README's "Civil registry over HTTP" repeats it)
//!
//! ```text
//! GET {base_url}/persons/{national_id}
//! Authorization: Bearer {token}            (or Basic base64(username:password))
//! Accept: application/json
//! ```
//!
//! * `200` with a JSON person:
//!   ```json
//!   { "national_id": "2580200606", "serial": "883810",
//!     "first_name": "شهرزاد", "last_name": "…", "father_name": "…", "mother_name": "…",
//!     "gender": "female", "birth_date_jalali": "1369-03-19", "alive": true,
//!     "serial_changed_at": "2021-05-01T08:00:00Z" }
//!   ```
//!   `gender` is `female` or `male`; `serial` is six digits; `birth_date_jalali` is the
//!   solar (Jalali) date `YYYY-MM-DD`; `mother_name` is her first name alone;
//!   `serial_changed_at` is RFC 3339 or `null`. Every field is validated with the domain
//!   types; a record that does not parse, or that is about another national code, is
//!   [`PortError::Protocol`]. Unknown extra fields are ignored.
//! * `404`: no such person → `Ok(None)`.
//! * `202`: the registry accepted the inquiry but has no answer yet (its own queue is
//!   behind) → [`PortError::Unavailable`] `"answer pending"`: like an outage, the answer is
//!   unknown, so the identity stays `pending` and the inquiry job asks again later.
//! * Timeouts, transport errors, `5xx`, `429` (after the configured retries) and an open
//!   breaker → [`PortError::Unavailable`].
//! * Any other status (`401`, `403`, `400`, …) is a contract or configuration problem, not an
//!   outage → [`PortError::Protocol`].
//!
//! Callers treat both errors as "could not be checked": never as a match, never as a
//! mismatch.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::calendar::JalaliDate;
use domain::ids::NationalId;
use domain::person::{Gender, PersonName};
use domain::ports::{CivilRegistry, PortError, RegistryRecord};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::resilience::{BuildError, Resilience, ResilienceConfig, http_client, parse_base_url};

/// `[registry.http]`: where the registry is and how to authenticate. Exactly one of
/// `token` (bearer) or `username` + `password` (HTTP basic) must be set.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryHttpConfig {
    pub base_url: String,
    /// Bearer token (`Authorization: Bearer …`).
    pub token: Option<String>,
    /// HTTP basic authentication, instead of a token.
    pub username: Option<String>,
    pub password: Option<String>,
    pub resilience: ResilienceConfig,
}

impl fmt::Debug for RegistryHttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("RegistryHttpConfig")
            .field("base_url", &self.base_url)
            .field("token", &hidden(&self.token))
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("resilience", &self.resilience)
            .finish()
    }
}

/// How requests authenticate.
#[derive(Clone)]
enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

impl RegistryHttpConfig {
    fn credentials(&self) -> Result<Credentials, BuildError> {
        let set = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        match (set(&self.token), set(&self.username), set(&self.password)) {
            (Some(token), None, None) => Ok(Credentials::Bearer(token)),
            (None, Some(username), Some(password)) => Ok(Credentials::Basic { username, password }),
            (Some(_), _, _) => Err(BuildError::Credentials("set either token or username and password, not both")),
            (None, Some(_), None) | (None, None, Some(_)) => {
                Err(BuildError::Credentials("basic authentication needs both username and password"))
            }
            (None, None, None) => Err(BuildError::Credentials("token (or username and password) is missing")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpCivilRegistry {
    client: reqwest::Client,
    base_url: reqwest::Url,
    credentials: Credentials,
    policy: Arc<Resilience>,
}

impl HttpCivilRegistry {
    pub fn new(config: RegistryHttpConfig) -> Result<Self, BuildError> {
        let policy = Arc::new(Resilience::new(config.resilience));
        Self::with_policy(config, policy)
    }

    /// With a policy built elsewhere (e.g. one with a test clock).
    pub fn with_policy(config: RegistryHttpConfig, policy: Arc<Resilience>) -> Result<Self, BuildError> {
        Ok(Self {
            client: http_client(&config.resilience)?,
            base_url: parse_base_url(&config.base_url)?,
            credentials: config.credentials()?,
            policy,
        })
    }

    fn person_url(&self, id: &NationalId) -> reqwest::Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut().expect("checked in parse_base_url").pop_if_empty().extend(["persons", id.as_str()]);
        url
    }
}

/// The wire form; turned into a [`RegistryRecord`] only through the domain parsers.
#[derive(Deserialize)]
struct PersonDto {
    national_id: String,
    serial: String,
    first_name: String,
    last_name: String,
    father_name: String,
    mother_name: String,
    gender: String,
    birth_date_jalali: String,
    alive: bool,
    serial_changed_at: Option<DateTime<Utc>>,
}

fn parse_record(body: &[u8], asked: &NationalId) -> Result<RegistryRecord, PortError> {
    // serde's messages can quote field values (names, codes); report only where it broke.
    let syntax = |e: serde_json::Error| {
        PortError::Protocol(format!(
            "person record: {:?} error at line {}, column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    };
    // Through a map first: serde would also accept the fields as a positional array.
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).map_err(syntax)?;
    let dto: PersonDto = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| PortError::Protocol(format!("person record: {:?} error", e.classify())))?;
    let field = |name: &str| PortError::Protocol(format!("person record: invalid {name}"));
    let national_id = NationalId::parse(&dto.national_id).map_err(|_| field("national_id"))?;
    if &national_id != asked {
        // Attributing someone else's record to this person would be far worse than failing.
        return Err(PortError::Protocol("person record: about another national code".to_owned()));
    }
    if dto.serial.len() != 6 || !dto.serial.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field("serial"));
    }
    let name = |value: &str, what: &str| PersonName::parse(value).map_err(|_| field(what));
    Ok(RegistryRecord {
        national_id,
        serial: dto.serial,
        first_name: name(&dto.first_name, "first_name")?,
        last_name: name(&dto.last_name, "last_name")?,
        father_name: name(&dto.father_name, "father_name")?,
        mother_name: name(&dto.mother_name, "mother_name")?,
        gender: Gender::parse(&dto.gender).ok_or_else(|| field("gender"))?,
        birth_date: JalaliDate::parse(&dto.birth_date_jalali).map_err(|_| field("birth_date_jalali"))?,
        alive: dto.alive,
        serial_changed_at: dto.serial_changed_at,
    })
}

#[async_trait]
impl CivilRegistry for HttpCivilRegistry {
    async fn find(&self, id: &NationalId) -> Result<Option<RegistryRecord>, PortError> {
        let url = self.person_url(id);
        let outcome = self
            .policy
            .execute(|| {
                let request = self.client.get(url.clone()).header(reqwest::header::ACCEPT, "application/json");
                match &self.credentials {
                    Credentials::Bearer(token) => request.bearer_auth(token),
                    Credentials::Basic { username, password } => request.basic_auth(username, Some(password)),
                }
            })
            .await;
        let reply = match outcome {
            Ok(reply) => reply,
            Err(failure) => {
                tracing::warn!(national_id = %domain::mask::national_id(id.as_str()), %failure, "civil registry unavailable");
                return Err(PortError::Unavailable(failure.to_string()));
            }
        };
        let result = match reply.status {
            StatusCode::OK => parse_record(&reply.body, id).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::ACCEPTED => {
                tracing::info!(national_id = %domain::mask::national_id(id.as_str()), "civil registry answer pending");
                return Err(PortError::Unavailable("answer pending".to_owned()));
            }
            other => Err(PortError::Protocol(format!("unexpected http status {}", other.as_u16()))),
        };
        if let Err(e) = &result {
            tracing::error!(national_id = %domain::mask::national_id(id.as_str()), error = %e, "civil registry answer unusable");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const ID: &str = "2580200606";

    fn resilience(retries: u32, breaker_failures: u32, breaker_cooldown_ms: u64) -> ResilienceConfig {
        ResilienceConfig { timeout_ms: 1_000, retries, backoff_base_ms: 1, breaker_failures, breaker_cooldown_ms }
    }

    fn registry(server: &MockServer, resilience: ResilienceConfig) -> HttpCivilRegistry {
        HttpCivilRegistry::new(RegistryHttpConfig {
            base_url: server.uri(),
            token: Some("secret-key".into()),
            resilience,
            ..Default::default()
        })
        .unwrap()
    }

    fn id() -> NationalId {
        NationalId::parse(ID).unwrap()
    }

    fn person() -> serde_json::Value {
        json!({
            "national_id": ID,
            "serial": "883810",
            "first_name": "شهرزاد",
            "last_name": "کریمی",
            "father_name": "علی",
            "mother_name": "مریم",
            "gender": "female",
            "birth_date_jalali": "1369-03-19",
            "alive": true,
            "serial_changed_at": "2021-05-01T08:00:00Z"
        })
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    #[tokio::test]
    async fn finds_a_person() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/persons/{ID}")))
            .and(header("authorization", "Bearer secret-key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(person()))
            .mount(&server)
            .await;
        let record = registry(&server, resilience(2, 5, 30_000)).find(&id()).await.unwrap().unwrap();
        assert_eq!(record.national_id, id());
        assert_eq!(record.serial, "883810");
        assert_eq!(record.first_name.as_str(), "شهرزاد");
        assert_eq!(record.gender, Gender::Female);
        assert_eq!(record.birth_date, JalaliDate::new(1369, 3, 19).unwrap());
        assert!(record.alive);
        assert_eq!(record.serial_changed_at, Some("2021-05-01T08:00:00Z".parse().unwrap()));
    }

    #[tokio::test]
    async fn basic_credentials_and_the_mother_name_travel() {
        let server = MockServer::start().await;
        // base64("ncr:pa55") = bmNyOnBhNTU=
        Mock::given(method("GET"))
            .and(path(format!("/persons/{ID}")))
            .and(header("authorization", "Basic bmNyOnBhNTU="))
            .and(header("accept", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_json({
                let mut p = person();
                p["issued_at_office"] = json!("ignored extra field");
                p
            }))
            .mount(&server)
            .await;
        let registry = HttpCivilRegistry::new(RegistryHttpConfig {
            base_url: server.uri(),
            username: Some("ncr".into()),
            password: Some("pa55".into()),
            resilience: resilience(0, 5, 30_000),
            ..Default::default()
        })
        .unwrap();
        let record = registry.find(&id()).await.unwrap().unwrap();
        assert_eq!(record.mother_name.as_str(), "مریم");
        assert_eq!(record.father_name.as_str(), "علی");
        assert_eq!(record.last_name.as_str(), "کریمی");
    }

    #[tokio::test]
    async fn accepted_means_the_answer_is_pending() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(202)).mount(&server).await;
        let outcome = registry(&server, resilience(2, 10, 30_000)).find(&id()).await;
        assert_eq!(outcome, Err(PortError::Unavailable("answer pending".into())));
        assert_eq!(requests(&server).await, 1, "a queued inquiry is asked again by the job, not at once");
    }

    #[test]
    fn credentials_are_one_of_token_or_basic() {
        let base = || RegistryHttpConfig { base_url: "https://registry.example".into(), ..Default::default() };
        let refused = |c: RegistryHttpConfig| matches!(HttpCivilRegistry::new(c), Err(BuildError::Credentials(_)));
        assert!(refused(base()), "no credentials");
        assert!(refused(RegistryHttpConfig { token: Some(String::new()), ..base() }), "an empty token");
        assert!(refused(RegistryHttpConfig { username: Some("u".into()), ..base() }), "a user without password");
        assert!(refused(RegistryHttpConfig { password: Some("p".into()), ..base() }), "a password without user");
        assert!(refused(RegistryHttpConfig {
            token: Some("t".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            ..base()
        }));
        assert!(HttpCivilRegistry::new(RegistryHttpConfig { token: Some("t".into()), ..base() }).is_ok());
        assert!(
            HttpCivilRegistry::new(RegistryHttpConfig {
                username: Some("u".into()),
                password: Some("p".into()),
                ..base()
            })
            .is_ok()
        );
        assert!(matches!(
            HttpCivilRegistry::new(RegistryHttpConfig {
                base_url: "ftp://x".into(),
                token: Some("t".into()),
                ..Default::default()
            }),
            Err(BuildError::BaseUrl(_))
        ));
    }

    #[tokio::test]
    async fn a_null_serial_change_is_none() {
        let server = MockServer::start().await;
        let mut body = person();
        body["serial_changed_at"] = serde_json::Value::Null;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(&server).await;
        let record = registry(&server, resilience(0, 5, 30_000)).find(&id()).await.unwrap().unwrap();
        assert_eq!(record.serial_changed_at, None);
    }

    #[tokio::test]
    async fn not_found_is_none() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
        assert_eq!(registry(&server, resilience(2, 5, 30_000)).find(&id()).await, Ok(None));
        assert_eq!(requests(&server).await, 1, "a 404 is an answer, not retried");
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_unavailable() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
        let outcome = registry(&server, resilience(2, 10, 30_000)).find(&id()).await;
        assert!(matches!(outcome, Err(PortError::Unavailable(_))), "{outcome:?}");
        assert_eq!(requests(&server).await, 3, "one attempt and two retries");
    }

    #[tokio::test]
    async fn a_timeout_is_unavailable() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(person()).set_delay(Duration::from_secs(3)))
            .mount(&server)
            .await;
        let outcome = registry(&server, resilience(1, 10, 30_000)).find(&id()).await;
        assert_eq!(outcome, Err(PortError::Unavailable("timed out".into())));
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
        let outcome = registry(&server, resilience(2, 10, 30_000)).find(&id()).await;
        assert!(matches!(outcome, Err(PortError::Protocol(_))), "{outcome:?}");
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn an_unparseable_body_is_a_protocol_error() {
        for body in [
            ResponseTemplate::new(200).set_body_string("<html>gateway</html>"),
            ResponseTemplate::new(200).set_body_json(json!({ "national_id": ID })),
            ResponseTemplate::new(200)
                .set_body_json(person().as_object().unwrap().values().cloned().collect::<Vec<_>>()),
            ResponseTemplate::new(200).set_body_json({
                let mut p = person();
                p["gender"] = json!("unknown");
                p
            }),
            ResponseTemplate::new(200).set_body_json({
                let mut p = person();
                p["birth_date_jalali"] = json!("1404-12-30");
                p
            }),
            ResponseTemplate::new(200).set_body_json({
                let mut p = person();
                p["national_id"] = json!("0499370899");
                p
            }),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("GET")).respond_with(body).mount(&server).await;
            let outcome = registry(&server, resilience(2, 10, 30_000)).find(&id()).await;
            assert!(matches!(outcome, Err(PortError::Protocol(_))), "{outcome:?}");
            assert_eq!(requests(&server).await, 1, "a bad body is not retried");
        }
    }

    #[tokio::test]
    async fn the_breaker_fails_fast_then_lets_a_trial_through() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
        let registry = registry(&server, resilience(0, 2, 300));
        for _ in 0..2 {
            assert!(matches!(registry.find(&id()).await, Err(PortError::Unavailable(_))));
        }
        assert_eq!(requests(&server).await, 2);
        assert_eq!(registry.find(&id()).await, Err(PortError::Unavailable("circuit open".into())));
        assert_eq!(requests(&server).await, 2, "an open breaker does not reach the server");

        server.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(person()))
            .mount(&server)
            .await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(registry.find(&id()).await.unwrap().is_some(), "the trial after the cool-down goes through");
        assert!(registry.find(&id()).await.unwrap().is_some(), "and closes the breaker");
        assert_eq!(requests(&server).await, 2);
    }

    #[test]
    fn debug_redacts_the_key() {
        let config = RegistryHttpConfig {
            base_url: "https://registry.example".into(),
            token: Some("secret-key".into()),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("secret-key"));
        assert!(!format!("{:?}", HttpCivilRegistry::new(config).unwrap()).contains("secret-key"));
        let basic = RegistryHttpConfig {
            base_url: "https://registry.example".into(),
            username: Some("ncr".into()),
            password: Some("basic-secret".into()),
            ..Default::default()
        };
        assert!(!format!("{basic:?}").contains("basic-secret"));
        assert!(!format!("{:?}", HttpCivilRegistry::new(basic).unwrap()).contains("basic-secret"));
    }

    #[test]
    fn urls_keep_a_base_path() {
        let config = RegistryHttpConfig {
            base_url: "https://gw.example/registry/v2/".into(),
            token: Some("k".into()),
            ..Default::default()
        };
        let registry = HttpCivilRegistry::new(config).unwrap();
        assert_eq!(registry.person_url(&id()).as_str(), "https://gw.example/registry/v2/persons/2580200606");
    }
}
