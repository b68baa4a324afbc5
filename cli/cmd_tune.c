/*
** sieve tune PATTERN --shape ...: the autotuner (rt_tune). Sweeps kernel
** configs for the pattern, shape, dtype and this GPU, prints them ranked and
** stores the winner in the tuning database, where `sieve run` and every
** plan made with an all-zero config find it. Ctrl-C stops the sweep after
** the candidate in progress; the same command resumes it.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "lp.h"
#include "rt_tunedb.h"

enum {
  OPT_DTYPE = CLI_OPT_CMD, OPT_ARCH, OPT_CONFIGS, OPT_BUDGET, OPT_THREADS, OPT_ROWS, OPT_FRESH,
};

#define EXIT_STOPPED 130

extern const cli_cmd cli_cmd_tune;

typedef struct tune_args {
  cli_common com;
  sieve_dtype dtype;
  cg_arch arch;
  int arch_set;
  rt_tune_space space;
  const char *configs;
  int budget, threads, rows, fresh;
} tune_args;

static const cli_opt tune_opts[] = {
  {OPT_DTYPE, "--dtype", 0, "TYPE", "bf16 or fp16 (default bf16)"},
  {OPT_ARCH, "--arch", 0, "ARCH", "sm_80 or sm_90a (default: the one plans use on this GPU: sm_90a on sm_90, else sm_80)"},
  {OPT_CONFIGS, "--configs", 0, "SPEC", "restrict the sweep, e.g. \"bm=128;bn=64,128;warps=4\" "
                                        "(keys bm, bn, warps, stages; default: every config)"},
  {OPT_BUDGET, "--budget", 0, "SECONDS", "stop starting candidates after this long; the best so "
                                         "far is stored (default 600)"},
  {OPT_THREADS, "--threads", 0, "N", "host threads that build kernels (default: every CPU)"},
  {OPT_ROWS, "--rows", 0, "N", "rows per (batch, head) each candidate is checked on against "
                               "the float64 reference (default 4)"},
  {OPT_FRESH, "--fresh", 0, NULL, "forget the results of an interrupted sweep and measure "
                                  "everything again (default: resume)"},
  {0},
};

static int tune_opt(void *self, int id, const char *v) {
  tune_args *a = self;
  cg_err e = {0};
  switch (id) {
  case OPT_DTYPE: return cli_dtype("--dtype", v, &a->dtype);
  case OPT_ARCH:
    if (cg_arch_parse(v, &a->arch) == 0) {
      a->arch_set = 1;
      return CLI_OK;
    }
    return cli_fail(CLI_USAGE, "--arch: unknown value '%s' (valid: sm_80, sm_90, sm_90a)", v);
  case OPT_CONFIGS:
    a->configs = v;
    if (rt_tune_space_parse(v, &a->space, &e)) return cli_fail(CLI_USAGE, "--%s", e.msg);
    return CLI_OK;
  case OPT_BUDGET: return cli_int("--budget", v, 1, INT_MAX, &a->budget);
  case OPT_THREADS: return cli_int("--threads", v, 1, 64, &a->threads);
  case OPT_ROWS: return cli_int("--rows", v, 1, INT_MAX, &a->rows);
  case OPT_FRESH: a->fresh = 1; return CLI_OK;
  }
  return CLI_OK;
}

/* ------------------------------------------------------------- signals */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  interrupted = 1;
  signal(sig, SIG_DFL);  /* a second Ctrl-C ends the process at once */
}

/* ------------------------------------------------------------ progress */

typedef struct view {
  int tty, open;           /* a bar line is on the screen */
} view;

