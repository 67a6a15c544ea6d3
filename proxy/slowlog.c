/* SLOWLOG (see slowlog.h): the entries, the captures of forwarded commands, and the SLOWLOG
 * GET / LEN / RESET / HELP commands.
 * Invariants: the list is doubly linked newest first, len counts its entries, and after every
 * push len <= slowlog-max-len; ids grow by one per command found slow (also one dropped at
 * once because slowlog-max-len is 0, as Redis 7.0 does) and SLOWLOG RESET does not rewind
 * them; an entry's argument slices point into its own allocation. */
#include "proxy/slowlog.h"

#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/forward.h"
#include "proxy/multi.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOWLOG_NOTE_MAX 64 /* "... (N more arguments)" / "... (N more bytes)" */
/* Captures of forwarded requests that were not slow are recycled (every forwarded request
 * makes one while the slowlog is on: a malloc and a free each, ~200 instructions of a
 * forwarded GET's ~4,600). Small ones are allocated with room for SLOWLOG_SPARE_BYTES of
 * argument slices and bytes, and up to SLOWLOG_SPARES_MAX of them wait for reuse (~120 KB at
 * most, only after that many forwards were in flight at once). */
#define SLOWLOG_SPARE_BYTES 320
#define SLOWLOG_SPARES_MAX 256

struct slowlog_arg {
    const char *ptr;
    size_t len;
};

struct slowlog_entry {
    struct slowlog_entry *newer, *older;
    long long id;
    long long time;              /* unix seconds when logged */
    long long duration;          /* microseconds */
    int64_t t0_ns;               /* a capture's start (cmdstats's clock) */
    char *name;                  /* the client's name when logged; NULL = none */
    char peer[CLIENT_ADDR_MAX];  /* "addr:port" */
    size_t argc;
    size_t cap;                  /* bytes allocated after the header (slices and bytes) */
    struct slowlog_arg argv[];   /* then the argument bytes */
};

struct slowlog {
    struct slowlog_entry *newest, *oldest;
    size_t len;
    long long next_id;
    struct slowlog_entry *spares; /* recycled captures (linked by older), SLOWLOG_SPARE_BYTES */
    size_t nspares;
};

struct slowlog *slowlog_create(void)
{
    return xcalloc(1, sizeof(struct slowlog));
}

void slowlog_entry_free(struct slowlog_entry *e)
{
    if (!e)
        return;
    free(e->name);
    free(e);
}

static void slowlog_clear(struct slowlog *sl)
{
    struct slowlog_entry *e = sl->newest;
    while (e) {
        struct slowlog_entry *next = e->older;
        slowlog_entry_free(e);
        e = next;
    }
    sl->newest = sl->oldest = NULL;
    sl->len = 0;
}

void slowlog_destroy(struct slowlog *sl)
{
    if (!sl)
        return;
    slowlog_clear(sl);
    while (sl->spares) {
        struct slowlog_entry *e = sl->spares;
        sl->spares = e->older;
        free(e);
    }
    free(sl);
}

size_t slowlog_len(const struct slowlog *sl)
{
    return sl ? sl->len : 0;
}

/* ---- entries ---- */

/* "... (<n><what>)" into note (SLOWLOG_NOTE_MAX bytes), without printf (every forwarded SET
 * of a value over 128 bytes is captured: snprintf was ~4% of the forwarding time). */
static size_t entry_note(char *note, size_t n, const char *what, size_t what_len)
{
    memcpy(note, "... (", 5);
    size_t len = 5 + num_format_ull(note + 5, n);
    memcpy(note + len, what, what_len);
    return len + what_len;
}

/* Argument i of an entry of argc arguments cut to kept: its logged text. Either a slice of the
 * original (*p, *n), or note (formatted here) for the forms Redis writes, in which case
 * the first *n bytes of the original come before the note. Returns the note's length. */
