/* The admin HTTP port (see admin_http.h): the listener, the connections' life (read the request
 * head, answer once, shut the write side, drain, close) and the three paths.
 * Invariants: every admin connection is in the port's list and holds one io watcher (active) and
 * one timer (active from accept to close); nconns <= ADMIN_HTTP_CONNS_MAX; a connection is freed
 * only by admin_conn_free, which stops both watchers first; nothing here blocks. */
#include "proxy/admin_http.h"

#include "conf/xmalloc.h"
#include "proxy/listener.h"
#include "proxy/metrics.h"
#include "proxy/nearcache.h"
#include "proxy/server.h"
#include "proxy/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADMIN_DRAIN_MAX (64 * 1024)  /* bytes read and dropped while lingering */
#define ADMIN_PAUSE_S 0.1            /* accept paused after EMFILE/ENFILE */
#define ADMIN_REASON_MAX 256
#define ADMIN_BACKLOG 128

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define BUSY_RESPONSE "HTTP/1.1 503 Service Unavailable\r\nContent-Type: " CT_TEXT "\r\n" \
                      "Content-Length: 27\r\nConnection: close\r\n\r\ntoo many admin connections\n"
#define TIMEOUT_RESPONSE "HTTP/1.1 408 Request Timeout\r\nContent-Type: " CT_TEXT "\r\n" \
                         "Content-Length: 16\r\nConnection: close\r\n\r\nrequest timeout\n"

enum admin_conn_state { ADMIN_READING, ADMIN_WRITING, ADMIN_LINGER };

struct admin_conn {
    struct admin_http *adm;
    struct admin_conn *prev, *next;
    int fd;
    enum admin_conn_state state;
    ev_io io;
    ev_timer timer;
    size_t len;                      /* bytes of req read */
    char req[ADMIN_HTTP_REQUEST_MAX];
    struct strbuf out;               /* the response */
    size_t sent;
    size_t drained;
};

struct admin_http {
    struct server *srv;
    int fd;
    ev_io io;
    ev_timer pause;                  /* accept paused (out of descriptors) */
    char addr[128];
    struct admin_conn *conns;
    size_t nconns;
};

/* ---- the request parser ---- */

static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The line starting at p (before end): its length without the CR/LF; *next after the LF.
 * false when no LF yet. */
static bool next_line(const char *p, const char *end, size_t *len, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return false;
    *next = lf + 1;
    *len = (size_t)(lf - p) - (lf > p && lf[-1] == '\r' ? 1 : 0);
    return true;
}

/* The path of a request target: origin-form "/p?q", absolute-form "http://host/p", or "*". */
static int parse_target(const char *t, size_t n, struct admin_http_request *req)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return 400;
    if (n >= 7 && (strncasecmp(t, "http://", 7) == 0 || (n >= 8 &&
                   strncasecmp(t, "https://", 8) == 0))) {
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *slash = memchr(t + skip, '/', n - skip);
        n = slash ? n - (size_t)(slash - t) : 0;
        t = slash ? slash : "/";
        if (!slash)
            n = 1;
    } else if (!(n == 1 && t[0] == '*') && t[0] != '/') {
        return 400;
    }
    const char *q = memchr(t, '?', n);
    if (q)
        n = (size_t)(q - t);
    const char *hash = memchr(t, '#', n);
    if (hash)
        return 400; /* a fragment is never sent */
    req->path_truncated = n >= sizeof(req->path);
    if (req->path_truncated)
        n = sizeof(req->path) - 1;
    memcpy(req->path, t, n);
    req->path[n] = '\0';
    return 200;
}

static int parse_request_line(const char *p, size_t n, struct admin_http_request *req)
{
    const char *sp1 = memchr(p, ' ', n);
    if (!sp1 || sp1 == p || (size_t)(sp1 - p) >= sizeof(req->method))
        return 400;
    for (const char *m = p; m < sp1; m++)
        if (!is_tchar((unsigned char)*m))
            return 400;
    memcpy(req->method, p, (size_t)(sp1 - p));
    req->method[sp1 - p] = '\0';
    const char *t = sp1 + 1, *end = p + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t)
        return 400;
    const char *v = sp2 + 1;
    size_t vn = (size_t)(end - v);
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1')
        return 505;
    req->minor = v[7] - '0';
    return parse_target(t, (size_t)(sp2 - t), req);
}

