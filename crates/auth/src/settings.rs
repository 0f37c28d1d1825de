//! [`Settings`]: simplejwt's settings, with its names and defaults.
//!
//! They come from the `[auth]` table of the server's TOML config file and
//! from environment variables `FERRICORN_AUTH_<NAME>`; the environment wins.
//! Lifetimes and leeway are in seconds. Keys are simplejwt's names in lower
//! case in the file (`access_token_lifetime = 300`) and upper case in the
//! environment (`FERRICORN_AUTH_ACCESS_TOKEN_LIFETIME=300`).

use jsonwebtoken::Algorithm;

use crate::tokens::jwk::Jwk;

/// The size in bits of the modulus of an RSA public key in PEM (SPKI
/// `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`); `None` for anything else.
fn rsa_modulus_bits(pem_text: &str) -> Option<u64> {
    use simple_asn1::{from_der, ASN1Block};
    let pem = pem::parse(pem_text).ok()?;
    let blocks = from_der(pem.contents()).ok()?;
    let pkcs1 = match (pem.tag(), blocks.first()?) {
        ("RSA PUBLIC KEY", _) => blocks,
        ("PUBLIC KEY", ASN1Block::Sequence(_, items)) => match items.get(1)? {
            ASN1Block::BitString(_, _, bytes) => from_der(bytes).ok()?,
            _ => return None,
        },
        _ => return None,
    };
    match pkcs1.first()? {
        ASN1Block::Sequence(_, items) => match items.first()? {
            ASN1Block::Integer(_, n) => Some(n.bits()),
            _ => None,
        },
        _ => None,
    }
}

/// The prefix of the environment variables read by [`Settings::load`].
pub const ENV_PREFIX: &str = "FERRICORN_AUTH_";

/// A setting that could not be read; the message names the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("auth setting {key}: {message}")]
pub struct SettingsError {
    /// The setting's name as written (`access_token_lifetime`).
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// simplejwt's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// ACCESS_TOKEN_LIFETIME, seconds (default 300).
    pub access_token_lifetime: i64,
    /// REFRESH_TOKEN_LIFETIME, seconds (default 86400).
    pub refresh_token_lifetime: i64,
    /// ROTATE_REFRESH_TOKENS (default false).
    pub rotate_refresh_tokens: bool,
    /// BLACKLIST_AFTER_ROTATION (default false).
    pub blacklist_after_rotation: bool,
    /// UPDATE_LAST_LOGIN (default false).
    pub update_last_login: bool,
    /// ALGORITHM (default HS256).
    pub algorithm: Algorithm,
    /// SIGNING_KEY: the HMAC secret or a PEM private key. `None`: a random
    /// key is generated once and kept in the store.
    pub signing_key: Option<String>,
    /// VERIFYING_KEY: the PEM public key for RS/ES/PS/EdDSA.
    pub verifying_key: Option<String>,
    /// AUDIENCE: checked (and set on new tokens) when given.
    pub audience: Option<Vec<String>>,
    /// ISSUER: checked (and set on new tokens) when given.
    pub issuer: Option<String>,
    /// LEEWAY, seconds (default 0).
    pub leeway: f64,
    /// AUTH_HEADER_TYPES (default `["Bearer"]`).
    pub auth_header_types: Vec<String>,
    /// USER_ID_CLAIM (default `user_id`).
    pub user_id_claim: String,
    /// TOKEN_TYPE_CLAIM (default `token_type`).
    pub token_type_claim: String,
    /// JTI_CLAIM (default `jti`).
    pub jti_claim: String,
    /// CHECK_USER_IS_ACTIVE (default true).
    pub check_user_is_active: bool,
    /// `allow_weak_keys` (ours, default false): accept an HMAC signing key
    /// shorter than its hash output, with a warning at every start.
    pub allow_weak_keys: bool,

