/* conf/ internal: the option table's row type and the helpers the config files share
 * (config.c: the table, parsing, loading, CONFIG SET/GET; config_write.c: CONFIG REWRITE,
 * the diff a reload uses, --help and --config-reference). Not for use outside conf/. */
#ifndef CONF_CONFIG_INTERNAL_H
#define CONF_CONFIG_INTERNAL_H

#include "conf/config.h"

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_LINE_MAX 1024  /* longest ini line accepted, in bytes, without its line ending */
#define CONFIG_HOST_MAX 253   /* longest host name in a listen address (DNS limit) */
#define CONFIG_ADDR_MAX 264   /* longest "host:port" / "[v6]:port" string */
#define CONFIG_NAME_MAX 96    /* longest option name we build (env name, section.key) */
#define CONFIG_UNIX_PATH_MAX 107 /* sizeof(sun_path) - 1 on Linux */
#define CONFIG_VALUE_MAX (CONFIG_MAX_LISTEN * (CONFIG_ADDR_MAX + 1) + 32) /* formatted value */

enum opt_type {
    OPT_INT,      /* long long, decimal as Redis's string2ll, [min, max] */
    OPT_MEMORY,   /* long long bytes, Redis memory units, [min, max] */
    OPT_OCTAL,    /* long long, octal digits, [min, max] */
    OPT_STRING,   /* char *, any text */
    OPT_ADDR,     /* char *, "" or one host:port */
    OPT_LISTEN,   /* char *listen[CONFIG_MAX_LISTEN] + nlisten */
    OPT_POLICY,   /* int, enum maxmemory_policy */
    OPT_LOGLEVEL, /* int, enum log_level */
    OPT_BOOL,     /* int, 0/1 written no/yes */
    OPT_INVALIDATION, /* int, enum cache_invalidation */
    OPT_LOGFORMAT, /* int, enum log_format */
    OPT_CONST,    /* compatibility row: always its default text, no field */
    OPT_BIND,     /* compatibility row: the hosts of the listen addresses */
    OPT_PORT,     /* compatibility row: the port of the first listen address, 0 if none */
};

struct config_option {
    const char *section;    /* NULL: a CONFIG GET compatibility row, not in file/env/help */
    const char *key;        /* snake_case key inside the section */
    const char *redis_name; /* Redis's parameter name, NULL when Redis has none */
    enum opt_type type;
    size_t offset;          /* of the field in struct config */
    long long min, max;     /* numeric types */
    bool runtime;           /* CONFIG SET may change it */
    const char *def;        /* default, as written in sidecar.ini */
    const char *help;
    bool secret;            /* a password: CONFIG GET shows CONFIG_SECRET_SHOWN, logs hide it */
};

/* The option table (config.c), in section order. */
extern const struct config_option config_options[];
extern const size_t config_noptions;
#define CONFIG_FOREACH(o) \
    for (const struct config_option *o = config_options; o < config_options + config_noptions; o++)

/* The value of o in cfg as CONFIG GET shows it (buf is scratch; the result may point into cfg). */
const char *opt_format(const struct config *cfg, const struct config_option *o, char *buf,
                       size_t size);
/* The name CONFIG GET/SET shows (Redis's, else "section.key"). */
const char *opt_name(const struct config_option *o, char *buf, size_t size);
/* SIDECAR_<SECTION>_<KEY>. */
void opt_env_name(const struct config_option *o, char *buf, size_t size);
const struct config_option *opt_find_in_section(const char *section, const char *key);
/* Whether o is a password whose value came from its *_file option (CONFIG REWRITE then never
 * writes it to the ini). */
/* Why a value was refused (opt_set_text). */
enum opt_err {
    OPT_OK = 0,
    OPT_ERR_INT,       /* not an integer */
    OPT_ERR_MEMORY,    /* not a memory value */
    OPT_ERR_OCTAL,     /* not octal digits */
    OPT_ERR_RANGE,     /* a number outside [min, max] */
    OPT_ERR_ENUM,      /* not one of the names */
    OPT_ERR_ADDR,      /* not host:port */
    OPT_ERR_TOO_MANY,  /* more than CONFIG_MAX_LISTEN addresses */
    OPT_ERR_READONLY,  /* a compatibility row */
    OPT_ERR_TEXT,      /* a line break, or too long for one ini line: CONFIG REWRITE could
                          not write it back as the same single "key = value" line */
};
/* Parses text completely and, when valid, replaces o's value in cfg (a refused value changes
 * nothing). */
enum opt_err opt_set_text(struct config *cfg, const struct config_option *o, const char *text);
/* The reason for e in the file/env wording ("expected an integer"). */
void opt_describe_err(const struct config_option *o, enum opt_err e, char *buf, size_t size);
/* Whether name (len bytes) is a section of the table or a free-form one. */
bool section_known(const char *name, size_t len);
bool opt_secret_from_file(const struct config *cfg, const struct config_option *o);
/* Whether CONFIG REWRITE writes value v in double quotes: empty, or holding a blank (space, tab,
 * vertical tab, form feed: inih strips them around a value), ';', '#' or '"' (the loader drops
 * one pair of outer quotes, so a value that is itself quoted keeps its). */
bool opt_value_needs_quotes(const char *v);
/* The free-form sections ([users], [rename_commands]: config_users.c). */
bool config_section_free_form(const char *name, size_t len);
/* One "key = value" of a free-form section; -1 with the reason (never a password) in reason. */
int config_free_form_pair(struct config *cfg, const char *section, const char *key,
                          const char *value, char *reason, size_t size);
/* Frees the [users] and [rename_commands] entries. */
void config_free_form_free(struct config *cfg);
void config_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
