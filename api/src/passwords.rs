//! Password hashing with Argon2id (never stored or logged in clear).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

fn argon2() -> Argon2<'static> {
    // OWASP's recommended minimum for Argon2id: 19 MiB, 2 iterations, 1 lane.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid params"))
}

/// A PHC-format Argon2id hash with a random salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    argon2().hash_password_with_salt(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

/// Whether a password matches a stored hash (constant-time comparison inside argon2).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to compare against when the user does not exist, so timing does not tell.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash("not-a-real-password"));
    let _ = verify(password, &DUMMY);
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_are_salted() {
        let a = super::hash("correct horse");
        assert!(a.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &a));
        assert!(!super::verify("wrong horse", &a));
        assert_ne!(a, super::hash("correct horse"));
        assert!(!super::verify("x", "not a hash"));
    }
}
