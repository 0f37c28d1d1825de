//! ferricorn-auth's metrics, registered with the server's metrics API so
//! that the master sums them over the workers with its own
//! (`--metrics-bind`): logins by result, tokens issued or checked by kind,
//! refusals by reason, password hashing time, store errors.
//!
//! Every series is registered at once, at zero, so that a dashboard sees
//! them before the first event; the label values are fixed sets.

use std::sync::OnceLock;
use std::time::Duration;

use ferricorn_server::metrics::{counter, histogram, Counter, Histogram};

use crate::tokens::TokenError;

/// Password hashing and checking times, seconds: argon2id at OWASP's
/// parameters takes tens of milliseconds, Django's PBKDF2 hundreds.
const HASH_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How a login ended.
#[derive(Clone, Copy, Debug)]
pub enum Login {
    /// Tokens were issued.
    Success,
    /// No such user, or a wrong password.
    BadCredentials,
    /// The right password of an inactive user.
    Inactive,
}

/// What a token endpoint did (`kind`).
#[derive(Clone, Copy, Debug)]
pub enum Tokens {
    /// A pair issued by a login.
    Obtain,
    /// A refresh answered.
    Refresh,
    /// A verify answered.
    Verify,
    /// A token blacklisted.
    Blacklist,
    /// Every refresh token of a user blacklisted (log out everywhere).
    BlacklistAll,
    /// A token family revoked: a rotated refresh token was presented again.
    FamilyRevoked,
}

/// The handles.
pub struct AuthMetrics {
    logins: [Counter; 3],
    tokens: [Counter; 6],
    /// expired, invalid, blacklisted, wrong_type, missing_claim.
    rejections: [Counter; 5],
    hash_seconds: Histogram,
    store_errors: Counter,
}

/// This process's handles, registered on first use.
pub fn get() -> &'static AuthMetrics {
    static METRICS: OnceLock<AuthMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let login = |r| {
            counter(
                "ferricorn_auth_logins_total",
                "Logins (POST /api/token/) by result.",
                &[("result", r)],
            )
        };
        let token = |k| {
            counter(
                "ferricorn_auth_tokens_total",
                "Token operations answered successfully, by kind.",
                &[("kind", k)],
            )
        };
        let reject = |r| {
            counter(
                "ferricorn_auth_token_rejections_total",
                "Tokens refused (in a body or a Bearer header), by reason.",
                &[("reason", r)],
            )
        };
        AuthMetrics {
            logins: [
                login("success"),
                login("bad_credentials"),
                login("inactive"),
            ],
            tokens: [
                token("obtain"),
                token("refresh"),
                token("verify"),
                token("blacklist"),
                token("blacklist_all"),
                token("family_revoked"),
            ],
            rejections: [
                reject("expired"),
                reject("invalid"),
                reject("blacklisted"),
                reject("wrong_type"),
                reject("missing_claim"),
            ],
            hash_seconds: histogram(
                "ferricorn_auth_password_hash_seconds",
                "Time to hash or check one password.",
                HASH_BUCKETS,
                &[],
            ),
            store_errors: counter(
                "ferricorn_auth_store_errors_total",
                "Requests answered 500 or 503 because the store failed.",
                &[],
            ),
        }
    })
}

impl AuthMetrics {
    /// A login ended.
    pub fn login(&self, how: Login) {
        self.logins[how as usize].inc();
    }

    /// A token operation succeeded.
    pub fn tokens(&self, kind: Tokens) {
        self.tokens[kind as usize].inc();
    }

    /// A token was refused.
    pub fn rejected(&self, why: &TokenError) {
        let i = match why {
            TokenError::Expired | TokenError::ExpClaimExpired => 0,
            TokenError::Invalid => 1,
            TokenError::Blacklisted => 2,
            TokenError::WrongType => 3,
            TokenError::NoType | TokenError::NoExp | TokenError::NoId => 4,
        };
        self.rejections[i].inc();
    }

    /// A password was hashed or checked in `took`.
    pub fn hashed(&self, took: Duration) {
        self.hash_seconds.observe_duration(took);
    }

    /// The store failed a request.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }
}
