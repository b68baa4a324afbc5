/*
** The GPU block-table builder, on the CPU: its head grouping and masks give,
** at every step, the masks cg_tables_build fixes; its boxes give the CPU
** builder's interval counts; its module generates and (where ptxas is
** found) assembles for every shipped pattern. The kernel's output itself is
** checked on a GPU (tests/gpu/gpu_dyn.c).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_interval.h"
#include "cg_tablegen.h"
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

static sieve_shape shp(int T, int Y, int X, int text, int after, int H) {
  return (sieve_shape){.batch = 1, .heads = H, .head_dim = 64, .frames = T, .height = Y,
                       .width = X, .text = text, .text_after = after};
}

static const char *shipped[] = {"dense", "causal", "token_window", "frame_window",
                                "lvsa", "svg", "sta", "adaspa"};
/* lvsa's step-dependent forms (its default is static): sieve's rotation over
** a fixed interval, LVSA's with train_frames, and with the window shrink. */
static const char *const lvsa_rot[][4] = {
  {"rotate_fixed=true", NULL}, {"train_frames=5", "rotate=true", NULL},
  {"window=5", "first=2", "rotate_fixed=true", NULL}, {"window=5", "first=2", "train_frames=13", "rotate=true"}, {"train_frames=6", "window=5", "first=2", "rotate=true"},
};
#define NLVSA_ROT (sizeof lvsa_rot / sizeof *lvsa_rot)

/* At (step, layer) each head's table mask is the CPU builder's, and so are
** the interval test's counts on the builder's boxes. */
static void check_against_cpu(cg_pattern *p, const sieve_shape *s, int step, int layer) {
  cg_err e = {0};
  cg_tgen *t = NULL;
  cg_tableset *ts = NULL;
  assert_int_equal(cg_tgen_new(p, s, &t, &e), SIEVE_OK);
  assert_int_equal(cg_tables_build(p, s, step, layer, &ts, &e), SIEVE_OK);
  assert_int_equal(t->nq, ts->nq);
  assert_int_equal(t->nk, ts->nk);
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_STEP] = cg_const(p->g, step);
  map[CG_V_LAYER] = cg_const(p->g, layer);
  for (int h = 0; h < s->heads; h++) {
    const cg_table *c = &ts->tables[ts->head_table[h]];
    assert_int_equal(cg_subst(p->g, t->mask[t->head_table[h]], map), c->mask);
    assert_int_equal(t->cls[t->head_table[h]], c->cls);
  }
  /* The CPU builder counts per distinct table at this step; the GPU one may
  ** keep apart heads that coincide at this step only, so compare when both
  ** have the same number of tables. */
  if (t->ntables == ts->ntables) {
    int64_t n[3] = {0};
    uint8_t *cls = malloc((size_t)t->nq * (size_t)t->nk);
    assert_non_null(cls);
    for (int i = 0; i < t->ntables; i++) {
      assert_int_equal(cg_tgen_classes(p, t, i, step, layer, cls, &e), SIEVE_OK);
      for (int64_t j = 0; j < (int64_t)t->nq * t->nk; j++) n[cls[j]]++;
    }
    free(cls);
    assert_int_equal(n[CG_BLK_FULL], ts->interval_full);
    assert_int_equal(n[CG_BLK_EMPTY], ts->interval_empty);
    assert_int_equal(n[CG_BLK_UNDECIDED], ts->interval_undecided);
  }
  cg_tables_free(ts);
  cg_tgen_free(t);
}

static sieve_pattern *load_rot(size_t r) {
  const char *ov[5] = {lvsa_rot[r][0], lvsa_rot[r][1], lvsa_rot[r][2], lvsa_rot[r][3], NULL};
  return load("lvsa", ov);
}

static void masks_and_intervals_match_the_cpu(void **st) {
  const sieve_shape shapes[] = {shp(3, 5, 7, 13, 0, 3), shp(9, 6, 10, 40, 1, 4), shp(17, 8, 8, 0, 0, 2)};
  const int steps[][2] = {{0, 0}, {3, 5}, {17, 2}, {40, 31}};
  for (size_t i = 0; i < sizeof shipped / sizeof *shipped + NLVSA_ROT; i++) {
    size_t r = i - sizeof shipped / sizeof *shipped;
    sieve_pattern *sp = i < sizeof shipped / sizeof *shipped ? load(shipped[i], NULL) : load_rot(r);
    for (size_t a = 0; a < sizeof shapes / sizeof *shapes; a++)
      for (size_t b = 0; b < sizeof steps / sizeof *steps; b++)
        check_against_cpu(lp_pattern_ir(sp), &shapes[a], steps[b][0], steps[b][1]);
    sieve_pattern_free(sp);
  }
}

