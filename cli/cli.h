/*
** The `sieve` command: a host program over the public API (sieve.h).
**
** Each command lives in its own cmd_*.c and is one cli_cmd; main.c keeps the
** table of them. Options are declared as data (cli_opt tables), so that
** parsing and `--help` come from the same place and cannot drift apart.
**
** Exit codes: 0 success, 1 a runtime failure (no GPU, codegen failed, disk
** full), 2 bad input (unknown option, bad number, broken script, ...). Every
** failure prints one line, `sieve: <cause>`, on stderr.
*/
#ifndef CLI_H
#define CLI_H

#include <stdarg.h>

#include "sieve.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_HELP_SHOWN (-1) /* cli_parse printed --help: exit 0 */

#define CLI_MAX_PARAMS 64
#define CLI_MAX_POS 8

/* Option ids shared by every command; a command's own ids start at CLI_OPT_CMD. */
enum {
  CLI_OPT_HELP = 1,
  CLI_OPT_SHAPE,
  CLI_OPT_FRAMES,
  CLI_OPT_HEIGHT,
  CLI_OPT_WIDTH,
  CLI_OPT_TEXT,
  CLI_OPT_TEXT_AFTER,
  CLI_OPT_HEADS,
  CLI_OPT_HEAD_DIM,
  CLI_OPT_STEP,
  CLI_OPT_LAYER,
  CLI_OPT_PARAM,
  CLI_OPT_CMD = 100
};

typedef struct cli_opt {
  int id;
  const char *name;   /* "--png", or "-p" for a short-only option */
  char short_name;    /* 'o' for -o; 0 for none */
  const char *arg;    /* "FILE"; NULL for a flag */
  const char *help;   /* one line; says the default */
} cli_opt;

/* Option groups a command accepts besides its own. */
enum { CLI_G_PATTERN = 1, CLI_G_SHAPE = 2, CLI_G_STEP = 4 };

typedef struct cli_cmd {
  const char *name;
  const char *summary;   /* one line, for `sieve --help` */
  const char *usage;     /* after "sieve NAME " */
  const char *about;     /* a paragraph for `sieve NAME --help` */
  const cli_opt *opts;   /* the command's own; ends with id 0 */
  unsigned groups;
  const char *examples;  /* lines, each a full command */
  int (*run)(int argc, char **argv);
} cli_cmd;

/* What the shared options collected. Unset numbers are -1. */
typedef struct cli_common {
  const char *shape_name;
  int frames, height, width, text, text_after, heads, head_dim;
  int step, layer;
  const char *params[CLI_MAX_PARAMS + 1]; /* NULL-terminated "k=v" */
  int nparams;
  const char *pos[CLI_MAX_POS];           /* positional arguments */
  int npos;
} cli_common;

/* Handles one of the command's own options; returns CLI_OK or CLI_USAGE
** (having printed why). */
typedef int (*cli_opt_fn)(void *self, int id, const char *val);

/*
** Parses argv[1..] (argv[0] is the command name). Shared options fill *com;
** the command's own go to fn. Returns CLI_OK, CLI_USAGE (message printed),
** or CLI_HELP_SHOWN.
*/
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_common *com,
              cli_opt_fn fn, void *self);
void cli_common_init(cli_common *com);
void cli_help(const cli_cmd *cmd);
/*
** A command on one PATTERN: parses argv into *com (initialised here) and
** self, insists on exactly one positional argument, and runs body on a
** fresh context. Returns the exit code.
*/
int cli_pattern_command(const cli_cmd *cmd, int argc, char **argv, cli_common *com,
                        cli_opt_fn fn, void *self, int (*body)(sieve_ctx *ctx, void *self));

/* Prints "sieve: <fmt>" on stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a failed library call: the first line of sieve_errmsg(ctx) (or
** the status's words), prefixed by `what` when given. Returns the exit code
** the status deserves. */
int cli_lib_fail(sieve_ctx *ctx, sieve_status st, const char *what);
/* The same for a message that did not come through a context. */
int cli_status_fail(sieve_status st, const char *msg, const char *what);
int cli_exit_code(sieve_status st);

/* Whole-number option values: "-3" and "12x" are told apart from numbers. */
int cli_int(const char *opt, const char *s, int min, int max, int *out);

/* ------------------------------------------------------------ shapes */

/* The shape the shared options describe, checked by sieve_shape_check. */
int cli_shape(sieve_ctx *ctx, const cli_common *com, sieve_shape *out);
/* "hunyuan-720p: T33 Y45 X80, 24 heads, D128" (the preset's name if one was given). */
void cli_shape_line(const cli_common *com, const sieve_shape *s, char *buf, size_t len);
/* "wan-1.3b-480p (T21 Y30 X52, 12 heads, D128)" for help texts. */
void cli_shape_describe(const sieve_shape *s, char *buf, size_t len);

