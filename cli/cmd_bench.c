/*
** sieve bench PATTERN --shape ...: the pattern's kernel beside sieve's own
** dense kernel on the same shape, timed on the same buffers in one run;
** --compare torch adds torch's SDPA backends and FlexAttention (through
** bench/compare.py), --png draws the comparison.
*/
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "rt_bench.h"

enum { OPT_DTYPE = CLI_OPT_CMD, OPT_CONFIG, OPT_BATCH, OPT_COMPARE, OPT_PNG };

#define MAX_ROWS 16

extern const cli_cmd cli_cmd_bench;

typedef struct bench_args {
  cli_common com;
  sieve_dtype dtype;
  sieve_config cfg;
  int batch, torch;
  const char *png;
} bench_args;

typedef struct row {
  char kernel[64], pattern[64];
  double density, ms, tflops;
  int mine;
} row;

typedef struct table {
  row r[MAX_ROWS];
  int n;
  double dense_ms;         /* sieve's dense kernel; 0 when not measured */
} table;

static const cli_opt bench_opts[] = {
  {OPT_DTYPE, "--dtype", 0, "TYPE", "bf16 or fp16 inputs and output (default bf16)"},
  {OPT_CONFIG, "--config", 0, "SPEC", "the pattern kernel's config, any subset of bm=, bn=, "
                                      "warps=, stages= (default: tuned, else chosen for the "
                                      "shape)"},
  {OPT_BATCH, "--batch", 0, "B", "batch size (default 1)"},
  {OPT_COMPARE, "--compare", 0, "WHAT", "torch: also time torch SDPA (flash, cuDNN) and "
                                        "FlexAttention through bench/compare.py (needs python3, "
                                        "torch and triton) (default: sieve only)"},
  {OPT_PNG, "--png", 0, "FILE", "draw the times as a bar chart (default: none)"},
  {0},
};

static int bench_opt(void *self, int id, const char *v) {
  bench_args *a = self;
  switch (id) {
  case OPT_DTYPE: return cli_dtype("--dtype", v, &a->dtype);
  case OPT_CONFIG: return cli_config("--config", v, &a->cfg);
  case OPT_BATCH: return cli_int("--batch", v, 1, 65535, &a->batch);
  case OPT_PNG: a->png = v; return CLI_OK;
  case OPT_COMPARE:
    if (strcmp(v, "torch")) return cli_fail(CLI_USAGE, "--compare: unknown value '%s' (valid: torch)", v);
    a->torch = 1;
    return CLI_OK;
  }
  return CLI_OK;
}

static row *add_row(table *t, const char *kernel, const char *pattern, double density, double ms,
                    double tflops, int mine) {
  if (t->n == MAX_ROWS) return NULL;
  row *r = &t->r[t->n++];
  snprintf(r->kernel, sizeof r->kernel, "%s", kernel);
  snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
  r->density = density;
  r->ms = ms;
  r->tflops = tflops;
  r->mine = mine;
  return r;
}

/* ------------------------------------------------------------- sieve */

/* Times plan on b and adds its row. */
static int time_plan(sieve_plan *plan, rt_bench *b, const char *pattern, table *t,
                     double *ms) {
  rt_bench_result r;
  cg_err e = {0};
  sieve_config c;
  char name[64];
  if (rt_bench_run(b, api_plan_of(plan), &r, &e)) return cli_status_fail(e.status, e.msg, "timing");
  sieve_plan_config(plan, &c);
  snprintf(name, sizeof name, "sieve %d/%d/%d/%d", c.block_m, c.block_n, c.warps, c.stages);
  add_row(t, name, pattern, r.density, r.median_ms, r.tflops, 1);
  *ms = r.median_ms;
  return CLI_OK;
}

/* sieve's dense kernel on the shape the pattern's kernel ran on. */
static int dense_baseline(sieve_ctx *ctx, const bench_args *a, const sieve_shape *shape,
                          const sieve_pattern *mine, rt_bench *b, table *t) {
  char path[4096];
  sieve_pattern *d = NULL;
  sieve_plan *plan = NULL;
  sieve_config none = {0};
  if (cli_pattern_path("dense", path, sizeof path)) return CLI_USAGE;
  sieve_status st = sieve_pattern_load(ctx, path, NULL, &d);
  if (st) return cli_lib_fail(ctx, st, "dense");
  int rc = CLI_OK;
  if (sieve_pattern_hash(d) == sieve_pattern_hash(mine)) {
    t->dense_ms = t->r[0].ms;  /* the pattern is dense: it is its own baseline */
  } else {
    rc = cli_plan(ctx, d, shape, a->dtype, &none, &plan);
    if (!rc) rc = time_plan(plan, b, "dense", t, &t->dense_ms);
  }
  sieve_plan_free(plan);
  sieve_pattern_free(d);
  return rc;
}

