/*
** AdaSpa's search on the CPU: the reference selection's rules (top-p by
** mass with ties broken by entry order, the top-k cap, rows of no mass),
** and the search module's generation for patterns of every kind (dense,
** masked, remapped layouts), assembled by ptxas where it is found. The
** kernels' numbers are checked on a GPU (tests/gpu/gpu_dyn_search.c).
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_blocks.h"
#include "cg_profile.h"
#include "cg_search.h"
#include "lp.h"
#include "test_ptxas_util.h"

/* One level: entries i on key blocks i. */
static int ref1(const double *m, int n, double recall, int topk, uint8_t *sel) {
  int32_t kb[16];
  for (int i = 0; i < n; i++) kb[i] = i;
  return cg_search_select_ref(m, kb, n, n, NULL, 0, recall, topk, sel);
}

static void picks_the_heaviest_prefix(void **st) {
  const double m[] = {0.1, 0.4, 0.05, 0.3, 0.15};
  uint8_t sel[5];
  /* 0.4 + 0.3 = 0.7 < 0.75; + 0.15 reaches it. */
  assert_int_equal(ref1(m, 5, 0.75, 0, sel), 3);
  const uint8_t want[5] = {0, 1, 0, 1, 1};
  assert_memory_equal(sel, want, 5);
  assert_int_equal(ref1(m, 5, 1.0, 0, sel), 5);
  assert_int_equal(ref1(m, 5, 0.4, 0, sel), 1);
  assert_int_equal(sel[1], 1);
}

static void ties_go_by_entry_order(void **st) {
  const double m[] = {0.25, 0.25, 0.25, 0.25};
  uint8_t sel[4];
  assert_int_equal(ref1(m, 4, 0.5, 0, sel), 2);
  const uint8_t want[4] = {1, 1, 0, 0};
  assert_memory_equal(sel, want, 4);
}

static void topk_caps_the_count(void **st) {
  const double m[] = {0.2, 0.2, 0.2, 0.2, 0.2};
  uint8_t sel[5];
  assert_int_equal(ref1(m, 5, 0.9, 2, sel), 2);
  const uint8_t want[5] = {1, 1, 0, 0, 0};
  assert_memory_equal(sel, want, 5);
  assert_int_equal(ref1(m, 5, 0.3, 4, sel), 2);  /* under the cap: top-p decides */
}

static void rows_without_mass_keep_nothing(void **st) {
  const double m[] = {0, 0, 0};
  uint8_t sel[3];
  assert_int_equal(ref1(m, 3, 0.9, 0, sel), 0);
  assert_int_equal(ref1(m, 0, 0.9, 0, sel), 0);
  const double z[] = {0.5, 0, 0.5};
  assert_int_equal(ref1(z, 3, 1.0, 0, sel), 2);  /* zero blocks add nothing */
}

/* A coarse group of light blocks loses to one heavier group, where one
** level would take the heaviest block of each. */
static void levels_choose_groups_first(void **st) {
  const double m[] = {0.3, 0.0, 0.25, 0.25};
  const int32_t kb[] = {0, 1, 2, 3};
  const int g[] = {2};
  uint8_t sel[4];
  assert_int_equal(cg_search_select_ref(m, kb, 4, 4, NULL, 0, 0.5, 0, sel), 2);
  const uint8_t flat[4] = {1, 0, 1, 0};
  assert_memory_equal(sel, flat, 4);
  assert_int_equal(cg_search_select_ref(m, kb, 4, 4, g, 1, 0.5, 0, sel), 2);
  const uint8_t grouped[4] = {0, 0, 1, 1};
  assert_memory_equal(sel, grouped, 4);
}

