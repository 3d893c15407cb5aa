// See include/lethe_seal.h. AES-256-GCM per NIST SP 800-38D: this file's own on AES-NI + PCLMULQDQ, OpenSSL
// libcrypto's EVP interface otherwise; the text form (base64url) and the CSPRNG fill.
#include "lethe_seal.h"
#include "b64_pairs.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/types.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "b64_pairs assumes a little-endian target"
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define LETHE_HAVE_AESNI_CODE 1
#endif

static const uint8_t prefix[9] = {'l', 'e', 't', 'h', 'e', ':', 'v', '1', ':'};
enum { KEY_ID = 8, NONCE = 12, TAG = 16, TAIL = 40, SMALL = 1024 };

// MARK: AES-256-GCM with AES-NI and PCLMULQDQ (NIST SP 800-38D), for short values in one pass

#ifdef LETHE_HAVE_AESNI_CODE
#define LETHE_TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3")))

// A prepared key: the 15 round keys, and H, H^2, H^3, H^4 (H = AES_K(0^128)) in the byte-reversed
// domain GHASH is computed in (each 16-byte block reversed, so that carry-less multiplication by
// PCLMULQDQ followed by a one-bit shift and the reduction below is multiplication in GF(2^128)).
typedef struct {
    __m128i rk[15];
    __m128i h[4];  // h[i] = H^(i+1)
} gcm_key;

// Each 32-bit word of `a` XORed with every word below it (the key schedule's running XOR).
LETHE_TARGET static inline __m128i running_xor(__m128i a) {
    __m128i t = _mm_slli_si128(a, 4);
    a = _mm_xor_si128(a, t);
    t = _mm_slli_si128(t, 4);
    a = _mm_xor_si128(a, t);
    t = _mm_slli_si128(t, 4);
    return _mm_xor_si128(a, t);
}

LETHE_TARGET static inline __m128i expand_even(__m128i a, __m128i assist) {
    return _mm_xor_si128(running_xor(a), _mm_shuffle_epi32(assist, 0xff));
}

LETHE_TARGET static inline __m128i expand_odd(__m128i a, __m128i b) {
    __m128i assist = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa);
    return _mm_xor_si128(running_xor(b), assist);
}

// FIPS 197 key expansion for Nk = 8 (15 round keys), with AESKEYGENASSIST.
LETHE_TARGET static void aes256_expand(__m128i rk[15], const uint8_t key[32]) {
    __m128i a = _mm_loadu_si128((const __m128i *)key), b = _mm_loadu_si128((const __m128i *)(key + 16));
    rk[0] = a;
    rk[1] = b;
#define LETHE_ROUND_PAIR(i, rcon)                             \
    a = expand_even(a, _mm_aeskeygenassist_si128(b, rcon)); \
    rk[i] = a;                                              \
    b = expand_odd(a, b);                                   \
    rk[i + 1] = b;
    LETHE_ROUND_PAIR(2, 0x01)
    LETHE_ROUND_PAIR(4, 0x02)
    LETHE_ROUND_PAIR(6, 0x04)
    LETHE_ROUND_PAIR(8, 0x08)
    LETHE_ROUND_PAIR(10, 0x10)
    LETHE_ROUND_PAIR(12, 0x20)
#undef LETHE_ROUND_PAIR
    rk[14] = expand_even(a, _mm_aeskeygenassist_si128(b, 0x40));
}

LETHE_TARGET static inline __m128i aes_block(const __m128i rk[15], __m128i x) {
    x = _mm_xor_si128(x, rk[0]);
    for (int i = 1; i < 14; i++) x = _mm_aesenc_si128(x, rk[i]);
    return _mm_aesenclast_si128(x, rk[14]);
}

// Four blocks at once (the rounds interleaved: AESENC's latency hidden).
LETHE_TARGET static inline void aes_block4(const __m128i rk[15], __m128i *a, __m128i *b, __m128i *c, __m128i *d) {
    __m128i k = rk[0];
    __m128i w = _mm_xor_si128(*a, k), x = _mm_xor_si128(*b, k), y = _mm_xor_si128(*c, k), z = _mm_xor_si128(*d, k);
    for (int i = 1; i < 14; i++) {
        k = rk[i];
        w = _mm_aesenc_si128(w, k);
        x = _mm_aesenc_si128(x, k);
        y = _mm_aesenc_si128(y, k);
        z = _mm_aesenc_si128(z, k);
    }
    k = rk[14];
    *a = _mm_aesenclast_si128(w, k);
    *b = _mm_aesenclast_si128(x, k);
    *c = _mm_aesenclast_si128(y, k);
    *d = _mm_aesenclast_si128(z, k);
}

LETHE_TARGET static inline __m128i reverse16(__m128i x) {
    return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

// The unreduced 256-bit product a·b added into (lo, mid, hi): the schoolbook's four PCLMULQDQ, the
// two middle halves kept apart until the reduction.
LETHE_TARGET static inline void clmul_add(__m128i a, __m128i b, __m128i *lo, __m128i *mid, __m128i *hi) {
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(a, b, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(a, b, 0x11));
    *mid = _mm_xor_si128(*mid, _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10), _mm_clmulepi64_si128(a, b, 0x01)));
}

