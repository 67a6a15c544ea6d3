/* The sidecar's configuration: the struct, its defaults, and one option table that drives
 * sidecar.ini parsing (inih), SIDECAR_<SECTION>_<KEY> environment overrides, CONFIG GET/SET
 * (our names and Redis's own parameter names) and the --help text.
 * Invariant: a struct config that passed config_validate() is consistent (ports in range,
 * limits positive, backoff min <= max); strings are heap copies owned by the struct. */
#ifndef CONF_CONFIG_H
#define CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_LISTEN 16
#define CONFIG_ERR_LEN 512
#define CONFIG_USERS_MAX 256        /* [users] entries */
#define CONFIG_USER_HASHES_MAX 16   /* password hashes of one user */
#define CONFIG_USER_NAME_MAX 128    /* bytes of a user name */
#define CONFIG_RENAMES_MAX 64       /* [rename_commands] entries */
#define CONFIG_SECRET_FILE_MAX 4096 /* bytes of a password file */
/* What CONFIG GET shows for a password that is set (its value is never shown). */
#define CONFIG_SECRET_SHOWN "(redacted)"

enum maxmemory_policy {
    POLICY_ALLKEYS_LRU = 0,
    POLICY_VOLATILE_LRU,
    POLICY_ALLKEYS_RANDOM,
    POLICY_VOLATILE_TTL,
    POLICY_NOEVICTION,
};

enum cache_invalidation {
    INVALIDATION_TRACKING = 0, /* CLIENT TRACKING: Redis invalidates the keys we read */
    INVALIDATION_BCAST,        /* CLIENT TRACKING BCAST: every write under the prefixes */
    INVALIDATION_TTL,          /* none: entries live at most max_ttl_ms */
};

/* "allkeys-lru" ... ; NULL for an unknown value / -1 for an unknown name. */
const char *config_policy_name(int policy);
int config_policy_parse(const char *name);

/* One [users] entry: "alice = on #<sha256 hex> +@read -@admin". The rules are checked for
 * their syntax here; the +/- ones (categories, commands) are resolved against the command table
 * by proxy/acl.c. Plaintext passwords (">secret") are hashed while parsing and never kept. */
struct config_user {
    char *name;
    bool enabled;                 /* on / off (default off, as Redis's ACL SETUSER) */
    bool nopass;                  /* any password (or none) authenticates */
    size_t nhashes;
    unsigned char hashes[CONFIG_USER_HASHES_MAX][32]; /* SHA-256 digests */
    char **rules;                 /* "+@read", "-config|set", "allcommands", in order */
    size_t nrules;
};

/* One [rename_commands] entry: "flushall = \"\"" disables FLUSHALL, "config = cfg_x9" renames
 * CONFIG (its old name is then unknown). Resolved by proxy/command_table.c. */
struct config_rename {
    char *from;                   /* lower case */
    char *to;                     /* lower case; "" = disabled */
};

struct config_upstream {
    char *host;                   /* "" = standalone (no upstream) */
    long long port;               /* 1..65535 */
    char *unixsocket;             /* "" = TCP */
    char *username;               /* "" = none (AUTH password only) */
    char *password;               /* "" = no AUTH; from password_file when that is set */
    char *password_file;          /* "" = none; read by config_read_secret_files */
    long long db;                 /* 0.. */
    long long connect_timeout_ms; /* > 0 */
    long long op_timeout_ms;      /* > 0 */
    long long connections;        /* 1..64 */
    long long reconnect_min_ms;   /* > 0, <= reconnect_max_ms */
    long long reconnect_max_ms;
    long long health_check_interval_ms; /* 0 = off */
};

struct config {
    /* [server] */
    char *listen[CONFIG_MAX_LISTEN]; /* "host:port" each; at least one unless unixsocket set */
    size_t nlisten;
    char *unixsocket;                /* "" = none */
    long long unixsocketperm;        /* octal in the file, e.g. 700 */
    long long maxclients;
    long long timeout;               /* client idle timeout, seconds; 0 = never */
    long long tcp_backlog;
    long long tcp_keepalive;         /* seconds; 0 = off */
    long long databases;             /* SELECT 0..databases-1 */
    long long hz;                    /* server cron frequency (active expiry, timeouts) */
    char *requirepass;               /* "" = no password; the default user's password */
    char *requirepass_file;          /* "" = none; read by config_read_secret_files */
    int protected_mode;              /* bool: refuse a non-loopback listen without password */
    long long proto_max_bulk_len;    /* bytes */
    long long client_query_buffer_limit;  /* bytes */
    long long client_output_buffer_limit; /* bytes; a client over it is disconnected */
    long long pubsub_output_buffer_limit; /* bytes; the same for a subscribed client */
    long long slowlog_log_slower_than;    /* microseconds; -1 = SLOWLOG off, 0 = log all */
    long long slowlog_max_len;            /* entries SLOWLOG keeps */
    /* [cache] */
    long long max_memory;            /* bytes; 0 = unbounded */
    int maxmemory_policy;            /* enum maxmemory_policy */
    long long maxmemory_samples;
    int invalidation;                /* enum cache_invalidation (near-cache only) */
    char *bcast_prefixes;            /* "" = every key (bcast) */
    long long max_ttl_ms;            /* > 0: cap of a near-cache entry's TTL */
    long long negative_ttl_ms;       /* 0 = replies about missing keys are not cached */
    int write_through;               /* bool: SET-family writes store the new value */
    long long serve_stale_ms;        /* 0 = never serve past the TTL */
    /* [upstream] */
    struct config_upstream upstream;
    /* [admin] */
    char *admin_listen;              /* "" = off */
    /* [log] */
    int log_level;                   /* enum log_level */
    char *log_file;                  /* "" = stderr */
    int log_format;                  /* enum log_format */
    /* [users] and [rename_commands]: free-form sections (not option-table rows) */
    struct config_user *users;
    size_t nusers;
    struct config_rename *renames;
    size_t nrenames;
};

