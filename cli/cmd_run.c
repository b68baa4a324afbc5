/*
** sieve run PATTERN --shape ...: times the pattern's kernel on the GPU with
** CUDA events (rt_bench) and says what ran: config, where the kernel came
** from, density, ms and TFLOP/s on the blocks it computes.
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rt_bench.h"

enum { OPT_DTYPE = CLI_OPT_CMD, OPT_CONFIG, OPT_BATCH, OPT_REP };

extern const cli_cmd cli_cmd_run;

typedef struct run_args {
  cli_common com;
  sieve_dtype dtype;
  sieve_config cfg;
  int batch, rep_ms;
} run_args;

static const cli_opt run_opts[] = {
  {OPT_DTYPE, "--dtype", 0, "TYPE", "bf16 or fp16 inputs and output (default bf16)"},
  {OPT_CONFIG, "--config", 0, "SPEC", "kernel config, any subset of bm=64|128,bn=32|64|128,"
                                      "warps=4|8,stages=1|2|3 (default: tuned, else chosen for "
                                      "the shape)"},
  {OPT_BATCH, "--batch", 0, "B", "batch size (default 1)"},
  {OPT_REP, "--rep-ms", 0, "MS", "time spent on timed runs, after 25 ms of warm-up; at least "
                                 "10 runs (default 200)"},
  {0},
};

static int run_opt(void *self, int id, const char *v) {
  run_args *a = self;
  switch (id) {
  case OPT_DTYPE: return cli_dtype("--dtype", v, &a->dtype);
  case OPT_CONFIG: return cli_config("--config", v, &a->cfg);
  case OPT_BATCH: return cli_int("--batch", v, 1, 65535, &a->batch);
  case OPT_REP: return cli_int("--rep-ms", v, 1, 600000, &a->rep_ms);
  }
  return CLI_OK;
}

static void report(const rt_bench_result *r) {
  printf("density   %.4f of the token pairs\n", r->density);
  printf("time      %.3f ms median (min %.3f, max %.3f; %d runs after %d warm-up, %d input "
         "sets of %.1f MiB)\n",
         r->median_ms, r->min_ms, r->max_ms, r->runs, r->warmup_runs, r->sets,
         r->set_bytes / (1 << 20));
  printf("TFLOP/s   %.1f on active blocks (%.3g GFLOP per run)\n", r->tflops, r->flops / 1e9);
}

static int time_it(sieve_ctx *ctx, run_args *a) {
  cli_gpu_run g;
  int rc = cli_gpu_begin(ctx, &a->com, a->dtype, &a->cfg, a->batch, &g);
  if (!rc) {
    rt_bench_opts o = {.rep_ms = a->rep_ms};
    rt_bench_result r;
    cg_err e = {0};
    if (rt_bench_plan(rt_plan_of(g.plan), &o, &r, &e)) rc = cli_status_fail(e.status, e.msg, "timing");
    else report(&r);
  }
  cli_gpu_end(&g);
  return rc;
}

static int run(int argc, char **argv) {
  run_args a = {.dtype = SIEVE_BF16, .batch = 1};
  cli_common_init(&a.com);
  int rc = cli_parse(&cli_cmd_run, argc, argv, &a.com, run_opt, &a);
  if (rc == CLI_HELP_SHOWN) return CLI_OK;
  if (rc) return rc;
  if (a.com.npos == 0) return cli_fail(CLI_USAGE, "missing PATTERN (see sieve run --help)");
  if (a.com.npos > 1) return cli_fail(CLI_USAGE, "unexpected argument '%s'", a.com.pos[1]);
  sieve_ctx *ctx;
  if (sieve_open(&ctx) != SIEVE_OK) return cli_fail(CLI_FAIL, "out of memory");
  rc = time_it(ctx, &a);
  sieve_close(ctx);
  return rc;
}

const cli_cmd cli_cmd_run = {
  .name = "run",
  .summary = "time a pattern's kernel on the GPU: ms and TFLOP/s on active blocks",
  .usage = "PATTERN (--shape NAME | --frames T --height Y --width X) [options]",
  .about =
    "Makes the plan a host would get (the tuned config from `sieve tune`, else the\n"
    "default, unless --config says otherwise; the kernel from the disk cache when\n"
    "it is there) and times it with CUDA events: 25 ms of warm-up, then timed runs\n"
    "for --rep-ms (at least 10), each bracketed by its own events, over rotating\n"
    "sets of random inputs large enough together to keep L2 from serving them.\n"
    "Prints the config and where the kernel came from, the density, the median\n"
    "time and TFLOP/s counted as 4*B*H*S^2*D*density. Needs a GPU.",
  .opts = run_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE | CLI_G_STEP,
  .examples =
    "  sieve run lvsa --shape hunyuan-720p\n"
    "  sieve run frame_window --shape wan-1.3b-480p -p window=3 --batch 2\n"
    "  sieve run dense --shape cogvideox-1.5 --dtype fp16 --config bm=128,bn=64,warps=8\n",
  .run = run,
};