// The sum of products in (lo, mid, hi) reduced modulo x^128 + x^7 + x^2 + x + 1 in GCM's bit order:
// the 256-bit value is shifted left by one bit (the operands are bit-reflected), then its low half is
// folded into the high half.
LETHE_TARGET static inline __m128i gf_reduce(__m128i lo, __m128i mid, __m128i hi) {
    lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
    hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
    // [hi:lo] <<= 1
    __m128i c_lo = _mm_srli_epi32(lo, 31), c_hi = _mm_srli_epi32(hi, 31);
    lo = _mm_slli_epi32(lo, 1);
    hi = _mm_slli_epi32(hi, 1);
    hi = _mm_or_si128(hi, _mm_srli_si128(c_lo, 12));
    hi = _mm_or_si128(hi, _mm_slli_si128(c_hi, 4));
    lo = _mm_or_si128(lo, _mm_slli_si128(c_lo, 4));
    // Reduction: first the bits that fall off the top of each word of `lo` (x^127·… terms), then the
    // shifted copies of `lo` for x^7, x^2 and x.
    __m128i a = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi32(lo, 31), _mm_slli_epi32(lo, 30)), _mm_slli_epi32(lo, 25));
    __m128i carry = _mm_srli_si128(a, 4);
    lo = _mm_xor_si128(lo, _mm_slli_si128(a, 12));
    __m128i b = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi32(lo, 1), _mm_srli_epi32(lo, 2)), _mm_srli_epi32(lo, 7));
    b = _mm_xor_si128(b, carry);
    lo = _mm_xor_si128(lo, b);
    return _mm_xor_si128(hi, lo);
}

LETHE_TARGET static inline __m128i gf_mul(__m128i a, __m128i b) {
    __m128i z = _mm_setzero_si128(), lo = z, mid = z, hi = z;
    clmul_add(a, b, &lo, &mid, &hi);
    return gf_reduce(lo, mid, hi);
}

// GHASH of `n` whole blocks at `p` into the state `y` (byte-reversed domain): four blocks a step with
// H^4..H^1 and one reduction.
LETHE_TARGET static __m128i ghash_blocks(const gcm_key *k, __m128i y, const uint8_t *p, size_t n) {
    while (n >= 4) {
        __m128i z = _mm_setzero_si128(), lo = z, mid = z, hi = z;
        __m128i x0 = _mm_xor_si128(y, reverse16(_mm_loadu_si128((const __m128i *)p)));
        clmul_add(x0, k->h[3], &lo, &mid, &hi);
        clmul_add(reverse16(_mm_loadu_si128((const __m128i *)(p + 16))), k->h[2], &lo, &mid, &hi);
        clmul_add(reverse16(_mm_loadu_si128((const __m128i *)(p + 32))), k->h[1], &lo, &mid, &hi);
        clmul_add(reverse16(_mm_loadu_si128((const __m128i *)(p + 48))), k->h[0], &lo, &mid, &hi);
        y = gf_reduce(lo, mid, hi);
        p += 64;
        n -= 4;
    }
    if (n) {
        // The last 1–3 blocks the same way, with H^n..H^1.
        __m128i z = _mm_setzero_si128(), lo = z, mid = z, hi = z;
        __m128i x0 = _mm_xor_si128(y, reverse16(_mm_loadu_si128((const __m128i *)p)));
        clmul_add(x0, k->h[n - 1], &lo, &mid, &hi);
        for (size_t i = 1; i < n; i++) clmul_add(reverse16(_mm_loadu_si128((const __m128i *)(p + 16 * i))), k->h[n - 1 - i], &lo, &mid, &hi);
        y = gf_reduce(lo, mid, hi);
    }
    return y;
}

// GHASH of `len` bytes (the last block zero-padded) into `y`.
LETHE_TARGET static __m128i ghash_bytes(const gcm_key *k, __m128i y, const uint8_t *p, size_t len) {
    size_t whole = len / 16;
    y = ghash_blocks(k, y, p, whole);
    size_t rest = len % 16;
    if (rest) {
        uint8_t last[16] = {0};
        memcpy(last, p + 16 * whole, rest);
        y = ghash_blocks(k, y, last, 1);
    }
    return y;
}

LETHE_TARGET static void gcm_key_set(gcm_key *k, const uint8_t bytes[32]) {
    aes256_expand(k->rk, bytes);
    __m128i h = reverse16(aes_block(k->rk, _mm_setzero_si128()));
    k->h[0] = h;
    k->h[1] = gf_mul(h, h);
    k->h[2] = gf_mul(k->h[1], h);
    k->h[3] = gf_mul(k->h[1], k->h[1]);
}

