/* MONITOR (see monitor.h): the MONITOR command, the line format and the feed.
 * Invariants: srv->monitors[0..nmonitors) are distinct live clients, each with CLIENT_MONITOR;
 * a client leaves the array before it is freed (client_free, RESET); a line is built once per
 * command and appended to each monitor's output; a monitor over the output limit is closed
 * (marked, freed later by the flush path) and gets nothing more. */
#include "proxy/monitor.h"

#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"
#include "proxy/slowlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#define MONITOR_INITIAL_CAP 4

/* Redis's sdscatrepr: the bytes quoted, with C escapes for what is not printable ASCII. */
static void monitor_append_repr(struct strbuf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_reserve(b, n + 2);
    strbuf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        switch (ch) {
        case '\\':
        case '"':
            strbuf_putc(b, '\\');
            strbuf_putc(b, (char)ch);
            break;
        case '\n': strbuf_append(b, "\\n", 2); break;
        case '\r': strbuf_append(b, "\\r", 2); break;
        case '\t': strbuf_append(b, "\\t", 2); break;
        case '\a': strbuf_append(b, "\\a", 2); break;
        case '\b': strbuf_append(b, "\\b", 2); break;
        default:
            if (ch >= 0x20 && ch <= 0x7e) {
                strbuf_putc(b, (char)ch);
            } else {
                char esc[4] = { '\\', 'x', hex[ch >> 4], hex[ch & 15] };
                strbuf_append(b, esc, sizeof(esc));
            }
            break;
        }
    }
    strbuf_putc(b, '"');
}

/* The line for c's current command (its arguments, redactions applied). */
static void monitor_format(const struct client *c, struct strbuf *b)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (c->flags & CLIENT_UNIX_SOCKET)
        strbuf_printf(b, "+%ld.%06ld [%d unix:%s] ", (long)tv.tv_sec, (long)tv.tv_usec, c->db,
                      c->srv->cfg.unixsocket);
    else
        strbuf_printf(b, "+%ld.%06ld [%d %s] ", (long)tv.tv_sec, (long)tv.tv_usec, c->db,
                      c->addr);
    for (size_t i = 0; i < c->argc; i++) {
        if (i)
            strbuf_putc(b, ' ');
        if (c->redacted & client_redact_bit(i))
            monitor_append_repr(b, SLOWLOG_REDACTED, sizeof(SLOWLOG_REDACTED) - 1);
        else
            monitor_append_repr(b, c->argv[i].ptr, c->argv[i].len);
    }
    strbuf_append(b, "\r\n", 2);
}

void monitor_feed(struct client *c, const struct command *cmd)
{
    struct server *srv = c->srv;
    if (cmd && (cmd->flags & CMD_ADMIN))
        return; /* Redis never shows administrative commands */
    struct strbuf line = { NULL, 0, 0 };
    monitor_format(c, &line);
    for (size_t i = 0; i < srv->nmonitors; i++) {
        struct client *m = srv->monitors[i];
        if (m->flags & CLIENT_CLOSE_ASAP)
            continue;
        strbuf_append(client_out(m), line.data, line.len);
        client_want_write(m);
        if (client_output_bytes(m) > (size_t)srv->cfg.client_output_buffer_limit) {
            log_warn(&srv->log, "Client id=%llu addr=%s closed for overcoming of output buffer "
                     "limits.", (unsigned long long)m->id, m->addr);
            client_close(m);
        }
    }
    strbuf_free(&line);
}

void monitor_remove(struct client *c)
{
    struct server *srv = c->srv;
    if (!(c->flags & CLIENT_MONITOR))
        return;
    c->flags &= ~CLIENT_MONITOR;
    for (size_t i = 0; i < srv->nmonitors; i++) {
        if (srv->monitors[i] == c) {
            srv->monitors[i] = srv->monitors[--srv->nmonitors];
            return;
        }
    }
}

void monitor_free_all(struct server *srv)
{
    free(srv->monitors);
    srv->monitors = NULL;
    srv->nmonitors = srv->monitors_cap = 0;
}

/* MONITOR: +OK, then a line per command. Inside a transaction Redis refuses it (a client that
 * expects one reply per command); a monitor asking again gets no reply at all. */
void cmd_monitor(struct client *c)
{
    struct server *srv = c->srv;
    if (c->flags & CLIENT_MULTI) {
        reply_error(c, "ERR MONITOR isn't allowed for DENY BLOCKING client");
        return;
    }
    if (c->flags & CLIENT_MONITOR)
        return;
    if (srv->nmonitors == srv->monitors_cap) {
        srv->monitors_cap = srv->monitors_cap ? srv->monitors_cap * 2 : MONITOR_INITIAL_CAP;
        srv->monitors = xrealloc(srv->monitors, srv->monitors_cap * sizeof(*srv->monitors));
    }
    srv->monitors[srv->nmonitors++] = c;
    c->flags |= CLIENT_MONITOR;
    reply_ok(c);
}