/* One header line: a token, ':', a value without control characters (HTAB allowed). */
static int parse_header(const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p)
        return 400;
    for (const char *c = p; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return 400;
    const char *v = colon + 1, *end = p + n;
    for (const char *c = v; c < end; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return 400;
    size_t name_len = (size_t)(colon - p);
    if (name_len == 14 && strncasecmp(p, "content-length", 14) == 0) {
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (v == end)
            return 400;
        unsigned long long cl = 0;
        for (; v < end; v++) {
            if (*v < '0' || *v > '9')
                return 400;
            cl = cl * 10 + (unsigned long long)(*v - '0');
            if (cl > ADMIN_HTTP_REQUEST_MAX)
                return 413;
        }
    }
    return 200;
}

int admin_http_parse(const char *buf, size_t len, struct admin_http_request *req)
{
    if (memchr(buf, '\0', len))
        return 400;
    const char *p = buf, *end = buf + len, *next;
    size_t n;
    /* RFC 9112: empty lines before the request line are ignored. */
    while (next_line(p, end, &n, &next) && n == 0 && p - buf < 8)
        p = next;
    if (!next_line(p, end, &n, &next))
        return len >= ADMIN_HTTP_REQUEST_MAX ? 431 : 0;
    int rc = parse_request_line(p, n, req);
    if (rc != 200)
        return rc;
    for (p = next; next_line(p, end, &n, &next); p = next) {
        if (n == 0)
            return 200; /* the end of the head */
        if (*p == ' ' || *p == '\t')
            return 400; /* obsolete line folding */
        rc = parse_header(p, n);
        if (rc != 200)
            return rc;
    }
    return len >= ADMIN_HTTP_REQUEST_MAX ? 431 : 0;
}

/* ---- responses ---- */

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static void respond(struct admin_conn *ac, int status, const char *ctype, const char *body,
                    size_t blen, bool head)
{
    struct strbuf *o = &ac->out;
    strbuf_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                  status, status_text(status), ctype, blen,
                  status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head)
        strbuf_append(o, body, blen);
}

static void respond_text(struct admin_conn *ac, int status, const char *text, bool head)
{
    respond(ac, status, CT_TEXT, text, strlen(text), head);
}

/* Why the sidecar is not ready, or NULL when it is. */
static const char *readiness(const struct server *srv, char *buf, size_t cap)
{
    if (srv->shutting_down)
        return "shutting down";
    if (srv->nlisteners == 0)
        return "not listening";
    const struct nearcache *nc = srv->nc;
    if (!nc)
        return NULL;
    size_t up = upstream_pool_up(nc->pool);
    if (up < nc->nlinks) {
        const char *last = "";
        for (size_t i = 0; i < nc->nlinks && !last[0]; i++)
            last = upstream_link_last_error(nc->links[i].link);
        snprintf(buf, cap, "upstream %s: %zu of %zu data links up%s%.160s",
                 upstream_link_address(nc->links[0].link), up, nc->nlinks,
                 last[0] ? ", last error: " : "", last);
        return buf;
    }
    const char *sub = coherence_subscriber_state(nc);
    if (strcmp(sub, "off") != 0 && strcmp(sub, "up") != 0)
        return "invalidation subscriber down";
    if (!nearcache_armed(nc))
        return "tracking not armed yet";
    return NULL;
}