// Counter block `c` of a 96-bit nonce (nonce ‖ c as a 32-bit big-endian number).
LETHE_TARGET static inline __m128i counter_block(__m128i j, uint32_t c) { return _mm_insert_epi32(j, (int)__builtin_bswap32(c), 3); }

// CTR from counter 2 over `len` bytes at `in` → `out` (may be the same), with `first` the keystream of
// counters 2, 3, 4 already computed (48 bytes).
LETHE_TARGET static void ctr_xor(const gcm_key *k, __m128i j, const __m128i first[3], const uint8_t *in, uint8_t *out, size_t len) {
    size_t done = 0;
    for (int i = 0; i < 3 && done < len; i++) {
        if (len - done >= 16) {
            _mm_storeu_si128((__m128i *)(out + done), _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + done)), first[i]));
            done += 16;
        } else {
            uint8_t ks[16];
            _mm_storeu_si128((__m128i *)ks, first[i]);
            for (size_t b = 0; done < len; b++, done++) out[done] = in[done] ^ ks[b];
        }
    }
    uint32_t c = 5;
    while (len - done >= 64) {
        __m128i a = counter_block(j, c), b = counter_block(j, c + 1), d = counter_block(j, c + 2), e = counter_block(j, c + 3);
        aes_block4(k->rk, &a, &b, &d, &e);
        const __m128i *s = (const __m128i *)(in + done);
        __m128i *o = (__m128i *)(out + done);
        _mm_storeu_si128(o, _mm_xor_si128(_mm_loadu_si128(s), a));
        _mm_storeu_si128(o + 1, _mm_xor_si128(_mm_loadu_si128(s + 1), b));
        _mm_storeu_si128(o + 2, _mm_xor_si128(_mm_loadu_si128(s + 2), d));
        _mm_storeu_si128(o + 3, _mm_xor_si128(_mm_loadu_si128(s + 3), e));
        done += 64;
        c += 4;
    }
    while (done < len) {
        __m128i ks = aes_block(k->rk, counter_block(j, c++));
        if (len - done >= 16) {
            _mm_storeu_si128((__m128i *)(out + done), _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + done)), ks));
            done += 16;
        } else {
            uint8_t b[16];
            _mm_storeu_si128((__m128i *)b, ks);
            for (size_t i = 0; done < len; i++, done++) out[done] = in[done] ^ b[i];
        }
    }
}

// E(J0) (the tag's mask) and the keystream of counters 2–4, in one interleaved pass.
LETHE_TARGET static inline __m128i gcm_start(const gcm_key *k, const uint8_t nonce[12], __m128i *j, __m128i first[3]) {
    uint8_t jb[16];
    memcpy(jb, nonce, 12);
    jb[12] = 0, jb[13] = 0, jb[14] = 0, jb[15] = 1;
    *j = _mm_loadu_si128((const __m128i *)jb);
    __m128i e0 = *j, a = counter_block(*j, 2), b = counter_block(*j, 3), c = counter_block(*j, 4);
    aes_block4(k->rk, &e0, &a, &b, &c);
    first[0] = a, first[1] = b, first[2] = c;
    return e0;
}

// The tag of associated data `aad` and ciphertext `ct`, before the mask E(J0). Short inputs are laid
// out as one run of blocks (padded associated data ‖ padded ciphertext ‖ lengths) hashed four blocks
// a reduction; longer ones section by section.
LETHE_TARGET static __m128i gcm_hash(const gcm_key *k, const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len) {
    uint8_t lengths[16];
    uint64_t a = __builtin_bswap64((uint64_t)aad_len * 8), c = __builtin_bswap64((uint64_t)ct_len * 8);
    memcpy(lengths, &a, 8);
    memcpy(lengths + 8, &c, 8);
    size_t pa = (aad_len + 15) & ~(size_t)15, pc = (ct_len + 15) & ~(size_t)15;
    __m128i y;
    if (pa + pc <= 256) {
        _Alignas(16) uint8_t run[256 + 16];
        memcpy(run, aad, aad_len);
        memset(run + aad_len, 0, pa - aad_len);
        memcpy(run + pa, ct, ct_len);
        memset(run + pa + ct_len, 0, pc - ct_len);
        memcpy(run + pa + pc, lengths, 16);
        y = ghash_blocks(k, _mm_setzero_si128(), run, (pa + pc) / 16 + 1);
    } else {
        y = ghash_bytes(k, _mm_setzero_si128(), aad, aad_len);
        y = ghash_bytes(k, y, ct, ct_len);
        y = ghash_blocks(k, y, lengths, 1);
    }
    return reverse16(y);
}

LETHE_TARGET static void gcm_seal_aesni(const gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len, uint8_t *data, size_t len,
                                        uint8_t tag[16]) {
    __m128i j, first[3];
    __m128i mask = gcm_start(k, nonce, &j, first);
    ctr_xor(k, j, first, data, data, len);
    _mm_storeu_si128((__m128i *)tag, _mm_xor_si128(gcm_hash(k, aad, aad_len, data, len), mask));
}