/* Fills every field with its default (the values documented in sidecar.ini). */
void config_init_defaults(struct config *cfg);
/* Frees every string the struct owns; the struct itself is the caller's. */
void config_free(struct config *cfg);

/* Loads an ini file over the current values. On failure returns -1 and writes
 * "FILE:LINE: reason" to err (unknown section/key, bad value, bad unit, line too long). */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);
/* Applies SIDECAR_<SECTION>_<KEY> variables from the environment (they win over the file).
 * On failure returns -1 and writes "SIDECAR_X_Y: reason" to err. */
int config_apply_env(struct config *cfg, char *err, size_t errlen);
/* Reads [server] requirepass_file and [upstream] password_file (when set) into requirepass and
 * upstream.password: the file's content without its trailing newline. Run after the file and
 * the environment. -1 with a reason (never the content) in err: unreadable, empty, too long,
 * NUL byte, or the password also given directly. */
int config_read_secret_files(struct config *cfg, char *err, size_t errlen);
/* Cross-field checks. -1 and a reason in err when the config cannot be served (includes the
 * protected mode check below). */
int config_validate(const struct config *cfg, char *err, size_t errlen);
/* Protected mode: with protected_mode on, every listen address must be a loopback one unless
 * the default user needs a password (requirepass, or a [users] default entry that is off or has
 * no nopass). -1 with the reason otherwise. */
int config_check_protected(const struct config *cfg, char *err, size_t errlen);
/* Whether host (of a listen address, without brackets) is a loopback address: 127.0.0.0/8,
 * ::1, ::ffff:127.x.x.x or "localhost". 0.0.0.0, :: and every other name are not. */
bool config_host_is_loopback(const char *host, size_t len);
/* Whether a client connecting without AUTH is the default user with full access: the default
 * user has no password (no requirepass; no [users] default entry or one with "on nopass"). */
bool config_default_user_is_open(const struct config *cfg);
/* The [users] entry named name, or NULL. */
const struct config_user *config_user_find(const struct config *cfg, const char *name);
/* Whether the [users] sections of a and b are the same (reload), and whether their
 * [rename_commands] are. */
bool config_users_equal(const struct config *a, const struct config *b);
bool config_renames_equal(const struct config *a, const struct config *b);
/* Exchanges the [users] sections of a and b (a reload takes the new users). */
void config_users_swap(struct config *a, struct config *b);
/* Whether CONFIG GET, SLOWLOG, MONITOR and the logs must hide the value of the option named name
 * (CONFIG SET name, or "section.key"): the table's secrets, requirepass and upstream.password.
 * A password file's path is not one (CONFIG GET shows it). */
bool config_is_secret(const char *name);
/* Replaces every listen address's port with port (the --port flag). */
void config_override_port(struct config *cfg, int port);

/* CONFIG SET name value at run time. name is matched case-insensitively against our keys
 * ("max_memory", "cache.max_memory") and Redis's names ("maxmemory", "maxmemory-policy").
 * Returns 0, or -1 with err holding the text after "-ERR " exactly as Redis 7 words it:
 *   "Unknown option or number of arguments for CONFIG SET - 'name'"
 *   "CONFIG SET failed (possibly related to argument 'name') - <reason>" */
int config_set(struct config *cfg, const char *name, const char *value, char *err, size_t errlen);

/* CONFIG GET pattern: calls emit(ctx, name, value) once per parameter whose name matches the
 * glob pattern (case-insensitive). Redis names are emitted where Redis has the parameter, our
 * own names otherwise. value is a temporary string valid during the call. Returns the count. */
size_t config_get(const struct config *cfg, const char *pattern,
                  void (*emit)(void *ctx, const char *name, const char *value), void *ctx);
/* Secrets are shown as "" when unset and CONFIG_SECRET_SHOWN when set. config_get_raw is the
 * same walk with their real values: only for CONFIG SET's undo snapshot, never for output. */
size_t config_get_raw(const struct config *cfg, const char *pattern,
                      void (*emit)(void *ctx, const char *name, const char *value), void *ctx);

/* Calls fn once per option (not the compatibility rows) whose value differs between a and b,
 * with its "section.key" name, whether CONFIG SET may change it, and both values as CONFIG
 * SET takes them (temporary strings valid during the call; secrets in clear: the caller must
 * hide them with config_is_secret before logging). SIGHUP's reload uses it. */
void config_diff(const struct config *a, const struct config *b,
                 void (*fn)(void *ctx, const char *name, bool runtime, const char *old_value,
                            const char *new_value),
                 void *ctx);

/* CONFIG REWRITE: rewrites the ini file at path with cfg's values. Every "key = value" line of a
 * known option gets the current value; comments, blank lines and everything else are kept as
 * they are; options the file lacks are added (to their section, or a new one at the end) when
 * their value is not the default. Written to a temporary file, then renamed over path. 0, or
 * -1 with the reason in err (the file is then untouched). */
int config_rewrite(const struct config *cfg, const char *path, char *err, size_t errlen);

/* The configuration reference as Markdown tables, one per section (README.md embeds it; a test
 * keeps the two equal): key, default, CONFIG SET name, environment variable, meaning. */
void config_print_reference(FILE *out);

/* The --help text: usage line, flags, then every option with section, default and meaning. */
void config_print_help(FILE *out);

/* Parses "256mb", "1gb", "64kb", "100" (bytes), case-insensitive, into *out. -1 when malformed. */
int config_parse_memory(const char *s, long long *out);

#endif
