/*
** The GPU check list. Every shipped pattern on a small shape with text
** tokens (all rows checked) and on a ragged medium shape with BSHD strides
** and the other dtype and head dim (sampled rows); a config sweep; real
** model shapes with sampled rows; step/layer-dependent patterns away from
** step 0; then timing (rt_bench), a small tuning sweep (rt_tune), and the
** dynamic patterns' kernels (GPU table builder, AdaSpa search, SVG
** profiling). SIEVE_ARCH=sm_80 runs it all on the mma.sync kernels. Seed: SIEVE_SEED, else the clock (printed, to reproduce). An
** argument picks groups: shipped,textlen,configs,wide,persist,tiletab,bitmasks,merged,permute,models,bench,tune,dyn
** (default: all but sanitize, wsan, psan and tsan, which bench/gpu.sh runs under
** compute-sanitizer); profile is dyn's SVG profiling and STA mask-search
** checks alone; gtab the GPU table builder on every shipped pattern (timed
** on hunyuan-720p), and gtab_small its small shapes alone; rescale the
** warp-specialised groups with O's rescale moved both ways
** (SIEVE_RESCALE_UNDER_S), rescalesan their sanitizer sets.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu.h"
#include "gpu_dyn.h"
#include "gpu_tiles.h"

static const char *patterns[] = {"dense", "causal", "token_window", "frame_window",
                                 "lvsa", "svg", "sta", "adaspa"};

static void shipped(gpu_env *env) {
  for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
    gpu_case small = {.pattern = patterns[i], .shape = gpu_shape(3, 5, 7, 13, 0, 3, 64),
                      .dtype = SIEVE_BF16};
    small.shape.batch = 2;
    gpu_attention_case(env, &small);
    gpu_case medium = {.pattern = patterns[i], .shape = gpu_shape(5, 12, 20, 40, 1, 4, 128),
                       .dtype = SIEVE_FP16, .bshd = 1, .sample_rows = 96, .step = 3, .layer = 5};
    gpu_attention_case(env, &medium);
  }
  /* lvsa at its training length: every frame an anchor, the mask folds to
  ** true and the plan runs the dense kernel (rt_plan_folded), checked
  ** against lvsa's own mask at a step its anchors have moved, with part of
  ** the text valid. */
  static const int part[2] = {17, 40};
  gpu_case folded = {.pattern = "lvsa", .params = {"train_frames=5", "rotate=true", "window=1"},
                     .shape = gpu_shape(5, 12, 20, 40, 1, 4, 128), .dtype = SIEVE_BF16, .sample_rows = 96,
                     .text_valid = part, .step = 7, .layer = 3};
  folded.shape.batch = 2;
  gpu_attention_case(env, &folded);
  /* Text rows that may attend to nothing: O = 0 and LSE = -inf, never NaN,
  ** with the text before and after the video and a ragged last block. */
  for (int after = 0; after < 2; after++) {
    gpu_case empty = {.pattern = "frame_window", .params = {"text=false"},
                      .shape = gpu_shape(4, 9, 11, 150, after, 2, 64), .dtype = SIEVE_BF16};
    gpu_attention_case(env, &empty);
  }
}

/*
** The prompt's real length as a kernel argument: one plan, several lengths
** per batch element (none, part, all of the text), against the float64
** reference that leaves the padding out. Text before and after the video,
** every layout (identity, transpose, tiles), a ragged last block; step 20,
** layer 2, past the seeds' dense warm-ups.
*/
static void textlen(gpu_env *env) {
  static const int lens[][2] = {{0, 13}, {5, 1}, {13, 12}};
  const char *pats[] = {"dense", "frame_window", "svg", "sta", "lvsa"};
  for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
    for (int after = 0; after < 2; after++)
      for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
        gpu_case c = {.pattern = pats[i], .params = {strcmp(pats[i], "lvsa") ? NULL : GPU_LVSA_ROT},
                      .shape = gpu_shape(3, 5, 7, 13, after, 3, 64), .dtype = SIEVE_BF16,
                      .text_valid = lens[l], .step = 20, .layer = 2};
        c.shape.batch = 2;
        gpu_attention_case(env, &c);
      }
  static const int big[2] = {77, 256};
  gpu_case h = {.pattern = "svg", .params = {"budget=0.6"}, .shape = gpu_shape(5, 12, 20, 256, 1, 4, 128), .dtype = SIEVE_FP16,
                .bshd = 1, .sample_rows = 96, .text_valid = big, .step = 20, .layer = 2};
  h.shape.batch = 2;
  gpu_attention_case(env, &h);
}

