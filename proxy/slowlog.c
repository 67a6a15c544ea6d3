/* SLOWLOG (see slowlog.h): the entries, the captures of forwarded commands, and the SLOWLOG
 * GET / LEN / RESET / HELP commands.
 * Invariants: the list is doubly linked newest first, len counts its entries, and after every
 * push len <= slowlog-max-len; ids grow by one per command found slow (also one dropped at
 * once because slowlog-max-len is 0, as Redis 7.0 does) and SLOWLOG RESET does not rewind
 * them; an entry's argument slices point into its own allocation. A capture (f->slow) holds
 * either its request's own bytes (raw > 0, argc 0) or the logged form; the spares are
 * captures only, at most SLOWLOG_SPARES_MAX of them whose caps add up to spare_bytes <=
 * SLOWLOG_SPARES_BYTES. */
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
/* Captures of forwarded requests (every forwarded request makes one while the slowlog is on).
 * A request that came as a multibulk of at most SLOWLOG_RAW_MAX bytes is captured as its own
 * bytes, one memcpy, and parsed into the logged form only when it turns out slow; anything
 * else (inline, a larger one, a bulk read outside the query buffer) is captured in the logged
 * form at once (entry_build: bounded by the 32 / 128 cuts). Why: building the logged form of
 * every forward cost ~440 instructions of a forwarded SET's ~4,050 and ~2,900 of a 10-key
 * MSET's ~12,600 (whose capture, too big to recycle, was also a malloc and a free each).
 * Captures that were not slow are recycled: allocated with room for SLOWLOG_SPARE_BYTES, or
 * the next power of two above that, after the header, and up to SLOWLOG_SPARES_MAX of them
 * holding at most SLOWLOG_SPARES_BYTES wait for reuse (only after that many forwards were in
 * flight at once). A spare too small for a capture is freed and replaced by a larger one, so
 * a steady workload settles on spares that fit it and allocates nothing. */
#define SLOWLOG_SPARE_BYTES 320
#define SLOWLOG_SPARES_MAX 256
#define SLOWLOG_SPARES_BYTES (256 * 1024)
#define SLOWLOG_RAW_MAX 4096

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
    size_t raw;                  /* a capture of the request's own bytes (in argv's place,
                                    argc 0): their length; 0 for the logged form */
    size_t cap;                  /* bytes allocated after the header (slices and bytes) */
    struct slowlog_arg argv[];   /* then the argument bytes */
};

