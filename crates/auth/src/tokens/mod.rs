//! Tokens: claims, encoding and the checks simplejwt makes, in its order.
//!
//! A token is a [`Token`]: an ordered claim set (`token_type`, `exp`, `iat`,
//! `jti`, then the user id claim, as simplejwt builds it) and the moment it
//! was made or read. Signing and signature checks use `jsonwebtoken`'s
//! `crypto` functions; everything around them — splitting the token, reading
//! the header and claims, which claim check runs first and which message it
//! gives — follows PyJWT 2.x and simplejwt 5.5, because clients see the
//! message of the first failed check:
//!
//! 1. [`decode`] (PyJWT): segments, header (`kid`, `crit`, `b64`), `alg`
//!    must be the configured one, the signature, then the claims `iat`,
//!    `nbf`, `exp` (the only check that answers "Token is expired"), `iss`,
//!    `aud`, `sub`, `jti`. Every other failure is "Token is invalid".
//! 2. the blacklist, for refresh tokens (done by the endpoint, it needs the
//!    store): "Token is blacklisted", before the checks below.
//! 3. [`verify`] (simplejwt's `Token.verify`): `exp` present, `jti` present,
//!    then the token type.

pub mod jwk;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{crypto, Algorithm, DecodingKey, EncodingKey};
use rand::RngCore;
use sha2::{Sha256, Sha384, Sha512};

use crate::compat::pyjson::{self, Object, Value};
use crate::settings::{algorithm_name, Settings};

/// The claim that names a refresh token's family (reuse detection).
pub const FAMILY_CLAIM: &str = "fam";

/// The largest timestamp Python's `datetime` can hold (9999-12-31T23:59:59).
const MAX_DATETIME_TS: f64 = 253_402_300_799.0;

/// Why a token was refused; the text is simplejwt's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, bad signature, other algorithm, `alg: none`, future `nbf`...
    #[error("Token is invalid")]
    Invalid,
    /// `exp` has passed (PyJWT's check).
    #[error("Token is expired")]
    Expired,
    /// `exp` has passed (simplejwt's own check, reached only in a race with
    /// the clock between the two).
    #[error("Token 'exp' claim has expired")]
    ExpClaimExpired,
    /// The type claim names another type.
    #[error("Token has wrong type")]
    WrongType,
    /// No type claim.
    #[error("Token has no type")]
    NoType,
    /// No `exp` claim.
    #[error("Token has no 'exp' claim")]
    NoExp,
    /// No id (`jti`) claim.
    #[error("Token has no id")]
    NoId,
    /// The token's `jti` is in the blacklist.
    #[error("Token is blacklisted")]
    Blacklisted,
}

/// The current time as a Unix timestamp with fractions, like Python's
/// `datetime.now().timestamp()`.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A token: its claims and the time it was made or read (simplejwt's
/// `current_time`, which new `exp` claims count from).
#[derive(Clone, Debug)]
pub struct Token {
    /// The claims, in order.
    pub payload: Object,
    /// When the token object was made.
    pub current_time: f64,
}

/// `uuid4().hex`: 32 lowercase hex digits of a version 4 UUID.
pub fn new_jti() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    hex::encode(b)
}

impl Token {
    /// A new token of `token_type` valid for `lifetime` seconds from `now`:
    /// `{token_type, exp, iat, jti}`.
    pub fn new(token_type: &str, lifetime: i64, now: f64, settings: &Settings) -> Token {
        let mut t = Token {
            payload: Object::new(),
            current_time: now,
        };
        t.payload
            .insert(settings.token_type_claim.clone(), Value::str(token_type));
        t.set_exp(lifetime);
        t.set_iat();
        t.set_jti(settings);
        t
    }

    /// A token read from claims (after [`decode`]).
    pub fn from_payload(payload: Object, now: f64) -> Token {
        Token {
            payload,
            current_time: now,
        }
    }

    /// `RefreshToken.for_user`: a refresh token whose user id claim is the
    /// id as a string.
    pub fn refresh_for_user(user_id: i64, now: f64, settings: &Settings) -> Token {
        let mut t = Token::new("refresh", settings.refresh_token_lifetime, now, settings);
        t.payload.insert(
            settings.user_id_claim.clone(),
            Value::str(user_id.to_string()),
        );
        t
    }