/* Random rows with entries in any order and blocks missing: every level's
** choice stays inside the level above, the kept mass reaches the recall,
** and one-block groups change nothing. */
static void levels_keep_the_recall(void **st) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int t = 0; t < 400; t++) {
    int nk = 1 + (int)(x % 40), n = 0;
    double m[40], total = 0;
    int32_t kb[40];
    uint8_t sel[40], flat[40], again[40];
    for (int k = 0; k < nk; k++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      if ((x >> 60) < 3) continue;  /* not allowed */
      kb[n] = k;
      m[n] = (double)(x >> 40 & 0xffff) / 65536.0 * ((x >> 33 & 7) ? 1 : 1.0 / 1024);
      total += m[n++];
    }
    for (int i = n - 1; i > 0; i--) {  /* any entry order */
      int j = (int)((x >> 20) % (uint64_t)(i + 1));
      double tm = m[i];
      int32_t tk = kb[i];
      m[i] = m[j], kb[i] = kb[j], m[j] = tm, kb[j] = tk;
    }
    const int g[] = {8, 4, 2};
    int lv = 1 + t % 3;
    double recall = 0.5 + 0.45 * (double)(t % 10) / 9;
    int k = cg_search_select_ref(m, kb, n, nk, g + 3 - lv, lv, recall, 0, sel);
    double kept = 0;
    for (int i = 0; i < n; i++) kept += sel[i] ? m[i] : 0;
    assert_true(k >= 0);
    if (kept < recall * total * (1 - 1e-6)) fail_msg("case %d: kept %g of %g, recall %g", t, kept, total, recall);
    const int ones[] = {1};
    assert_int_equal(cg_search_select_ref(m, kb, n, nk, ones, 1, recall, 0, again),
                     cg_search_select_ref(m, kb, n, nk, NULL, 0, recall, 0, flat));
    assert_memory_equal(again, flat, (size_t)n);
  }
}

/* ------------------------------------------ AdaSpa: tiers, text sink */

/* AdaSpa §4.2 by brute force: a head's rank is how many heads have a higher
** recall, or the same and a lower index; n = heads above thr, at most half. */
static void ref_tiers(const double *r, int H, double s, double thr, double *out) {
  int above = 0;
  for (int h = 0; h < H; h++) above += r[h] > thr;
  int n = above < H / 2 ? above : H / 2;
  for (int h = 0; h < H; h++) {
    int rank = 0;
    for (int g = 0; g < H; g++) rank += r[g] > r[h] || (r[g] == r[h] && g < h);
    double lo = (3 * s - 1) / 2;
    out[h] = rank < n ? (1 + s) / 2 : rank >= H - n ? (lo > 0 ? lo : 0) : s;
  }
}

