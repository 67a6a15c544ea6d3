/* Logging (see log.h). Text lines are "pid:M dd Mon yyyy hh:mm:ss.mmm <c> message", as Redis
 * prints them; JSON lines are {"time":"<ISO 8601 UTC>","pid":N,"level":"notice","msg":"..."}.
 * Invariant: at most one line is being folded (the last one written); its count is written
 * before any other line and when the logger closes. */
#include "conf/log.h"

#include "conf/xmalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_MSG_MAX 1024

static const char *const log_names[] = { "debug", "verbose", "notice", "warning" };
static const char log_marks[] = { '.', '-', '*', '#' };

struct log_state {
    char *path;              /* NULL: stderr */
    char last[LOG_MSG_MAX];  /* the last line written */
    int last_level;
    time_t last_since;       /* when it was first written */
    unsigned long repeats;   /* times it came again since, not written */
};

const char *log_level_name(int level)
{
    if (level < LOG_DEBUG || level > LOG_WARNING)
        return NULL;
    return log_names[level];
}

int log_level_parse(const char *name)
{
    for (int i = LOG_DEBUG; i <= LOG_WARNING; i++)
        if (strcasecmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

static void json_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
}

static void log_emit(const struct logger *lg, int level, const char *msg)
{
    FILE *out = lg->out ? lg->out : stderr;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    char when[64];
    if (lg->format == LOG_FORMAT_JSON) {
        gmtime_r(&tv.tv_sec, &tm);
        size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + n, sizeof(when) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
        fprintf(out, "{\"time\":\"%s\",\"pid\":%d,\"level\":\"%s\",\"msg\":\"", when,
                (int)getpid(), log_names[level]);
        json_escape(out, msg);
        fputs("\"}\n", out);
    } else {
        localtime_r(&tv.tv_sec, &tm);
        size_t n = strftime(when, sizeof(when), "%d %b %Y %H:%M:%S", &tm);
        snprintf(when + n, sizeof(when) - n, ".%03d", (int)(tv.tv_usec / 1000));
        fprintf(out, "%d:M %s %c %s\n", (int)getpid(), when, log_marks[level], msg);
    }
    fflush(out);
}

/* Writes the count of the folded repeats, if any. */
static void log_flush_repeats(const struct logger *lg)
{
    struct log_state *st = lg->state;
    if (!st || st->repeats == 0)
        return;
    char msg[64];
    snprintf(msg, sizeof(msg), "last message repeated %lu times", st->repeats);
    st->repeats = 0;
    log_emit(lg, st->last_level, msg);
}

void log_write(const struct logger *lg, int level, const char *fmt, ...)
{
    if (!lg || level < lg->level || level < LOG_DEBUG || level > LOG_WARNING)
        return;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct log_state *st = lg->state;
    if (st) {
        time_t now = time(NULL);
        if (level == st->last_level && strcmp(msg, st->last) == 0 &&
            now - st->last_since < LOG_REPEAT_WINDOW_S) {
            st->repeats++;
            return;
        }
        log_flush_repeats(lg);
        memcpy(st->last, msg, sizeof(msg));
        st->last_level = level;
        st->last_since = now;
    }
    log_emit(lg, level, msg);
}

int log_open(struct logger *lg, int level, int format, const char *path)
{
    memset(lg, 0, sizeof(*lg));
    lg->level = level;
    lg->format = format;
    lg->out = stderr;
    lg->state = xcalloc(1, sizeof(*lg->state));
    lg->state->last_level = -1;
    if (!path || !path[0])
        return 0;
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    lg->out = f;
    lg->state->path = xstrdup(path);
    return 0;
}

int log_reopen(struct logger *lg)
{
    if (!lg->state || !lg->state->path)
        return 0;
    FILE *f = fopen(lg->state->path, "a");
    if (!f)
        return -1;
    log_flush_repeats(lg);
    if (lg->out && lg->out != stderr)
        fclose(lg->out);
    lg->out = f;
    return 0;
}

void log_close(struct logger *lg)
{
    log_flush_repeats(lg);
    if (lg->out && lg->out != stderr)
        fclose(lg->out);
    lg->out = stderr;
    if (lg->state) {
        free(lg->state->path);
        free(lg->state);
        lg->state = NULL;
    }
}
