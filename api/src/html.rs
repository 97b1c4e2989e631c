//! Small server-rendered pages (the sandbox bank, the payment result, the printable
//! receipt) with a strict Content-Security-Policy: nothing loads from elsewhere, and the
//! only script allowed is one with this response's nonce.

use actix_web::HttpResponse;
use actix_web::http::header;

pub use receipt::html::escape;

/// A fresh nonce for one page's inline script.
pub fn nonce() -> String {
    use base64::Engine;
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An HTML response with the security headers; `form_action` lists where forms may post.
pub fn page(body: String, nonce: &str, form_action: &str) -> HttpResponse {
    let csp = format!(
        "default-src 'none'; style-src 'self' 'unsafe-inline'; font-src 'self'; img-src 'self' data:; script-src 'nonce-{nonce}'; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'"
    );
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
