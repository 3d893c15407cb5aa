// One instantiation of the two-stage scan (included by lethe_json.c with SCAN_NAME, SCAN_ATTR,
// CLASSIFY and PREFIX_XOR defined). Not a public header.

/// Stage 1's state between blocks, and the positions of the current block not yet walked.
#define STATE_T JOIN(SCAN_NAME, _state)
typedef struct {
    const uint8_t *p;
    int64_t n;
    int64_t next_block;   // offset of the next block to classify
    uint64_t in_string;   // all ones when the previous block ended inside a string
    uint64_t escape;      // 1 when the previous block ended in an unescaped backslash
    uint64_t atom;        // 1 when the previous block ended inside a number or literal
    int64_t bs_end;       // the end of the last classified block that holds a backslash (0: none yet)
    int error;            // a control byte inside a string
} STATE_T;

#define REFILL JOIN(SCAN_NAME, _refill)

/// A state at offset `at` outside any string, number or literal (a document's or a line's start).
INLINE void JOIN(SCAN_NAME, _reset)(STATE_T *s, int64_t at) {
    s->next_block = at; s->in_string = 0; s->escape = 0; s->atom = 0; s->error = 0;
}

/// Classifies the next block (at s->next_block) and returns its structural positions — with `lines`,
/// line feeds outside strings too (where each line of a JSON Lines window ends); on a control byte
/// inside a string sets s->error and returns 0.
WALK_ATTR uint64_t REFILL(STATE_T *s, const int lines) {
    int64_t at = s->next_block, left = s->n - at;
    raw_masks m;
    if (LIKELY(left >= 64)) {
        CLASSIFY(s->p + at, &m);
    } else {
        // The last partial block, padded with spaces (insignificant). Read in place when the
        // 64 bytes stay inside the page of the first, else copied.
#if !defined(__SANITIZE_ADDRESS__) && !(defined(__has_feature) && __has_feature(address_sanitizer))
        if (IN_PLACE_OK(s->p + at)) {
            CLASSIFY_PARTIAL(s->p + at, left, &m);
        } else
#endif
        {
            uint8_t pad[64];
            memset(pad, ' ', 64);
            memcpy(pad, s->p + at, (size_t)left);
            CLASSIFY(pad, &m);
        }
    }
    // Bytes escaped by a backslash: each backslash not itself escaped escapes the next byte.
    uint64_t escaped = s->escape;
    s->escape = 0;
    if (UNLIKELY(m.bs != 0)) {
        s->bs_end = at + 64;
        uint64_t b = m.bs & ~escaped;
        while (b) {
            int i = __builtin_ctzll(b);
            if (i == 63) { s->escape = 1; break; }
            escaped |= 2ULL << i;
            b &= ~(3ULL << i);
        }
    }
    uint64_t quote = m.quote & ~escaped;
    uint64_t in_string = PREFIX_XOR(quote) ^ s->in_string;  // opening quote and content
    s->in_string = (uint64_t)((int64_t)in_string >> 63);
    s->next_block = at + 64;
    if (UNLIKELY(m.ctrl & in_string & ~quote)) { s->error = 1; return 0; }
    uint64_t atom = ~(in_string | quote | m.op | m.ws);
    uint64_t atom_start = atom & ~((atom << 1) | s->atom);
    s->atom = atom >> 63;
    uint64_t bits = (m.op & ~in_string) | quote | atom_start;
    return lines ? bits | (m.nl & ~in_string) : bits;
}

/// Classifies blocks until one has a structural position and returns them (that block's offset
/// is then s->next_block - 64); 0 at the end of the document or after an error (a control byte
/// inside a string). The walk's cold path: it takes the current block's positions from a register.
WALK_ATTR uint64_t JOIN(SCAN_NAME, _more_in)(STATE_T *s, const int lines) {
    while (s->next_block < s->n) {
        uint64_t bits = REFILL(s, lines);
        if (UNLIKELY(s->error)) return 0;
        if (bits) return bits;
    }
    return 0;
}
SCAN_ATTR static uint64_t JOIN(SCAN_NAME, _more)(STATE_T *s) { return JOIN(SCAN_NAME, _more_in)(s, 0); }
SCAN_ATTR static uint64_t JOIN(SCAN_NAME, _more_lines)(STATE_T *s) { return JOIN(SCAN_NAME, _more_in)(s, 1); }

