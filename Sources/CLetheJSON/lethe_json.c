// The two-stage JSON field scan behind JSONFieldScanner (docs/architecture.md, "One scanner").
//
// Stage 1 classifies 64 bytes at a time into bitmasks: quotes, backslashes, the six structural
// characters, whitespace and control bytes; quotes escaped by an odd run of backslashes are
// removed, string interiors follow from a prefix XOR of the remaining quotes (one carry-less
// multiplication by all ones on x86), and every byte outside a string that is neither
// whitespace nor structural belongs to a number or literal, whose first byte is marked too.
// Stage 2 walks those marked positions, one block at a time as it needs them, checking the
// grammar and following only the searched paths. Anything unusual declines (returns 0) so
// that the exact scalar scanner decides and names the error.
#include "lethe_json.h"
#include <string.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define INLINE static inline __attribute__((always_inline))
#define JOIN2(a, b) a##b
#define JOIN(a, b) JOIN2(a, b)

enum { K_ABSENT = 0, K_NULL = 1, K_STRING = 2, K_NUMBER = 3, K_BOOL = 4, K_OBJECT = 5, K_ARRAY = 6 };

// Byte classes for the portable classifier and for the checks in stage 2.
enum { C_QUOTE = 1, C_BS = 2, C_OP = 4, C_WS = 8, C_CTRL = 16, C_NL = 32 };
static uint8_t byte_class[256];
static int classes_ready;

static void init_classes(void) {
    if (__atomic_load_n(&classes_ready, __ATOMIC_ACQUIRE)) return;
    uint8_t t[256];
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0;
        if (c == '"') k |= C_QUOTE;
        if (c == '\\') k |= C_BS;
        if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',') k |= C_OP;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') k |= C_WS;
        if (c < 0x20) k |= C_CTRL;
        if (c == '\n') k |= C_NL;
        t[c] = k;
    }
    memcpy(byte_class, t, sizeof t);  // every thread writes the same bytes
    __atomic_store_n(&classes_ready, 1, __ATOMIC_RELEASE);
}

/// A byte that continues a number or literal (not whitespace, not structural, not a quote).
INLINE int is_atom_byte(uint8_t c) { return (byte_class[c] & (C_QUOTE | C_OP | C_WS)) == 0; }

typedef struct {
    uint64_t quote, bs, op, ws, ctrl, nl;
} raw_masks;

static void classify_portable(const uint8_t *p, raw_masks *m) {
    uint64_t q = 0, b = 0, o = 0, w = 0, c = 0, l = 0;
    for (int i = 0; i < 64; i++) {
        uint64_t k = byte_class[p[i]], bit = 1ULL << i;
        if (k) {
            if (k & C_QUOTE) q |= bit;
            if (k & C_BS) b |= bit;
            if (k & C_OP) o |= bit;
            if (k & C_WS) w |= bit;
            if (k & C_CTRL) c |= bit;
            if (k & C_NL) l |= bit;
        }
    }
    m->quote = q; m->bs = b; m->op = o; m->ws = w; m->ctrl = c; m->nl = l;
}

/// The first `k` (< 64) bytes at p, the rest taken as spaces.
static void classify_portable_partial(const uint8_t *p, int64_t k, raw_masks *m) {
    uint8_t pad[64];
    memset(pad, ' ', 64);
    memcpy(pad, p, (size_t)k);
    classify_portable(pad, m);
}

