/* The list of command family tables the index is built from (command.h). A family is one
 * NULL-terminated table defined next to its handlers. */
#include "proxy/command.h"

#include <stddef.h>

const struct command *const command_families[] = {
    core_commands,
    NULL,
};
