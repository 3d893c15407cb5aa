#!/usr/bin/env python3
"""Lethe's stream tag of a subject, for stream processors (docs/notifications.md).

The tag is SipHash-2-4 of the subject's canonical bytes under the first 16 bytes of the state
folder's `stream.key` file (64 hex digits), printed as 16 lowercase hex digits: the members of the
Redis set that `lethe serve` keeps (`stream: {redis, key}`) and the lines of `lethe deletions`.

  stream_tag.py STREAM_KEY_FILE SUBJECT [PART...]     (several parts: a composite subject)
"""
import struct
import sys

MASK = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(key16: bytes, data: bytes) -> int:
    """SipHash-2-4 (Aumasson & Bernstein 2012): a 64-bit value; the key is 16 bytes."""
    k0, k1 = struct.unpack("<QQ", key16)
    v0, v1 = 0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1
    v2, v3 = 0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & MASK; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & MASK; v3 = _rotl(v3, 16); v3 ^= v2
            v0 = (v0 + v3) & MASK; v3 = _rotl(v3, 21); v3 ^= v0
            v2 = (v2 + v1) & MASK; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)

    tail = len(data) & 7
    for (m,) in struct.iter_unpack("<Q", data[: len(data) - tail]):
        v3 ^= m; rounds(2); v0 ^= m
    b = (len(data) & 0xFF) << 56
    for i, c in enumerate(data[len(data) - tail:]):
        b |= c << (8 * i)
    v3 ^= b; rounds(2); v0 ^= b
    v2 ^= 0xFF; rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def stream_key(path: str) -> bytes:
    """The SipHash key: the first 16 bytes of the hex in `stream.key`."""
    return bytes.fromhex(open(path).read().strip())[:16]


def canonical(parts) -> bytes:
    """A subject's canonical bytes: the UTF-8 of its value as written (a JSON string's unescaped
    content, a number's literal text); a composite subject's parts joined by 0x1F."""
    return b"\x1f".join(p.encode("utf-8") for p in parts)


def stream_tag(key16: bytes, *parts: str) -> str:
    return "%016x" % siphash24(key16, canonical(parts))


if __name__ == "__main__":
    print(stream_tag(stream_key(sys.argv[1]), *sys.argv[2:]))
