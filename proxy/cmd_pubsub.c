/* The "pubsub" family: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH and the PUBSUB
 * container (CHANNELS NUMSUB NUMPAT SHARDCHANNELS SHARDNUMSUB HELP), as Redis 7.0 replies them
 * in RESP2 (arrays; a subscriber may then only send the commands of
 * pubsub_allowed_when_subscribed) and RESP3 (confirmations and messages are pushes). The
 * registry and the delivery are pubsub.c's.
 * Invariants: CLIENT_PUBSUB is set by (P)SUBSCRIBE and cleared when an (P)UNSUBSCRIBE leaves
 * no subscription, as Redis does; there are no shard channels here (SSUBSCRIBE is not served),
 * so the SHARD* introspection reports none. */
#include "proxy/pubsub.h"

#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <stddef.h>

#define S CMD_STATEFUL
#define F CMD_FAST

static const struct command pubsub_subcommands[] = {
    { "channels", cmd_pubsub_channels, -2, 0, 0, 0, 0, "pubsub", "Returns the active channels.", NULL },
    { "numpat", cmd_pubsub_numpat, 2, 0, 0, 0, 0, "pubsub", "Returns a count of unique pattern subscriptions.", NULL },
    { "numsub", cmd_pubsub_numsub, -2, 0, 0, 0, 0, "pubsub", "Returns a count of subscribers to channels.", NULL },
    { "shardchannels", cmd_pubsub_shardchannels, -2, 0, 0, 0, 0, "pubsub", "Returns the active shard channels.", NULL },
    { "shardnumsub", cmd_pubsub_shardnumsub, -2, 0, 0, 0, 0, "pubsub", "Returns the count of subscribers of shard channels.", NULL },
    { "help", cmd_pubsub_help, 2, 0, 0, 0, 0, "pubsub", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct command pubsub_commands[] = {
    { "subscribe", cmd_subscribe, -2, S, 0, 0, 0, "pubsub", "Listens for messages published to channels.", NULL },
    { "unsubscribe", cmd_unsubscribe, -1, S, 0, 0, 0, "pubsub", "Stops listening to messages posted to channels.", NULL },
    { "psubscribe", cmd_psubscribe, -2, S, 0, 0, 0, "pubsub", "Listens for messages published to channels that match one or more patterns.", NULL },
    { "punsubscribe", cmd_punsubscribe, -1, S, 0, 0, 0, "pubsub", "Stops listening to messages published to channels that match one or more patterns.", NULL },
    { "publish", cmd_publish, 3, F, 0, 0, 0, "pubsub", "Posts a message to a channel.", NULL },
    { "pubsub", NULL, -2, 0, 0, 0, 0, "pubsub", "A container for Pub/Sub commands.", pubsub_subcommands },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

bool pubsub_allowed_when_subscribed(const struct command *cmd)
{
    command_proc *p = cmd->proc;
    return p == cmd_subscribe || p == cmd_unsubscribe || p == cmd_psubscribe ||
           p == cmd_punsubscribe || p == cmd_ping || p == cmd_quit || p == cmd_reset;
}

bool pubsub_is_subscription(const struct command *cmd)
{
    command_proc *p = cmd->proc;
    return p == cmd_subscribe || p == cmd_unsubscribe || p == cmd_psubscribe ||
           p == cmd_punsubscribe;
}

bool pubsub_reply_ping(struct client *c)
{
    if (!(c->flags & CLIENT_PUBSUB) || c->resp != 2)
        return false;
    reply_array(c, 2);
    reply_bulk(c, "pong", 4);
    if (c->argc == 2)
        reply_bulk(c, c->argv[1].ptr, c->argv[1].len);
    else
        reply_bulk(c, "", 0);
    return true;
}

static void subscribe_args(struct client *c, bool pattern)
{
    for (size_t i = 1; i < c->argc; i++)
        pubsub_subscribe(c, c->argv[i].ptr, c->argv[i].len, pattern);
    c->flags |= CLIENT_PUBSUB;
}

static void unsubscribe_args(struct client *c, bool pattern)
{
    if (c->argc == 1)
        pubsub_unsubscribe_all(c, pattern, true);
    for (size_t i = 1; i < c->argc; i++)
        pubsub_unsubscribe(c, c->argv[i].ptr, c->argv[i].len, pattern);
    if (pubsub_client_channels(c) + pubsub_client_patterns(c) == 0)
        c->flags &= ~CLIENT_PUBSUB;
}

void cmd_subscribe(struct client *c)
{
    subscribe_args(c, false);
}

void cmd_psubscribe(struct client *c)
{
    subscribe_args(c, true);
}

void cmd_unsubscribe(struct client *c)
{
    unsubscribe_args(c, false);
}

void cmd_punsubscribe(struct client *c)
{
    unsubscribe_args(c, true);
}

void cmd_publish(struct client *c)
{
    reply_int(c, pubsub_publish(c, c->argv[1].ptr, c->argv[1].len, c->argv[2].ptr,
                                c->argv[2].len));
}

/* CHANNELS and SHARDCHANNELS take at most one pattern. */
static bool pattern_arity_ok(struct client *c)
{
    if (c->argc <= 3)
        return true;
    reply_errorf(c, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                 "PUBSUB HELP.", (int)c->argv[1].len, c->argv[1].ptr);
    return false;
}

void cmd_pubsub_channels(struct client *c)
{
    if (!pattern_arity_ok(c))
        return;
    if (c->argc == 3)
        pubsub_reply_channels(c, c->argv[2].ptr, c->argv[2].len);
    else
        pubsub_reply_channels(c, NULL, 0);
}

void cmd_pubsub_numsub(struct client *c)
{
    const struct pubsub *ps = c->srv->pubsub;
    reply_array(c, (c->argc - 2) * 2);
    for (size_t i = 2; i < c->argc; i++) {
        reply_bulk(c, c->argv[i].ptr, c->argv[i].len);
        reply_int(c, (long long)pubsub_channel_subscribers(ps, c->argv[i].ptr, c->argv[i].len));
    }
}

void cmd_pubsub_numpat(struct client *c)
{
    reply_int(c, (long long)pubsub_pattern_count(c->srv->pubsub));
}

void cmd_pubsub_shardchannels(struct client *c)
{
    if (!pattern_arity_ok(c))
        return;
    reply_array(c, 0);
}

void cmd_pubsub_shardnumsub(struct client *c)
{
    reply_array(c, (c->argc - 2) * 2);
    for (size_t i = 2; i < c->argc; i++) {
        reply_bulk(c, c->argv[i].ptr, c->argv[i].len);
        reply_int(c, 0);
    }
}

/* Redis 7.0's help text. */
static const char *const pubsub_help[] = {
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
};

void cmd_pubsub_help(struct client *c)
{
    reply_help(c, pubsub_help, sizeof(pubsub_help) / sizeof(pubsub_help[0]));
}