    /// `RefreshToken.access_token`: a new access token expiring relative to
    /// this token's `current_time`, carrying every claim of this one but the
    /// type, `exp`, `iat` and `jti`.
    pub fn access_token(&self, settings: &Settings) -> Token {
        let mut a = Token::new("access", settings.access_token_lifetime, now(), settings);
        a.payload.insert(
            "exp",
            Value::int(epoch(
                self.current_time + settings.access_token_lifetime as f64,
            )),
        );
        for (k, v) in self.payload.iter() {
            if k == settings.token_type_claim
                || k == "exp"
                || k == settings.jti_claim
                || k == "jti"
                || k == "iat"
            {
                continue;
            }
            a.payload.insert(k, v.clone());
        }
        a
    }

    /// Sets `exp` to `current_time + lifetime`.
    pub fn set_exp(&mut self, lifetime: i64) {
        self.payload.insert(
            "exp",
            Value::int(epoch(self.current_time + lifetime as f64)),
        );
    }

    /// Sets `iat` to `current_time`.
    pub fn set_iat(&mut self) {
        self.payload
            .insert("iat", Value::int(epoch(self.current_time)));
    }

    /// Sets a new random `jti`.
    pub fn set_jti(&mut self, settings: &Settings) {
        self.payload
            .insert(settings.jti_claim.clone(), Value::str(new_jti()));
    }

    /// The `jti` as Python's `str()` would store it, if present.
    pub fn jti(&self, settings: &Settings) -> Option<String> {
        self.payload.get(&settings.jti_claim).map(py_key)
    }

    /// The refresh token family (`fam`, with reuse detection): the same in
    /// every token rotated from one login.
    pub fn family(&self) -> Option<&str> {
        self.payload.get(FAMILY_CLAIM).and_then(Value::as_str)
    }

    /// Starts a new family.
    pub fn set_family(&mut self) {
        self.payload.insert(FAMILY_CLAIM, Value::str(new_jti()));
    }

    /// The `iat` claim as whole seconds (0 when absent or unreadable: such
    /// a token is older than any log-out).
    pub fn iat(&self) -> i64 {
        issued_at(&self.payload)
    }

    /// The `exp` claim as whole seconds (0 when unreadable).
    pub fn exp(&self) -> i64 {
        self.payload.get("exp").and_then(claim_int).unwrap_or(0)
    }

    /// Signs the token. `aud` and `iss` are set from the settings first, as
    /// simplejwt's backend does.
    pub fn encode(&self, keys: &Keys, settings: &Settings) -> String {
        let mut payload = self.payload.clone();
        if let Some(aud) = &settings.audience {
            let v = if aud.len() == 1 {
                Value::str(aud[0].clone())
            } else {
                Value::Array(aud.iter().map(|a| Value::str(a.clone())).collect())
            };
            payload.insert("aud", v);
        }
        if let Some(iss) = &settings.issuer {
            payload.insert("iss", Value::str(iss.clone()));
        }
        keys.sign(&pyjson::dumps(&Value::Object(payload), true))
    }
}

/// The `iat` claim of `payload` as whole seconds (0 when absent or
/// unreadable).
pub fn issued_at(payload: &Object) -> i64 {
    payload.get("iat").and_then(claim_int).unwrap_or(0)
}

/// A value used as a database key the way Django would: `str(value)`.
fn py_key(v: &Value) -> String {
    v.py_str().unwrap_or_else(|| pyjson::dumps(v, true))
}

/// `datetime_to_epoch`: whole seconds, rounded down.
fn epoch(ts: f64) -> i64 {
    ts.floor() as i64
}

/// Python's `int(claim)` as PyJWT applies it to `iat`, `nbf` and `exp`:
/// `None` where Python raises. Integers too large for `i64` saturate.
fn claim_int(v: &Value) -> Option<i64> {
    if let Value::Int(s) = v {
        return Some(s.parse().unwrap_or(if s.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        }));
    }
    v.to_int()
}

/// The signing and verifying keys for the configured algorithm.
pub struct Keys {
    alg: Algorithm,
    /// `None` for keys that only verify ([`Keys::verifying`]).
    encoding: Option<EncodingKey>,
    /// The keys that verify, newest first: `verifying_key` (the signing
    /// key's own), then `verifying_keys`, each with its `kid` when tokens
    /// name their key ([`Settings::names_keys`]).
    verifying: Vec<VerifyingKey>,
    /// For the HMAC algorithms, the key's inner and outer states, computed
    /// once: `jsonwebtoken::crypto::verify` derives them from the secret
    /// on every call, two of the ~six hash blocks of a verification.
    mac: Option<Mac>,
    header_segment: String,
    /// The JWK Set document, when it is published (`jwks`).
    jwks: Option<String>,
}