static size_t entry_arg_form(const struct resp_arg *argv, size_t argc, size_t kept, size_t i,
                             uint64_t redacted, const char **p, size_t *n, char *note)
{
    if (kept != argc && i == kept - 1) {
        *p = NULL;
        *n = 0;
        return entry_note(note, argc - kept + 1, " more arguments)", 16);
    }
    if (redacted & client_redact_bit(i)) {
        *p = SLOWLOG_REDACTED;
        *n = sizeof(SLOWLOG_REDACTED) - 1;
        return 0;
    }
    *p = argv[i].ptr;
    if (argv[i].len > SLOWLOG_ENTRY_MAX_STRING) {
        *n = SLOWLOG_ENTRY_MAX_STRING;
        return entry_note(note, argv[i].len - SLOWLOG_ENTRY_MAX_STRING, " more bytes)", 12);
    }
    *n = argv[i].len;
    return 0;
}

/* A new entry holding the logged form of argv (one allocation, or a recycled capture of sl's
 * when it fits). Owned by the caller. */
static struct slowlog_entry *entry_build(struct slowlog *sl, const struct resp_arg *argv,
                                         size_t argc, uint64_t redacted)
{
    size_t kept = argc > SLOWLOG_ENTRY_MAX_ARGC ? SLOWLOG_ENTRY_MAX_ARGC : argc;
    char note[SLOWLOG_NOTE_MAX];
    const char *p;
    size_t n, bytes = 0;
    for (size_t i = 0; i < kept; i++) {
        size_t extra = entry_arg_form(argv, argc, kept, i, redacted, &p, &n, note);
        bytes += n + extra;
    }
    size_t need = kept * sizeof(struct slowlog_arg) + bytes;
    struct slowlog_entry *e;
    if (need <= SLOWLOG_SPARE_BYTES && sl->spares) {
        e = sl->spares;
        sl->spares = e->older;
        sl->nspares--;
    } else {
        e = xmalloc(sizeof(*e) + (need <= SLOWLOG_SPARE_BYTES ? SLOWLOG_SPARE_BYTES : need));
    }
    memset(e, 0, sizeof(*e));
    e->cap = need <= SLOWLOG_SPARE_BYTES ? SLOWLOG_SPARE_BYTES : need;
    e->argc = kept;
    char *out = (char *)(e->argv + kept);
    for (size_t i = 0; i < kept; i++) {
        size_t extra = entry_arg_form(argv, argc, kept, i, redacted, &p, &n, note);
        e->argv[i].ptr = out;
        e->argv[i].len = n + extra;
        if (n)
            memcpy(out, p, n);
        memcpy(out + n, note, extra);
        out += n + extra;
    }
    return e;
}

/* e becomes the newest entry: numbered, stamped, the client's address and name copied; then
 * the oldest entries beyond slowlog-max-len are dropped (e too when it is 0). */
static void slowlog_push(struct server *srv, const struct client *c, struct slowlog_entry *e,
                         uint64_t ns)
{
    struct slowlog *sl = srv->slowlog;
    e->id = sl->next_id++;
    e->time = (long long)time(NULL);
    e->duration = (long long)(ns / 1000);
    snprintf(e->peer, sizeof(e->peer), "%s", c->addr);
    e->name = c->name ? xstrdup(c->name) : NULL;
    e->newer = NULL;
    e->older = sl->newest;
    if (sl->newest)
        sl->newest->newer = e;
    else
        sl->oldest = e;
    sl->newest = e;
    sl->len++;
    unsigned long long max = (unsigned long long)srv->cfg.slowlog_max_len;
    while (sl->len > max) { /* at most len steps */
        struct slowlog_entry *old = sl->oldest;
        sl->oldest = old->newer;
        if (sl->oldest)
            sl->oldest->older = NULL;
        else
            sl->newest = NULL;
        sl->len--;
        slowlog_entry_free(old);
    }
}

static bool slowlog_is_slow(const struct server *srv, uint64_t ns)
{
    long long threshold = srv->cfg.slowlog_log_slower_than;
    return threshold >= 0 && srv->slowlog && (unsigned long long)(ns / 1000) >=
                                                 (unsigned long long)threshold;
}

void slowlog_command_done(struct client *c, const struct command *cmd, uint64_t ns)
{
    struct server *srv = c->srv;
    if (!slowlog_is_slow(srv, ns) || (cmd && multi_is_exec(cmd)))
        return;
    slowlog_push(srv, c, entry_build(srv->slowlog, c->argv, c->argc, c->redacted), ns);
}

