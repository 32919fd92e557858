/* cli.h: the headroom command line; one file per subcommand. Each returns
 * the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef HR_CLI_H
#define HR_CLI_H

#define CMD(name, fn, help) int fn(int argc, char **argv);
#include "commands.def"
#undef CMD

typedef struct hr_catalog hr_catalog;
typedef struct hr_store hr_store;

/* Loads the catalog file and opens the database, printing what went wrong
 * (file:line:column for the catalog). 0, or 1 with nothing left open. */
int hr_cli_open(const char *config, const char *db, hr_catalog **cat, hr_store **store);

#endif
