//! Tokens: EdDSA (Ed25519) JWTs with a pinned algorithm, required `iss`, `aud`, `sub`,
//! `exp` and `nbf`, and a `kid` naming the signing key so keys can rotate. Each kind of
//! caller has its own audience, and an extractor per kind that accepts nothing else.
//! Tokens carry opaque ids only — never a national code.

use std::collections::HashMap;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Who a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Citizen,
    Staff,
    Machine,
    Efolder,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Citizen => "citizen",
            Audience::Staff => "staff",
            Audience::Machine => "machine",
            Audience::Efolder => "efolder",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Staff role (`operator`, `admin`) or machine client kind (`kiosk`, `production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The operator's office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
    /// Space-separated scopes of a machine client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Staff token version: bumped when a password is reset, killing older tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tv: Option<i32>,
    /// An e-folder user who must change the generated password first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd_change: Option<bool>,
    /// The server-side session of a citizen, staff or e-folder token (ended by logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

struct SigningKey {
    id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: [u8; 32],
    /// The raw key, for receipt signatures (plain Ed25519 over a short canonical text).
    signer: ed25519_dalek::SigningKey,
}

/// Issues and verifies tokens.
pub struct TokenService {
    issuer: String,
    keys: Vec<SigningKey>,
    by_id: HashMap<String, usize>,
}

impl TokenService {
    /// The first key signs; all verify (rotation: add the new key first, keep the old one
    /// until its tokens have expired).
    pub fn new(issuer: &str, keys: &[(String, ed25519_dalek::SigningKey)]) -> Result<Self, String> {
        let mut out = Vec::new();
        for (id, key) in keys {
            let der = key.to_pkcs8_der().map_err(|e| format!("cannot encode key {id}: {e}"))?;
            let public = key.verifying_key().to_bytes();
            out.push(SigningKey {
                id: id.clone(),
                encoding: EncodingKey::from_ed_der(der.as_bytes()),
                decoding: DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(public))
                    .map_err(|e| e.to_string())?,
                public,
                signer: key.clone(),
            });
        }
        if out.is_empty() {
            return Err("no signing key".into());
        }
        let by_id = out.iter().enumerate().map(|(i, k)| (k.id.clone(), i)).collect();
        Ok(Self { issuer: issuer.to_owned(), keys: out, by_id })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs claims with the active key.
    pub fn issue(&self, claims: &Claims) -> Result<String, ApiError> {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.id.clone());
        encode(&header, claims, &key.encoding).map_err(ApiError::internal)
    }

    /// Claims for a new token of an audience.
    pub fn claims(&self, aud: Audience, sub: &str, now: DateTime<Utc>, minutes: i64) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            aud: aud.as_str().into(),
            sub: sub.into(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: now.timestamp() + minutes * 60,
            role: None,
            office: None,
            scope: None,
            tv: None,
            pwd_change: None,
            sid: None,
        }
    }

    /// Verifies a token for one audience: algorithm pinned to EdDSA, known `kid`,
    /// `iss`/`aud` exact, `exp` and `nbf` checked against `now` (30 s leeway).
    pub fn verify(&self, token: &str, aud: Audience, now: DateTime<Utc>) -> Result<Claims, ApiError> {
        let invalid = ApiError::Unauthorized("token_invalid");
        let header = decode_header(token).map_err(|_| ApiError::Unauthorized("token_invalid"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid);
        }
        let key = header.kid.as_ref().and_then(|kid| self.by_id.get(kid)).map(|&i| &self.keys[i]).ok_or(invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[aud.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // Time is checked below against the injected clock, so tests can move it.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data =
            decode::<Claims>(token, &key.decoding, &validation).map_err(|_| ApiError::Unauthorized("token_invalid"))?;
        let claims = data.claims;
        const LEEWAY: i64 = 30;
        let t = now.timestamp();
        if claims.exp + LEEWAY < t {
            return Err(ApiError::Unauthorized("token_expired"));
        }
        if claims.nbf - LEEWAY > t || claims.iat - LEEWAY > t {
            return Err(ApiError::Unauthorized("token_invalid"));
        }
        Ok(claims)
    }

    /// Whether a token is valid for some audience other than `aud`.
    pub fn valid_for_another(&self, token: &str, aud: Audience, now: DateTime<Utc>) -> bool {
        [Audience::Citizen, Audience::Staff, Audience::Machine, Audience::Efolder]
            .into_iter()
            .any(|other| other != aud && self.verify(token, other, now).is_ok())
    }

    /// Signs a receipt: Ed25519 by the active key over [`receipt_message`], base64url
    /// without padding (86 characters). The public keys are in `/.well-known/jwks.json`,
    /// so an office can check a printed receipt offline.
    pub fn sign_receipt(&self, tracking_code: &str, issued_on: &str) -> String {
        self.sign_receipt_of(ReceiptKind::Registration, tracking_code, issued_on)
    }

    /// Signs a receipt of the given kind (see [`ReceiptKind::message`]).
    pub fn sign_receipt_of(&self, kind: ReceiptKind, tracking_code: &str, issued_on: &str) -> String {
        use ed25519_dalek::Signer;
        let signature = self.keys[0].signer.sign(kind.message(tracking_code, issued_on).as_bytes());
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    }

    /// Whether `signature` is a registration-receipt signature by any of our keys (old keys
    /// keep verifying receipts printed before a rotation).
    pub fn verify_receipt(&self, tracking_code: &str, issued_on: &str, signature: &str) -> bool {
        self.verify_receipt_of(ReceiptKind::Registration, tracking_code, issued_on, signature)
    }

    /// Whether `signature` is a signature of a receipt of this kind by any of our keys.
    pub fn verify_receipt_of(&self, kind: ReceiptKind, tracking_code: &str, issued_on: &str, signature: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature.trim()) else { return false };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else { return false };
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        let message = kind.message(tracking_code, issued_on);
        self.keys.iter().any(|k| k.signer.verifying_key().verify_strict(message.as_bytes(), &signature).is_ok())
    }

    /// The public keys as a JWK set, so other services can verify our tokens and receipts.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.id, "x": URL_SAFE_NO_PAD.encode(k.public)})
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// The exact bytes a registration-receipt signature covers: `ncr-receipt:v1:<tracking code>:<issued on>`.
pub fn receipt_message(tracking_code: &str, issued_on: &str) -> String {
    format!("ncr-receipt:v1:{tracking_code}:{issued_on}")
}

/// Which receipt a signature is for. Each kind signs its own text, so the signature of one
/// receipt never passes for another kind's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// «نتیجه ثبت نام» after payment.
    Registration,
    /// «رسید تکمیل ثبت نام» at the office's completion (docs/domain/eligibility.md).
    Enrollment,
}

impl ReceiptKind {
    /// The signed text: [`receipt_message`] for a registration receipt,
    /// `ncr-enrollment-receipt:v1:<tracking code>:<issued on>` for an enrollment receipt.
    pub fn message(self, tracking_code: &str, issued_on: &str) -> String {
        match self {
            ReceiptKind::Registration => receipt_message(tracking_code, issued_on),
            ReceiptKind::Enrollment => format!("ncr-enrollment-receipt:v1:{tracking_code}:{issued_on}"),
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized("token_missing"))?;
    let text = value.to_str().map_err(|_| ApiError::Unauthorized("token_invalid"))?;
    let (scheme, token) = text.split_once(' ').ok_or(ApiError::Unauthorized("token_invalid"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("token_invalid"));
    }
    Ok(token.trim())
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("application state missing"))
}

/// Verifies the request's bearer token for one audience. A valid token of another kind
/// (a citizen's on an administrator's path) is 403 `token_wrong_kind`: signing in again
/// would not help, a different account would.
fn verify_for(req: &HttpRequest, aud: Audience) -> Result<Claims, ApiError> {
    let state = state(req)?;
    let token = bearer(req)?;
    let now = state.now();
    state.tokens.verify(token, aud, now).map_err(|e| match e {
        ApiError::Unauthorized("token_invalid") if state.tokens.valid_for_another(token, aud, now) => {
            ApiError::Forbidden("token_wrong_kind")
        }
        e => e,
    })
}

/// Checks the token's server-side session: 401 `session_ended` after a logout (or for a
/// token without a session), `session_idle` when unused for longer than `idle`.
fn check_session(
    conn: &mut persistence::DbConn,
    claims: &Claims,
    aud: Audience,
    now: DateTime<Utc>,
    idle: Option<chrono::Duration>,
) -> Result<String, ApiError> {
    let sid = claims.sid.clone().ok_or(ApiError::Unauthorized("session_ended"))?;
    match persistence::sessions::check(conn, &sid, aud.as_str(), &claims.sub, now.naive_utc(), idle)? {
        Ok(()) => Ok(sid),
        Err(persistence::sessions::Inactive::Ended) => Err(ApiError::Unauthorized("session_ended")),
        Err(persistence::sessions::Inactive::Idle) => Err(ApiError::Unauthorized("session_idle")),
    }
}

/// Opens the server-side session a new token will name (its `sid`).
pub fn open_session(
    conn: &mut persistence::DbConn,
    aud: Audience,
    subject: &str,
    now: DateTime<Utc>,
    minutes: i64,
) -> Result<String, persistence::DbError> {
    let expires = now + chrono::Duration::minutes(minutes) + chrono::Duration::seconds(60);
    persistence::sessions::open(conn, aud.as_str(), subject, now.naive_utc(), expires.naive_utc())
}

/// A citizen signed in with national code + serial + captcha. `citizen_id` is opaque.
#[derive(Debug, Clone)]
pub struct CitizenPrincipal {
    pub citizen_id: String,
    /// The token's server-side session.
    pub session_id: String,
}

fn citizen(req: &HttpRequest) -> LocalBoxFuture<'static, Result<CitizenPrincipal, ApiError>> {
    let claims = verify_for(req, Audience::Citizen);
    let state = state(req).cloned();
    Box::pin(async move {
        let (claims, state) = (claims?, state?);
        let now = state.now();
        let sub = claims.sub.clone();
        let session_id = state.run_api(move |conn| check_session(conn, &claims, Audience::Citizen, now, None)).await?;
        Ok(CitizenPrincipal { citizen_id: sub, session_id })
    })
}

impl FromRequest for CitizenPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        citizen(req)
    }
}

/// An optional citizen: anonymous callers are fine, a bad token is not.
#[derive(Debug, Clone)]
pub struct MaybeCitizen(pub Option<CitizenPrincipal>);

impl FromRequest for MaybeCitizen {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if req.headers().get(header::AUTHORIZATION).is_none() {
            return Box::pin(async { Ok(MaybeCitizen(None)) });
        }
        let who = citizen(req);
        Box::pin(async move { Ok(MaybeCitizen(Some(who.await?))) })
    }
}

/// A machine client (kiosk or card production system).
#[derive(Debug, Clone)]
pub struct MachinePrincipal {
    pub client_id: String,
    pub kind: String,
    pub scopes: Vec<String>,
}

impl MachinePrincipal {
    pub fn require(&self, kind: &str, scope: &str) -> Result<(), ApiError> {
        if self.kind == kind && self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("forbidden"))
        }
    }
}

impl MachinePrincipal {
    /// From the token alone (signature, audience, time), before the database is asked.
    fn from_token(req: &HttpRequest) -> Result<(Self, Option<i32>), ApiError> {
        verify_for(req, Audience::Machine).map(|c| {
            let principal = MachinePrincipal {
                client_id: c.sub,
                kind: c.role.unwrap_or_default(),
                scopes: c.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
            };
            (principal, c.tv)
        })
    }

    /// Whether the client is still enabled and the token's version is its current one
    /// (rotating the secret or disabling the client bumps it): 401 `token_invalid` if not.
    fn still_valid(
        req: &HttpRequest,
        principal: Self,
        version: Option<i32>,
    ) -> LocalBoxFuture<'static, Result<Self, ApiError>> {
        let state = state(req).cloned();
        Box::pin(async move {
            let state = state?;
            let id = principal.client_id.clone();
            let row = state.run(move |conn| persistence::back_office::client(conn, &id)).await?;
            match row {
                Some(c) if !c.disabled && Some(c.token_version) == version => Ok(principal),
                _ => Err(ApiError::Unauthorized("token_invalid")),
            }
        })
    }
}

impl FromRequest for MachinePrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        match Self::from_token(req) {
            Ok((principal, version)) => Self::still_valid(req, principal, version),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

/// Declares an extractor for machine clients of one kind and scope, so the check runs
/// before the request body is read (a client without the scope gets 403, whatever it sent).
macro_rules! scoped_machine {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub MachinePrincipal);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let checked = MachinePrincipal::from_token(req)
                    .and_then(|(c, v)| c.require($kind, $scope).map(|()| (c, v)));
                match checked {
                    Ok((c, v)) => {
                        let valid = MachinePrincipal::still_valid(req, c, v);
                        Box::pin(async move { Ok($name(valid.await?)) })
                    }
                    Err(e) => Box::pin(async move { Err(e) }),
                }
            }
        }
    };
}

scoped_machine!(
    /// A partner kiosk allowed to register applications.
    KioskClient, "kiosk", "kiosk:applications"
);
scoped_machine!(
    /// The card production line, allowed to report production events.
    ProductionClient, "production", "production:events"
);

/// A signed-in staff member, checked against the database on every request so a
/// disabled account or a reset password stops its tokens at once.
#[derive(Debug, Clone)]
pub struct StaffPrincipal {
    pub staff_id: String,
    /// The token's server-side session.
    pub session_id: String,
    pub username: String,
    pub role: StaffRole,
    pub office_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    Operator,
    Admin,
}

impl StaffPrincipal {
    /// The one place staff roles are checked.
    pub fn require(&self, role: StaffRole) -> Result<(), ApiError> {
        if self.role == role { Ok(()) } else { Err(ApiError::Forbidden("forbidden")) }
    }

    /// The office an operator works at.
    pub fn office(&self) -> Result<&str, ApiError> {
        self.require(StaffRole::Operator)?;
        self.office_id.as_deref().ok_or(ApiError::Forbidden("forbidden"))
    }
}

impl FromRequest for StaffPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = verify_for(req, Audience::Staff);
        let state = state(req).cloned();
        Box::pin(async move {
            let claims = claims?;
            let state = state?;
            let now = state.now();
            let idle = chrono::Duration::minutes(state.config.auth.staff_idle_minutes);
            let (user, session_id) = state
                .run_api(move |conn| {
                    let user = persistence::staff::find(conn, &claims.sub)?;
                    let user = user.ok_or(ApiError::Unauthorized("token_invalid"))?;
                    if user.disabled || Some(user.token_version) != claims.tv {
                        return Err(ApiError::Unauthorized("token_invalid"));
                    }
                    Ok((user, check_session(conn, &claims, Audience::Staff, now, Some(idle))?))
                })
                .await?;
            let role = match user.role.as_str() {
                "admin" => StaffRole::Admin,
                _ => StaffRole::Operator,
            };
            Ok(StaffPrincipal {
                staff_id: user.id,
                session_id,
                username: user.username,
                role,
                office_id: user.office_id,
            })
        })
    }
}

/// An administrator (any other caller: 401 without a staff token, 403 with one).
#[derive(Debug, Clone)]
pub struct AdminPrincipal(pub StaffPrincipal);

impl FromRequest for AdminPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Decided from the token at once, so a caller without the role learns nothing about
        // the request body (which is extracted after this).
        match verify_for(req, Audience::Staff) {
            Err(e) => return Box::pin(async move { Err(e) }),
            Ok(c) if c.role.as_deref() != Some("admin") => {
                return Box::pin(async { Err(ApiError::Forbidden("forbidden")) });
            }
            Ok(_) => {}
        }
        let staff = StaffPrincipal::from_request(req, payload);
        Box::pin(async move {
            let staff = staff.await?;
            staff.require(StaffRole::Admin)?;
            Ok(AdminPrincipal(staff))
        })
    }
}

/// An enrollment-office operator (an administrator gets 403: operators act for an office).
#[derive(Debug, Clone)]
pub struct OperatorPrincipal(pub StaffPrincipal);

impl OperatorPrincipal {
    pub fn office(&self) -> Result<&str, ApiError> {
        self.0.office()
    }
}

impl FromRequest for OperatorPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        match verify_for(req, Audience::Staff) {
            Err(e) => return Box::pin(async move { Err(e) }),
            Ok(c) if c.role.as_deref() != Some("operator") => {
                return Box::pin(async { Err(ApiError::Forbidden("forbidden")) });
            }
            Ok(_) => {}
        }
        let staff = StaffPrincipal::from_request(req, payload);
        Box::pin(async move {
            let staff = staff.await?;
            staff.require(StaffRole::Operator)?;
            Ok(OperatorPrincipal(staff))
        })
    }
}

/// A signed-in e-folder user, checked against the database on every request: a changed
/// or reset password stops older tokens at once, and the first-login flag is the
/// database's, not the token's.
#[derive(Debug, Clone)]
pub struct EfolderPrincipal {
    pub account: persistence::efolder::AccountRow,
    /// The token's server-side session.
    pub session_id: String,
}

impl EfolderPrincipal {
    /// Every e-folder operation except changing the password needs the generated
    /// password changed first.
    pub fn require_password_changed(&self) -> Result<(), ApiError> {
        if self.account.must_change_password { Err(ApiError::Forbidden("password_change_required")) } else { Ok(()) }
    }
}

impl FromRequest for EfolderPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = verify_for(req, Audience::Efolder);
        let state = state(req).cloned();
        Box::pin(async move {
            let claims = claims?;
            let state = state?;
            let now = state.now();
            state
                .run_api(move |conn| {
                    let account = persistence::efolder::find(conn, &claims.sub)?;
                    let account = account.ok_or(ApiError::Unauthorized("token_invalid"))?;
                    if Some(account.token_version) != claims.tv {
                        return Err(ApiError::Unauthorized("token_invalid"));
                    }
                    let session_id = check_session(conn, &claims, Audience::Efolder, now, None)?;
                    Ok(EfolderPrincipal { account, session_id })
                })
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn service() -> TokenService {
        TokenService::new("ncr", &[("s1".into(), ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]))]).unwrap()
    }

    #[test]
    fn a_token_verifies_only_for_its_audience_and_time() {
        let s = service();
        let now = Utc::now();
        let token = s.issue(&s.claims(Audience::Citizen, "c1", now, 30)).unwrap();
        assert_eq!(s.verify(&token, Audience::Citizen, now).unwrap().sub, "c1");
        assert!(matches!(s.verify(&token, Audience::Staff, now), Err(ApiError::Unauthorized("token_invalid"))));
        assert!(matches!(
            s.verify(&token, Audience::Citizen, now + Duration::minutes(31)),
            Err(ApiError::Unauthorized("token_expired"))
        ));
        let future = s.issue(&s.claims(Audience::Citizen, "c1", now + Duration::hours(1), 30)).unwrap();
        assert!(s.verify(&future, Audience::Citizen, now).is_err(), "nbf in the future");
    }

    #[test]
    fn a_receipt_signature_does_not_pass_for_the_other_kind() {
        let s = service();
        let reg = s.sign_receipt("4973201670", "2026-11-22");
        let enr = s.sign_receipt_of(ReceiptKind::Enrollment, "4973201670", "2026-11-22");
        assert_ne!(reg, enr);
        assert!(s.verify_receipt_of(ReceiptKind::Enrollment, "4973201670", "2026-11-22", &enr));
        assert!(!s.verify_receipt_of(ReceiptKind::Enrollment, "4973201670", "2026-11-22", &reg));
        assert!(!s.verify_receipt("4973201670", "2026-11-22", &enr));
    }

    #[test]
    fn receipt_signatures_verify_with_the_published_key_and_catch_tampering() {
        let s = service();
        let sig = s.sign_receipt("4973201670", "2026-11-22");
        assert_eq!(sig.len(), 86);
        assert!(s.verify_receipt("4973201670", "2026-11-22", &sig));
        assert!(!s.verify_receipt("4973201671", "2026-11-22", &sig), "tracking code changed");
        assert!(!s.verify_receipt("4973201670", "2026-11-23", &sig), "date changed");
        let mut bad = sig.clone().into_bytes();
        bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
        assert!(!s.verify_receipt("4973201670", "2026-11-22", &String::from_utf8(bad).unwrap()));
        assert!(!s.verify_receipt("4973201670", "2026-11-22", "not base64!"));
        // Anyone holding the JWKS `x` value checks it with plain Ed25519.
        let jwks = s.jwks();
        let x = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        let raw: [u8; 64] = URL_SAFE_NO_PAD.decode(&sig).unwrap().try_into().unwrap();
        key.verify_strict(
            receipt_message("4973201670", "2026-11-22").as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&raw),
        )
        .unwrap();
        // After a rotation the old key still verifies receipts it signed.
        let rotated = TokenService::new(
            "ncr",
            &[
                ("s2".into(), ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])),
                ("s1".into(), ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])),
            ],
        )
        .unwrap();
        assert!(rotated.verify_receipt("4973201670", "2026-11-22", &sig));
    }

    #[test]
    fn rotated_keys_still_verify_old_tokens() {
        let old = service();
        let now = Utc::now();
        let token = old.issue(&old.claims(Audience::Staff, "u", now, 5)).unwrap();
        let rotated = TokenService::new(
            "ncr",
            &[
                ("s2".into(), ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])),
                ("s1".into(), ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])),
            ],
        )
        .unwrap();
        assert!(rotated.verify(&token, Audience::Staff, now).is_ok());
        let only_new =
            TokenService::new("ncr", &[("s2".into(), ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]))]).unwrap();
        assert!(only_new.verify(&token, Audience::Staff, now).is_err(), "unknown kid");
    }
}
