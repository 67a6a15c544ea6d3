/* Glob matching with the semantics of Redis's stringmatchlen (util.c): '*', '?', '[...]' with
 * ranges and '^' negation, '\' escapes, optional ASCII case folding. Used by CONFIG GET, KEYS,
 * SCAN MATCH and PSUBSCRIBE.
 * Invariants: binary safe, reads only pat[0..plen) and str[0..slen) (no NUL terminator needed);
 * recursion happens only at '*' and is at most GLOB_MAX_NESTING deep; a '*' whose tail failed at
 * every offset stops all outer '*'s from retrying (Redis's skipLongerMatches), so a match costs
 * O(plen * slen), never exponential time.
 * Deliberate differences from Redis 7: bytes >= 0x80 compare as unsigned in ranges (Redis's
 * depends on the platform's char signedness), and an empty string matches a pattern made only of
 * '*' (Redis answers no, and special-cases "KEYS *" instead). */
#include "conf/glob.h"

#define GLOB_MAX_NESTING 1000 /* as Redis: deeper patterns simply do not match */

struct glob_run {
    bool nocase;
    bool skip_longer; /* a '*' tail failed everywhere: outer '*'s cannot do better */
};

static unsigned char glob_fold(unsigned char c, bool nocase)
{
    if (nocase && c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A' + 'a');
    return c;
}

/* A range "a-z" inside a class: ends in either order, folded after ordering, as Redis does. */
static bool glob_match_range(unsigned char lo, unsigned char hi, unsigned char c, bool nocase)
{
    if (lo > hi) {
        unsigned char t = lo;
        lo = hi;
        hi = t;
    }
    lo = glob_fold(lo, nocase);
    hi = glob_fold(hi, nocase);
    c = glob_fold(c, nocase);
    return c >= lo && c <= hi;
}

/* Matches byte c against the class opening at p[*pi] == '['. Leaves *pi on the closing ']' or,
 * for an unterminated class, on the pattern's last byte (Redis treats the rest as the class). */
static bool glob_match_class(const unsigned char *p, size_t plen, size_t *pi, unsigned char c,
                             bool nocase)
{
    size_t i = *pi + 1;
    bool negate = i < plen && p[i] == '^';
    bool match = false;

    if (negate)
        i++;
    for (;;) {
        size_t left = plen - i;
        if (left >= 2 && p[i] == '\\') {
            i++;
            if (p[i] == c) /* escaped bytes compare exactly, even with nocase (as Redis) */
                match = true;
        } else if (left == 0) {
            i--;
            break;
        } else if (p[i] == ']') {
            break;
        } else if (left >= 3 && p[i + 1] == '-') {
            if (glob_match_range(p[i], p[i + 2], c, nocase))
                match = true;
            i += 2;
        } else if (glob_fold(p[i], nocase) == glob_fold(c, nocase)) {
            match = true;
        }
        i++;
    }
    *pi = i;
    return negate ? !match : match;
}

static bool glob_match_from(const unsigned char *p, size_t plen, const unsigned char *s,
                            size_t slen, struct glob_run *run, int nesting);

/* p[0] is '*' (the first of a run). Tries the rest of the pattern at every offset of s. */
static bool glob_match_star(const unsigned char *p, size_t plen, const unsigned char *s,
                            size_t slen, struct glob_run *run, int nesting)
{
    while (plen > 1 && p[1] == '*') {
        p++;
        plen--;
    }
    if (plen == 1)
        return true;
    for (size_t j = 0; j < slen; j++) {
        if (glob_match_from(p + 1, plen - 1, s + j, slen - j, run, nesting + 1))
            return true;
        if (run->skip_longer)
            return false;
    }
    run->skip_longer = true;
    return false;
}

static bool glob_match_from(const unsigned char *p, size_t plen, const unsigned char *s,
                            size_t slen, struct glob_run *run, int nesting)
{
    size_t i = 0, j = 0;

    if (nesting > GLOB_MAX_NESTING)
        return false;
    while (i < plen && j < slen) {
        switch (p[i]) {
        case '*':
            return glob_match_star(p + i, plen - i, s + j, slen - j, run, nesting);
        case '?':
            break;
        case '[':
            if (!glob_match_class(p, plen, &i, s[j], run->nocase))
                return false;
            break;
        case '\\':
            if (plen - i >= 2)
                i++;
            /* fall through */
        default:
            if (glob_fold(p[i], run->nocase) != glob_fold(s[j], run->nocase))
                return false;
            break;
        }
        i++;
        j++;
    }
    if (j == slen) /* trailing '*'s match the empty rest */
        while (i < plen && p[i] == '*')
            i++;
    return i == plen && j == slen;
}

bool glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase)
{
    struct glob_run run = { .nocase = nocase, .skip_longer = false };
    return glob_match_from((const unsigned char *)pat, plen, (const unsigned char *)str, slen,
                           &run, 0);
}
