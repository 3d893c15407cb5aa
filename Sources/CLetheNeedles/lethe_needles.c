// The multi-needle search of NeedleSet (issue 16, "sweep throughput"): a first stage that finds the
// starts worth verifying (Teddy over AVX2, or sampled grams), then a verification of each start
// against the needles sharing its first k bytes (a bit filter, a hash table, a compare, the word bounds).
#include "lethe_needles.h"
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define HASH_MUL 0x9E3779B97F4A7C15ULL

typedef struct {
    uint64_t *start;
    uint32_t *needle;
    size_t count;
    size_t cap;
} out_buf;

INLINE int is_word(uint8_t b) {
    return (uint8_t)(b - '0') < 10 || (uint8_t)((b | 0x20) - 'a') < 26;
}

INLINE uint64_t load_le(const uint8_t *p, size_t len) {
    uint64_t v = 0;
    if (len == 8) {
        memcpy(&v, p, 8);
        return v;  // x86-64 and arm64 are little-endian
    }
    for (size_t t = 0; t < len; t++) v |= (uint64_t)p[t] << (8 * t);
    return v;
}

/// Verifies the start p (p + k <= n): every needle there, in order, into out. Returns 0 when out
/// has no room left for another start's group.
INLINE int verify(const lethe_needle_set *s, const uint8_t *h, size_t n, size_t p, out_buf *out) {
    const uint32_t k = s->k;
    uint64_t pre = (p + 8 <= n) ? load_le(h + p, 8) : load_le(h + p, k);
    if (k < 8) pre &= (1ULL << (8 * k)) - 1;
    uint64_t hsh = pre * HASH_MUL;
    uint32_t bit = (uint32_t)(hsh >> 48);
    if (!((s->prefix_filter[bit >> 6] >> (bit & 63)) & 1)) return 1;
    uint64_t slot = (hsh >> s->table_shift) & s->table_mask;
    while (1) {
        uint32_t c = s->table_count[slot];
        if (c == 0) return 1;
        if (s->table_keys[slot] == pre) {
            uint32_t first = s->table_first[slot];
            for (uint32_t i = first; i < first + c; i++) {
                uint32_t a = s->needle_start[i], len = s->needle_start[i + 1] - a;
                if (p + len > n) continue;
                const uint8_t *nd = s->needle_bytes + a;
                if (len > k && memcmp(h + p + k, nd + k, len - k) != 0) continue;
                if (s->word_bounded) {
                    uint8_t f = s->needle_flags[i];
                    if ((f & 1) && p > 0 && is_word(h[p - 1])) continue;
                    if ((f & 2) && p + len < n && is_word(h[p + len])) continue;
                }
                out->start[out->count] = p;
                out->needle[out->count] = i;
                out->count++;
            }
            return out->count + s->max_group <= out->cap;
        }
        slot = (slot + 1) & s->table_mask;
    }
}

