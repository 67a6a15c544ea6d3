/* Configuration reload (see reload.h). The new file is loaded into a fresh struct config the
 * same way main() loads the first one; only config_diff()'s differences are acted on, each
 * run-time one through config_set() so CONFIG SET's checks and the file's agree. Secrets
 * (config_is_secret) are never written to the log, only "(hidden)"; password files are
 * re-read. [users] changes apply (the users are rebuilt; clients stay authenticated
 * unless their user is gone); [rename_commands] changes need a restart. */
#include "proxy/reload.h"

#include "conf/config.h"
#include "proxy/server.h"

#include <stdio.h>
#include <string.h>

struct reload_ctx {
    struct server *srv;
    int applied, restart;
};

static const char *shown(const char *name, const char *value)
{
    return config_is_secret(name) ? "(hidden)" : value;
}

static void reload_one(void *arg, const char *name, bool runtime, const char *old_value,
                       const char *new_value)
{
    struct reload_ctx *ctx = arg;
    struct server *srv = ctx->srv;
    if (!runtime) {
        log_warn(&srv->log, "reload: %s changed (%s -> %s) but needs a restart: still %s", name,
                 shown(name, old_value), shown(name, new_value), shown(name, old_value));
        ctx->restart++;
        return;
    }
    char err[CONFIG_ERR_LEN];
    if (config_set(&srv->cfg, name, new_value, err, sizeof(err)) < 0) {
        log_warn(&srv->log, "reload: %s not applied: %s", name, err);
        return;
    }
    log_info(&srv->log, "reload: %s = %s (was %s)", name, shown(name, new_value),
             shown(name, old_value));
    ctx->applied++;
}

int server_reload(struct server *srv, char *err, size_t errlen)
{
    if (!srv->config_path) {
        snprintf(err, errlen, "no configuration file to reload (started without -c)");
        return -1;
    }
    struct config next;
    config_init_defaults(&next);
    int rc = config_load_file(&next, srv->config_path, err, errlen);
    if (rc == 0)
        rc = config_apply_env(&next, err, errlen);
    if (rc == 0 && srv->port_override)
        config_override_port(&next, srv->port_override);
    if (rc == 0)
        rc = config_read_secret_files(&next, err, errlen);
    if (rc == 0)
        rc = config_validate(&next, err, errlen);
    if (rc == 0)
        rc = server_check_config(&next, err, errlen);
    if (rc < 0) {
        log_warn(&srv->log, "reload of %s failed, the running configuration is kept: %s",
                 srv->config_path, err);
        config_free(&next);
        return -1;
    }
    struct reload_ctx ctx = { srv, 0, 0 };
    config_diff(&srv->cfg, &next, reload_one, &ctx);
    if (!config_users_equal(&srv->cfg, &next)) {
        config_users_swap(&srv->cfg, &next); /* server_apply_config rebuilds them */
        log_info(&srv->log, "reload: [users] changed");
        ctx.applied++;
    }
    if (!config_renames_equal(&srv->cfg, &next)) {
        log_warn(&srv->log, "reload: [rename_commands] changed but needs a restart");
        ctx.restart++;
    }
    config_free(&next);
    server_apply_config(srv);
    log_info(&srv->log, "configuration reloaded from %s: %d change(s) applied, %d need a restart",
             srv->config_path, ctx.applied, ctx.restart);
    return 0;
}
