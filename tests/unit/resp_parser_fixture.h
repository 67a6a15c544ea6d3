/* Shared by the resp_parser unit tests (test_resp_parser.c, test_resp_parser_regress.c): the
 * default bulk limit and exact-size heap copies, so that ASan catches a read past what a call
 * was given. */
#ifndef TESTS_UNIT_RESP_PARSER_FIXTURE_H
#define TESTS_UNIT_RESP_PARSER_FIXTURE_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BULK_DEFAULT (512LL * 1024 * 1024)

/* Exact-size heap copy of in[from, to). */
static inline char *slice_copy(const char *in, size_t from, size_t to)
{
    char *b = malloc(to > from ? to - from : 1);
    ck_assert_ptr_nonnull(b);
    if (to > from)
        memcpy(b, in + from, to - from);
    return b;
}

#endif
