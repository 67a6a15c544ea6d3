/* Unit tests for conf/sha256.c: the FIPS 180-2 test vectors (empty string, "abc", the 448-bit
 * message, one million 'a'), the same messages fed in pieces of every size, hex conversion and
 * the constant-time comparison. */
#include "conf/sha256.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void expect_hex(const void *msg, size_t len, const char *want)
{
    unsigned char d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256(msg, len, d);
    sha256_to_hex(d, hex);
    ck_assert_str_eq(hex, want);
}

#define V_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define V_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define M_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define V_448 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define V_MILLION "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

START_TEST(test_fips_vectors)
{
    expect_hex("", 0, V_EMPTY);
    expect_hex("abc", 3, V_ABC);
    expect_hex(M_448, strlen(M_448), V_448);
    char *a = malloc(1000000);
    ck_assert_ptr_nonnull(a);
    memset(a, 'a', 1000000);
    expect_hex(a, 1000000, V_MILLION);
    free(a);
}
END_TEST

/* The million 'a' fed 1, 7, 63, 64, 65, 1000 bytes at a time: the block buffering is right. */
START_TEST(test_incremental)
{
    static const size_t steps[] = { 1, 7, 55, 56, 63, 64, 65, 1000 };
    unsigned char chunk[1000], d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    memset(chunk, 'a', sizeof(chunk));
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct sha256 s;
        size_t left = 1000000;
        sha256_init(&s);
        while (left) {
            size_t n = steps[i] < left ? steps[i] : left;
            sha256_update(&s, chunk, n);
            left -= n;
        }
        sha256_final(&s, d);
        sha256_to_hex(d, hex);
        ck_assert_str_eq(hex, V_MILLION);
    }
    /* the 448-bit message split at every offset */
    for (size_t cut = 0; cut <= strlen(M_448); cut++) {
        struct sha256 s;
        sha256_init(&s);
        sha256_update(&s, M_448, cut);
        sha256_update(&s, M_448 + cut, strlen(M_448) - cut);
        sha256_final(&s, d);
        sha256_to_hex(d, hex);
        ck_assert_str_eq(hex, V_448);
    }
}
END_TEST

/* Lengths around the padding boundary (55, 56, 64 bytes) against known digests. */
START_TEST(test_padding_edges)
{
    char m[130];
    memset(m, 'a', sizeof(m));
    expect_hex(m, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    expect_hex(m, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    expect_hex(m, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}
END_TEST

START_TEST(test_hex_and_equal)
{
    unsigned char a[SHA256_DIGEST_LEN], b[SHA256_DIGEST_LEN];
    ck_assert(sha256_from_hex(V_ABC, SHA256_HEX_LEN, a));
    sha256("abc", 3, b);
    ck_assert(sha256_equal(a, b));
    char upper[SHA256_HEX_LEN + 1];
    for (int i = 0; i < SHA256_HEX_LEN; i++)
        upper[i] = (char)(V_ABC[i] >= 'a' ? V_ABC[i] - 32 : V_ABC[i]);
    upper[SHA256_HEX_LEN] = '\0';
    ck_assert(sha256_from_hex(upper, SHA256_HEX_LEN, a));
    ck_assert(sha256_equal(a, b));
    for (int i = 0; i < SHA256_DIGEST_LEN; i++) { /* a difference anywhere is seen */
        unsigned char c[SHA256_DIGEST_LEN];
        memcpy(c, b, sizeof(c));
        c[i] ^= 0x01;
        ck_assert(!sha256_equal(c, b));
    }
    ck_assert(!sha256_from_hex(V_ABC, SHA256_HEX_LEN - 1, a));   /* short */
    char bad[SHA256_HEX_LEN + 1];
    memcpy(bad, V_ABC, sizeof(bad));
    bad[0] = 'g'; /* not hex, first and last digit */
    ck_assert(!sha256_from_hex(bad, SHA256_HEX_LEN, a));
    memcpy(bad, V_ABC, sizeof(bad));
    bad[63] = 'x';
    ck_assert(!sha256_from_hex(bad, SHA256_HEX_LEN, a));
}
END_TEST

static Suite *sha256_suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fips_vectors);
    tcase_add_test(tc, test_incremental);
    tcase_add_test(tc, test_padding_edges);
    tcase_add_test(tc, test_hex_and_equal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sha256_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
