/*
** cg_simplify: the rewritten expression equals the original wherever the
** variables lie in their ranges, for random expressions built to meet its
** rules, for the layouts' coordinate maps divided by their tile sizes, and
** for every shipped pattern's kernel expressions on ragged shapes with
** text before and after; and it removes what it promises to (sta's key
** column part divides no coordinate it built).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cg_blocks.h"
#include "cg_simplify.h"
#include "lp.h"
#include "test_lua_util.h"
#include "test_rand.h"

static void no_ranges(cg_range r[CG_NVARS]) {
  for (int i = 0; i < CG_NVARS; i++) r[i] = cg_range_none();
}

/* vars at random points of their ranges; the ones without a range 0. */
static void rvars(const cg_range r[CG_NVARS], int64_t v[CG_NVARS]) {
  for (int i = 0; i < CG_NVARS; i++) v[i] = r[i].lo <= r[i].hi ? rint_in(r[i].lo, r[i].hi) : 0;
}

static void same_at(cg_graph *g, cg_ref a, cg_ref b, const cg_range r[CG_NVARS], int samples) {
  for (int s = 0; s < samples; s++) {
    int64_t v[CG_NVARS];
    rvars(r, v);
    if (cg_eval1(g, a, v) != cg_eval1(g, b, v))
      fail_msg("seed %llu: %lld != %lld at pos %lld / %lld", (unsigned long long)seed, (long long)cg_eval1(g, a, v),
               (long long)cg_eval1(g, b, v), (long long)v[CG_V_QPOS], (long long)v[CG_V_KPOS]);
  }
}

/* ---------------------------------------------------------- random trees */

static const int64_t divisors[] = {1, 2, 3, 4, 6, 8, 12, 16, 48, 96};

static cg_ref rexpr(cg_graph *g, int depth) {
  int64_t c = divisors[rnd() % 10];
  if (depth == 0 || rnd() % 5 == 0) {
    switch (rnd() % 3) {
    case 0: return cg_var_ref(g, CG_V_QPOS);
    case 1: return cg_var_ref(g, CG_V_KPOS);
    default: return cg_const(g, rint_in(-20, 20));
    }
  }
  cg_ref a = rexpr(g, depth - 1), b = rexpr(g, depth - 1);
  switch (rnd() % 9) {
  case 0: return cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, a, cg_const(g, c * rint_in(1, 4))), b);
  case 1: return cg_bin(g, CG_SUB, a, cg_bin(g, CG_MUL, b, cg_const(g, c * rint_in(-2, 3))));
  case 2: return cg_bin(g, CG_DIV, a, cg_const(g, c));
  case 3: return cg_bin(g, CG_MOD, a, cg_const(g, c));
  case 4: return cg_bin(g, CG_DIV, cg_bin(g, CG_DIV, a, cg_const(g, c)), cg_const(g, divisors[rnd() % 10]));
  case 5: return cg_select(g, cg_bin(g, CG_LT, a, b), cg_bin(g, CG_ADD, a, cg_const(g, c)), b);
  case 6: return cg_bin(g, CG_MOD, cg_bin(g, CG_MOD, a, cg_const(g, c * 4)), cg_const(g, c));
  case 7: return cg_bin(g, CG_MIN, a, b);
  default: return cg_bin(g, rnd() % 2 ? CG_DIV : CG_MOD, a, b);  /* not a constant divisor: left alone */
  }
}

static void random_trees(void **st) {
  cg_graph *g = cg_graph_new();
  cg_range r[CG_NVARS];
  for (int round = 0; round < 3000; round++) {
    no_ranges(r);
    int64_t lo = rint_in(-300, 300);
    r[CG_V_QPOS] = (cg_range){lo, lo + rint_in(0, 600)};
    r[CG_V_KPOS] = (cg_range){0, rint_in(0, 2000)};
    cg_ref e = rexpr(g, (int)rint_in(1, 4));
    cg_ref top = cg_bin(g, rnd() % 2 ? CG_DIV : CG_MOD, e, cg_const(g, divisors[rnd() % 10]));
    cg_ref s = cg_simplify(g, top, r);
    assert_int_not_equal(s, CG_NONE);
    same_at(g, top, s, r, 40);
  }
  cg_graph_free(g);
}

static int count_divmod(const cg_graph *g, cg_ref root);

/* ----------------------------------------- sums and known conditions */

