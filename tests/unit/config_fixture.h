/* The fixture the config unit suites share (test_config.c, test_config_security.c). Header-only,
 * of static functions: the Makefile links each tests/unit/test_*.c alone into its own binary.
 * It owns, for one test at a time (setup/teardown, Check's checked fixture), a struct config
 * initialised to the defaults, an error buffer, and a fresh mkdtemp directory whose ini files
 * (at most MAX_FILES, written by write_file) teardown removes. The expect_* helpers assert the
 * exact "FILE:LINE: reason" of a load and Redis's text of a CONFIG SET error. */
#ifndef TESTS_UNIT_CONFIG_FIXTURE_H
#define TESTS_UNIT_CONFIG_FIXTURE_H

#include "conf/config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE_UNUSED __attribute__((unused)) /* not every suite uses every helper */

#define MAX_FILES 8
#define MAX_PAIRS 64

static char tmpdir[PATH_MAX];
static char files[MAX_FILES][PATH_MAX + 32];
static int nfiles;
static struct config cfg;
static char err[CONFIG_ERR_LEN];

FIXTURE_UNUSED static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/sidecar-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    nfiles = 0;
    err[0] = '\0';
    config_init_defaults(&cfg);
}

FIXTURE_UNUSED static void teardown(void)
{
    for (int i = 0; i < nfiles; i++)
        unlink(files[i]);
    rmdir(tmpdir);
    config_free(&cfg);
}

/* Writes text to tmpdir/name and returns the path (valid until teardown). */
FIXTURE_UNUSED static const char *write_file(const char *name, const char *text)
{
    char path[sizeof(files[0])];
    int i = 0;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    while (i < nfiles && strcmp(files[i], path) != 0)
        i++;
    if (i == nfiles) {
        ck_assert_int_lt(nfiles, MAX_FILES);
        snprintf(files[nfiles++], sizeof(files[0]), "%s", path);
    }
    FILE *f = fopen(files[i], "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return files[i];
}

/* Loads text as an ini file; on failure checks that err is "PATH:LINE: reason". */
FIXTURE_UNUSED static void expect_load_error(const char *text, int line, const char *reason)
{
    const char *path = write_file("bad.ini", text);
    char want[CONFIG_ERR_LEN];
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, reason);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
}

FIXTURE_UNUSED static void expect_load_ok(const char *text)
{
    const char *path = write_file("good.ini", text);
    int rc = config_load_file(&cfg, path, err, sizeof(err));
    ck_assert_msg(rc == 0, "load failed: %s", err);
}

/* CONFIG GET results collected into name/value pairs. */
struct pairs {
    size_t n;
    char name[MAX_PAIRS][96];
    char value[MAX_PAIRS][512];
};

FIXTURE_UNUSED static void pairs_add(void *ctx, const char *name, const char *value)
{
    struct pairs *p = ctx;
    ck_assert_uint_lt(p->n, MAX_PAIRS);
    snprintf(p->name[p->n], sizeof(p->name[0]), "%s", name);
    snprintf(p->value[p->n], sizeof(p->value[0]), "%s", value);
    p->n++;
}

FIXTURE_UNUSED static const char *get1(const struct config *c, const char *name)
{
    static struct pairs p;
    memset(&p, 0, sizeof(p));
    size_t n = config_get(c, name, pairs_add, &p);
    ck_assert_msg(n == 1, "CONFIG GET %s: %zu results", name, n);
    ck_assert_uint_eq(p.n, 1);
    return p.value[0];
}

FIXTURE_UNUSED static void expect_set_error(const char *name, const char *value, const char *want)
{
    err[0] = '\0';
    ck_assert_int_eq(config_set(&cfg, name, value, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
}

FIXTURE_UNUSED static void expect_set_ok(const char *name, const char *value)
{
    int rc = config_set(&cfg, name, value, err, sizeof(err));
    ck_assert_msg(rc == 0, "CONFIG SET %s %s: %s", name, value, err);
}

#endif