/// One public key that verifies tokens.
struct VerifyingKey {
    kid: Option<String>,
    key: DecodingKey,
}

/// A keyed HMAC state, cloned for each token.
#[derive(Clone)]
enum Mac {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl Mac {
    fn new(alg: Algorithm, secret: &[u8]) -> Option<Mac> {
        // HMAC takes a key of any length, so these cannot fail.
        Some(match alg {
            Algorithm::HS256 => Mac::Hs256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => Mac::Hs384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => Mac::Hs512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }

    /// Whether `signature` is the MAC of `input`, compared in constant time.
    fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        fn check<M: hmac::Mac>(mut mac: M, input: &[u8], signature: &[u8]) -> bool {
            mac.update(input);
            mac.verify_slice(signature).is_ok()
        }
        match self.clone() {
            Mac::Hs256(m) => check(m, input, signature),
            Mac::Hs384(m) => check(m, input, signature),
            Mac::Hs512(m) => check(m, input, signature),
        }
    }
}

impl std::fmt::Debug for Keys {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A public key in PEM as `jsonwebtoken` reads it for `alg`.
fn decoding_key(alg: Algorithm, pem: &str) -> Result<DecodingKey, jsonwebtoken::errors::Error> {
    let pem = pem.as_bytes();
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    }
}

impl Keys {
    /// Keys from the settings; `signing_key` is the configured one or the
    /// one kept in the store.
    pub fn new(
        settings: &Settings,
        signing_key: &str,
    ) -> Result<Keys, jsonwebtoken::errors::Error> {
        let alg = settings.algorithm;
        let encoding = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let verifying = vec![VerifyingKey {
                    kid: None,
                    key: DecodingKey::from_secret(signing_key.as_bytes()),
                }];
                let encoding = EncodingKey::from_secret(signing_key.as_bytes());
                return Ok(Keys::with(
                    alg,
                    Some(encoding),
                    verifying,
                    signing_key,
                    None,
                ));
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(signing_key.as_bytes())?
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(signing_key.as_bytes())?,
            _ => EncodingKey::from_rsa_pem(signing_key.as_bytes())?,
        };
        let mut keys = Keys::verifying(settings)
            .unwrap_or_else(|| Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into()))?;
        keys.encoding = Some(encoding);
        Ok(keys)
    }

    /// Keys that only verify, for an asymmetric algorithm (RS/PS/ES/EdDSA):
    /// the public `verifying_key` (and the earlier `verifying_keys`) alone,
    /// so that a service that checks tokens never holds the private key
    /// that signs them. `None` for the HMAC algorithms, where the one
    /// secret does both.
    pub fn verifying(settings: &Settings) -> Option<Result<Keys, jsonwebtoken::errors::Error>> {
        if settings.is_hmac() {
            return None;
        }
        let alg = settings.algorithm;
        let pems = std::iter::once(settings.verifying_key.as_deref().unwrap_or(""))
            .chain(settings.verifying_keys.iter().map(String::as_str));
        // Each key is read once: for verifying, and as a JWK for its `kid`
        // and the published set.
        let mut verifying = Vec::new();
        let mut set = Vec::new();
        for pem in pems {
            let jwk = if settings.names_keys() {
                match jwk::Jwk::from_public_pem(alg, pem) {
                    Ok(jwk) => Some(jwk),
                    Err(_) => {
                        return Some(Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into()))
                    }
                }
            } else {
                None
            };
            let key = match decoding_key(alg, pem) {
                Ok(key) => key,
                Err(e) => return Some(Err(e)),
            };
            verifying.push(VerifyingKey {
                kid: jwk.as_ref().map(|j| j.kid.clone()),
                key,
            });
            set.extend(jwk);
        }
        let jwks = settings.jwks.then(|| jwk::key_set(&set));
        Some(Ok(Keys::with(alg, None, verifying, "", jwks)))
    }

    fn with(
        alg: Algorithm,
        encoding: Option<EncodingKey>,
        verifying: Vec<VerifyingKey>,
        secret: &str,
        jwks: Option<String>,
    ) -> Keys {
        // PyJWT sorts header keys: {"alg":...,"kid":...,"typ":"JWT"}.
        let header = match verifying.first().and_then(|k| k.kid.as_deref()) {
            Some(kid) => format!(
                "{{\"alg\":\"{}\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}",
                algorithm_name(alg)
            ),
            None => format!("{{\"alg\":\"{}\",\"typ\":\"JWT\"}}", algorithm_name(alg)),
        };
        Keys {
            alg,
            encoding,
            verifying,
            mac: Mac::new(alg, secret.as_bytes()),
            header_segment: URL_SAFE_NO_PAD.encode(header),
            jwks,
        }
    }

    /// The JWK Set document of the verifying keys, when `jwks` publishes
    /// it.
    pub fn jwks(&self) -> Option<&str> {
        self.jwks.as_deref()
    }

    fn sign(&self, payload_json: &str) -> String {
        let signing_input = format!(
            "{}.{}",
            self.header_segment,
            URL_SAFE_NO_PAD.encode(payload_json)
        );
        // Signing with a key that was accepted at start-up cannot fail;
        // keys that only verify are never asked to sign (no endpoint runs
        // on them), and would make a token no one accepts.
        let sig = self
            .encoding
            .as_ref()
            .and_then(|key| crypto::sign(signing_input.as_bytes(), key, self.alg).ok())
            .unwrap_or_default();
        format!("{signing_input}.{sig}")
    }

    /// Whether `signature` signs `signing_input` under one of the keys:
    /// the one the header's `kid` names when keys are named, else any.
    fn verify(&self, signing_input: &[u8], signature: &[u8], kid: Option<&str>) -> bool {
        if let Some(mac) = &self.mac {
            return mac.verify(signing_input, signature);
        }
        let sig_b64 = URL_SAFE_NO_PAD.encode(signature);
        let named = self.verifying.iter().any(|k| k.kid.is_some());
        self.verifying
            .iter()
            .filter(|k| !named || kid.is_none() || k.kid.as_deref() == kid)
            .any(|k| crypto::verify(&sig_b64, signing_input, &k.key, self.alg).unwrap_or(false))
    }
}

