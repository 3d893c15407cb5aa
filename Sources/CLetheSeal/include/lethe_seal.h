// Crypto-shredding's per-value hot path (issue 15, docs/crypto-shredding.md): seals and opens one
// value in the `lethe:v1:` text form — base64url (no padding) of key id (8) ‖ nonce (12) ‖
// AES-256-GCM ciphertext of kind byte ‖ value ‖ tag (16) — with a key prepared once per subject,
// writing straight into the caller's buffer. AES-256-GCM (NIST SP 800-38D) is this file's own when the
// CPU has AES-NI, PCLMULQDQ, SSSE3 and SSE4.1 (chosen at run time): CTR and GHASH stitched for short
// values (the tag's mask and the first three counter blocks in one interleaved AES pass, the padded
// associated data, ciphertext and lengths hashed as one run of blocks, four per reduction with H^4..H^1),
// and the tag checked before anything is decrypted. Without those instructions (or when asked), OpenSSL
// libcrypto's EVP interface. Same bytes either way; byte-compatible with swift-crypto's AES.GCM.
#ifndef LETHE_SEAL_H
#define LETHE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A data key prepared for sealing and opening (AES key schedule and H^1..H^4). Not thread-safe.
typedef struct lethe_seal_key lethe_seal_key;

/// `lethe_open` results below zero.
enum {
    /// Not `lethe:v1:` + base64url, or shorter than the smallest payload.
    LETHE_OPEN_FORMAT = -1,
    /// Sealed under another key id (`key_id_out` holds it).
    LETHE_OPEN_OTHER_KEY = -2,
    /// The tag does not verify: altered, or bound to another dataset, field or subject.
    LETHE_OPEN_FAILED = -3,
    /// No memory for a large value's scratch buffer.
    LETHE_OPEN_NOMEM = -4,
};

/// 1 when the CPU has AES-NI and PCLMULQDQ (the AES-NI route), else 0 (OpenSSL's EVP route).
int lethe_seal_uses_aesni(void);

/// A new key (unprepared). `use_evp`: take OpenSSL's EVP route even when AES-NI is there (tests).
lethe_seal_key *lethe_seal_key_new(int use_evp);
void lethe_seal_key_free(lethe_seal_key *key);
/// Prepares `key` for a 32-byte AES-256 key. 1 on success.
int lethe_seal_key_set(lethe_seal_key *key, const uint8_t bytes[32]);

/// Overwrites `key`'s prepared key (round keys and GHASH powers, or the EVP contexts' keys) and marks
/// it unprepared: sealing and opening with it fail until `lethe_seal_key_set`.
void lethe_seal_key_wipe(lethe_seal_key *key);

/// The length of the text form of a value of `value_len` bytes (`lethe:v1:` included).
size_t lethe_seal_text_len(size_t value_len);

/// Seals `kind` ‖ `value` with `nonce`; the associated data is `aad_prefix` ‖ `aad_tail` (the subject
/// key's 32 bytes ‖ the key id's 8; the key id is also the payload's first 8 bytes). Writes the text
/// form (`lethe_seal_text_len(value_len)` bytes) at `out`; returns its length, or -1 (no memory).
long lethe_seal(lethe_seal_key *key, const uint8_t nonce[12], const uint8_t *aad_prefix, size_t prefix_len, const uint8_t aad_tail[40],
                uint8_t kind, const uint8_t *value, size_t value_len, uint8_t *out);

/// Opens a text form (`lethe:v1:` included). Returns the value's length with its kind byte in
/// `*kind` and its bytes at `out` (room for `text_len` bytes), or a `LETHE_OPEN_…` code. Nothing of
/// the plaintext is left at `out` when the tag does not verify.
long lethe_open(lethe_seal_key *key, const uint8_t *text, size_t text_len, const uint8_t *aad_prefix, size_t prefix_len,
                const uint8_t aad_tail[40], uint8_t *kind, uint8_t key_id_out[8], uint8_t *out);

/// base64url without padding, as the text form writes it: SSSE3 (16 characters a step) when the CPU
/// has it, chosen at run time; the scalar code otherwise and for the last few characters. 1 when the
/// SSSE3 route is taken.
int lethe_b64_uses_simd(void);
/// Encodes `n` bytes at `out` (room for n / 3 * 4 + 3 characters); returns the characters written.
/// `route`: -1 as the text form does, 0 the scalar code only, 1 SSSE3 when the CPU has it (tests).
size_t lethe_b64url_encode(const uint8_t *in, size_t n, uint8_t *out, int route);
/// Decodes `n` characters (alphabet only, no padding, length not 1 mod 4, leftover bits zero) into
/// `out` (`room` >= n / 4 * 3 + 3 bytes); returns the bytes written, -1 when refused, -2 when `room`
/// is too small. `route` as for `lethe_b64url_encode`.
long lethe_b64url_decode(const uint8_t *in, size_t n, uint8_t *out, size_t room, int route);

/// Asks the CPU to bring the cache line at `p` in (a hint; no effect on the program's meaning).
static inline void lethe_prefetch(const void *p) { __builtin_prefetch(p); }

/// Fills `buffer` from the kernel's CSPRNG (getrandom(2)); 0, or an errno value.
int lethe_random_fill(uint8_t *buffer, size_t count);

// MARK: Nonces

enum {
    /// Nonces made per refill of a `lethe_nonces` buffer (4,080 bytes: 255 AES blocks).
    LETHE_NONCES_PER_REFILL = 340,
};

/// One stream's 96-bit GCM nonces (docs/crypto-shredding.md, "Nonces"): AES-256 in counter mode under a
/// key drawn from getrandom(2) (a new key and counter every 4,096 refills), 340 nonces a refill, each
/// nonce 12 bytes of keystream used once. Kept in its own mapping marked `MADV_WIPEONFORK`: a forked
/// child finds it zeroed and draws from the kernel instead of repeating its parent's nonces. Without
/// AES-NI or without `MADV_WIPEONFORK`, every refill is drawn from getrandom(2). Not thread-safe.
typedef struct lethe_nonces {
    /// Byte offset of the next unused nonce in `data`.
    uint32_t next;
    /// Nonzero once `data` holds nonces; zero in a forked child (the mapping is wiped on fork).
    uint32_t filled;
    /// How refills are made and where `n` lives (lethe_seal.c), refills since the last seed.
    uint32_t mode, refills;
    /// The nonces (12 × LETHE_NONCES_PER_REFILL bytes), then the generator's counter and round keys.
    uint8_t data[];
} lethe_nonces;

/// A new nonce source (NULL when no memory). `kernel_only`: draw every refill from getrandom(2) (tests).
lethe_nonces *lethe_nonces_new(int kernel_only);
/// Wipes and frees `n`.
void lethe_nonces_free(lethe_nonces *n);
/// 1 when `n` makes its nonces with AES-256-CTR in user space, 0 when it draws them from the kernel.
int lethe_nonces_user_space(const lethe_nonces *n);
/// Refills `n`'s buffer and returns its first nonce; NULL when getrandom(2) fails (`errno` set).
const uint8_t *lethe_nonces_refill(lethe_nonces *n);

/// The next nonce's 12 bytes (valid until the next call); NULL when getrandom(2) fails (`errno` set).
static inline const uint8_t *lethe_nonce_next(lethe_nonces *n) {
    uint32_t at = n->next;
    if (__builtin_expect(at < 12 * LETHE_NONCES_PER_REFILL && n->filled, 1)) {
        n->next = at + 12;
        return n->data + at;
    }
    return lethe_nonces_refill(n);
}

#ifdef __cplusplus
}
#endif
#endif
