//! Tokens: EdDSA (Ed25519) JWTs with a pinned algorithm, required `iss`, `aud`, `sub`,
//! `exp` and `nbf`, and a `kid` naming the signing key so keys can rotate. Each kind of
//! caller has its own audience (the actix extractors that accept each one are
//! [`crate::auth`]'s). Tokens carry opaque ids only — never a national code. The same keys
//! sign receipts.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use crate::error::{ApiCode, ApiError};

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
    /// Tokens whose signature and fixed claims were checked, by their exact text: a
    /// citizen's token comes back with every request of a journey, and the Ed25519 check
    /// is the largest cost of a request the database does not answer. The time claims are
    /// checked on every use. Bounded: emptied when full.
    verified: std::sync::Mutex<HashMap<Box<str>, std::sync::Arc<Claims>>>,
    verified_capacity: usize,
}

/// How many checked tokens [`TokenService`] remembers before it starts again (about 1 KB
/// each with the map's slot: some 20 MB at most).
const VERIFIED_TOKENS: usize = 20_000;

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
        Ok(Self {
            issuer: issuer.to_owned(),
            keys: out,
            by_id,
            verified: Default::default(),
            verified_capacity: VERIFIED_TOKENS,
        })
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
        let known = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        let claims = match known {
            Some(claims) if claims.aud == aud.as_str() => claims,
            _ => {
                let claims = std::sync::Arc::new(self.check_signature(token, aud)?);
                let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                // Full: started again, the old entries freed after the lock is let go.
                let old = (verified.len() >= self.verified_capacity).then(|| std::mem::take(&mut *verified));
                verified.insert(token.into(), claims.clone());
                drop(verified);
                drop(old);
                claims
            }
        };
        const LEEWAY: i64 = 30;
        let t = now.timestamp();
        if claims.exp + LEEWAY < t {
            return Err(ApiError::Unauthorized(ApiCode::TokenExpired));
        }
        if claims.nbf - LEEWAY > t || claims.iat - LEEWAY > t {
            return Err(ApiError::Unauthorized(ApiCode::TokenInvalid));
        }
        Ok(std::sync::Arc::unwrap_or_clone(claims))
    }

    /// The signature, algorithm, key, issuer and audience of a token: what does not depend
    /// on the time.
    fn check_signature(&self, token: &str, aud: Audience) -> Result<Claims, ApiError> {
        let invalid = ApiError::Unauthorized(ApiCode::TokenInvalid);
        let header = decode_header(token).map_err(|_| ApiError::Unauthorized(ApiCode::TokenInvalid))?;
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
        let data = decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|_| ApiError::Unauthorized(ApiCode::TokenInvalid))?;
        Ok(data.claims)
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

/// Opens the server-side session a new token will name (its `sid`).
pub fn open_session(
    conn: &mut persistence::DbConn,
    aud: Audience,
    subject: &str,
    now: DateTime<Utc>,
    minutes: i64,
) -> Result<String, persistence::DbError> {
    let row = session_row(aud, subject, now, minutes);
    persistence::sessions::insert(conn, &row)?;
    Ok(row.id)
}

/// The session [`open_session`] opens, for a statement that writes it with its subject:
/// it outlives the token by a minute.
pub fn session_row(
    aud: Audience,
    subject: &str,
    now: DateTime<Utc>,
    minutes: i64,
) -> persistence::sessions::SessionRow {
    let expires = now + chrono::Duration::minutes(minutes) + chrono::Duration::seconds(60);
    persistence::sessions::new_row(aud.as_str(), subject, now.naive_utc(), expires.naive_utc())
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
        assert!(matches!(s.verify(&token, Audience::Staff, now), Err(ApiError::Unauthorized(ApiCode::TokenInvalid))));
        assert!(matches!(
            s.verify(&token, Audience::Citizen, now + Duration::minutes(31)),
            Err(ApiError::Unauthorized(ApiCode::TokenExpired))
        ));
        let future = s.issue(&s.claims(Audience::Citizen, "c1", now + Duration::hours(1), 30)).unwrap();
        assert!(s.verify(&future, Audience::Citizen, now).is_err(), "nbf in the future");
    }

    #[test]
    fn a_checked_token_is_remembered_by_its_exact_text_and_its_time_still_checked() {
        let mut s = service();
        s.verified_capacity = 3;
        let now = Utc::now();
        let token = s.issue(&s.claims(Audience::Citizen, "c1", now, 30)).unwrap();
        assert_eq!(s.verify(&token, Audience::Citizen, now).unwrap().sub, "c1");
        assert!(s.verified.lock().unwrap().contains_key(token.as_str()));
        // Remembered, yet expired at its time and refused for another audience.
        assert!(matches!(
            s.verify(&token, Audience::Citizen, now + Duration::minutes(31)),
            Err(ApiError::Unauthorized(ApiCode::TokenExpired))
        ));
        assert!(matches!(s.verify(&token, Audience::Staff, now), Err(ApiError::Unauthorized(ApiCode::TokenInvalid))));
        // One character of the signature changed is another text: checked, and refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(matches!(
            s.verify(&forged, Audience::Citizen, now),
            Err(ApiError::Unauthorized(ApiCode::TokenInvalid))
        ));
        // So is a payload changed under the remembered signature.
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let other = s.claims(Audience::Citizen, "c2", now, 30);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let spliced = format!("{head}.{payload}.{signature}");
        assert!(s.verify(&spliced, Audience::Citizen, now).is_err());
        // Bounded: a fourth token starts the memory again.
        for sub in ["c3", "c4", "c5"] {
            let t = s.issue(&s.claims(Audience::Citizen, sub, now, 30)).unwrap();
            s.verify(&t, Audience::Citizen, now).unwrap();
        }
        assert!(s.verified.lock().unwrap().len() <= 3);
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
