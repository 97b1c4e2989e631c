//! Personal identifiers at rest (docs/operating.md). A national code or mobile is stored as
//! two values:
//! - a keyed HMAC-SHA256 (`lookup`), for equality lookups and uniqueness — an unkeyed hash
//!   of a 10-digit code would be brute-forced in seconds;
//! - an AES-256-GCM ciphertext (`seal`), for showing it back to its owner.
//!
//! Both carry the id of the key that made them, so keys can be rotated: new values use
//! the active key, lookups try every configured key, and old ciphertexts still open.
//! The ciphertext's associated data is the kind of value, so a sealed mobile cannot be
//! passed off as a sealed national code.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::DbError;

/// One generation of keys.
#[derive(Clone)]
pub struct PiiKey {
    pub id: String,
    pub hmac_key: [u8; 32],
    pub enc_key: [u8; 32],
}

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PiiKey({}, ***)", self.id)
    }
}

impl PiiKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate(id: impl Into<String>) -> Self {
        let mut hmac_key = [0u8; 32];
        let mut enc_key = [0u8; 32];
        rand::fill(&mut hmac_key[..]);
        rand::fill(&mut enc_key[..]);
        Self { id: id.into(), hmac_key, enc_key }
    }

    /// From base64 strings as kept in configuration.
    pub fn from_base64(id: impl Into<String>, hmac_b64: &str, enc_b64: &str) -> Result<Self, DbError> {
        let decode = |s: &str| -> Result<[u8; 32], DbError> {
            STANDARD
                .decode(s.trim())
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
                .ok_or_else(|| DbError::Config("a PII key must be 32 bytes in base64".into()))
        };
        Ok(Self { id: id.into(), hmac_key: decode(hmac_b64)?, enc_key: decode(enc_b64)? })
    }

    pub fn hmac_base64(&self) -> String {
        STANDARD.encode(self.hmac_key)
    }
    pub fn enc_base64(&self) -> String {
        STANDARD.encode(self.enc_key)
    }
}

/// The kinds of protected values (bound into each ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NationalId,
    Mobile,
    Serial,
    Family,
    Email,
    Secret,
    /// An application's personal facts (birth dates, gender, religion, names), sealed together.
    Personal,
    /// A home visit's address, postal code, landline and notes, sealed together.
    HomeVisit,
    /// A bank account's Sheba number (a refund's destination).
    Iban,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::NationalId => b"national_id",
            Kind::Mobile => b"mobile",
            Kind::Serial => b"serial",
            Kind::Family => b"family",
            Kind::Email => b"email",
            Kind::Secret => b"secret",
            Kind::Personal => b"personal",
            Kind::HomeVisit => b"home_visit",
            Kind::Iban => b"iban",
        }
    }
}

pub struct Pii {
    keys: Vec<(PiiKey, Aes256Gcm)>,
    active: usize,
}

impl std::fmt::Debug for Pii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pii(active={})", self.keys[self.active].0.id)
    }
}

impl Pii {
    pub fn new(keys: Vec<PiiKey>, active_id: &str) -> Result<Self, DbError> {
        let active = keys
            .iter()
            .position(|k| k.id == active_id)
            .ok_or_else(|| DbError::Config(format!("the active PII key {active_id} is not configured")))?;
        if keys.iter().any(|k| k.id.is_empty() || k.id.contains(':')) {
            return Err(DbError::Config("PII key ids must be non-empty and contain no ':'".into()));
        }
        let keys = keys
            .into_iter()
            .map(|k| {
                let cipher = Aes256Gcm::new_from_slice(&k.enc_key).expect("32-byte key");
                (k, cipher)
            })
            .collect();
        Ok(Self { keys, active })
    }

    /// A single fresh key; for tests and throw-away databases.
    pub fn ephemeral() -> Self {
        Self::new(vec![PiiKey::generate("k1")], "k1").expect("one key")
    }

    fn mac(key: &PiiKey, kind: Kind, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&key.hmac_key).expect("any key length");
        mac.update(kind.label());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        format!("{}:{}", key.id, URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The lookup value under the active key.
    pub fn lookup(&self, kind: Kind, value: &str) -> String {
        Self::mac(&self.keys[self.active].0, kind, value)
    }

    /// The lookup values under every configured key (for `IN (…)` queries while rotating).
    pub fn lookups(&self, kind: Kind, value: &str) -> Vec<String> {
        let mut all = vec![self.lookup(kind, value)];
        all.extend(
            self.keys
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.active)
                .map(|(_, (k, _))| Self::mac(k, kind, value)),
        );
        all
    }

    /// Encrypts under the active key with a random 96-bit nonce.
    pub fn seal(&self, kind: Kind, value: &str) -> String {
        let (key, cipher) = &self.keys[self.active];
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce[..]);
        let ciphertext = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: value.as_bytes(), aad: kind.label() })
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend(ciphertext);
        format!("{}:{}", key.id, STANDARD.encode(blob))
    }

    /// Decrypts a value sealed under any configured key.
    pub fn open(&self, kind: Kind, sealed: &str) -> Result<String, DbError> {
        let bad = || DbError::Internal("a protected value cannot be opened (wrong key or corrupted)".into());
        let (key_id, b64) = sealed.split_once(':').ok_or_else(bad)?;
        let (_, cipher) = self.keys.iter().find(|(k, _)| k.id == key_id).ok_or_else(bad)?;
        let blob = STANDARD.decode(b64).map_err(|_| bad())?;
        if blob.len() < 12 + 16 {
            return Err(bad());
        }
        let (nonce, ciphertext) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
        let plain =
            cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: kind.label() }).map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// Whether a sealed value or lookup was made with a key other than the active one.
    pub fn needs_rotation(&self, stored: &str) -> bool {
        stored.split_once(':').is_none_or(|(id, _)| id != self.keys[self.active].0.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_stable_keyed_and_kind_bound() {
        let pii = Pii::ephemeral();
        let a = pii.lookup(Kind::NationalId, "2580200606");
        assert_eq!(a, pii.lookup(Kind::NationalId, "2580200606"));
        assert_ne!(a, pii.lookup(Kind::Mobile, "2580200606"));
        assert_ne!(a, Pii::ephemeral().lookup(Kind::NationalId, "2580200606"), "keyed: another key, another value");
        assert!(!a.contains("2580200606"));
    }

    #[test]
    fn sealed_values_open_only_as_their_kind() {
        let pii = Pii::ephemeral();
        let sealed = pii.seal(Kind::Mobile, "09145128136");
        assert!(!sealed.contains("09145128136"));
        assert_ne!(sealed, pii.seal(Kind::Mobile, "09145128136"), "random nonce");
        assert_eq!(pii.open(Kind::Mobile, &sealed).unwrap(), "09145128136");
        assert!(pii.open(Kind::NationalId, &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(pii.open(Kind::Mobile, &tampered).is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_findable() {
        let old = PiiKey::generate("k1");
        let before = Pii::new(vec![old.clone()], "k1").unwrap();
        let sealed = before.seal(Kind::NationalId, "2580200606");
        let hash = before.lookup(Kind::NationalId, "2580200606");

        let after = Pii::new(vec![old, PiiKey::generate("k2")], "k2").unwrap();
        assert_eq!(after.open(Kind::NationalId, &sealed).unwrap(), "2580200606");
        assert!(after.lookups(Kind::NationalId, "2580200606").contains(&hash));
        assert!(after.lookup(Kind::NationalId, "2580200606").starts_with("k2:"));
        assert!(after.needs_rotation(&sealed));
        assert!(Pii::new(vec![PiiKey::generate("k1")], "k9").is_err());
    }
}
