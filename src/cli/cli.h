/* cli.h: the headroom command line; one file per subcommand. Each returns
 * the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef HR_CLI_H
#define HR_CLI_H

#define CMD(name, fn, help) int fn(int argc, char **argv);
#include "commands.def"
#undef CMD

#endif
