//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1
//! lane), and verification of the hashes a Django user table holds.
//!
//! Hashes are stored in Django's format (`argon2$argon2id$v=19$m=19456,...`)
//! so that a table can go back to Django as well as come from it. Django's
//! `pbkdf2_sha256$iterations$salt$hash` and `argon2$...` hashes verify, and
//! [`Verified::needs_upgrade`] tells the caller to re-hash with ours after a
//! successful login. Comparisons are constant-time; an unknown user is
//! checked against a dummy hash, through the same pool, so that it costs
//! what a wrong password costs.
//!
//! The service hashes on a [`Pool`]: a few plain threads per worker process
//! fed by a bounded queue, each keeping its own 19 MiB of argon2 memory for
//! its whole life. Not tokio's blocking pool: that grows to hundreds of
//! threads, each allocating 19 MiB per hash that glibc's per-thread arenas
//! then keep (a worker reached gigabytes after a login burst), and as many
//! hashes in flight as there are logins compete for the CPU with the
//! runtime thread serving every other request.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

/// OWASP's argon2id parameters: memory in KiB, passes, lanes.
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Length of our hash output (argon2's default, as Django's hasher).
const OUTPUT_LEN: usize = 32;

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

const NO: Verified = Verified {
    ok: false,
    needs_upgrade: false,
};

/// Argon2 working memory, kept between hashes by a pool thread. Hashes whose
/// parameters need more than we keep (Django's argon2-cffi defaults use 100
/// MiB) get a temporary allocation: large enough to be its own `mmap`, so it
/// goes back to the system when freed.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// Runs `f` on at least `count` blocks.
    fn with<T>(&mut self, count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        if count <= M_COST as usize {
            if self.blocks.len() < count {
                self.blocks = vec![Block::default(); M_COST as usize];
            }
            f(&mut self.blocks[..count])
        } else {
            f(&mut vec![Block::default(); count])
        }
    }
}

/// Hashes a password with argon2id, in Django's `argon2$...` format.
pub fn hash(password: &str) -> String {
    hash_with(password, &mut Memory::default())
}

fn hash_with(password: &str, memory: &mut Memory) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .expect("a generated salt decodes");
    let mut out = [0u8; OUTPUT_LEN];
    let a = argon2();
    memory
        .with(a.params().block_count(), |blocks| {
            a.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
        })
        .expect("argon2 hashing with valid parameters");
    // The PHC string argon2's `PasswordHasher` writes: B64 without padding.
    let hash = argon2::password_hash::Output::new(&out).expect("a 32-byte output");
    format!(
        "argon2$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${hash}",
        salt.as_str()
    )
}

/// Django 5.2's PBKDF2-SHA256 iterations (its default hasher's).
pub const DJANGO_PBKDF2_ITERATIONS: u32 = 1_000_000;

/// Hashes a password as Django's default hasher does
/// (`pbkdf2_sha256$ITERATIONS$SALT$HASH`, a 22-character alphanumeric salt),
/// for a Django project's own user table (`--schema django`), which every
/// Django reads whatever hashers it has installed.
pub fn hash_django_pbkdf2(password: &str) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let salt = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 22);
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        DJANGO_PBKDF2_ITERATIONS,
        &mut out,
    );
    format!(
        "pbkdf2_sha256${DJANGO_PBKDF2_ITERATIONS}${salt}${}",
        STANDARD.encode(out)
    )
}

/// What an unknown user's login is checked against in a Django table: the
/// cost of Django's default hasher, so that an unknown name takes as long
/// as a wrong password (no password hashes to it: its hash is not one).
pub const DJANGO_DUMMY_HASH: &str =
    "pbkdf2_sha256$1000000$ferricornunknownuser00$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Checks `password` against a stored hash (ours or Django's). Unusable
/// hashes (Django's `!...`) and unknown formats never match.
pub fn verify(password: &str, encoded: &str) -> Verified {
    verify_with(password, encoded, &mut Memory::default())
}

/// The argon2 check of `verify`, computing the raw hash into `memory` and
/// comparing it in constant time (what argon2's `PasswordVerifier` does, but
/// without allocating the blocks on every call).
fn verify_argon2(password: &str, parsed: &PasswordHash<'_>, memory: &mut Memory) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let a = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = memory.with(a.params().block_count(), |blocks| {
        a.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
    });
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

fn verify_with(password: &str, encoded: &str, memory: &mut Memory) -> Verified {
    if let Some(phc) = encoded.strip_prefix("argon2$") {
        let phc = format!("${phc}");
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return NO;
        };
        let ok = verify_argon2(password, &parsed, memory);
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
            return NO;
        };
        let Ok(iterations) = iter.parse::<u32>() else {
            return NO;
        };
        if iterations == 0 {
            return NO;
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
    NO
}

/// A hash no password is expected to match, computed once per process.
fn dummy_hash(memory: &mut Memory) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_with("ferricorn-auth dummy password for unknown users", memory))
}

