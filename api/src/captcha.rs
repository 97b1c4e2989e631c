//! A self-hosted arithmetic captcha like the seed's «۴+۸=»: the sum is drawn as SVG
//! strokes with noise (no text for a bot to read), the challenge is stateless and
//! HMAC-signed so any instance can check it, it expires (2 minutes by default), and a
//! used challenge is remembered in the database so an answer works only once.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use domain::ports::RandomSource;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A new challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// Opaque id to send back with the answer.
    pub id: String,
    pub svg: String,
    pub expires_at: DateTime<Utc>,
    pub answer: u32,
}

/// Why an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Expired,
    Wrong,
}

fn mac(key: &[u8; 32], parts: &[&str]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"|");
    }
    m.finalize().into_bytes().to_vec()
}

fn random_below(random: &dyn RandomSource, n: u64) -> u64 {
    random.next_u64() % n
}

/// Makes a challenge: two digits 1–9 to add.
pub fn issue(key: &[u8; 32], random: &dyn RandomSource, now: DateTime<Utc>, ttl: Duration) -> Challenge {
    let a = 1 + random_below(random, 9) as u32;
    let b = 1 + random_below(random, 9) as u32;
    let mut nonce_bytes = [0u8; 16];
    random.fill_bytes(&mut nonce_bytes);
    let nonce = URL_SAFE_NO_PAD.encode(nonce_bytes);
    let expires_at = now + ttl;
    let exp = expires_at.timestamp().to_string();
    let answer = a + b;
    let tag = URL_SAFE_NO_PAD.encode(&mac(key, &["answer", &nonce, &answer.to_string()])[..12]);
    let sig = URL_SAFE_NO_PAD.encode(&mac(key, &["challenge", &nonce, &exp, &tag])[..16]);
    Challenge { id: format!("v1.{nonce}.{exp}.{tag}.{sig}"), svg: render(a, b, random), expires_at, answer }
}

/// Checks an answer against a challenge id; on success returns the nonce and expiry to
/// mark as used (the caller records it so a replay fails).
pub fn check(key: &[u8; 32], id: &str, answer: &str, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>), Refusal> {
    let parts: Vec<&str> = id.split('.').collect();
    let [version, nonce, exp, tag, sig] = parts.as_slice() else { return Err(Refusal::Malformed) };
    if *version != "v1" {
        return Err(Refusal::Malformed);
    }
    let expected_sig = mac(key, &["challenge", nonce, exp, tag]);
    let given_sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Refusal::Malformed)?;
    if !crate::secrets::constant_time_eq(&expected_sig[..16], &given_sig) {
        return Err(Refusal::Malformed);
    }
    let expires_at = exp.parse::<i64>().ok().and_then(|t| DateTime::from_timestamp(t, 0)).ok_or(Refusal::Malformed)?;
    if now >= expires_at {
        return Err(Refusal::Expired);
    }
    let normalized =
        domain::text::digits_only(answer).filter(|d| !d.is_empty() && d.len() <= 3).ok_or(Refusal::Wrong)?;
    let normalized = normalized.trim_start_matches('0');
    let expected_tag = mac(key, &["answer", nonce, normalized]);
    let given_tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refusal::Malformed)?;
    if !crate::secrets::constant_time_eq(&expected_tag[..12], &given_tag) {
        return Err(Refusal::Wrong);
    }
    Ok(((*nonce).to_owned(), expires_at))
}

/// Stroke paths of the Persian digits ۰–۹ and of `+` and `=`, in a 10 × 16 box.
fn glyph(c: char) -> (&'static str, bool) {
    match c {
        '0' => ("M5 7 L7 9 L5 11 L3 9 Z", true),
        '1' => ("M4 2 Q6 4 5 15", false),
        '2' => ("M5 15 L4 3 M4 6 Q7 7 8 2", false),
        '3' => ("M5 15 L4 3 M4 6 Q5.5 7 6.5 3 Q7 6 9 2", false),
        '4' => ("M6 15 L6 2 M6 4 Q2 4 4 7 Q1 9 6 9", false),
        '5' => ("M5 4 Q1 8 3 13 Q5 15 7 13 Q9 8 5 4 Z", false),
        '6' => ("M3 3 L7 3 Q3 5 5 8 L6 15", false),
        '7' => ("M2 3 L5 15 L8 3", false),
        '8' => ("M2 15 L5 3 L8 15", false),
        '9' => ("M6 15 L6 4 Q6 2 4 2 Q2 3 3 5 Q4 7 6 6", false),
        '+' => ("M2 9 L8 9 M5 6 L5 12", false),
        _ => ("M2 7 L8 7 M2 11 L8 11", false),
    }
}