static void configs(gpu_env *env) {
  static const sieve_config cfgs[] = {
      {64, 32, 4, 1}, {64, 64, 4, 2}, {64, 128, 4, 3}, {128, 32, 8, 2},
      {128, 64, 4, 2}, {128, 64, 8, 3}, {128, 128, 8, 2}, {128, 32, 4, 1},
      {128, 128, 12, 2}, {128, 64, 12, 2}, {128, 128, 12, 3}, {128, 64, 12, 1}};
  for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
    /* 12 warps is the sm_90a TMA kernel; plans refuse it elsewhere
    ** (test_attn_gen checks the refusal). */
    if (!env->wgmma && cfgs[i].warps == 12) continue;
    gpu_case c = {.pattern = "frame_window", .params = {"window=1"},
                  .shape = gpu_shape(6, 16, 24, 0, 0, 2, 128), .dtype = SIEVE_BF16,
                  .cfg = cfgs[i], .sample_rows = 64};
    gpu_attention_case(env, &c);
    c.shape.head_dim = 64;
    c.dtype = SIEVE_FP16;
    gpu_attention_case(env, &c);
  }
  /* The TMA kernel's stand-in for tensors TMA cannot map: forced, with
  ** BSHD strides, a ragged sequence and text rows. */
  if (!env->wgmma) return;
  setenv("SIEVE_TMA", "0", 1);
  for (int d = 64; d <= 128; d *= 2) {
    gpu_case c = {.pattern = "frame_window", .shape = gpu_shape(5, 12, 20, 40, 1, 2, d), .dtype = SIEVE_BF16,
                  .cfg = {128, 128, 12, 2}, .bshd = 1, .sample_rows = 64};
    gpu_attention_case(env, &c);
  }
  unsetenv("SIEVE_TMA");
}

/*
** The warp-specialised kernel's wide configs: three consumer warpgroups
** (192 query rows) and 192-key steps, on 384-token table blocks (dense as
** shipped; dilated with block=384 for partial blocks, by predicate and by
** bitmask), ragged with text before and after, BSHD strides, both dtypes,
** the runtime text length, and a ragged tail the kernel trims (S not a
** multiple of the key step). The last row's configs keep P in shared
** memory (ws_p_shared): 192-key steps at D64, 128 at D128.
*/
static const sieve_config wide_cfgs[][2] = {
    /* D64, D128 */
    {{192, 128, 16, 2}, {192, 64, 16, 3}},
    {{192, 64, 16, 3}, {192, 64, 16, 2}},
    {{192, 128, 16, 4}, {128, 192, 12, 2}},
    {{128, 192, 12, 2}, {128, 128, 12, 2}},
    {{128, 192, 12, 3}, {128, 64, 12, 4}},
    {{192, 192, 16, 2}, {192, 128, 16, 2}},
};

