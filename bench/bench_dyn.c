/*
** The cost of the dynamic-pattern kernels beside the attention they steer,
** on one GPU, for one preset shape (default hunyuan-720p), bf16:
**
**   lvsa    GPU block-table build of a new step (median of 50, CUDA events)
**           against the CPU build (median of 3) and the lvsa attention
**           kernel (rt_bench median);
**   adaspa  the search (masses + selection + packing, median of 10, CUDA
**           events) against dense attention over the allowed set, and
**           attention on the selected tables; on sm_80's kernels and, on
**           sm_90, sm_90a's (the wgmma mass kernel);
**   svg     profiling (kernels, read-back and classification, wall clock,
**           median of 5) against one step of per-class attention.
**
**   bench_dyn [--shape NAME] [PATTERN_DIR]
**
** Plans take the target they get on the device (sm_90a on sm_90); AdaSpa's
** search is also timed on sm_80's kernels there, for the comparison.
**
** Inputs are random (one head's worth repeated over the heads), so the
** selection here is near dense and the sparse time is not AdaSpa's on real
** inputs: bench/proxy.py measures that on a video-like workload.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lp.h"
#include "rt_bench.h"
#include "rt_check.h"
#include "rt_dyn.h"

typedef struct io {
  const rt_cuda *cu;
  const rt_device *dev;
  sieve_shape s;
  CUdeviceptr q, k, v, o, lse;
  sieve_tensor tq, tk, tv, to;
} io;

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[n / 2];
}
static double wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int io_open(io *b, cg_err *e) {
  const sieve_shape *s = &b->s;
  int64_t S = sieve_shape_tokens(s);
  size_t head = (size_t)S * s->head_dim, n = head * s->heads * s->batch;
  uint16_t *bits = malloc(2 * head);
  uint64_t st = 12345;
  if (!bits) return -1;
  CUdeviceptr *t[4] = {&b->q, &b->k, &b->v, &b->o};
  for (int i = 0; i < 4; i++) {
    if (RT_CU(b->cu, e, cuMemAlloc, t[i], 2 * n)) return -1;
    rt_rand_half(bits, head, CG_BF16, &st);
    for (size_t h = 0; h < n / head; h++)
      if (RT_CU(b->cu, e, cuMemcpyHtoD, *t[i] + 2 * h * head, bits, 2 * head)) return -1;
  }
  free(bits);
  if (RT_CU(b->cu, e, cuMemAlloc, &b->lse, 4 * (size_t)S * s->heads * s->batch)) return -1;
  int64_t sb = (int64_t)s->heads * S * s->head_dim;
  b->tq = (sieve_tensor){b->q, sb, S * s->head_dim, s->head_dim};
  b->tk = (sieve_tensor){b->k, sb, S * s->head_dim, s->head_dim};
  b->tv = (sieve_tensor){b->v, sb, S * s->head_dim, s->head_dim};
  b->to = (sieve_tensor){b->o, sb, S * s->head_dim, s->head_dim};
  return 0;
}

static void io_close(io *b) {
  CUdeviceptr t[5] = {b->q, b->k, b->v, b->o, b->lse};
  for (int i = 0; i < 5; i++)
    if (t[i]) RT_CU(b->cu, NULL, cuMemFree, t[i]);
}

/* The median of n timings of fn on the default stream, by CUDA events. */
typedef sieve_status (*work)(void *ud, cg_err *e);
static double event_ms(const rt_cuda *cu, work fn, void *ud, int n, cg_err *e) {
  CUevent a, b;
  double ms[64];
  if (n > 64 || RT_CU(cu, e, cuEventCreate, &a, 0) || RT_CU(cu, e, cuEventCreate, &b, 0)) return -1;
  int ok = !fn(ud, e);  /* warm-up */
  for (int i = 0; ok && i < n; i++) {
    float t = 0;
    ok = !RT_CU(cu, e, cuEventRecord, a, NULL) && !fn(ud, e) && !RT_CU(cu, e, cuEventRecord, b, NULL) &&
         !RT_CU(cu, e, cuEventSynchronize, b) && !RT_CU(cu, e, cuEventElapsedTime, &t, a, b);
    ms[i] = t;
  }
  RT_CU(cu, NULL, cuEventDestroy, a);
  RT_CU(cu, NULL, cuEventDestroy, b);
  return ok ? median(ms, n) : -1;
}

