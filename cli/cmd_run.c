/*
** sieve run PATTERN --shape ...: times the pattern's kernel on the GPU with
** CUDA events (rt_bench) and says what ran: config, where the kernel came
** from, density, ms and TFLOP/s on the blocks it computes. With --steps it
** runs a denoising loop and says what each step did.
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "lp.h"
#include "rt_bench.h"

enum { OPT_DTYPE = CLI_OPT_CMD, OPT_CONFIG, OPT_BATCH, OPT_REP, OPT_STEPS };

extern const cli_cmd cli_cmd_run;

typedef struct run_args {
  cli_common com;
  sieve_dtype dtype;
  sieve_config cfg;
  int batch, rep_ms, steps;
} run_args;

static const cli_opt run_opts[] = {
  {OPT_DTYPE, "--dtype", 0, "TYPE", "bf16 or fp16 inputs and output (default bf16)"},
  {OPT_CONFIG, "--config", 0, "SPEC", "kernel config, any subset of bm=64|128|192,bn=32|64|128|192,"
                                      "warps=4|8|12|16,stages=1|2|3|4,sched=0|1|2 (default: tuned, else chosen for "
                                      "the shape)"},
  {OPT_BATCH, "--batch", 0, "B", "batch size (default 1)"},
  {OPT_REP, "--rep-ms", 0, "MS", "time spent on timed runs, after 25 ms of warm-up; at least "
                                 "10 runs (default 200)"},
  {OPT_STEPS, "--steps", 0, "N", "run N denoising steps (0 .. N-1, at --layer) as a host "
                                 "would, and time each: which steps search or profile, which "
                                 "reuse, which move the tables (default: time one call)"},
  {0},
};

static int run_opt(void *self, int id, const char *v) {
  run_args *a = self;
  switch (id) {
  case OPT_DTYPE: return cli_dtype("--dtype", v, &a->dtype);
  case OPT_CONFIG: return cli_config("--config", v, &a->cfg);
  case OPT_BATCH: return cli_int("--batch", v, 1, 65535, &a->batch);
  case OPT_REP: return cli_int("--rep-ms", v, 1, 600000, &a->rep_ms);
  case OPT_STEPS: return cli_int("--steps", v, 1, 100000, &a->steps);
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
  if (r->permute_ms > 0) printf("permute   %.3f ms of it: Q, K, V into layout order (timed alone)\n", r->permute_ms);
}

/* Whether the pattern's tables change with the step or the layer. */
static int tables_move(const cg_pattern *p) {
  uint32_t used = 0;
  for (int i = 0; i < p->nclasses; i++) used |= cg_vars_used(p->g, p->classes[i].mask);
  return (used & (1u << CG_V_STEP | 1u << CG_V_LAYER)) != 0;
}

/* One step as a host runs it: a dynamic plan for search and profiling
** patterns, else the plan moved to the step. *what says what it did. */
static sieve_status one_step(cli_gpu_run *g, sieve_dynplan *d, int step, int layer, int moves,
                             rt_bench *b, const char **what, double *density) {
  sieve_tensor t[4];
  CUdeviceptr lse;
  CUstream s;
  rt_bench_set(b, 0, t, &lse, &s);
  sieve_status st;
  if (d) {
    int chose = 0;
    st = sieve_dynplan_step(d, step, layer, &t[0], &t[1], &t[2], &t[3], lse, 0.0f, s, &chose);
    if (!st) st = sieve_dynplan_density(d, density);
    const cg_selection *sel = &lp_pattern_ir(g->p)->sel;
    int before = sel->kind == CG_SELECT_LSE_SEARCH && sel->nsteps;
    for (int i = 0; before && i < sel->nsteps; i++) before = step < sel->steps[i];
    /* AdaSpa runs its whole allowed set until the first search step. */
    *what = chose ? (sel->kind == CG_SELECT_PROFILE ? "profile" : "search") : before ? "allowed set" : "reuse";
    if (!chose && cg_pattern_dense_at(lp_pattern_ir(g->p), step, layer)) {
      *what = "dense warm-up";
      *density = 1;
    }
    return st;
  }
  st = sieve_plan_set_step(g->plan, step, layer);
  if (!st) st = sieve_attention(g->plan, &t[0], &t[1], &t[2], &t[3], lse, 0.0f, s);
  *what = moves ? "new tables" : "same tables";
  *density = moves ? -1 : sieve_plan_density(g->plan);
  if (rt_plan_warm(api_plan_of(g->plan))) {
    /* The schedule (the sparse tables wait), or a mask true at this shape. */
    *what = rt_plan_folded(api_plan_of(g->plan)) ? "dense (mask true)" : "dense warm-up";
    *density = 1;
  }
  return st;
}

