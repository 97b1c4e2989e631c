//! A self-hosted arithmetic captcha like the original guide's «۴+۸=»: the sum is drawn into a
//! raster image — every challenge with its own glyph shapes (each control point moved),
//! size, slant, position, a wave through the whole picture, crossing strokes and noise —
//! so its text cannot be recovered from the markup by string or path comparison (issue
//! 24: fixed per-digit path strings were solved 40 of 40 by string matching). The
//! challenge is stateless and HMAC-signed so any instance can check it, expires (2
//! minutes by default), and is spent by its first answer, right or wrong: the nonce is
//! remembered in the database, so trying answer after answer on one id fails.

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
    /// An SVG holding the drawing as a PNG (`<image href="data:image/png;base64,…">`).
    pub svg: String,
    pub expires_at: DateTime<Utc>,
    pub answer: u32,
}

/// Why an answer was refused before the challenge could be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of ours (bad format or signature).
    Malformed,
    Expired,
}

/// A genuine, live challenge and whether the answer was right. Either way the caller
/// spends the nonce before telling the answer's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
    pub right: bool,
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

/// Checks an answer against a challenge id. A genuine, live challenge gives its nonce
/// and expiry to spend (the caller records it, so neither a replay nor a second guess
/// works) and whether the answer was right.
pub fn check(key: &[u8; 32], id: &str, answer: &str, now: DateTime<Utc>) -> Result<Checked, Refusal> {
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
    let given_tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refusal::Malformed)?;
    let right = domain::text::digits_only(answer).filter(|d| !d.is_empty() && d.len() <= 3).is_some_and(|d| {
        let expected_tag = mac(key, &["answer", nonce, d.trim_start_matches('0')]);
        crate::secrets::constant_time_eq(&expected_tag[..12], &given_tag)
    });
    Ok(Checked { nonce: (*nonce).to_owned(), expires_at, right })
}

/// Stroke outlines of the Persian digits ۰–۹ and of `+` and `=`, in a 10 × 16 box: each
/// a list of strokes, each stroke a start point and then line (`L`) or quadratic (`Q`)
/// segments. Only the geometry's skeleton: every challenge bends it anew.
fn glyph(c: char) -> (&'static [&'static [Seg]], bool) {
    use Seg::{L, M, Q};
    match c {
        '0' => (&[&[M(5., 7.), L(7., 9.), L(5., 11.), L(3., 9.), L(5., 7.)]], true),
        '1' => (&[&[M(4., 2.), Q(6., 4., 5., 15.)]], false),
        '2' => (&[&[M(5., 15.), L(4., 3.)], &[M(4., 6.), Q(7., 7., 8., 2.)]], false),
        '3' => (&[&[M(5., 15.), L(4., 3.)], &[M(4., 6.), Q(5.5, 7., 6.5, 3.), Q(7., 6., 9., 2.)]], false),
        '4' => (&[&[M(6., 15.), L(6., 2.)], &[M(6., 4.), Q(2., 4., 4., 7.), Q(1., 9., 6., 9.)]], false),
        '5' => (&[&[M(5., 4.), Q(1., 8., 3., 13.), Q(5., 15., 7., 13.), Q(9., 8., 5., 4.)]], false),
        '6' => (&[&[M(3., 3.), L(7., 3.), Q(3., 5., 5., 8.), L(6., 15.)]], false),
        '7' => (&[&[M(2., 3.), L(5., 15.), L(8., 3.)]], false),
        '8' => (&[&[M(2., 15.), L(5., 3.), L(8., 15.)]], false),
        '9' => (&[&[M(6., 15.), L(6., 4.), Q(6., 2., 4., 2.), Q(2., 3., 3., 5.), Q(4., 7., 6., 6.)]], false),
        '+' => (&[&[M(2., 9.), L(8., 9.)], &[M(5., 6.), L(5., 12.)]], false),
        _ => (&[&[M(2., 7.), L(8., 7.)], &[M(2., 11.), L(8., 11.)]], false),
    }
}

/// A segment of a glyph stroke.
#[derive(Debug, Clone, Copy)]
enum Seg {
    M(f32, f32),
    L(f32, f32),
    /// Control point, end point.
    Q(f32, f32, f32, f32),
}