static void admin_route(struct admin_conn *ac, const struct admin_http_request *req)
{
    struct server *srv = ac->adm->srv;
    bool head = strcmp(req->method, "HEAD") == 0;
    if (!head && strcmp(req->method, "GET") != 0) {
        respond_text(ac, 405, "method not allowed\n", false);
        return;
    }
    if (req->path_truncated) {
        respond_text(ac, 404, "not found\n", head);
    } else if (strcmp(req->path, "/metrics") == 0) {
        struct strbuf body = { 0 };
        metrics_render(srv, &body);
        respond(ac, 200, CT_METRICS, body.data ? body.data : "", body.len, head);
        strbuf_free(&body);
    } else if (strcmp(req->path, "/healthz") == 0) {
        respond_text(ac, 200, "ok\n", head);
    } else if (strcmp(req->path, "/readyz") == 0) {
        char why[ADMIN_REASON_MAX], line[ADMIN_REASON_MAX + 16];
        const char *reason = readiness(srv, why, sizeof(why));
        if (reason) {
            snprintf(line, sizeof(line), "not ready: %s\n", reason);
            respond_text(ac, 503, line, head);
        } else {
            respond_text(ac, 200, "ready\n", head);
        }
    } else {
        respond_text(ac, 404, "not found\n", head);
    }
}

/* ---- connections ---- */

static void admin_conn_free(struct admin_conn *ac)
{
    struct admin_http *adm = ac->adm;
    struct ev_loop *loop = adm->srv->loop;
    ev_io_stop(loop, &ac->io);
    ev_timer_stop(loop, &ac->timer);
    close(ac->fd);
    if (ac->prev)
        ac->prev->next = ac->next;
    else
        adm->conns = ac->next;
    if (ac->next)
        ac->next->prev = ac->prev;
    adm->nconns--;
    strbuf_free(&ac->out);
    free(ac);
}

static void admin_conn_watch(struct admin_conn *ac, int events)
{
    struct ev_loop *loop = ac->adm->srv->loop;
    if ((ac->io.events & (EV_READ | EV_WRITE)) == events && ev_is_active(&ac->io))
        return;
    ev_io_stop(loop, &ac->io);
    ev_io_set(&ac->io, ac->fd, events);
    ev_io_start(loop, &ac->io);
}

/* The response is out: no more writes, and what the client still sends is read and dropped
 * (closing with unread input would reset the connection and could lose the response). */
static void admin_conn_linger(struct admin_conn *ac)
{
    struct ev_loop *loop = ac->adm->srv->loop;
    shutdown(ac->fd, SHUT_WR);
    ac->state = ADMIN_LINGER;
    admin_conn_watch(ac, EV_READ);
    double left = ev_timer_remaining(loop, &ac->timer);
    ev_timer_stop(loop, &ac->timer);
    ev_timer_set(&ac->timer, left < ADMIN_HTTP_LINGER_S ? left : ADMIN_HTTP_LINGER_S, 0.0);
    ev_timer_start(loop, &ac->timer);
}

/* Writes what the socket takes; false when the connection was freed. */
static bool admin_conn_write(struct admin_conn *ac)
{
    while (ac->sent < ac->out.len) {
        ssize_t n = send(ac->fd, ac->out.data + ac->sent, ac->out.len - ac->sent, MSG_NOSIGNAL);
        if (n > 0) {
            ac->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            admin_conn_watch(ac, EV_WRITE);
            return true;
        }
        admin_conn_free(ac);
        return false;
    }
    strbuf_free(&ac->out);
    ac->sent = 0;
    admin_conn_linger(ac);
    return true;
}

static void admin_conn_answer(struct admin_conn *ac, int status,
                              const struct admin_http_request *req)
{
    if (status == 200)
        admin_route(ac, req);
    else
        respond_text(ac, status, status == 431   ? "request header fields too large\n"
                                 : status == 413 ? "content too large\n"
                                 : status == 505 ? "HTTP version not supported\n"
                                                 : "bad request\n", false);
    ac->state = ADMIN_WRITING;
    admin_conn_write(ac);
}

static void admin_conn_read(struct admin_conn *ac)
{
    for (;;) {
        if (ac->state == ADMIN_LINGER) {
            char sink[4096];
            ssize_t n = recv(ac->fd, sink, sizeof(sink), 0);
            if (n > 0 && (ac->drained += (size_t)n) < ADMIN_DRAIN_MAX)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            admin_conn_free(ac); /* EOF, error, or too much: done */
            return;
        }
        size_t room = sizeof(ac->req) - ac->len;
        ssize_t n = room ? recv(ac->fd, ac->req + ac->len, room, 0) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0 && room) { /* closed or failed before a whole request */
            admin_conn_free(ac);
            return;
        }
        ac->len += (size_t)n;
        struct admin_http_request req;
        int status = admin_http_parse(ac->req, ac->len, &req);
        if (status != 0) {
            admin_conn_answer(ac, status, &req);
            return;
        }
    }
}

