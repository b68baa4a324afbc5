/*
** The layout permute on the CPU: the position -> token map its kernel
** compiles is, for every head, the one cg_layout_enum enumerates for the
** head's class (a bijection of the S positions, text in place), on SVG's
** two classes and on STA's tiles where the grid does not divide, with text
** before and after the video; its PTX assembles for sm_80 and sm_90a with
** no spills (where ptxas is found). The copy itself is checked on a GPU
** (tests/gpu, the permute group).
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_attn.h"
#include "cg_permute.h"
#include "lp.h"
#include "test_lua_util.h"
#include "test_ptxas_util.h"

static sieve_ctx *ctx;

static int open_ctx(void **st) { return sieve_open(&ctx) == SIEVE_OK ? 0 : -1; }
static int close_ctx(void **st) {
  sieve_close(ctx);
  return 0;
}

static sieve_pattern *load(const char *name, const char *const *ov) {
  return lt_load_source(ctx, "patterns", name, ov);
}

static sieve_shape shp(int T, int Y, int X, int text, int after, int H, int D) {
  return (sieve_shape){.batch = 1, .heads = H, .head_dim = D, .frames = T, .height = Y,
                       .width = X, .text = text, .text_after = after};
}

/* Every head's map is its class's enumerated idx, and a bijection. Returns
** how many heads are not in the identity layout. */
static int check_map(cg_pattern *p, const sieve_shape *in) {
  sieve_shape s;
  cg_shape_for(p, in, &s);
  int64_t n = sieve_shape_tokens(&s);
  int32_t *idx = malloc(sizeof *idx * (size_t)n);
  uint8_t *seen = malloc((size_t)n);
  assert_non_null(idx);
  assert_non_null(seen);
  int moved = 0;
  for (int h = 0; h < s.heads; h++) {
    cg_err e = {0};
    if (cg_permute_map(p, &s, h, idx, &e)) fail_msg("map: %s", e.msg);
    const cg_layout *l = &p->classes[p->head_class[h % p->period]].layout;
    cg_coords c;
    assert_int_equal(cg_layout_enum(l, &s, &c), 0);
    assert_int_equal(c.n, n);
    memset(seen, 0, (size_t)n);
    int64_t text0 = s.text_after ? n - s.text : 0;
    for (int64_t i = 0; i < n; i++) {
      if (idx[i] != c.idx[i]) fail_msg("head %d position %lld: map %d, layout %d", h, (long long)i, idx[i], c.idx[i]);
      assert_true(idx[i] >= 0 && idx[i] < n);
      assert_false(seen[idx[i]]);
      seen[idx[i]] = 1;
      if (i >= text0 && i < text0 + s.text) assert_int_equal(idx[i], i);
    }
    moved += l->kind != CG_LAYOUT_IDENTITY;
    cg_coords_free(&c);
  }
  free(idx);
  free(seen);
  return moved;
}