static void wide(gpu_env *env) {
  static const int lens[2] = {0, 29};
  if (!env->wgmma) return;  /* 12 and 16 warps: the sm_90a kernel alone */
  for (size_t i = 0; i < sizeof wide_cfgs / sizeof *wide_cfgs; i++)
    for (int d = 0; d < 2; d++) {
      sieve_config cfg = wide_cfgs[i][d];
      gpu_case c = {.pattern = "dense", .shape = gpu_shape(5, 12, 20, 40, (int)i % 2, 2, d ? 128 : 64),
                    .dtype = d ? SIEVE_FP16 : SIEVE_BF16, .bshd = (int)i % 2, .cfg = cfg, .sample_rows = 96};
      gpu_attention_case(env, &c);
      gpu_case t = {.pattern = "dense", .shape = gpu_shape(3, 9, 11, 40, (int)i % 2, 2, d ? 128 : 64),
                    .dtype = SIEVE_BF16, .cfg = cfg, .text_valid = lens};
      t.shape.batch = 2;
      gpu_attention_case(env, &t);
      gpu_case m = {.pattern = "../bench/patterns/dilated", .params = {"block=384"},
                    .shape = gpu_shape(7, 18, 30, 77, 1, 2, d ? 128 : 64), .dtype = SIEVE_BF16, .cfg = cfg,
                    .sample_rows = 128};
      gpu_attention_case(env, &m);
      setenv("SIEVE_PARTIAL", "auto", 1);
      m.text_valid = lens;
      m.shape.batch = 2;
      gpu_attention_case(env, &m);
      unsetenv("SIEVE_PARTIAL");
    }
  /* The stand-in for tensors TMA cannot map (8 warps, 128 rows, at most
  ** 128-key steps): a grid of its own under a wide config. */
  setenv("SIEVE_TMA", "0", 1);
  for (int d = 0; d < 2; d++) {
    gpu_case c = {.pattern = "dense", .shape = gpu_shape(5, 12, 20, 40, 1, 2, d ? 128 : 64), .dtype = SIEVE_BF16,
                  .cfg = wide_cfgs[d ? 2 : 0][d], .bshd = 1, .sample_rows = 64};
    gpu_attention_case(env, &c);
  }
  unsetenv("SIEVE_TMA");
}

/*
** Where partial-block bitmasks went wrong on 384-token blocks (2026-12-04:
** dilated block=384, text after the video, runtime text lengths 0 and 29,
** every config): the same case taken apart by block size, text side,
** batch, text lengths and bitmask or predicate, at the old default config.
*/
static void bits_debug(gpu_env *env) {
  static const int lens[2] = {0, 29}, full[2] = {77, 77};
  static const struct { const char *block, *partial; int after, batch; const int *lens; } cases[] = {
    {"block=384", "auto", 1, 2, lens}, {"block=384", NULL, 1, 2, lens},     {"block=128", "auto", 1, 2, lens},
    {"block=128", NULL, 1, 2, lens},   {"block=384", "auto", 0, 2, lens},   {"block=384", "auto", 1, 1, NULL},
    {"block=384", "auto", 1, 2, NULL}, {"block=384", "auto", 1, 2, full},   {"block=384", "auto", 1, 1, lens + 1},
    {"block=256", "auto", 1, 2, lens}, {"block=192", "auto", 1, 2, lens},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (cases[i].partial) setenv("SIEVE_PARTIAL", cases[i].partial, 1);
    gpu_case c = {.pattern = "../bench/patterns/dilated", .params = {cases[i].block},
                  .shape = gpu_shape(7, 18, 30, 77, cases[i].after, 2, 64), .dtype = SIEVE_BF16,
                  .cfg = {128, 128, 12, 2}, .sample_rows = 128, .text_valid = cases[i].lens};
    if (!strcmp(cases[i].block, "block=192")) c.cfg = (sieve_config){64, 64, 4, 2};
    c.shape.batch = cases[i].batch;
    gpu_attention_case(env, &c);
    unsetenv("SIEVE_PARTIAL");
  }
}

