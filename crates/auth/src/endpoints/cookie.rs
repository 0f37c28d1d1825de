//! The refresh token in an `HttpOnly` cookie (`refresh_cookie = true`), and
//! the cross-site request forgery check that a cookie needs.
//!
//! A browser sends a cookie with every request to its path, whoever started
//! the request, so a refresh or a blacklist that reads the token from the
//! cookie must prove the request came from the application's own page:
//! either an `Origin` on `csrf_trusted_origins`, or the double-submit token
//! — the value of the non-`HttpOnly` cookie [`CSRF_COOKIE`], which only a
//! page of the site can read, sent back in the [`CSRF_HEADER`] header.
//! A token given in the body needs neither: another site's page cannot
//! read it.
//!
//! The attributes are written as Django's `set_cookie` writes them
//! (Python's `SimpleCookie`: `Domain`, `expires`, `HttpOnly`, `Max-Age`,
//! `Path`, `SameSite`, `Secure`, in that order).

use std::time::{Duration, SystemTime};

use http::header::{HeaderValue, COOKIE, HOST, ORIGIN};
use http::HeaderMap;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::settings::{parse_origin, Settings};

/// The double-submit cookie: readable by the page's scripts, which echo it
/// in [`CSRF_HEADER`].
pub const CSRF_COOKIE: &str = "csrf_refresh_token";
/// The header that carries the double-submit token back.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `Set-Cookie` values that hand a new refresh token to the browser:
/// the token (`HttpOnly`) and a fresh double-submit token (readable by the
/// page, on `/` so that every page of the site can read it).
pub fn set(settings: &Settings, refresh: &str) -> Vec<HeaderValue> {
    let max_age = settings.refresh_token_lifetime;
    let mut csrf = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut csrf);
    vec![
        cookie(
            settings,
            &settings.refresh_cookie_name,
            refresh,
            max_age,
            &settings.refresh_cookie_path,
            true,
        ),
        cookie(
            settings,
            CSRF_COOKIE,
            &hex::encode(csrf),
            max_age,
            "/",
            false,
        ),
    ]
}

/// The `Set-Cookie` values that remove both cookies (Django's
/// `delete_cookie`: empty, expired in 1970, `Max-Age=0`).
pub fn clear(settings: &Settings) -> Vec<HeaderValue> {
    vec![
        cookie(
            settings,
            &settings.refresh_cookie_name,
            "\"\"",
            0,
            &settings.refresh_cookie_path,
            true,
        ),
        cookie(settings, CSRF_COOKIE, "\"\"", 0, "/", false),
    ]
}

fn cookie(
    settings: &Settings,
    name: &str,
    value: &str,
    max_age: i64,
    path: &str,
    http_only: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}");
    if let Some(domain) = &settings.refresh_cookie_domain {
        c.push_str(&format!("; Domain={domain}"));
    }
    let expires = if max_age > 0 {
        SystemTime::now() + Duration::from_secs(max_age as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };
    c.push_str(&format!("; expires={}", httpdate::fmt_http_date(expires)));
    if http_only {
        c.push_str("; HttpOnly");
    }
    c.push_str(&format!(
        "; Max-Age={max_age}; Path={path}; SameSite={}",
        settings.refresh_cookie_samesite.as_str()
    ));
    if settings.refresh_cookie_secure {
        c.push_str("; Secure");
    }
    // Every part was checked at start (names, paths, domains) or is ours.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of the cookie `name` in the request's `Cookie` fields (the
/// last one when repeated; an HTTP/2 client may split them over fields).
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .next_back()
}

/// The refresh token from the cookie, when the request carries one; the
/// cross-site check runs first, and refuses with a 403 as DRF's
/// `SessionAuthentication` does.
pub fn refresh_token(
    settings: &Settings,
    headers: &HeaderMap,
) -> Result<Option<String>, AuthError> {
    let Some(token) = read(headers, &settings.refresh_cookie_name) else {
        return Ok(None);
    };
    check_csrf(settings, headers)?;
    Ok(Some(token.to_string()))
}

