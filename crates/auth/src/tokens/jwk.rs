//! Public keys as JSON Web Keys (RFC 7517), named by their RFC 7638
//! thumbprint: what `GET /api/token/jwks/` publishes and what the `kid`
//! header of a token names.
//!
//! `jsonwebtoken` reads PEM keys but does not expose their parameters, and
//! its `Jwk::from_encoding_key` needs the private key, which a host that
//! keeps an old key only to verify does not have. So the public key's
//! SubjectPublicKeyInfo is read here (with `pem` and `simple_asn1`, already
//! used to measure RSA keys) for the three key types JWT algorithms use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256};
use simple_asn1::{from_der, oid, ASN1Block, OID};

use crate::compat::pyjson::{self, Object, Value};
use crate::settings::algorithm_name;

/// A public key as a JWK: the members that define it (`kty` and its
/// parameters, in RFC 7638's lexicographic order) and its thumbprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    /// The defining members, sorted by name: `[("e", ..), ("kty", "RSA"),
    /// ("n", ..)]`, `[("crv", ..), ("kty", "EC"), ("x", ..), ("y", ..)]` or
    /// `[("crv", "Ed25519"), ("kty", "OKP"), ("x", ..)]`.
    members: Vec<(&'static str, String)>,
    /// The RFC 7638 SHA-256 thumbprint, base64url: the key's `kid`.
    pub kid: String,
    /// The algorithm it verifies.
    pub alg: Algorithm,
}

impl Jwk {
    /// The JWK of the PEM public key `pem` (SPKI `PUBLIC KEY`, or PKCS#1
    /// `RSA PUBLIC KEY`) for `alg`. The error says what the key is not.
    pub fn from_public_pem(alg: Algorithm, pem: &str) -> Result<Jwk, String> {
        let members = members(alg, pem)?;
        let canonical = members
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{{{canonical}}}")));
        Ok(Jwk { members, kid, alg })
    }

    /// The key as published: its members, then `alg`, `use` and `kid`.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        for (k, v) in &self.members {
            o.insert(*k, Value::str(v.clone()));
        }
        o.insert("alg", Value::str(algorithm_name(self.alg)));
        o.insert("use", Value::str("sig"));
        o.insert("kid", Value::str(self.kid.clone()));
        Value::Object(o)
    }
}

/// A JWK Set document (`{"keys": [...]}`) of `keys`, newest first.
pub fn key_set(keys: &[Jwk]) -> String {
    let mut o = Object::new();
    o.insert(
        "keys",
        Value::Array(keys.iter().map(Jwk::to_value).collect()),
    );
    pyjson::dumps(&Value::Object(o), true)
}

