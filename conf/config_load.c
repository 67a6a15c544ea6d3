/* Reading sidecar.ini: inih driven by our own line reader (whole lines, CONFIG_LINE_MAX, no NUL,
 * indentation dropped so inih never sees a continuation line, unknown sections reported on
 * their own line), each "key = value" set through the option table (config.c) or the free-form
 * sections ([users], [rename_commands]). The first error wins and is reported as FILE:LINE. */
#include "conf/config.h"
#include "conf/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* State of one config_load_file: inih's stream (our line reader) and user pointer (handler). */
struct config_loader {
    struct config *cfg;
    const char *path;
    FILE *fp;
    int lineno;     /* number of the line last handed to inih */
    int err_line;   /* line of the first error, 0 = none yet */
    int read_errno; /* errno of a read error, 0 = none */
    char *err;
    size_t errlen;
};

static void loader_fail(struct config_loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void loader_fail(struct config_loader *ld, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ld->err_line)
        return;
    ld->err_line = line;
    if (!ld->err || ld->errlen == 0)
        return;
    n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->path, line);
    if (n < 0 || (size_t)n >= ld->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Reads one physical line into buf (cap bytes + NUL); *len is the bytes read, line ending
 * included, cap + 1 when the line does not fit (the reading stops there: it is an error).
 * Returns whether anything was read. */
static bool loader_getline(struct config_loader *ld, char *buf, size_t cap, size_t *len, bool *nl)
{
    size_t n = 0;
    int c;

    *nl = false;
    while ((c = getc(ld->fp)) != EOF) {
        if (n == cap) {
            n++; /* one byte too many: the caller reports the line as too long */
            break;
        }
        buf[n++] = (char)c;
        if (c == '\n') {
            *nl = true;
            break;
        }
    }
    if (c == EOF && ferror(ld->fp))
        ld->read_errno = errno ? errno : EIO;
    buf[n < cap ? n : cap] = '\0';
    *len = n;
    return n > 0;
}

/* Drops a UTF-8 BOM on line 1 and the indentation, so inih never sees a continuation line:
 * every blank inih's lskip() skips (isspace: a line starting with a vertical tab or a form feed
 * would otherwise continue the previous key's value). */
static void loader_trim_start(struct config_loader *ld, char *buf, size_t *len)
{
    size_t skip = 0;

    if (ld->lineno == 1 && *len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    while (skip < *len && buf[skip] != '\n' && isspace((unsigned char)buf[skip]))
        skip++;
    memmove(buf, buf + skip, *len - skip + 1);
    *len -= skip;
}

/* "[name]" for a section we do not know is reported on its own line, even if it has no keys. */
static void loader_check_section(struct config_loader *ld, const char *line)
{
    const char *end;

    if (line[0] != '[' || !(end = strchr(line, ']')))
        return;
    if (!section_known(line + 1, (size_t)(end - line - 1)))
        loader_fail(ld, ld->lineno, "unknown section [%.*s]", (int)(end - line - 1), line + 1);
}

/* inih's reader: one whole line per call, refused when longer than CONFIG_LINE_MAX (or than
 * inih's buffer), so inih's line numbers are ours. Returns NULL to stop after an error. */
static char *loader_read_line(char *buf, int size, void *stream)
{
    struct config_loader *ld = stream;
    size_t cap, len, content, limit;
    bool nl;

    if (ld->err_line || ld->read_errno || size < 4)
        return NULL;
    cap = (size_t)size - 1;
    if (!loader_getline(ld, buf, cap, &len, &nl))
        return NULL;
    ld->lineno++;
    limit = cap - 2 < CONFIG_LINE_MAX ? cap - 2 : CONFIG_LINE_MAX;
    content = len - nl;
    if (content > 0 && content <= cap && buf[content - 1] == '\r')
        content--;
    if (content > limit) {
        loader_fail(ld, ld->lineno, "line too long (max %zu bytes)", limit);
        return NULL;
    }
    if (memchr(buf, '\0', len)) {
        loader_fail(ld, ld->lineno, "NUL byte in line");
        return NULL;
    }
    loader_trim_start(ld, buf, &len);
    loader_check_section(ld, buf);
    return ld->err_line ? NULL : buf;
}

/* Whether a value that opens a double quote closes it. inih ends a value at a ';' after a blank
 * (an inline comment) even inside quotes, so `password = "a ; b"` reaches us as `"a`: refused
 * with this, never loaded as something else. */
static bool loader_quotes_closed(const char *value)
{
    size_t n = strlen(value);
    return value[0] != '"' || (n >= 2 && value[n - 1] == '"');
}

/* A value wrapped in double quotes loses them: password = "two words", unixsocket = "". */
static const char *loader_unquote(const char *value, char *buf, size_t size)
{
    size_t n = strlen(value);

    if (n < 2 || value[0] != '"' || value[n - 1] != '"' || n - 2 >= size)
        return value;
    memcpy(buf, value + 1, n - 2);
    buf[n - 2] = '\0';
    return buf;
}

/* inih's handler: one "key = value" of a section. Returns 1 to go on, 0 on error. */
static int loader_on_pair(void *user, const char *section, const char *key, const char *value)
{
    struct config_loader *ld = user;
    const struct config_option *o;
    char text[CONFIG_LINE_MAX + 1], reason[256];
    const char *v;
    enum opt_err e;

    if (ld->err_line)
        return 0;
    if (!section[0]) {
        loader_fail(ld, ld->lineno, "key '%s' outside any section", key);
        return 0;
    }
    if (!section_known(section, strlen(section))) {
        loader_fail(ld, ld->lineno, "unknown section [%s]", section);
        return 0;
    }
    if (!loader_quotes_closed(value ? value : "")) {
        loader_fail(ld, ld->lineno, "unbalanced double quote in the value of '%s' (a ';' after "
                    "a blank starts a comment, even inside quotes)", key);
        return 0;
    }
    if (config_section_free_form(section, strlen(section))) {
        v = loader_unquote(value ? value : "", text, sizeof(text));
        if (config_free_form_pair(ld->cfg, section, key, v, reason, sizeof(reason)) < 0) {
            loader_fail(ld, ld->lineno, "%s", reason);
            return 0;
        }
        return 1;
    }
    if (!(o = opt_find_in_section(section, key))) {
        loader_fail(ld, ld->lineno, "unknown key '%s' in section [%s]", key, section);
        return 0;
    }
    v = loader_unquote(value ? value : "", text, sizeof(text));
    if ((e = opt_set_text(ld->cfg, o, v)) != OPT_OK) {
        opt_describe_err(o, e, reason, sizeof(reason));
        loader_fail(ld, ld->lineno, "bad value '%s' for %s: %s", v, o->key, reason);
        return 0;
    }
    return 1;
}

/* Debian's inih reads ini_max_line at run time (its line buffer is sized by it); we raise it for
 * the duration of one parse so lines up to CONFIG_LINE_MAX fit, then put it back. */
static int loader_parse(struct config_loader *ld)
{
    int saved_max_line = ini_max_line;
    int ret;

    ini_max_line = CONFIG_LINE_MAX + 3; /* + "\r\n" + NUL */
    ret = ini_parse_stream(loader_read_line, ld, loader_on_pair, ld);
    ini_max_line = saved_max_line;
    return ret;
}


int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    struct config_loader ld = { .cfg = cfg, .path = path, .err = err, .errlen = errlen };
    int ret;

    if (!(ld.fp = fopen(path, "r"))) {
        config_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    ret = loader_parse(&ld);
    fclose(ld.fp);
    if (ret > 0 && (ld.err_line == 0 || ret < ld.err_line)) {
        ld.err_line = 0; /* an earlier line inih could not parse wins */
        loader_fail(&ld, ret, "syntax error: expected [section], key = value or a comment");
    }
    if (ld.err_line)
        return -1;
    if (ld.read_errno || ret < 0) {
        config_errf(err, errlen, "%s: cannot read: %s", path,
                    strerror(ld.read_errno ? ld.read_errno : ENOMEM));
        return -1;
    }
    return 0;
}