/* The wide configs' small cases for the memory, race and barrier checkers:
** three warpgroups with 128-key steps, and 192-key steps, on full blocks
** and on partial ones (bitmask, predicate); three with P in shared memory. */
static void wide_sanitize(gpu_env *env) {
  static const int lens[1] = {7};
  if (!env->wgmma) return;
  static const struct { sieve_config cfg; int d; const char *pat, *param, *partial; } cases[] = {
    {{192, 128, 16, 2}, 64, "dense", NULL, NULL},
    {{192, 128, 16, 2}, 64, "../bench/patterns/dilated", "block=384", "auto"},
    {{128, 192, 12, 2}, 128, "dense", NULL, NULL},
    {{192, 64, 16, 3}, 128, "../bench/patterns/dilated", "block=384", NULL},
    {{192, 192, 16, 2}, 64, "dense", NULL, NULL},
    {{192, 192, 16, 2}, 64, "../bench/patterns/dilated", "block=384", "auto"},
    {{192, 128, 16, 2}, 128, "../bench/patterns/dilated", "block=384", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (cases[i].partial) setenv("SIEVE_PARTIAL", cases[i].partial, 1);
    gpu_case c = {.pattern = cases[i].pat, .params = {cases[i].param}, .shape = gpu_shape(3, 16, 16, 13, (int)i % 2, 2, cases[i].d),
                  .dtype = SIEVE_BF16, .cfg = cases[i].cfg, .text_valid = lens};
    gpu_attention_case(env, &c);
    unsetenv("SIEVE_PARTIAL");
  }
}

/*
** Partial-block bitmasks (cg_blocks_bits.c) on the irregular bench masks:
** radial (two classes, identity and transposed, 64-token blocks), radial
** with only its spatial class by bitmask (the temporal one keeps its
** predicate: both paths in one kernel), dilated at 64 and at 128-token
** blocks (the warp-specialised TMA kernel on sm_90a). Text before and
** after, ragged shapes, both dtypes and head dims, BSHD strides, the
** runtime text length, key steps smaller than the table's key blocks.
** SIEVE_PARTIAL=auto (the cost's choice, the default) set explicitly, so
** the group checks bitmasks whatever the caller's environment says.
*/
static void bitmasks(gpu_env *env) {
  static const struct {
    const char *pat, *param, *env;
  } cases[] = {
    {"../bench/patterns/radial", NULL, NULL}, {"../bench/patterns/radial", NULL, "bitmask:1"},
    {"../bench/patterns/dilated", "wy=2", NULL}, {"../bench/patterns/dilated", "block=128", NULL},
  };
  static const int lens[2] = {5, 13};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    setenv("SIEVE_PARTIAL", cases[i].env ? cases[i].env : "auto", 1);
    gpu_case small = {.pattern = cases[i].pat, .params = {cases[i].param}, .shape = gpu_shape(3, 5, 7, 13, 0, 3, 64),
                      .dtype = SIEVE_BF16, .text_valid = lens};
    small.shape.batch = 2;
    gpu_attention_case(env, &small);
    gpu_case medium = {.pattern = cases[i].pat, .params = {cases[i].param}, .shape = gpu_shape(5, 12, 20, 40, 1, 4, 128),
                       .dtype = SIEVE_FP16, .bshd = 1, .sample_rows = 96};
    gpu_attention_case(env, &medium);
    gpu_case big = {.pattern = cases[i].pat, .params = {cases[i].param}, .shape = gpu_shape(7, 18, 30, 77, 1, 2, 64),
                    .dtype = SIEVE_BF16, .sample_rows = 128};
    gpu_attention_case(env, &big);
    unsetenv("SIEVE_PARTIAL");
  }
  /* Key steps that start past the sequence's end: 3857 tokens end 17 keys
  ** into the last 128-token block, walked in 32-key steps by 16-row warps
  ** (wgmma on sm_90a, mma.sync on sm_80). */
  setenv("SIEVE_PARTIAL", "auto", 1);
  gpu_case steps = {.pattern = "../bench/patterns/dilated", .params = {"block=128"}, .shape = gpu_shape(7, 18, 30, 77, 1, 2, 64),
                    .dtype = SIEVE_FP16, .cfg = {128, 32, 8, 2}, .sample_rows = 128, .text_valid = lens};
  gpu_attention_case(env, &steps);
  unsetenv("SIEVE_PARTIAL");
}