// Checks the tag first; decrypts `ct` into `out` only when it verifies. 1 when it does.
LETHE_TARGET static int gcm_open_aesni(const gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t len,
                                       const uint8_t tag[16], uint8_t *out) {
    __m128i j, first[3];
    __m128i mask = gcm_start(k, nonce, &j, first);
    __m128i expected = _mm_xor_si128(gcm_hash(k, aad, aad_len, ct, len), mask);
    // Constant time: every byte compared.
    __m128i diff = _mm_xor_si128(expected, _mm_loadu_si128((const __m128i *)tag));
    if (!_mm_testz_si128(diff, diff)) return 0;
    ctr_xor(k, j, first, ct, out, len);
    return 1;
}
#endif

static int cpu_has_aesni(void) {
#ifdef LETHE_HAVE_AESNI_CODE
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
#else
    return 0;
#endif
}

int lethe_seal_uses_aesni(void) {
    static int detected = -1;  // -1 until detected
    int d = __atomic_load_n(&detected, __ATOMIC_RELAXED);
    if (d < 0) {
        d = cpu_has_aesni();
        __atomic_store_n(&detected, d, __ATOMIC_RELAXED);
    }
    return d;
}

// MARK: Prepared keys

struct lethe_seal_key {
#ifdef LETHE_HAVE_AESNI_CODE
    gcm_key gcm;  // first: aligned by posix_memalign (AES-NI route)
#endif
    EVP_CIPHER_CTX *enc, *dec;  // EVP route
    int evp;
    int ready;
};

lethe_seal_key *lethe_seal_key_new(int use_evp) {
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(lethe_seal_key)) != 0) return NULL;
    lethe_seal_key *k = p;
    memset(k, 0, sizeof(*k));
    k->evp = use_evp || !lethe_seal_uses_aesni();
    return k;
}

void lethe_seal_key_free(lethe_seal_key *k) {
    if (!k) return;
    EVP_CIPHER_CTX_free(k->enc);
    EVP_CIPHER_CTX_free(k->dec);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

int lethe_seal_key_set(lethe_seal_key *k, const uint8_t bytes[32]) {
    k->ready = 0;
    if (k->evp) {
        if (!k->enc && !(k->enc = EVP_CIPHER_CTX_new())) return 0;
        if (!k->dec && !(k->dec = EVP_CIPHER_CTX_new())) return 0;
        static const uint8_t zero_iv[NONCE] = {0};
        if (EVP_EncryptInit_ex(k->enc, EVP_aes_256_gcm(), NULL, bytes, zero_iv) != 1) return 0;
        if (EVP_DecryptInit_ex(k->dec, EVP_aes_256_gcm(), NULL, bytes, zero_iv) != 1) return 0;
        k->ready = 1;
        return 1;
    }
#ifdef LETHE_HAVE_AESNI_CODE
    gcm_key_set(&k->gcm, bytes);
    k->ready = 1;
    return 1;
#else
    return 0;
#endif
}

void lethe_seal_key_wipe(lethe_seal_key *k) {
    static const uint8_t zero[32] = {0};
    if (k->evp) {
        if (k->enc) lethe_seal_key_set(k, zero);  // the contexts re-keyed with zeros
    }
#ifdef LETHE_HAVE_AESNI_CODE
    else {
        OPENSSL_cleanse(&k->gcm, sizeof k->gcm);
    }
#endif
    k->ready = 0;
}

// MARK: base64url without padding

static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const uint8_t reverse[256] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3E, 0xFF, 0xFF,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F,
    0xFF, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};

static size_t b64_len(size_t n) { return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1); }

static size_t b64_encode(const uint8_t *in, size_t n, uint8_t *out) {
    size_t i = 0, j = 0;
    for (; i + 3 <= n; i += 3, j += 4) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        uint16_t hi = b64_pairs[v >> 12], lo = b64_pairs[v & 0xFFF];
        memcpy(out + j, &hi, 2);  // little-endian: the first character in the low byte
        memcpy(out + j + 2, &lo, 2);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[j++] = (uint8_t)alphabet[v >> 18];
        out[j++] = (uint8_t)alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[j++] = (uint8_t)alphabet[v >> 18];
        out[j++] = (uint8_t)alphabet[v >> 12 & 63];
        out[j++] = (uint8_t)alphabet[v >> 6 & 63];
    }
    return j;
}