fn rsa_oid() -> OID {
    oid!(1u64, 2, 840, 113_549, 1, 1, 1)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn members(alg: Algorithm, pem_text: &str) -> Result<Vec<(&'static str, String)>, String> {
    let pem = pem::parse(pem_text.trim()).map_err(|e| format!("not a PEM block: {e}"))?;
    let blocks = from_der(pem.contents()).map_err(|e| format!("not DER inside the PEM: {e}"))?;
    let (key_oid, params, bits) = match (pem.tag(), blocks.first()) {
        ("RSA PUBLIC KEY", _) => (rsa_oid(), None, pem.contents().to_vec()),
        ("PUBLIC KEY", Some(ASN1Block::Sequence(_, items))) => spki(items)?,
        (tag, _) => {
            return Err(format!(
                "a {tag:?} PEM block is not a public key; give the PUBLIC KEY block \
                 (openssl pkey -in private.pem -pubout)"
            ))
        }
    };
    let rsa = rsa_oid();
    let ec = oid!(1u64, 2, 840, 10_045, 2, 1);
    let ed25519 = oid!(1u64, 3, 101, 112);
    let wrong = |what: &str| {
        Err(format!(
            "an {what} key cannot verify {}",
            algorithm_name(alg)
        ))
    };
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            if key_oid != rsa {
                return wrong(if key_oid == ec { "EC" } else { "non-RSA" });
            }
            let inner = from_der(&bits).map_err(|e| format!("unreadable RSA key: {e}"))?;
            let Some(ASN1Block::Sequence(_, nums)) = inner.first() else {
                return Err("unreadable RSA key".into());
            };
            let (Some(ASN1Block::Integer(_, n)), Some(ASN1Block::Integer(_, e))) =
                (nums.first(), nums.get(1))
            else {
                return Err("unreadable RSA key".into());
            };
            Ok(vec![
                ("e", b64(&e.to_bytes_be().1)),
                ("kty", "RSA".into()),
                ("n", b64(&n.to_bytes_be().1)),
            ])
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            if key_oid != ec {
                return wrong("RSA or EdDSA");
            }
            let (crv, len) = match alg {
                Algorithm::ES256 => ("P-256", 32),
                _ => ("P-384", 48),
            };
            let curve = match alg {
                Algorithm::ES256 => oid!(1u64, 2, 840, 10_045, 3, 1, 7),
                _ => oid!(1u64, 3, 132, 0, 34),
            };
            if params.as_ref() != Some(&curve) {
                return Err(format!(
                    "the EC key is not on {crv}, the curve of {}",
                    algorithm_name(alg)
                ));
            }
            // An uncompressed point: 0x04 || x || y.
            if bits.len() != 1 + 2 * len || bits[0] != 4 {
                return Err("the EC point is not an uncompressed point".into());
            }
            Ok(vec![
                ("crv", crv.into()),
                ("kty", "EC".into()),
                ("x", b64(&bits[1..=len])),
                ("y", b64(&bits[1 + len..])),
            ])
        }
        Algorithm::EdDSA => {
            if key_oid != ed25519 || bits.len() != 32 {
                return wrong("other than Ed25519");
            }
            Ok(vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", b64(&bits)),
            ])
        }
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            Err("an HMAC secret is not published".into())
        }
    }
}

/// SubjectPublicKeyInfo: (algorithm OID, its OID parameter if any, the
/// key's bits).
fn spki(items: &[ASN1Block]) -> Result<(OID, Option<OID>, Vec<u8>), String> {
    let bad = || "unreadable SubjectPublicKeyInfo".to_string();
    let Some(ASN1Block::Sequence(_, alg)) = items.first() else {
        return Err(bad());
    };
    let Some(ASN1Block::ObjectIdentifier(_, key_oid)) = alg.first() else {
        return Err(bad());
    };
    let params = match alg.get(1) {
        Some(ASN1Block::ObjectIdentifier(_, p)) => Some(p.clone()),
        _ => None,
    };
    let Some(ASN1Block::BitString(_, _, bits)) = items.get(1) else {
        return Err(bad());
    };
    Ok((key_oid.clone(), params, bits.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_key_and_its_rfc7638_thumbprint() {
        // RFC 7638 §3.1's example key, as a PEM (n and e from the RFC).
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let e = "AQAB";
        let pem = rsa_pem(
            &URL_SAFE_NO_PAD.decode(n).unwrap(),
            &URL_SAFE_NO_PAD.decode(e).unwrap(),
        );
        let jwk = Jwk::from_public_pem(Algorithm::RS256, &pem).unwrap();
        assert_eq!(jwk.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let v = jwk.to_value();
        assert_eq!(
            pyjson::dumps(&v, true),
            format!("{{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"{n}\",\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"{}\"}}", jwk.kid)
        );
        // The repository's test key reads too; an RSA key refuses ES256.
        let repo = include_str!("../../tests/keys/rsa_public.pem");
        assert!(Jwk::from_public_pem(Algorithm::PS256, repo).is_ok());
        assert!(Jwk::from_public_pem(Algorithm::ES256, repo).is_err());
        assert!(Jwk::from_public_pem(Algorithm::RS256, "garbage").is_err());
    }

    /// A PKCS#1 `RSA PUBLIC KEY` PEM of (n, e).
    fn rsa_pem(n: &[u8], e: &[u8]) -> String {
        use simple_asn1::{to_der, BigInt, BigUint};
        let int = |b: &[u8]| ASN1Block::Integer(0, BigInt::from(BigUint::from_bytes_be(b)));
        let seq = ASN1Block::Sequence(0, vec![int(n), int(e)]);
        pem::encode(&pem::Pem::new("RSA PUBLIC KEY", to_der(&seq).unwrap()))
    }
}
