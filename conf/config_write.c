/* Writing the configuration out: CONFIG REWRITE (the ini file with the running values, comments
 * kept), the difference between two configurations (a reload acts on it), and the two texts
 * generated from the option table: --help and --config-reference (README embeds the latter). */
#include "conf/config.h"
#include "conf/config_internal.h"

#include "conf/xmalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* What inih skips around keys, values and section lines (isspace in the C locale). */
#define INI_BLANKS " \t\n\v\f\r"

void config_diff(const struct config *a, const struct config *b,
                 void (*fn)(void *ctx, const char *name, bool runtime, const char *old_value,
                            const char *new_value),
                 void *ctx)
{
    char name[CONFIG_NAME_MAX], va[CONFIG_VALUE_MAX], vb[CONFIG_VALUE_MAX];

    CONFIG_FOREACH(o) {
        if (!o->section)
            continue;
        const char *x = opt_format(a, o, va, sizeof(va));
        const char *y = opt_format(b, o, vb, sizeof(vb));
        if (strcmp(x, y) == 0)
            continue;
        snprintf(name, sizeof(name), "%s.%s", o->section, o->key);
        fn(ctx, name, o->runtime, x, y);
    }
}

/* ---- CONFIG REWRITE ---- */

struct rewrite_out {
    char *p;
    size_t len, cap;
};