/*
** The denoising loop: every step on the same inputs, each timed on the host
** around the synchronised step, so a step's table build, search or
** profiling counts with its attention.
*/
static int run_steps(sieve_ctx *ctx, run_args *a, cli_gpu_run *g) {
  const cg_pattern *cp = lp_pattern_ir(g->p);
  const cg_attn_spec *sp = rt_plan_spec_of(api_plan_of(g->plan));
  rt_bench_opts o = {.sets = 1};
  rt_bench *b = NULL;
  sieve_dynplan *d = NULL;
  const rt_cuda *cu = NULL;
  cg_err e = {0};
  int rc = CLI_OK;
  if (rt_cuda_get(&cu, &e) || rt_bench_new(&sp->shape, sp->dtype, &o, &b, &e))
    return cli_status_fail(e.status, e.msg, "inputs");
  if (cp->sel.kind != CG_SELECT_STATIC) {
    sieve_status st = sieve_dynplan_create(ctx, g->p, &g->shape, a->dtype, &d);
    if (st) rc = cli_lib_fail(ctx, st, "dynamic plan");
  }
  if (!rc) printf("\nstep  did                  ms   density\n");
  for (int s = 0; !rc && s < a->steps; s++) {
    const char *what;
    double density, t0 = cli_now_ms();
    sieve_status st = one_step(g, d, s, a->com.layer, tables_move(cp), b, &what, &density);
    if (!st) st = RT_CU(cu, &e, cuCtxSynchronize);
    if (st) {
      rc = st == SIEVE_ERR_CUDA && e.msg[0] ? cli_status_fail(st, e.msg, "step")
                                            : cli_lib_fail(ctx, st, "step");
      break;
    }
    if (density < 0) printf("%4d  %-12s %12.3f         -\n", s, what, cli_now_ms() - t0);
    else printf("%4d  %-12s %12.3f   %7.4f\n", s, what, cli_now_ms() - t0, density);
  }
  sieve_dynplan_free(d);
  rt_bench_free(b);
  return rc;
}

static int time_it(sieve_ctx *ctx, void *self) {
  run_args *a = self;
  cli_gpu_run g;
  int rc = cli_gpu_begin(ctx, &a->com, a->dtype, &a->cfg, a->batch, &g);
  if (!rc && a->steps) {
    rc = run_steps(ctx, a, &g);
  } else if (!rc) {
    rt_bench_opts o = {.rep_ms = a->rep_ms};
    rt_bench_result r;
    cg_err e = {0};
    if (rt_bench_plan(api_plan_of(g.plan), &o, &r, &e)) rc = cli_status_fail(e.status, e.msg, "timing");
    else report(&r);
  }
  cli_gpu_end(&g);
  return rc;
}

static int run(int argc, char **argv) {
  run_args a = {.dtype = SIEVE_BF16, .batch = 1};
  return cli_pattern_command(&cli_cmd_run, argc, argv, &a.com, run_opt, &a, time_it);
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
    "time and TFLOP/s counted as 4*B*H*S^2*D*density. With --steps N it runs the\n"
    "denoising loop instead, steps 0 .. N-1 on one input set, and times each step\n"
    "whole: AdaSpa (search) and SVG (profile) patterns through a dynamic plan that\n"
    "searches or profiles at the pattern's steps and reuses the choice between\n"
    "them; patterns whose mask reads the step or layer get new tables each step,\n"
    "built on the GPU; steps and layers in the pattern's schedule run dense\n"
    "attention (\"dense warm-up\"), and so does every step of a pattern whose mask\n"
    "holds on every pair at the shape (\"dense (mask true)\"). Needs a GPU.",
  .opts = run_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE | CLI_G_STEP,
  .examples =
    "  sieve run lvsa --shape hunyuan-720p\n"
    "  sieve run frame_window --shape wan-1.3b-480p -p window=3 --batch 2\n"
    "  sieve run dense --shape cogvideox-1.5 --dtype fp16 --config bm=128,bn=64,warps=8\n"
    "  sieve run adaspa --shape hunyuan-720p --steps 20    # which steps search, which reuse\n",
  .run = run,
};
