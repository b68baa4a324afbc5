/*
** One consumer warpgroup (8 warps over 64 rows, sm_90a: CG_WS1_WARPS), the
** kernel of 64-token query blocks that are not merged: dense on its tile
** tables at 64-, 128- and 192-key steps and 2-3 stages; dilated at its
** own 64-token blocks by predicate, by bitmask and both in one kernel
** (radial, whose temporal class is transposed: the permute path); the
** default of SIEVE_MERGE_ROWS=0; the 4-warp stand-in for tensors TMA
** cannot map. Ragged shapes, text before and after, both dtypes and head
** dims, BSHD strides, runtime text lengths. A search's blocks (AdaSpa)
** take it by default: the dyn and search groups run them. sm_80 refuses
** the config (test_attn_gen), so the group runs on sm_90a only.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <stdlib.h>

#include "gpu.h"

static void run(gpu_env *env, gpu_case *c, const char *partial) {
  if (partial) setenv("SIEVE_PARTIAL", partial, 1);
  gpu_attention_case(env, c);
  unsetenv("SIEVE_PARTIAL");
}

void gpu_one(gpu_env *env) {
  if (!env->wgmma) return;
  static const int lens[2] = {5, 13};
  static const struct { int d; sieve_config cfg; } dense[] = {
    {128, {64, 64, 8, 2}}, {128, {64, 128, 8, 2}}, {64, {64, 128, 8, 3}}, {64, {64, 192, 8, 2}},
  };
  for (size_t i = 0; i < sizeof dense / sizeof *dense; i++) {
    gpu_case c = {.pattern = "dense", .shape = gpu_shape(5, 12, 20, 40, (int)i % 2, 2, dense[i].d),
                  .dtype = i % 2 ? SIEVE_FP16 : SIEVE_BF16, .bshd = (int)i % 2, .cfg = dense[i].cfg, .sample_rows = 96};
    run(env, &c, NULL);
    gpu_case t = {.pattern = "dense", .shape = gpu_shape(3, 9, 11, 40, 1 - (int)i % 2, 2, dense[i].d),
                  .dtype = SIEVE_BF16, .cfg = dense[i].cfg, .text_valid = lens};
    t.shape.batch = 2;
    run(env, &t, NULL);
  }
  static const struct { const char *pat, *partial; int d; sieve_config cfg; } masked[] = {
    {"../bench/patterns/dilated", "predicate", 128, {64, 64, 8, 2}},
    {"../bench/patterns/dilated", "bitmask", 64, {64, 64, 8, 3}},
    {"../bench/patterns/dilated", "auto", 128, {64, 64, 8, 3}},
    {"../bench/patterns/radial", "auto", 64, {64, 64, 8, 2}},
    {"../bench/patterns/radial", "bitmask:1", 128, {64, 64, 8, 2}},
  };
  for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
    gpu_case small = {.pattern = masked[i].pat, .shape = gpu_shape(3, 5, 7, 13, 0, 3, masked[i].d),
                      .dtype = SIEVE_BF16, .cfg = masked[i].cfg, .text_valid = lens};
    small.shape.batch = 2;
    run(env, &small, masked[i].partial);
    gpu_case big = {.pattern = masked[i].pat, .shape = gpu_shape(7, 18, 30, 77, (int)i % 2, 2, masked[i].d),
                    .dtype = i % 2 ? SIEVE_FP16 : SIEVE_BF16, .bshd = (int)i % 2, .cfg = masked[i].cfg,
                    .sample_rows = 128};
    run(env, &big, masked[i].partial);
  }
  /* The default config of blocks left unmerged. */
  setenv("SIEVE_MERGE_ROWS", "0", 1);
  gpu_case def = {.pattern = "../bench/patterns/radial", .shape = gpu_shape(6, 11, 17, 29, 0, 2, 128),
                  .dtype = SIEVE_BF16, .sample_rows = 128, .text_valid = lens};
  def.shape.batch = 2;
  run(env, &def, NULL);
  unsetenv("SIEVE_MERGE_ROWS");
  /* The stand-in (4 warps of 64 rows) on the same tables. */
  setenv("SIEVE_TMA", "0", 1);
  gpu_case fb = {.pattern = "../bench/patterns/dilated", .shape = gpu_shape(5, 12, 20, 40, 1, 2, 128),
                 .dtype = SIEVE_BF16, .bshd = 1, .cfg = {64, 64, 8, 2}, .sample_rows = 64};
  run(env, &fb, "auto");
  unsetenv("SIEVE_TMA");
}

void gpu_one_sanitize(gpu_env *env) {
  if (!env->wgmma) return;
  static const int lens[1] = {7};
  static const struct { const char *pat, *partial; int d; sieve_config cfg; } cases[] = {
    {"dense", NULL, 128, {64, 64, 8, 2}},
    {"../bench/patterns/dilated", "bitmask", 64, {64, 64, 8, 3}},
    {"../bench/patterns/radial", "auto", 128, {64, 64, 8, 2}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    gpu_case c = {.pattern = cases[i].pat, .shape = gpu_shape(3, 16, 16, 13, (int)i % 2, 2, cases[i].d),
                  .dtype = SIEVE_BF16, .cfg = cases[i].cfg, .text_valid = lens};
    run(env, &c, cases[i].partial);
  }
}
