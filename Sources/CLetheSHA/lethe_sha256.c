// SHA-256 (FIPS 180-4) and HMAC (RFC 2104) for subject keys: a portable
// compression function, and one using the x86 SHA extensions when the CPU has them.
#include "lethe_sha256.h"
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t s[8], const uint8_t *p, size_t blocks) {
    while (blocks--) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++) {
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        }
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
        for (int i = 0; i < 64; i++) {
            uint32_t S1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = h + S1 + ch + K[i] + w[i];
            uint32_t S0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + maj;
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
        p += 64;
    }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

__attribute__((target("sha,sse4.1,ssse3")))
static void compress_sha_ni(uint32_t s[8], const uint8_t *p, size_t blocks) {
    const __m128i shuf = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&s[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&s[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);          // CDAB
    st1 = _mm_shuffle_epi32(st1, 0x1B);          // EFGH
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);  // ABEF
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);       // CDGH
    while (blocks--) {
        __m128i abef = st0, cdgh = st1;
        __m128i w[16];
        for (int i = 0; i < 16; i++) {
            if (i < 4) {
                w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), shuf);
            } else {
                __m128i t = _mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]), _mm_alignr_epi8(w[i - 1], w[i - 2], 4));
                w[i] = _mm_sha256msg2_epu32(t, w[i - 1]);
            }
            __m128i msg = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&K[4 * i]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
        }
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
        p += 64;
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);          // FEBA
    st1 = _mm_shuffle_epi32(st1, 0xB1);          // DCHG
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);       // DCBA
    st1 = _mm_alignr_epi8(st1, tmp, 8);          // HGFE
    _mm_storeu_si128((__m128i *)&s[0], st0);
    _mm_storeu_si128((__m128i *)&s[4], st1);
}

/// One SHA-256 compression of two independent blocks, given as message words (w*0..3, big-endian words
/// in lanes) and states in the SHA extensions' ABEF/CDGH form, their rounds interleaved.
#define LETHE_X2_ROUNDS(a0, a1, b0, b1, wa, wb)                                                               \
    do {                                                                                                      \
        const __m128i sa0_ = a0, sa1_ = a1, sb0_ = b0, sb1_ = b1;                                             \
        for (int i = 0; i < 16; i++) {                                                                        \
            if (i >= 4) {                                                                                     \
                __m128i t = _mm_add_epi32(_mm_sha256msg1_epu32(wa[i - 4], wa[i - 3]), _mm_alignr_epi8(wa[i - 1], wa[i - 2], 4)); \
                wa[i] = _mm_sha256msg2_epu32(t, wa[i - 1]);                                                   \
                __m128i u = _mm_add_epi32(_mm_sha256msg1_epu32(wb[i - 4], wb[i - 3]), _mm_alignr_epi8(wb[i - 1], wb[i - 2], 4)); \
                wb[i] = _mm_sha256msg2_epu32(u, wb[i - 1]);                                                   \
            }                                                                                                 \
            const __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);                                    \
            __m128i ma = _mm_add_epi32(wa[i], k), mb = _mm_add_epi32(wb[i], k);                               \
            a1 = _mm_sha256rnds2_epu32(a1, a0, ma);                                                           \
            b1 = _mm_sha256rnds2_epu32(b1, b0, mb);                                                           \
            ma = _mm_shuffle_epi32(ma, 0x0E);                                                                 \
            mb = _mm_shuffle_epi32(mb, 0x0E);                                                                 \
            a0 = _mm_sha256rnds2_epu32(a0, a1, ma);                                                           \
            b0 = _mm_sha256rnds2_epu32(b0, b1, mb);                                                           \
        }                                                                                                     \
        a0 = _mm_add_epi32(a0, sa0_);                                                                         \
        a1 = _mm_add_epi32(a1, sa1_);                                                                         \
        b0 = _mm_add_epi32(b0, sb0_);                                                                         \
        b1 = _mm_add_epi32(b1, sb1_);                                                                         \
    } while (0)