static void tiers_follow_the_paper(void **st) {
  /* Four of eight heads above 0.8: those to 0.9, the four lowest to 0.7. */
  const double r[8] = {0.95, 0.5, 0.85, 0.3, 0.9, 0.6, 0.7, 0.81};
  const double want[8] = {0.9, 0.7, 0.9, 0.7, 0.9, 0.7, 0.7, 0.9};
  double sp[8], mean = 0;
  assert_int_equal(cg_search_tiers(r, 8, 0.8, 0.8, sp), 4);
  for (int h = 0; h < 8; h++) {
    assert_true(fabs(sp[h] - want[h]) < 1e-12);
    mean += sp[h] / 8;
  }
  assert_true(fabs(mean - 0.8) < 1e-12);
  /* Two above: the two highest up, the two lowest down, the rest stay. */
  const double r2[6] = {0.2, 0.99, 0.4, 0.5, 0.81, 0.3};
  const double w2[6] = {0.7, 0.9, 0.8, 0.8, 0.9, 0.7};
  assert_int_equal(cg_search_tiers(r2, 6, 0.8, 0.8, sp), 2);
  for (int h = 0; h < 6; h++) assert_true(fabs(sp[h] - w2[h]) < 1e-12);
  /* Every head above: at most half move each way; none: all keep s. */
  const double r3[5] = {0.9, 0.95, 0.85, 0.99, 0.9};
  assert_int_equal(cg_search_tiers(r3, 5, 0.8, 0.8, sp), 2);
  assert_true(fabs(sp[2] - 0.7) < 1e-12 && fabs(sp[0] - 0.8) < 1e-12 && fabs(sp[3] - 0.9) < 1e-12);
  assert_true(fabs(sp[4] - 0.7) < 1e-12);  /* 0.9 ties with head 0, which ranks first */
  const double r4[3] = {0.1, 0.8, 0.5};     /* 0.8 is not above 0.8 */
  assert_int_equal(cg_search_tiers(r4, 3, 0.8, 0.8, sp), 0);
  for (int h = 0; h < 3; h++) assert_true(sp[h] == 0.8);
  /* (3s - 1) / 2 below 0 is dense. */
  const double r5[2] = {0.9, 0.1};
  assert_int_equal(cg_search_tiers(r5, 2, 0.2, 0.8, sp), 1);
  assert_true(fabs(sp[0] - 0.6) < 1e-12 && sp[1] == 0);
  /* Random recalls with ties against the brute force; the mean stays s. */
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (int t = 0; t < 500; t++) {
    double rr[64], got[64], ref[64], s = 0.35 + 0.6 * (double)(t % 13) / 12, m = 0;
    int H = 1 + t % 64;
    for (int h = 0; h < H; h++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      rr[h] = (double)(x >> 60) / 16;  /* 16 values: many ties */
    }
    cg_search_tiers(rr, H, s, 0.8, got);
    ref_tiers(rr, H, s, 0.8, ref);
    for (int h = 0; h < H; h++) {
      if (got[h] != ref[h]) fail_msg("case %d head %d: %g, want %g", t, h, got[h], ref[h]);
      m += got[h] / H;
    }
    if (fabs(m - s) > 1e-9) fail_msg("case %d: mean sparsity %g, base %g", t, m, s);
  }
  /* Top-k per tier over 1861 key blocks (hunyuan-720p at 64): 20%, 10%, 30%. */
  assert_int_equal(cg_search_topk(0.8, 1861), 373);
  assert_int_equal(cg_search_topk(0.9, 1861), 187);
  assert_int_equal(cg_search_topk(0.7, 1861), 559);
  assert_int_equal(cg_search_topk(0, 10), 10);
  assert_int_equal(cg_search_topk(0.99, 10), 1);
}

/* The sink's blocks against the tokens themselves: a block is in it when
** one of its tokens is text with an index below the valid length. */
static void text_sink_blocks(void **st) {
  const sieve_shape shapes[] = {
      {.batch = 1, .heads = 1, .head_dim = 64, .frames = 3, .height = 5, .width = 7, .text = 13},
      {.batch = 1, .heads = 1, .head_dim = 64, .frames = 3, .height = 5, .width = 7, .text = 13, .text_after = 1},
      {.batch = 1, .heads = 1, .head_dim = 64, .frames = 4, .height = 8, .width = 8, .text = 64, .text_after = 1},
      {.batch = 1, .heads = 1, .head_dim = 64, .frames = 2, .height = 3, .width = 3, .text = 200},
      {.batch = 1, .heads = 1, .head_dim = 64, .frames = 2, .height = 3, .width = 3},
  };
  const int blocks[] = {16, 64, 128};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const sieve_shape *sh = &shapes[i];
    cg_coords c;
    assert_int_equal(cg_layout_enum(&(cg_layout){CG_LAYOUT_IDENTITY, {0}}, sh, &c), 0);
    const int tl[] = {-1, 0, 1, sh->text / 2, sh->text, sh->text + 5};
    for (int j = 0; j < 6; j++)
      for (int bi = 0; bi < 3; bi++) {
        int bs = blocks[bi];
        int64_t lo, hi, nb = (c.n + bs - 1) / bs;
        cg_search_text_span(sh, tl[j], &lo, &hi);
        for (int64_t b = 0; b < nb; b++) {
          int want = 0, ti = 0;
          for (int64_t p = 0; p < c.n; p++) {
            if (!c.text[p]) continue;
            int valid = tl[j] < 0 || ti < tl[j];
            if (valid && p / bs == b) want = 1;
            ti++;
          }
          if (cg_search_in_sink(b, bs, lo, hi) != want)
            fail_msg("shape %zu, tlen %d, block %lld of %d: sink %d, want %d", i, tl[j], (long long)b, bs,
                     !want, want);
        }
      }
    cg_coords_free(&c);
  }
}

