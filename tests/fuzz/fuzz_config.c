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

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Known bug, reported (conf/ is not ours): config_rewrite appends the options a file lacks right
 * after its last line even when that line has no '\n', gluing "key = value" onto it (into a
 * comment, or into the previous value). Until it is fixed, the rewrite check gives the file its
 * final newline; set to 0 to see the bug (corpus: rewrite_no_final_newline). */
#define REWRITE_ADD_FINAL_NEWLINE 1
/* Known bug, reported: config_rewrite writes a value that needs quotes (a space, ';', '#') with
 * them, so a line of CONFIG_LINE_MAX bytes that loaded comes back 2 bytes longer and the loader
 * refuses the rewritten file ("line too long"). Until it is fixed, that one refusal is tolerated;
 * set to 0 to see the bug (corpus: rewrite_line_too_long). */
#define REWRITE_TOLERATE_LONG_LINE 1
/* Known bugs, reported: config_rewrite writes a value as it is unless it has a space, ';', '#' or
 * a tab (then in double quotes, nothing escaped), so (a) a value that starts and ends with '"'
 * loses those quotes on the next load (requirepass "x" becomes x), (b) a value with a newline
 * (config_set accepts one) spills onto the next lines: the rest of the value becomes lines of the
 * file (any "key = value" in it is loaded: config injection through CONFIG SET + CONFIG
 * REWRITE), (c) a value with a ';' after a blank is cut there on the next load, quotes or not
 * (inih's inline comment: "a ;b" comes back as "a), and (d) a value that ends (or starts) with
 * a blank other than space and tab ('\f', '\v') is written unquoted and trimmed by the reload.
 * Until fixed, the rewrite check is skipped for configs holding such a value; set to 0 to see
 * them (corpus: rewrite_quoted_value, rewrite_newline_value, rewrite_inline_comment_value,
 * rewrite_formfeed_value). */
#define REWRITE_SKIP_MANGLED_VALUES 1
/* Known bug, reported: config_rewrite skips only spaces and tabs before a "[section]" or a key,
 * inih any isspace() byte: after a line like "\v[upstream]" the rewriter still believes it is in
 * the section before, and appends that section's options under [upstream], where the reload
 * refuses them. Until fixed, inis with such a line are not rewritten; set to 0 to see it
 * (corpus: rewrite_vtab_section). */
#define REWRITE_SKIP_OTHER_BLANKS 1

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

/* config_get's callback: notes a value config_rewrite is known to mangle (see above). */
static void emit_find_known(void *ctx, const char *name, const char *value)
{
    bool *known = ctx;
    size_t n = strlen(value);
    if (strpbrk(value, "\r\n\v\f") || (n >= 2 && value[0] == '"' && value[n - 1] == '"'))
        *known = true;
    for (size_t i = 1; i < n; i++)
        if (value[i] == ';' && isspace((unsigned char)value[i - 1]))
            *known = true;
}

/* A line of the ini has blanks other than space and tab before its first visible byte (see
 * REWRITE_SKIP_OTHER_BLANKS); a "\r\n" line ending alone does not count. */
static bool has_other_leading_blanks(const uint8_t *ini, size_t n)
{
    size_t i = 0;
    while (i < n) {
        bool other = false;
        for (; i < n && strchr(" \t\v\f\r", ini[i]) && ini[i] != '\0'; i++)
            other |= ini[i] != ' ' && ini[i] != '\t';
        if (other && i < n && ini[i] != '\n')
            return true;
        while (i < n && ini[i] != '\n')
            i++;
        i++;
    }
    return false;
}

/* config_rewrite over a copy of the ini, then a fresh load of the result equals cfg. */
static void check_rewrite(const struct config *cfg, const uint8_t *ini, size_t n)
{
    if (REWRITE_SKIP_OTHER_BLANKS && has_other_leading_blanks(ini, n))
        return;
    bool known = false;
    if (REWRITE_SKIP_MANGLED_VALUES)
        config_get(cfg, "*", emit_find_known, &known);
    if (known)
        return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    char dir[256], path[300], err[CONFIG_ERR_LEN];
    snprintf(dir, sizeof(dir), "%s/fuzz_config.XXXXXX", base ? base : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/sidecar.ini", dir);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(ini, 1, n, f) == n);
    if (REWRITE_ADD_FINAL_NEWLINE && n > 0 && ini[n - 1] != '\n')
        FUZZ_CHECK(fputc('\n', f) == '\n');
    FUZZ_CHECK(fclose(f) == 0);
    int rc = config_rewrite(cfg, path, err, sizeof(err));
    check_err(rc, err);
    if (rc == 0) {
        struct config again;
        config_init_defaults(&again);
        int lrc = config_load_file(&again, path, err, sizeof(err));
        bool too_long = REWRITE_TOLERATE_LONG_LINE && lrc != 0 && strstr(err, ": line too long (");
        if (lrc != 0 && !too_long)
            fprintf(stderr, "rewritten file does not load: %s\n", err);
        FUZZ_CHECK(lrc == 0 || too_long);
        size_t changed = 0;
        if (lrc == 0)
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