// The same acceptance as Swift's `Base64URL.decode`: alphabet only, no padding, length not 1 mod 4,
// leftover bits zero. Returns the decoded length, or -1.
static long b64_decode(const uint8_t *in, size_t n, uint8_t *out) {
    if (n % 4 == 1) return -1;
    size_t i = 0, j = 0;
    for (; i + 4 <= n; i += 4, j += 3) {
        uint32_t a = reverse[in[i]], b = reverse[in[i + 1]], c = reverse[in[i + 2]], d = reverse[in[i + 3]];
        if ((a | b | c | d) & 0x80) return -1;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[j] = (uint8_t)(v >> 16);
        out[j + 1] = (uint8_t)(v >> 8);
        out[j + 2] = (uint8_t)v;
    }
    size_t rest = n - i;
    if (rest == 2) {
        uint32_t a = reverse[in[i]], b = reverse[in[i + 1]];
        if ((a | b) & 0x80 || (b & 0x0F)) return -1;
        out[j++] = (uint8_t)(a << 2 | b >> 4);
    } else if (rest == 3) {
        uint32_t a = reverse[in[i]], b = reverse[in[i + 1]], c = reverse[in[i + 2]];
        if ((a | b | c) & 0x80 || (c & 0x03)) return -1;
        uint32_t v = a << 18 | b << 12 | c << 6;
        out[j++] = (uint8_t)(v >> 16);
        out[j++] = (uint8_t)(v >> 8);
    }
    return (long)j;
}

// MARK: base64url with SSSE3 (16 characters a step), chosen at run time

#ifdef LETHE_HAVE_AESNI_CODE
#define LETHE_SSSE3 __attribute__((target("ssse3,sse4.1")))

// Encodes whole groups of 12 bytes into 16 characters while 16 bytes can be loaded at `in` (`readable`
// bytes from `in` may be read, `readable` >= `n`); returns the bytes consumed (a multiple of 3; the
// characters written are 4/3 of that). The rest is the scalar encoder's.
LETHE_SSSE3 static size_t b64_encode_ssse3(const uint8_t *in, size_t n, size_t readable, uint8_t *out) {
    // Each 3-byte group [a b c] as the little-endian 32-bit word [b a c b] (Muła's layout), then each
    // 6-bit index moved to its own byte with two multiplies.
    const __m128i spread = _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    // Index → character: 0–25 'A'+, 26–51 'a'-26+, 52–61 '0'-52+, 62 '-', 63 '_' (the offset chosen by
    // a byte shuffle on the index saturated down by 51; indices below 26 mapped to entry 13).
    const __m128i offsets = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                          '-' - 62, '_' - 63, 'A', 0, 0);
    size_t i = 0;
    while (i + 12 <= n && i + 16 <= readable) {
        __m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + i)), spread);
        __m128i t0 = _mm_mulhi_epu16(_mm_and_si128(v, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
        __m128i t1 = _mm_mullo_epi16(_mm_and_si128(v, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010));
        __m128i idx = _mm_or_si128(t0, t1);
        __m128i r = _mm_subs_epu8(idx, _mm_set1_epi8(51));
        r = _mm_or_si128(r, _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), idx), _mm_set1_epi8(13)));
        _mm_storeu_si128((__m128i *)(out + i / 3 * 4), _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, r)));
        i += 12;
    }
    return i;
}

// Decodes whole groups of 16 characters into 12 bytes while 16 characters remain and 16 bytes can be
// stored at the output (`room` bytes at `out`). Returns the characters consumed (a multiple of 16), or
// -1 at a character outside the alphabet (the scalar decoder refuses the same input: it is refused
// wherever the bad character is).
LETHE_SSSE3 static long b64_decode_ssse3(const uint8_t *in, size_t n, uint8_t *out, size_t room) {
    const __m128i pack = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    size_t i = 0, j = 0;
    while (i + 16 <= n && j + 16 <= room) {
        __m128i c = _mm_loadu_si128((const __m128i *)(in + i));
        // Signed compares: bytes >= 0x80 are negative, in no range.
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('A' - 1)), _mm_cmplt_epi8(c, _mm_set1_epi8('Z' + 1)));
        __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(c, _mm_set1_epi8('z' + 1)));
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(c, _mm_set1_epi8('9' + 1)));
        __m128i dash = _mm_cmpeq_epi8(c, _mm_set1_epi8('-'));
        __m128i under = _mm_cmpeq_epi8(c, _mm_set1_epi8('_'));
        __m128i valid = _mm_or_si128(_mm_or_si128(_mm_or_si128(upper, lower), _mm_or_si128(digit, dash)), under);
        if (_mm_movemask_epi8(valid) != 0xFFFF) return -1;
        __m128i shift = _mm_and_si128(upper, _mm_set1_epi8(-'A'));
        shift = _mm_or_si128(shift, _mm_and_si128(lower, _mm_set1_epi8(26 - 'a')));
        shift = _mm_or_si128(shift, _mm_and_si128(digit, _mm_set1_epi8(52 - '0')));
        shift = _mm_or_si128(shift, _mm_and_si128(dash, _mm_set1_epi8(62 - '-')));
        shift = _mm_or_si128(shift, _mm_and_si128(under, _mm_set1_epi8(63 - '_')));
        __m128i v = _mm_add_epi8(c, shift);  // 6-bit values, one a byte
        // Pairs of 6 bits into 12, pairs of 12 into 24 (per 32-bit word), then the 3 bytes of each word.
        __m128i m = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));
        __m128i w = _mm_madd_epi16(m, _mm_set1_epi32(0x00011000));
        _mm_storeu_si128((__m128i *)(out + j), _mm_shuffle_epi8(w, pack));
        i += 16;
        j += 12;
    }
    return (long)i;
}
#endif