/* ------------------------------------------------------------- modules */

static void assembles(const char *ptxas, const char *ptx, const char *arch, const char *what) {
  char log[8192];
  if (tp_assemble(ptxas, ptx, arch, log, sizeof log) != 0)
    fail_msg("ptxas rejects the %s search module of %s:\n%s", arch, what, log);
  if (strstr(log, "bytes spill stores") && !strstr(log, " 0 bytes spill stores"))
    fail_msg("the search module of %s spills:\n%s", what, log);
  if (tp_wgmma_serialised(log)) fail_msg("ptxas serialised the wgmma of the %s search module of %s:\n%s", arch, what, log);
}

static const char *search_src =
    "return sieve.pattern{ name = 'fw_search', block = {q = 64, k = 128},\n"
    "  mask = sieve.union(sieve.frame_window(1), sieve.text_rows(), sieve.text_cols()),\n"
    "  selection = sieve.search{ recall = 0.8, topk = 3, steps = {0, 5}, levels = {128} } }";

static void modules_generate_and_assemble(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  char ptxas[1100], path[1024];
  int have = tp_find_ptxas(ptxas, sizeof ptxas);
  if (!have) printf("*** ptxas not found: the search modules are NOT assembled ***\n");
  const char *src = getenv("SIEVE_SOURCE_DIR");
  const char *names[] = {"adaspa", "svg", "lvsa", NULL};
  sieve_shape hy, small = {.batch = 2, .heads = 3, .head_dim = 64, .frames = 3, .height = 5,
                           .width = 7, .text = 13};
  assert_int_equal(sieve_shape_preset("hunyuan-720p", &hy), SIEVE_OK);
  for (int i = 0; i < 4; i++) {
    sieve_pattern *sp = NULL;
    if (names[i]) {
      snprintf(path, sizeof path, "%s/patterns/%s.lua", src ? src : ".", names[i]);
      assert_int_equal(sieve_pattern_load(ctx, path, NULL, &sp), SIEVE_OK);
    } else if (sieve_pattern_load_string(ctx, "fw_search", search_src, NULL, &sp)) {
      fail_msg("%s", sieve_errmsg(ctx));
    }
    /* Both shapes on both paths: mma.sync (sm_80) and wgmma (sm_90a). */
    for (int a = 0; a < 4; a++) {
      cg_arch arch = a / 2 ? CG_SM90A : CG_SM80;
      cg_search_spec s = {lp_pattern_ir(sp), a % 2 ? hy : small, a % 2 ? CG_BF16 : CG_FP16, arch, 1000};
      char *ptx = NULL;
      cg_err e = {0};
      if (cg_search_build(&s, &ptx, &e)) fail_msg("%s: %s", names[i] ? names[i] : "fw_search", e.msg);
      assert_non_null(strstr(ptx, ".entry sieve_search_mass"));
      assert_non_null(strstr(ptx, ".entry sieve_search_select"));
      assert_non_null(strstr(ptx, ".entry " CG_SEARCH_SEG_MASS "("));
      /* K by TMA on sm_90a where its rows are the model's: svg's temporal
      ** class gathers them through its layout. */
      int tma = arch == CG_SM90A && !(names[i] && !strcmp(names[i], "svg"));
      assert_int_equal(cg_search_mass_tma(&s), tma);
      assert_int_equal(strstr(ptx, ".entry " CG_SEARCH_MASS_TMA "(") != NULL, tma);
      assert_int_equal(strstr(ptx, "wgmma.mma_async") != NULL, arch == CG_SM90A);
      if (have) assembles(ptxas, ptx, arch == CG_SM90A ? "sm_90a" : "sm_90", names[i] ? names[i] : "fw_search");
      free(ptx);
    }
    sieve_pattern_free(sp);
  }
  sieve_close(ctx);
}