INLINE uint64_t prefix_xor_portable(uint64_t x) {
    x ^= x << 1; x ^= x << 2; x ^= x << 4; x ^= x << 8; x ^= x << 16; x ^= x << 32;
    return x;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX_TARGET __attribute__((target("avx2,pclmul,bmi,bmi2,popcnt")))

AVX_TARGET INLINE uint64_t mask64(__m256i lo, __m256i hi) {
    uint64_t m = (uint64_t)(uint32_t)_mm256_movemask_epi8(lo) | ((uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32);
    // An opaque register: otherwise the compiler folds the later bit logic back into byte
    // vectors and expands the scalar masks into them bit by bit.
    __asm__("" : "+r"(m));
    return m;
}

AVX_TARGET INLINE void classify_avx2_vectors(__m256i lo, __m256i hi, raw_masks *m) {
    const __m256i quote = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\');
    const __m256i b20 = _mm256_set1_epi8(0x20), ob = _mm256_set1_epi8(0x7B), cb = _mm256_set1_epi8(0x7D);
    const __m256i colon = _mm256_set1_epi8(':'), comma = _mm256_set1_epi8(',');
    const __m256i c1f = _mm256_set1_epi8(0x1F), lf = _mm256_set1_epi8('\n');
    // Whitespace by a nibble lookup: the table holds the one whitespace byte per low nibble
    // (0x20, 0x09, 0x0A, 0x0D) and elsewhere a byte whose low nibble differs from its index.
    const __m256i wst = _mm256_setr_epi8(0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x0A, 0, 0, 0x0D, 0, 0,
                                         0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x0A, 0, 0, 0x0D, 0, 0);
    __m256i lo20 = _mm256_or_si256(lo, b20), hi20 = _mm256_or_si256(hi, b20);
    m->quote = mask64(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote));
    m->bs = mask64(_mm256_cmpeq_epi8(lo, bs), _mm256_cmpeq_epi8(hi, bs));
    __m256i olo = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(lo20, ob), _mm256_cmpeq_epi8(lo20, cb)),
                                  _mm256_or_si256(_mm256_cmpeq_epi8(lo, colon), _mm256_cmpeq_epi8(lo, comma)));
    __m256i ohi = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(hi20, ob), _mm256_cmpeq_epi8(hi20, cb)),
                                  _mm256_or_si256(_mm256_cmpeq_epi8(hi, colon), _mm256_cmpeq_epi8(hi, comma)));
    m->op = mask64(olo, ohi);
    m->ws = mask64(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(wst, lo), lo), _mm256_cmpeq_epi8(_mm256_shuffle_epi8(wst, hi), hi));
    m->ctrl = mask64(_mm256_cmpeq_epi8(_mm256_min_epu8(lo, c1f), lo), _mm256_cmpeq_epi8(_mm256_min_epu8(hi, c1f), hi));
    m->nl = mask64(_mm256_cmpeq_epi8(lo, lf), _mm256_cmpeq_epi8(hi, lf));
}

AVX_TARGET INLINE void classify_avx2(const uint8_t *p, raw_masks *m) {
    classify_avx2_vectors(_mm256_loadu_si256((const __m256i *)p), _mm256_loadu_si256((const __m256i *)(p + 32)), m);
}

/// 64 bytes of 0xFF then 64 of 0: loaded at (64 - k), the first k bytes are selected.
static const uint8_t keep_first[128] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};

/// The first `k` (< 64) bytes at p classified, the rest taken as spaces; the 64 bytes are read
/// in place (the caller checked they stay inside one page).
AVX_TARGET INLINE void classify_avx2_partial(const uint8_t *p, int64_t k, raw_masks *m) {
    const __m256i sp = _mm256_set1_epi8(' ');
    __m256i klo = _mm256_loadu_si256((const __m256i *)(keep_first + 64 - k));
    __m256i khi = _mm256_loadu_si256((const __m256i *)(keep_first + 96 - k));
    __m256i lo = _mm256_blendv_epi8(sp, _mm256_loadu_si256((const __m256i *)p), klo);
    __m256i hi = _mm256_blendv_epi8(sp, _mm256_loadu_si256((const __m256i *)(p + 32)), khi);
    classify_avx2_vectors(lo, hi, m);
}

AVX_TARGET INLINE uint64_t prefix_xor_clmul(uint64_t x) {
    __m128i r = _mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x), _mm_set1_epi8((char)0xFF), 0);
    return (uint64_t)_mm_cvtsi128_si64(r);
}

static int have_avx2 = -1;
static int detect_avx2(void) {
    int v = __atomic_load_n(&have_avx2, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("bmi2");
        __atomic_store_n(&have_avx2, v, __ATOMIC_RELAXED);
    }
    return v;
}
#else
static int detect_avx2(void) { return 0; }
#endif

int lethe_json_uses_avx2(void) { return detect_avx2(); }

// MARK: - Stage 2 helpers (shared by both variants)

