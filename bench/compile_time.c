/*
** Cold compile time of the attention kernel: pattern script -> PTX, per
** shipped pattern, median over several runs, with the default config.
** Each run loads the script afresh (sandboxed Lua, tracing, pattern IR)
** and generates the kernel (LLVM IR through the tile layer, O3, NVPTX).
** Prints a markdown table for bench/RESULTS.md: wall times, and the
** thread's CPU time (which neighbours on a shared machine inflate less;
** its least over the runs is the figure they inflate least).
**
**   compile_time [-n RUNS] [-s SHAPE] [-d DTYPE] [-a ARCH] [PATTERN.lua ...]
**
** With no patterns, every .lua file in $SIEVE_SOURCE_DIR/patterns (or ./patterns).
*/
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_patterns.h"
#include "cg_attn.h"
#include "lp.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* CPU time of this thread: what other load on the machine inflates least. */
static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct opts {
  int runs;
  sieve_shape shape;
  const char *shape_name;
  cg_dtype dt;
  cg_arch arch;
} opts;

/* One pattern: runs x (load + build); returns 0 on success. */
static int bench(sieve_ctx *ctx, const char *path, void *opt) {
  const opts *o = opt;
  double load[64], gen[64], tot[64], cpu[64];
  size_t ptx_bytes = 0;
  char name[256] = "";
  int runs = o->runs;
  for (int r = 0; r < runs; r++) {
    double t0 = now_ms(), c0 = cpu_ms();
    sieve_pattern *sp;
    if (sieve_pattern_load(ctx, path, NULL, &sp)) {
      fprintf(stderr, "%s: %s\n", path, sieve_errmsg(ctx));
      return 1;
    }
    double t1 = now_ms();
    cg_attn_spec s = {lp_pattern_ir(sp), o->shape, o->dt, o->arch, {0, 0, 0, 0}, 0};
    s.cfg = cg_attn_default_config(&s);
    s.bits = cg_attn_bits(&s);  /* the kernel a plan compiles: its partial blocks as the plan reads them */
    char *ptx, *kname;
    cg_err e = {0};
    if (cg_attn_build(&s, &ptx, &kname, NULL, &e)) {
      fprintf(stderr, "%s: %s\n", path, e.msg);
      sieve_pattern_free(sp);
      return 1;
    }
    double t2 = now_ms();
    ptx_bytes = strlen(ptx);
    snprintf(name, sizeof name, "%s", kname);
    free(ptx);
    free(kname);
    sieve_pattern_free(sp);
    load[r] = t1 - t0;
    gen[r] = t2 - t1;
    tot[r] = t2 - t0;
    cpu[r] = cpu_ms() - c0;
  }
  const char *base = strrchr(path, '/');
  double worst = 0, least = 1e30;
  for (int r = 0; r < runs; r++) {
    worst = tot[r] > worst ? tot[r] : worst;
    least = cpu[r] < least ? cpu[r] : least;
  }
  printf("| %s | %s | %.1f | %.1f | **%.1f** | %.1f | %.1f | %.1f | %zu |\n", base ? base + 1 : path, name,
         median(load, runs), median(gen, runs), median(tot, runs), worst, median(cpu, runs), least, ptx_bytes / 1024);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  opts o = {5, {0}, "wan-1.3b-480p", CG_BF16, CG_SM80};
  int c;
  while ((c = getopt(argc, argv, "n:s:d:a:h")) != -1) {
    switch (c) {
    case 'n': o.runs = atoi(optarg); break;
    case 's': o.shape_name = optarg; break;
    case 'd': o.dt = !strcmp(optarg, "fp16") ? CG_FP16 : CG_BF16; break;
    case 'a':
      if (cg_arch_parse(optarg, &o.arch)) {
        fprintf(stderr, "unknown arch %s\n", optarg);
        return 2;
      }
      break;
    default:
      fprintf(stderr, "usage: %s [-n RUNS] [-s SHAPE] [-d bf16|fp16] [-a sm_80|sm_90a] [PATTERN.lua ...]\n", argv[0]);
      return 2;
    }
  }
  if (o.runs < 1 || o.runs > 64) o.runs = 5;
  if (sieve_shape_preset(o.shape_name, &o.shape)) {
    fprintf(stderr, "unknown shape %s\n", o.shape_name);
    return 2;
  }
  sieve_ctx *ctx;
  if (sieve_open(&ctx)) return 1;
  printf("shape %s (D=%d), %s, %s, default config, median of %d runs; ms\n\n", o.shape_name, o.shape.head_dim,
         o.dt == CG_FP16 ? "fp16" : "bf16", cg_arch_name(o.arch), o.runs);
  printf("| pattern | kernel | script -> IR | IR -> PTX | total (median) | worst run | CPU (median) | CPU (least) | PTX KiB |\n");
  printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  int bad = bench_each_pattern(ctx, argc, argv, optind, bench, &o);
  sieve_close(ctx);
  return bad;
}
