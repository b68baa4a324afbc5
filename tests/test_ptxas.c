/*
** Every shipped pattern's attention kernel assembles with NVIDIA's ptxas for
** sm_80 and sm_90a, over a grid of configs, and the default configs do not
** spill registers. ptxas is found on PATH or in /usr/local/cuda/bin; without
** it the test says so loudly and is skipped (exit 77).
*/
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cg_attn.h"
#include "cg_attn_geom.h"  /* the warp-specialised register split */
#include "cg_blocks.h"
#include "lp.h"
#include "test_ptxas_util.h"

static char ptxas[1024];

typedef struct result {
  int ok, regs, spill_st, spill_ld;
  char log[2048];
} result;

/* Assembles ptx for arch and reads ptxas -v's resource lines. */
static result assemble(const char *ptx, cg_arch arch) {
  result r = {0};
  int st = tp_assemble(ptxas, ptx, cg_arch_name(arch), r.log, sizeof r.log);
  if (st < 0) return r;
  const char *u = strstr(r.log, "Used ");
  const char *s = strstr(r.log, "bytes spill stores");
  if (u) r.regs = atoi(u + 5);
  if (s) {
    /* "N bytes spill stores, M bytes spill loads": walk back to N */
    const char *b = s - 1;
    while (b > r.log && b[-1] != ',' && b[-1] != '\n' && b[-1] != ' ') b--;
    while (b > r.log && b[-1] == ' ') b--;
    while (b > r.log && b[-1] >= '0' && b[-1] <= '9') b--;
    r.spill_st = atoi(b);
    const char *l = strstr(s, ", ");
    if (l) r.spill_ld = atoi(l + 2);
  }
  r.ok = st == 0 && u && s;
  return r;
}

static int failures, kernels;
static int segs;  /* the kernels check_bits builds write segments (cg_attn_spec.segs) */

/* bits < 0: the classes a plan would give bitmasks (cg_attn_bits). */
static void check_bits(const char *pat, cg_pattern *p, const sieve_shape *sh, cg_dtype dt, cg_arch arch,
                       const cg_attn_config *cfg, int must_not_spill, int64_t bits) {
  cg_attn_spec s = {p, *sh, dt, arch, {0, 0, 0, 0}, 0};
  /* A plan picks its default under the same choice of bitmasks. */
  char env[32], was[64] = "";
  const char *cur = getenv("SIEVE_PARTIAL");
  if (cur) snprintf(was, sizeof was, "%s", cur);
  snprintf(env, sizeof env, bits > 0 ? "bitmask:%llx" : "predicate", (unsigned long long)bits);
  if (bits >= 0) setenv("SIEVE_PARTIAL", env, 1);
  s.cfg = cfg ? *cfg : cg_attn_default_config(&s);
  if (bits >= 0 && cur) setenv("SIEVE_PARTIAL", was, 1);
  else if (bits >= 0) unsetenv("SIEVE_PARTIAL");
  /* -1: the cost's choice (as plans under SIEVE_PARTIAL=auto). */
  s.bits = bits >= 0 ? (uint32_t)bits : cg_attn_bits(&s);
  s.segs = segs;
  char what[256], tag[24] = "";
  if (s.bits) snprintf(tag, sizeof tag, " bits %x", (unsigned)s.bits);
  if (segs) snprintf(tag + strlen(tag), sizeof tag - strlen(tag), " segs");
  snprintf(what, sizeof what, "%-14s d%-3d %s %-6s S=%-6lld m%dn%dw%ds%d%s%s%s", pat, sh->head_dim,
           dt == CG_FP16 ? "fp16" : "bf16", cg_arch_name(arch), (long long)sieve_shape_tokens(sh), s.cfg.block_m,
           s.cfg.block_n, s.cfg.warps, s.cfg.stages, s.cfg.sched ? (s.cfg.sched == CG_SCHED_STATIC ? " ps" : " pa") : "",
           cfg ? "" : " (default)", tag);
  cg_err e = {0};
  if (cfg && cg_attn_check(&s, &e)) {
    printf("  %-68s skipped: %s\n", what, e.msg);
    return;
  }
  char *ptx = NULL, *name = NULL;
  kernels++;
  if (cg_attn_build(&s, &ptx, &name, NULL, &e)) {
    printf("FAIL %-68s generator: %s\n", what, e.msg);
    failures++;
    return;
  }
  result r = assemble(ptx, arch);
  int spills = r.spill_st > 0 || r.spill_ld > 0, serial = tp_wgmma_serialised(r.log);
  /* setmaxnreg moves registers within what the CTA was given at launch:
  ** the split must fit ptxas' count, or the consumers' inc never returns. */
  int split = cg_attn_uses_tma(&s) ? 128 * (ws_producer_regs(&s.cfg) +
                                            mma_warps(&s.cfg) / 4 * ws_consumer_regs(&s.cfg, sh->head_dim)) : 0;
  int over = r.ok && split > r.regs * 32 * s.cfg.warps;
  if (!r.ok || (must_not_spill && spills) || serial || over) {
    char why[128];
    snprintf(why, sizeof why, "the register split takes %d of the %d the CTA has at launch", split,
             r.regs * 32 * s.cfg.warps);
    printf("FAIL %-68s %s\n%s\n", what,
           !r.ok ? "ptxas failed" : serial ? "ptxas serialised its wgmma" : over ? why : "spills on a default config", r.log);
    failures++;
  } else {
    printf("  ok %-68s %3d registers, spill %d/%d bytes\n", what, r.regs, r.spill_st, r.spill_ld);
  }
  free(ptx);
  free(name);
}