/// Four hexadecimal digits at p (either case) into *out; 0 when one is not a digit.
static int hex4_checked(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p[k];
        uint32_t d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/// Validates the escapes of a string's content p[start..<end] (end: its closing quote), as the
/// scalar scanner does. 1 when valid.
static int valid_escapes(const uint8_t *p, int64_t i, int64_t end) {
    for (;;) {
        const uint8_t *b = memchr(p + i, '\\', (size_t)(end - i));
        if (!b) return 1;
        i = b - p;
        if (i + 1 >= end) return 0;
        switch (p[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            i += 2;
            break;
        case 'u': {
            uint32_t u = 0, lo = 0;
            if (i + 6 > end || !hex4_checked(p + i + 2, &u)) return 0;
            if (u >= 0xDC00 && u <= 0xDFFF) return 0;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (i + 12 > end || p[i + 6] != '\\' || p[i + 7] != 'u' || !hex4_checked(p + i + 8, &lo)) return 0;
                if (lo < 0xDC00 || lo > 0xDFFF) return 0;
                i += 12;
            } else {
                i += 6;
            }
            break;
        }
        default:
            return 0;
        }
    }
}

INLINE uint32_t hex4(const uint8_t *p) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p[k];
        v = v << 4 | (c <= '9' ? (uint32_t)(c - '0') : (uint32_t)((c | 0x20) - 'a' + 10));
    }
    return v;
}

/// Unescapes validated string content p[i..<end] into out (room for end - i bytes: UTF-8 is
/// never longer than the escape it comes from); returns the length written.
static int64_t unescape(const uint8_t *p, int64_t i, int64_t end, uint8_t *out) {
    int64_t o = 0;
    while (i < end) {
        uint8_t c = p[i];
        if (c != '\\') { out[o++] = c; i++; continue; }
        uint8_t e = p[i + 1];
        switch (e) {
        case 'b': out[o++] = 0x08; i += 2; break;
        case 'f': out[o++] = 0x0C; i += 2; break;
        case 'n': out[o++] = 0x0A; i += 2; break;
        case 'r': out[o++] = 0x0D; i += 2; break;
        case 't': out[o++] = 0x09; i += 2; break;
        case 'u': {
            uint32_t u = hex4(p + i + 2);
            i += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                uint32_t lo = hex4(p + i + 2);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (u < 0x80) {
                out[o++] = (uint8_t)u;
            } else if (u < 0x800) {
                out[o++] = (uint8_t)(0xC0 | (u >> 6)); out[o++] = (uint8_t)(0x80 | (u & 0x3F));
            } else if (u < 0x10000) {
                out[o++] = (uint8_t)(0xE0 | (u >> 12)); out[o++] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
                out[o++] = (uint8_t)(0x80 | (u & 0x3F));
            } else {
                out[o++] = (uint8_t)(0xF0 | (u >> 18)); out[o++] = (uint8_t)(0x80 | ((u >> 12) & 0x3F));
                out[o++] = (uint8_t)(0x80 | ((u >> 6) & 0x3F)); out[o++] = (uint8_t)(0x80 | (u & 0x3F));
            }
            break;
        }
        default: out[o++] = e; i += 2; break;  // " \ /
        }
    }
    return o;
}

/// The offset of the first byte at or after p[j] that is not an ASCII digit (n at most). Eight
/// bytes at a time: a byte is a digit when its high nibble is 3 and adding 6 keeps it so. Adding 6
/// carries into the next byte only from a byte >= 0xFA, which is not a digit, so the bytes before
/// the first non-digit are judged exactly.
INLINE int64_t digits_end(const uint8_t *p, int64_t j, int64_t n) {
    const uint64_t hi_nibbles = 0xF0F0F0F0F0F0F0F0ULL, threes = 0x3030303030303030ULL;
    const uint64_t sixes = 0x0606060606060606ULL, low7 = 0x7F7F7F7F7F7F7F7FULL, highs = 0x8080808080808080ULL;
    while (j + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + j, 8);
        uint64_t bad = ((w & hi_nibbles) ^ threes) | (((w + sixes) & hi_nibbles) ^ threes);
        if (bad) {
            uint64_t any = (((bad & low7) + low7) | bad) & highs;  // the high bit of each non-digit
            return j + (__builtin_ctzll(any) >> 3);
        }
        j += 8;
    }
    while (j < n && (uint8_t)(p[j] - '0') < 10) j++;
    return j;
}

