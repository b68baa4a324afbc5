/*
** Timing and tuning on the real device: rt_bench gives sane figures, and a
** small sweep (rt_tune) in a private cache directory finds a winner that
** passes its check, stores it, and is what the next plan picks up.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "gpu.h"
#include "lp.h"
#include "rt_bench.h"
#include "rt_tune.h"

static void verdict(gpu_env *env, int ok, const char *label, const char *why) {
  printf("%s %s: %s\n", ok ? "pass" : "FAIL", label, why);
  if (ok) env->passed++;
  else env->failed++;
  fflush(stdout);
}

void gpu_bench_case(gpu_env *env, const char *pattern, const char *shape_name) {
  char path[1024], label[256], why[1200];
  sieve_shape s;
  sieve_pattern *p = NULL;
  sieve_plan *plan = NULL;
  snprintf(path, sizeof path, "%s/%s.lua", env->patterns, pattern);
  snprintf(label, sizeof label, "bench %s %s bf16", pattern, shape_name);
  sieve_shape_preset(shape_name, &s);
  if (sieve_pattern_load(env->ctx, path, NULL, &p) ||
      sieve_plan_create(env->ctx, p, &s, SIEVE_BF16, NULL, &plan)) {
    snprintf(why, sizeof why, "%s", sieve_errmsg(env->ctx));
    verdict(env, 0, label, why);
    sieve_pattern_free(p);
    return;
  }
  rt_bench_result r;
  cg_err e = {0};
  if (rt_bench_plan(api_plan_of(plan), NULL, &r, &e)) {
    verdict(env, 0, label, e.msg);
  } else {
    int ok = r.median_ms > 0 && r.min_ms <= r.median_ms && r.median_ms <= r.max_ms &&
             r.runs >= 10 && r.sets >= 2 && r.tflops > 1 && r.tflops < 2000;
    snprintf(why, sizeof why, "%.3f ms median (min %.3f, max %.3f, %d runs, %d sets), %.1f "
             "TFLOP/s on active blocks, density %.3f", r.median_ms, r.min_ms, r.max_ms, r.runs,
             r.sets, r.tflops, r.density);
    verdict(env, ok, label, why);
  }
  sieve_plan_free(plan);
  sieve_pattern_free(p);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = f ? calloc(1, 1 << 20) : NULL;
  if (buf) buf[fread(buf, 1, (1 << 20) - 1, f)] = 0;
  if (f) fclose(f);
  return buf;
}

/* The plan made next, with no config given, must carry the winner. */
static int next_plan_uses(gpu_env *env, sieve_pattern *p, const sieve_shape *s, const char *dir,
                          const cg_attn_config *want, char *why, size_t n) {
  sieve_plan *plan = NULL;
  sieve_config got = {0};
  int ok = 0;
  if (sieve_cache_set_dir(env->ctx, dir) || sieve_plan_create(env->ctx, p, s, SIEVE_BF16, NULL, &plan)) {
    snprintf(why, n, "next plan: %s", sieve_errmsg(env->ctx));
  } else {
    sieve_plan_config(plan, &got);
    ok = got.block_m == want->block_m && got.block_n == want->block_n &&
         got.warps == want->warps && got.stages == want->stages &&
         rt_plan_stats_of(api_plan_of(plan))->tuned;
    if (!ok) snprintf(why, n, "the next plan took %d/%d/%d/%d, not the winner", got.block_m,
                      got.block_n, got.warps, got.stages);
  }
  sieve_plan_free(plan);
  plan = NULL;
  /* A config naming only the schedule takes the default's kernel on it,
  ** not the tuned config (whose 4 or 8 warps have no schedule). */
  sieve_config sched = {.sched = 1};
  if (ok && env->wgmma) {
    if (sieve_plan_create(env->ctx, p, s, SIEVE_BF16, &sched, &plan)) {
      ok = 0;
      snprintf(why, n, "a plan of sched=1 alone: %s", sieve_errmsg(env->ctx));
    } else {
      sieve_plan_config(plan, &got);
      ok = got.sched == 1 && got.warps >= 12 && !rt_plan_stats_of(api_plan_of(plan))->tuned;
      if (!ok) snprintf(why, n, "a plan of sched=1 alone took %d/%d/%d/%d sched %d", got.block_m, got.block_n,
                        got.warps, got.stages, got.sched);
    }
    sieve_plan_free(plan);
  }
  sieve_cache_set_dir(env->ctx, NULL);
  return ok;
}

void gpu_tune_case(gpu_env *env) {
  const char *label = "tune frame_window T6Y16X24 H2 D128 bf16, 8 configs";
  char path[1024], dir[] = "/tmp/sieve-gpu-tune-XXXXXX", why[1400] = "", cmd[256];
  snprintf(path, sizeof path, "%s/frame_window.lua", env->patterns);
  char *src = slurp(path);
  sieve_pattern *p = NULL;
  rt_device dev = {0};
  rt_cache cache;
  cg_err e = {0};
  static rt_tune_report r;
  sieve_shape s = {.batch = 1, .heads = 2, .head_dim = 128, .frames = 6, .height = 16, .width = 24};
  int ok = 0;
  if (!src || !mkdtemp(dir) || sieve_pattern_load_string(env->ctx, path, src, NULL, &p)) {
    verdict(env, 0, label, src ? sieve_errmsg(env->ctx) : "cannot read the pattern");
    free(src);
    return;
  }
  rt_tune_setup t = {.chunk = path, .source = src, .pattern = lp_pattern_ir(p), .shape = s,
                     .dtype = CG_BF16, .arch = CG_SM80, .budget_s = 300, .seed = env->seed,
                     .store = 1};
  /* The sweep tunes the target plans get on this GPU, so the next plan finds it. */
  if (rt_tune_space_parse("bm=64,128;bn=64;warps=4,8;stages=1,2", &t.space, &e) ||
      rt_cache_open(&cache, dir, &e) || rt_device_open(0, &dev, &e) ||
      (t.arch = rt_plan_arch_for(&dev), rt_tune_run(&t, &dev, &cache, &r, &e))) {
    snprintf(why, sizeof why, "%s", e.msg);
  } else if (r.best < 0 || !r.complete || !r.stored) {
    snprintf(why, sizeof why, "best %d, complete %d, stored %d, note %s", r.best, r.complete,
             r.stored, r.note);
  } else if (next_plan_uses(env, p, &s, dir, &r.c[r.best].cfg, why, sizeof why)) {
    const rt_tune_cand *b = &r.c[r.best];
    ok = 1;
    snprintf(why, sizeof why, "winner %d/%d/%d/%d %.3f ms of %d ranked, %.1f s", b->cfg.block_m,
             b->cfg.block_n, b->cfg.warps, b->cfg.stages, b->ms, r.nranked, r.elapsed_s);
  }
  for (int i = 0; i < r.n && !ok; i++)  /* what each candidate did, to see why */
    if (r.c[i].state != RT_TUNE_OK && r.c[i].note[0]) printf("  %d/%d/%d/%d %s: %s\n",
        r.c[i].cfg.block_m, r.c[i].cfg.block_n, r.c[i].cfg.warps, r.c[i].cfg.stages,
        rt_tune_state_name(r.c[i].state), r.c[i].note);
  verdict(env, ok, label, why);
  if (dev.ctx) rt_device_close(&dev, NULL);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) printf("  (could not remove %s)\n", dir);
  sieve_pattern_free(p);
  free(src);
}
