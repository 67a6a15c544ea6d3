/* CLIENT subcommands, answered locally: ID SETNAME GETNAME SETINFO INFO LIST KILL NO-EVICT
 * NO-TOUCH REPLY HELP. Owns the CLIENT LIST line format and the CLIENT KILL filters.
 * CLIENT LIST / INFO print Redis 7.0's fields in its order (id ... resp; flags O P x b d c u A U
 * as Redis), then Redis 7.2's lib-name and lib-ver (CLIENT SETINFO is served). CLIENT KILL takes
 * Redis 7.0's old form and filters (ID ADDR LADDR TYPE USER SKIPME) and 7.4's MAXAGE.
 * Invariants: the client list is shown in connection order (oldest first, as Redis does);
 * a killed client is only marked (client_close), never freed here, and the killer itself is
 * closed after its reply; a client already being closed is not killed (or counted) twice. */
#include "proxy/acl.h"
#include "proxy/args.h"
#include "proxy/command.h"
#include "proxy/multi.h"
#include "proxy/pubsub.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include "conf/xmalloc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_CLIENT_NAME "ERR Client names cannot contain spaces, newlines or special characters."
#define ERR_NO_SUCH_CLIENT "ERR No such client"
#define CLIENT_FLAGS_MAX 16
#define CLIENT_FULLNAME_MAX 96

/* Redis's client types (CLIENT LIST TYPE, CLIENT KILL TYPE). */
enum client_type {
    CLIENT_TYPE_NORMAL,
    CLIENT_TYPE_REPLICA,
    CLIENT_TYPE_PUBSUB,
    CLIENT_TYPE_MASTER,
};

static const struct {
    const char *name;
    enum client_type type;
} client_types[] = {
    { "normal", CLIENT_TYPE_NORMAL }, { "slave", CLIENT_TYPE_REPLICA },
    { "replica", CLIENT_TYPE_REPLICA }, { "pubsub", CLIENT_TYPE_PUBSUB },
    { "master", CLIENT_TYPE_MASTER },
};

/* Every connection here is a normal client (no replication; pub/sub is not served yet). */
static enum client_type client_type_of(const struct client *cl)
{
    return (cl->flags & CLIENT_PUBSUB) ? CLIENT_TYPE_PUBSUB : CLIENT_TYPE_NORMAL;
}

/* The type named by argument i, or -1 after replying Redis's error. */
static int client_type_or_reply(struct client *c, size_t i)
{
    for (size_t t = 0; t < sizeof(client_types) / sizeof(client_types[0]); t++)
        if (arg_is(&c->argv[i], client_types[t].name))
            return (int)client_types[t].type;
    reply_errorf(c, "ERR Unknown client type '%.*s'", (int)c->argv[i].len, c->argv[i].ptr);
    return -1;
}

static bool arg_equals(const struct resp_arg *a, const char *s)
{
    return a->len == strlen(s) && memcmp(a->ptr, s, a->len) == 0;
}

/* ---- the CLIENT LIST line ---- */

/* Redis's flag letters, in its order; "N" when none applies. */
static void client_flags_str(const struct client *cl, char *buf)
{
    static const struct { unsigned flag; char letter; } letters[] = {
        { CLIENT_MONITOR, 'O' },   { CLIENT_PUBSUB, 'P' },    { CLIENT_MULTI, 'x' },     { CLIENT_BLOCKED, 'b' },
        { CLIENT_DIRTY_CAS, 'd' }, { CLIENT_CLOSE_AFTER_REPLY, 'c' }, { CLIENT_UNBLOCKED, 'u' },
        { CLIENT_CLOSE_ASAP, 'A' }, { CLIENT_UNIX_SOCKET, 'U' },
    };
    char *p = buf;
    for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++)
        if (cl->flags & letters[i].flag)
            *p++ = letters[i].letter;
    if (p == buf)
        *p++ = 'N';
    *p = '\0';
}