/// The end of the number starting at p[j], or -1 (RFC 8259 grammar, as the scalar scanner).
INLINE int64_t number_end(const uint8_t *p, int64_t j, int64_t n) {
    if (p[j] == '-') j++;
    if (j >= n) return -1;
    if (p[j] == '0') {
        j++;
    } else if (p[j] >= '1' && p[j] <= '9') {
        j = digits_end(p, j + 1, n);
    } else {
        return -1;
    }
    if (j < n && p[j] == '.') {
        j++;
        if (j >= n || (uint8_t)(p[j] - '0') >= 10) return -1;
        j = digits_end(p, j + 1, n);
    }
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        j++;
        if (j < n && (p[j] == '+' || p[j] == '-')) j++;
        if (j >= n || (uint8_t)(p[j] - '0') >= 10) return -1;
        j = digits_end(p, j + 1, n);
    }
    return j;
}

/// Whether a[0..<n] equals b[0..<n], without a call: word loads (the last one overlapping) that
/// stay inside both ranges. Keys are short; most differ in their length before this is asked.
INLINE int bytes_equal(const uint8_t *a, const uint8_t *b, int64_t n) {
    if (n >= 8) {
        uint64_t x, y;
        for (int64_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&x, a + i, 8); memcpy(&y, b + i, 8);
            if (x != y) return 0;
        }
        memcpy(&x, a + n - 8, 8); memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t x, y, u, v;
        memcpy(&x, a, 4); memcpy(&y, b, 4); memcpy(&u, a + n - 4, 4); memcpy(&v, b + n - 4, 4);
        return ((x ^ y) | (u ^ v)) == 0;
    }
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

// MARK: - The scan, instantiated per classifier

#define SCAN_NAME scan_portable
#define SCAN_ATTR __attribute__((noinline))  // kept out of the dispatchers below (their frames stay small)
#define WALK_ATTR INLINE
#define CLASSIFY classify_portable
#define CLASSIFY_PARTIAL(p, k, m) classify_portable_partial(p, k, m)
#define IN_PLACE_OK(p) 0
#define PREFIX_XOR prefix_xor_portable
#include "lethe_json_scan_impl.h"
#undef SCAN_NAME
#undef SCAN_ATTR
#undef WALK_ATTR
#undef CLASSIFY
#undef CLASSIFY_PARTIAL
#undef IN_PLACE_OK
#undef PREFIX_XOR

#if defined(__x86_64__)
#define SCAN_NAME scan_avx2
#define SCAN_ATTR AVX_TARGET
#define WALK_ATTR AVX_TARGET INLINE
#define CLASSIFY classify_avx2
#define CLASSIFY_PARTIAL(p, k, m) classify_avx2_partial(p, k, m)
#define IN_PLACE_OK(p) ((((uintptr_t)(p)) & 4095) <= 4096 - 64)
#define PREFIX_XOR prefix_xor_clmul
#include "lethe_json_scan_impl.h"
#undef SCAN_NAME
#undef SCAN_ATTR
#undef WALK_ATTR
#undef CLASSIFY
#undef CLASSIFY_PARTIAL
#undef IN_PLACE_OK
#undef PREFIX_XOR
#endif

int lethe_json_locate(const lethe_json_trie *trie, const uint8_t *doc, size_t n, lethe_json_match *results,
                      int32_t *stack, int portable) {
    init_classes();
#if defined(__x86_64__)
    if (!portable && detect_avx2()) return scan_avx2_locate(trie, doc, (int64_t)n, results, stack);
#endif
    (void)portable;
    return scan_portable_locate(trie, doc, (int64_t)n, results, stack);
}

int32_t lethe_json_scan_lines(const lethe_json_trie *trie, const uint8_t *buf, size_t n, int32_t max_lines,
                              lethe_json_line *lines, lethe_json_match *results, int32_t *stack, int portable) {
    init_classes();
    if (n == 0 || max_lines <= 0) return 0;
#if defined(__x86_64__)
    if (!portable && detect_avx2()) return scan_avx2_lines(trie, buf, (int64_t)n, max_lines, lines, results, stack);
#endif
    (void)portable;
    return scan_portable_lines(trie, buf, (int64_t)n, max_lines, lines, results, stack);
}

int lethe_json_scan(const lethe_json_trie *trie, const uint8_t *doc, size_t n, int stop_when_found,
                    lethe_json_match *results, int64_t *stopped_at, int32_t *stack, int portable) {
    init_classes();
#if defined(__x86_64__)
    if (!portable && detect_avx2()) return scan_avx2(trie, doc, (int64_t)n, stop_when_found, results, stopped_at, stack);
#endif
    (void)portable;
    return scan_portable(trie, doc, (int64_t)n, stop_when_found, results, stopped_at, stack);
}