/* A capture that was not slow: kept for the next forward when it is a small one. */
static void capture_recycle(struct slowlog *sl, struct slowlog_entry *e)
{
    if (sl && e->cap == SLOWLOG_SPARE_BYTES && !e->name && sl->nspares < SLOWLOG_SPARES_MAX) {
        e->older = sl->spares;
        sl->spares = e;
        sl->nspares++;
        return;
    }
    slowlog_entry_free(e);
}

void slowlog_forward_begin(struct client *c, const struct command *cmd, struct fwd *f,
                           int64_t t0_ns)
{
    struct server *srv = c->srv;
    if (srv->cfg.slowlog_log_slower_than < 0 || !srv->slowlog || !f || f->slow ||
        (cmd && multi_is_exec(cmd)))
        return;
    f->slow = entry_build(srv->slowlog, c->argv, c->argc, 0);
    f->slow->t0_ns = t0_ns;
}

void slowlog_forward_done(struct client *c, struct fwd *f, int64_t ns)
{
    struct slowlog_entry *e = f->slow;
    f->slow = NULL;
    if (!e)
        return;
    if (ns < 0) {
        int64_t now = cmdstats_now_ns();
        ns = now > e->t0_ns ? now - e->t0_ns : 0;
    }
    if (!slowlog_is_slow(c->srv, (uint64_t)ns)) {
        capture_recycle(c->srv->slowlog, e);
        return;
    }
    slowlog_push(c->srv, c, e, (uint64_t)ns);
}

/* ---- SLOWLOG ---- */

/* Redis's addReplySubcommandSyntaxError. */
static void slowlog_reply_syntax(struct client *c)
{
    char upper[32];
    size_t n = strnlen(c->argv[0].ptr, c->argv[0].len < sizeof(upper) - 1 ? c->argv[0].len
                                                                             : sizeof(upper) - 1);
    for (size_t i = 0; i < n; i++)
        upper[i] = (char)toupper((unsigned char)c->argv[0].ptr[i]);
    upper[n] = '\0';
    int an = (int)strnlen(c->argv[1].ptr, c->argv[1].len < 128 ? c->argv[1].len : 128);
    reply_errorf(c, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try %s "
                 "HELP.", an, c->argv[1].ptr, upper);
}

/* SLOWLOG GET [count]: the newest count entries (10; -1 = all). */
void cmd_slowlog_get(struct client *c)
{
    struct slowlog *sl = c->srv->slowlog;
    long long count = SLOWLOG_GET_DEFAULT;
    if (c->argc > 3) {
        slowlog_reply_syntax(c);
        return;
    }
    if (c->argc == 3 &&
        (!num_parse_ll(c->argv[2].ptr, c->argv[2].len, &count) || count < -1)) {
        reply_error(c, "ERR count should be greater than or equal to -1");
        return;
    }
    size_t len = slowlog_len(sl);
    size_t n = count < 0 || (unsigned long long)count > len ? len : (size_t)count;
    reply_array(c, n);
    const struct slowlog_entry *e = sl ? sl->newest : NULL;
    for (size_t i = 0; i < n && e; i++, e = e->older) {
        reply_array(c, 6);
        reply_int(c, e->id);
        reply_int(c, e->time);
        reply_int(c, e->duration);
        reply_array(c, e->argc);
        for (size_t j = 0; j < e->argc; j++)
            reply_bulk(c, e->argv[j].ptr, e->argv[j].len);
        reply_bulk_cstr(c, e->peer);
        reply_bulk_cstr(c, e->name ? e->name : "");
    }
}

void cmd_slowlog_len(struct client *c)
{
    reply_int(c, (long long)slowlog_len(c->srv->slowlog));
}

void cmd_slowlog_reset(struct client *c)
{
    if (c->srv->slowlog)
        slowlog_clear(c->srv->slowlog);
    reply_ok(c);
}

static const char *const slowlog_help[] = {
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
};

void cmd_slowlog_help(struct client *c)
{
    reply_help(c, slowlog_help, sizeof(slowlog_help) / sizeof(slowlog_help[0]));
}