/* ----------------------------------------------------------- patterns */

/*
** Turns PATTERN (a path, or the bare name of a shipped pattern) into a file
** path in buf. Bare names are looked up in $SIEVE_PATTERNS, then
** <exe dir>/../patterns, then the source tree's patterns/.
*/
int cli_pattern_path(const char *arg, char *buf, size_t len);
/* Resolves, checks readability, and loads with com->params. */
int cli_pattern_load(sieve_ctx *ctx, const cli_common *com, sieve_pattern **out,
                     char *path, size_t pathlen);
/* The shape p's tables and kernels run on: s, with the text geometry the
** script fixes, if it fixes one. */
void cli_pattern_shape(const sieve_pattern *p, sieve_shape *s);
/* 1 and a one-line description in buf when p's blocks are chosen at run
** time (a search or profiling); 0 for a static pattern. */
int cli_pattern_selection(const sieve_pattern *p, char *buf, size_t len);
/* The first patterns directory that exists, or NULL. */
const char *cli_patterns_dir(char *buf, size_t len);
/* Space-separated names of the shipped patterns ("" when none found). */
void cli_pattern_names(char *buf, size_t len);
/* The full path of an existing file `rel` (e.g. "bench/compare.py") in the
** source tree or beside the binary, or 0. */
int cli_find_file(const char *rel, char *buf, size_t len);
/* The directory of the running binary. */
int cli_exe_dir(char *buf, size_t len);

/* ----------------------------------------------------------- configs */

/* Parses "bm=128,bn=64,warps=4,stages=2" (any subset; block_m and block_n
** are accepted too) into *cfg, leaving the fields it does not name. */
int cli_config(const char *opt, const char *spec, sieve_config *cfg);
/* Whether *u names any field, sched alone included. */
int cli_config_given(const sieve_config *u);
/* The config *u names, its other fields from *def (the target's default). */
sieve_config cli_config_complete(const sieve_config *u, const sieve_config *def);

/* -------------------------------------------------------------- misc */

double cli_now_ms(void);
/* Writes len bytes to path ("-" is stdout). Returns an exit code. */
int cli_write_file(const char *path, const void *data, size_t len);

/* ----------------------------------------------- GPU commands (gpu.c) */

/* "bf16" or "fp16" into *out; anything else is bad input. */
int cli_dtype(const char *opt, const char *v, sieve_dtype *out);
const char *cli_dtype_name(sieve_dtype dt);
/* Opens GPU 0 for ctx and describes it. With no driver or no GPU the
** message is "sieve: no GPU: <why>" and the exit code 1. */
int cli_gpu_open(sieve_ctx *ctx, sieve_device_info *info);
/* What a plan needs that no GPU is needed to check (shape, tables, config
** on some target); exit 2 with the cause. Runs before cli_gpu_open. */
int cli_gpu_precheck(const sieve_pattern *p, const sieve_shape *s, sieve_dtype dt, const sieve_config *cfg);
/*
** sieve_plan_create for the commands that run kernels: the fields of `user`
** that are set replace the default config's; with none set, the plan takes
** the tuned config (the tuning database) or the default.
*/
int cli_plan(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *s, sieve_dtype dt,
             const sieve_config *user, sieve_plan **out);
/* The lines the GPU commands start with: pattern, shape, device. */
void cli_gpu_header(const char *path, const sieve_pattern *p, const cli_common *com,
                    const sieve_shape *s, sieve_dtype dt, const sieve_device_info *d);
/* "bm=128 bn=64 warps=4 stages=2 (tuned), kernel from the cache"; user is
** the config the command line gave (all zeros: none). */
void cli_plan_line(const sieve_plan *plan, const sieve_config *user, char *buf, size_t len);
/*
** What every kernel-running command starts with: the shape, the pattern
** (and the shape it runs on), GPU 0, the plan, and the header and config
** lines printed. cli_gpu_end frees what was made, also after a failure.
*/
typedef struct cli_gpu_run {
  sieve_shape shape;
  sieve_pattern *p;
  sieve_plan *plan;
  sieve_device_info dev;
  char path[4096];
} cli_gpu_run;

int cli_gpu_begin(sieve_ctx *ctx, const cli_common *com, sieve_dtype dt, const sieve_config *cfg,
                  int batch, cli_gpu_run *g);
void cli_gpu_end(cli_gpu_run *g);

/* -------------------------------------------------- bar charts (bars.c) */

typedef struct cli_bar {
  const char *label;
  double value;
  const char *text;    /* printed after the bar */
  int mine;            /* drawn in sieve's colour */
} cli_bar;

/* A horizontal bar chart as a PNG. Returns an exit code. */
int cli_bars_png(const char *path, const char *title, const cli_bar *bars, int n);

#endif
