"""The relying party of `tests/jwks.rs`: PyJWT, as another service would use
it, verifies ferricorn-auth's tokens from its published JWK Set alone.

    jwks_verify.py verify URL ALG PUBLIC_PEM ACCESS REFRESH
        Fetches the JWK Set at URL with jwt.PyJWKClient, picks each token's
        key by its kid and decodes it (signature, exp); prints JSON: the RFC
        7638 thumbprint of PUBLIC_PEM computed here, and for each token its
        header kid, the kid of the JWK that verified it and its claims.
    jwks_verify.py thumbprint ALG PUBLIC_PEM...
        Prints the RFC 7638 thumbprint of each key, one a line.
    jwks_verify.py forge ALG PRIVATE_PEM KID TOKEN
        Prints TOKEN's claims signed again with PRIVATE_PEM, header kid KID.

Any failure (a token PyJWT refuses, a kid the set lacks) is an exception
and a non-zero exit.
"""

import base64
import hashlib
import json
import sys

import jwt
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

FAMILY = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}
# RFC 7638 §3.2: the required members of each key type, and only those.
REQUIRED = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(alg, pem_path):
    with open(pem_path, "rb") as f:
        key = load_pem_public_key(f.read())
    jwk = FAMILY[alg].to_jwk(key, as_dict=True)
    members = {m: jwk[m] for m in REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def verify(url, alg, public_pem, access, refresh):
    client = jwt.PyJWKClient(url, cache_jwk_set=False)
    out = {"thumbprint": thumbprint(alg, public_pem), "tokens": {}}
    for name, token in (("access", access), ("refresh", refresh)):
        signing = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, signing.key, algorithms=[alg], options={"verify_aud": False}
        )
        out["tokens"][name] = {
            "kid": jwt.get_unverified_header(token).get("kid"),
            "jwk_kid": signing.key_id,
            "claims": claims,
        }
    print(json.dumps(out))


def thumbprints(alg, *public_pems):
    for pem in public_pems:
        print(thumbprint(alg, pem))


def forge(alg, private_pem, kid, token):
    claims = jwt.decode(token, options={"verify_signature": False})
    with open(private_pem, "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    print(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))


if __name__ == "__main__":
    {"verify": verify, "thumbprint": thumbprints, "forge": forge}[sys.argv[1]](*sys.argv[2:])