/* A coordinate taken apart the way layouts do (x // c, x % c, nested),
** then put back together with a multiple of one piece or another. */
static cg_ref rcoord(cg_graph *g, cg_ref x, int depth) {
  int64_t c = divisors[rnd() % 10], e = divisors[rnd() % 10];
  cg_ref d = cg_bin(g, CG_DIV, x, cg_const(g, c)), m = cg_bin(g, CG_MOD, x, cg_const(g, c));
  switch (depth > 0 ? rnd() % 6 : rnd() % 4) {
  case 0: return cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, d, cg_const(g, c)), m);
  case 1: return cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, d, cg_const(g, c * rint_in(1, 2))), m);
  case 2: {
    cg_ref hi = cg_bin(g, CG_DIV, d, cg_const(g, e)), mid = cg_bin(g, CG_MOD, d, cg_const(g, e));
    return cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, hi, cg_const(g, e)), mid),
                                    cg_const(g, c)), m);
  }
  case 3: return cg_bin(g, CG_SUB, cg_bin(g, CG_ADD, x, cg_const(g, rint_in(-9, 9))), cg_const(g, rint_in(-9, 9)));
  case 4: return rcoord(g, cg_bin(g, CG_SUB, rcoord(g, x, depth - 1), cg_const(g, rint_in(0, 30))), depth - 1);
  default: return cg_bin(g, CG_SUB, rcoord(g, x, depth - 1), cg_bin(g, CG_MUL, m, cg_const(g, rint_in(-3, 3))));
  }
}

static cg_ref rbool(cg_graph *g, cg_ref *atoms, int natoms, int depth) {
  cg_ref p = atoms[rnd() % (uint64_t)natoms];
  if (depth == 0 || rnd() % 4 == 0) return rnd() % 3 ? p : cg_un(g, CG_NOT, p);
  cg_ref a = rbool(g, atoms, natoms, depth - 1), b = rbool(g, atoms, natoms, depth - 1);
  switch (rnd() % 5) {
  case 0: return cg_bin(g, CG_AND, a, b);
  case 1: return cg_bin(g, CG_OR, a, b);
  case 2: return cg_select(g, p, a, b);
  case 3: return cg_un(g, CG_NOT, cg_bin(g, CG_AND, a, cg_un(g, CG_NOT, b)));
  default: return cg_bin(g, CG_OR, cg_bin(g, CG_AND, p, a), cg_bin(g, CG_AND, cg_un(g, CG_NOT, p), b));
  }
}

/* Masks in the shape layouts give them: coordinates under selects on
** text tests, compared, combined with the tests again. */
static void random_sums_and_conditions(void **st) {
  cg_range r[CG_NVARS];
  for (int round = 0; round < 3000; round++) {
    cg_graph *g = cg_graph_new();
    no_ranges(r);
    r[CG_V_QPOS] = (cg_range){0, rint_in(0, 900)};
    r[CG_V_KPOS] = (cg_range){0, rint_in(0, 900)};
    r[CG_V_TLEN] = (cg_range){0, 40};
    cg_ref qp = cg_var_ref(g, CG_V_QPOS), kp = cg_var_ref(g, CG_V_KPOS), tl = cg_var_ref(g, CG_V_TLEN);
    int64_t text = rint_in(0, 40);
    cg_ref atoms[6] = {cg_bin(g, CG_LT, qp, cg_const(g, text)), cg_bin(g, CG_LT, kp, cg_const(g, text)),
                       cg_bin(g, CG_LE, tl, qp), cg_bin(g, CG_LE, cg_const(g, text + 7), kp),
                       cg_bin(g, CG_LT, qp, kp), cg_bin(g, CG_EQ, cg_bin(g, CG_MOD, qp, cg_const(g, 3)), cg_const(g, 1))};
    cg_ref xq = cg_bin(g, CG_SUB, qp, cg_const(g, text)), xk = cg_bin(g, CG_SUB, kp, cg_const(g, text));
    cg_ref cq = cg_select(g, atoms[0], cg_const(g, -1), rcoord(g, xq, 2));
    cg_ref ck = cg_select(g, rbool(g, atoms, 6, 1), rcoord(g, xk, 2), cg_const(g, -1));
    cg_ref d = cg_un(g, CG_ABS, cg_bin(g, CG_SUB, cq, ck));
    cg_ref near = cg_bin(g, rnd() % 2 ? CG_LT : CG_LE, d, cg_const(g, rint_in(0, 300)));
    cg_ref in = rbool(g, atoms, 6, (int)rint_in(1, 3));
    cg_ref e = rnd() % 2 ? cg_bin(g, CG_AND, near, in) : cg_bin(g, CG_OR, cg_bin(g, CG_AND, near, in), rbool(g, atoms, 6, 2));
    if (rnd() % 4 == 0) e = cg_select(g, atoms[rnd() % 6], cq, cg_bin(g, CG_ADD, ck, e));
    cg_ref s = cg_simplify(g, e, r);
    assert_int_not_equal(s, CG_NONE);
    same_at(g, e, s, r, 60);
    cg_graph_free(g);
  }
}