static void check(const char *pat, cg_pattern *p, const sieve_shape *sh, cg_dtype dt, cg_arch arch,
                  const cg_attn_config *cfg, int must_not_spill) {
  check_bits(pat, p, sh, dt, arch, cfg, must_not_spill, -1);
}

/*
** DIR/NAME.lua with one parameter (NULL: none); `what` gets "NAME PARAM" for
** the messages. NULL, counted as a failure, when it does not load.
*/
static sieve_pattern *load_with(sieve_ctx *ctx, const char *dir, const char *name, const char *param,
                                char *what, size_t n) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s.lua", dir, name);
  snprintf(what, n, "%s%s%s", name, param ? " " : "", param ? param : "");
  const char *params[] = {param, NULL};
  sieve_pattern *sp;
  if (sieve_pattern_load(ctx, path, params, &sp)) {
    printf("FAIL %s: %s\n", path, sieve_errmsg(ctx));
    failures++;
    return NULL;
  }
  return sp;
}

/*
** Partial-block bitmasks on the irregular bench masks (bench/patterns):
** radial's two classes both by bitmask, and its spatial class alone (the
** temporal one keeps its predicate: both paths in one kernel); dilated at
** 128-token blocks. On sm_90a all of them take the warp-specialised TMA
** kernel, the 64-token blocks two to a CTA.
*/
static void check_bitmasks(sieve_ctx *ctx, const char *src, sieve_shape sh) {
  static const struct {
    const char *file, *param;
    int64_t bits;
  } cases[] = {
    {"radial", NULL, -1}, {"radial", NULL, 1}, {"dilated", NULL, -1}, {"dilated", "block=128", -1},
  };
  char bench[1024];
  snprintf(bench, sizeof bench, "%s/bench/patterns", src);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char pat[64];
    sieve_pattern *sp = load_with(ctx, bench, cases[i].file, cases[i].param, pat, sizeof pat);
    if (!sp) continue;
    cg_pattern *p = lp_pattern_ir(sp);
    /* The defaults of both targets: mma.sync with 16- and 32-row warps, wgmma. */
    for (int a = 0; a < 4; a++)
      for (int d = 64; d <= 128; d *= 2) {
        sh.head_dim = d;
        check_bits(pat, p, &sh, a % 2 ? CG_FP16 : CG_BF16, a < 2 ? CG_SM90A : CG_SM80, NULL, 1, cases[i].bits);
      }
    /* 64-token blocks merged into the warp-specialised kernel's rows
    ** (cg_attn_table_q; the defaults above merge three): two warpgroups
    ** and deeper rings, by bitmask and by predicate, clear of spills too,
    ** but for radial's predicates in three warpgroups and 3 stages (160
    ** registers: 12 bytes at D = 128). */
    if (!cases[i].param && cases[i].bits < 0) {
      static const cg_attn_config merged[] = {{128, 64, 12, 2}, {128, 64, 12, 3}, {128, 64, 12, 4}, {192, 64, 16, 3}};
      for (size_t c = 0; c < sizeof merged / sizeof merged[0]; c++)
        for (int64_t bits = 0; bits >= -1; bits--) {
          sh.head_dim = (c + (size_t)-bits) % 2 ? 128 : 64;
          check_bits(pat, p, &sh, CG_BF16, CG_SM90A, &merged[c], bits || merged[c].warps == CG_WS_WARPS, bits);
        }
    }
    if (cases[i].param) {
      static const cg_attn_config ws[] = {{128, 64, 12, 3}, {128, 128, 12, 2}, {128, 128, 8, 2}};
      for (size_t c = 0; c < sizeof ws / sizeof ws[0]; c++) {
        sh.head_dim = c % 2 ? 128 : 64;
        check_bits(pat, p, &sh, CG_BF16, CG_SM90A, &ws[c], 1, cases[i].bits);
      }
    }
    sieve_pattern_free(sp);
  }
  /* The wide configs (16 warps of 192 rows, 192-key steps) on partial
  ** blocks, by predicate and by bitmask: they assemble; spills are allowed
  ** off the defaults. */
  char what[64];
  sieve_pattern *sp = load_with(ctx, bench, "dilated", "block=384", what, sizeof what);
  if (!sp) return;
  static const cg_attn_config wide[] = {{192, 128, 16, 2}, {192, 64, 16, 3}, {128, 192, 12, 2}, {128, 192, 12, 2}};
  for (size_t c = 0; c < sizeof wide / sizeof wide[0]; c++) {
    sh.head_dim = c == 1 || c == 3 ? 128 : 64;
    for (int64_t bits = 0; bits >= -1; bits--)
      check_bits(what, lp_pattern_ir(sp), &sh, CG_BF16, CG_SM90A, &wide[c], 0, bits);
  }
  sieve_pattern_free(sp);
}