const WIDTH: usize = 160;
const HEIGHT: usize = 60;

/// A uniform number in [0, 1).
fn unit(random: &dyn RandomSource) -> f32 {
    (random.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

/// A uniform number in [lo, hi).
fn between(random: &dyn RandomSource, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(random)
}

/// A stroke ready to draw: points in pixels, width, darkness.
struct Stroke {
    points: Vec<(f32, f32)>,
    width: f32,
    ink: f32,
    filled: bool,
}

fn render(a: u32, b: u32, random: &dyn RandomSource) -> String {
    let text: Vec<char> = format!("{a}+{b}=").chars().collect();
    // One wave bends the whole picture, glyphs and crossing strokes alike.
    let (ax, ay) = (between(random, 1.0, 3.0), between(random, 1.5, 4.0));
    let (lx, ly) = (between(random, 9.0, 16.0), between(random, 14.0, 30.0));
    let (px, py) = (between(random, 0.0, 6.3), between(random, 0.0, 6.3));
    let wave = move |(x, y): (f32, f32)| (x + ax * (y / lx + px).sin(), y + ay * (x / ly + py).sin());

    let mut strokes = Vec::new();
    for (i, c) in text.iter().enumerate() {
        let (shape, filled) = glyph(*c);
        let scale = between(random, 1.8, 2.4);
        let (sx, sy) = (scale * between(random, 0.85, 1.15), scale * between(random, 0.85, 1.15));
        let angle = between(random, -0.3, 0.3);
        let shear = between(random, -0.25, 0.25);
        let (ox, oy) = (14.0 + i as f32 * 29.0 + between(random, -3.0, 5.0), between(random, 6.0, 20.0));
        let width = between(random, 1.8, 2.8);
        let ink = between(random, 0.75, 0.95);
        let jitter = |random: &dyn RandomSource, (x, y): (f32, f32)| {
            (x + between(random, -0.6, 0.6), y + between(random, -0.6, 0.6))
        };
        let place = |(x, y): (f32, f32)| {
            let (x, y) = ((x - 5.0) * sx + (y - 8.0) * shear * sx, (y - 8.0) * sy);
            let (sin, cos) = angle.sin_cos();
            wave((ox + 10.0 + x * cos - y * sin, oy + 16.0 + x * sin + y * cos))
        };
        for segs in shape {
            let mut points = Vec::new();
            let mut at = (0.0, 0.0);
            for seg in *segs {
                match *seg {
                    Seg::M(x, y) => {
                        at = jitter(random, (x, y));
                        points.push(place(at));
                    }
                    Seg::L(x, y) => {
                        let to = jitter(random, (x, y));
                        for k in 1..=4 {
                            let t = k as f32 / 4.0;
                            points.push(place((at.0 + (to.0 - at.0) * t, at.1 + (to.1 - at.1) * t)));
                        }
                        at = to;
                    }
                    Seg::Q(cx, cy, x, y) => {
                        let (ctrl, to) = (jitter(random, (cx, cy)), jitter(random, (x, y)));
                        for k in 1..=8 {
                            let t = k as f32 / 8.0;
                            let u = 1.0 - t;
                            points.push(place((
                                u * u * at.0 + 2.0 * u * t * ctrl.0 + t * t * to.0,
                                u * u * at.1 + 2.0 * u * t * ctrl.1 + t * t * to.1,
                            )));
                        }
                        at = to;
                    }
                }
            }
            strokes.push(Stroke { points, width, ink, filled });
        }
    }
    // Crossing strokes through the text.
    for _ in 0..3 {
        let (x0, y0) = (between(random, 0.0, 20.0), between(random, 10.0, 50.0));
        let (cx, cy) = (between(random, 50.0, 110.0), between(random, 0.0, 60.0));
        let (x1, y1) = (between(random, 140.0, 160.0), between(random, 10.0, 50.0));
        let points = (0..=24)
            .map(|k| {
                let t = k as f32 / 24.0;
                let u = 1.0 - t;
                wave((u * u * x0 + 2.0 * u * t * cx + t * t * x1, u * u * y0 + 2.0 * u * t * cy + t * t * y1))
            })
            .collect();
        strokes.push(Stroke {
            points,
            width: between(random, 0.8, 1.4),
            ink: between(random, 0.4, 0.7),
            filled: false,
        });
    }

    let mut ink = vec![0f32; WIDTH * HEIGHT];
    for stroke in &strokes {
        draw(&mut ink, stroke);
    }
    let mut pixels = Vec::with_capacity(WIDTH * HEIGHT);
    for v in &ink {
        let paper = between(random, 0.88, 1.0);
        pixels.push((255.0 * (paper - v.min(1.0) * 0.85).clamp(0.0, 1.0)) as u8);
    }
    for _ in 0..120 {
        let i = (random.next_u64() % (WIDTH * HEIGHT) as u64) as usize;
        pixels[i] = (random.next_u64() % 160) as u8;
    }
    let png = base64::engine::general_purpose::STANDARD.encode(png_gray(WIDTH, HEIGHT, &pixels));
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="captcha"><image width="{WIDTH}" height="{HEIGHT}" href="data:image/png;base64,{png}"/></svg>"#
    );
    svg
}

/// Draws a stroke (antialiased by distance) or a filled outline into the ink buffer.
fn draw(ink: &mut [f32], stroke: &Stroke) {
    let half = stroke.width / 2.0;
    for pair in stroke.points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let lo_x = (x0.min(x1) - half - 1.0).floor().max(0.0) as usize;
        let hi_x = ((x0.max(x1) + half + 1.0).ceil().max(0.0) as usize).min(WIDTH - 1);
        let lo_y = (y0.min(y1) - half - 1.0).floor().max(0.0) as usize;
        let hi_y = ((y0.max(y1) + half + 1.0).ceil().max(0.0) as usize).min(HEIGHT - 1);
        for y in lo_y..=hi_y {
            for x in lo_x..=hi_x {
                let d = distance((x as f32 + 0.5, y as f32 + 0.5), (x0, y0), (x1, y1));
                let cover = (half + 0.5 - d).clamp(0.0, 1.0) * stroke.ink;
                let cell = &mut ink[y * WIDTH + x];
                *cell = cell.max(cover);
            }
        }
    }
    if stroke.filled {
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                if inside((x as f32 + 0.5, y as f32 + 0.5), &stroke.points) {
                    let cell = &mut ink[y * WIDTH + x];
                    *cell = cell.max(stroke.ink);
                }
            }
        }
    }
}

