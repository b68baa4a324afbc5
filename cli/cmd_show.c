/*
** sieve show PATTERN --shape ...: what a pattern keeps of the attention
** matrix for one shape, as numbers and (with --png) as a picture.
*/
#include <stdio.h>

#include "cli.h"
#include "show.h"

enum { OPT_PNG = CLI_OPT_CMD, OPT_ARCH };

extern const cli_cmd cli_cmd_show;

typedef struct show_args {
  cli_common com;
  const char *png;
  cg_arch arch;
} show_args;

static const cli_opt show_opts[] = {
  {OPT_PNG, "--png", 0, "FILE", "also draw the block mask as a PNG (default: none)"},
  {OPT_ARCH, "--arch", 0, "ARCH", "the target whose default kernel's tables to report: sm_80, or sm_90 / sm_90a (default sm_90a)"},
  {0},
};

static int show_opt(void *self, int id, const char *v) {
  show_args *a = self;
  if (id == OPT_PNG) a->png = v;
  if (id == OPT_ARCH && cg_arch_parse(v, &a->arch))
    return cli_fail(CLI_USAGE, "--arch: unknown value '%s' (valid: sm_80, sm_90, sm_90a)", v);
  return CLI_OK;
}

static int show(sieve_ctx *ctx, void *self) {
  const show_args *a = self;
  sieve_shape shape;
  sieve_pattern *p = NULL;
  sieve_tables *t = NULL;
  char desc[256], path[4096];
  int rc = cli_shape(ctx, &a->com, &shape);
  double t0 = cli_now_ms();
  if (!rc) rc = cli_pattern_load(ctx, &a->com, &p, path, sizeof path);
  double load_ms = cli_now_ms() - t0;
  if (!rc) {
    cli_pattern_shape(p, &shape);
    cli_shape_line(&a->com, &shape, desc, sizeof desc);
  }
  if (!rc) {
    sieve_status st = sieve_tables_build(ctx, p, &shape, a->com.step, a->com.layer, &t);
    if (st != SIEVE_OK) {
      t = NULL;
      rc = cli_lib_fail(ctx, st, "block tables");
    }
  }
  show_kernel k = {NULL, ""};
  if (!rc) rc = show_kernel_tables(p, &shape, a->com.step, a->com.layer, a->arch, &k);
  show_input in = {p, path, desc, &shape, t, a->com.step, a->com.layer, load_ms, &k};
  if (!rc) rc = show_text(&in);
  if (!rc && a->png) rc = show_png(&in, a->png);
  sieve_tables_free(k.tables);
  sieve_tables_free(t);
  sieve_pattern_free(p);
  return rc;
}

static int run(int argc, char **argv) {
  show_args a = {.png = NULL, .arch = CG_SM90A};
  return cli_pattern_command(&cli_cmd_show, argc, argv, &a.com, show_opt, &a, show);
}

const cli_cmd cli_cmd_show = {
  .name = "show",
  .summary = "print a pattern's block tables for a shape; --png draws them",
  .usage = "PATTERN (--shape NAME | --frames T --height Y --width X) [options]",
  .about =
    "Runs the pattern script, builds its block tables for the shape at one\n"
    "denoising step and layer, and prints: the pattern's name and IR hash;\n"
    "the token and block counts; for each distinct table, the heads that use\n"
    "it, its class and layout, density (allowed token pairs / all pairs) and\n"
    "its full, partial and empty key blocks; the density of every head; and\n"
    "how the blocks were classified (interval test, then exact refinement)\n"
    "and how long it took. Then the kernel a plan runs by default on --arch:\n"
    "its config, and where it reads tables at other blocks than the pattern's\n"
    "(64-token query blocks merged into the warp-specialised kernel's rows,\n"
    "blocks left to its tile), those tables, the blocks it visits and their\n"
    "memory. Full blocks need no masking in the kernel;\n"
    "partial ones apply the token predicate; empty ones are skipped. For a\n"
    "pattern whose blocks a run-time search picks (adaspa), the tables are\n"
    "the set the search chooses from.",
  .opts = show_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE | CLI_G_STEP,
  .examples =
    "  sieve show lvsa --shape hunyuan-720p --png lvsa.png\n"
    "  sieve show lvsa --shape hunyuan-720p --step 5 --layer 2   # the anchors rotate\n"
    "  sieve show frame_window --shape wan-1.3b-480p -p window=3\n"
    "  sieve show patterns/sta.lua --frames 8 --height 16 --width 16 --heads 2\n",
  .run = run,
};