/// The walk over the structural positions, a goto per grammar state so that nothing is re-checked:
/// `value` (a value starts at `pos`), `key` (a member's key starts at `pos`), `after` (a value
/// inside the current container ended at `end`), `closed` (the current container closed at `pos`).
/// The current container's frame is in a register (`frame`: node + 1 of an object, -1 for an
/// array); `stack` holds the frames of the containers around it. Whether to stop early is asked
/// only where it can change: when a scalar was recorded at depth 1, and when a container closes
/// back to depth 1.
///
/// `lines` 0: p[0..<n] is the document (the stream of positions starts at *s, the state of offset 0).
/// `lines` 1: the document is the line whose positions come next in the stream (`*bits_io` at
/// `*base_io`, then the blocks from *s), in a window of whole lines (p[n - 1] is a line feed): it ends
/// at the line feed that follows its top-level value, whose offset goes to *line_end. Returns 1 then,
/// with the stream's state left after that line feed for the next line; 2 for a blank line (its line
/// feed is the first position); 0 when it declines (the stream's state is then unspecified).
WALK_ATTR int JOIN(SCAN_NAME, _walk)(const lethe_json_trie *t, const uint8_t *p, int64_t n, const int lines,
                                     STATE_T *sp, uint64_t *bits_io, int64_t *base_io, int64_t *line_end,
                                     int stop_when_found, lethe_json_match *results, int64_t *stopped_at, int32_t *stack) {
    uint64_t bits = *bits_io;
    int64_t base = *base_io;
    const lethe_json_trie tr = *t;  // a local copy: its pointers need no reload after the result stores
    const int32_t paths = tr.path_count;
    for (int32_t k = 0; k < paths; k++) {
        results[k].start = 0; results[k].end = 0; results[k].kind = K_ABSENT; results[k].escaped = 0;
    }
    *stopped_at = -1;
    const int32_t stop_at = stop_when_found ? paths : INT32_MAX;
    int32_t found = 0;
    int depth = 0;
    int32_t frame = 0;    // the current container's frame (valid when depth > 0)
    int32_t pending = 0;  // trie node of the value about to be read, -1 when off every path
    int64_t bs_end = sp->bs_end;  // in a register: a string before it may hold a backslash
    int64_t pos, end, close;
    uint8_t keybuf[256];  // an escaped key inside a searched object, unescaped

    // The next structural position into VAR; declines at the end of the document (only the
    // end of the top-level value may be followed by it, see `done`) or on an error.
#define ADVANCE(VAR)                                                                        \
    do {                                                                                    \
        if (UNLIKELY(bits == 0)) {                                                          \
            bits = lines ? JOIN(SCAN_NAME, _more_lines)(sp) : JOIN(SCAN_NAME, _more)(sp);   \
            if (bits == 0) return 0;                                                        \
            base = sp->next_block - 64;                                                     \
            bs_end = sp->bs_end;                                                            \
        }                                                                                   \
        VAR = base + __builtin_ctzll(bits);                                                 \
        bits &= bits - 1;                                                                   \
    } while (0)

#define RECORD(KIND, START, END, ESC)                                                   \
    do {                                                                                \
        int32_t tc = tr.term_count[pending];                                            \
        for (int32_t q = tr.term_start[pending], qe = q + tc; q < qe; q++) {            \
            lethe_json_match *r = &results[tr.terms[q]];                                \
            if (r->kind != K_ABSENT) return 0;                                          \
            r->start = (START); r->end = (END); r->kind = (KIND); r->escaped = (ESC);   \
            found++;                                                                    \
        }                                                                               \
    } while (0)

    // A scalar (ending at `end`): recorded when on a path, then the early stop (depth 1 only).
#define SCALAR(KIND, START, END, ESC)                                   \
    do {                                                                \
        if (UNLIKELY(pending >= 0)) {                                   \
            RECORD(KIND, START, END, ESC);                              \
            if (depth == 1 && found >= stop_at) {                       \
                *stopped_at = end;                                      \
                return 1;                                               \
            }                                                           \
        }                                                               \
        if (UNLIKELY(depth == 0)) goto done;                            \
        goto after;                                                     \
    } while (0)

    ADVANCE(pos);
    if (lines && p[pos] == '\n') {  // a blank line
        *line_end = pos; *bits_io = bits; *base_io = base;
        return 2;
    }

value:
    if (LIKELY(p[pos] == '"')) goto string_value;  // the commonest value: a direct branch, not the switch's jump
    switch (p[pos]) {
    case '{': {
        if (pending >= 0) RECORD(K_OBJECT, pos, pos + 1, 0);
        if (depth >= LETHE_JSON_MAX_DEPTH) return 0;
        int32_t node = (pending >= 0 && tr.child_count[pending] > 0) ? pending : -1;
        stack[depth++] = frame;
        frame = node + 1;
        ADVANCE(pos);
        if (p[pos] == '}') goto closed;
        goto key;
    }
    case '[':
        if (pending >= 0) RECORD(K_ARRAY, pos, pos + 1, 0);
        if (depth >= LETHE_JSON_MAX_DEPTH) return 0;
        stack[depth++] = frame;
        frame = -1;
        ADVANCE(pos);
        if (p[pos] == ']') goto closed;
        pending = -1;
        goto value;
    case '"': {
    string_value:
        ADVANCE(close);
        int esc = 0;
        if (UNLIKELY(bs_end > pos) && memchr(p + pos + 1, '\\', (size_t)(close - pos - 1))) {
            if (!valid_escapes(p, pos + 1, close)) return 0;
            esc = 1;
        }
        end = close + 1;
        SCALAR(K_STRING, pos + 1, close, esc);
    }
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        end = number_end(p, pos, n);
        if (end < 0 || (end < n && is_atom_byte(p[end]))) return 0;
        SCALAR(K_NUMBER, pos, end, 0);
    case 't':
        if (pos + 4 > n || p[pos + 1] != 'r' || p[pos + 2] != 'u' || p[pos + 3] != 'e') return 0;
        end = pos + 4;
        if (end < n && is_atom_byte(p[end])) return 0;
        SCALAR(K_BOOL, pos, end, 0);
    case 'f':
        if (pos + 5 > n || p[pos + 1] != 'a' || p[pos + 2] != 'l' || p[pos + 3] != 's' || p[pos + 4] != 'e') return 0;
        end = pos + 5;
        if (end < n && is_atom_byte(p[end])) return 0;
        SCALAR(K_BOOL, pos, end, 0);
    case 'n':
        if (pos + 4 > n || p[pos + 1] != 'u' || p[pos + 2] != 'l' || p[pos + 3] != 'l') return 0;
        end = pos + 4;
        if (end < n && is_atom_byte(p[end])) return 0;
        SCALAR(K_NULL, pos, end, 0);
    default:
        return 0;
    }

after:  // a value inside the current container ended (at `end`): a separator or the closer
    ADVANCE(pos);
    {
        uint8_t c = p[pos];
        if (c == ',') {
            ADVANCE(pos);
            if (frame >= 0) goto key;
            pending = -1;
            goto value;
        }
        if (frame >= 0 ? c != '}' : c != ']') return 0;
    }
closed:  // the current container closed at `pos`
    frame = stack[--depth];
    end = pos + 1;
    if (depth == 1 && found >= stop_at) {
        *stopped_at = end;
        return 1;
    }
    if (depth == 0) goto done;
    goto after;

key: {  // a member of an object whose trie node is frame - 1 starts at `pos`
        if (p[pos] != '"') return 0;
        ADVANCE(close);
        const uint8_t *kp = p + pos + 1;
        int64_t kn = close - pos - 1;
        const int32_t node = frame - 1;
        if (UNLIKELY(bs_end > pos) && memchr(kp, '\\', (size_t)kn)) {
            if (!valid_escapes(p, pos + 1, close)) return 0;
            if (node >= 0) {
                if (kn > (int64_t)sizeof keybuf) return 0;
                kn = unescape(p, pos + 1, close, keybuf);
                kp = keybuf;
            }
        }
        pending = -1;
        if (node >= 0) {
            for (int32_t c = tr.child_start[node], ce = c + tr.child_count[node]; c < ce; c++) {
                if (tr.key_len[c] == kn && bytes_equal(tr.key_bytes + tr.key_start[c], kp, kn)) {
                    pending = c;
                    break;
                }
            }
        }
        ADVANCE(pos);
        if (p[pos] != ':') return 0;
        ADVANCE(pos);
        goto value;
    }

done:  // the top-level value ended: nothing may follow (in a line: but its line feed)
    if (lines) {
        ADVANCE(pos);
        if (p[pos] != '\n') return 0;
        *line_end = pos; *bits_io = bits; *base_io = base;
        return 1;
    }
    if (bits) return 0;
    while (sp->next_block < n) {
        if (REFILL(sp, 0) || sp->error) return 0;
    }
    return 1;
#undef RECORD
#undef SCALAR
}