/*
** 64-token query blocks merged into the warp-specialised kernel's rows
** (cg_attn_table_q; sm_90a's default for them, elsewhere the default
** kernel runs the same cases): radial (identity and transposed classes:
** the permute path) and dilated in every layout auto can pick (identity,
** transpose, 1 x 8 x 8 tiles, auto); partial blocks by bitmask, by
** predicate, and both in one kernel (bitmask:1); the bitmask reads at the
** step (SIEVE_BITS_AHEAD=0) and the 4-warp kernel (SIEVE_MERGE_ROWS=0)
** beside them. Text before and after, ragged shapes, runtime text lengths,
** both dtypes and head dims, BSHD strides; then two blocks merged (128
** rows, two consumer warpgroups), and 3 and 4 stages.
*/
static void merged(gpu_env *env) {
  static const int lens[2] = {5, 13};
  static const struct {
    const char *pat, *param, *partial, *off;
  } cases[] = {
    {"radial", NULL, "auto", NULL},           {"radial", NULL, "predicate", NULL},
    {"radial", NULL, "bitmask:1", NULL},      {"dilated", NULL, "auto", NULL},
    {"dilated", "layout=transpose", "auto", NULL}, {"dilated", "layout=tile", "auto", NULL},
    {"dilated", "layout=auto", "auto", NULL}, {"dilated", "layout=tile", "predicate", NULL},
    {"radial", NULL, "auto", "SIEVE_BITS_AHEAD"}, {"radial", NULL, "auto", "SIEVE_MERGE_ROWS"},
  };
  char path[64];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    snprintf(path, sizeof path, "../bench/patterns/%s", cases[i].pat);
    setenv("SIEVE_PARTIAL", cases[i].partial, 1);
    if (cases[i].off) setenv(cases[i].off, "0", 1);
    gpu_case small = {.pattern = path, .params = {cases[i].param}, .shape = gpu_shape(3, 5, 7, 13, 0, 3, 64),
                      .dtype = SIEVE_BF16, .text_valid = lens};
    small.shape.batch = 2;
    gpu_attention_case(env, &small);
    gpu_case medium = {.pattern = path, .params = {cases[i].param}, .shape = gpu_shape(5, 12, 20, 40, 1, 4, 128),
                       .dtype = SIEVE_FP16, .bshd = 1, .sample_rows = 96};
    gpu_attention_case(env, &medium);
    gpu_case big = {.pattern = path, .params = {cases[i].param}, .shape = gpu_shape(7, 18, 30, 77, 1, 2, 64),
                    .dtype = SIEVE_BF16, .sample_rows = 128, .text_valid = lens};
    big.shape.batch = 2;
    gpu_attention_case(env, &big);
    gpu_case before = {.pattern = path, .params = {cases[i].param}, .shape = gpu_shape(6, 11, 17, 29, 0, 2, 128),
                       .dtype = SIEVE_BF16, .sample_rows = 128};
    gpu_attention_case(env, &before);
    if (cases[i].off) unsetenv(cases[i].off);
    unsetenv("SIEVE_PARTIAL");
  }
  if (!env->wgmma) return;
  static const sieve_config cfgs[] = {{128, 64, 12, 2}, {128, 64, 12, 4}, {192, 64, 16, 3}, {192, 64, 16, 4}};
  const char *pats[] = {"../bench/patterns/radial", "../bench/patterns/dilated"};
  for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++)
    for (int k = 0; k < 2; k++) {
      gpu_case c = {.pattern = pats[k], .shape = gpu_shape(7, 18, 30, 77, (int)i % 2, 2, k ? 64 : 128),
                    .dtype = k ? SIEVE_FP16 : SIEVE_BF16, .bshd = k, .cfg = cfgs[i], .sample_rows = 128,
                    .text_valid = lens};
      c.shape.batch = 2;
      gpu_attention_case(env, &c);
    }
}

/* The merged rows under the checkers: radial (permuted, bitmasks), dilated
** in tiles by predicate, two blocks merged (128 rows). */
static void sanitize_merge(gpu_env *env) {
  static const int lens[1] = {7};
  gpu_case r = {.pattern = "../bench/patterns/radial", .shape = gpu_shape(3, 8, 8, 13, 0, 2, 128), .dtype = SIEVE_BF16,
                .text_valid = lens};
  gpu_attention_case(env, &r);
  setenv("SIEVE_PARTIAL", "predicate", 1);
  gpu_case t = {.pattern = "../bench/patterns/dilated", .params = {"layout=tile"}, .shape = gpu_shape(3, 9, 11, 13, 1, 2, 64),
                .dtype = SIEVE_FP16, .bshd = 1};
  gpu_attention_case(env, &t);
  unsetenv("SIEVE_PARTIAL");
  if (!env->wgmma) return;
  gpu_case w = {.pattern = "../bench/patterns/dilated", .shape = gpu_shape(3, 8, 8, 13, 1, 2, 128), .dtype = SIEVE_BF16,
                .cfg = {128, 64, 12, 2}, .text_valid = lens};
  gpu_attention_case(env, &w);
}

