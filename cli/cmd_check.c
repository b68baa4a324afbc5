/*
** sieve check PATTERN --shape ...: runs the pattern's kernel on the GPU and
** compares it with the float64 reference (rt_check, the same check as
** tests/gpu). Exit 0 on PASS, 1 on FAIL.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cli.h"
#include "rt_check.h"

enum { OPT_DTYPE = CLI_OPT_CMD, OPT_CONFIG, OPT_LAYOUT, OPT_ROWS, OPT_SEED, OPT_BATCH };

extern const cli_cmd cli_cmd_check;

typedef struct check_args {
  cli_common com;
  sieve_dtype dtype;
  sieve_config cfg;
  int bshd, rows, batch;
  uint64_t seed;
} check_args;

static const cli_opt check_opts[] = {
  {OPT_DTYPE, "--dtype", 0, "TYPE", "bf16 or fp16 inputs and output (default bf16)"},
  {OPT_CONFIG, "--config", 0, "SPEC", "kernel config, any subset of bm=64|128|192,bn=32|64|128|192,"
                                      "warps=4|8|12|16,stages=1|2|3|4,sched=0|1|2 (default: tuned, else chosen for "
                                      "the shape)"},
  {OPT_LAYOUT, "--layout", 0, "L", "bhsd or bshd: how Q, K, V and O lie in memory "
                                   "(default bhsd)"},
  {OPT_ROWS, "--rows", 0, "N", "query rows compared per (batch, head); 0 compares every row "
                               "(default 32)"},
  {OPT_SEED, "--seed", 0, "N", "seed of the random inputs and rows (default: from the clock, "
                               "printed)"},
  {OPT_BATCH, "--batch", 0, "B", "batch size (default 1)"},
  {0},
};

static int check_opt(void *self, int id, const char *v) {
  check_args *a = self;
  if (!a->seed) a->seed = (uint64_t)time(NULL) % 1000000007u + 1;
  switch (id) {
  case OPT_DTYPE: return cli_dtype("--dtype", v, &a->dtype);
  case OPT_CONFIG: return cli_config("--config", v, &a->cfg);
  case OPT_LAYOUT:
    if (strcmp(v, "bhsd") && strcmp(v, "bshd"))
      return cli_fail(CLI_USAGE, "--layout: unknown value '%s' (valid: bhsd, bshd)", v);
    a->bshd = !strcmp(v, "bshd");
    return CLI_OK;
  case OPT_ROWS: return cli_int("--rows", v, 0, INT_MAX, &a->rows);
  case OPT_BATCH: return cli_int("--batch", v, 1, 65535, &a->batch);
  case OPT_SEED: {
    int s;
    if (cli_int("--seed", v, 1, INT_MAX, &s)) return CLI_USAGE;
    a->seed = (uint64_t)s;
    return CLI_OK;
  }
  }
  return CLI_OK;
}

static void report(const check_args *a, const sieve_shape *s, const rt_check_result *r) {
  int64_t S = sieve_shape_tokens(s), per = a->rows > 0 && a->rows < S ? a->rows : S;
  printf("check     %lld rows in each of %d (batch, head) pairs, %s, step %d, layer %d, seed %llu\n",
         (long long)per, s->batch * s->heads, a->bshd ? "BSHD" : "BHSD", a->com.step,
         a->com.layer, (unsigned long long)a->seed);
  printf("reference %.0f ms (random inputs, %lld rows in float64)\n", r->ref_ms,
         (long long)r->rows);
  if (!r->bad_o && !r->bad_lse) {
    printf("written   every O and LSE element\n");
  } else {
    int64_t row = r->first_bad, hs = (int64_t)s->heads * S;
    printf("written   %lld O elements and %lld LSE values are NaN or inf (unwritten or "
           "overflowed); first at batch %lld, head %lld, row %lld\n",
           (long long)r->bad_o, (long long)r->bad_lse, (long long)(row / hs),
           (long long)(row % hs / S), (long long)(row % S));
  }
  printf("O         rel. error %.2e (tolerance %.0e)\n", r->err_o, r->tol_o);
  printf("LSE       rel. error %.2e (tolerance %.0e)\n", r->err_lse, r->tol_lse);
  if (r->lse_inf_mismatch)
    printf("empty     %lld rows disagree with the reference on LSE = -inf (no allowed key)\n",
           (long long)r->lse_inf_mismatch);
  else if (r->empty_rows)
    printf("empty     %lld compared rows have no allowed key: LSE -inf in both\n",
           (long long)r->empty_rows);
  printf("density   %.4f\n%s\n", r->density, r->pass ? "PASS" : "FAIL");
}

static int check(sieve_ctx *ctx, void *self) {
  check_args *a = self;
  if (!a->seed) a->seed = (uint64_t)time(NULL) % 1000000007u + 1;
  cli_gpu_run g;
  int rc = cli_gpu_begin(ctx, &a->com, a->dtype, &a->cfg, a->batch, &g);
  if (!rc) {
    rt_check_opts o = {.bshd = a->bshd, .rows = a->rows, .step = a->com.step,
                       .layer = a->com.layer, .seed = a->seed};
    rt_check_result r;
    cg_err e = {0};
    if (rt_check_plan(api_plan_of(g.plan), &o, &r, &e)) {
      rc = cli_status_fail(e.status, e.msg, "check");
    } else {
      report(a, &g.shape, &r);
      rc = r.pass ? CLI_OK : CLI_FAIL;
    }
  }
  cli_gpu_end(&g);
  return rc;
}

static int run(int argc, char **argv) {
  check_args a = {.dtype = SIEVE_BF16, .rows = 32, .batch = 1};
  return cli_pattern_command(&cli_cmd_check, argc, argv, &a.com, check_opt, &a, check);
}

const cli_cmd cli_cmd_check = {
  .name = "check",
  .summary = "run a pattern's kernel on the GPU and compare it with the float64 reference",
  .usage = "PATTERN (--shape NAME | --frames T --height Y --width X) [options]",
  .about =
    "Makes the plan a host would get (the tuned config, else the default, unless\n"
    "--config says otherwise), runs it once on random inputs rounded to the dtype\n"
    "with its outputs poisoned (NaN) beforehand, and checks that every output was\n"
    "written and is finite. Then it compares sampled rows of every (batch, head)\n"
    "with a float64 reference computed from the pattern's mask in model order:\n"
    "relative error of O (bf16 within 1e-2, fp16 within 2e-3) and of the LSE\n"
    "(within 1e-3), and rows with no allowed key must have LSE = -inf in both.\n"
    "Prints the errors and PASS or FAIL; a FAIL exits with status 1. Needs a GPU.",
  .opts = check_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE | CLI_G_STEP,
  .examples =
    "  sieve check frame_window --shape wan-1.3b-480p\n"
    "  sieve check lvsa --frames 5 --height 12 --width 20 --text 40 --rows 0 --step 3 --layer 5\n"
    "  sieve check sta --shape cogvideox-1.5 --dtype fp16 --layout bshd --config bm=64,bn=64\n",
  .run = run,
};
