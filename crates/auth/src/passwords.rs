//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1
//! lane), and verification of the hashes a Django user table holds.
//!
//! Hashes are stored in Django's format (`argon2$argon2id$v=19$m=19456,...`)
//! so that a table can go back to Django as well as come from it. Django's
//! `pbkdf2_sha256$iterations$salt$hash` and `argon2$...` hashes verify, and
//! [`Verified::needs_upgrade`] tells the caller to re-hash with ours after a
//! successful login. Comparisons are constant-time; an unknown user is
//! checked against a dummy hash so that it costs what a wrong password
//! costs. The async helpers run the hashing on tokio's blocking pool: one
//! argon2 hash takes tens of milliseconds, and a burst of logins must not
//! stall the requests sharing the worker's executor.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// OWASP's argon2id parameters: memory in KiB, passes, lanes.
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's limits.
    let params = Params::new(M_COST, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The outcome of checking a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub ok: bool,
    /// It matches, and the hash is not ours at our parameters: store a new one.
    pub needs_upgrade: bool,
}

/// Hashes a password with argon2id, in Django's `argon2$...` format.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters")
        .to_string();
    format!("argon2{phc}")
}

/// Checks `password` against a stored hash (ours or Django's). Unusable
/// hashes (Django's `!...`) and unknown formats never match.
pub fn verify(password: &str, encoded: &str) -> Verified {
    let no = Verified {
        ok: false,
        needs_upgrade: false,
    };
    if let Some(phc) = encoded.strip_prefix("argon2$") {
        let phc = format!("${phc}");
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return no;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        let ours = parsed.algorithm.as_str() == "argon2id"
            && parsed.version == Some(0x13)
            && parsed.params.get_decimal("m") == Some(M_COST)
            && parsed.params.get_decimal("t") == Some(T_COST)
            && parsed.params.get_decimal("p") == Some(P_COST);
        return Verified {
            ok,
            needs_upgrade: ok && !ours,
        };
    }
    if let Some(rest) = encoded.strip_prefix("pbkdf2_sha256$") {
        let mut parts = rest.splitn(3, '$');
        let (Some(iter), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
        else {
            return no;
        };
        let Ok(iterations) = iter.parse::<u32>() else {
            return no;
        };
        if iterations == 0 {
            return no;
        }
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            password.as_bytes(),
            salt.as_bytes(),
            iterations,
            &mut out,
        );
        let computed = STANDARD.encode(out);
        let ok: bool = computed.as_bytes().ct_eq(expected.as_bytes()).into();
        return Verified {
            ok,
            needs_upgrade: ok,
        };
    }
    no
}

/// A hash no password is expected to match, computed once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("ferricorn-auth dummy password for unknown users"))
}

/// Spends the time of one verification without a user (an unknown user).
pub fn verify_dummy(password: &str) {
    let _ = verify(password, dummy_hash());
}

/// [`verify`] on the blocking pool; `None` stored hash means "unknown user"
/// and costs the same.
pub async fn verify_async(password: String, encoded: Option<String>) -> Verified {
    tokio::task::spawn_blocking(move || match encoded {
        Some(e) => verify(&password, &e),
        None => {
            verify_dummy(&password);
            Verified {
                ok: false,
                needs_upgrade: false,
            }
        }
    })
    .await
    .unwrap_or(Verified {
        ok: false,
        needs_upgrade: false,
    })
}

/// [`hash`] on the blocking pool.
pub async fn hash_async(password: String) -> String {
    match tokio::task::spawn_blocking(move || hash(&password)).await {
        Ok(h) => h,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_round_trip() {
        let h = hash("s3cret");
        assert!(h.starts_with("argon2$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            verify("s3cret", &h),
            Verified {
                ok: true,
                needs_upgrade: false
            }
        );
        assert!(!verify("wrong", &h).ok);
    }

    #[test]
    fn django_hashes() {
        // Django 5: make_password("password", salt="seasalt", hasher="pbkdf2_sha256") at 1000 iterations.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"password", b"seasalt", 1000, &mut out);
        let h = format!("pbkdf2_sha256$1000$seasalt${}", STANDARD.encode(out));
        assert_eq!(
            verify("password", &h),
            Verified {
                ok: true,
                needs_upgrade: true
            }
        );
        assert!(!verify("nope", &h).ok);
        // Django's Argon2PasswordHasher (argon2-cffi defaults of Django 5).
        let salt = SaltString::encode_b64(b"somesaltsomesalt").unwrap();
        let params = Params::new(102_400, 2, 8, None).unwrap();
        let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let phc = a.hash_password(b"password", &salt).unwrap().to_string();
        let h = format!("argon2{phc}");
        assert_eq!(
            verify("password", &h),
            Verified {
                ok: true,
                needs_upgrade: true
            }
        );
        assert!(!verify("x", "!unusable").ok);
    }
}