static void clock_text(double s, char *buf, size_t n) {
  if (s < 0) snprintf(buf, n, "?");
  else snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void cand_result(const rt_tune_cand *c, char *buf, size_t n) {
  char cfg[96];
  rt_tune_config_text(&c->cfg, cfg, sizeof cfg);
  if (c->state == RT_TUNE_OK)
    snprintf(buf, n, "%s: %.3f ms, %.1f TFLOP/s", cfg, c->ms, c->tflops);
  else
    snprintf(buf, n, "%s: %s%s%.160s", cfg, rt_tune_state_name(c->state), c->note[0] ? ": " : "",
             c->note);
}

/* A finished build: its time, or why it failed. */
static void build_result(const rt_tune_cand *c, char *buf, size_t n) {
  char cfg[96];
  rt_tune_config_text(&c->cfg, cfg, sizeof cfg);
  if (c->state == RT_TUNE_BUILD_FAILED)
    snprintf(buf, n, "%s: build failed: %.200s", cfg, c->note);
  else if (c->build_ms > 0)
    snprintf(buf, n, "%s: %.0f ms", cfg, c->build_ms);
  else
    snprintf(buf, n, "%s: in the cache", cfg);
}

static void bar_line(const rt_tune_progress *p, const char *last) {
  char bar[31], el[16], eta[16];
  int fill = p->total ? 30 * p->done / p->total : 30;
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
  bar[30] = 0;
  clock_text(p->elapsed_s, el, sizeof el);
  clock_text(p->eta_s, eta, sizeof eta);
  printf("\r\033[K%-9s [%s] %d/%d  %s elapsed, ETA %s  %.50s", p->phase ? "measuring" : "building",
         bar, p->done, p->total, el, eta, last);
}

static void on_progress(const rt_tune_progress *p, void *ud) {
  view *v = ud;
  char last[400] = "";
  if (p->cand && p->phase) cand_result(p->cand, last, sizeof last);
  else if (p->cand) build_result(p->cand, last, sizeof last);
  if (v->tty) {
    bar_line(p, last);
    v->open = p->done < p->total;
    if (!v->open) printf("\n");
  } else {
    printf("  %s %d/%d  %s\n", p->phase ? "measured" : "built", p->done, p->total, last);
  }
  fflush(stdout);
}

/* -------------------------------------------------------------- report */

/* The candidates not ranked, those of one state and note on one line
** (a sweep prunes dozens for one reason), before the ranked table, so
** that the table ends beside the winner. */
static void not_ranked(const rt_tune_report *r) {
  char cfg[96];
  int shown = 0;
  for (int i = 0; i < r->n; i++) {
    const rt_tune_cand *c = &r->c[i];
    int first = c->state != RT_TUNE_OK;
    for (int j = 0; j < i && first; j++)
      first = !(r->c[j].state == c->state && !strcmp(r->c[j].note, c->note));
    if (!first) continue;
    if (!shown++) printf("\nnot ranked:\n");
    int same = 0;
    for (int j = i; j < r->n; j++) same += r->c[j].state == c->state && !strcmp(r->c[j].note, c->note);
    printf("  %s%s%.300s (%d):\n   ", rt_tune_state_name(c->state), c->note[0] ? ": " : "", c->note, same);
    int col = 3, k = 0;
    for (int j = i; j < r->n; j++) {
      if (r->c[j].state != c->state || strcmp(r->c[j].note, c->note)) continue;
      rt_tune_config_text(&r->c[j].cfg, cfg, sizeof cfg);
      int len = (int)strlen(cfg) + 2;
      if (k++) printf(";");
      if (col > 3 && col + len > 100) {
        printf("\n   ");
        col = 3;
      }
      printf(" %s", cfg);
      col += len;
    }
    printf("\n");
  }
}

static void ranked(const rt_tune_report *r) {
  char cfg[96];
  printf("\n%4s  %-32s %10s %10s %10s %8s %9s\n", "rank", "config", "ms", "min", "max",
         "TFLOP/s", "O error");
  for (int i = 0; i < r->nranked; i++) {
    const rt_tune_cand *c = &r->c[r->rank[i]];
    rt_tune_config_text(&c->cfg, cfg, sizeof cfg);
    printf("%4d  %-32s %10.3f %10.3f %10.3f %8.1f %9.1e%s%s\n", i + 1, cfg, c->ms, c->min_ms,
           c->max_ms, c->tflops, c->err_o, c->is_default ? "  default" : "",
           c->from_journal ? "  (earlier run)" : "");
  }
}

static void summary(const rt_tune_report *r) {
  char cfg[96];
  if (r->best >= 0) {
    const rt_tune_cand *b = &r->c[r->best];
    rt_tune_config_text(&b->cfg, cfg, sizeof cfg);
    printf("\nwinner    %s: %.3f ms, %.1f TFLOP/s", cfg, b->ms, b->tflops);
    if (r->def >= 0 && r->c[r->def].state == RT_TUNE_OK)
      printf(", %.2fx the default (%.3f ms)", r->c[r->def].ms / b->ms, r->c[r->def].ms);
    printf("\n");
  }
  if (r->stored)
    printf("stored    %s\n          key %s\n          plans for this pattern, shape, dtype and "
           "GPU use it from now on\n", r->db, r->key);
  if (!r->complete) {
    int left = 0;
    for (int i = 0; i < r->n; i++) left += r->c[i].state == RT_TUNE_SKIPPED;
    printf("unfinished %d candidates not measured (%s); run the same command to resume%s%s\n",
           left, r->stopped ? "interrupted" : r->out_of_budget ? "out of budget" : "stopped",
           r->journal[0] ? ", journal " : "", r->journal);
  }
  if (r->resumed) printf("resumed   %d results from an earlier run (--fresh measures again)\n", r->resumed);
  if (r->note[0]) printf("note      %s\n", r->note);
  printf("elapsed   %.1f s (reference %.1f s)\n", r->elapsed_s, r->check_ms / 1e3);
}

/* ------------------------------------------------------------- command */

static int read_text(const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return cli_fail(CLI_USAGE, "cannot read '%s': %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf && (n += fread(buf + n, 1, cap - n, f)) == cap) {
    char *nb = cap < (64u << 20) ? realloc(buf, 2 * cap + 1) : NULL;
    if (!nb) break;
    buf = nb;
    cap *= 2;
  }
  int bad = ferror(f) || !buf || n == cap;
  fclose(f);
  if (bad) {
    free(buf);
    return cli_fail(CLI_USAGE, "cannot read '%s'", path);
  }
  buf[n] = 0;
  *out = buf;
  return CLI_OK;
}

static int open_gpu(rt_device *dev, sieve_device_info *info) {
  cg_err e = {0};
  sieve_status st = rt_device_open(0, dev, &e);
  if (st == SIEVE_ERR_NO_DRIVER || st == SIEVE_ERR_NO_GPU)
    return cli_fail(CLI_FAIL, "no GPU: %.*s", (int)strcspn(e.msg, "\n"), e.msg);
  if (st) return cli_status_fail(st, e.msg, "GPU");
  *info = (sieve_device_info){.ordinal = 0, .sm_major = dev->sm_major, .sm_minor = dev->sm_minor,
                              .sm_count = dev->sm_count, .smem_per_block = dev->smem_optin,
                              .driver_version = dev->driver_version};
  snprintf(info->name, sizeof info->name, "%s", dev->name);
  return CLI_OK;
}

static int sweep(sieve_ctx *ctx, const tune_args *a, sieve_pattern *p, const char *path,
                 const char *src, const sieve_shape *shape, const rt_device *dev) {
  rt_cache *cache = NULL;
  cg_err e = {0};
  if (api_cache(ctx, &cache, &e)) {
    printf("note      no kernel cache (%s): kernels are built one at a time and nothing is "
           "stored\n", e.msg);
    cache = NULL;
  }
  view v = {isatty(STDOUT_FILENO), 0};
  rt_tune_setup s = {.chunk = path, .source = src, .overrides = a->com.params,
                     .pattern = lp_pattern_ir(p), .shape = *shape,
                     .dtype = a->dtype == SIEVE_FP16 ? CG_FP16 : CG_BF16, .arch = a->arch,
                     .space = a->space, .budget_s = a->budget, .threads = a->threads,
                     .check_rows = a->rows, .seed = 1, .fresh = a->fresh, .store = 1,
                     .stop = &interrupted, .progress = on_progress, .ud = &v};
  static rt_tune_report r;  /* 36 candidates with notes: too big for the stack */
  struct sigaction sa = {.sa_handler = on_sigint}, old;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  sieve_status st = rt_tune_run(&s, dev, cache, &r, &e);
  sigaction(SIGINT, &old, NULL);
  if (v.open) printf("\n");
  if (st) return cli_status_fail(st, e.msg, "tune");
  not_ranked(&r);
  ranked(&r);
  summary(&r);
  if (r.stopped) return EXIT_STOPPED;
  if (r.best >= 0) return CLI_OK;
  if (r.out_of_budget)
    return cli_fail(CLI_FAIL, "the budget ran out before a config was measured; nothing stored");
  return cli_fail(CLI_FAIL, "no config passed the check; nothing stored");
}

static int tune(sieve_ctx *ctx, void *self) {
  const tune_args *a = self;
  sieve_shape shape;
  sieve_pattern *p = NULL;
  sieve_device_info info;
  rt_device dev = {0};
  char path[4096], *src = NULL;
  int rc = cli_shape(ctx, &a->com, &shape);
  if (!rc) rc = cli_pattern_path(a->com.pos[0], path, sizeof path);
  if (!rc) rc = read_text(path, &src);
  if (!rc) {
    /* The build threads load the same text, so an edit to the file while the
    ** sweep runs cannot give them another pattern. */
    sieve_status st = sieve_pattern_load_string(ctx, path, src, a->com.params, &p);
    if (st) rc = cli_lib_fail(ctx, st, NULL);
  }
  if (!rc) {
    cli_pattern_shape(p, &shape);
    rc = cli_gpu_precheck(p, &shape, a->dtype, NULL);  /* the sweep picks configs */
  }
  if (!rc) {
    rc = open_gpu(&dev, &info);
  }
  if (!rc) {
    tune_args t = *a;
    if (!t.arch_set) t.arch = rt_plan_arch_for(&dev);
    cli_gpu_header(path, p, &a->com, &shape, a->dtype, &info);
    printf("sweep     %s, configs %s, budget %d s\n", cg_arch_name(t.arch),
           a->configs ? a->configs : "all", a->budget);
    fflush(stdout);
    rc = sweep(ctx, &t, p, path, src, &shape, &dev);
    rt_device_close(&dev, NULL);
  }
  sieve_pattern_free(p);
  free(src);
  return rc;
}

static int run(int argc, char **argv) {
  tune_args a = {.dtype = SIEVE_BF16, .arch = CG_SM80, .budget = 600, .rows = 4};
  rt_tune_space_all(&a.space);
  return cli_pattern_command(&cli_cmd_tune, argc, argv, &a.com, tune_opt, &a, tune);
}

const cli_cmd cli_cmd_tune = {
  .name = "tune",
  .summary = "find the fastest kernel config for a pattern, shape and GPU; plans then use it",
  .usage = "PATTERN (--shape NAME | --frames T --height Y --width X) [options]",
  .about =
    "Sweeps the kernel's configs (block_m 64|128|192, block_n 32|64|128|192,\n"
    "warps 4|8|12|16, stages 1|2|3|4, and for 12 and 16 warps sched 0|1|2: a CTA\n"
    "per tile or a persistent grid), skipping before any compilation those the\n"
    "generator refuses for the shape (registers, block sizes) and those needing\n"
    "more shared memory\n"
    "than the GPU allows. The rest are built on every host CPU at once, then each\n"
    "is checked against the float64 reference on a few rows (wrong ones are\n"
    "rejected) and timed like `sieve run`. A progress bar with an ETA shows on a\n"
    "terminal, plain lines otherwise; the end is a ranked table.\n\n"
    "The winner is stored in the tuning database (tune.db in the kernel cache's\n"
    "directory) under the pattern's IR hash, the shape, dtype, arch and GPU name;\n"
    "`sieve run`, `sieve check` and every plan made with an all-zero config use\n"
    "it. Candidates are started only while the --budget lasts. Ctrl-C stops after\n"
    "the candidate in progress (exit 130); finished candidates are journaled, so\n"
    "the same command resumes the sweep. Needs a GPU.",
  .opts = tune_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE,
  .examples =
    "  sieve tune lvsa --shape hunyuan-720p --budget 300\n"
    "  sieve tune frame_window --shape wan-1.3b-480p -p window=3 --configs \"bm=128;warps=4,8\"\n"
    "  sieve tune dense --shape cogvideox-1.5 --dtype fp16 --fresh\n",
  .run = run,
};
