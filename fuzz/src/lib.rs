//! What the fuzz targets share: the JWT service in process, on a store in
//! memory, and the oracle its answers must satisfy.
//!
//! The store lives in memory rather than in SQLite so that an iteration
//! costs microseconds and touches no disk; the code under test is the
//! service's, not the database's.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use ferricorn_app_interface::{Application, Request};
use ferricorn_auth::store::{OutstandingToken, Rotation, Store, StoreError, TokenState, User};
use ferricorn_auth::{AuthApp, Settings};

/// The HMAC key every fuzzed service signs with; targets sign claims with
/// it to get past the signature check.
pub const KEY: &str = "fuzzing-key-0123456789abcdef0123456789";

/// A store in memory: user 1 (`alice`, active) and user 2 (`bob`,
/// inactive), and a blacklist.
#[derive(Default)]
pub struct MemoryStore {
    blacklist: Mutex<HashSet<String>>,
}

impl MemoryStore {
    fn user(id: i64) -> Option<User> {
        let (name, active) = match id {
            1 => ("alice", true),
            2 => ("bob", false),
            _ => return None,
        };
        Some(User {
            id,
            username: name.into(),
            // No login is fuzzed: an unusable hash.
            password: "!".into(),
            is_active: active,
            last_login: None,
            tokens_valid_after: None,
        })
    }
}

impl Store for MemoryStore {
    fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok([1, 2]
            .into_iter()
            .filter_map(MemoryStore::user)
            .find(|u| u.username == username))
    }
    fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(MemoryStore::user(id))
    }
    fn create_user(&self, username: &str, _: &str, _: bool) -> Result<i64, StoreError> {
        Err(StoreError::UsernameTaken(username.into()))
    }
    fn set_password(&self, _: i64, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn set_active(&self, username: &str, _: bool) -> Result<(), StoreError> {
        Err(StoreError::NoSuchUser(username.into()))
    }
    fn update_last_login(&self, _: i64, _: i64) -> Result<(), StoreError> {
        Ok(())
    }
    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok([1, 2].into_iter().filter_map(MemoryStore::user).collect())
    }
    fn add_outstanding(&self, _: &OutstandingToken) -> Result<(), StoreError> {
        Ok(())
    }
    fn is_blacklisted(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.blacklist.lock().unwrap().contains(jti))
    }
    fn blacklist(&self, token: &OutstandingToken) -> Result<bool, StoreError> {
        Ok(self.blacklist.lock().unwrap().insert(token.jti.clone()))
    }
    /// No families are kept (no token is recorded), so none is ever
    /// revoked: the blacklist alone answers.
    fn token_state(&self, jti: &str, _: Option<&str>) -> Result<TokenState, StoreError> {
        Ok(if self.is_blacklisted(jti)? {
            TokenState::Blacklisted
        } else {
            TokenState::Live
        })
    }
    fn rotated_to(&self, _: &str) -> Result<Option<Rotation>, StoreError> {
        Ok(None)
    }
    fn revoke_family(&self, _: &str, _: Option<i64>, _: i64) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn logout_user(&self, _: i64, _: i64) -> Result<(), StoreError> {
        Ok(())
    }
    fn flush_expired(&self, _: i64) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn signing_key(&self, candidate: &str) -> Result<(String, bool), StoreError> {
        Ok((candidate.into(), false))
    }
}

/// The settings the service is fuzzed with: simplejwt's defaults, our key,
/// rotation and blacklisting on (more paths).
pub fn settings() -> Settings {
    Settings {
        signing_key: Some(KEY.into()),
        rotate_refresh_tokens: true,
        blacklist_after_rotation: true,
        ..Settings::default()
    }
}

/// The service, built once per process.
pub fn app() -> &'static AuthApp {
    static APP: OnceLock<AuthApp> = OnceLock::new();
    APP.get_or_init(|| {
        AuthApp::new(settings(), Arc::new(MemoryStore::default())).expect("the fuzzed service")
    })
}

/// Runs a future on a runtime kept for the process (the service calls its
/// store through `spawn_blocking`).
pub fn block_on<F: Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
    .block_on(f)
}

/// `header.payload.signature` over any bytes, HMAC-SHA256 with [`KEY`]:
/// how a target gets arbitrary claims past the signature check.
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::Mac as _;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).expect("any key");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Calls the service and checks the oracle: never a 5xx, and a body that
/// is JSON (every answer of the token views and of hello is). Returns the
/// status and body.
pub fn call(request: Request) -> (u16, Vec<u8>) {
    let (status, body) = block_on(async {
        let res = app().call(request).await;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect_limited(16 << 20)
            .await
            .expect("the service's body");
        (status, body.to_vec())
    });
    assert!(
        status < 500,
        "answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
        "not JSON ({status}): {}",
        String::from_utf8_lossy(&body)
    );
    (status, body)
}