/* SVG's profiling module: both head dims, the shipped classes, one and two
** row groups; the batch comes from the grid and the strides, not the code. */
static void profile_modules_generate_and_assemble(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  char ptxas[1100], path[1024];
  int have = tp_find_ptxas(ptxas, sizeof ptxas);
  const char *src = getenv("SIEVE_SOURCE_DIR"), *ov[] = {"profile=true", NULL};
  snprintf(path, sizeof path, "%s/patterns/svg.lua", src ? src : ".");
  sieve_pattern *sp = NULL;
  assert_int_equal(sieve_pattern_load(ctx, path, ov, &sp), SIEVE_OK);
  cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->sel.kind, CG_SELECT_PROFILE);
  sieve_shape hy;
  assert_int_equal(sieve_shape_preset("hunyuan-720p", &hy), SIEVE_OK);
  for (int d = 64; d <= 128; d *= 2) {
    hy.head_dim = d;
    hy.batch = 1;
    cg_profile_spec s = {p, hy, CG_BF16, CG_SM80, d, 0};  /* 128 rows: blockIdx.z is b * 2 + group */
    char *ptx = NULL, *ptx3 = NULL;
    cg_err e = {0};
    if (cg_profile_build(&s, &ptx, &e)) fail_msg("%s", e.msg);
    assert_non_null(strstr(ptx, ".entry sieve_profile_part"));
    const char *err = strstr(ptx, ".entry sieve_profile_err");
    assert_non_null(err);
    /* Every batch stride is read, and the merge takes its element from z. */
    assert_non_null(strstr(ptx, "[sieve_profile_part_param_3]"));
    assert_non_null(strstr(ptx, "[sieve_profile_part_param_6]"));
    assert_non_null(strstr(ptx, "[sieve_profile_part_param_9]"));
    assert_non_null(strstr(err, "%ctaid.z"));
    s.shape.batch = 3;
    if (cg_profile_build(&s, &ptx3, &e)) fail_msg("%s", e.msg);
    assert_string_equal(ptx, ptx3);
    assert_int_equal(cg_profile_part_floats(&s, 3), 3 * cg_profile_part_floats(&s, 1));
    assert_int_equal(cg_profile_err_floats(&s, 3), 3 * cg_profile_err_floats(&s, 1));
    assert_int_equal(cg_profile_err_floats(&s, 1), (size_t)hy.heads * d * (p->nclasses + 1));
    char log[4096];
    if (have && tp_assemble(ptxas, ptx, "sm_90", log, sizeof log) != 0)
      fail_msg("ptxas rejects the profiling module:\n%s", log);
    free(ptx);
    /* Plans on sm_90 take sm_90a, and their profiling module with them. */
    s.arch = CG_SM90A;
    if (cg_profile_build(&s, &ptx, &e)) fail_msg("%s", e.msg);
    assert_non_null(strstr(ptx, ".target sm_90a"));
    if (have && tp_assemble(ptxas, ptx, "sm_90a", log, sizeof log) != 0)
      fail_msg("ptxas rejects the sm_90a profiling module:\n%s", log);
    free(ptx);
    free(ptx3);
  }
  cg_profile_spec bad = {p, hy, CG_BF16, CG_SM80, 50, 0};
  char *ptx = NULL;
  cg_err e = {0};
  assert_int_equal(cg_profile_build(&bad, &ptx, &e), SIEVE_ERR_ARG);
  bad.ns = 64;
  bad.chunk = 100;  /* not a multiple of 64 */
  assert_int_equal(cg_profile_build(&bad, &ptx, &e), SIEVE_ERR_ARG);
  bad.chunk = 8192;  /* past CG_PROFILE_CHUNK */
  assert_int_equal(cg_profile_build(&bad, &ptx, &e), SIEVE_ERR_ARG);
  sieve_pattern_free(sp);
  sieve_close(ctx);
}