static int cpu_has_ssse3(void) {
#ifdef LETHE_HAVE_AESNI_CODE
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
#else
    return 0;
#endif
}

// 1 when the CPU has SSSE3 (detected once).
static int b64_simd(void) {
    static int detected = -1;  // -1 until detected
    int r = __atomic_load_n(&detected, __ATOMIC_RELAXED);
    if (r < 0) {
        r = cpu_has_ssse3();
        __atomic_store_n(&detected, r, __ATOMIC_RELAXED);
    }
    return r;
}

// Encodes `n` bytes (`readable` >= `n` bytes at `in` may be loaded); returns the characters written.
// `simd` 0: the scalar code only.
static size_t b64_encode_any(const uint8_t *in, size_t n, size_t readable, uint8_t *out, int simd) {
    size_t done = 0;
#ifdef LETHE_HAVE_AESNI_CODE
    if (simd) done = b64_encode_ssse3(in, n, readable, out);
#else
    (void)readable, (void)simd;
#endif
    return done / 3 * 4 + b64_encode(in + done, n - done, out + done / 3 * 4);
}

// Decodes with `room` bytes at `out` (at least n / 4 * 3 + 3); the scalar decoder's result.
static long b64_decode_any(const uint8_t *in, size_t n, uint8_t *out, size_t room, int simd) {
    size_t done = 0;
#ifdef LETHE_HAVE_AESNI_CODE
    if (simd && n % 4 != 1) {
        long d = b64_decode_ssse3(in, n, out, room);
        if (d < 0) return -1;
        done = (size_t)d;
    }
#else
    (void)room, (void)simd;
#endif
    long rest = b64_decode(in + done, n - done, out + done / 4 * 3);
    return rest < 0 ? -1 : (long)(done / 4 * 3) + rest;
}

int lethe_b64_uses_simd(void) { return b64_simd(); }

size_t lethe_b64url_encode(const uint8_t *in, size_t n, uint8_t *out, int route) {
    return b64_encode_any(in, n, n, out, route < 0 ? b64_simd() : route && b64_simd());
}

long lethe_b64url_decode(const uint8_t *in, size_t n, uint8_t *out, size_t room, int route) {
    if (room < n / 4 * 3 + 3) return -2;
    return b64_decode_any(in, n, out, room, route < 0 ? b64_simd() : route && b64_simd());
}

size_t lethe_seal_text_len(size_t value_len) { return sizeof prefix + b64_len(KEY_ID + NONCE + 1 + value_len + TAG); }

// MARK: Seal and open

// The associated data in one piece: `prefix` ‖ `tail` copied to `buffer` (room `room`), or to a heap
// buffer when longer (`*heap` then owns it; NULL when no memory).
static const uint8_t *join_aad(const uint8_t *prefix, size_t prefix_len, const uint8_t *tail, uint8_t *buffer, size_t room, uint8_t **heap) {
    *heap = NULL;
    uint8_t *b = buffer;
    if (prefix_len + TAIL > room) {
        if (!(b = *heap = malloc(prefix_len + TAIL))) return NULL;
    }
    if (prefix_len) memcpy(b, prefix, prefix_len);
    memcpy(b + prefix_len, tail, TAIL);
    return b;
}

// Encrypts `len` bytes at `data` in place; the tag goes to `tag`. 1 on success.
static int gcm_seal(lethe_seal_key *k, const uint8_t *nonce, const uint8_t *aad, size_t aad_len, uint8_t *data, size_t len, uint8_t *tag) {
    if (k->evp) {
        int l = 0;
        EVP_CIPHER_CTX *c = k->enc;
        if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
        if (EVP_EncryptUpdate(c, NULL, &l, aad, (int)aad_len) != 1) return 0;
        if (EVP_EncryptUpdate(c, data, &l, data, (int)len) != 1) return 0;
        if (EVP_EncryptFinal_ex(c, data + len, &l) != 1) return 0;
        return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1;
    }
#ifdef LETHE_HAVE_AESNI_CODE
    gcm_seal_aesni(&k->gcm, nonce, aad, aad_len, data, len, tag);
    return 1;
#else
    return 0;
#endif
}

// Decrypts `len` bytes at `data` in place; 1 when `tag` verifies (the AES-NI route checks the tag
// before it decrypts; the EVP route's plaintext is wiped by the caller when it does not verify).
static int gcm_open(lethe_seal_key *k, const uint8_t *nonce, const uint8_t *aad, size_t aad_len, uint8_t *data, size_t len, const uint8_t *tag) {
    if (k->evp) {
        int l = 0;
        EVP_CIPHER_CTX *c = k->dec;
        if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
        if (EVP_DecryptUpdate(c, NULL, &l, aad, (int)aad_len) != 1) return 0;
        if (EVP_DecryptUpdate(c, data, &l, data, (int)len) != 1) return 0;
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, (void *)tag) != 1) return 0;
        uint8_t end[16];
        return EVP_DecryptFinal_ex(c, end, &l) == 1;
    }
