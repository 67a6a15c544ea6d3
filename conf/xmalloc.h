/* Allocation wrappers that abort on out-of-memory, so callers never test for NULL.
 * Owns nothing; every pointer returned belongs to the caller, freed with free(). */
#ifndef CONF_XMALLOC_H
#define CONF_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* A NUL-terminated copy of n bytes of p (p may contain NULs). */
char *xmemdup(const void *p, size_t n);

#endif