static void print_table(const table *t) {
  printf("\n%-22s %-14s %8s %10s %10s %9s\n", "kernel", "pattern", "density", "ms", "TFLOP/s",
         "vs dense");
  for (int i = 0; i < t->n; i++) {
    const row *r = &t->r[i];
    char sp[32] = "-";
    if (t->dense_ms > 0 && r->ms > 0) snprintf(sp, sizeof sp, "%.2fx", t->dense_ms / r->ms);
    printf("%-22s %-14s %8.4f %10.3f %10.1f %9s\n", r->kernel, r->pattern, r->density, r->ms,
           r->tflops, sp);
  }
  printf("\nTFLOP/s count 4*B*H*S^2*D*density; \"vs dense\" is sieve's dense kernel's time over "
         "each row's.\n");
}

/* ------------------------------------------------------------- torch */

static void shape_fields(const sieve_shape *s, char *buf, size_t n) {
  snprintf(buf, n, "heads=%d,head_dim=%d,frames=%d,height=%d,width=%d,text=%d,text_after=%d",
           s->heads, s->head_dim, s->frames, s->height, s->width, s->text, s->text_after);
}

static void params_arg(const cli_common *com, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < com->nparams && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", com->params[i]);
}

/* Runs compare.py with its output on ours; the rows come back as CSV. */
static int run_compare(const bench_args *a, const char *path, const sieve_shape *s,
                       const char *csv) {
  char script[4096], fields[256], params[2048], exe[4096], batch[16];
  if (!cli_find_file("bench/compare.py", script, sizeof script))
    return cli_fail(CLI_FAIL, "--compare torch: bench/compare.py not found (set SIEVE_SOURCE_DIR "
                              "to the source tree)");
  shape_fields(s, fields, sizeof fields);
  params_arg(&a->com, params, sizeof params);
  snprintf(batch, sizeof batch, "%d", s->batch);
  if (!getenv("SIEVE_LIB_DIR") && cli_exe_dir(exe, sizeof exe)) setenv("SIEVE_LIB_DIR", exe, 1);
  const char *argv[] = {"python3", script, "--pattern", path, "--params", params,
                        "--shapes", a->com.shape_name ? a->com.shape_name : "custom",
                        "--shape-fields", fields, "--dtype", cli_dtype_name(a->dtype),
                        "--batch", batch, "--skip-sieve", "--csv", csv, NULL};
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return cli_fail(CLI_FAIL, "--compare torch: cannot start python3");
  if (pid == 0) {
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
    return cli_fail(CLI_FAIL, "--compare torch: python3 not found");
  if (!WIFEXITED(st) || WEXITSTATUS(st))
    return cli_fail(CLI_FAIL, "--compare torch: %s failed (exit %d)", script,
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return CLI_OK;
}

static void read_csv(const char *csv, table *t) {
  FILE *f = fopen(csv, "r");
  char line[512];
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    char shape[64], pattern[64], kernel[64];
    double d, ms, tf;
    if (sscanf(line, "%63[^,],%63[^,],%63[^,],%lf,%lf,%lf", shape, pattern, kernel, &d, &ms, &tf) == 6)
      add_row(t, kernel, pattern, d, ms, tf, 0);
  }
  fclose(f);
}

static int compare_torch(const bench_args *a, const char *path, const sieve_shape *s, table *t) {
  char csv[] = "/tmp/sieve-bench-XXXXXX";
  int fd = mkstemp(csv);
  if (fd < 0) return cli_fail(CLI_FAIL, "--compare torch: cannot make a temp file");
  close(fd);
  printf("\ntorch (bench/compare.py):\n");
  int rc = run_compare(a, path, s, csv);
  if (!rc) read_csv(csv, t);
  unlink(csv);
  return rc;
}

/* ------------------------------------------------------------- picture */

static int draw(const bench_args *a, const char *pattern, const sieve_shape *s, const table *t) {
  cli_bar bars[MAX_ROWS];
  char labels[MAX_ROWS][136], texts[MAX_ROWS][64], title[400], line[256];
  for (int i = 0; i < t->n; i++) {
    const row *r = &t->r[i];
    snprintf(labels[i], sizeof labels[i], "%s %s", r->kernel, r->pattern);
    int n = snprintf(texts[i], sizeof texts[i], "%.3f MS %.0f TFLOP/S", r->ms, r->tflops);
    if (t->dense_ms > 0 && r->ms > 0 && n > 0 && (size_t)n < sizeof texts[i])
      snprintf(texts[i] + n, sizeof texts[i] - (size_t)n, " %.2fX", t->dense_ms / r->ms);
    bars[i] = (cli_bar){labels[i], r->ms, texts[i], r->mine};
  }
  cli_shape_line(&a->com, s, line, sizeof line);
  snprintf(title, sizeof title, "%s, %s, %s: ms per call (lower is better)", pattern, line,
           cli_dtype_name(a->dtype));
  int rc = cli_bars_png(a->png, title, bars, t->n);
  if (!rc) printf("wrote %s\n", a->png);
  return rc;
}

/* -------------------------------------------------------------- command */

static int measure(sieve_ctx *ctx, const bench_args *a, sieve_pattern *p, const char *path,
                   sieve_plan *plan) {
  table t = {0};
  rt_bench *b = NULL;
  cg_err e = {0};
  const cg_attn_spec *ps = rt_plan_spec_of(api_plan_of(plan));
  const char *name = sieve_pattern_name(p) ? sieve_pattern_name(p) : "-";
  double ms;
  if (rt_bench_new(&ps->shape, ps->dtype, NULL, &b, &e)) return cli_status_fail(e.status, e.msg, "timing");
  int rc = time_plan(plan, b, name, &t, &ms);
  if (!rc) rc = dense_baseline(ctx, a, &ps->shape, p, b, &t);
  rt_bench_free(b);
  if (!rc) print_table(&t);
  if (!rc && a->torch && !(rc = compare_torch(a, path, &ps->shape, &t))) print_table(&t);
  if (!rc && a->png) rc = draw(a, name, &ps->shape, &t);
  return rc;
}

static int bench(sieve_ctx *ctx, void *self) {
  bench_args *a = self;
  cli_gpu_run g;
  int rc = cli_gpu_begin(ctx, &a->com, a->dtype, &a->cfg, a->batch, &g);
  if (!rc) rc = measure(ctx, a, g.p, g.path, g.plan);
  cli_gpu_end(&g);
  return rc;
}

static int run(int argc, char **argv) {
  bench_args a = {.dtype = SIEVE_BF16, .batch = 1};
  return cli_pattern_command(&cli_cmd_bench, argc, argv, &a.com, bench_opt, &a, bench);
}

const cli_cmd cli_cmd_bench = {
  .name = "bench",
  .summary = "time a pattern beside sieve's dense kernel; --compare torch adds torch and Flex",
  .usage = "PATTERN (--shape NAME | --frames T --height Y --width X) [options]",
  .about =
    "Times the pattern's kernel and sieve's own dense kernel on the same shape,\n"
    "on the same rotating input buffers, in one run (as `sieve run` times one),\n"
    "and prints ms, TFLOP/s on active blocks (4*B*H*S^2*D*density), the density\n"
    "and the speedup over dense. --compare torch then runs bench/compare.py on\n"
    "the same shape and pattern: torch's SDPA with the flash and cuDNN backends,\n"
    "and FlexAttention on sieve's block mask where compare.py knows the pattern's\n"
    "token predicate (frame_window, causal). It needs python3 with torch and\n"
    "triton, and finds the library beside this binary ($SIEVE_LIB_DIR overrides).\n"
    "--png draws every row as a bar. Needs a GPU.",
  .opts = bench_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE,
  .examples =
    "  sieve bench lvsa --shape hunyuan-720p\n"
    "  sieve bench frame_window --shape wan-1.3b-480p -p window=3 --compare torch --png fw.png\n"
    "  sieve bench sta --shape cogvideox-1.5 --dtype fp16\n",
  .run = run,
};
