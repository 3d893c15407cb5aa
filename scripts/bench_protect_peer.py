#!/usr/bin/env python3
"""The peer of `lethe-bench protect` (issue 15): Python `cryptography`'s AESGCM doing Lethe's per-value
work on the same JSON Lines stream, one thread.

    bench_protect_peer.py EVENTS.jsonl SUBJECTS

For each record: json.loads, then for `user.email` and `ip`: a per-subject AES-256-GCM key (made once,
kept in a dict), a 12-byte nonce from a batch of os.urandom, the associated data of Lethe's format
(`lethe:v1`, dataset and field with 4-byte lengths, a 32-byte subject key, an 8-byte key id), the
kind byte + value encrypted, `lethe:v1:` + base64url(key id ‖ nonce ‖ ciphertext ‖ tag), json.dumps.
Also the encryption loop alone (values pre-extracted) and the decryption loop alone. Prints one JSON
object: MB/s of the input for each (CPU time of this process).
"""
import base64, hashlib, json, os, struct, sys, time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def aad_prefix(dataset, field):
    d, f = dataset.encode(), field.encode()
    return b"lethe:v1" + struct.pack(">I", len(d)) + d + struct.pack(">I", len(f)) + f


def main():
    path, subjects = sys.argv[1], int(sys.argv[2])
    data = open(path, "rb").read()
    lines = data.splitlines()
    mb = len(data) / 1e6
    pre = {"user.email": aad_prefix("events", "user.email"), "ip": aad_prefix("events", "ip")}
    keys = {}

    def key_of(uid):
        k = keys.get(uid)
        if k is None:
            sk = hashlib.sha256(b"s" + uid.encode()).digest()
            k = keys[uid] = (AESGCM(os.urandom(32)), sk, os.urandom(8))
        return k

    nonces = bytearray()

    def nonce():
        nonlocal nonces
        if len(nonces) < 12:
            nonces = bytearray(os.urandom(3072))
        n = bytes(nonces[:12])
        del nonces[:12]
        return n

    def seal(k, field, kind, value):
        g, sk, kid = k
        n = nonce()
        ct = g.encrypt(n, kind + value, pre[field] + sk + kid)
        return "lethe:v1:" + base64.urlsafe_b64encode(kid + n + ct).rstrip(b"=").decode()

    # Keys made first (Lethe's figure is with keys cached).
    for line in lines:
        key_of(json.loads(line)["user"]["id"])

    t0 = time.process_time()
    out = []
    for line in lines:
        r = json.loads(line)
        k = key_of(r["user"]["id"])
        r["user"]["email"] = seal(k, "user.email", b"s", r["user"]["email"].encode())
        r["ip"] = seal(k, "ip", b"s", r["ip"].encode())
        out.append(json.dumps(r, separators=(",", ":")))
    t_records = time.process_time() - t0

    values = []
    for line in lines:
        r = json.loads(line)
        k = key_of(r["user"]["id"])
        values.append((k, "user.email", r["user"]["email"].encode()))
        values.append((k, "ip", r["ip"].encode()))
    t0 = time.process_time()
    sealed = [seal(k, f, b"s", v) for (k, f, v) in values]
    t_encrypt = time.process_time() - t0

    t0 = time.process_time()
    for (k, f, _), s in zip(values, sealed):
        g, sk, kid = k
        raw = base64.urlsafe_b64decode(s[9:] + "=" * (-len(s[9:]) % 4))
        g.decrypt(raw[8:20], raw[20:], pre[f] + sk + raw[:8])
    t_decrypt = time.process_time() - t0

    import cryptography

    print(json.dumps({
        "records_mbs": mb / t_records, "encrypt_only_mbs": mb / t_encrypt, "decrypt_only_mbs": mb / t_decrypt,
        "values": len(values), "python": sys.version.split()[0] + ", cryptography " + cryptography.__version__,
    }))


if __name__ == "__main__":
    main()