/*
** Head classes in other layouts on the sm_90a TMA kernel: Q, K, V permuted
** into layout order first, O and the LSE written back in token order (the
** 12-warp config; elsewhere the default). SVG's two classes (identity and
** transpose) and STA's tiles where the grid does not divide them (7 x 10 x
** 13 under 6 x 8 x 8; 2 x 3 x 4 tiles; Wan's 21 x 30 x 52), text before and
** after, both dtypes and head dims, BHSD and BSHD strides, two batch
** elements with runtime text lengths; step 20, past the dense warm-ups.
*/
static void permute(gpu_env *env) {
  static const int lens[2] = {5, 9};
  sieve_config ws = env->wgmma ? (sieve_config){128, 128, 12, 2} : (sieve_config){0, 0, 0, 0};
  const char *pats[] = {"svg", "sta"};
  for (int i = 0; i < 2; i++)
    for (int after = 0; after < 2; after++)
      for (int d = 64; d <= 128; d *= 2) {
        int odd = (after + d / 64 + i) % 2;
        gpu_case c = {.pattern = pats[i], .shape = i ? gpu_shape(7, 10, 13, 9, after, 2, d) : gpu_shape(5, 12, 20, 40, after, 4, d),
                      .dtype = odd ? SIEVE_FP16 : SIEVE_BF16, .bshd = odd, .cfg = ws, .step = 20, .layer = 2,
                      .sample_rows = 96};
        if (after && d == 64) {
          c.shape.batch = 2;
          c.text_valid = lens;
        }
        gpu_attention_case(env, &c);
      }
  gpu_case small = {.pattern = "sta", .params = {"tile_t=2", "tile_y=3", "tile_x=4"}, .shape = gpu_shape(5, 7, 9, 4, 1, 3, 128),
                    .dtype = SIEVE_BF16, .cfg = ws, .step = 20, .layer = 2};
  gpu_attention_case(env, &small);
  gpu_case wan = {.pattern = "sta", .shape = gpu_shape(21, 30, 52, 0, 0, 2, 128), .dtype = SIEVE_BF16, .cfg = ws,
                  .step = 20, .layer = 2, .sample_rows = 64};
  gpu_attention_case(env, &wan);
  wan.cfg.warps = env->wgmma ? 8 : 0;  /* the address-arithmetic kernel, for comparison */
  gpu_attention_case(env, &wan);
}

/* The permute path under the checkers: small ragged shapes, both layouts. */
static void sanitize_perm(gpu_env *env) {
  static const int lens[1] = {7};
  sieve_config ws = env->wgmma ? (sieve_config){128, 128, 12, 2} : (sieve_config){0, 0, 0, 0};
  gpu_case c = {.pattern = "svg", .shape = gpu_shape(3, 8, 8, 13, 0, 2, 128), .dtype = SIEVE_BF16, .cfg = ws,
                .step = 20, .layer = 2, .text_valid = lens};
  gpu_attention_case(env, &c);
  gpu_case t = {.pattern = "sta", .shape = gpu_shape(7, 10, 13, 9, 1, 2, 64), .dtype = SIEVE_FP16, .bshd = 1,
                .cfg = ws, .step = 20, .layer = 2};
  gpu_attention_case(env, &t);
}

/* Small shapes of every shipped pattern at its default config, for the
** memory, race and barrier checkers (bench/gpu.sh sanitize). */
static void sanitize(gpu_env *env) {
  for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
    gpu_case c = {.pattern = patterns[i], .shape = gpu_shape(3, 8, 8, 13, 0, 2, 128), .dtype = SIEVE_BF16};
    gpu_attention_case(env, &c);
  }
}

