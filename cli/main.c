/*
** sieve COMMAND [options]: the dispatcher. A new command is one cmd_*.c
** file defining a cli_cmd, plus one line in the table below.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

extern const cli_cmd cli_cmd_show;
extern const cli_cmd cli_cmd_compile;
extern const cli_cmd cli_cmd_check;
extern const cli_cmd cli_cmd_run;
extern const cli_cmd cli_cmd_bench;
extern const cli_cmd cli_cmd_tune;
extern const cli_cmd cli_cmd_cache;

static const cli_cmd *const commands[] = {
  &cli_cmd_show,
  &cli_cmd_compile,
  &cli_cmd_check,
  &cli_cmd_run,
  &cli_cmd_bench,
  &cli_cmd_tune,
  &cli_cmd_cache,
  NULL,
};

static const cli_cmd *find(const char *name) {
  for (int i = 0; commands[i]; i++)
    if (!strcmp(commands[i]->name, name)) return commands[i];
  return NULL;
}

static void help(void) {
  char names[2048];
  printf("sieve %s: block-sparse attention kernels for video diffusion transformers,\n"
         "generated from Lua pattern scripts.\n\n"
         "usage: sieve COMMAND [options]\n"
         "       sieve COMMAND --help      what COMMAND does, its options and examples\n\n"
         "commands:\n",
         sieve_version());
  for (int i = 0; commands[i]; i++) printf("  %-10s %s\n", commands[i]->name, commands[i]->summary);
  cli_pattern_names(names, sizeof names);
  if (names[0]) printf("\nshipped patterns: %s\n", names);
  printf("shape presets:");
  for (int i = 0; sieve_shape_preset_name(i); i++) printf(" %s", sieve_shape_preset_name(i));
  printf("\n\nexamples:\n"
         "  sieve show lvsa --shape hunyuan-720p --png lvsa.png\n"
         "  sieve show sta --frames 8 --height 16 --width 16 --heads 2\n"
         "  sieve compile dense --shape wan-1.3b-480p --arch sm_80 -o dense.ptx\n\n"
         "exit status: 0 success, 1 runtime failure, 2 bad input (the cause is printed).\n");
}

static int dispatch(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sieve COMMAND [options]   (sieve --help lists the commands)\n");
    return CLI_USAGE;
  }
  const char *c = argv[1];
  if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
    const cli_cmd *cmd = argc > 2 && !strcmp(c, "help") ? find(argv[2]) : NULL;
    if (argc > 2 && !strcmp(c, "help") && !cmd)
      return cli_fail(CLI_USAGE, "unknown command '%s' (see sieve --help)", argv[2]);
    if (cmd) cli_help(cmd);
    else help();
    return CLI_OK;
  }
  if (!strcmp(c, "--version")) {
    printf("sieve %s\n", sieve_version());
    return CLI_OK;
  }
  const cli_cmd *cmd = find(c);
  if (!cmd)
    return cli_fail(CLI_USAGE, "unknown %s '%s' (see sieve --help)",
                    c[0] == '-' ? "option" : "command", c);
  return cmd->run(argc - 1, argv + 1);
}

/*
** Output that did not reach its destination (a full disk, a closed pipe,
** /dev/full) is a failure, not a success: stdout is flushed and checked
** once, here, for every command. A command that already failed keeps its
** own status.
*/
int main(int argc, char **argv) {
  int rc = dispatch(argc, argv);
  if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CLI_OK)
    rc = cli_fail(CLI_FAIL, "writing standard output failed: %s", strerror(errno ? errno : EIO));
  return rc;
}