/// The padded block of a message of up to 55 bytes (after a 64-byte key block) as four vectors of
/// big-endian message words. `readable`: the 64 bytes from `msg` may be read (they lie in the
/// caller's buffer); the bytes past the message are masked off. Otherwise the message is copied first.
__attribute__((target("sha,sse4.1,ssse3")))
static inline void padded_words(const uint8_t *msg, size_t len, int readable, __m128i w[4]) {
    const __m128i shuf = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    uint8_t copy[64];
    const uint8_t *p = msg;
    if (!readable) {
        memset(copy, 0, 64);
        if (len) memcpy(copy, msg, len);
        p = copy;
    }
    const __m128i lenv = _mm_set1_epi8((char)len);
    const __m128i top = _mm_set1_epi8((char)0x80);
    __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int j = 0; j < 4; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * j));
        v = _mm_and_si128(v, _mm_cmpgt_epi8(lenv, idx));                       // bytes before len
        v = _mm_or_si128(v, _mm_and_si128(_mm_cmpeq_epi8(idx, lenv), top));    // 0x80 at len
        w[j] = _mm_shuffle_epi8(v, shuf);
        idx = _mm_add_epi8(idx, sixteen);
    }
    w[3] = _mm_insert_epi32(w[3], (int)((64 + len) * 8), 3);  // bit length (bytes 56..59 are zero: len <= 55)
}

/// ABEF/CDGH (the round instructions' form) to the state words A..D and E..H in lanes 0..3.
#define LETHE_TO_WORDS(s0, s1, abcd, efgh)                                                                    \
    do {                                                                                                      \
        __m128i t_ = _mm_shuffle_epi32(s0, 0x1B);                                                             \
        __m128i u_ = _mm_shuffle_epi32(s1, 0xB1);                                                             \
        abcd = _mm_blend_epi16(t_, u_, 0xF0);                                                                 \
        efgh = _mm_alignr_epi8(u_, t_, 8);                                                                    \
    } while (0)

/// HMACs of two messages of up to 55 bytes, both compressions of each interleaved with the other's:
/// the inner digest goes to the outer block as message words (no bytes in between).
__attribute__((target("sha,sse4.1,ssse3")))
static void hmac_x2(const __m128i st[4], const uint8_t *ma, size_t la, int ra, const uint8_t *mb, size_t lb, int rb,
                    uint8_t *oa, uint8_t *ob) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i wa[16], wb[16];
    padded_words(ma, la, ra, wa);
    padded_words(mb, lb, rb, wb);
    __m128i a0 = st[0], a1 = st[1], b0 = st[0], b1 = st[1];
    LETHE_X2_ROUNDS(a0, a1, b0, b1, wa, wb);
    LETHE_TO_WORDS(a0, a1, wa[0], wa[1]);
    LETHE_TO_WORDS(b0, b1, wb[0], wb[1]);
    // The outer block: the 32-byte inner digest, 0x80, zeros, the bit length (64 + 32) * 8.
    wa[2] = wb[2] = _mm_setr_epi32((int)0x80000000u, 0, 0, 0);
    wa[3] = wb[3] = _mm_setr_epi32(0, 0, 0, 768);
    a0 = st[2], a1 = st[3], b0 = st[2], b1 = st[3];
    LETHE_X2_ROUNDS(a0, a1, b0, b1, wa, wb);
    __m128i x, y;
    LETHE_TO_WORDS(a0, a1, x, y);
    _mm_storeu_si128((__m128i *)oa, _mm_shuffle_epi8(x, bswap));
    _mm_storeu_si128((__m128i *)(oa + 16), _mm_shuffle_epi8(y, bswap));
    LETHE_TO_WORDS(b0, b1, x, y);
    _mm_storeu_si128((__m128i *)ob, _mm_shuffle_epi8(x, bswap));
    _mm_storeu_si128((__m128i *)(ob + 16), _mm_shuffle_epi8(y, bswap));
}