/* A sum whose operands are shared is a small graph and a huge tree:
** flattening it is bounded by nodes visited, not by terms found. */
static void shared_sums_stay_fast(void **st) {
  cg_graph *g = cg_graph_new();
  cg_range r[CG_NVARS];
  no_ranges(r);
  r[CG_V_QPOS] = (cg_range){0, 10};
  cg_ref x = cg_var_ref(g, CG_V_QPOS);
  for (int i = 0; i < 32; i++) x = cg_bin(g, CG_SUB, cg_bin(g, CG_ADD, x, x), x);
  clock_t t0 = clock();
  cg_ref s = cg_simplify(g, x, r);
  assert_int_not_equal(s, CG_NONE);
  same_at(g, x, s, r, 100);
  if (clock() - t0 > 2 * CLOCKS_PER_SEC) fail_msg("%.1f s", (double)(clock() - t0) / CLOCKS_PER_SEC);
  cg_graph_free(g);
}

/* A shipped pattern's kernel expressions (mask, q idx, k idx) at shape s,
** and the kernel's ranges over 128-token blocks. */
static cg_pattern *kernel_exprs(sieve_ctx *ctx, const char *name, const sieve_shape *s, sieve_pattern **sp,
                                cg_ref e[3], cg_range r[CG_NVARS]) {
  *sp = lt_load_source(ctx, "patterns", name, NULL);
  cg_pattern *p = lp_pattern_ir(*sp);
  cg_err err = {0};
  assert_int_equal(cg_kernel_exprs(p, s, &e[0], &e[1], &e[2], &err), SIEVE_OK);
  int64_t n = sieve_shape_tokens(s);
  cg_kernel_ranges(r, (n + 127) / 128 * 128 - 1, (n + 127) / 128 * 128 - 1, s->heads, s->text);
  return p;
}

/* svg's bands composed with the identity and the transposed layout are one
** band over positions: the coordinates go, and so does the head class. */
static void svg_band_is_positions(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_pattern *sp;
  sieve_shape s;
  assert_int_equal(sieve_shape_preset("cogvideox-1.5", &s), SIEVE_OK);
  cg_ref e[3];
  cg_range r[CG_NVARS];
  cg_pattern *p = kernel_exprs(ctx, "svg", &s, &sp, e, r);
  cg_ref sm = cg_simplify(p->g, e[0], r);
  if (count_divmod(p->g, sm) || (cg_vars_used(p->g, sm) & 1u << CG_V_HEAD))
    fail_msg("svg's mask: %d divisions and modulos, head %s", count_divmod(p->g, sm),
             cg_vars_used(p->g, sm) & 1u << CG_V_HEAD ? "read" : "not read");
  sieve_pattern_free(sp);
  sieve_close(ctx);
}

/* Where an interval may reach the 63-bit edge, nothing is rewritten (the
** lowering refuses the original as it stands). */
static void leaves_the_unbounded(void **st) {
  cg_graph *g = cg_graph_new();
  cg_range r[CG_NVARS];
  no_ranges(r);
  r[CG_V_QPOS] = (cg_range){0, 1000};
  r[CG_V_STEP] = (cg_range){0, INT32_MAX};
  cg_ref big = cg_bin(g, CG_MUL, cg_var_ref(g, CG_V_STEP), cg_const(g, (int64_t)1 << 40));
  cg_ref e = cg_bin(g, CG_DIV, cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, big, cg_const(g, 6)), cg_var_ref(g, CG_V_QPOS)),
                    cg_const(g, 6));
  assert_int_equal(cg_simplify(g, e, r), e);
  cg_graph_free(g);
}

/* ------------------------------------------------------------- layouts */

