/* Logging: level-filtered lines with a timestamp to stderr or a file, as text (Redis's layout)
 * or JSON (one object per line), with repeats of the same line folded.
 * A struct logger lives in the server root; nothing here is global. A logger made by log_open()
 * owns its file and its repeat state; one filled in by hand ({level, out}) logs plainly. */
#ifndef CONF_LOG_H
#define CONF_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* The same line again within this many seconds of its first time is counted, not written;
 * "last message repeated N times" follows when another line comes or the window ends. */
#define LOG_REPEAT_WINDOW_S 10

struct log_state;

struct logger {
    int level;               /* enum log_level: lines below it are dropped */
    FILE *out;               /* stderr or an opened file; not owned when stderr */
    int format;              /* enum log_format */
    struct log_state *state; /* log_open's: the file path and the repeat folding; or NULL */
};

/* Names as Redis spells them: debug, verbose, notice, warning. NULL for an unknown level. */
const char *log_level_name(int level);
/* -1 when name is not a level. */
int log_level_parse(const char *name);

/* Sets lg up: path "" or NULL = stderr, else the file opened for appending (-1 when it cannot
 * be opened; lg is then a stderr logger). */
int log_open(struct logger *lg, int level, int format, const char *path);
/* Reopens the file (after a rotation moved it: SIGUSR1). -1 and the old file kept on failure;
 * 0 (nothing done) for stderr. */
int log_reopen(struct logger *lg);
/* Writes a pending repeat count, closes the file, frees the state. */
void log_close(struct logger *lg);

void log_write(const struct logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(lg, ...) log_write((lg), LOG_DEBUG, __VA_ARGS__)
#define log_info(lg, ...) log_write((lg), LOG_NOTICE, __VA_ARGS__)
#define log_warn(lg, ...) log_write((lg), LOG_WARNING, __VA_ARGS__)

#endif
