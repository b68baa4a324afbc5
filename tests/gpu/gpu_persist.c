/*
** The persistent grid of the warp-specialised kernel (cg_attn_sched.h):
** both schedules on ragged shapes (several tiles per CTA, the last ones
** short), text before and after the video, runtime text lengths, batch 2,
** both dtypes and head dims, dense and masked patterns with uneven rows,
** against the float64 reference. Each plan runs three times, outputs
** poisoned before each: the atomic schedule's counter must be back at zero
** for the next launch, or tiles go unwritten. The tile order is the
** table's, longest first, so ragged rows come out of order.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gpu.h"
#include "rt_check.h"

static sieve_shape shp(int T, int Y, int X, int text, int after, int H, int D, int B) {
  return (sieve_shape){.batch = B, .heads = H, .head_dim = D, .frames = T, .height = Y,
                       .width = X, .text = text, .text_after = after};
}

static void run3(gpu_env *env, const gpu_case *c, const char *label) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.lua", env->patterns, c->pattern);
  const char *ov[5] = {c->params[0], c->params[1], c->params[2], c->params[3], NULL};
  sieve_pattern *pat = NULL;
  sieve_plan *plan = NULL;
  if (sieve_pattern_load(env->ctx, path, ov, &pat) || sieve_plan_create(env->ctx, pat, &c->shape, c->dtype, &c->cfg, &plan)) {
    printf("FAIL %s: %s\n", label, sieve_errmsg(env->ctx));
    env->failed++;
    sieve_pattern_free(pat);
    return;
  }
  rt_plan *p = api_plan_of(plan);
  const cg_attn_spec *ps = rt_plan_spec_of(p);
  rt_check_opts o = {.bshd = c->bshd, .rows = c->sample_rows, .step = c->step, .layer = c->layer,
                     .seed = env->seed ^ (cg_hash_bytes(label, strlen(label)) | 1), .text_valid = c->text_valid};
  rt_check *chk = NULL;
  cg_err e = {0};
  int ok = !rt_check_new(ps->pattern, &ps->shape, ps->dtype, &o, &chk, &e);
  rt_check_result r = {0};
  for (int run = 0; ok && run < 3; run++) {
    if (rt_check_run(chk, p, &r, &e)) ok = 0;
    else if (!r.pass) break;
  }
  const char *kern = rt_plan_kernel(p);
  if (!ok) {
    printf("FAIL %s [%s]: check: %s\n", label, kern, e.msg);
    env->failed++;
  } else if (!r.pass || rt_plan_stats_of(p)->stand_ins) {
    printf("FAIL %s [%s]: O rel %.2e, LSE rel %.2e, %lld unwritten or non-finite%s\n", label, kern, r.err_o, r.err_lse,
           (long long)(r.bad_o + r.bad_lse), rt_plan_stats_of(p)->stand_ins ? ", ran the stand-in" : "");
    env->failed++;
  } else {
    printf("pass %s [%s]: O rel %.2e (tol %.0e), LSE rel %.2e, %lld rows, density %.3f, 3 runs\n", label, kern, r.err_o,
           r.tol_o, r.err_lse, (long long)r.rows, r.density);
    env->passed++;
  }
  rt_check_free(chk);
  sieve_plan_free(plan);
  sieve_pattern_free(pat);
  fflush(stdout);
}

static void one(gpu_env *env, gpu_case c) {
  char label[256];
  const sieve_shape *s = &c.shape;
  snprintf(label, sizeof label, "persist %s%s%s T%dY%dX%d+%d%s B%d H%d D%d %s%s cfg %d/%d/%d/%d/%d%s", c.pattern,
           c.params[0] ? " " : "", c.params[0] ? c.params[0] : "", s->frames, s->height, s->width, s->text,
           s->text_after ? "a" : "", s->batch, s->heads, s->head_dim, c.dtype == SIEVE_FP16 ? "fp16" : "bf16",
           c.bshd ? " BSHD" : "", c.cfg.block_m, c.cfg.block_n, c.cfg.warps, c.cfg.stages, c.cfg.sched,
           c.text_valid ? " text lengths" : "");
  run3(env, &c, label);
}

void gpu_persist(gpu_env *env) {
  if (!env->wgmma) {
    printf("persist: sm_90a only, skipped\n");
    return;
  }
  static const int lens[2] = {0, 29};
  /* Three CTAs, so that each runs many tiles of these small shapes. */
  setenv("SIEVE_SCHED_CTAS", "3", 1);
  for (int sched = 1; sched <= 2; sched++) {
    sieve_config d64 = {192, 128, 16, 2, sched}, d128 = {128, 192, 12, 2, sched}, mid = {128, 128, 12, 2, sched};
    /* Dense at the wide defaults: ragged, text after, BSHD, both dtypes. */
    one(env, (gpu_case){.pattern = "dense", .shape = shp(5, 12, 20, 40, 1, 3, 64, 1), .dtype = SIEVE_BF16,
                        .bshd = 1, .cfg = d64, .sample_rows = 96});
    one(env, (gpu_case){.pattern = "dense", .shape = shp(5, 12, 20, 40, 0, 3, 128, 1), .dtype = SIEVE_FP16,
                        .cfg = d128, .sample_rows = 96});
    /* P through shared memory (ws_p_shared), both head sizes. */
    one(env, (gpu_case){.pattern = "dense", .shape = shp(5, 12, 20, 40, 1, 3, 64, 1), .dtype = SIEVE_BF16,
                        .cfg = {192, 192, 16, 2, sched}, .sample_rows = 96});
    one(env, (gpu_case){.pattern = "frame_window", .shape = shp(6, 12, 16, 23, 0, 3, 128, 2), .dtype = SIEVE_FP16,
                        .cfg = {192, 128, 16, 2, sched}, .sample_rows = 64});
    /* Batch 2 with runtime text lengths: items past the first batch element. */
    one(env, (gpu_case){.pattern = "dense", .shape = shp(3, 9, 11, 40, sched - 1, 2, 128, 2), .dtype = SIEVE_BF16,
                        .cfg = d128, .text_valid = lens});
    one(env, (gpu_case){.pattern = "dense", .shape = shp(3, 9, 11, 40, 1, 2, 64, 2), .dtype = SIEVE_FP16,
                        .cfg = d64, .text_valid = lens});
    /* Uneven rows: windows (short rows at the ends), causal (rows of every
    ** length), lvsa (a mask with a row part), token windows. */
    const char *pats[] = {"frame_window", "causal", "lvsa", "token_window"};
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
      for (int d = 64; d <= 128; d *= 2)
        one(env, (gpu_case){.pattern = pats[i], .params = {strcmp(pats[i], "lvsa") ? NULL : GPU_LVSA_ROT},
                            .shape = shp(6, 12, 16, 23, (int)i % 2, 3, d, 1 + (int)i % 2),
                            .dtype = d == 64 ? SIEVE_FP16 : SIEVE_BF16, .bshd = d == 64, .cfg = mid,
                            .sample_rows = 64, .step = 20, .layer = 2});
    /* 192-key steps by bitmask (cg_attn_bits' choice on wide configs),
    ** text after, batch 2 with text lengths: the consumers read the table
    ** row from the running tile's words at every step (cg_attn.c:
    ** ws_run_row). */
    one(env, (gpu_case){.pattern = "frame_window", .shape = shp(6, 12, 16, 40, 1, 3, 128, 2), .dtype = SIEVE_BF16,
                        .cfg = d128, .sample_rows = 64, .text_valid = lens});
    /* Rows of four lengths on the three-warpgroup config: between tiles
    ** the ring realigns by steps that move nothing (ws_realign). */
    one(env, (gpu_case){.pattern = "causal", .shape = shp(4, 12, 16, 23, 0, 2, 64, 1), .dtype = SIEVE_BF16,
                        .cfg = d64, .sample_rows = 64, .step = 20, .layer = 2});
    /* Partial blocks by bitmask on 384-token blocks, text lengths, and a
    ** shape whose tiles outnumber any grid several times. */
    one(env, (gpu_case){.pattern = "../bench/patterns/dilated", .params = {"block=384"},
                        .shape = shp(7, 18, 30, 77, 1, 2, 64, 2), .dtype = SIEVE_BF16, .cfg = d64,
                        .sample_rows = 128, .text_valid = lens});
    setenv("SIEVE_SCHED_CTAS", "0", 1);
    one(env, (gpu_case){.pattern = "frame_window", .shape = shp(21, 30, 52, 0, 0, 4, 128, 1), .dtype = SIEVE_BF16,
                        .cfg = mid, .sample_rows = 16});
    setenv("SIEVE_SCHED_CTAS", "3", 1);
  }
  /* The layout permute's TMA kernel, persistent: transposed head classes. */
  one(env, (gpu_case){.pattern = "svg", .shape = shp(5, 12, 20, 40, 1, 4, 128, 1), .dtype = SIEVE_BF16,
                      .cfg = {128, 128, 12, 2, 2}, .sample_rows = 64, .step = 20, .layer = 2});
  unsetenv("SIEVE_SCHED_CTAS");
}