static size_t client_argv_bytes(const struct client *cl)
{
    size_t n = 0;
    for (size_t i = 0; i < cl->argc; i++)
        n += cl->argv[i].len;
    return n;
}

static size_t client_slot_bytes(const struct client *cl)
{
    size_t n = 0;
    for (const struct reply_slot *s = cl->slot_head; s; s = s->next)
        n += s->buf.cap;
    return n;
}

/* Appends cl's line (with its "\n"): Redis 7.0's fields, then 7.2's lib-name and lib-ver. */
static void client_info_line(struct strbuf *b, struct client *cl, int64_t now_ms)
{
    char flags[CLIENT_FLAGS_MAX], cmd[CLIENT_FULLNAME_MAX] = "NULL";
    client_flags_str(cl, flags);
    if (cl->cmd)
        command_fullname(command_parent(cl->cmd), cl->cmd, cmd, sizeof(cmd));
    size_t omem = client_slot_bytes(cl);
    size_t totmem = sizeof(*cl) + client_input_alloc(cl) + cl->out.cap + omem +
                    cl->argv_cap * sizeof(*cl->argv);
    const char *events = ev_is_active(&cl->wio) ? (ev_is_active(&cl->rio) ? "rw" : "w")
                                                : (ev_is_active(&cl->rio) ? "r" : "");
    strbuf_printf(b,
               "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d "
               "sub=%zu psub=%zu ssub=0 multi=%ld qbuf=%zu qbuf-free=%zu argv-mem=%zu multi-mem=%zu "
               "rbs=%zu rbp=%zu obl=%zu oll=%zu omem=%zu tot-mem=%zu events=%s cmd=%s "
               "user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
               (unsigned long long)cl->id, cl->addr, cl->laddr, cl->fd,
               cl->name ? cl->name : "", (long long)((now_ms - cl->ctime_ms) / 1000),
               (long long)((now_ms - cl->last_active_ms) / 1000), flags, cl->db,
               pubsub_client_channels(cl), pubsub_client_patterns(cl), multi_queued_count(cl),
               client_input_bytes(cl), cl->qbuf.cap - cl->qbuf.len, client_argv_bytes(cl),
               multi_client_bytes(cl), cl->out.cap, cl->out.cap,
               cl->out.len - cl->out_sent, cl->slots, omem, totmem, events, cmd,
               acl_user_name(acl_client_user(cl)), cl->resp,
               cl->lib_name ? cl->lib_name : "", cl->lib_ver ? cl->lib_ver : "");
}

static struct client *client_oldest(struct server *srv)
{
    struct client *cl = srv->clients;
    while (cl && cl->next)
        cl = cl->next;
    return cl;
}

static struct client *client_by_id(struct server *srv, long long id)
{
    for (struct client *cl = srv->clients; cl; cl = cl->next)
        if ((long long)cl->id == id)
            return cl;
    return NULL;
}

static void reply_strbuf_verbatim(struct client *c, struct strbuf *b)
{
    reply_verbatim(c, b->data ? b->data : "", b->len);
    strbuf_free(b);
}

/* ---- subcommands ---- */

void cmd_client_id(struct client *c)
{
    reply_int(c, (long long)c->id);
}

void cmd_client_setname(struct client *c)
{
    const struct resp_arg *a = &c->argv[2];
    if (!client_name_valid(a->ptr, a->len)) {
        reply_error(c, ERR_CLIENT_NAME);
        return;
    }
    free(c->name);
    c->name = a->len ? xmemdup(a->ptr, a->len) : NULL;
    reply_ok(c);
}

void cmd_client_getname(struct client *c)
{
    if (c->name)
        reply_bulk_cstr(c, c->name);
    else
        reply_null(c);
}

/* CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2): an empty value clears the attribute. */
void cmd_client_setinfo(struct client *c)
{
    static const struct { const char *name; size_t offset; } attrs[] = {
        { "lib-name", offsetof(struct client, lib_name) },
        { "lib-ver", offsetof(struct client, lib_ver) },
    };
    const struct resp_arg *attr = &c->argv[2], *val = &c->argv[3];
    char **dest = NULL;
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if (arg_is(attr, attrs[i].name))
            dest = (char **)((char *)c + attrs[i].offset);
    if (!dest) {
        reply_errorf(c, "ERR Unrecognized option '%.*s'", (int)attr->len, attr->ptr);
        return;
    }
    if (!client_name_valid(val->ptr, val->len)) {
        reply_errorf(c, "ERR %.*s cannot contain spaces, newlines or special characters.",
                     (int)attr->len, attr->ptr);
        return;
    }
    free(*dest);
    *dest = val->len ? xmemdup(val->ptr, val->len) : NULL;
    reply_ok(c);
}

void cmd_client_info(struct client *c)
{
    struct strbuf b = { NULL, 0, 0 };
    client_info_line(&b, c, server_now_ms(c->srv));
    reply_strbuf_verbatim(c, &b);
}

/* CLIENT LIST [TYPE type] | [ID id ...] */
void cmd_client_list(struct client *c)
{
    struct server *srv = c->srv;
    int64_t now = server_now_ms(srv);
    struct strbuf b = { NULL, 0, 0 };
    int type = -1;
    if (c->argc == 4 && arg_is(&c->argv[2], "type")) {
        if ((type = client_type_or_reply(c, 3)) < 0)
            return;
    } else if (c->argc > 3 && arg_is(&c->argv[2], "id")) {
        for (size_t i = 3; i < c->argc; i++) {
            long long id;
            if (!arg_ll_or_reply(c, i, &id, "ERR Invalid client ID")) {
                strbuf_free(&b);
                return;
            }
            struct client *cl = client_by_id(srv, id);
            if (cl)
                client_info_line(&b, cl, now);
        }
        reply_strbuf_verbatim(c, &b);
        return;
    } else if (c->argc != 2) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    for (struct client *cl = client_oldest(srv); cl; cl = cl->prev)
        if (type < 0 || (int)client_type_of(cl) == type)
            client_info_line(&b, cl, now);
    reply_strbuf_verbatim(c, &b);
}

/* What CLIENT KILL matches; NULL / -1 / 0 = any. */
struct kill_filter {
    const struct resp_arg *addr, *laddr;
    const struct acl_user *user; /* NULL = any */
    int type;
    long long id;
    long long max_age;  /* seconds: only clients connected for longer (Redis 7.4's MAXAGE) */
    bool skipme;
};