/// PyJWT's `base64url_decode`: padding optional, characters outside the
/// alphabet ignored (as Python's non-validating decoder does).
fn b64url(seg: &[u8]) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    if seg.iter().all(alphabet) {
        // The usual segment: nothing to translate or drop.
        return LENIENT.decode(seg).ok();
    }
    let clean: Vec<u8> = seg
        .iter()
        .filter_map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => Some(*b),
            b'+' => Some(b'-'),
            b'/' => Some(b'_'),
            _ => None,
        })
        .collect();
    LENIENT.decode(clean).ok()
}

fn json_object(bytes: &[u8]) -> Option<Object> {
    let text = std::str::from_utf8(bytes).ok()?;
    match pyjson::loads(text, false).ok()? {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

/// PyJWT's `jwt.decode` as simplejwt's `TokenBackend.decode` calls it:
/// signature, then registered claims. Returns the claims.
pub fn decode(
    raw: &[u8],
    keys: &Keys,
    settings: &Settings,
    now: f64,
) -> Result<Object, TokenError> {
    use TokenError::{Expired, Invalid};
    let dot = raw.iter().rposition(|b| *b == b'.').ok_or(Invalid)?;
    let (signing_input, sig_seg) = (&raw[..dot], &raw[dot + 1..]);
    let dot2 = signing_input
        .iter()
        .position(|b| *b == b'.')
        .ok_or(Invalid)?;
    let (header_seg, payload_seg) = (&signing_input[..dot2], &signing_input[dot2 + 1..]);
    let header = json_object(&b64url(header_seg).ok_or(Invalid)?).ok_or(Invalid)?;
    let payload_bytes = b64url(payload_seg).ok_or(Invalid)?;
    let signature = b64url(sig_seg).ok_or(Invalid)?;

    // Headers: kid must be a string; crit may only name b64, present.
    if header
        .get("kid")
        .is_some_and(|k| !matches!(k, Value::Str(_)))
    {
        return Err(Invalid);
    }
    if let Some(crit) = header.get("crit") {
        let Value::Array(items) = crit else {
            return Err(Invalid);
        };
        if items.is_empty()
            || items
                .iter()
                .any(|e| e.as_str() != Some("b64") || !header.contains("b64"))
        {
            return Err(Invalid);
        }
    }
    if header.get("b64") == Some(&Value::Bool(false)) {
        // A detached payload, which simplejwt never passes.
        return Err(Invalid);
    }
    // Only the configured algorithm: this refuses "none" and algorithm
    // confusion (an HS256 token signed with an RSA public key, say).
    if header.get("alg").and_then(Value::as_str) != Some(algorithm_name(keys.alg)) {
        return Err(Invalid);
    }
    // PyJWT checks the decoded signature against the raw signing input.
    let kid = header.get("kid").and_then(Value::as_str);
    if !keys.verify(signing_input, &signature, kid) {
        return Err(Invalid);
    }
    let payload = json_object(&payload_bytes).ok_or(Invalid)?;

    let leeway = settings.leeway;
    for claim in ["iat", "nbf"] {
        if let Some(v) = payload.get(claim) {
            let t = claim_int(v).ok_or(Invalid)?;
            if t as f64 > now + leeway {
                return Err(Invalid);
            }
        }
    }
    if let Some(v) = payload.get("exp") {
        let exp = claim_int(v).ok_or(Invalid)?;
        if exp as f64 <= now - leeway {
            return Err(Expired);
        }
    }
    if let Some(issuer) = &settings.issuer {
        if payload.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(Invalid);
        }
    }
    if let Some(audience) = &settings.audience {
        let claims: Vec<&str> = match payload.get("aud") {
            Some(v) if !v.truthy() => return Err(Invalid),
            Some(Value::Str(s)) => vec![s.text.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(Invalid))
                .collect::<Result<_, _>>()?,
            _ => return Err(Invalid),
        };
        if !audience.iter().any(|a| claims.contains(&a.as_str())) {
            return Err(Invalid);
        }
    }
    for claim in ["sub", "jti"] {
        if payload
            .get(claim)
            .is_some_and(|v| !matches!(v, Value::Str(_)))
        {
            return Err(Invalid);
        }
    }
    Ok(payload)
}

/// simplejwt's `Token.verify`: `exp` present and not past, an id, and (when
/// `expected_type` is given) the type.
pub fn verify(
    payload: &Object,
    settings: &Settings,
    expected_type: Option<&str>,
    now: f64,
) -> Result<(), TokenError> {
    let exp = payload.get("exp").ok_or(TokenError::NoExp)?;
    // `datetime_from_epoch` raises (a 500 in simplejwt) on a string or an
    // out-of-range number; such a token is invalid here.
    let exp = match exp {
        Value::Int(_) | Value::Bool(_) => claim_int(exp).map(|i| i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
    .filter(|t| t.is_finite() && t.abs() <= MAX_DATETIME_TS)
    .ok_or(TokenError::Invalid)?;
    if exp <= now - settings.leeway {
        return Err(TokenError::ExpClaimExpired);
    }
    if !payload.contains(&settings.jti_claim) {
        return Err(TokenError::NoId);
    }
    if let Some(expected) = expected_type {
        let t = payload
            .get(&settings.token_type_claim)
            .ok_or(TokenError::NoType)?;
        if t.as_str() != Some(expected) {
            return Err(TokenError::WrongType);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Settings, Keys) {
        let s = Settings::default();
        let k = Keys::new(&s, "secret").unwrap();
        (s, k)
    }

    #[test]
    fn claims_in_simplejwt_order() {
        let (s, k) = setup();
        let t = Token::refresh_for_user(7, 1_700_000_000.7, &s);
        let keys: Vec<_> = t.payload.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["token_type", "exp", "iat", "jti", "user_id"]);
        assert_eq!(t.exp(), 1_700_086_400);
        let enc = t.encode(&k, &s);
        assert!(enc.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        let a = t.access_token(&s);
        let keys: Vec<_> = a.payload.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["token_type", "exp", "iat", "jti", "user_id"]);
        assert_eq!(a.exp(), 1_700_000_300);
    }

    #[test]
    fn decode_checks() {
        let (s, k) = setup();
        let now = 1_700_000_000.0;
        let t = Token::refresh_for_user(1, now, &s);
        let raw = t.encode(&k, &s);
        let p = decode(raw.as_bytes(), &k, &s, now + 1.0).unwrap();
        assert_eq!(verify(&p, &s, Some("refresh"), now + 1.0), Ok(()));
        assert_eq!(
            verify(&p, &s, Some("access"), now + 1.0),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            decode(raw.as_bytes(), &k, &s, now + 86_400.0).unwrap_err(),
            TokenError::Expired
        );
        let other = Keys::new(&s, "other").unwrap();
        assert_eq!(
            decode(raw.as_bytes(), &other, &s, now).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(
            decode(b"abc", &k, &s, now).unwrap_err(),
            TokenError::Invalid
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode("{\"alg\":\"none\",\"typ\":\"JWT\"}"),
            raw.split('.').nth(1).unwrap()
        );
        assert_eq!(
            decode(none.as_bytes(), &k, &s, now).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(new_jti().len(), 32);
    }
}