/*
** Patterns whose tables follow the kernel's tile take the wide configs by
** default (cg_attn_table_blocks): the frame windows of the targets
** at the four model shapes, causal and a token window at two; no spills.
*/
static void check_tiles(sieve_ctx *ctx, const char *dir) {
  static const struct { const char *pat, *param; } pats[] = {
    {"frame_window", "window=1"}, {"frame_window", "window=3"}, {"causal", NULL}, {"token_window", NULL},
  };
  static const char *shapes[] = {"cogvideox-1.5", "wan-1.3b-480p", "hunyuan-720p", "wan-14b-720p"};
  for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
    char what[64];
    sieve_pattern *sp = load_with(ctx, dir, pats[i].pat, pats[i].param, what, sizeof what);
    if (!sp) continue;
    for (size_t k = 0; k < (i < 2 ? 4u : 2u); k++) {
      sieve_shape real;
      sieve_shape_preset(shapes[k], &real);
      check(what, lp_pattern_ir(sp), &real, CG_BF16, CG_SM90A, NULL, 1);
    }
    sieve_pattern_free(sp);
  }
}

/*
** lvsa's LVSA rotation (train_frames, step s on step s-1's offset) where
** the anchors move (the video longer than the training length) and the
** window shrink (2W+1+first covering a video longer than it), at the model
** shapes on both targets: no spills. The defaults are static and checked
** above.
*/
static void check_lvsa(sieve_ctx *ctx, const char *dir) {
  static const struct { const char *shape, *p[4]; } cases[] = {
    {"wan-1.3b-480p", {"train_frames=13", "rotate=true"}}, {"hunyuan-720p", {"train_frames=21", "rotate=true"}},
    {"wan-14b-720p", {"train_frames=13", "rotate=true", "sparsity_scale=0.7"}},
    {"hunyuan-720p", {"train_frames=30", "window=16", "rotate=true"}},
    {"cogvideox-1.5", {"train_frames=7", "window=4", "first=2"}},
  };
  char path[2048];
  snprintf(path, sizeof path, "%s/lvsa.lua", dir);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *ov[] = {cases[i].p[0], cases[i].p[1], cases[i].p[2], cases[i].p[3], NULL};
    char what[128];
    snprintf(what, sizeof what, "lvsa %s %s %s", ov[0], ov[1], ov[2] ? ov[2] : "");
    sieve_pattern *sp;
    if (sieve_pattern_load(ctx, path, ov, &sp)) {
      printf("FAIL %s: %s\n", what, sieve_errmsg(ctx));
      failures++;
      continue;
    }
    sieve_shape real;
    sieve_shape_preset(cases[i].shape, &real);
    for (int a = 0; a < 2; a++) check(what, lp_pattern_ir(sp), &real, CG_BF16, a ? CG_SM90A : CG_SM80, NULL, 1);
    sieve_pattern_free(sp);
  }
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int lua_file(const struct dirent *d) {
  size_t n = strlen(d->d_name);
  return n > 4 && !strcmp(d->d_name + n - 4, ".lua");
}

