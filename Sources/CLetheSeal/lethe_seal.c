// See include/lethe_seal.h. AES-256-GCM per NIST SP 800-38D through OpenSSL's libcrypto; this file adds
// the AES-NI block function OpenSSL's GCM mode runs over, the text form (base64url) and the CSPRNG fill.
#include "lethe_seal.h"
#include "b64_pairs.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/modes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "b64_pairs assumes a little-endian target"
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define LETHE_HAVE_AESNI_CODE 1
#endif

static const uint8_t prefix[9] = {'l', 'e', 't', 'h', 'e', ':', 'v', '1', ':'};
enum { KEY_ID = 8, NONCE = 12, TAG = 16, TAIL = 40, SMALL = 1024 };

// MARK: AES-256 with AES-NI (the block function of OpenSSL's GCM128 mode)

#ifdef LETHE_HAVE_AESNI_CODE
typedef struct {
    __m128i rk[15];
} aes256_schedule;

// Each 32-bit word of `a` XORed with every word below it (the key schedule's running XOR).
__attribute__((target("aes,sse2"))) static inline __m128i running_xor(__m128i a) {
    __m128i t = _mm_slli_si128(a, 4);
    a = _mm_xor_si128(a, t);
    t = _mm_slli_si128(t, 4);
    a = _mm_xor_si128(a, t);
    t = _mm_slli_si128(t, 4);
    return _mm_xor_si128(a, t);
}

__attribute__((target("aes,sse2"))) static inline __m128i expand_even(__m128i a, __m128i assist) {
    return _mm_xor_si128(running_xor(a), _mm_shuffle_epi32(assist, 0xff));
}

__attribute__((target("aes,sse2"))) static inline __m128i expand_odd(__m128i a, __m128i b) {
    __m128i assist = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa);
    return _mm_xor_si128(running_xor(b), assist);
}

// FIPS 197 key expansion for Nk = 8 (15 round keys), with AESKEYGENASSIST.
__attribute__((target("aes,sse2"))) static void aes256_expand(aes256_schedule *s, const uint8_t key[32]) {
    __m128i a = _mm_loadu_si128((const __m128i *)key), b = _mm_loadu_si128((const __m128i *)(key + 16));
    s->rk[0] = a;
    s->rk[1] = b;
#define LETHE_ROUND_PAIR(i, rcon)                             \
    a = expand_even(a, _mm_aeskeygenassist_si128(b, rcon)); \
    s->rk[i] = a;                                           \
    b = expand_odd(a, b);                                   \
    s->rk[i + 1] = b;
    LETHE_ROUND_PAIR(2, 0x01)
    LETHE_ROUND_PAIR(4, 0x02)
    LETHE_ROUND_PAIR(6, 0x04)
    LETHE_ROUND_PAIR(8, 0x08)
    LETHE_ROUND_PAIR(10, 0x10)
    LETHE_ROUND_PAIR(12, 0x20)
#undef LETHE_ROUND_PAIR
    s->rk[14] = expand_even(a, _mm_aeskeygenassist_si128(b, 0x40));
}

__attribute__((target("aes,sse2"))) static void aes256_block(const unsigned char in[16], unsigned char out[16], const void *key) {
    const aes256_schedule *s = key;
    __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)in), s->rk[0]);
    for (int i = 1; i < 14; i++) x = _mm_aesenc_si128(x, s->rk[i]);
    _mm_storeu_si128((__m128i *)out, _mm_aesenclast_si128(x, s->rk[14]));
}
#endif

