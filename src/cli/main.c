/* main.c: dispatches `headroom SUBCOMMAND ...` through the table in
 * commands.def. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "headroom.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cmds[] = {
#define CMD(name, fn, help) {#name, fn, help},
#include "commands.def"
#undef CMD
};

static void usage(FILE *f) {
    fprintf(f, "usage: headroom COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) fprintf(f, "  %s\n", cmds[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return hr_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "headroom: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int hr_cmd_version(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("headroom %s\n", HR_VERSION);
    return 0;
}
