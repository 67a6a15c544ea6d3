/* Logging: level-filtered lines with a timestamp to stderr or a file.
 * A struct logger lives in the server root; nothing here is global. */
#ifndef CONF_LOG_H
#define CONF_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };

struct logger {
    int level;   /* enum log_level: lines below it are dropped */
    FILE *out;   /* stderr or an opened file; not owned when stderr */
};

/* Names as Redis spells them: debug, verbose, notice, warning. NULL for an unknown level. */
const char *log_level_name(int level);
/* -1 when name is not a level. */
int log_level_parse(const char *name);

void log_write(const struct logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(lg, ...) log_write((lg), LOG_DEBUG, __VA_ARGS__)
#define log_info(lg, ...) log_write((lg), LOG_NOTICE, __VA_ARGS__)
#define log_warn(lg, ...) log_write((lg), LOG_WARNING, __VA_ARGS__)

#endif