fn distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt()
}

/// Even-odd point-in-polygon.
fn inside(p: (f32, f32), polygon: &[(f32, f32)]) -> bool {
    let mut result = false;
    let mut j = polygon.len().saturating_sub(1);
    for i in 0..polygon.len() {
        let ((xi, yi), (xj, yj)) = (polygon[i], polygon[j]);
        if (yi > p.1) != (yj > p.1) && p.0 < (xj - xi) * (p.1 - yi) / (yj - yi) + xi {
            result = !result;
        }
        j = i;
    }
    result
}

/// An 8-bit greyscale PNG (the container is simple; flate2 does the compression).
fn png_gray(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&(width as u32).to_be_bytes());
    header.extend_from_slice(&(height as u32).to_be_bytes());
    // 8 bits, greyscale, deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    let mut raw = Vec::with_capacity((width + 1) * height);
    for row in pixels.chunks(width) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    // The fastest level: a captcha is drawn for every sign-in and lives for minutes; at the
    // default level its deflate was 2 % of the server's CPU in a journey profile.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = z.write_all(&raw);
    chunk(&mut out, b"IDAT", &z.finish().unwrap_or_default());
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    const KEY: [u8; 32] = [3; 32];

    #[test]
    fn the_right_answer_passes_in_any_digit_script_and_a_wrong_one_is_told_apart() {
        let now = Utc::now();
        let c = issue(&KEY, &OsRandom, now, Duration::minutes(2));
        let right = check(&KEY, &c.id, &c.answer.to_string(), now).unwrap();
        assert!(right.right);
        let persian = domain::text::persian_digits(&c.answer.to_string());
        assert!(check(&KEY, &c.id, &persian, now).unwrap().right);
        let wrong = check(&KEY, &c.id, &(c.answer + 1).to_string(), now).unwrap();
        assert!(!wrong.right);
        assert_eq!(wrong.nonce, right.nonce, "a wrong answer names the same challenge, so it can be spent");
        assert!(!check(&KEY, &c.id, "abc", now).unwrap().right);
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

    /// The attack of issue 24: the digits' fixed path strings, looked for in the markup.
    /// The old drawing (one fixed `d` per digit) was solved 40 of 40 this way.
    fn solve_by_string_matching(svg: &str) -> Option<u32> {
        let known: [(char, &str); 12] = [
            ('0', "M5 7 L7 9 L5 11 L3 9 Z"),
            ('1', "M4 2 Q6 4 5 15"),
            ('2', "M5 15 L4 3 M4 6 Q7 7 8 2"),
            ('3', "M5 15 L4 3 M4 6 Q5.5 7 6.5 3 Q7 6 9 2"),
            ('4', "M6 15 L6 2 M6 4 Q2 4 4 7 Q1 9 6 9"),
            ('5', "M5 4 Q1 8 3 13 Q5 15 7 13 Q9 8 5 4 Z"),
            ('6', "M3 3 L7 3 Q3 5 5 8 L6 15"),
            ('7', "M2 3 L5 15 L8 3"),
            ('8', "M2 15 L5 3 L8 15"),
            ('9', "M6 15 L6 4 Q6 2 4 2 Q2 3 3 5 Q4 7 6 6"),
            ('+', "M2 9 L8 9 M5 6 L5 12"),
            ('=', "M2 7 L8 7 M2 11 L8 11"),
        ];
        // Every path's `d`, in order; any attribute that repeats between challenges
        // drawing the same digit would do as well.
        let mut text = String::new();
        for part in svg.split("d=\"").skip(1) {
            let d = part.split('"').next()?;
            text.extend(known.iter().find(|(_, k)| *k == d).map(|(c, _)| *c));
        }
        let (a, rest) = text.split_once('+')?;
        Some(a.parse::<u32>().ok()? + rest.trim_end_matches('=').parse::<u32>().ok()?)
    }

    #[test]
    fn string_matching_solves_none_of_forty_challenges() {
        let now = Utc::now();
        let solved = (0..40)
            .filter(|_| {
                let c = issue(&KEY, &OsRandom, now, Duration::minutes(2));
                solve_by_string_matching(&c.svg) == Some(c.answer)
            })
            .count();
        assert_eq!(solved, 0);
    }

    #[test]
    fn the_same_sum_is_never_drawn_the_same_way_twice() {
        let now = Utc::now();
        let mut seen: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
        let mut compared = 0;
        for _ in 0..200 {
            let c = issue(&KEY, &OsRandom, now, Duration::minutes(2));
            assert!(c.svg.starts_with("<svg") && c.svg.ends_with("</svg>"));
            assert!(!c.svg.contains("<text") && !c.svg.contains("<path"), "no text or vector strokes to read");
            assert!(!c.id.contains(&format!(".{}.", c.answer)), "the id does not carry the answer");
            if let Some(before) = seen.insert(c.answer, c.svg.clone()) {
                assert_ne!(before, c.svg);
                // Not even the image's bytes repeat in long runs: no drawing part is reused.
                let image = |svg: &str| svg.split("base64,").nth(1).unwrap_or_default().to_owned();
                let (x, y) = (image(&before), image(&c.svg));
                let common = x.as_bytes().iter().zip(y.as_bytes()).filter(|(p, q)| p == q).count();
                assert!(common * 4 < x.len().min(y.len()), "{common} of {} bytes in common", x.len());
                compared += 1;
            }
        }
        assert!(compared > 10);
    }

    #[test]
    fn the_image_is_a_valid_png() {
        let png = png_gray(3, 2, &[0, 128, 255, 255, 128, 0]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        // The IHDR checksum, as any decoder checks it.
        let crc = crc32fast::hash(&png[12..29]);
        assert_eq!(&png[29..33], &crc.to_be_bytes());
    }
}