static void tile_coords_divided(void **st) {
  for (int round = 0; round < 300; round++) {
    sieve_shape s = {.batch = 1, .heads = 1, .head_dim = 64};
    s.frames = (int)rint_in(1, 9);
    s.height = (int)rint_in(1, 11);
    s.width = (int)rint_in(1, 13);
    s.text = rnd() % 2 ? (int)rint_in(0, 20) : 0;
    s.text_after = (int)rint_in(0, 1);
    cg_layout l = {.kind = CG_LAYOUT_TILE};
    for (int i = 0; i < 3; i++) l.tile[i] = rint_in(1, 5);
    cg_graph *g = cg_graph_new();
    cg_ref c[5];
    assert_int_equal(cg_layout_coords(g, &l, &s, 1, c), 0);
    cg_range r[CG_NVARS];
    int64_t n = sieve_shape_tokens(&s);
    cg_kernel_ranges(r, n - 1, n - 1, 1, s.text);
    for (int i = 0; i < 3; i++) {
      cg_ref d = cg_bin(g, CG_DIV, c[i], cg_const(g, l.tile[i])), m = cg_bin(g, CG_MOD, c[i], cg_const(g, l.tile[i]));
      cg_ref e = cg_bin(g, CG_ADD, d, cg_bin(g, CG_MUL, m, cg_const(g, 1000)));
      cg_ref se = cg_simplify(g, e, r), si = cg_simplify(g, c[4], r);
      for (int64_t p = 0; p < n; p++) {
        int64_t v[CG_NVARS] = {0};
        v[CG_V_KPOS] = p;
        CHECK(cg_eval1(g, e, v) == cg_eval1(g, se, v));
        CHECK(cg_eval1(g, c[4], v) == cg_eval1(g, si, v));
      }
    }
    cg_graph_free(g);
  }
}

/* ----------------------------------------------------- shipped patterns */

static const char *const shipped[] = {"adaspa", "causal", "dense", "frame_window", "lvsa", "sta", "svg", "token_window"};

static void shipped_masks(void **st) {
  const sieve_shape shapes[] = {
    {1, 3, 64, 5, 13, 19, 7, 0},   /* ragged, text before */
    {1, 4, 64, 7, 12, 20, 11, 1},  /* text after */
    {1, 2, 64, 9, 10, 14, 0, 0},
  };
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  for (size_t i = 0; i < sizeof shipped / sizeof *shipped; i++)
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
      sieve_pattern *sp;
      cg_ref e[3];
      cg_range r[CG_NVARS];
      cg_pattern *p = kernel_exprs(ctx, shipped[i], &shapes[si], &sp, e, r);
      r[CG_V_STEP] = r[CG_V_LAYER] = (cg_range){0, 60};
      cg_range wide[CG_NVARS];
      memcpy(wide, r, sizeof wide);
      wide[CG_V_STEP] = wide[CG_V_LAYER] = (cg_range){0, INT32_MAX};
      for (int k = 0; k < 3; k++) {
        cg_ref s = cg_simplify(p->g, e[k], wide);
        assert_int_not_equal(s, CG_NONE);
        same_at(p->g, e[k], s, r, 3000);
      }
      sieve_pattern_free(sp);
    }
  sieve_close(ctx);
}

/* sta's window compares tile indices: composed with the tile layout, the
** key side needs the tile a position lies in, not its coordinates, so the
** simplified mask has fewer divisions than the original by far. */
static int count_divmod(const cg_graph *g, cg_ref root) {
  int *slot = malloc(sizeof(int) * (size_t)(root + 1));
  cg_ref *ref = malloc(sizeof(cg_ref) * (size_t)(root + 1));
  int n = cg_reachable(g, root, slot, ref), c = 0;
  for (int k = 0; k < n; k++) c += cg_node_at(g, ref[k])->op == CG_DIV || cg_node_at(g, ref[k])->op == CG_MOD;
  free(slot);
  free(ref);
  return c;
}

static void sta_divides_less(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_pattern *sp;
  sieve_shape s;
  assert_int_equal(sieve_shape_preset("wan-1.3b-480p", &s), SIEVE_OK);
  cg_ref e[3];
  cg_range r[CG_NVARS];
  cg_pattern *p = kernel_exprs(ctx, "sta", &s, &sp, e, r);
  int before = count_divmod(p->g, e[0]), after = count_divmod(p->g, cg_simplify(p->g, e[0], r));
  if (!(after * 3 < before)) fail_msg("sta's mask: %d divisions and modulos before, %d after", before, after);
  sieve_pattern_free(sp);
  sieve_close(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(random_trees),
    cmocka_unit_test(random_sums_and_conditions),
    cmocka_unit_test(shared_sums_stay_fast),
    cmocka_unit_test(svg_band_is_positions),
    cmocka_unit_test(leaves_the_unbounded),
    cmocka_unit_test(tile_coords_divided),
    cmocka_unit_test(shipped_masks),
    cmocka_unit_test(sta_divides_less),
  };
  return cmocka_run_group_tests(tests, setup_seed, NULL);
}