/* Small cases for compute-sanitizer: both schedules, both warp counts. */
void gpu_persist_sanitize(gpu_env *env) {
  if (!env->wgmma) return;
  static const int lens[1] = {7};
  setenv("SIEVE_SCHED_CTAS", "2", 1);
  for (int sched = 1; sched <= 2; sched++) {
    one(env, (gpu_case){.pattern = "dense", .shape = shp(3, 16, 16, 13, 1, 2, 64, 1), .dtype = SIEVE_BF16,
                        .cfg = {192, 128, 16, 2, sched}, .text_valid = lens});
    one(env, (gpu_case){.pattern = "dense", .shape = shp(3, 16, 16, 13, 0, 2, 128, 1), .dtype = SIEVE_BF16,
                        .cfg = {128, 192, 12, 2, sched}, .text_valid = lens});
    one(env, (gpu_case){.pattern = "frame_window", .shape = shp(4, 16, 16, 13, 0, 2, 128, 2), .dtype = SIEVE_FP16,
                        .cfg = {128, 128, 12, 2, sched}});
    /* By bitmask: the running tile's words read at every step. */
    one(env, (gpu_case){.pattern = "frame_window", .shape = shp(4, 16, 16, 13, 0, 2, 128, 1), .dtype = SIEVE_BF16,
                        .cfg = {128, 192, 12, 2, sched}});
    /* P through shared memory (ws_p_shared): its tile written and read
    ** again on every step, across tiles of the persistent grid. */
    one(env, (gpu_case){.pattern = "dense", .shape = shp(3, 16, 16, 13, 1, 2, 64, 1), .dtype = SIEVE_BF16,
                        .cfg = {192, 192, 16, 2, sched}, .text_valid = lens});
    one(env, (gpu_case){.pattern = "frame_window", .shape = shp(4, 12, 16, 13, 0, 2, 128, 1), .dtype = SIEVE_FP16,
                        .cfg = {192, 128, 16, 2, sched}});
    /* Rows of 3, 5 and 7 steps on a CTA (the frame window's are even):
    ** realignments of the ring by 1 and 3 steps (ws_realign). */
    one(env, (gpu_case){.pattern = "causal", .shape = shp(3, 16, 16, 13, 0, 2, 128, 1), .dtype = SIEVE_BF16,
                        .cfg = {128, 128, 12, 2, sched}});
  }
  unsetenv("SIEVE_SCHED_CTAS");
}
