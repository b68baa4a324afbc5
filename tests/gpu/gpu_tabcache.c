/*
** Static block tables from the disk cache (runtime/rt_plan_tabcache.c):
** each case runs twice with SIEVE_TABLE_CACHE=1 (every host-built static
** table kept), the second plan must upload the tables the first kept
** (or found) without building them, and both must match the float64
** reference, on fresh inputs each. Bitmask tables at merged rows
** (radial, its temporal class transposed: the permute), a layout that
** sieve.layout.auto chose and the cache entry brings back (dilated),
** tiles (sta), classes by head (svg), a frame window at the kernel's tile
** and the one consumer warpgroup's 64-row tables; text before and after,
** runtime text lengths, both dtypes and head dims. SIEVE_TABLES is
** cleared for the group: tables the GPU builds are never cached.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

void gpu_tabcache(gpu_env *env) {
  static const int lens[2] = {5, 13};
  static const struct { const char *pat, *param; int d; sieve_config cfg; } cases[] = {
    {"../bench/patterns/radial", NULL, 128, {0, 0, 0, 0}},
    {"../bench/patterns/dilated", "layout=auto", 64, {0, 0, 0, 0}},
    {"sta", NULL, 128, {0, 0, 0, 0}},
    {"svg", NULL, 64, {0, 0, 0, 0}},
    {"frame_window", NULL, 128, {0, 0, 0, 0}},
    {"../bench/patterns/dilated", NULL, 128, {64, 64, 8, 2}},
  };
  static const char *const vars[2] = {"SIEVE_TABLES", "SIEVE_TABLE_CACHE"};
  char *keep[2];
  for (int v = 0; v < 2; v++) {
    const char *had = getenv(vars[v]);
    keep[v] = had ? strdup(had) : NULL;
  }
  unsetenv("SIEVE_TABLES");
  setenv("SIEVE_TABLE_CACHE", "1", 1);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (!env->wgmma && cases[i].cfg.warps) continue;  /* one consumer warpgroup: sm_90a */
    gpu_case c = {.pattern = cases[i].pat, .params = {cases[i].param},
                  .shape = gpu_shape(7, 18, 30, 77, (int)i % 2, 2, cases[i].d),
                  .dtype = i % 2 ? SIEVE_FP16 : SIEVE_BF16, .cfg = cases[i].cfg, .sample_rows = 128,
                  .text_valid = lens};
    c.shape.batch = 2;
    gpu_attention_case(env, &c);
    c.cached_tables = 1;
    gpu_attention_case(env, &c);
  }
  for (int v = 0; v < 2; v++) {
    if (keep[v]) setenv(vars[v], keep[v], 1);
    else unsetenv(vars[v]);
    free(keep[v]);
  }
}
