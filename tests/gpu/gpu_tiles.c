/*
** Tables at the kernel's tile (cg_attn_table_blocks): patterns that leave
** their blocks to the kernels, in identity layouts, get 192-token table
** blocks under the wide configs (192 query rows, 192-key steps), where the
** table used to be 128-token blocks and refused them. Frame windows of
** +-1 and +-3, causal, a token window and lvsa (step-dependent: its tables
** come from the GPU builder, at the same blocks) at their defaults and at
** each wide config, by predicate and by bitmask; ragged shapes whose frames
** straddle the tiles, text before and after, both dtypes and head dims,
** BSHD strides, two batch elements with runtime text lengths; the 8-warp
** stand-in (SIEVE_TMA=0) on the same tables, which runs 64-row or 64-key
** tiles in them; and static tables built by the GPU builder (SIEVE_TABLES=
** gpu), with and without bitmasks. On sm_80 the wide configs are refused and the defaults keep
** 128-token tables: the cases run there at the defaults only.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "gpu_tiles.h"

/* The last of each: P through shared memory (ws_p_shared). */
static const sieve_config wide64[] = {{0, 0, 0, 0}, {192, 128, 16, 2}, {128, 192, 12, 2}, {192, 64, 16, 3}, {192, 192, 16, 2}};
static const sieve_config wide128[] = {{0, 0, 0, 0}, {128, 192, 12, 2}, {192, 64, 16, 2}, {128, 64, 12, 4}, {192, 128, 16, 2}};

static void run(gpu_env *env, gpu_case *c, const char *partial) {
  if (!env->wgmma && c->cfg.warps) return;
  if (partial) setenv("SIEVE_PARTIAL", partial, 1);
  gpu_attention_case(env, c);
  unsetenv("SIEVE_PARTIAL");
}

void gpu_tiles(gpu_env *env) {
  static const int lens[2] = {0, 29};
  static const struct { const char *pat, *param; int step; } pats[] = {
    {"frame_window", "window=1", 0}, {"frame_window", "window=3", 0}, {"causal", NULL, 0},
    {"token_window", "window=300", 0}, {"lvsa", GPU_LVSA_ROT, 20},
  };
  for (size_t p = 0; p < sizeof pats / sizeof *pats; p++)
    for (int d = 0; d < 2; d++)
      for (size_t i = 0; i < sizeof wide64 / sizeof *wide64; i++) {
        sieve_config cfg = d ? wide128[i] : wide64[i];
        int odd = (int)(p + i + d) % 2;
        /* 13 x 19 = 247 tokens a frame: no tile lines up with a frame edge */
        gpu_case c = {.pattern = pats[p].pat, .params = {pats[p].param}, .shape = gpu_shape(7, 13, 19, 77, odd, 2, d ? 128 : 64),
                      .dtype = odd ? SIEVE_FP16 : SIEVE_BF16, .bshd = odd, .cfg = cfg, .sample_rows = 128,
                      .step = pats[p].step, .layer = 2};
        run(env, &c, NULL);
        /* the other way of masking partial blocks (lvsa's GPU tables have no bitmasks) */
        if (i < 2 && pats[p].step == 0) run(env, &c, odd ? "predicate" : "bitmask");
        if (i == 1) {
          gpu_case t = {.pattern = pats[p].pat, .params = {pats[p].param}, .shape = gpu_shape(3, 9, 11, 40, !odd, 2, d ? 128 : 64),
                        .dtype = SIEVE_BF16, .cfg = cfg, .text_valid = lens, .step = pats[p].step, .layer = 2};
          t.shape.batch = 2;
          run(env, &t, NULL);
        }
      }
  if (!env->wgmma) return;
  /* The stand-in on 192-token tables: 64 rows on 4 warps under 192-row
  ** blocks, 64-key steps under 192-key blocks. */
  setenv("SIEVE_TMA", "0", 1);
  for (int d = 0; d < 2; d++) {
    gpu_case c = {.pattern = "frame_window", .shape = gpu_shape(5, 12, 20, 40, 1, 2, d ? 128 : 64), .dtype = SIEVE_BF16,
                  .cfg = d ? wide128[1] : wide64[1], .bshd = 1, .sample_rows = 96};
    gpu_attention_case(env, &c);
  }
  unsetenv("SIEVE_TMA");
  /* Static tables from the GPU builder at 192-token blocks, by predicate
  ** and by bitmask. */
  setenv("SIEVE_TABLES", "gpu", 1);
  for (int d = 0; d < 4; d++) {
    gpu_case c = {.pattern = "frame_window", .params = {"window=2"}, .shape = gpu_shape(6, 11, 17, 30, d % 2, 2, d % 2 ? 128 : 64),
                  .dtype = SIEVE_BF16, .cfg = d % 2 ? wide128[1] : wide64[1], .sample_rows = 128};
    run(env, &c, d < 2 ? "predicate" : "bitmask");
  }
  unsetenv("SIEVE_TABLES");
}

/* Small cases of the same for the memory, race and barrier checkers. */
void gpu_tiles_sanitize(gpu_env *env) {
  static const int lens[1] = {7};
  static const struct { const char *pat; sieve_config cfg; int d; const char *partial; int step; } cases[] = {
    {"frame_window", {0, 0, 0, 0}, 64, NULL, 0},       {"frame_window", {0, 0, 0, 0}, 128, NULL, 0},
    {"frame_window", {192, 128, 16, 2}, 64, "predicate", 0}, {"causal", {128, 192, 12, 2}, 128, "bitmask", 0},
    {"lvsa", {0, 0, 0, 0}, 128, NULL, 20},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    gpu_case c = {.pattern = cases[i].pat, .params = {strcmp(cases[i].pat, "lvsa") ? NULL : GPU_LVSA_ROT},
                  .shape = gpu_shape(3, 11, 13, 13, (int)i % 2, 2, cases[i].d), .dtype = SIEVE_BF16,
                  .cfg = cases[i].cfg, .text_valid = lens, .step = cases[i].step, .layer = 2};
    run(env, &c, cases[i].partial);
  }
}
