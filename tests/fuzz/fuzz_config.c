/* libFuzzer target: the config loader (conf/config.h), through its public functions only.
 *
 * Input: an ini file, optionally followed by a line "%%" and then "name value" lines (in a value,
 * "\n", "\r" and "\\" stand for those bytes).
 *   - The ini part is written to a memfd and loaded from /proc/self/fd/N with config_load_file
 *     over the defaults; on failure err must hold a "FILE:LINE: reason" or "FILE: reason" text.
 *     A loaded config is validated, shown whole through config_get("*") and diffed against the
 *     defaults (every value printable, every name non-empty).
 *   - A loaded config is also written back with config_rewrite (over a copy of the file in a
 *     fresh directory under /dev/shm, or $TMPDIR without it) and the rewritten file loaded over
 *     the defaults again: config_diff between the two must find nothing.
 *   - Each "name value" line after "%%" goes to config_set on the loaded config (or the
 *     defaults); a success is followed by config_validate and config_get of the name, a failure
 *     must leave an error text that starts as Redis words it. After the sets, config_rewrite and
 *     a reload must give the config as set (CONFIG SET then CONFIG REWRITE).
 * Nothing here changes conf/. */
#include "tests/fuzz/fuzz_common.h"

#include "conf/config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* config_rewrite bugs this target found (fixed in conf/, each with a reproducer in the corpus
 * and a unit test in tests/unit/test_config.c): options glued onto a last line without '\n'
 * (rewrite_no_final_newline), a full-length line quoted past CONFIG_LINE_MAX
 * (rewrite_line_too_long), quoted values losing their quotes, values with a newline written as
 * several lines (config injection), a ';' after a blank cut as a comment, '\f'/'\v' trimmed
 * (rewrite_quoted_value, rewrite_newline_value, rewrite_inline_comment_value,
 * rewrite_formfeed_value), and a "\v[section]" line missed (rewrite_vtab_section). */

#define SET_PAIRS_MAX 32
#define SET_LINE_MAX 1024

static void emit_check(void *ctx, const char *name, const char *value)
{
    size_t *count = ctx;
    FUZZ_CHECK(name && name[0] && value);
    FUZZ_CHECK(strlen(value) < (1u << 20));
    (*count)++;
}

static void diff_check(void *ctx, const char *name, bool runtime, const char *old_value,
                       const char *new_value)
{
    size_t *count = ctx;
    FUZZ_CHECK(name && name[0] && old_value && new_value);
    (*count)++;
}

static void diff_report(void *ctx, const char *name, bool runtime, const char *old_value,
                        const char *new_value)
{
    size_t *count = ctx;
    fprintf(stderr, "rewrite changed %s: '%s' -> '%s'\n", name, old_value, new_value);
    (*count)++;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        FUZZ_CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void check_err(int rc, const char *err)
{
    if (rc == 0)
        return;
    FUZZ_CHECK(rc == -1);
    FUZZ_CHECK(memchr(err, '\0', CONFIG_ERR_LEN) != NULL && err[0] != '\0');
}

/* config_rewrite over a copy of the ini, then a fresh load of the result equals cfg. */
static void check_rewrite(const struct config *cfg, const uint8_t *ini, size_t n)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    char dir[256], path[300], err[CONFIG_ERR_LEN];
    snprintf(dir, sizeof(dir), "%s/fuzz_config.XXXXXX", base ? base : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/sidecar.ini", dir);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(ini, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
    int rc = config_rewrite(cfg, path, err, sizeof(err));
    check_err(rc, err);
    if (rc == 0) {
        struct config again;
        config_init_defaults(&again);
        int lrc = config_load_file(&again, path, err, sizeof(err));
        if (lrc != 0)
            fprintf(stderr, "rewritten file does not load: %s\n", err);
        FUZZ_CHECK(lrc == 0);
        size_t changed = 0;
        config_diff(cfg, &again, diff_report, &changed);
        FUZZ_CHECK(changed == 0);
        config_free(&again);
    }
    unlink(path);
    FUZZ_CHECK(rmdir(dir) == 0);
}

/* "\n", "\r" and "\\" in a set value become the bytes they name (a CONFIG SET argument may hold
 * any byte but NUL; the lines here cannot hold a newline otherwise). In place. */
static void unescape(char *v)
{
    char *out = v;
    for (; *v; v++) {
        if (v[0] == '\\' && (v[1] == 'n' || v[1] == 'r' || v[1] == '\\')) {
            *out++ = v[1] == 'n' ? '\n' : v[1] == 'r' ? '\r' : '\\';
            v++;
        } else {
            *out++ = *v;
        }
    }
    *out = '\0';
}

/* Returns whether any config_set succeeded. */
static bool apply_sets(struct config *cfg, const char *p, const char *end)
{
    bool any = false;
    char line[SET_LINE_MAX + 1], err[CONFIG_ERR_LEN];
    for (int i = 0; i < SET_PAIRS_MAX && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len > SET_LINE_MAX)
            len = SET_LINE_MAX;
        memcpy(line, p, len);
        line[len] = '\0';
        p = nl ? nl + 1 : end;
        char *value = strchr(line, ' ');
        if (value)
            *value++ = '\0';
        else
            value = line + strlen(line); /* "" */
        unescape(value);
        err[0] = '\0';
        int rc = config_set(cfg, line, value, err, sizeof(err));
        if (rc == 0) {
            any = true;
            char verr[CONFIG_ERR_LEN];
            check_err(config_validate(cfg, verr, sizeof(verr)), verr);
            size_t count = 0;
            config_get(cfg, line, emit_check, &count);
        } else {
            FUZZ_CHECK(rc == -1);
            FUZZ_CHECK(strncmp(err, "Unknown option or number of arguments for CONFIG SET - '", 56) == 0 ||
                       strncmp(err, "CONFIG SET failed (possibly related to argument '", 49) == 0);
        }
    }
    return any;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (data[i] == '\n' && data[i + 1] == '%' && data[i + 2] == '%' && data[i + 3] == '\n') {
            sep = data + i;
            break;
        }
    size_t ini_len = sep ? (size_t)(sep - data) + 1 : size;

    int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    write_all(fd, data, ini_len);
    char path[64], err[CONFIG_ERR_LEN];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    struct config cfg, defaults;
    config_init_defaults(&cfg);
    config_init_defaults(&defaults);
    err[0] = '\0';
    int rc = config_load_file(&cfg, path, err, sizeof(err));
    check_err(rc, err);
    if (rc == 0) {
        char verr[CONFIG_ERR_LEN];
        check_err(config_validate(&cfg, verr, sizeof(verr)), verr);
        size_t count = 0;
        config_get(&cfg, "*", emit_check, &count);
        FUZZ_CHECK(count > 0);
        count = 0;
        config_diff(&defaults, &cfg, diff_check, &count);
        check_rewrite(&cfg, data, ini_len);
    } else {
        FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0);
    }
    close(fd);
    /* CONFIG SET then CONFIG REWRITE: the file must load back to what was set. */
    if (sep && apply_sets(&cfg, (const char *)sep + 4, (const char *)data + size) && rc == 0)
        check_rewrite(&cfg, data, ini_len);
    config_free(&cfg);
    config_free(&defaults);
    return 0;
}
