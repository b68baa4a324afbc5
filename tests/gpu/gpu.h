/*
** GPU checks: generated kernels against the float64 CPU reference, through
** the public plan API and rt_check (the check `sieve check` runs). One
** executable; each case prints one line; the last line is
** "N passed, N failed". Exit 77 (skipped) when no driver or GPU answers.
*/
#ifndef GPU_H
#define GPU_H

#include <stdint.h>

#include "rt_cuda.h"
#include "sieve.h"

typedef struct gpu_env {
  sieve_ctx *ctx;
  const rt_cuda *cu;
  uint64_t seed;
  const char *patterns;   /* directory of shipped patterns */
  int passed, failed;
  int wgmma;              /* plans run the sm_90a kernels (not SIEVE_ARCH=sm_80, not another GPU) */
} gpu_env;

/* One attention check: pattern (file name in patterns/ plus overrides),
** shape, dtype, layout of the tensors, config, step/layer, rows sampled
** for the reference (0: all). */
typedef struct gpu_case {
  const char *pattern;
  const char *params[4];
  sieve_shape shape;
  sieve_dtype dtype;
  int bshd;               /* tensors [B, S, H, D] in memory instead of [B, H, S, D] */
  sieve_config cfg;
  int step, layer;
  int sample_rows;        /* per (batch, head); 0 = every row */
  const int *text_valid;  /* [batch] valid text tokens (sieve_plan_set_text_len); NULL: all */
  int cached_tables;      /* the plan must read its block tables from the disk cache */
} gpu_case;

/* lvsa as the checks below first ran it on a GPU: anchors rotating over a
** fixed interval of 4 with the step (rotate_fixed, sieve's own; lvsa's
** default until its default became LVSA's examples', which are static), so
** its tables come from the GPU builder. Same pattern IR as then. */
#define GPU_LVSA_ROT "rotate_fixed=true"

void gpu_attention_case(gpu_env *env, const gpu_case *c);

/* T frames of Y x X, text tokens (after the video or before), H heads of D, batch 1. */
static inline sieve_shape gpu_shape(int T, int Y, int X, int text, int after, int H, int D) {
  return (sieve_shape){.batch = 1, .heads = H, .head_dim = D, .frames = T, .height = Y,
                       .width = X, .text = text, .text_after = after};
}
/* rt_bench on a preset shape: sane times and TFLOP/s. */
void gpu_bench_case(gpu_env *env, const char *pattern, const char *shape_name);
/* A small rt_tune sweep in a private cache: a winner, stored, used by the next plan. */
void gpu_tune_case(gpu_env *env);
/* The persistent grid (gpu_persist.c): its checks, and small cases for compute-sanitizer. */
void gpu_persist(gpu_env *env);
void gpu_persist_sanitize(gpu_env *env);
/* One consumer warpgroup (gpu_one.c): its checks, and small cases for compute-sanitizer. */
void gpu_one(gpu_env *env);
void gpu_one_sanitize(gpu_env *env);
/* Static block tables from the disk cache (gpu_tabcache.c). */
void gpu_tabcache(gpu_env *env);

#endif
