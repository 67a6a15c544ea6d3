/* Listening sockets and accept; see listener.h. Each listener is a libev io watcher embedded in
 * struct listener inside the server root. */
#include "proxy/listener.h"

#include "proxy/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXCLIENTS_ERR "-ERR max number of clients reached\r\n"

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

bool listener_parse_addr(const char *spec, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec)
        return false;
    const char *h = spec;
    size_t hl = (size_t)(colon - spec);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return false;
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostcap)
        return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 1 || p > 65535)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return true;
}

static void listener_refuse(int fd)
{
    /* Best effort, as Redis: the socket is fresh, so the short error fits its buffer. */
    ssize_t n = write(fd, MAXCLIENTS_ERR, sizeof(MAXCLIENTS_ERR) - 1);
    (void)n;
    close(fd);
}

static void tune_tcp(const struct server *srv, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (srv->cfg.tcp_keepalive > 0) {
        int idle = (int)srv->cfg.tcp_keepalive;
        int intvl = idle / 3 > 0 ? idle / 3 : 1;
        int cnt = 3;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
}

static void listener_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *l = (struct listener *)((char *)w - offsetof(struct listener, io));
    struct server *srv = l->srv;
    (void)loop;
    (void)revents;
    for (int i = 0; i < SERVER_ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connection stays readable: pause instead of spinning. */
                log_warn(&srv->log, "Accepting client connection: %s (pausing %.0f ms)",
                         strerror(errno), SERVER_ACCEPT_PAUSE_S * 1000);
                ev_io_stop(srv->loop, &l->io);
                ev_timer_set(&l->pause, SERVER_ACCEPT_PAUSE_S, 0.0);
                ev_timer_start(srv->loop, &l->pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_warn(&srv->log, "Accepting client connection: %s", strerror(errno));
            }
            return;
        }
        srv->stats.connections_received++;
        if (srv->shutting_down || srv->nclients >= (size_t)srv->cfg.maxclients) {
            srv->stats.rejected_connections++;
            listener_refuse(fd);
            continue;
        }
        if (!l->unix_socket)
            tune_tcp(srv, fd);
        client_create(srv, fd, l->unix_socket);
    }
}

static void listener_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct listener *l = (struct listener *)((char *)w - offsetof(struct listener, pause));
    (void)revents;
    if (!l->srv->shutting_down)
        ev_io_start(loop, &l->io);
}

int listener_open_tcp(struct server *srv, const char *spec, int backlog)
{
    char host[256];
    int port;
    if (!listener_parse_addr(spec, host, sizeof(host), &port)) {
        log_warn(&srv->log, "Bad listen address '%s'", spec);
        return -1;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        log_warn(&srv->log, "Could not resolve listen address '%s': %s", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(fd, backlog) < 0 || set_nonblock(fd) < 0) {
        log_warn(&srv->log, "Could not listen on %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int open_unix(struct server *srv, const char *path, long long perm)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_warn(&srv->log, "unixsocket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, (int)srv->cfg.tcp_backlog) < 0 || set_nonblock(fd) < 0) {
        log_warn(&srv->log, "Could not listen on unix socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (perm && chmod(path, (mode_t)perm) < 0)
        log_warn(&srv->log, "chmod %s: %s", path, strerror(errno));
    return fd;
}

static void listener_add(struct server *srv, int fd, bool unix_socket, const char *addr)
{
    struct listener *l = &srv->listeners[srv->nlisteners++];
    l->srv = srv;
    l->fd = fd;
    l->unix_socket = unix_socket;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    ev_io_init(&l->io, listener_accept_cb, fd, EV_READ);
    ev_io_start(srv->loop, &l->io);
    ev_timer_init(&l->pause, listener_resume_cb, SERVER_ACCEPT_PAUSE_S, 0.0);
    log_info(&srv->log, "Ready to accept connections %s %s", unix_socket ? "unix" : "tcp", addr);
}

int listener_open_all(struct server *srv)
{
    for (size_t i = 0; i < srv->cfg.nlisten; i++) {
        int fd = listener_open_tcp(srv, srv->cfg.listen[i], (int)srv->cfg.tcp_backlog);
        if (fd < 0)
            return -1;
        listener_add(srv, fd, false, srv->cfg.listen[i]);
    }
    if (srv->cfg.unixsocket && srv->cfg.unixsocket[0]) {
        int fd = open_unix(srv, srv->cfg.unixsocket, srv->cfg.unixsocketperm);
        if (fd < 0)
            return -1;
        listener_add(srv, fd, true, srv->cfg.unixsocket);
    }
    return 0;
}

void listener_close_all(struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        ev_io_stop(srv->loop, &l->io);
        ev_timer_stop(srv->loop, &l->pause);
        close(l->fd);
        if (l->unix_socket)
            unlink(l->addr);
    }
    srv->nlisteners = 0;
}