int main(void) {
  if (!tp_find_ptxas(ptxas, sizeof ptxas)) {
    printf("\n*** ptxas not found: PTX assembly NOT checked ***\n"
           "*** (looked on PATH and in /usr/local/cuda/bin) ***\n\n");
    return 77;
  }
  const char *src = getenv("SIEVE_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/patterns", src ? src : ".");
  struct dirent **ents;
  int n = scandir(dir, &ents, lua_file, by_name);
  if (n <= 0) {
    printf("no patterns in %s\n", dir);
    return 1;
  }
  printf("ptxas: %s\n", ptxas);
  sieve_ctx *ctx;
  if (sieve_open(&ctx)) return 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* 20 text tokens + 4 x 12 x 16: ragged against every block size */
  sieve_shape sh = {1, 4, 128, 4, 12, 16, 20, 0};
  static const cg_attn_config grid[] = {
    {128, 32, 4, 2}, {128, 64, 8, 2}, {64, 64, 4, 1}, {64, 32, 4, 3}, {128, 128, 8, 3}, {128, 64, 4, 3},
  };
  for (int i = 0; i < n; i++) {
    char path[2048], pat[256];
    snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
    snprintf(pat, sizeof pat, "%.*s", (int)strlen(ents[i]->d_name) - 4, ents[i]->d_name);
    sieve_pattern *sp;
    if (sieve_pattern_load(ctx, path, NULL, &sp)) {
      printf("FAIL %s: %s\n", path, sieve_errmsg(ctx));
      failures++;
      continue;
    }
    cg_pattern *p = lp_pattern_ir(sp);
    for (int a = 0; a < 2; a++)
      for (int d = 64; d <= 128; d *= 2) {
        sh.head_dim = d;
        check(pat, p, &sh, a ? CG_FP16 : CG_BF16, a ? CG_SM90A : CG_SM80, NULL, 1);
      }
    /* Register pressure moves with the shape's constants: the defaults at
    ** a real model's shape too. */
    for (int a = 0; a < 2; a++) {
      sieve_shape real;
      sieve_shape_preset(a ? "cogvideox-1.5" : "wan-1.3b-480p", &real);
      check(pat, p, &real, CG_BF16, a ? CG_SM90A : CG_SM80, NULL, 1);
    }
    /* The config grid on the patterns that exercise the most code: every
    ** config for both targets would take minutes. */
    if (!strcmp(pat, "dense") || !strcmp(pat, "frame_window") || !strcmp(pat, "svg"))
      for (size_t c = 0; c < sizeof grid / sizeof grid[0]; c++) {
        sh.head_dim = c % 2 ? 64 : 128;
        check(pat, p, &sh, CG_BF16, c % 3 == 1 ? CG_SM90A : CG_SM80, &grid[c], 0);
      }
    /* The warp-specialised kernel's other configs, and the 8-warp kernel
    ** that stands in for it when TMA cannot map a tensor: no spills. SVG
    ** and STA take it on permuted Q, K, V (O through the layout's map). */
    if (!strcmp(pat, "dense") || !strcmp(pat, "frame_window") || !strcmp(pat, "svg") || !strcmp(pat, "sta")) {
      static const cg_attn_config ws[] = {{128, 64, 12, 3}, {128, 128, 12, 3}, {128, 128, 8, 2}, {128, 64, 8, 2}};
      for (size_t c = 0; c < sizeof ws / sizeof ws[0]; c++) {
        sh.head_dim = c % 2 ? 128 : 64;
        check(pat, p, &sh, CG_BF16, CG_SM90A, &ws[c], c >= 2);
      }
    }
    /* The wide configs dense takes (384-token blocks), as candidates for
    ** the defaults at real shapes: no spills. */
    if (!strcmp(pat, "dense")) {
      static const struct { const char *shape; cg_attn_config c; } wide[] = {
        {"cogvideox-1.5", {192, 128, 16, 2}}, {"cogvideox-1.5", {192, 128, 16, 3}}, {"cogvideox-1.5", {128, 192, 12, 2}},
        {"cogvideox-1.5", {128, 128, 12, 3}}, {"wan-1.3b-480p", {128, 192, 12, 2}}, {"wan-1.3b-480p", {192, 64, 16, 3}},
        /* P through shared memory (ws_p_shared) */
        {"cogvideox-1.5", {192, 192, 16, 2}}, {"wan-1.3b-480p", {192, 128, 16, 2}},
      };
      for (size_t c = 0; c < sizeof wide / sizeof wide[0]; c++) {
        sieve_shape real;
        sieve_shape_preset(wide[c].shape, &real);
        check(pat, p, &real, CG_BF16, CG_SM90A, &wide[c].c, 1);
      }
    }
    /* P through shared memory beside a mask (by bitmask on these
    ** configs), both head sizes: no spills. */
    if (!strcmp(pat, "frame_window") || !strcmp(pat, "causal")) {
      static const struct { const char *shape; cg_attn_config c; } psm[] = {
        {"cogvideox-1.5", {192, 192, 16, 2}}, {"wan-1.3b-480p", {192, 128, 16, 2}},
      };
      for (size_t c = 0; c < sizeof psm / sizeof psm[0]; c++) {
        sieve_shape real;
        sieve_shape_preset(psm[c].shape, &real);
        check(pat, p, &real, CG_BF16, CG_SM90A, &psm[c].c, 1);
      }
    }
    /* The persistent grid (cg_attn_sched.h), both schedules, on the
    ** configs these patterns take, and frame_window's default at D64: no
    ** spills (the ring realigned between tiles, the tile handed over in
    ** shared memory and its row read there at every step: cg_attn.c). A
    ** tile's row in registers spilled lvsa's 4 bytes at D128 and frame
    ** window's default 108 at D64. */
    if (!strcmp(pat, "dense") || !strcmp(pat, "frame_window") || !strcmp(pat, "lvsa") || !strcmp(pat, "svg"))
      for (int sched = CG_SCHED_STATIC; sched <= CG_SCHED_ATOMIC; sched++)
        for (int a = 0; a < 2; a++) {
          sieve_shape real;
          sieve_shape_preset(a ? "cogvideox-1.5" : "hunyuan-720p", &real);
          cg_attn_config c = {128, 128, CG_WS_WARPS, 2, sched};
          if (!strcmp(pat, "dense")) c = a ? (cg_attn_config){192, 128, CG_WS3_WARPS, 2, sched} : (cg_attn_config){128, 192, CG_WS_WARPS, 2, sched};
          check(pat, p, &real, a ? CG_FP16 : CG_BF16, CG_SM90A, &c, 1);
          if (a && !strcmp(pat, "frame_window")) {
            cg_attn_spec ds = {p, real, CG_BF16, CG_SM90A, {0, 0, 0, 0}, 0};
            c = cg_attn_default_config(&ds);
            c.sched = sched;
            check(pat, p, &real, CG_BF16, CG_SM90A, &c, 1);
          }
        }
    /* AdaSpa's 64-token query blocks on one consumer warpgroup (8 warps
    ** over 64 rows, two CTAs a multiprocessor): no spills at either head
    ** dim, two and three stages. */
    if (!strcmp(pat, "adaspa"))
      for (int a = 0; a < 2; a++)
        for (int st = 2; st <= 3; st++) {
          sieve_shape real;
          sieve_shape_preset(a ? "cogvideox-1.5" : "hunyuan-720p", &real);
          check(pat, p, &real, a ? CG_FP16 : CG_BF16, CG_SM90A, &(cg_attn_config){64, 64, CG_WS1_WARPS, st}, 1);
        }
    /* AdaSpa's first search takes its masses from the dense pass's
    ** segments (cg_attn_spec.segs), on dense's defaults (a CTA per tile,
    ** as its plan runs them) and the 128-key steps of blocks 192 does not
    ** divide: no spills. */
    if (!strcmp(pat, "dense")) {
      static const char *const seg_shapes[] = {"hunyuan-720p", "cogvideox-1.5", "wan-1.3b-480p"};
      segs = 1;
      for (int i = 0; i < 3; i++) {
        sieve_shape real;
        sieve_shape_preset(seg_shapes[i], &real);
        check(pat, p, &real, i == 2 ? CG_FP16 : CG_BF16, CG_SM90A, NULL, 1);
      }
      sh.head_dim = 128;
      check(pat, p, &sh, CG_BF16, CG_SM90A, &(cg_attn_config){128, 128, CG_WS_WARPS, 2}, 1);
      segs = 0;
    }
    sieve_pattern_free(sp);
  }
  check_tiles(ctx, dir);
  check_lvsa(ctx, dir);
  sh.head_dim = 128;
  check_bitmasks(ctx, src ? src : ".", sh);
  for (int i = 0; i < n; i++) free(ents[i]);
  free(ents);
  sieve_close(ctx);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%d kernels, %d failed, %.1f s\n", kernels, failures,
         (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return failures ? 1 : 0;
}