#ifdef LETHE_HAVE_AESNI_CODE
    return gcm_open_aesni(&k->gcm, nonce, aad, aad_len, data, len, tag, data);
#else
    return 0;
#endif
}

long lethe_seal(lethe_seal_key *k, const uint8_t nonce[12], const uint8_t *aad_prefix, size_t prefix_len, const uint8_t aad_tail[40],
                uint8_t kind, const uint8_t *value, size_t value_len, uint8_t *out) {
    if (!k->ready) return -1;
    size_t payload = KEY_ID + NONCE + 1 + value_len + TAG;
    uint8_t small[SMALL], aad_buffer[256], *aad_heap;
    size_t readable = payload <= SMALL ? SMALL : payload + 16;  // the SIMD encoder loads 16 bytes for 12
    uint8_t *p = payload <= SMALL ? small : malloc(readable);
    if (!p) return -1;
    const uint8_t *aad = join_aad(aad_prefix, prefix_len, aad_tail, aad_buffer, sizeof aad_buffer, &aad_heap);
    long r = -1;
    if (aad) {
        // key id ‖ nonce ‖ kind ‖ value ‖ tag, the kind and value encrypted in place.
        memcpy(p, aad_tail + 32, KEY_ID);
        memcpy(p + KEY_ID, nonce, NONCE);
        p[KEY_ID + NONCE] = kind;
        if (value_len) memcpy(p + KEY_ID + NONCE + 1, value, value_len);
        if (gcm_seal(k, nonce, aad, prefix_len + TAIL, p + KEY_ID + NONCE, 1 + value_len, p + payload - TAG)) {
            memcpy(out, prefix, sizeof prefix);
            r = (long)(sizeof prefix + b64_encode_any(p, payload, readable, out + sizeof prefix, b64_simd()));
        } else {
            OPENSSL_cleanse(p + KEY_ID + NONCE, 1 + value_len);  // the plaintext's copy, when sealing failed
        }
    }
    free(aad_heap);
    if (p != small) free(p);
    return r;
}

long lethe_open(lethe_seal_key *k, const uint8_t *text, size_t text_len, const uint8_t *aad_prefix, size_t prefix_len, const uint8_t aad_tail[40],
                uint8_t *kind, uint8_t key_id_out[8], uint8_t *out) {
    if (text_len < sizeof prefix || memcmp(text, prefix, sizeof prefix) != 0) return LETHE_OPEN_FORMAT;
    size_t n = text_len - sizeof prefix;
    size_t most = n / 4 * 3 + 3;
    uint8_t small[SMALL], aad_buffer[256], *aad_heap = NULL;
    size_t room = most <= SMALL ? SMALL : most + 16;  // the SIMD decoder stores 16 bytes for 12
    uint8_t *p = most <= SMALL ? small : malloc(room);
    if (!p) return LETHE_OPEN_NOMEM;
    long r;
    long m = b64_decode_any(text + sizeof prefix, n, p, room, b64_simd());
    *kind = 0;
    if (m < KEY_ID + NONCE + 1 + TAG) {
        r = LETHE_OPEN_FORMAT;
    } else if (memcpy(key_id_out, p, KEY_ID), memcmp(p, aad_tail + 32, KEY_ID) != 0) {
        r = LETHE_OPEN_OTHER_KEY;
    } else if (!k->ready) {
        r = LETHE_OPEN_FAILED;
    } else {
        size_t len = (size_t)m - (KEY_ID + NONCE + TAG);  // kind ‖ value
        uint8_t *data = p + KEY_ID + NONCE;
        const uint8_t *aad = join_aad(aad_prefix, prefix_len, aad_tail, aad_buffer, sizeof aad_buffer, &aad_heap);
        if (!aad) {
            r = LETHE_OPEN_NOMEM;
        } else if (gcm_open(k, p + KEY_ID, aad, prefix_len + TAIL, data, len, p + m - TAG)) {
            *kind = data[0];
            memcpy(out, data + 1, len - 1);
            r = (long)(len - 1);
        } else {
            r = LETHE_OPEN_FAILED;
        }
        OPENSSL_cleanse(data, len);  // nothing of a plaintext is left in the scratch buffer
    }
    free(aad_heap);
    if (p != small) free(p);
    return r;
}

