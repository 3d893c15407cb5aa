#ifndef LETHE_NEEDLES_H
#define LETHE_NEEDLES_H
#include <stddef.h>
#include <stdint.h>

/// A needle set's tables, built by NeedleSet (Swift) and only read here.
///
/// Needles are sorted in byte order (shorter first on a tie) and deduplicated; needle i is
/// needle_bytes[needle_start[i] ..< needle_start[i + 1]], needle_flags[i] bit 0: it begins with an
/// ASCII letter or digit, bit 1: it ends with one. `k` = min(8, shortest): needles sharing their
/// first k bytes are consecutive (a group). The groups are found by their first k bytes (as a
/// little-endian integer): `prefix_filter` (65,536 bits at (prefix * 0x9E3779B97F4A7C15) >> 48), then
/// an open-addressed table of table_mask + 1 slots at (prefix * 0x9E3779B97F4A7C15) >> table_shift,
/// probed linearly: table_keys, table_first (first needle of the group), table_count (0: empty).
///
/// Two first stages find the starts to verify:
/// - sampled grams (portable, the former Swift kernel): every `stride`-th position's `q`-byte gram
///   looked up in `grams` (1 << (64 - gram_shift) bytes, nonzero where a needle has that gram at an
///   offset below `stride`); q == 0: every start is verified.
/// - Teddy (AVX2, when `teddy` is nonzero and the CPU has it): the 3 bytes at `teddy_offset` of a
///   needle start, looked up 32 positions at a time by nibble (`teddy_masks`: for byte j of the 3, 16
///   bytes of bucket bits by low nibble, then 16 by high nibble; 96 bytes in all). A run of dense
///   candidates switches to the sampled stage for a while.
typedef struct {
    const uint8_t *needle_bytes;
    const uint32_t *needle_start;
    const uint8_t *needle_flags;
    uint32_t count;
    uint32_t k;
    uint32_t word_bounded;
    uint32_t max_group;
    const uint64_t *prefix_filter;
    const uint64_t *table_keys;
    const uint32_t *table_first;
    const uint32_t *table_count;
    uint64_t table_mask;
    uint32_t table_shift;
    uint32_t q;
    uint32_t stride;
    uint32_t gram_shift;
    const uint8_t *grams;
    uint32_t teddy;
    uint32_t teddy_offset;
    const uint8_t *teddy_masks;
} lethe_needle_set;

/// Finds the occurrences of the set's needles starting at `from` or later in hay[0 ..< n], in order
/// of start and, at one start, of needle; writes at most `cap` of them (start, needle index) and
/// returns how many. *next is where to resume (a start after the last one reported) or n when the
/// haystack is done. `cap` must be at least `max_group`. `mode`: 0 the fastest the CPU has, 1 the
/// portable stage only, 2 Teddy whenever the set has it (never switching; tests).
size_t lethe_needles_find(const lethe_needle_set *set, const uint8_t *hay, size_t n, size_t from, int mode,
                          uint64_t *out_start, uint32_t *out_needle, size_t cap, size_t *next);

/// Whether the Teddy stage can run here (x86-64 with AVX2).
int lethe_needles_have_avx2(void);

#endif