    // Beyond simplejwt: every switch is off by default, so that every
    // default answer stays simplejwt's.
    /// `refresh_cookie`: obtain and refresh set the refresh token as an
    /// `HttpOnly` cookie instead of returning it in the body; refresh and
    /// blacklist read it from there when the body has none.
    pub refresh_cookie: bool,
    /// `refresh_cookie_name` (default `refresh_token`).
    pub refresh_cookie_name: String,
    /// `refresh_cookie_path` (default `/api/token/`): the browser sends the
    /// cookie to the token endpoints only.
    pub refresh_cookie_path: String,
    /// `refresh_cookie_samesite` (default `Lax`).
    pub refresh_cookie_samesite: SameSite,
    /// `refresh_cookie_secure` (default true): HTTPS only.
    pub refresh_cookie_secure: bool,
    /// `refresh_cookie_domain` (default none: the host that set it).
    pub refresh_cookie_domain: Option<String>,
    /// `csrf_trusted_origins`: origins (`https://app.example.com`) whose
    /// cross-site requests may use the cookie without the double-submit
    /// token.
    pub csrf_trusted_origins: Vec<String>,
    /// `refresh_reuse_detection`: a rotated refresh token presented again
    /// revokes its whole family (needs rotation and blacklisting).
    pub refresh_reuse_detection: bool,
    /// `refresh_reuse_grace`, seconds (default 0): within it, presenting
    /// the token just rotated again answers with its replacement instead of
    /// revoking the family (a client retrying a lost response).
    pub refresh_reuse_grace: f64,
    /// `revoke_access_on_logout`: access tokens issued before a user's last
    /// log-out-everywhere are refused too, not only refresh tokens.
    pub revoke_access_on_logout: bool,
    /// `jwks`: publish the verifying keys at `/api/token/jwks/` and
    /// `/.well-known/jwks.json`, and name the signing key in every token's
    /// `kid` header (asymmetric algorithms only).
    pub jwks: bool,
    /// `jwks_max_age`, seconds (default 300): the JWK Set's
    /// `Cache-Control: max-age`.
    pub jwks_max_age: i64,
    /// `verifying_keys`: earlier public keys (PEM) that still verify tokens
    /// during a key rotation; only `signing_key` signs.
    pub verifying_keys: Vec<String>,
}

/// The `SameSite` attribute of the refresh cookie.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, not on their
    /// requests (the browsers' default).
    #[default]
    Lax,
    /// Never sent on a request another site started.
    Strict,
    /// Sent on cross-site requests too (needs `Secure`).
    None,
}

impl SameSite {
    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_token_lifetime: 5 * 60,
            refresh_token_lifetime: 24 * 60 * 60,
            rotate_refresh_tokens: false,
            blacklist_after_rotation: false,
            update_last_login: false,
            algorithm: Algorithm::HS256,
            signing_key: None,
            verifying_key: None,
            audience: None,
            issuer: None,
            leeway: 0.0,
            auth_header_types: vec!["Bearer".into()],
            user_id_claim: "user_id".into(),
            token_type_claim: "token_type".into(),
            jti_claim: "jti".into(),
            check_user_is_active: true,
            allow_weak_keys: false,
            refresh_cookie: false,
            refresh_cookie_name: "refresh_token".into(),
            refresh_cookie_path: "/api/token/".into(),
            refresh_cookie_samesite: SameSite::Lax,
            refresh_cookie_secure: true,
            refresh_cookie_domain: None,
            csrf_trusted_origins: Vec::new(),
            refresh_reuse_detection: false,
            refresh_reuse_grace: 0.0,
            revoke_access_on_logout: false,
            jwks: false,
            jwks_max_age: 300,
            verifying_keys: Vec::new(),
        }
    }
}