/* A mask that reads the head: one table per head, each fixed to its head. */
static void heads_that_differ_get_tables_of_their_own(void **st) {
  const char *src =
      "return sieve.pattern{ name = 'ph', mask = sieve.mask(function(q, k, c)\n"
      "  return ((k.t + c.head + c.step) % 3):eq(0) | (q.t - k.t):abs():le(c.layer % 2) end) }";
  sieve_pattern *sp = NULL;
  assert_int_equal(sieve_pattern_load_string(ctx, "ph", src, NULL, &sp), SIEVE_OK);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape s = shp(7, 4, 6, 5, 0, 5);
  cg_err e = {0};
  cg_tgen *t = NULL;
  assert_int_equal(cg_tgen_new(p, &s, &t, &e), SIEVE_OK);
  assert_int_equal(t->ntables, 5);
  cg_tgen_free(t);
  check_against_cpu(p, &s, 4, 3);
  sieve_pattern_free(sp);
}

static void boxes_cover_their_blocks(void **st) {
  sieve_pattern *sp = load("svg", NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape s = shp(5, 6, 7, 11, 0, 2);
  cg_err e = {0};
  cg_tgen *t = NULL;
  assert_int_equal(cg_tgen_new(p, &s, &t, &e), SIEVE_OK);
  assert_int_equal(t->ntables, 2);
  for (int i = 0; i < t->ntables; i++) {
    cg_coords c;
    assert_int_equal(cg_layout_enum(&p->classes[t->cls[i]].layout, &t->shape, &c), 0);
    const int32_t *b = t->boxes + (size_t)i * (size_t)(t->nq + t->nk) * 2 * CG_NIN;
    for (int64_t pos = 0; pos < c.n; pos++) {
      const int32_t *qb = b + (pos / t->bq) * 2 * CG_NIN;
      const int32_t v[CG_NIN] = {c.t[pos], c.y[pos], c.x[pos], c.text[pos], c.idx[pos], (int32_t)pos};
      for (int k = 0; k < CG_NIN; k++) assert_true(qb[2 * k] <= v[k] && v[k] <= qb[2 * k + 1]);
    }
    cg_coords_free(&c);
  }
  cg_tgen_free(t);
  sieve_pattern_free(sp);
}

/*
** Partial blocks of the classes with bits are numbered over all tables,
** row by row, from the counts; tables without bits get -1.
*/
static void bitmasks_are_numbered_row_by_row(void **st) {
  sieve_pattern *sp = lt_load_source(ctx, "bench/patterns", "radial", NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape s = shp(5, 7, 9, 13, 1, 4);
  cg_err e = {0};
  cg_tgen *t = NULL;
  cg_tableset *ts = NULL;
  assert_int_equal(cg_tgen_new_bits(p, &s, 1u, &t, &e), SIEVE_OK);  /* the spatial class only */
  assert_int_equal(t->ntables, 2);
  assert_int_equal(t->table_ints, 2 * (int64_t)t->nq + 1 + 2 * (int64_t)t->nq * t->nk);
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_OK);
  size_t rows = (size_t)t->ntables * (size_t)t->nq;
  int32_t *counts = calloc(2 * rows, sizeof *counts), *pgbase = calloc(rows, sizeof *pgbase);
  assert_non_null(counts);
  assert_non_null(pgbase);
  int64_t want = 0;
  for (int i = 0; i < t->ntables; i++) {
    int h = 0;
    while (t->head_table[h] != i) h++;
    const cg_table *c = &ts->tables[ts->head_table[h]];
    for (int qb = 0; qb < t->nq; qb++) {
      counts[2 * (i * t->nq + qb)] = c->full_ptr[qb + 1] - c->full_ptr[qb];
      counts[2 * (i * t->nq + qb) + 1] = c->part_ptr[qb + 1] - c->part_ptr[qb];
    }
    if (cg_tgen_table_bits(t, i)) want += c->npart;
  }
  assert_int_equal(cg_tgen_bits_place(t, counts, pgbase), want);
  int64_t at = 0;
  for (int i = 0; i < t->ntables; i++)
    for (int qb = 0; qb < t->nq; qb++) {
      int64_t row = (int64_t)i * t->nq + qb;
      if (!cg_tgen_table_bits(t, i)) {
        assert_int_equal(pgbase[row], -1);
        continue;
      }
      assert_int_equal(pgbase[row], at);
      at += counts[2 * row + 1];
    }
  assert_true(want > 0);
  free(counts);
  free(pgbase);
  cg_tables_free(ts);
  cg_tgen_free(t);
  sieve_pattern_free(sp);
}

/* --------------------------------------------------------------- ptxas */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Assembles for arch with no spills (the refinement's mask code is the
** largest part, and a spill there costs every token pair). */
static void assembles(const char *ptxas, const char *ptx, const char *arch, const char *what) {
  char log[16384];
  if (tp_assemble(ptxas, ptx, arch, log, sizeof log) != 0)
    fail_msg("ptxas rejects the table builder of %s for %s:\n%s", what, arch, log);
  /* The sanitizer build (.ci/sanitize) is compiled by clang, which
  ** evaluates nested LLVM builder calls in another order than gcc: its PTX
  ** holds the same operations in another order, and ptxas allocates
  ** registers differently (lvsa's classify kernel spills 12 bytes at
  ** sm_90a there). Spills are checked in the build that ships. */
  if (SANITIZED) return;
  for (const char *s = strstr(log, "bytes spill stores"); s; s = strstr(s + 1, "bytes spill stores")) {
    const char *b = s;
    while (b > log && b[-1] == ' ') b--;
    while (b > log && b[-1] >= '0' && b[-1] <= '9') b--;
    const char *l = strstr(s, ", ");
    if (atoi(b) || (l && atoi(l + 2))) fail_msg("the table builder of %s spills for %s:\n%s", what, arch, log);
  }
}

static sieve_pattern *load_bench(const char *name) {
  return lt_load_source(ctx, "bench/patterns", name, NULL);
}

static void modules_generate_and_assemble(void **st) {
  char ptxas[1100];
  int have = tp_find_ptxas(ptxas, sizeof ptxas);
  if (!have) printf("*** ptxas not found: the table builder's PTX is NOT assembled ***\n");
  sieve_shape hy;
  assert_int_equal(sieve_shape_preset("hunyuan-720p", &hy), SIEVE_OK);
  const sieve_shape shapes[] = {shp(3, 5, 7, 13, 0, 3), hy};
  const size_t nship = sizeof shipped / sizeof *shipped;
  static const char *bench[] = {"radial", "dilated"};
  for (size_t i = 0; i < nship + 2 + NLVSA_ROT; i++) {
    char rot[128];
    if (i >= nship + 2) {
      const char *const *r = lvsa_rot[i - nship - 2];
      snprintf(rot, sizeof rot, "lvsa %s %s %s %s", r[0], r[1] ? r[1] : "", r[2] ? r[2] : "", r[3] ? r[3] : "");
    }
    const char *name = i < nship ? shipped[i] : i < nship + 2 ? bench[i - nship] : rot;
    sieve_pattern *sp = i < nship ? load(name, NULL) : i < nship + 2 ? load_bench(name) : load_rot(i - nship - 2);
    cg_pattern *p = lp_pattern_ir(sp);
    for (size_t a = 0; a < 2; a++) {
      for (int arch = 0; arch < 2; arch++) {
        cg_err e = {0};
        cg_tgen *t = NULL;
        char *ptx = NULL;
        assert_int_equal(cg_tgen_new(p, &shapes[a], &t, &e), SIEVE_OK);
        if (cg_tgen_build(p, t, arch ? CG_SM90A : CG_SM80, &ptx, &e)) fail_msg("%s: %s", name, e.msg);
        static const char *const entries[] = {".entry sieve_tbl_classify", ".entry sieve_tbl_refine",
                                              ".entry sieve_tbl_compact", ".entry sieve_tbl_scan",
                                              ".entry sieve_tbl_fill"};
        for (int k = 0; k < 5; k++) assert_non_null(strstr(ptx, entries[k]));
        assert_null(strstr(ptx, ".entry sieve_tbl_bits"));
        if (have) assembles(ptxas, ptx, arch ? "sm_90a" : "sm_80", name);
        free(ptx);
        cg_tgen_free(t);
        /* With bitmasks where the cost gives them. */
        uint32_t bits = cg_bits_classes(p, &shapes[a], CG_BITS_COST);
        if (!bits) continue;
        assert_int_equal(cg_tgen_new_bits(p, &shapes[a], bits, &t, &e), SIEVE_OK);
        assert_int_equal(t->ew, 2);
        if (cg_tgen_build(p, t, arch ? CG_SM90A : CG_SM80, &ptx, &e)) fail_msg("%s: %s", name, e.msg);
        for (int k = 0; k < 5; k++) assert_non_null(strstr(ptx, entries[k]));
        assert_non_null(strstr(ptx, ".entry sieve_tbl_bits"));
        assert_non_null(strstr(ptx, ".entry sieve_tbl_bhash"));
        if (have) assembles(ptxas, ptx, arch ? "sm_90a" : "sm_80", name);
        free(ptx);
        cg_tgen_free(t);
      }
    }
    sieve_pattern_free(sp);
  }
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(masks_and_intervals_match_the_cpu),
      cmocka_unit_test(heads_that_differ_get_tables_of_their_own),
      cmocka_unit_test(boxes_cover_their_blocks),
      cmocka_unit_test(bitmasks_are_numbered_row_by_row),
      cmocka_unit_test(modules_generate_and_assemble),
  };
  return cmocka_run_group_tests(t, open_ctx, close_ctx);
}