/// One document: p[0..<n].
SCAN_ATTR static int SCAN_NAME(const lethe_json_trie *t, const uint8_t *p, int64_t n, int stop_when_found,
                               lethe_json_match *results, int64_t *stopped_at, int32_t *stack) {
    STATE_T s;
    s.p = p; s.n = n; s.bs_end = 0;
    JOIN(SCAN_NAME, _reset)(&s, 0);
    uint64_t bits = 0;
    int64_t base = 0, end;
    return JOIN(SCAN_NAME, _walk)(t, p, n, 0, &s, &bits, &base, &end, stop_when_found, results, stopped_at, stack);
}

/// The lines of a window, up to `max_lines` (see lethe_json_scan_lines): one stream of positions
/// for all of them, classified once. A line that declines ends at its first line feed, and the
/// stream starts again after it (a malformed line may leave a string open).
SCAN_ATTR static int32_t JOIN(SCAN_NAME, _lines)(const lethe_json_trie *t, const uint8_t *p, int64_t n, int32_t max_lines,
                                                 lethe_json_line *out, lethe_json_match *results, int32_t *stack) {
    STATE_T s;
    s.p = p; s.n = n; s.bs_end = 0;
    JOIN(SCAN_NAME, _reset)(&s, 0);
    uint64_t bits = 0;
    int64_t base = 0, start = 0, stopped;
    const int32_t paths = t->path_count;
    int32_t k = 0;
    while (k < max_lines && start < n) {
        int64_t end = n;
        int r = JOIN(SCAN_NAME, _walk)(t, p, n, 1, &s, &bits, &base, &end, 0, results + (size_t)k * (size_t)paths, &stopped, stack);
        if (r == 0) {
            const uint8_t *lf = memchr(p + start, '\n', (size_t)(n - start));
            end = lf ? (int64_t)(lf - p) : n;
            JOIN(SCAN_NAME, _reset)(&s, end + 1);
            bits = 0;
        }
        out[k].start = start; out[k].end = end; out[k].status = r;
        k++;
        start = end + 1;
    }
    return k;
}