static double attention_ms(rt_plan *p, cg_err *e) {
  rt_bench_result r;
  rt_bench_opts o = {.warmup_ms = 25, .rep_ms = 300, .min_runs = 5};
  return rt_bench_plan(p, &o, &r, e) ? -1 : r.median_ms;
}

static sieve_pattern *load(sieve_ctx *ctx, const char *dir, const char *name, const char *const *ov) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.lua", dir, name);
  sieve_pattern *p = NULL;
  if (sieve_pattern_load(ctx, path, ov, &p)) printf("%s: %s\n", path, sieve_errmsg(ctx));
  return p;
}

/* ------------------------------------------------------------------ lvsa */

typedef struct tb {
  rt_dyn_tables *t;
  int step;
} tb;
static sieve_status build_step(void *ud, cg_err *e) {
  tb *x = ud;
  return rt_dyn_tables_build(x->t, ++x->step, 3, NULL, e);
}

static void bench_lvsa(io *b, sieve_pattern *sp) {
  cg_err e = {0};
  cg_pattern *p = lp_pattern_ir(sp);
  cg_arch arch = rt_plan_arch_for(b->dev);
  rt_plan_spec ps = {.pattern = p, .shape = b->s, .dtype = CG_BF16, .arch = arch, .step = 5, .layer = 3};
  rt_plan *plan = NULL;
  tb x = {NULL, 0};
  double cpu[3] = {0};
  for (int i = 0; i < 3; i++) {
    cg_tableset *ts = NULL;
    if (!cg_tables_build(p, &b->s, 7 + i, 3, &ts, &e)) cpu[i] = ts->build_ms;
    cg_tables_free(ts);
  }
  if (rt_plan_create(&ps, b->dev, NULL, &plan, &e) || rt_dyn_tables_create(p, &b->s, arch, b->dev, NULL, 0, &x.t, &e)) {
    printf("| lvsa | failed: %s |\n", e.msg);
  } else {
    double gpu = event_ms(b->cu, build_step, &x, 50, &e), attn = attention_ms(plan, &e);
    printf("| lvsa | table build, new step | GPU %.4f ms, CPU %.2f ms | attention %.2f ms (density %.3f) | %.5f |\n",
           gpu, median(cpu, 3), attn, rt_plan_density(plan), gpu / attn);
  }
  rt_dyn_tables_free(x.t);
  rt_plan_free(plan, NULL);
}

/* ---------------------------------------------------------------- adaspa */

typedef struct sb {
  rt_dyn_search *d;
  io *b;
} sb;
static sieve_status search_once(void *ud, cg_err *e) {
  sb *x = ud;
  return rt_dyn_search_run(x->d, &x->b->tq, &x->b->tk, x->b->lse, 0, NULL, e);
}
static sieve_status selected_once(void *ud, cg_err *e) {
  sb *x = ud;
  io *b = x->b;
  return rt_dyn_search_run_selected(x->d, &b->tq, &b->tk, &b->tv, &b->to, b->lse, 0, NULL, e);
}

static void bench_adaspa(io *b, sieve_pattern *sp, cg_arch arch) {
  cg_err e = {0};
  rt_plan_spec ps = {.pattern = lp_pattern_ir(sp), .shape = b->s, .dtype = CG_BF16, .arch = arch};
  rt_dyn_search *d = NULL;
  sb x = {NULL, b};
  double dense = -1, search = -1, sparse = -1, dens = 0;
  if (!rt_dyn_search_create(&ps, b->dev, NULL, &d, &e)) {
    rt_plan *plan = rt_dyn_search_plan(d);
    x.d = d;
    dense = attention_ms(plan, &e);
    if (!rt_plan_run(plan, &b->tq, &b->tk, &b->tv, &b->to, b->lse, 0, NULL, &e)) search = event_ms(b->cu, search_once, &x, 10, &e);
    rt_dyn_search_selected(d, &dens, &e);
    sparse = event_ms(b->cu, selected_once, &x, 10, &e);
  }
  if (search < 0) printf("| adaspa | failed: %s |\n", e.msg);
  else
    printf("| adaspa | search (masses, selection, packing), %s | %.3f ms | dense attention %.2f ms; on the selection "
           "%.2f ms (block density %.3f, random inputs) | %.4f |\n", cg_arch_name(arch), search, dense, sparse, dens,
           search / dense);
  rt_dyn_search_free(d);
}