/// The names of the settings, in lower case.
pub const KEYS: &[&str] = &[
    "access_token_lifetime",
    "refresh_token_lifetime",
    "rotate_refresh_tokens",
    "blacklist_after_rotation",
    "update_last_login",
    "algorithm",
    "signing_key",
    "verifying_key",
    "audience",
    "issuer",
    "leeway",
    "auth_header_types",
    "user_id_claim",
    "token_type_claim",
    "jti_claim",
    "check_user_is_active",
    "allow_weak_keys",
    "refresh_cookie",
    "refresh_cookie_name",
    "refresh_cookie_path",
    "refresh_cookie_samesite",
    "refresh_cookie_secure",
    "refresh_cookie_domain",
    "csrf_trusted_origins",
    "refresh_reuse_detection",
    "refresh_reuse_grace",
    "revoke_access_on_logout",
    "jwks",
    "jwks_max_age",
    "verifying_keys",
];

/// One raw value: from TOML, or a string from the environment.
enum Raw<'a> {
    Toml(&'a toml::Value),
    Env(String),
}

impl Settings {
    /// Reads the `[auth]` table (if any) of a parsed config file, then the
    /// environment through `env` (use `|k| std::env::var(k).ok()`).
    pub fn load(
        table: Option<&toml::Table>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let mut s = Settings::default();
        if let Some(table) = table {
            for (key, value) in table {
                let key_l = key.to_ascii_lowercase();
                if !KEYS.contains(&key_l.as_str()) {
                    return Err(SettingsError {
                        key: key.clone(),
                        message: format!("unknown key in [auth]; known keys: {}", KEYS.join(", ")),
                    });
                }
                s.set(&key_l, Raw::Toml(value))?;
            }
        }
        for key in KEYS {
            let name = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase());
            if let Some(v) = env(&name) {
                s.set(key, Raw::Env(v)).map_err(|mut e| {
                    e.key = name.clone();
                    e
                })?;
            }
        }
        s.validate()?;
        Ok(s)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), SettingsError> {
        let err = |message: &str| SettingsError {
            key: key.to_string(),
            message: message.to_string(),
        };
        let int = |raw: &Raw<'_>| -> Result<i64, SettingsError> {
            match raw {
                Raw::Toml(toml::Value::Integer(i)) => Ok(*i),
                Raw::Env(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| err("expected whole seconds, e.g. 300")),
                _ => Err(err("expected whole seconds, e.g. 300")),
            }
        };
        let boolean = |raw: &Raw<'_>| -> Result<bool, SettingsError> {
            match raw {
                Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
                Raw::Env(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" => Ok(false),
                    _ => Err(err("expected true or false")),
                },
                _ => Err(err("expected true or false")),
            }
        };
        let string = |raw: &Raw<'_>| -> Result<String, SettingsError> {
            match raw {
                Raw::Toml(toml::Value::String(s)) => Ok(s.clone()),
                Raw::Env(s) => Ok(s.clone()),
                _ => Err(err("expected a string")),
            }
        };
        let list = |raw: &Raw<'_>| -> Result<Vec<String>, SettingsError> {
            match raw {
                Raw::Toml(toml::Value::String(s)) => Ok(vec![s.clone()]),
                Raw::Toml(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| err("expected strings"))
                    })
                    .collect(),
                Raw::Env(s) => Ok(s
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()),
                _ => Err(err("expected a string or a list of strings")),
            }
        };
        let opt = |s: String| if s.is_empty() { None } else { Some(s) };
        let seconds = |raw: &Raw<'_>| -> Result<f64, SettingsError> {
            match raw {
                Raw::Toml(toml::Value::Integer(i)) => Ok(*i as f64),
                Raw::Toml(toml::Value::Float(f)) => Ok(*f),
                Raw::Env(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| err("expected seconds, e.g. 10")),
                _ => Err(err("expected seconds, e.g. 10")),
            }
        };
        // PEM keys: a list in the file; in the environment, the blocks one
        // after another (a PEM block has no separator of its own to split on
        // but its END line).
        let pem_list = |raw: &Raw<'_>| -> Result<Vec<String>, SettingsError> {
            match raw {
                Raw::Env(s) => Ok(split_pem_blocks(s)),
                other => list(other),
            }
        };
        match key {
            "access_token_lifetime" => self.access_token_lifetime = int(&raw)?,
            "refresh_token_lifetime" => self.refresh_token_lifetime = int(&raw)?,
            "rotate_refresh_tokens" => self.rotate_refresh_tokens = boolean(&raw)?,
            "blacklist_after_rotation" => self.blacklist_after_rotation = boolean(&raw)?,
            "update_last_login" => self.update_last_login = boolean(&raw)?,
            "check_user_is_active" => self.check_user_is_active = boolean(&raw)?,
            "allow_weak_keys" => self.allow_weak_keys = boolean(&raw)?,
            "algorithm" => {
                let name = string(&raw)?;
                self.algorithm = parse_algorithm(&name).ok_or_else(|| {
                    err("expected one of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, PS256, PS384, PS512, EdDSA")
                })?;
            }
            "signing_key" => self.signing_key = opt(string(&raw)?),
            "verifying_key" => self.verifying_key = opt(string(&raw)?),
            "issuer" => self.issuer = opt(string(&raw)?),
            "audience" => {
                let l = list(&raw)?;
                self.audience = if l.is_empty() { None } else { Some(l) };
            }
            "leeway" => self.leeway = seconds(&raw)?,
            "refresh_reuse_grace" => self.refresh_reuse_grace = seconds(&raw)?,
            "refresh_cookie" => self.refresh_cookie = boolean(&raw)?,
            "refresh_cookie_name" => self.refresh_cookie_name = string(&raw)?,
            "refresh_cookie_path" => self.refresh_cookie_path = string(&raw)?,
            "refresh_cookie_samesite" => {
                self.refresh_cookie_samesite = match string(&raw)?.to_ascii_lowercase().as_str() {
                    "lax" => SameSite::Lax,
                    "strict" => SameSite::Strict,
                    "none" => SameSite::None,
                    _ => return Err(err("expected Lax, Strict or None")),
                }
            }
            "refresh_cookie_secure" => self.refresh_cookie_secure = boolean(&raw)?,
            "refresh_cookie_domain" => self.refresh_cookie_domain = opt(string(&raw)?),
            "csrf_trusted_origins" => self.csrf_trusted_origins = list(&raw)?,
            "refresh_reuse_detection" => self.refresh_reuse_detection = boolean(&raw)?,
            "revoke_access_on_logout" => self.revoke_access_on_logout = boolean(&raw)?,
            "jwks" => self.jwks = boolean(&raw)?,
            "jwks_max_age" => self.jwks_max_age = int(&raw)?,
            "verifying_keys" => self.verifying_keys = pem_list(&raw)?,
            "auth_header_types" => self.auth_header_types = list(&raw)?,
            "user_id_claim" => self.user_id_claim = string(&raw)?,
            "token_type_claim" => self.token_type_claim = string(&raw)?,
            "jti_claim" => self.jti_claim = string(&raw)?,
            _ => return Err(err("unknown setting")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let err = |key: &str, message: &str| SettingsError {
            key: key.into(),
            message: message.into(),
        };
        if self.access_token_lifetime <= 0 {
            return Err(err(
                "access_token_lifetime",
                "must be a positive number of seconds",
            ));
        }
        if self.refresh_token_lifetime <= 0 {
            return Err(err(
                "refresh_token_lifetime",
                "must be a positive number of seconds",
            ));
        }
        if self.auth_header_types.is_empty() {
            return Err(err(
                "auth_header_types",
                "give at least one header type, e.g. Bearer",
            ));
        }
        self.check_key_strength()?;
        self.check_beyond_simplejwt()?;
        if !self.is_hmac() {
            if self.signing_key.is_none() {
                return Err(err(
                    "signing_key",
                    "set a PEM private key for this algorithm",
                ));
            }
            if self.verifying_key.is_none() {
                return Err(err(
                    "verifying_key",
                    "set the PEM public key for this algorithm",
                ));
            }
        }
        Ok(())
    }

    /// RFC 7518 §3.2: an HMAC key MUST be at least as long as the hash
    /// output (32 bytes for HS256, 48 for HS384, 64 for HS512); a shorter
    /// one falls to an offline search from any one token. An RSA key (RS*,
    /// PS*) must have at least 2048 bits (§3.3). Refused unless
    /// `allow_weak_keys`, which only warns. (A generated key is 48 random
    /// bytes as 96 hex characters.)
    fn check_key_strength(&self) -> Result<(), SettingsError> {
        let min = match self.algorithm {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => return self.check_rsa_strength(),
            _ => return Ok(()),
        };
        let Some(key) = &self.signing_key else {
            return Ok(());
        };
        if key.len() >= min {
            return Ok(());
        }
        let what = format!(
            "{} bytes is too short for {}: an HMAC key must be at least {min} bytes (RFC 7518 §3.2), \
             or anyone holding one token can recover it offline; generate one with \
             `openssl rand -hex {min}`",
            key.len(),
            algorithm_name(self.algorithm)
        );
        if self.allow_weak_keys {
            eprintln!(
                "ferricorn-auth: warning: signing_key: {what} (accepted: allow_weak_keys is on)"
            );
            return Ok(());
        }
        Err(SettingsError {
            key: "signing_key".into(),
            message: format!("{what}; or set allow_weak_keys = true to accept it"),
        })
    }

    /// The switches beyond simplejwt that contradict each other or the
    /// algorithm: refused at start, naming the setting.
    fn check_beyond_simplejwt(&self) -> Result<(), SettingsError> {
        let err = |key: &str, message: String| {
            Err(SettingsError {
                key: key.into(),
                message,
            })
        };
        if self.refresh_reuse_detection
            && !(self.rotate_refresh_tokens && self.blacklist_after_rotation)
        {
            return err(
                "refresh_reuse_detection",
                "needs rotate_refresh_tokens = true and blacklist_after_rotation = true: \
                 reuse is a refresh token presented after it was rotated and spent"
                    .into(),
            );
        }
        if !(self.refresh_reuse_grace.is_finite() && self.refresh_reuse_grace >= 0.0) {
            return err(
                "refresh_reuse_grace",
                "must be a number of seconds of at least 0".into(),
            );
        }
        if self.refresh_cookie_samesite == SameSite::None && !self.refresh_cookie_secure {
            return err(
                "refresh_cookie_samesite",
                "None needs refresh_cookie_secure = true: browsers refuse a SameSite=None \
                 cookie without Secure; use Lax or Strict, or serve over HTTPS"
                    .into(),
            );
        }
        if !is_cookie_token(&self.refresh_cookie_name) {
            return err(
                "refresh_cookie_name",
                format!(
                    "{:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)",
                    self.refresh_cookie_name
                ),
            );
        }
        if !self.refresh_cookie_path.starts_with('/')
            || !is_cookie_attribute(&self.refresh_cookie_path)
        {
            return err(
                "refresh_cookie_path",
                format!(
                    "{:?} is not a cookie path: start it with / and leave out ; and control characters",
                    self.refresh_cookie_path
                ),
            );
        }
        if let Some(domain) = &self.refresh_cookie_domain {
            if !is_cookie_attribute(domain) || domain.contains([' ', ',']) {
                return err(
                    "refresh_cookie_domain",
                    format!("{domain:?} is not a domain, e.g. example.com"),
                );
            }
        }
        for origin in &self.csrf_trusted_origins {
            if parse_origin(origin).is_none() {
                return err(
                    "csrf_trusted_origins",
                    format!(
                        "{origin:?} is not an origin: write scheme://host[:port], e.g. https://app.example.com"
                    ),
                );
            }
        }
        if self.jwks_max_age < 0 {
            return err(
                "jwks_max_age",
                "must be a number of seconds of at least 0".into(),
            );
        }
        if self.is_hmac() {
            if self.jwks {
                return err(
                    "jwks",
                    format!(
                        "{} is an HMAC algorithm: its one key is a secret and is never published; \
                         use an asymmetric algorithm (RS256, ES256, EdDSA...) with signing_key and \
                         verifying_key, or set jwks = false",
                        algorithm_name(self.algorithm)
                    ),
                );
            }
            if !self.verifying_keys.is_empty() {
                return err(
                    "verifying_keys",
                    format!(
                        "{} is an HMAC algorithm, which verifies with signing_key alone; \
                         verifying_keys are public keys for an asymmetric algorithm",
                        algorithm_name(self.algorithm)
                    ),
                );
            }
        }
        for (i, pem) in self.verifying_keys.iter().enumerate() {
            if let Err(e) = Jwk::from_public_pem(self.algorithm, pem) {
                return err(
                    "verifying_keys",
                    format!(
                        "key {} of {}: {e}; give PEM public keys (-----BEGIN PUBLIC KEY-----)",
                        i + 1,
                        self.verifying_keys.len()
                    ),
                );
            }
        }
        if self.names_keys() {
            if let Some(Err(e)) = self
                .verifying_key
                .as_deref()
                .map(|pem| Jwk::from_public_pem(self.algorithm, pem))
            {
                return err(
                    "verifying_key",
                    format!("{e}; give the PEM public key of signing_key"),
                );
            }
        }
        Ok(())
    }

    fn check_rsa_strength(&self) -> Result<(), SettingsError> {
        let Some(bits) = self.verifying_key.as_deref().and_then(rsa_modulus_bits) else {
            // Not an RSA public key we can read: the key loader reports it.
            return Ok(());
        };
        if bits >= 2048 {
            return Ok(());
        }
        let what = format!(
            "an RSA key of {bits} bits is too weak for {}: at least 2048 (RFC 7518 §3.3); \
             generate one with `openssl genrsa -out private.pem 3072` and \
             `openssl rsa -in private.pem -pubout -out public.pem`",
            algorithm_name(self.algorithm)
        );
        if self.allow_weak_keys {
            eprintln!(
                "ferricorn-auth: warning: verifying_key: {what} (accepted: allow_weak_keys is on)"
            );
            return Ok(());
        }
        Err(SettingsError {
            key: "signing_key/verifying_key".into(),
            message: format!("{what}; or set allow_weak_keys = true to accept it"),
        })
    }

    /// Whether tokens name their key in a `kid` header (the RFC 7638
    /// thumbprint of its public key): with the JWK Set published, or with
    /// several keys to choose from.
    pub fn names_keys(&self) -> bool {
        !self.is_hmac() && (self.jwks || !self.verifying_keys.is_empty())
    }

    /// Whether the algorithm is an HMAC one (one shared secret).
    pub fn is_hmac(&self) -> bool {
        matches!(
            self.algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        )
    }

    /// The header type named in `WWW-Authenticate` (the first one).
    pub fn www_authenticate_type(&self) -> &str {
        &self.auth_header_types[0]
    }
}