static void svg_map_is_the_layouts(void **st) {
  sieve_pattern *sp = load("svg", NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  for (int after = 0; after < 2; after++) {
    sieve_shape s = shp(5, 6, 7, 11, after, 4, 64);
    int moved = check_map(p, &s);
    assert_true(moved > 0 && moved < s.heads);  /* both classes */
  }
  sieve_pattern_free(sp);
}

static void sta_ragged_map_is_the_layouts(void **st) {
  sieve_pattern *sp = load("sta", NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  /* 6 x 8 x 8 tiles on 7 x 10 x 13: a short last tile on every axis. */
  for (int after = 0; after < 2; after++) {
    sieve_shape s = shp(7, 10, 13, 9, after, 2, 128);
    assert_int_equal(check_map(p, &s), 2);
  }
  sieve_shape wan;
  assert_int_equal(sieve_shape_preset("wan-1.3b-480p", &wan), SIEVE_OK);
  wan.heads = 1;
  assert_int_equal(check_map(p, &wan), 1);
  sieve_pattern_free(sp);
  /* Small tiles: several short ones, text after. */
  const char *ov[] = {"tile_t=2", "tile_y=3", "tile_x=4", NULL};
  sp = load("sta", ov);
  sieve_shape s = shp(5, 7, 9, 4, 1, 1, 64);
  assert_int_equal(check_map(lp_pattern_ir(sp), &s), 1);
  sieve_pattern_free(sp);
}

/* The default sm_90a config of a pattern in other layouts is the TMA
** kernel with the permute; SIEVE_PERMUTE=0 keeps the 8-warp kernel. */
static void default_config_permutes(void **st) {
  sieve_pattern *sp = load("sta", NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  cg_attn_spec s = {p, shp(7, 10, 13, 9, 0, 2, 128), CG_BF16, CG_SM90A, {0, 0, 0, 0}, 0};
  unsetenv("SIEVE_PERMUTE");
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.warps, CG_WS_WARPS);
  assert_true(cg_attn_permutes(&s));
  cg_err e = {0};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  setenv("SIEVE_PERMUTE", "0", 1);
  s.cfg = cg_attn_default_config(&s);
  unsetenv("SIEVE_PERMUTE");
  assert_int_equal(s.cfg.warps, 8);
  assert_false(cg_attn_permutes(&s));
  s.arch = CG_SM80;
  s.cfg = cg_attn_default_config(&s);
  assert_false(cg_attn_permutes(&s));
  sieve_pattern_free(sp);
}

/* ---------------------------------------------------------------- ptxas */

static void spill_free(const char *ptxas, const char *ptx, const char *arch, const char *what) {
  char log[4096];
  if (tp_assemble(ptxas, ptx, arch, log, sizeof log) != 0) fail_msg("ptxas -arch=%s rejects the permute of %s:\n%s", arch, what, log);
  const char *s = strstr(log, "bytes spill stores");
  if (!s) fail_msg("no resource line from ptxas for %s:\n%s", what, log);
  if (!strstr(log, " 0 bytes spill stores, 0 bytes spill loads")) fail_msg("the permute of %s spills:\n%s", what, log);
}

static void permute_assembles_without_spills(void **st) {
  char ptxas[1100];
  int have = tp_find_ptxas(ptxas, sizeof ptxas);
  if (!have) printf("*** ptxas not found: the permute's PTX is NOT assembled ***\n");
  sieve_shape wan, hy;
  assert_int_equal(sieve_shape_preset("wan-1.3b-480p", &wan), SIEVE_OK);
  assert_int_equal(sieve_shape_preset("hunyuan-720p", &hy), SIEVE_OK);
  const struct {
    const char *pat;
    sieve_shape s;
  } cases[] = {{"svg", shp(5, 6, 7, 11, 0, 4, 64)}, {"svg", hy}, {"sta", shp(7, 10, 13, 9, 1, 2, 128)},
               {"sta", wan}, {"sta", hy}, {"dense", shp(3, 5, 7, 13, 0, 3, 64)}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sieve_pattern *sp = load(cases[i].pat, NULL);
    cg_pattern *p = lp_pattern_ir(sp);
    for (int a = 0; a < 2; a++) {
      cg_err e = {0};
      char *ptx = NULL;
      if (cg_permute_build(p, &cases[i].s, a ? CG_SM90A : CG_SM80, &ptx, &e)) fail_msg("%s: %s", cases[i].pat, e.msg);
      assert_non_null(strstr(ptx, ".entry " CG_PERMUTE_KERNEL));
      assert_true(strstr(ptx, "ld.global.v4") || strstr(ptx, "ld.global.nc.v4"));
      assert_non_null(strstr(ptx, "st.global.v4"));
      if (have) spill_free(ptxas, ptx, a ? "sm_90a" : "sm_80", cases[i].pat);
      free(ptx);
    }
    sieve_pattern_free(sp);
  }
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(svg_map_is_the_layouts),
      cmocka_unit_test(sta_ragged_map_is_the_layouts),
      cmocka_unit_test(default_config_permutes),
      cmocka_unit_test(permute_assembles_without_spills),
  };
  return cmocka_run_group_tests(t, open_ctx, close_ctx);
}