/// A state's words in the round instructions' ABEF/CDGH form.
__attribute__((target("sha,sse4.1,ssse3")))
static void to_rounds_form(const uint32_t s[8], __m128i *s0, __m128i *s1) {
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[0]), 0xB1);
    __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[4]), 0x1B);
    *s0 = _mm_alignr_epi8(t, u, 8);
    *s1 = _mm_blend_epi16(u, t, 0xF0);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void hmac_many_sha_ni(const lethe_hmac_sha256_key *k, const uint8_t *bytes, const ptrdiff_t *offsets, size_t n, uint8_t *out) {
    __m128i st[4];
    to_rounds_form(k->inner, &st[0], &st[1]);
    to_rounds_form(k->outer, &st[2], &st[3]);
    // Every message lies in the caller's buffer, so bytes up to the furthest message end may be read.
    ptrdiff_t end = 0;
    for (size_t i = 0; i < n; i++) if (offsets[i + 1] > end) end = offsets[i + 1];
    size_t waiting = n;  // a short message waiting for a partner
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)(offsets[i + 1] - offsets[i]);
        if (len > 55) {
            lethe_hmac_sha256(k, bytes + offsets[i], len, out + 32 * i);
            continue;
        }
        if (waiting == n) {
            waiting = i;
            continue;
        }
        size_t j = waiting;
        waiting = n;
        hmac_x2(st, bytes + offsets[j], (size_t)(offsets[j + 1] - offsets[j]), offsets[j] + 64 <= end,
                bytes + offsets[i], len, offsets[i] + 64 <= end, out + 32 * j, out + 32 * i);
    }
    if (waiting != n) lethe_hmac_sha256(k, bytes + offsets[waiting], (size_t)(offsets[waiting + 1] - offsets[waiting]), out + 32 * waiting);
}

static int detect_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ssse3 && sse41 && ((b >> 29) & 1);
}
#endif

typedef void (*compress_fn)(uint32_t s[8], const uint8_t *p, size_t blocks);
static compress_fn chosen = 0;
/// Tests: the portable code on this thread only (the rest of the process keeps the detected path).
static _Thread_local int portable_here = 0;

static compress_fn compressor(void) {
    if (__builtin_expect(portable_here, 0)) return compress_portable;
    compress_fn f = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (f) return f;
#if defined(__x86_64__)
    f = detect_sha_ni() ? compress_sha_ni : compress_portable;
#else
    f = compress_portable;
#endif
    __atomic_store_n(&chosen, f, __ATOMIC_RELEASE);
    return f;
}

int lethe_sha256_uses_sha_ni(void) { return compressor() != compress_portable; }
void lethe_sha256_portable_on_this_thread(int on) { portable_here = on != 0; }

/// Finishes a hash whose state has absorbed `prefix_len` bytes in whole blocks.
static void finish(uint32_t s[8], const uint8_t *msg, size_t len, uint64_t prefix_len, uint8_t out[32]) {
    compress_fn f = compressor();
    size_t whole = len / 64;
    if (whole) f(s, msg, whole);
    uint8_t last[128];
    size_t rest = len - whole * 64;
    memcpy(last, msg + whole * 64, rest);
    last[rest] = 0x80;
    size_t total = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(last + rest + 1, 0, total - rest - 1);
    uint64_t bits = (prefix_len + len) * 8;
    for (int i = 0; i < 8; i++) last[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    f(s, last, total / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s[i] >> 24); out[4 * i + 1] = (uint8_t)(s[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s[i] >> 8); out[4 * i + 3] = (uint8_t)s[i];
    }
}

void lethe_sha256(const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint32_t s[8];
    memcpy(s, IV, sizeof s);
    finish(s, msg, len, 0, out);
}

void lethe_hmac_sha256_init(lethe_hmac_sha256_key *k, const uint8_t *key, size_t key_len) {
    uint8_t block[64] = {0};
    if (key_len > 64) lethe_sha256(key, key_len, block); else memcpy(block, key, key_len);
    uint8_t pad[64];
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    memcpy(k->inner, IV, sizeof k->inner);
    compressor()(k->inner, pad, 1);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    memcpy(k->outer, IV, sizeof k->outer);
    compressor()(k->outer, pad, 1);
}

void lethe_hmac_sha256(const lethe_hmac_sha256_key *k, const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint32_t s[8];
    uint8_t inner[32];
    memcpy(s, k->inner, sizeof s);
    finish(s, msg, len, 64, inner);
    memcpy(s, k->outer, sizeof s);
    finish(s, inner, 32, 64, out);
}

void lethe_hmac_sha256_many(const lethe_hmac_sha256_key *k, const uint8_t *bytes, const ptrdiff_t *offsets, size_t n, uint8_t *out) {
#if defined(__x86_64__)
    if (compressor() == compress_sha_ni) {
        hmac_many_sha_ni(k, bytes, offsets, n, out);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) lethe_hmac_sha256(k, bytes + offsets[i], (size_t)(offsets[i + 1] - offsets[i]), out + 32 * i);
}