/* ------------------------------------------------------------------- svg */

static void bench_svg(io *b, sieve_pattern *sp) {
  cg_err e = {0};
  rt_plan_spec ps = {.pattern = lp_pattern_ir(sp), .shape = b->s, .dtype = CG_BF16, .arch = rt_plan_arch_for(b->dev)};
  rt_dyn_profile *d = NULL;
  double prof[5], step = -1;
  int ok = !rt_dyn_profile_create(&ps, b->dev, NULL, &d, &e);
  ok = ok && !rt_dyn_profile_run(d, 0, 0, &b->tq, &b->tk, &b->tv, 0, NULL, &e);  /* warm-up */
  for (int i = 0; ok && i < 5; i++) {
    double t0 = wall_ms();
    ok = !rt_dyn_profile_run(d, 0, 0, &b->tq, &b->tk, &b->tv, 0, NULL, &e);
    prof[i] = wall_ms() - t0;
  }
  if (ok) {
    double t[5];
    for (int i = 0; ok && i < 5; i++) {
      double t0 = wall_ms();
      ok = !rt_dyn_profile_step(d, 1, 0, &b->tq, &b->tk, &b->tv, &b->to, b->lse, 0, NULL, NULL, &e) &&
           !RT_CU(b->cu, &e, cuCtxSynchronize);
      t[i] = wall_ms() - t0;
    }
    step = median(t, 5);
  }
  if (!ok) printf("| svg | failed: %s |\n", e.msg);
  else
    printf("| svg | profiling (%d rows per head, kernels + read-back) | %.3f ms | attention step %.2f ms "
           "(density %.3f) | %.4f |\n", 64, median(prof, 5), step, rt_dyn_profile_density(d), median(prof, 5) / step);
  rt_dyn_profile_free(d);
}

int main(int argc, char **argv) {
  const char *shape = "hunyuan-720p", *src = getenv("SIEVE_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/patterns", src ? src : ".");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
    else snprintf(dir, sizeof dir, "%s", argv[i]);
  }
  sieve_ctx *ctx;
  io b = {0};
  cg_err e = {0};
  static rt_device dev;
  if (sieve_open(&ctx) || sieve_shape_preset(shape, &b.s) || rt_device_open(0, &dev, &e) || rt_cuda_get(&b.cu, &e)) {
    printf("no device: %s\n", e.msg);
    return 77;
  }
  b.dev = &dev;
  if (io_open(&b, &e)) {
    printf("inputs: %s\n", e.msg);
    return 1;
  }
  printf("%s on %s, bf16\n\n| pattern | what | time | beside | ratio |\n| --- | --- | --- | --- | --- |\n", shape, dev.name);
  const char *const svg_ov[] = {"profile=true", NULL};
  /* lvsa's default is static (LVSA's examples); its step-dependent tables
  ** are those of a rotation, here sieve's over a fixed interval of 4 (the
  ** default these numbers were first taken on). */
  const char *const lv_ov[] = {"rotate_fixed=true", NULL};
  sieve_pattern *lv = load(ctx, dir, "lvsa", lv_ov), *ad = load(ctx, dir, "adaspa", NULL);
  sieve_pattern *sv = load(ctx, dir, "svg", svg_ov);
  if (lv) bench_lvsa(&b, lv);
  /* sm_90a's kernels are wgmma, sm_80's mma.sync (plans take sm_90a on sm_90). */
  if (ad) bench_adaspa(&b, ad, CG_SM80);
  if (ad && b.dev->sm_major == 9) bench_adaspa(&b, ad, CG_SM90A);
  if (sv) bench_svg(&b, sv);
  sieve_pattern_free(lv);
  sieve_pattern_free(ad);
  sieve_pattern_free(sv);
  io_close(&b);
  rt_device_close(&dev, NULL);
  sieve_close(ctx);
  return 0;
}
