#!/usr/bin/env python3
"""A stand-in OpenID Connect provider for Lethe's OIDC tests: PyJWT signs, `cryptography` makes the keys.

Usage: jwt_issuer.py FOLDER

Makes an RSA key (kid rsa-1) and an EC P-256 key (kid ec-1), writes their public keys to FOLDER/jwks.json
(atomically, by rename), prints one ready line {"jwks": PATH, "kids": [...]}, then answers one JSON line
on standard output for each JSON line on standard input, until standard input closes:

  {"op": "mint", "kid": K, "alg": A, "claims": {...}, "header": {...}}  -> {"token": T}   (PyJWT;
      "as_kid": K2 signs with K's key but names K2 in the header)
  {"op": "add", "kid": K, "kty": "RSA"|"EC"}  -> {"ok": true}   a new key, published in the JWKS file
  {"op": "remove", "kid": K}                  -> {"ok": true}   unpublished (still usable to mint)
  {"op": "publish", "jwks": {...}}            -> {"ok": true}   the JWKS file replaced as given
  {"op": "forge", "kind": "none"|"hs256-pem"|"hs256-jwk", "kid": K, "claims": {...}} -> {"token": T}
      unsigned, or HMAC-SHA256 with the RSA key's public PEM (or its JWK JSON) as the secret: the
      algorithm-confusion attack a verifier must refuse (built by hand: PyJWT refuses to sign these).
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(kty: str):
    if kty == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kty == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown kty {kty}")


def public_jwk(kid: str, key) -> dict:
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
    else:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
    jwk["kid"] = kid
    jwk["use"] = "sig"
    return jwk


def main() -> None:
    folder = sys.argv[1]
    path = os.path.join(folder, "jwks.json")
    keys = {"rsa-1": new_key("RSA"), "ec-1": new_key("EC")}
    published = ["rsa-1", "ec-1"]

    def write(document: dict) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(document, f)
        os.replace(tmp, path)

    def publish() -> None:
        write({"keys": [public_jwk(k, keys[k]) for k in published]})

    publish()
    print(json.dumps({"jwks": path, "kids": published}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req["op"]
        if op == "mint":
            header = dict(req.get("header", {}))
            header["kid"] = req.get("as_kid", req["kid"])
            token = jwt.encode(req["claims"], keys[req["kid"]], algorithm=req["alg"], headers=header)
            reply = {"token": token}
        elif op == "add":
            keys[req["kid"]] = new_key(req["kty"])
            published.append(req["kid"])
            publish()
            reply = {"ok": True}
        elif op == "remove":
            published.remove(req["kid"])
            publish()
            reply = {"ok": True}
        elif op == "publish":
            write(req["jwks"])
            reply = {"ok": True}
        elif op == "forge":
            kind, kid = req["kind"], req["kid"]
            alg = "none" if kind == "none" else "HS256"
            head = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
            body = b64url(json.dumps(req["claims"]).encode())
            signing_input = f"{head}.{body}".encode()
            if kind == "none":
                signature = ""
            else:
                pub = keys[kid].public_key()
                if kind == "hs256-pem":
                    secret = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                else:
                    secret = json.dumps(public_jwk(kid, keys[kid])).encode()
                signature = b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
            reply = {"token": f"{head}.{body}.{signature}"}
        else:
            reply = {"error": f"unknown op {op}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