fn render(a: u32, b: u32, random: &dyn RandomSource) -> String {
    let text: Vec<char> = format!("{a}+{b}=").chars().collect();
    let r = |n: u64| random_below(random, n) as i64;
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="160" height="60" viewBox="0 0 160 60" role="img" aria-label="captcha"><rect width="160" height="60" fill="#f4f1ea"/>"##,
    );
    for _ in 0..6 {
        let _ = write!(
            svg,
            r##"<path d="M{} {} Q{} {} {} {}" stroke="#{:02x}{:02x}{:02x}" stroke-width="1" fill="none"/>"##,
            r(160),
            r(60),
            r(160),
            r(60),
            r(160),
            r(60),
            100 + r(100),
            100 + r(100),
            100 + r(100)
        );
    }
    for (i, c) in text.iter().enumerate() {
        let (path, filled) = glyph(*c);
        let x = 18 + i as i64 * 30 + r(8);
        let y = 10 + r(12);
        let angle = r(31) - 15;
        let scale = 1.9 + r(4) as f64 * 0.1;
        let colour = format!("#{:02x}{:02x}{:02x}", 20 + r(60), 20 + r(60), 40 + r(80));
        let fill = if filled { colour.as_str() } else { "none" };
        let _ = write!(
            svg,
            r#"<path transform="translate({x} {y}) rotate({angle}) scale({scale:.2})" d="{path}" stroke="{colour}" stroke-width="1.4" stroke-linecap="round" fill="{fill}"/>"#
        );
    }
    for _ in 0..40 {
        let _ = write!(svg, r##"<circle cx="{}" cy="{}" r="1" fill="#8a8478"/>"##, r(160), r(60));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    const KEY: [u8; 32] = [3; 32];

    #[test]
    fn the_right_answer_passes_in_any_digit_script() {
        let now = Utc::now();
        let c = issue(&KEY, &OsRandom, now, Duration::minutes(2));
        assert!(check(&KEY, &c.id, &c.answer.to_string(), now).is_ok());
        let persian = domain::text::persian_digits(&c.answer.to_string());
        assert!(check(&KEY, &c.id, &persian, now).is_ok());
        assert_eq!(check(&KEY, &c.id, &(c.answer + 1).to_string(), now), Err(Refusal::Wrong));
    }

    #[test]
    fn expired_forged_and_foreign_challenges_fail() {
        let now = Utc::now();
        let c = issue(&KEY, &OsRandom, now, Duration::minutes(2));
        assert_eq!(check(&KEY, &c.id, &c.answer.to_string(), now + Duration::minutes(3)), Err(Refusal::Expired));
        assert_eq!(check(&[4; 32], &c.id, &c.answer.to_string(), now), Err(Refusal::Malformed));
        let mut forged = c.id.clone();
        forged.push('x');
        assert!(check(&KEY, &forged, &c.answer.to_string(), now).is_err());
        assert_eq!(check(&KEY, "garbage", "1", now), Err(Refusal::Malformed));
    }

    #[test]
    fn the_image_is_strokes_not_text() {
        let c = issue(&KEY, &OsRandom, Utc::now(), Duration::minutes(2));
        assert!(c.svg.starts_with("<svg") && c.svg.ends_with("</svg>"));
        assert!(!c.svg.contains("<text"), "no readable text in the image");
        assert!(!c.id.contains(&format!(".{}.", c.answer)), "the id does not carry the answer");
    }
}