static void admin_conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct admin_conn *ac = w->data;
    (void)loop;
    if ((revents & EV_WRITE) && ac->state == ADMIN_WRITING) {
        admin_conn_write(ac);
        return;
    }
    if (revents & EV_READ)
        admin_conn_read(ac);
}

static void admin_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct admin_conn *ac = w->data;
    (void)loop;
    (void)revents;
    if (ac->state == ADMIN_READING) { /* best effort: the socket buffer is empty */
        ssize_t n = send(ac->fd, TIMEOUT_RESPONSE, sizeof(TIMEOUT_RESPONSE) - 1,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    admin_conn_free(ac);
}

/* ---- the listener ---- */

static void admin_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct admin_http *adm = w->data;
    (void)revents;
    for (int i = 0; i < ADMIN_HTTP_ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(adm->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connection stays readable: pause instead of spinning. */
                log_warn(&adm->srv->log, "Admin port: accept: %s (pausing %.0f ms)",
                         strerror(errno), ADMIN_PAUSE_S * 1000);
                ev_io_stop(loop, &adm->io);
                ev_timer_set(&adm->pause, ADMIN_PAUSE_S, 0.0);
                ev_timer_start(loop, &adm->pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_warn(&adm->srv->log, "Admin port: accept: %s", strerror(errno));
            }
            return;
        }
        if (adm->nconns >= ADMIN_HTTP_CONNS_MAX) {
            ssize_t n = send(fd, BUSY_RESPONSE, sizeof(BUSY_RESPONSE) - 1,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)n;
            close(fd);
            continue;
        }
        struct admin_conn *ac = xcalloc(1, sizeof(*ac));
        ac->adm = adm;
        ac->fd = fd;
        ac->state = ADMIN_READING;
        ac->next = adm->conns;
        if (adm->conns)
            adm->conns->prev = ac;
        adm->conns = ac;
        adm->nconns++;
        ev_io_init(&ac->io, admin_conn_io_cb, fd, EV_READ);
        ac->io.data = ac;
        ev_io_start(loop, &ac->io);
        ev_timer_init(&ac->timer, admin_conn_timer_cb, ADMIN_HTTP_TIMEOUT_S, 0.0);
        ac->timer.data = ac;
        ev_timer_start(loop, &ac->timer);
    }
}

static void admin_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct admin_http *adm = w->data;
    (void)revents;
    ev_io_start(loop, &adm->io);
}

int admin_http_open(struct server *srv)
{
    const char *spec = srv->cfg.admin_listen;
    if (!spec || !spec[0])
        return 0;
    int fd = listener_open_tcp(srv, spec, ADMIN_BACKLOG);
    if (fd < 0)
        return -1;
    struct admin_http *adm = xcalloc(1, sizeof(*adm));
    adm->srv = srv;
    adm->fd = fd;
    snprintf(adm->addr, sizeof(adm->addr), "%s", spec);
    ev_io_init(&adm->io, admin_accept_cb, fd, EV_READ);
    adm->io.data = adm;
    ev_io_start(srv->loop, &adm->io);
    ev_timer_init(&adm->pause, admin_pause_cb, ADMIN_PAUSE_S, 0.0);
    adm->pause.data = adm;
    srv->admin = adm;
    log_info(&srv->log, "Admin HTTP port on %s (/metrics /healthz /readyz)", spec);
    return 0;
}

void admin_http_close(struct server *srv)
{
    struct admin_http *adm = srv->admin;
    if (!adm)
        return;
    while (adm->conns)
        admin_conn_free(adm->conns);
    ev_io_stop(srv->loop, &adm->io);
    ev_timer_stop(srv->loop, &adm->pause);
    close(adm->fd);
    free(adm);
    srv->admin = NULL;
}