/// The portable first stage over the starts lo ..< hi (hi <= n - k + 1). Returns the start to
/// resume from when out filled, or hi.
static size_t sampled(const lethe_needle_set *s, const uint8_t *h, size_t n, size_t lo, size_t hi, out_buf *out) {
    if (lo >= hi) return hi;
    if (s->q == 0) {
        for (size_t p = lo; p < hi; p++)
            if (!verify(s, h, n, p, out)) return p + 1;
        return hi;
    }
    const size_t q = s->q, st = s->stride;
    const uint64_t qmask = q == 8 ? ~0ULL : (1ULL << (8 * q)) - 1;
    const uint32_t shift = s->gram_shift;
    const uint8_t *g = s->grams;
    // Sample j covers the starts j - st + 1 ... j (the windows partition lo, lo + st, ...). A window
    // whose sample cannot be loaded (j + q > n) holds no occurrence.
    size_t j = lo + st - 1;
    const size_t last = hi + st - 1;  // samples below this
    while (j < last && j + 8 <= n) {
        uint64_t gram = load_le(h + j, 8) & qmask;
        if (__builtin_expect(g[(gram * HASH_MUL) >> shift] != 0, 0)) {
            size_t p = j + 1 - st, e = j + 1 < hi ? j + 1 : hi;
            for (; p < e; p++)
                if (p + s->k <= n && !verify(s, h, n, p, out)) return p + 1;
        }
        j += st;
    }
    while (j < last && j + q <= n) {
        uint64_t gram = load_le(h + j, q);
        if (g[(gram * HASH_MUL) >> shift] != 0) {
            size_t p = j + 1 - st, e = j + 1 < hi ? j + 1 : hi;
            for (; p < e; p++)
                if (p + s->k <= n && !verify(s, h, n, p, out)) return p + 1;
        }
        j += st;
    }
    return hi;
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX_TARGET __attribute__((target("avx2,bmi,popcnt")))

static int have_avx2 = -1;
int lethe_needles_have_avx2(void) {
    int v = __atomic_load_n(&have_avx2, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi");
        __atomic_store_n(&have_avx2, v, __ATOMIC_RELAXED);
    }
    return v;
}

/// Teddy: the blocks over which candidates are counted, the count above which a block is dense,
/// and how many blocks the sampled stage then takes before Teddy is tried again.
#define TEDDY_BLOCK 4096
#define TEDDY_DENSE (TEDDY_BLOCK / 24)
#define TEDDY_BACKOFF 16

AVX_TARGET static size_t teddy(const lethe_needle_set *s, const uint8_t *h, size_t n, size_t lo, size_t hi, int adaptive,
                               out_buf *out) {
    const size_t o = s->teddy_offset;
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const __m128i *tm = (const __m128i *)s->teddy_masks;
    const __m256i l0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(tm + 0));
    const __m256i h0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(tm + 1));
    const __m256i l1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(tm + 2));
    const __m256i h1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(tm + 3));
    const __m256i l2 = _mm256_broadcastsi128_si256(_mm_loadu_si128(tm + 4));
    const __m256i h2 = _mm256_broadcastsi128_si256(_mm_loadu_si128(tm + 5));
    const __m256i zero = _mm256_setzero_si256();
    size_t p0 = lo;  // the first start of the next vector (fingerprint position p0 + o)
    while (p0 < hi) {
        size_t block_end = p0 + TEDDY_BLOCK < hi ? p0 + TEDDY_BLOCK : hi;
        size_t cands = 0;
        // Vectors while their 34 bytes can be loaded.
        while (p0 < block_end && p0 + o + 34 <= n) {
            const uint8_t *x = h + p0 + o;
            __m256i b0 = _mm256_loadu_si256((const __m256i *)x);
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(x + 1));
            __m256i b2 = _mm256_loadu_si256((const __m256i *)(x + 2));
            __m256i r0 = _mm256_and_si256(_mm256_shuffle_epi8(l0, _mm256_and_si256(b0, nib)),
                                          _mm256_shuffle_epi8(h0, _mm256_and_si256(_mm256_srli_epi16(b0, 4), nib)));
            __m256i r1 = _mm256_and_si256(_mm256_shuffle_epi8(l1, _mm256_and_si256(b1, nib)),
                                          _mm256_shuffle_epi8(h1, _mm256_and_si256(_mm256_srli_epi16(b1, 4), nib)));
            __m256i r2 = _mm256_and_si256(_mm256_shuffle_epi8(l2, _mm256_and_si256(b2, nib)),
                                          _mm256_shuffle_epi8(h2, _mm256_and_si256(_mm256_srli_epi16(b2, 4), nib)));
            __m256i r = _mm256_and_si256(_mm256_and_si256(r0, r1), r2);
            uint32_t m = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(r, zero));
            if (__builtin_expect(m != 0, 0)) {
                if (p0 + 32 > block_end) m &= (uint32_t)((1ULL << (block_end - p0)) - 1);
                cands += (size_t)__builtin_popcount(m);
                while (m) {
                    size_t p = p0 + (size_t)__builtin_ctz(m);
                    m &= m - 1;
                    if (!verify(s, h, n, p, out)) return p + 1;
                }
            }
            p0 += 32;
        }
        if (p0 < block_end) {
            // The last starts, where a vector would read past the end: verified one by one.
            for (size_t p = p0; p < block_end; p++)
                if (!verify(s, h, n, p, out)) return p + 1;
            p0 = block_end;
        }
        p0 = p0 < block_end ? p0 : block_end;
        if (adaptive && cands > TEDDY_DENSE && p0 < hi) {
            // Dense candidates (needles sharing short runs with the data): the sampled stage for a while.
            size_t e = p0 + TEDDY_BLOCK * TEDDY_BACKOFF < hi ? p0 + TEDDY_BLOCK * TEDDY_BACKOFF : hi;
            size_t r = sampled(s, h, n, p0, e, out);
            if (r < e) return r;
            p0 = e;
        }
    }
    return hi;
}
#else
int lethe_needles_have_avx2(void) { return 0; }
#endif

size_t lethe_needles_find(const lethe_needle_set *s, const uint8_t *hay, size_t n, size_t from, int mode,
                          uint64_t *out_start, uint32_t *out_needle, size_t cap, size_t *next) {
    out_buf out = {out_start, out_needle, 0, cap};
    *next = n;
    if (s->count == 0 || n < s->k || from > n - s->k) return 0;
    size_t hi = n - s->k + 1;
    size_t r;
#if defined(__x86_64__)
    if (mode != 1 && s->teddy && lethe_needles_have_avx2())
        r = teddy(s, hay, n, from, hi, mode == 0, &out);
    else
#endif
        r = sampled(s, hay, n, from, hi, &out);
    (void)mode;
    *next = r < hi ? r : n;
    return out.count;
}