/// RFC 6265's cookie-name token.
fn is_cookie_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A cookie attribute value: printable ASCII but `;`.
fn is_cookie_attribute(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

/// `scheme://host[:port]` in lower case, the form browsers send in
/// `Origin`; `None` for anything else (a path, a missing scheme...).
pub fn parse_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    if !ok(scheme, b"+-.") || !ok(rest, b"-.:[]") {
        return None;
    }
    Some(origin.to_ascii_lowercase())
}

/// PEM blocks given one after the other (or separated by commas) in one
/// string, each ending at its `-----END ...-----` line.
fn split_pem_blocks(s: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = s;
    while let Some(end) = rest.find("-----END ") {
        let close = rest[end + 9..]
            .find("-----")
            .map_or(rest.len(), |i| end + 9 + i + 5);
        let block = rest[..close].trim_matches(|c: char| c.is_whitespace() || c == ',');
        if !block.is_empty() {
            blocks.push(format!("{block}\n"));
        }
        rest = &rest[close..];
    }
    let tail = rest.trim_matches(|c: char| c.is_whitespace() || c == ',');
    if !tail.is_empty() {
        // Not PEM: kept, so that the check names it.
        blocks.push(tail.to_string());
    }
    blocks
}

/// The algorithm named as in JWT headers (`HS256`, `EdDSA`, ...).
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    Some(match name {
        "HS256" => HS256,
        "HS384" => HS384,
        "HS512" => HS512,
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "EdDSA" => EdDSA,
        _ => return None,
    })
}