/// An `Origin` on the allow-list passes; another site's `Origin` is refused;
/// otherwise (no `Origin`, or the request's own) the double-submit token
/// must match its cookie, compared in constant time.
fn check_csrf(settings: &Settings, headers: &HeaderMap) -> Result<(), AuthError> {
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let normalized = parse_origin(origin);
        if normalized.as_ref().is_some_and(|o| {
            settings
                .csrf_trusted_origins
                .iter()
                .any(|t| t.eq_ignore_ascii_case(o))
        }) {
            return Ok(());
        }
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        let same = match (
            normalized.as_deref().and_then(|o| o.split_once("://")),
            host,
        ) {
            (Some((_, authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
            _ => false,
        };
        if !same {
            return Err(AuthError::Csrf(format!(
                "Origin checking failed - {origin} does not match any trusted origins."
            )));
        }
    }
    let Some(sent) = headers.get(CSRF_HEADER) else {
        return Err(AuthError::Csrf("CSRF token missing.".into()));
    };
    let matches = read(headers, CSRF_COOKIE).is_some_and(|cookie| {
        !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(sent.as_bytes()))
    });
    if !matches {
        return Err(AuthError::Csrf("CSRF token incorrect.".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SameSite;

    fn settings() -> Settings {
        Settings {
            refresh_cookie: true,
            refresh_cookie_domain: Some("example.com".into()),
            refresh_cookie_samesite: SameSite::Strict,
            csrf_trusted_origins: vec!["https://app.example.com".into()],
            ..Settings::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn attributes_as_django_writes_them() {
        let s = settings();
        let set = set(&s, "a.b.c");
        let c = set[0].to_str().unwrap();
        assert!(
            c.starts_with("refresh_token=a.b.c; Domain=example.com; expires="),
            "{c}"
        );
        assert!(
            c.ends_with("; HttpOnly; Max-Age=86400; Path=/api/token/; SameSite=Strict; Secure"),
            "{c}"
        );
        let csrf = set[1].to_str().unwrap();
        assert!(
            csrf.starts_with("csrf_refresh_token=") && !csrf.contains("HttpOnly"),
            "{csrf}"
        );
        assert!(csrf.contains("; Path=/;"), "{csrf}");
        let gone = clear(&s)[0].to_str().unwrap().to_string();
        assert!(gone.contains("refresh_token=\"\"; Domain=example.com; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Max-Age=0;"), "{gone}");
    }

    #[test]
    fn csrf_needs_the_double_submit_token_or_a_trusted_origin() {
        let s = settings();
        let cookie = "refresh_token=a.b.c; csrf_refresh_token=abc";
        let token = |h: &HeaderMap| refresh_token(&s, h).map(|t| t.unwrap_or_default());
        assert_eq!(
            token(&headers(&[("cookie", cookie), ("x-csrf-token", "abc")])).unwrap(),
            "a.b.c"
        );
        let e = token(&headers(&[("cookie", cookie)])).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = token(&headers(&[("cookie", cookie), ("x-csrf-token", "abd")])).unwrap_err();
        assert!(e.to_string().contains("incorrect"), "{e}");
        assert!(token(&headers(&[
            ("cookie", cookie),
            ("origin", "https://app.example.com")
        ]))
        .is_ok());
        let e = token(&headers(&[
            ("cookie", cookie),
            ("origin", "https://evil.example"),
            ("x-csrf-token", "abc"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("Origin checking failed"), "{e}");
        // The page's own origin still needs the token.
        let own = [
            ("cookie", cookie),
            ("origin", "https://api.example.com"),
            ("host", "api.example.com"),
        ];
        assert!(token(&headers(&own)).is_err());
        let mut with = own.to_vec();
        with.push(("x-csrf-token", "abc"));
        assert!(token(&headers(&with)).is_ok());
        // No cookie, no token, no check.
        assert_eq!(refresh_token(&s, &headers(&[])).unwrap(), None);
    }
}
