/* Reloading the configuration file at run time (SIGHUP, SIDECAR RELOAD): what can change
 * safely is applied, what needs a restart is logged and kept as it runs, and an invalid file
 * changes nothing (the error names FILE:LINE). */
#ifndef PROXY_RELOAD_H
#define PROXY_RELOAD_H

#include <stddef.h>

struct server;

/* Re-reads srv->config_path (then the environment, then --port, as at start), validates it and
 * applies the changed run-time options. 0, or -1 with the reason in err (nothing changed). */
int server_reload(struct server *srv, char *err, size_t errlen);

#endif