/* The bitmask kernels under the checkers (sanitize runs them too): 64-token
** blocks (wgmma without TMA on sm_90a), 128 (the TMA kernel), and both
** paths in one kernel. */
static void sanitize_bits(gpu_env *env) {
  static const int lens[1] = {7};
  const char *bits[][2] = {{"../bench/patterns/radial", NULL}, {"../bench/patterns/dilated", "block=128"}};
  setenv("SIEVE_PARTIAL", "auto", 1);
  for (int i = 0; i < 2; i++) {
    gpu_case c = {.pattern = bits[i][0], .params = {bits[i][1]}, .shape = gpu_shape(3, 8, 8, 13, 0, 2, 128),
                  .dtype = SIEVE_BF16, .text_valid = lens};
    gpu_attention_case(env, &c);
  }
  unsetenv("SIEVE_PARTIAL");
  setenv("SIEVE_PARTIAL", "bitmask:1", 1);
  gpu_case m = {.pattern = "../bench/patterns/radial", .shape = gpu_shape(3, 8, 8, 13, 1, 2, 128), .dtype = SIEVE_BF16};
  gpu_attention_case(env, &m);
  unsetenv("SIEVE_PARTIAL");
}

static void sanitize_all(gpu_env *env) {
  sanitize(env);
  sanitize_bits(env);
  sanitize_merge(env);
  sanitize_perm(env);
}

static void models(gpu_env *env) {
  const char *names[] = {"wan-1.3b-480p", "cogvideox-1.5"};
  const char *pats[] = {"frame_window", "lvsa"};
  for (int i = 0; i < 2; i++) {
    gpu_case c = {.pattern = pats[i], .params = {i ? GPU_LVSA_ROT : NULL}, .dtype = SIEVE_BF16, .sample_rows = 6, .step = 7,
                  .layer = 2};
    sieve_shape_preset(names[i], &c.shape);
    gpu_attention_case(env, &c);
  }
  gpu_case d = {.pattern = "dense", .dtype = SIEVE_FP16, .sample_rows = 6, .bshd = 1};
  sieve_shape_preset("wan-1.3b-480p", &d.shape);
  gpu_attention_case(env, &d);
  /* Tiles ragged on every axis (21 x 30 x 52 in 6 x 8 x 8), where the
  ** kernel's simplified tile arithmetic (cg_simplify.h) has the most cases. */
  gpu_case t = {.pattern = "sta", .dtype = SIEVE_BF16, .sample_rows = 6, .step = 20, .layer = 2};
  sieve_shape_preset("wan-1.3b-480p", &t.shape);
  gpu_attention_case(env, &t);
  /* svg's two classes (heads alternating) with text before ragged frames:
  ** each class's band is compiled as one band over positions, the
  ** coordinates recombined (cg_simplify.h). */
  gpu_case v = {.pattern = "svg", .params = {"profile=false"}, .dtype = SIEVE_BF16, .sample_rows = 6, .step = 20,
                .layer = 2};
  sieve_shape_preset("cogvideox-1.5", &v.shape);
  gpu_attention_case(env, &v);
}

