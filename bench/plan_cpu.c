/*
** Plan creation on the CPU: what sieve_plan_create costs before the first
** launch, with the tests' stand-in GPU (tests/fake_cuda.h: an sm_90 device
** whose memory is host memory) under it, so no GPU is needed. Each run loads the script afresh (nothing of an earlier
** run's pattern is kept) and makes an sm_90a plan on one cache directory:
** the first run builds the tables and generates the kernel, the later ones
** find what the cache keeps. Times are the plan's own stats: block tables
** (built, or read from the cache), code generation; the stand-in's "link"
** costs nothing, where a driver's JIT would.
**
**   plan_cpu [--shape NAME] [--runs N] [--cache DIR] SCRIPT [name=value ...]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda.h"
#include "lp.h"
#include "rt_cache.h"
#include "rt_plan.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int usage(void) {
  fprintf(stderr, "usage: plan_cpu [--shape NAME] [--runs N] [--cache DIR] SCRIPT [name=value ...]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *shape_name = "hunyuan-720p", *dir = NULL, *script = NULL;
  const char *params[32] = {0};
  int runs = 3, np = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape_name = argv[++i];
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--cache") && i + 1 < argc) dir = argv[++i];
    else if (argv[i][0] == '-') return usage();
    else if (!script) script = argv[i];
    else if (np < 31) params[np++] = argv[i];
    else return usage();
  }
  if (!script || runs < 1) return usage();
  char tmp[] = "/tmp/sieve-plan-cpu-XXXXXX";
  if (!dir && !(dir = mkdtemp(tmp))) return perror("mkdtemp"), 1;
  fake_gpu_install();
  cg_err e = {0};
  rt_cache cache;
  rt_device dev;
  if (rt_cache_open(&cache, dir, &e) || rt_device_open(0, &dev, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
  printf("%s at %s, sm_90a plans on a stand-in driver, cache %s\n", script, shape_name, dir);
  for (int r = 0; r < runs; r++) {
    sieve_ctx *ctx;
    sieve_pattern *pat;
    sieve_shape s;
    if (sieve_open(&ctx)) return 1;
    if (sieve_pattern_load(ctx, script, params, &pat) || sieve_shape_preset(shape_name, &s))
      return fprintf(stderr, "%s\n", sieve_errmsg(ctx)), 1;
    rt_plan_spec spec = {.pattern = lp_pattern_ir(pat), .shape = s, .dtype = CG_BF16, .arch = CG_SM90A};
    rt_plan *p = NULL;
    double t0 = now_ms();
    if (rt_plan_create(&spec, &dev, &cache, &p, &e)) return fprintf(stderr, "plan: %s\n", e.msg), 1;
    const rt_plan_stats *st = rt_plan_stats_of(p);
    printf("run %d: plan %.1f ms; tables %.1f ms (%s); kernel %s (codegen %.0f ms)%s%s\n", r, now_ms() - t0,
           st->tables_ms, st->tables_from_cache ? "from the cache" : "built", st->from_cache ? "from the cache" : "generated",
           st->codegen_ms, *st->cache_note ? "; " : "", st->cache_note);
    rt_plan_free(p, NULL);
    sieve_pattern_free(pat);
    sieve_close(ctx);
  }
  rt_device_close(&dev, NULL);
  fake_gpu_remove();
  if (dir == tmp) {  /* a directory of its own: nothing left behind */
    rt_cache_clear(&cache, NULL, NULL);
    rmdir(tmp);
  }
  return 0;
}