/* The key chunk: halved while the part kernel has too few CTAs, counted by
** hand for the two shapes the profiling cost is measured on. */
static void profile_chunk_fills_the_gpu(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  char path[1024];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/patterns/svg.lua", src ? src : ".");
  sieve_pattern *sp = NULL;
  assert_int_equal(sieve_pattern_load(ctx, path, NULL, &sp), SIEVE_OK);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape hy, wan;
  assert_int_equal(sieve_shape_preset("hunyuan-720p", &hy), SIEVE_OK);
  assert_int_equal(sieve_shape_preset("wan-1.3b-480p", &wan), SIEVE_OK);
  /* hunyuan-720p: 118,800 tokens, 30 chunks of 4096 (the last of 16) x 24 heads = 720 CTAs. */
  cg_profile_spec s = {p, hy, CG_BF16, CG_SM80, 64, 0};
  assert_int_equal(cg_profile_pick_chunk(&s, 1, 512), 4096);
  assert_int_equal(cg_profile_chunks(&s), 30);
  /* wan-1.3b-480p: 32,760 tokens x 12 heads: 96, 192, 384 CTAs at 4096,
  ** 2048, 1024; 64 chunks of 512 give 768. */
  s.shape = wan;
  assert_int_equal(cg_profile_pick_chunk(&s, 1, 512), 512);
  s.chunk = 512;
  assert_int_equal(cg_profile_chunks(&s), 64);
  assert_int_equal(cg_profile_part_floats(&s, 1), (size_t)3 * 12 * 64 * 64 * 130);
  /* A batch of 2 and two row groups: 4 x 96 = 384 at 4096, 768 at 2048. */
  s.chunk = 0;
  s.ns = 128;
  assert_int_equal(cg_profile_pick_chunk(&s, 2, 512), 2048);
  assert_int_equal(cg_profile_pick_chunk(&s, 1, 0), 4096);
  /* The chunk is compiled in: another chunk, another module. */
  char *a = NULL, *b = NULL;
  cg_err e = {0};
  s.ns = 64;
  s.chunk = 512;
  if (cg_profile_build(&s, &a, &e)) fail_msg("%s", e.msg);
  s.chunk = 1024;
  if (cg_profile_build(&s, &b, &e)) fail_msg("%s", e.msg);
  assert_string_not_equal(a, b);
  free(a);
  free(b);
  sieve_pattern_free(sp);
  sieve_close(ctx);
}

static void unsupported_blocks_are_refused(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_pattern *sp = NULL;
  const char *src = "return sieve.pattern{ name = 'b', block = {q = 64, k = 128}, mask = sieve.dense() }";
  assert_int_equal(sieve_pattern_load_string(ctx, "b", src, NULL, &sp), SIEVE_OK);
  lp_pattern_ir(sp)->block_q = 32;  /* the loader refuses it; the generator must too */
  cg_search_spec s = {lp_pattern_ir(sp), {.batch = 1, .heads = 1, .head_dim = 64, .frames = 2, .height = 8, .width = 8},
                      CG_BF16, CG_SM80, 4};
  char *ptx = NULL;
  cg_err e = {0};
  assert_int_equal(cg_search_build(&s, &ptx, &e), SIEVE_ERR_UNSUPPORTED);
  assert_non_null(strstr(e.msg, "query blocks of 32"));
  sieve_pattern_free(sp);
  sieve_close(ctx);
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(picks_the_heaviest_prefix),
      cmocka_unit_test(ties_go_by_entry_order),
      cmocka_unit_test(topk_caps_the_count),
      cmocka_unit_test(rows_without_mass_keep_nothing),
      cmocka_unit_test(levels_choose_groups_first),
      cmocka_unit_test(levels_keep_the_recall),
      cmocka_unit_test(tiers_follow_the_paper),
      cmocka_unit_test(text_sink_blocks),
      cmocka_unit_test(modules_generate_and_assemble),
      cmocka_unit_test(profile_modules_generate_and_assemble),
      cmocka_unit_test(profile_chunk_fills_the_gpu),
      cmocka_unit_test(unsupported_blocks_are_refused),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