int lethe_random_fill(uint8_t *buffer, size_t count) {
    size_t done = 0;
    while (done < count) {
        ssize_t r = getrandom(buffer + done, count - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        done += (size_t)r;
    }
    return 0;
}

// MARK: Nonces (see lethe_seal.h)

#if defined(__linux__) && !defined(MADV_WIPEONFORK)
#define MADV_WIPEONFORK 18
#endif

// `mode`: 0 refills from getrandom (in the wiped-on-fork mapping, or in a forked child), 1 AES-256-CTR in
// user space (the mapping is wiped on fork), 2 refills from getrandom in heap memory (no mapping).
enum { NONCE_BYTES = 12 * LETHE_NONCES_PER_REFILL, NONCE_COUNTER = NONCE_BYTES, NONCE_KEYS = NONCE_BYTES + 16, RESEED_REFILLS = 4096 };
static const size_t nonces_size = sizeof(lethe_nonces) + NONCE_BYTES + 16 + 15 * 16;

static size_t nonces_map_size(void) {
    long page = sysconf(_SC_PAGESIZE);
    size_t p = page > 0 ? (size_t)page : 4096;
    return (nonces_size + p - 1) / p * p;
}

lethe_nonces *lethe_nonces_new(int kernel_only) {
    size_t len = nonces_map_size();
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        lethe_nonces *n = calloc(1, nonces_size);
        if (!n) return NULL;
        n->mode = 2;
        n->next = NONCE_BYTES;
        return n;
    }
    lethe_nonces *n = p;  // zero-filled
    int wiped_on_fork = 0;
#ifdef __linux__
    wiped_on_fork = madvise(p, len, MADV_WIPEONFORK) == 0;
#endif
    n->mode = !kernel_only && wiped_on_fork && lethe_seal_uses_aesni() ? 1 : 0;
    n->next = NONCE_BYTES;
    return n;
}

void lethe_nonces_free(lethe_nonces *n) {
    if (!n) return;
    int heap = n->mode == 2;
    OPENSSL_cleanse(n, nonces_size);
    if (heap) {
        free(n);
    } else {
        munmap(n, nonces_map_size());
    }
}

int lethe_nonces_user_space(const lethe_nonces *n) { return n->mode == 1; }

#ifdef LETHE_HAVE_AESNI_CODE
// A new key and counter from the kernel: the AES-256 round keys of 32 random bytes, 16 more as the counter.
LETHE_TARGET static int nonces_seed(lethe_nonces *n) {
    uint8_t seed[48];
    int e = lethe_random_fill(seed, sizeof seed);
    if (e) {
        errno = e;
        return -1;
    }
    __m128i rk[15];
    aes256_expand(rk, seed);
    for (int i = 0; i < 15; i++) _mm_storeu_si128((__m128i *)(n->data + NONCE_KEYS + 16 * i), rk[i]);
    memcpy(n->data + NONCE_COUNTER, seed + 32, 16);
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(rk, sizeof rk);
    n->refills = 0;
    return 0;
}

// 255 blocks of keystream, AES_K(c), AES_K(c + 1), … (c a 128-bit counter, never reused: it only grows,
// by 256 a refill), written over the buffer; eight blocks a step (AESENC's latency hidden).
LETHE_TARGET static void nonces_ctr(lethe_nonces *n) {
    __m128i rk[15];
    for (int i = 0; i < 15; i++) rk[i] = _mm_loadu_si128((const __m128i *)(n->data + NONCE_KEYS + 16 * i));
    uint64_t lo, hi;
    memcpy(&lo, n->data + NONCE_COUNTER, 8);
    memcpy(&hi, n->data + NONCE_COUNTER + 8, 8);
    for (int b = 0; b < 256; b += 8) {
        __m128i x[8];
        for (int i = 0; i < 8; i++) {
            x[i] = _mm_xor_si128(_mm_set_epi64x((long long)hi, (long long)lo), rk[0]);
            if (++lo == 0) hi++;
        }
        for (int r = 1; r < 14; r++)
            for (int i = 0; i < 8; i++) x[i] = _mm_aesenc_si128(x[i], rk[r]);
        for (int i = 0; i < 8; i++) x[i] = _mm_aesenclast_si128(x[i], rk[14]);
        for (int i = 0; i < 8 && b + i < 255; i++) _mm_storeu_si128((__m128i *)(n->data + 16 * (b + i)), x[i]);
    }
    memcpy(n->data + NONCE_COUNTER, &lo, 8);
    memcpy(n->data + NONCE_COUNTER + 8, &hi, 8);
    OPENSSL_cleanse(rk, sizeof rk);
}
#endif

const uint8_t *lethe_nonces_refill(lethe_nonces *n) {
#ifdef LETHE_HAVE_AESNI_CODE
    if (n->mode == 1) {
        if (!n->filled || n->refills >= RESEED_REFILLS) {
            if (nonces_seed(n) != 0) return NULL;
        }
        nonces_ctr(n);
        n->refills++;
        n->filled = 1;
        n->next = 12;
        return n->data;
    }
#endif
    int e = lethe_random_fill(n->data, NONCE_BYTES);
    if (e) {
        errno = e;
        return NULL;
    }
    n->filled = 1;
    n->next = 12;
    return n->data;
}
