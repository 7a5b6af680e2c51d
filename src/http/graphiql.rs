//! The GraphiQL page a browser gets on `GET /graphql`: our own small page (not
//! async-graphql's, which loads whatever version unpkg has as `graphiql@4` and
//! `react@18`), loading exact versions with integrity hashes, and with the WebSocket
//! endpoint configured so subscriptions run from it.
//!
//! Its Content-Security-Policy lets exactly those three packages' paths on unpkg
//! load, and of inline code only the page's own script and style, by hash.

use std::sync::LazyLock;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The page; the versions in it are the ones `tests/clients/package.json` pins.
pub const PAGE: &str = include_str!("graphiql.html");

/// Where the page's scripts and styles come from: one path per pinned package.
const SOURCES: &str =
    "https://unpkg.com/react@18.3.1/ https://unpkg.com/react-dom@18.3.1/ https://unpkg.com/graphiql@4.1.2/";

/// The page's policy, computed once: hashes of its inline blocks, so an edit to the
/// page cannot leave the policy behind.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let scripts = hashes(PAGE, "script");
    let styles = hashes(PAGE, "style");
    // GraphiQL sets element styles from script (allowed without 'unsafe-inline') and
    // fetches over HTTP and WebSocket from this origin only ('self' covers ws: and
    // wss: of the same host in CSP 3).
    format!(
        "default-src 'none'; script-src {scripts} {SOURCES}; style-src {styles} {SOURCES}; \
         img-src 'self' data:; font-src data:; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// `'sha256-...'` of the content of every inline `<tag>...</tag>` block of `page` (a
/// block with attributes, such as `<script src>`, is not inline).
fn hashes(page: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        found.push(format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        rest = &body[end + close.len()..];
    }
    found.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_holds_one_hash_per_inline_block() {
        assert_eq!(hashes(PAGE, "script").matches("'sha256-").count(), 1);
        assert_eq!(hashes(PAGE, "style").matches("'sha256-").count(), 1);
        assert!(!CSP.contains("unsafe-inline"), "{}", *CSP);
    }

    #[test]
    fn a_hash_is_of_the_block_s_content() {
        // echo -n 'x' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            hashes("<p><script>x</script><script src=a></script>", "script"),
            "'sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE='"
        );
    }

    #[test]
    fn every_package_the_page_loads_is_allowed_at_its_pinned_path() {
        let loaded: Vec<&str> =
            PAGE.split(['"', '\'']).filter(|part| part.starts_with("https://unpkg.com/")).collect();
        assert_eq!(loaded.len(), 4, "{loaded:?}");
        for url in loaded {
            assert!(SOURCES.split(' ').any(|source| url.starts_with(source)), "{url} is not in {SOURCES}");
        }
    }
}
