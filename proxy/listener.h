/* Listening sockets: TCP ("host:port", IPv4 or [IPv6]) and the optional unix socket; accepting
 * connections into clients, refusing them over maxclients with Redis's error. */
#ifndef PROXY_LISTENER_H
#define PROXY_LISTENER_H

#include "proxy/server.h"

/* Opens every listener srv->cfg asks for. -1 (logged) when one cannot be opened. */
int listener_open_all(struct server *srv);
/* Stops accepting and closes every listener (the unix socket file is removed). */
void listener_close_all(struct server *srv);

/* Splits "host:port" / "[v6]:port". false when malformed. host gets a NUL-terminated copy. */
bool listener_parse_addr(const char *spec, char *host, size_t hostcap, int *port);
/* A non-blocking TCP socket listening on spec ("host:port", IPv6 in brackets) with the given
 * backlog, or -1 (logged). The RESP listeners and the admin port share it. */
struct server;
int listener_open_tcp(struct server *srv, const char *spec, int backlog);

#endif