int main(int argc, char **argv) {
  gpu_env env = {0};
  const char *src = getenv("SIEVE_SOURCE_DIR");
  static char pdir[1024];
  snprintf(pdir, sizeof pdir, "%s/patterns", src ? src : ".");
  env.patterns = pdir;
  const char *seed = getenv("SIEVE_SEED");
  env.seed = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
  if (!env.seed) env.seed = 1;
  if (sieve_open(&env.ctx)) return 1;
  sieve_status st = sieve_device_open(env.ctx, 0);
  if (st == SIEVE_ERR_NO_DRIVER || st == SIEVE_ERR_NO_GPU) {
    printf("no GPU (%s): GPU checks skipped\n", sieve_errmsg(env.ctx));
    sieve_close(env.ctx);
    return 77;
  }
  cg_err e = {0};
  if (st || rt_cuda_get(&env.cu, &e)) {
    printf("device: %s\n", st ? sieve_errmsg(env.ctx) : e.msg);
    sieve_close(env.ctx);
    return 1;
  }
  sieve_device_info di;
  sieve_device_query(env.ctx, 0, &di);
  const char *arch = getenv("SIEVE_ARCH");
  env.wgmma = di.sm_major == 9 && !(arch && !strncmp(arch, "sm_80", 5));
  printf("device %s (sm_%d%d), seed %llu\n", di.name, di.sm_major, di.sm_minor,
         (unsigned long long)env.seed);
  const char *only = argc > 1 ? argv[1] : "shipped,textlen,configs,wide,ws1,tabcache,persist,tiletab,bitmasks,merged,permute,models,bench,tune,dyn";
  if (strstr(only, "shipped")) shipped(&env);
  if (strstr(only, "textlen")) textlen(&env);
  if (strstr(only, "configs")) configs(&env);
  if (strstr(only, "wide")) wide(&env);
  if (strstr(only, "wsan")) wide_sanitize(&env);
  if (strstr(only, "ws1")) gpu_one(&env);
  if (strstr(only, "w1san")) gpu_one_sanitize(&env);
  if (strstr(only, "tabcache")) gpu_tabcache(&env);
  if (strstr(only, "persist")) gpu_persist(&env);
  if (strstr(only, "psan")) gpu_persist_sanitize(&env);
  if (strstr(only, "tiletab")) gpu_tiles(&env);
  if (strstr(only, "tsan")) gpu_tiles_sanitize(&env);
  if (strstr(only, "bitsdbg")) bits_debug(&env);
  if (strstr(only, "bitmasks")) bitmasks(&env);
  if (strstr(only, "merged")) merged(&env);
  if (strstr(only, "models")) models(&env);
  if (strstr(only, "bench")) {
    gpu_bench_case(&env, "dense", "wan-1.3b-480p");
    gpu_bench_case(&env, "frame_window", "wan-1.3b-480p");
  }
  if (strstr(only, "tune")) gpu_tune_case(&env);
  if (strstr(only, "dyn")) gpu_dyn(&env);
  else if (strstr(only, "search")) gpu_dyn_search(&env);  /* the search's checks alone */
  else if (strstr(only, "adaspa")) gpu_dyn_search_adaspa(&env);  /* AdaSpa as shipped alone */
  else if (strstr(only, "profile")) gpu_dyn_profile(&env);
  /* Plans on GPU-built tables (lvsa, at steps its anchors move) without the
  ** rest of dyn. */
  if (strstr(only, "tabattn")) gpu_dyn_tables(&env);
  if (strstr(only, "gtab_small")) gpu_dyn_tables_small(&env);
  else if (strstr(only, "gtab")) gpu_dyn_tables_all(&env);
  if (strstr(only, "permute")) permute(&env);
  /* O's rescale in the order the default does not take for a config
  ** (SIEVE_RESCALE_UNDER_S, both ways): the warp-specialised groups, and
  ** with rescalesan their sanitizer sets. */
  if (strstr(only, "rescale")) {
    for (int v = 0; v < 2; v++) {
      setenv("SIEVE_RESCALE_UNDER_S", v ? "1" : "0", 1);
      if (strstr(only, "rescalesan")) {
        sanitize_all(&env);
        wide_sanitize(&env);
        gpu_one_sanitize(&env);
      } else {
        shipped(&env);
        configs(&env);
        wide(&env);
        gpu_one(&env);
        merged(&env);
      }
    }
    unsetenv("SIEVE_RESCALE_UNDER_S");
  }
  if (strstr(only, "sanitize_merge")) sanitize_merge(&env);
  else if (strstr(only, "sanitize_bits")) sanitize_bits(&env);
  else if (strstr(only, "sanitize_perm")) sanitize_perm(&env);
  else if (strstr(only, "sanitize")) sanitize_all(&env);
  printf("%d passed, %d failed\n", env.passed, env.failed);
  sieve_close(env.ctx);
  return env.failed ? 1 : 0;
}
