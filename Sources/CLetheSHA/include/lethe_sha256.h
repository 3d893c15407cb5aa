#ifndef LETHE_SHA256_H
#define LETHE_SHA256_H
#include <stddef.h>
#include <stdint.h>

/// HMAC-SHA-256 with the key already absorbed: the SHA-256 states after the
/// inner (key XOR ipad) and outer (key XOR opad) blocks.
typedef struct {
    uint32_t inner[8];
    uint32_t outer[8];
} lethe_hmac_sha256_key;

/// Absorbs a key (any length; longer than 64 bytes is hashed first, as HMAC says).
void lethe_hmac_sha256_init(lethe_hmac_sha256_key *k, const uint8_t *key, size_t key_len);

/// HMAC-SHA-256 of `msg` under a prepared key; writes 32 bytes to `out`.
void lethe_hmac_sha256(const lethe_hmac_sha256_key *k, const uint8_t *msg, size_t len, uint8_t out[32]);

/// HMAC-SHA-256 of `n` messages stored back to back (message i is bytes[offsets[i]..<offsets[i+1]]),
/// 32 bytes each to `out` in order. With the SHA extensions, messages of up to 55 bytes are hashed
/// two at a time, their compressions interleaved (about the time of one).
void lethe_hmac_sha256_many(const lethe_hmac_sha256_key *k, const uint8_t *bytes, const ptrdiff_t *offsets, size_t n, uint8_t *out);

/// Plain SHA-256 (for tests).
void lethe_sha256(const uint8_t *msg, size_t len, uint8_t out[32]);

/// 1 when the SHA extensions are used (on this thread), 0 for the portable code.
/// `portable_on_this_thread(1)` (tests) switches the calling thread to the portable code until
/// `portable_on_this_thread(0)`; other threads keep the path detected for the machine.
int lethe_sha256_uses_sha_ni(void);
void lethe_sha256_portable_on_this_thread(int on);

#endif