/* Parses the "option value" pairs of the new CLIENT KILL form; false after replying. */
static bool kill_parse_filter(struct client *c, struct kill_filter *f)
{
    for (size_t i = 2; i < c->argc; i += 2) {
        if (i + 1 >= c->argc) {
            reply_error(c, ERR_SYNTAX);
            return false;
        }
        const struct resp_arg *opt = &c->argv[i], *val = &c->argv[i + 1];
        if (arg_is(opt, "id")) {
            if (!arg_ll_or_reply(c, i + 1, &f->id, "ERR client-id should be greater than 0"))
                return false;
            if (f->id < 1) {
                reply_error(c, "ERR client-id should be greater than 0");
                return false;
            }
        } else if (arg_is(opt, "type")) {
            if ((f->type = client_type_or_reply(c, i + 1)) < 0)
                return false;
        } else if (arg_is(opt, "addr")) {
            f->addr = val;
        } else if (arg_is(opt, "laddr")) {
            f->laddr = val;
        } else if (arg_is(opt, "user")) {
            f->user = acl_find_user(c->srv->acl, val->ptr, val->len);
            if (!f->user) {
                reply_errorf(c, "ERR No such user '%.*s'", (int)val->len, val->ptr);
                return false;
            }
        } else if (arg_is(opt, "skipme") && (arg_is(val, "yes") || arg_is(val, "no"))) {
            f->skipme = arg_is(val, "yes");
        } else if (arg_is(opt, "maxage")) { /* Redis 7.4; 7.0 says syntax error */
            if (!arg_ll_or_reply(c, i + 1, &f->max_age,
                                 "ERR maxage is not an integer or out of range"))
                return false;
            if (f->max_age <= 0) {
                reply_error(c, "ERR maxage should be greater than 0");
                return false;
            }
        } else {
            reply_error(c, ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

static bool kill_matches(const struct kill_filter *f, const struct client *c,
                         const struct client *cl, int64_t now_ms)
{
    if (cl->flags & CLIENT_CLOSE_ASAP)
        return false;
    if (f->max_age && (now_ms - cl->ctime_ms) / 1000 <= f->max_age)
        return false;
    if (f->addr && !arg_equals(f->addr, cl->addr))
        return false;
    if (f->laddr && !arg_equals(f->laddr, cl->laddr))
        return false;
    if (f->type >= 0 && (int)client_type_of(cl) != f->type)
        return false;
    if (f->user && acl_client_user(cl) != f->user)
        return false;
    if (f->id && (long long)cl->id != f->id)
        return false;
    return !(cl == c && f->skipme);
}

/* CLIENT KILL addr:port (old form: +OK, may kill itself) or CLIENT KILL option value ... */
void cmd_client_kill(struct client *c)
{
    struct kill_filter f = { NULL, NULL, NULL, -1, 0, 0, true };
    bool old_form = c->argc == 3;
    if (old_form) {
        f.addr = &c->argv[2];
        f.skipme = false;
    } else if (!kill_parse_filter(c, &f)) {
        return;
    }
    long long killed = 0;
    bool close_self = false;
    int64_t now = server_now_ms(c->srv);
    for (struct client *cl = c->srv->clients; cl; cl = cl->next) {
        if (!kill_matches(&f, c, cl, now))
            continue;
        if (cl == c)
            close_self = true;
        else
            client_close(cl);
        killed++;
    }
    if (old_form && killed == 0) {
        reply_error(c, ERR_NO_SUCH_CLIENT);
        return;
    }
    if (old_form)
        reply_ok(c);
    else
        reply_int(c, killed);
    if (close_self)
        client_close_after_reply(c);
}

/* ON|OFF switches the sidecar accepts but has no use for (no client eviction, no LFU). */
static void client_on_off(struct client *c)
{
    if (arg_is(&c->argv[2], "on") || arg_is(&c->argv[2], "off"))
        reply_ok(c);
    else
        reply_error(c, ERR_SYNTAX);
}

void cmd_client_no_evict(struct client *c)
{
    client_on_off(c);
}

void cmd_client_no_touch(struct client *c)
{
    client_on_off(c);
}

/* CLIENT REPLY ON|OFF|SKIP: the flags are honoured by dispatch_command, which drops the replies
 * of the commands they cover (OFF and SKIP themselves get no reply, as in Redis). */
void cmd_client_reply(struct client *c)
{
    const struct resp_arg *a = &c->argv[2];
    if (arg_is(a, "on")) {
        c->flags &= ~(CLIENT_REPLY_OFF | CLIENT_REPLY_SKIP_NEXT);
        reply_ok(c);
    } else if (arg_is(a, "off")) {
        c->flags |= CLIENT_REPLY_OFF;
    } else if (arg_is(a, "skip")) {
        if (!(c->flags & CLIENT_REPLY_OFF))
            c->flags |= CLIENT_REPLY_SKIP_NEXT;
    } else {
        reply_error(c, ERR_SYNTAX);
    }
}

/* Redis's help text, for the subcommands served here. */
static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of specified IDs only.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Prints this help.",
};

void cmd_client_help(struct client *c)
{
    reply_help(c, client_help, sizeof(client_help) / sizeof(client_help[0]));
}