static int cpu_has_aesni(void) {
#ifdef LETHE_HAVE_AESNI_CODE
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
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
    aes256_schedule aes;  // first: aligned by posix_memalign
#endif
    GCM128_CONTEXT *gcm;  // AES-NI route
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
    if (k->gcm) CRYPTO_gcm128_release(k->gcm);  // cleanses its tables
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
    aes256_expand(&k->aes, bytes);
    if (!k->gcm) {
        k->gcm = CRYPTO_gcm128_new(&k->aes, (block128_f)aes256_block);
        if (!k->gcm) return 0;
    } else {
        CRYPTO_gcm128_init(k->gcm, &k->aes, (block128_f)aes256_block);
    }
    k->ready = 1;
    return 1;
#else
    return 0;
#endif
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

size_t lethe_seal_text_len(size_t value_len) { return sizeof prefix + b64_len(KEY_ID + NONCE + 1 + value_len + TAG); }

// MARK: Seal and open

// The associated data in one piece (one GHASH pass): `prefix` ‖ `tail` copied to `buffer` when they fit.
typedef struct {
    const uint8_t *p1;
    size_t l1;
    const uint8_t *p2;  // NULL when p1 holds the whole
} aad_parts;

static aad_parts join_aad(const uint8_t *prefix, size_t prefix_len, const uint8_t *tail, uint8_t *buffer, size_t room) {
    aad_parts a;
    if (prefix_len + TAIL <= room) {
        memcpy(buffer, prefix, prefix_len);
        memcpy(buffer + prefix_len, tail, TAIL);
        a.p1 = buffer;
        a.l1 = prefix_len + TAIL;
        a.p2 = NULL;
    } else {
        a.p1 = prefix;
        a.l1 = prefix_len;
        a.p2 = tail;
    }
    return a;
}

// Encrypts `len` bytes at `data` in place; the tag goes to `tag`. 1 on success.
static int gcm_seal(lethe_seal_key *k, const uint8_t *nonce, aad_parts aad, uint8_t *data, size_t len, uint8_t *tag) {
    if (k->evp) {
        int l = 0;
        EVP_CIPHER_CTX *c = k->enc;
        if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
        if (aad.l1 && EVP_EncryptUpdate(c, NULL, &l, aad.p1, (int)aad.l1) != 1) return 0;
        if (aad.p2 && EVP_EncryptUpdate(c, NULL, &l, aad.p2, TAIL) != 1) return 0;
        if (EVP_EncryptUpdate(c, data, &l, data, (int)len) != 1) return 0;
        if (EVP_EncryptFinal_ex(c, data + len, &l) != 1) return 0;
        return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1;
    }
    GCM128_CONTEXT *g = k->gcm;
    CRYPTO_gcm128_setiv(g, nonce, NONCE);
    if (aad.l1 && CRYPTO_gcm128_aad(g, aad.p1, aad.l1)) return 0;
    if (aad.p2 && CRYPTO_gcm128_aad(g, aad.p2, TAIL)) return 0;
    if (CRYPTO_gcm128_encrypt(g, data, data, len)) return 0;
    CRYPTO_gcm128_tag(g, tag, TAG);
    return 1;
}

// Decrypts `len` bytes at `data` in place; 1 when `tag` verifies.
static int gcm_open(lethe_seal_key *k, const uint8_t *nonce, aad_parts aad, uint8_t *data, size_t len, const uint8_t *tag) {
    if (k->evp) {
        int l = 0;
        EVP_CIPHER_CTX *c = k->dec;
        if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
        if (aad.l1 && EVP_DecryptUpdate(c, NULL, &l, aad.p1, (int)aad.l1) != 1) return 0;
        if (aad.p2 && EVP_DecryptUpdate(c, NULL, &l, aad.p2, TAIL) != 1) return 0;
        if (EVP_DecryptUpdate(c, data, &l, data, (int)len) != 1) return 0;
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, (void *)tag) != 1) return 0;
        uint8_t end[16];
        return EVP_DecryptFinal_ex(c, end, &l) == 1;
    }
    GCM128_CONTEXT *g = k->gcm;
    CRYPTO_gcm128_setiv(g, nonce, NONCE);
    if (aad.l1 && CRYPTO_gcm128_aad(g, aad.p1, aad.l1)) return 0;
    if (aad.p2 && CRYPTO_gcm128_aad(g, aad.p2, TAIL)) return 0;
    if (CRYPTO_gcm128_decrypt(g, data, data, len)) return 0;
    return CRYPTO_gcm128_finish(g, tag, TAG) == 0;  // constant-time comparison
}

long lethe_seal(lethe_seal_key *k, const uint8_t nonce[12], const uint8_t *aad_prefix, size_t prefix_len, const uint8_t aad_tail[40],
                uint8_t kind, const uint8_t *value, size_t value_len, uint8_t *out) {
    if (!k->ready) return -1;
    size_t payload = KEY_ID + NONCE + 1 + value_len + TAG;
    uint8_t small[SMALL], aad_buffer[256];
    uint8_t *p = payload <= SMALL ? small : malloc(payload);
    if (!p) return -1;
    // key id ‖ nonce ‖ kind ‖ value ‖ tag, the kind and value encrypted in place.
    memcpy(p, aad_tail + 32, KEY_ID);
    memcpy(p + KEY_ID, nonce, NONCE);
    p[KEY_ID + NONCE] = kind;
    if (value_len) memcpy(p + KEY_ID + NONCE + 1, value, value_len);
    long r = -1;
    aad_parts aad = join_aad(aad_prefix, prefix_len, aad_tail, aad_buffer, sizeof aad_buffer);
    if (gcm_seal(k, nonce, aad, p + KEY_ID + NONCE, 1 + value_len, p + payload - TAG)) {
        memcpy(out, prefix, sizeof prefix);
        r = (long)(sizeof prefix + b64_encode(p, payload, out + sizeof prefix));
    }
    OPENSSL_cleanse(p + KEY_ID + NONCE, 1 + value_len);  // the plaintext's copy, when sealing failed
    if (p != small) free(p);
    return r;
}

long lethe_open(lethe_seal_key *k, const uint8_t *text, size_t text_len, const uint8_t *aad_prefix, size_t prefix_len, const uint8_t aad_tail[40],
                uint8_t *kind, uint8_t key_id_out[8], uint8_t *out) {
    if (text_len < sizeof prefix || memcmp(text, prefix, sizeof prefix) != 0) return LETHE_OPEN_FORMAT;
    size_t n = text_len - sizeof prefix;
    size_t most = n / 4 * 3 + 3;
    uint8_t small[SMALL], aad_buffer[256];
    uint8_t *p = most <= SMALL ? small : malloc(most);
    if (!p) return LETHE_OPEN_NOMEM;
    long r;
    long m = b64_decode(text + sizeof prefix, n, p);
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
        aad_parts aad = join_aad(aad_prefix, prefix_len, aad_tail, aad_buffer, sizeof aad_buffer);
        if (gcm_open(k, p + KEY_ID, aad, data, len, p + m - TAG)) {
            *kind = data[0];
            memcpy(out, data + 1, len - 1);
            r = (long)(len - 1);
        } else {
            r = LETHE_OPEN_FAILED;
        }
        OPENSSL_cleanse(data, len);  // nothing of an unverified plaintext is kept
    }
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