struct slowlog {
    struct slowlog_entry *newest, *oldest;
    size_t len;
    long long next_id;
    struct slowlog_entry *spares; /* recycled captures (linked by older) */
    size_t nspares;               /* <= SLOWLOG_SPARES_MAX */
    size_t spare_bytes;           /* their caps: <= SLOWLOG_SPARES_BYTES */
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

/* The room allocated after the header of a capture that needs need bytes there. */
static size_t capture_cap(size_t need)
{
    size_t cap = SLOWLOG_SPARE_BYTES;
    if (need <= cap)
        return cap;
    cap = 512;
    while (cap < need) /* need is at most ~6 KB (a logged form) or SLOWLOG_RAW_MAX */
        cap *= 2;
    return cap;
}

/* A capture with room for need bytes after its header: a spare of sl's when the newest one is
 * large enough (a smaller one is freed: a larger one replaces it), else a new allocation. Its
 * header is not initialized. Owned by the caller (capture_recycle, or slowlog_entry_free). */
static inline struct slowlog_entry *capture_take(struct slowlog *sl, size_t need)
{
    struct slowlog_entry *e = sl->spares;
    if (e) {
        sl->spares = e->older;
        sl->nspares--;
        sl->spare_bytes -= e->cap;
        if (e->cap >= need)
            return e;
        free(e);
    }
    size_t cap = capture_cap(need);
    e = xmalloc(sizeof(*e) + cap);
    e->cap = cap;
    return e;
}

/* A capture that was not slow (or whose bytes were logged in another form): kept for the next
 * forward while the spares stay within their bounds, else freed. */
static inline void capture_recycle(struct slowlog *sl, struct slowlog_entry *e)
{
    if (sl && !e->name && sl->nspares < SLOWLOG_SPARES_MAX &&
        sl->spare_bytes + e->cap <= SLOWLOG_SPARES_BYTES) {
        e->older = sl->spares;
        sl->spares = e;
        sl->nspares++;
        sl->spare_bytes += e->cap;
        return;
    }
    slowlog_entry_free(e);
}

/* A new entry holding the logged form of argv (argc arguments, of which argv holds at least
 * the first min(argc, SLOWLOG_ENTRY_MAX_ARGC)): a capture of sl's (capture_take) when sl is
 * given, else one allocation of its size. Owned by the caller. */
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
    size_t cap = need;
    if (sl) {
        e = capture_take(sl, need);
        cap = e->cap;
    } else {
        e = xmalloc(sizeof(*e) + need);
    }
    memset(e, 0, sizeof(*e));
    e->cap = cap;
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

/* The number of a header line at *p ('*' or '$', digits, '\r' and one more byte, as the
 * client's parser accepted it), *p moved past the line. -1 when the bytes up to end do not
 * hold one (never for the bytes of a request the parser returned). */
static long long raw_number(const char **p, const char *end)
{
    const char *s = *p + 1;
    long long v = 0;
    for (; s < end && *s != '\r'; s++) {
        unsigned d = (unsigned)(unsigned char)*s - '0';
        if (d > 9 || v > (RESP_MULTIBULK_MAX - 9) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (end - s < 2)
        return -1;
    *p = s + 2;
    return v;
}

/* The logged form of a raw capture: its multibulk parsed again, the first
 * SLOWLOG_ENTRY_MAX_ARGC arguments only, then entry_build's cuts. A new allocation. */
static struct slowlog_entry *raw_entry(const struct slowlog_entry *capture)
{
    const char *p = (const char *)capture->argv, *end = p + capture->raw;
    struct resp_arg argv[SLOWLOG_ENTRY_MAX_ARGC];
    long long argc = raw_number(&p, end);
    size_t n = 0;
    while (argc > 0 && n < (size_t)argc && n < SLOWLOG_ENTRY_MAX_ARGC) {
        long long len = raw_number(&p, end);
        if (len < 0 || end - p < len)
            break;
        argv[n].ptr = p;
        argv[n].len = (size_t)len;
        n++;
        p += len;
        p += end - p >= 2 ? 2 : end - p; /* the CRLF */
    }
    /* short only if the bytes were not the request's: log what they hold */
    return entry_build(NULL, argv, n < SLOWLOG_ENTRY_MAX_ARGC ? n : (size_t)argc, 0);
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
    slowlog_push(srv, c, entry_build(NULL, c->argv, c->argc, c->redacted), ns);
}

/* The request's own bytes (c->req_ptr, c->req_len: set by the client for every request it
 * dispatches, 0 for an inline one or one with a bulk read outside the query buffer) are the
 * multibulk c->argv was parsed from, and nothing on a forward's way rewrites c->argv: they
 * are captured when small enough, and parsed again only for a slow one. */
void slowlog_forward_begin(struct client *c, const struct command *cmd, struct fwd *f,
                           int64_t t0_ns)
{
    struct server *srv = c->srv;
    struct slowlog *sl = srv->slowlog;
    if (srv->cfg.slowlog_log_slower_than < 0 || !sl || !f || f->slow ||
        (cmd && multi_is_exec(cmd)))
        return;
    size_t n = c->req_len;
    if (n > 0 && n <= SLOWLOG_RAW_MAX) {
        struct slowlog_entry *e = capture_take(sl, n);
        e->name = NULL;
        e->argc = 0;
        e->raw = n;
        e->t0_ns = t0_ns;
        memcpy(e->argv, c->req_ptr, n);
        f->slow = e;
        return;
    }
    f->slow = entry_build(sl, c->argv, c->argc, 0);
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
    struct slowlog *sl = c->srv->slowlog;
    if (!slowlog_is_slow(c->srv, (uint64_t)ns)) {
        capture_recycle(sl, e);
        return;
    }
    if (e->raw) {
        struct slowlog_entry *logged = raw_entry(e);
        capture_recycle(sl, e);
        e = logged;
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
