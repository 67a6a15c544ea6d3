/* Logging: one line per call, "pid:M dd Mon yyyy hh:mm:ss.mmm <c> message", as Redis prints. */
#include "conf/log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *const log_names[] = { "debug", "verbose", "notice", "warning" };
static const char log_marks[] = { '.', '-', '*', '#' };

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

void log_write(const struct logger *lg, int level, const char *fmt, ...)
{
    if (!lg || level < lg->level || level < LOG_DEBUG || level > LOG_WARNING)
        return;
    FILE *out = lg->out ? lg->out : stderr;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[64];
    size_t n = strftime(when, sizeof(when), "%d %b %Y %H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03d", (int)(tv.tv_usec / 1000));

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(out, "%d:M %s %c %s\n", (int)getpid(), when, log_marks[level], msg);
    fflush(out);
}