/// Spends the time of one verification without a user (an unknown user).
pub fn verify_dummy(password: &str) {
    let mut memory = Memory::default();
    let _ = verify_with(password, dummy_hash(&mut memory), &mut memory);
}

enum Job {
    /// `None` stored hash: an unknown user, checked against the dummy hash.
    Verify(String, Option<String>, oneshot::Sender<Verified>),
    Hash(String, oneshot::Sender<String>),
}

/// How many hashes may wait for a pool thread before callers wait to queue
/// (asynchronously: a full queue never blocks the runtime).
const QUEUE: usize = 64;

/// Password hashing threads of one worker process. Requests hand a job to a
/// bounded queue and await the answer on a oneshot channel, so the runtime
/// thread never waits on a hash; at most `threads` hashes are in flight, and
/// each thread reuses one 19 MiB block of argon2 memory.
///
/// The threads end when the pool is dropped (the queue closes).
pub struct Pool {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of `threads` threads (at least one). Start it in the worker
    /// process, after the fork: threads do not survive a fork.
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("ferricorn-auth-passwords-{i}"))
                .spawn(move || run(&rx))?;
        }
        Ok(Pool { jobs: tx })
    }

    /// [`verify`] on the pool; a `None` stored hash means "unknown user" and
    /// costs the same.
    pub async fn verify(&self, password: String, encoded: Option<String>) -> Verified {
        let (tx, rx) = oneshot::channel();
        if self
            .jobs
            .send(Job::Verify(password, encoded, tx))
            .await
            .is_err()
        {
            return NO;
        }
        rx.await.unwrap_or(NO)
    }

    /// [`hash`] on the pool.
    pub async fn hash(&self, password: String) -> String {
        let (tx, rx) = oneshot::channel();
        // The pool's threads only end when it is dropped, or by a panic in
        // argon2 with valid parameters: a bug, which we pass on.
        self.jobs
            .send(Job::Hash(password, tx))
            .await
            .unwrap_or_else(|_| panic!("the password pool has stopped"));
        rx.await
            .unwrap_or_else(|_| panic!("the password pool has stopped"))
    }
}

/// The nice value of the password threads. A hash is ~20 ms of CPU and
/// 19 MiB of memory passes; at the runtime threads' priority, a burst of
/// logins takes the worker's cores in equal shares with them and every
/// other request waits for a time slice (p99 of `GET /api/hello/` rose
/// ~9× under a login hammer on 2 cores). At 19 the scheduler runs a
/// runtime thread as soon as it wakes; hashes still get every cycle the
/// requests leave, so logins slow down only when the CPU is saturated.
const NICE: i32 = 19;

fn run(jobs: &Mutex<mpsc::Receiver<Job>>) {
    // On Linux the nice value is per thread: this lowers only this one. A
    // failure (a seccomp filter, say) leaves the thread as it was.
    let _ = rustix::process::setpriority_process(None, NICE);
    let mut memory = Memory::default();
    loop {
        // The lock is held while waiting: the idle threads queue on it, and
        // the one holding it takes the next job.
        let job = match jobs.lock() {
            Ok(mut rx) => rx.blocking_recv(),
            Err(_) => return,
        };
        let started = std::time::Instant::now();
        match job {
            None => return,
            Some(Job::Verify(password, encoded, reply)) => {
                let v = match encoded {
                    Some(e) => verify_with(&password, &e, &mut memory),
                    None => {
                        let _ = verify_with(&password, dummy_hash(&mut memory), &mut memory);
                        NO
                    }
                };
                let _ = reply.send(v);
            }
            Some(Job::Hash(password, reply)) => {
                let _ = reply.send(hash_with(&password, &mut memory));
            }
        }
        crate::metrics::get().hashed(started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

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
    fn agrees_with_the_argon2_crate() {
        // Ours verifies with argon2's own verifier, and the other way round.
        let h = hash("pw");
        let phc = format!("${}", h.strip_prefix("argon2$").unwrap());
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"px", &parsed).is_err());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2().hash_password(b"pw", &salt).unwrap().to_string();
        let theirs = format!("argon2{theirs}");
        assert_eq!(
            verify("pw", &theirs),
            Verified {
                ok: true,
                needs_upgrade: false
            }
        );
        assert!(!verify("px", &theirs).ok);
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

    #[tokio::test]
    async fn pool_hashes_and_verifies() {
        let pool = Pool::new(1).unwrap();
        let h = pool.hash("pw".into()).await;
        let (a, b, c) = tokio::join!(
            pool.verify("pw".into(), Some(h.clone())),
            pool.verify("no".into(), Some(h.clone())),
            pool.verify("pw".into(), None),
        );
        assert!(a.ok && !a.needs_upgrade);
        let django = hash_django_pbkdf2("pw");
        assert!(django.starts_with("pbkdf2_sha256$1000000$"));
        assert!(verify("pw", &django).ok);
        assert!(!verify("pw2", &django).ok);
        assert!(!verify("pw", DJANGO_DUMMY_HASH).ok);
        assert_eq!((b, c), (NO, NO));
    }
}
