/* Glob matching as Redis's stringmatchlen: *, ?, [a-z], [^a], \x escapes; binary safe.
 * Shared by CONFIG GET, KEYS and SCAN MATCH. Bounded: recursion depth is capped. */
#ifndef CONF_GLOB_H
#define CONF_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase);

#endif