/// The name of an algorithm as written in JWT headers.
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 => "HS256",
        HS384 => "HS384",
        HS512 => "HS512",
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        ES256 => "ES256",
        ES384 => "ES384",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        EdDSA => "EdDSA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let table: toml::Table = toml::from_str(
            "access_token_lifetime = 60\nrotate_refresh_tokens = true\n\
             signing_key = \"file-key-0123456789abcdef0123456789\"",
        )
        .unwrap();
        let s = Settings::load(Some(&table), |k| {
            (k == "FERRICORN_AUTH_ACCESS_TOKEN_LIFETIME").then(|| "120".to_string())
        })
        .unwrap();
        assert_eq!(s.access_token_lifetime, 120);
        assert!(s.rotate_refresh_tokens);
        assert_eq!(
            s.signing_key.as_deref(),
            Some("file-key-0123456789abcdef0123456789")
        );
        assert_eq!(s.refresh_token_lifetime, 86400);
    }

    #[test]
    fn weak_hmac_keys_are_refused_unless_allowed() {
        let load = |alg: &str, key: &str, allow: bool| {
            let (alg, key) = (alg.to_string(), key.to_string());
            Settings::load(None, move |k| match k {
                "FERRICORN_AUTH_ALGORITHM" => Some(alg.clone()),
                "FERRICORN_AUTH_SIGNING_KEY" => Some(key.clone()),
                "FERRICORN_AUTH_ALLOW_WEAK_KEYS" => allow.then(|| "true".into()),
                _ => None,
            })
        };
        let e = load("HS256", "secret123", false).unwrap_err().to_string();
        assert!(
            e.contains("signing_key")
                && e.contains("32 bytes")
                && e.contains("openssl rand -hex 32"),
            "{e}"
        );
        assert!(load("HS256", &"k".repeat(32), false).is_ok());
        assert!(load("HS384", &"k".repeat(47), false).is_err());
        assert!(load("HS384", &"k".repeat(48), false).is_ok());
        let e = load("HS512", &"k".repeat(63), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("64 bytes"), "{e}");
        assert!(load("HS256", "secret123", true).is_ok());
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_refused() {
        let strong = include_str!("../tests/keys/rsa_public.pem");
        assert_eq!(rsa_modulus_bits(strong), Some(2048));
        // A 1024-bit public key (openssl genrsa 1024 | openssl rsa -pubout).
        let weak = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC7VJTUt9Us8cKjMzEfYyjiWA4R
4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvuNMoSfm76oqFv
AhP+Zy0JrahgOwR3z5hTXIbtz3N1mrQhnoa8Ne2SZ+H7D3K4h4EmVwSHO7B3O4Hj
A5o0AbTWBazZkqdI2QIDAQAB
-----END PUBLIC KEY-----
";
        assert_eq!(rsa_modulus_bits(weak), Some(1024));
        let mut s = Settings {
            algorithm: Algorithm::RS256,
            verifying_key: Some(weak.into()),
            ..Settings::default()
        };
        let e = s.check_key_strength().unwrap_err().to_string();
        assert!(e.contains("1024 bits") && e.contains("2048"), "{e}");
        s.verifying_key = Some(strong.into());
        assert!(s.check_key_strength().is_ok());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::load(None, |k| (k == "FERRICORN_AUTH_LEEWAY").then(|| "x".into()))
            .unwrap_err();
        assert!(e.to_string().contains("FERRICORN_AUTH_LEEWAY"));
    }
}