static void out_append(struct rewrite_out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = xrealloc(o->p, o->cap);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_puts(struct rewrite_out *o, const char *s)
{
    out_append(o, s, strlen(s));
}

/* "key = value\n", the value in double quotes when opt_value_needs_quotes says so. Values never
 * hold a line break and always fit one line (opt_set_text refuses others). */
static void out_option(struct rewrite_out *out, const struct config *cfg,
                       const struct config_option *o)
{
    char value[CONFIG_VALUE_MAX];
    const char *v = opt_format(cfg, o, value, sizeof(value));
    if (opt_secret_from_file(cfg, o))
        v = ""; /* a password read from its file stays out of the ini */
    bool quote = opt_value_needs_quotes(v);
    out_puts(out, o->key);
    out_puts(out, quote ? " = \"" : " = ");
    out_puts(out, v);
    out_puts(out, quote ? "\"\n" : "\n");
}

/* The options of section not written yet whose value differs from defaults'. */
static void out_missing(struct rewrite_out *out, const struct config *cfg,
                        const struct config *defaults, const char *section, const bool *written)
{
    char value[CONFIG_VALUE_MAX], dvalue[CONFIG_VALUE_MAX];
    CONFIG_FOREACH(o) {
        if (!o->section || strcasecmp(o->section, section) != 0 || written[o - config_options] ||
            opt_secret_from_file(cfg, o))
            continue;
        if (strcmp(opt_format(cfg, o, value, sizeof(value)),
                   opt_format(defaults, o, dvalue, sizeof(dvalue))) != 0)
            out_option(out, cfg, o);
    }
}

/* Copies the line's leading blanks and key, returns the key in key[] (empty when the line is
 * not "key = value"). */
static void line_key(const char *line, char *key, size_t cap)
{
    const char *p = line + strspn(line, INI_BLANKS);
    size_t n = 0;
    while (p[n] && p[n] != '=' && !strchr(INI_BLANKS, p[n]) && n + 1 < cap)
        n++;
    const char *q = p + n + strspn(p + n, INI_BLANKS);
    if (*q != '=' || *p == ';' || *p == '#' || *p == '[') {
        key[0] = '\0';
        return;
    }
    memcpy(key, p, n);
    key[n] = '\0';
}

int config_rewrite(const struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        config_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    bool *written = xcalloc(config_noptions, sizeof(bool));
    bool *in_file = xcalloc(config_noptions, sizeof(bool)); /* rows whose section the file has */
    struct config defaults;
    config_init_defaults(&defaults);
    struct rewrite_out out = { NULL, 0, 0 };
    char line[CONFIG_LINE_MAX + 2], section[64] = "", key[CONFIG_NAME_MAX];
    while (fgets(line, sizeof(line), in)) {
        const char *p = line + strspn(line, INI_BLANKS);
        if (*p == '[') {
            if (section[0])
                out_missing(&out, cfg, &defaults, section, written);
            const char *end = strchr(p, ']');
            size_t n = end ? (size_t)(end - p - 1) : 0;
            snprintf(section, sizeof(section), "%.*s", (int)(n < 63 ? n : 63), p + 1);
            CONFIG_FOREACH(o)
                if (o->section && strcasecmp(o->section, section) == 0)
                    in_file[o - config_options] = true;
            out_puts(&out, line);
            if (!strchr(line, '\n'))
                out_puts(&out, "\n");
            continue;
        }
        line_key(line, key, sizeof(key));
        const struct config_option *o = key[0] && section[0] ? opt_find_in_section(section, key)
                                                             : NULL;
        if (!o) {
            out_puts(&out, line); /* comments, blank lines, unknown text: kept as they are */
            if (!strchr(line, '\n'))
                out_puts(&out, "\n"); /* a last line without one: what follows starts anew */
            continue;
        }
        out_append(&out, line, (size_t)(p - line)); /* its indentation */
        out_option(&out, cfg, o);
        written[o - config_options] = true;
    }
    bool read_error = ferror(in);
    fclose(in);
    if (read_error) {
        free(out.p);
        free(written);
        free(in_file);
        config_free(&defaults);
        config_errf(err, errlen, "%s: read error", path);
        return -1;
    }
    if (section[0])
        out_missing(&out, cfg, &defaults, section, written);
    /* Sections the file did not have, for the options that differ from their defaults (the
     * table keeps a section's rows together). */
    const char *last = NULL;
    CONFIG_FOREACH(o) {
        if (!o->section || in_file[o - config_options] || (last && !strcmp(last, o->section)))
            continue;
        last = o->section;
        struct rewrite_out sec = { NULL, 0, 0 };
        out_missing(&sec, cfg, &defaults, o->section, written);
        if (sec.len) {
            out_puts(&out, "\n[");
            out_puts(&out, o->section);
            out_puts(&out, "]\n");
            out_append(&out, sec.p, sec.len);
        }
        free(sec.p);
    }
    config_free(&defaults);
    free(written);
    free(in_file);
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.rewrite.tmp", path);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fwrite(out.p ? out.p : "", 1, out.len, f) == out.len;
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f && fclose(f) != 0)
        ok = false;
    free(out.p);
    if (!ok || rename(tmp, path) != 0) {
        config_errf(err, errlen, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- --config-reference ---- */

/* "|" would end a Markdown table cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
}

void config_print_reference(FILE *out)
{
    char env[CONFIG_NAME_MAX], name[CONFIG_NAME_MAX];
    const char *section = NULL;
    CONFIG_FOREACH(o) {
        if (!o->section)
            continue;
        if (!section || strcmp(section, o->section) != 0) {
            section = o->section;
            fprintf(out, "%s**[%s]**\n\n| key | default | CONFIG SET | environment | meaning |\n"
                         "|---|---|---|---|---|\n",
                    o == config_options ? "" : "\n", section);
        }
        opt_env_name(o, env, sizeof(env));
        fprintf(out, "| `%s` | `%s` | %s%s%s | `%s` | ", o->key, *o->def ? o->def : "\"\"",
                o->runtime ? "`" : "", o->runtime ? opt_name(o, name, sizeof(name)) : "no",
                o->runtime ? "`" : "", env);
        md_cell(out, o->help);
        fputs(" |\n", out);
    }
}

/* ---- --help ---- */

void config_print_help(FILE *out)
{
    char lhs[CONFIG_NAME_MAX + 64], env[CONFIG_NAME_MAX], name[CONFIG_NAME_MAX];

    fprintf(out,
            "Usage: sidecar [-c FILE] [--port N] [--check-config] [--config-reference] [--version]\n"
            "               [--help]\n"
            "\n"
            "  -c FILE          read the configuration from FILE (default: built-in defaults)\n"
            "  --port N         serve on port N on every listen address instead\n"
            "  --check-config   load and validate the configuration, then exit\n"
            "  --config-reference  print every option as Markdown tables (README's reference)\n"
            "  --version        print the version and exit\n"
            "  --help           print this text and exit\n"
            "\n"
            "Options ([section] key = default). An environment variable SIDECAR_<SECTION>_<KEY>\n"
            "wins over the file; options marked CONFIG SET can be changed at run time.\n");
    CONFIG_FOREACH(o) {
        if (!o->section)
            continue;
        snprintf(lhs, sizeof(lhs), "[%s] %s = %s", o->section, o->key, *o->def ? o->def : "\"\"");
        opt_env_name(o, env, sizeof(env));
        fprintf(out, "  %-46s %s (env %s%s%s)\n", lhs, o->help, env,
                o->runtime ? "; CONFIG SET " : "",
                o->runtime ? opt_name(o, name, sizeof(name)) : "");
    }
}
