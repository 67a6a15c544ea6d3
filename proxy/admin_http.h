/* The admin HTTP port ([admin] listen = host:port, "" = off): a small HTTP/1.1 responder on
 * the server's loop for three GET paths:
 *   /metrics   Prometheus text exposition 0.0.4 (metrics.c)
 *   /healthz   200 "ok" (liveness: the loop answers)
 *   /readyz    200 "ready" when the sidecar listens and, with an upstream, every data link is
 *              up, tracking is armed and the invalidation subscriber is up; else 503 and a
 *              one-line reason
 * HEAD is answered as GET without the body; another method gets 405 (Allow: GET, HEAD), another
 * path 404, a malformed request 400, a request head over ADMIN_HTTP_REQUEST_MAX 431, a body
 * announced over it 413, an HTTP version other than 1.x 505.
 *
 * It cannot stall or crash the sidecar: sockets are non-blocking and watched by libev; a
 * request is read into a fixed buffer; each connection has one deadline
 * (ADMIN_HTTP_TIMEOUT_S from accept: a client that sends nothing, or too slowly, or does not
 * read its answer, is closed then); at most ADMIN_HTTP_CONNS_MAX connections at once (the
 * others get a canned 503 and are closed); one response per connection (Connection: close),
 * then the write side is shut and what the client still sends is drained for a short while
 * so the response is not lost to a reset; accept failing for lack of descriptors pauses
 * accepting for a moment instead of spinning.
 *
 * Owns: the listening socket, every admin connection and its buffers. Borrows the server root
 * (read-only, for the figures). */
#ifndef PROXY_ADMIN_HTTP_H
#define PROXY_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct server;

#define ADMIN_HTTP_REQUEST_MAX 8192   /* bytes of request line + headers */
#define ADMIN_HTTP_TIMEOUT_S 5.0      /* a connection's whole life, from accept */
#define ADMIN_HTTP_LINGER_S 1.0       /* draining after the response was sent */
#define ADMIN_HTTP_CONNS_MAX 64
#define ADMIN_HTTP_ACCEPTS_PER_EVENT 64
#define ADMIN_HTTP_PATH_MAX 256       /* bytes of the path kept (longer paths are 404s) */

/* Opens the admin port when srv->cfg.admin_listen is set (srv->admin stays NULL when off).
 * -1 (logged) when it cannot listen. */
int admin_http_open(struct server *srv);
/* Closes the port and every admin connection; NULL srv->admin is a no-op. */
void admin_http_close(struct server *srv);

/* ---- the request parser (pure; exposed for the unit tests) ---- */

struct admin_http_request {
    char method[16];
    char path[ADMIN_HTTP_PATH_MAX]; /* the target's path, without the query */
    bool path_truncated;
    int minor;                      /* HTTP/1.<minor> */
};

/* Parses the request in buf[0..len) (len <= ADMIN_HTTP_REQUEST_MAX). Returns 0 while more
 * bytes are needed, 200 for a complete well-formed request head (req filled), or the error
 * status to answer: 400, 413, 431, 505. Accepts CRLF or bare LF line ends. */
int admin_http_parse(const char *buf, size_t len, struct admin_http_request *req);

#endif
