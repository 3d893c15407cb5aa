#ifndef LETHE_JSON_H
#define LETHE_JSON_H
#include <stddef.h>
#include <stdint.h>

/// The searched paths as a trie, flattened breadth first (JSONFieldScanner builds it):
/// node 0 is the root; node k's children are child_start[k] ..< child_start[k] + child_count[k];
/// its key is key_bytes[key_start[k] ..< key_start[k] + key_len[k]]; the paths ending at it are
/// terms[term_start[k] ..< term_start[k] + term_count[k]].
typedef struct {
    const uint8_t *key_bytes;
    const int64_t *key_start;
    const int64_t *key_len;
    const int32_t *child_start;
    const int32_t *child_count;
    const int32_t *term_start;
    const int32_t *term_count;
    const int32_t *terms;
    int32_t path_count;
} lethe_json_trie;

/// What was found at one path (kinds as JSONFieldScanner.Kind: 0 absent, 1 null, 2 string,
/// 3 number, 4 bool, 5 object, 6 array).
typedef struct {
    int64_t start;
    int64_t end;
    uint8_t kind;
    uint8_t escaped;
} lethe_json_match;

/// The deepest nesting the fast path follows (JSONFieldScanner.maxDepth).
#define LETHE_JSON_MAX_DEPTH 512

/// The two-stage scan of one document: a vectorised pass classifies 64 bytes at a time into
/// bitmasks (quotes outside escapes, string interiors by a carry-less prefix XOR, structural
/// characters and the first byte of each number or literal), and a walk over those positions
/// follows only the grammar and the searched paths.
///
/// Returns 1 when the document is valid and every match was found (results[0..<path_count]
/// filled; *stopped_at is -1, or with stop_when_found the offset where the walk stopped, as
/// JSONFieldScanner.scan(_:stopWhenFound:) defines it). Returns 0 when the fast path declines:
/// the document may be malformed, a searched key is written with escapes, a searched field is
/// duplicated, or nesting exceeds LETHE_JSON_MAX_DEPTH. The caller then runs the exact scalar
/// scanner, which decides (and names the error). The fast path never accepts a document the
/// scalar scanner rejects, and finds the same matches.
///
/// `stack` holds LETHE_JSON_MAX_DEPTH entries. `portable`: use the scalar classification even
/// when the CPU has AVX2 and PCLMULQDQ (tests compare both).
int lethe_json_scan(const lethe_json_trie *trie, const uint8_t *doc, size_t n, int stop_when_found,
                    lethe_json_match *results, int64_t *stopped_at, int32_t *stack, int portable);

/// One line of a window scanned by `lethe_json_scan_lines`: its offsets (`end` is its line feed's) and
/// status: 1 scanned (valid, its matches filled), 2 blank (whitespace only), 0 declined (the caller
/// scans the line alone with `lethe_json_scan`, then the scalar scanner, which decides).
typedef struct {
    int64_t start;
    int64_t end;
    int32_t status;
} lethe_json_line;

/// `lethe_json_scan` of each line of a JSON Lines window, up to `max_lines` of them, with one
/// classification of the window's bytes (a line is not classified block by block from its own
/// start, and its end is found by the same pass). `buf[0..<n]` must hold whole lines: `buf[n - 1]`
/// is a line feed. A line is the bytes up to its line feed (a carriage return before it is
/// whitespace). Line k's status and offsets go to lines[k], its matches to
/// results[k * path_count ..< (k + 1) * path_count] with offsets into buf (not stop-when-found).
/// A line is scanned exactly as `lethe_json_scan` scans it alone (the same status 1 or 0, the same
/// matches), except that a malformed line starting within 64 bytes after its line feed (one that
/// leaves a string open, or holds a control byte inside a string) may make it decline too. Returns the number of lines done (k); the next line starts at
/// lines[k - 1].end + 1. `stack` holds LETHE_JSON_MAX_DEPTH entries.
int32_t lethe_json_scan_lines(const lethe_json_trie *trie, const uint8_t *buf, size_t n, int32_t max_lines,
                              lethe_json_line *lines, lethe_json_match *results, int32_t *stack, int portable);

/// Finds the first occurrence of every searched path in a document whose top level is an object,
/// reading it only up to there and as if it were valid JSON: the grammar is not checked, and a
/// member off every path is stepped over by its structure alone (the stream filter's
/// `--validate minimal` under `--on-malformed pass`, where a line is kept unless its subject is
/// forgotten and the whole line is valid). For a valid document the matches are those of
/// `lethe_json_scan` (first occurrences; a duplicate declines). Never reads outside doc[0..<n].
///
/// Returns 1 when every path was found (results[0..<path_count] filled; a searched string's
/// escapes are validated, a searched number is checked); 2 when the top-level object closed with
/// some path absent; 0 when it declines (the top level is not an object, a searched field occurs
/// twice, a key with escapes inside a searched object is longer than 256 bytes or badly escaped,
/// nesting of searched objects deeper than LETHE_JSON_MAX_DEPTH, or the buffer ends first): the
/// caller then scans with `lethe_json_scan`. `stack` holds LETHE_JSON_MAX_DEPTH entries.
int lethe_json_locate(const lethe_json_trie *trie, const uint8_t *doc, size_t n, lethe_json_match *results,
                      int32_t *stack, int portable);

/// 1 when the vectorised classification (AVX2 + PCLMULQDQ) is used by default, else 0.
int lethe_json_uses_avx2(void);

/// Asks the CPU to bring the cache line at `p` in (a hint: never faults, no effect on results).
/// The stream filter prefetches a deletion-set slot while it scans the next lines.
static inline void lethe_json_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