/// The subject-locating walk of `lethe_json_locate`: reads a top-level object only up to the first
/// occurrence of every searched path, as if the document were valid. Keys are matched as in the scan
/// (escaped keys unescaped); a member off every path is stepped over whole (a string by its closing
/// quote, an object or array by counting its brackets) without checking its grammar; it never
/// descends into an unsearched container. 1: every path was found (results filled); 2: the top-level
/// object closed first (some path is absent); 0: declined (not an object, a duplicate, an escaped
/// key longer than 256 bytes, a searched number that is not one, or the end of the buffer first).
SCAN_ATTR static int JOIN(SCAN_NAME, _locate)(const lethe_json_trie *t, const uint8_t *p, int64_t n,
                                              lethe_json_match *results, int32_t *stack) {
    STATE_T s;
    STATE_T *const sp = &s;
    const int lines = 0;
    uint64_t bits = 0;
    int64_t base = 0;
    s.p = p; s.n = n; s.bs_end = 0;
    JOIN(SCAN_NAME, _reset)(&s, 0);
    const int32_t paths = t->path_count;
    for (int32_t k = 0; k < paths; k++) {
        results[k].start = 0; results[k].end = 0; results[k].kind = K_ABSENT; results[k].escaped = 0;
    }
    int32_t found = 0;
    int depth = 0;        // searched objects open around `node`
    int32_t node = 0;     // the trie node of the innermost open (searched) object
    int32_t child;        // the trie node of the member being read, -1 when off every path
    int64_t bs_end = 0;
    int64_t pos, close;
    uint8_t keybuf[256];

    // ADVANCE: as in the scan above (defined there, undefined at the end of this one).

#define RECORD(KIND, START, END, ESC)                                                   \
    do {                                                                                \
        for (int32_t q = t->term_start[child], qe = q + t->term_count[child]; q < qe; q++) { \
            lethe_json_match *r = &results[t->terms[q]];                                \
            if (r->kind != K_ABSENT) return 0;                                          \
            r->start = (START); r->end = (END); r->kind = (KIND); r->escaped = (ESC);   \
            found++;                                                                    \
        }                                                                               \
        if (found >= paths) return 1;                                                   \
    } while (0)

    ADVANCE(pos);
    if (p[pos] != '{') return 0;
    ADVANCE(pos);
    if (p[pos] == '}') return 2;

member: {  // a key of the object of trie node `node` starts at `pos`
        if (UNLIKELY(p[pos] != '"')) return 0;
        ADVANCE(close);
        const uint8_t *kp = p + pos + 1;
        int64_t kn = close - pos - 1;
        if (UNLIKELY(bs_end > pos) && memchr(kp, '\\', (size_t)kn)) {
            if (kn > (int64_t)sizeof keybuf || !valid_escapes(p, pos + 1, close)) return 0;
            kn = unescape(p, pos + 1, close, keybuf);
            kp = keybuf;
        }
        child = -1;
        for (int32_t c = t->child_start[node], ce = c + t->child_count[node]; c < ce; c++) {
            if (t->key_len[c] == kn && bytes_equal(t->key_bytes + t->key_start[c], kp, kn)) {
                child = c;
                break;
            }
        }
        ADVANCE(pos);  // the colon
        ADVANCE(pos);  // the value
        uint8_t c = p[pos];
        if (child < 0) {
            if (c == '"') {
                ADVANCE(pos);  // its closing quote
            } else if (c == '{' || c == '[') {
                goto skip;
            }
            goto after;
        }
        switch (c) {
        case '{':
            RECORD(K_OBJECT, pos, pos + 1, 0);
            if (t->child_count[child] == 0) goto skip;
            if (depth >= LETHE_JSON_MAX_DEPTH) return 0;
            stack[depth++] = node;
            node = child;
            ADVANCE(pos);
            if (p[pos] == '}') goto closed;
            goto member;
        case '[':
            RECORD(K_ARRAY, pos, pos + 1, 0);
            goto skip;
        case '"': {
            ADVANCE(close);
            int esc = 0;
            if (UNLIKELY(bs_end > pos) && memchr(p + pos + 1, '\\', (size_t)(close - pos - 1))) {
                if (!valid_escapes(p, pos + 1, close)) return 0;
                esc = 1;
            }
            RECORD(K_STRING, pos + 1, close, esc);
            goto after;
        }
        case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': {
            int64_t end = number_end(p, pos, n);
            if (end < 0 || (end < n && is_atom_byte(p[end]))) return 0;
            RECORD(K_NUMBER, pos, end, 0);
            goto after;
        }
        case 't': RECORD(K_BOOL, pos, pos + 4 <= n ? pos + 4 : n, 0); goto after;  // (not checked: never a subject)
        case 'f': RECORD(K_BOOL, pos, pos + 5 <= n ? pos + 5 : n, 0); goto after;
        case 'n': RECORD(K_NULL, pos, pos + 4 <= n ? pos + 4 : n, 0); goto after;
        default: return 0;
        }
    }

skip: {  // the container opened at `pos` is off the paths below it: stepped over
        int d = 1;
        do {
            ADVANCE(pos);
            uint8_t b = p[pos];
            d += (b == '{') | (b == '[');
            d -= (b == '}') | (b == ']');
        } while (d > 0);
    }

after:  // a member's value ended: a comma or the object's end
    ADVANCE(pos);
    if (p[pos] == ',') {
        ADVANCE(pos);
        goto member;
    }
    if (UNLIKELY(p[pos] != '}')) return 0;
closed:
    if (depth == 0) return 2;
    node = stack[--depth];
    goto after;
#undef ADVANCE
#undef RECORD
}

#undef STATE_T
#undef REFILL
