/* Entry point: command line, configuration (file, then environment, then --port, then the
 * password files; validated with protected mode, then against the command table: [users] rules
 * and [rename_commands]), then the server. Exit status 0 on a clean shutdown, 1 on a
 * configuration or start-up error (the reason on stderr, never a password). */
#include "conf/config.h"
#include "proxy/server.h"

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/xmalloc.h"

struct main_args {
    const char *config_file;
    int port;             /* 0 = keep the file's */
    bool check_only;
};

static void usage_error(const char *msg)
{
    fprintf(stderr, "sidecar: %s\nTry 'sidecar --help'.\n", msg);
    exit(1);
}

static void parse_args(int argc, char **argv, struct main_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            config_print_help(stdout);
            exit(0);
        } else if (strcmp(s, "--config-reference") == 0) {
            config_print_reference(stdout);
            exit(0);
        } else if (strcmp(s, "--version") == 0 || strcmp(s, "-v") == 0) {
            printf("sidecar %s (Redis %s compatible)\n", SIDECAR_VERSION, SERVER_VERSION);
            exit(0);
        } else if (strcmp(s, "--check-config") == 0) {
            a->check_only = true;
        } else if (strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) {
            if (++i >= argc)
                usage_error("-c needs a file");
            a->config_file = argv[i];
        } else if (strcmp(s, "--port") == 0) {
            char *end;
            long p = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || p < 1 || p > 65535)
                usage_error("--port needs a number from 1 to 65535");
            a->port = (int)p;
            i++;
        } else {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown argument '%s'", s);
            usage_error(msg);
        }
    }
}

/* glibc's malloc raises its mmap threshold to the size of every mmapped chunk it frees (up
 * to 32 MB), after which large values (a 1 MB write read back by the near-cache, a 1 MB query
 * buffer) come from the heap, where a freed one in the middle is never returned: writing
 * 1 MB values through the near-cache left RSS 6 MB up after every key was deleted
 * (test_hostile's big arguments, near-cache). Fixed thresholds keep allocations of 512 KB and
 * more in their own mappings, returned when freed, and trim the heap's top past 8 MB. Why not
 * less: with 1 MB, the query buffers of 50 clients forwarding 100 KB SETs (allocated and freed
 * as their pipelines come and go) had the top trimmed and grown back all the time: 1.6 to 3.6
 * page faults per request, a tenth of the sidecar's CPU time there (4 MB: 0.5). */
#define MAIN_MMAP_THRESHOLD (512 * 1024)
#define MAIN_TRIM_THRESHOLD (8 * 1024 * 1024)

int main(int argc, char **argv)
{
    mallopt(M_MMAP_THRESHOLD, MAIN_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, MAIN_TRIM_THRESHOLD);
    struct main_args args = { NULL, 0, false };
    parse_args(argc, argv, &args);

    static struct server srv; /* the root: zeroed, lives for the whole process */
    char err[CONFIG_ERR_LEN];
    config_init_defaults(&srv.cfg);
    if (args.config_file && config_load_file(&srv.cfg, args.config_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_free(&srv.cfg);
        return 1;
    }
    if (config_apply_env(&srv.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_free(&srv.cfg);
        return 1;
    }
    if (args.port)
        config_override_port(&srv.cfg, args.port);
    if (config_read_secret_files(&srv.cfg, err, sizeof(err)) < 0 ||
        config_validate(&srv.cfg, err, sizeof(err)) < 0 ||
        server_check_config(&srv.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_free(&srv.cfg);
        return 1;
    }
    if (args.check_only) {
        printf("%s: configuration OK\n", args.config_file ? args.config_file : "(defaults)");
        config_free(&srv.cfg);
        return 0;
    }
    srv.port_override = args.port;
    if (args.config_file) {
        char resolved[PATH_MAX];
        srv.config_path = xstrdup(realpath(args.config_file, resolved) ? resolved : args.config_file);
    }
    int status = 1;
    if (server_init(&srv) == 0)
        status = server_run(&srv);
    server_free(&srv);
    return status;
}
