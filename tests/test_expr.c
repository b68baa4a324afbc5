/*
** The expression IR (folding, interning, substitution, canonical text,
** floor division), the bulk evaluator against scalar evaluation, and the
** soundness of interval evaluation.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_eval.h"
#include "cg_interval.h"
#include "test_rand.h"

/* ------------------------------------------------------------- folding */

static void folds_identities(void **st) {
  cg_graph *g = cg_graph_new();
  cg_ref x = cg_var_ref(g, CG_V_QT), y = cg_var_ref(g, CG_V_KT);
  cg_ref zero = cg_const(g, 0), one = cg_const(g, 1);
  cg_ref b = cg_bin(g, CG_LT, x, y);
  int64_t v;
  assert_int_equal(cg_bin(g, CG_ADD, x, zero), x);
  assert_int_equal(cg_bin(g, CG_ADD, zero, x), x);
  assert_int_equal(cg_bin(g, CG_MUL, x, one), x);
  assert_true(cg_is_const(g, cg_bin(g, CG_MUL, x, zero), &v) && v == 0);
  assert_true(cg_is_const(g, cg_bin(g, CG_SUB, x, x), &v) && v == 0);
  assert_int_equal(cg_bin(g, CG_DIV, x, one), x);
  assert_true(cg_is_const(g, cg_bin(g, CG_MOD, x, one), &v) && v == 0);
  assert_int_equal(cg_bin(g, CG_MIN, x, x), x);
  assert_int_equal(cg_bin(g, CG_AND, b, cg_bool(g, 1)), b);
  assert_true(cg_is_const(g, cg_bin(g, CG_AND, b, cg_bool(g, 0)), &v) && v == 0);
  assert_true(cg_is_const(g, cg_bin(g, CG_OR, b, cg_bool(g, 1)), &v) && v == 1);
  assert_int_equal(cg_un(g, CG_NOT, cg_un(g, CG_NOT, b)), b);
  assert_int_equal(cg_un(g, CG_NEG, cg_un(g, CG_NEG, x)), x);
  assert_true(cg_is_const(g, cg_bin(g, CG_EQ, x, x), &v) && v == 1);
  assert_true(cg_is_const(g, cg_bin(g, CG_LT, x, x), &v) && v == 0);
  assert_true(cg_is_const(g, cg_bin(g, CG_ADD, cg_const(g, 2), cg_const(g, 3)), &v) && v == 5);
  assert_true(cg_is_const(g, cg_bin(g, CG_DIV, cg_const(g, -7), cg_const(g, 2)), &v) && v == -4);
  assert_int_equal(cg_select(g, cg_bool(g, 1), x, y), x);
  assert_int_equal(cg_select(g, cg_bool(g, 0), x, y), y);
  assert_int_equal(cg_select(g, b, x, x), x);
  assert_int_equal(cg_select(g, b, cg_bool(g, 1), cg_bool(g, 0)), b);
  assert_int_equal(cg_type_of(g, cg_bin(g, CG_AND, x, y)), CG_BOOL);
  cg_graph_free(g);
}

static void interns_nodes(void **st) {
  cg_graph *g = cg_graph_new();
  cg_ref x = cg_var_ref(g, CG_V_QT), y = cg_var_ref(g, CG_V_KY);
  assert_int_equal(cg_var_ref(g, CG_V_QT), x);
  cg_ref a = cg_bin(g, CG_ADD, x, y);
  int n = cg_graph_size(g);
  assert_int_equal(cg_bin(g, CG_ADD, x, y), a);
  assert_int_equal(cg_bin(g, CG_ADD, y, x), a); /* commutative operands are ordered */
  assert_int_equal(cg_graph_size(g), n);
  assert_int_not_equal(cg_bin(g, CG_SUB, x, y), cg_bin(g, CG_SUB, y, x));
  cg_graph_free(g);
}

static void substitutes(void **st) {
  cg_graph *g = cg_graph_new();
  cg_ref h = cg_var_ref(g, CG_V_HEAD), t = cg_var_ref(g, CG_V_QT);
  cg_ref m = cg_select(g, cg_bin(g, CG_EQ, cg_bin(g, CG_MOD, h, cg_const(g, 2)), cg_const(g, 0)),
                       cg_bin(g, CG_LT, t, cg_const(g, 3)), cg_bool(g, 0));
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(g, 4);
  assert_int_equal(cg_subst(g, m, map), cg_bin(g, CG_LT, t, cg_const(g, 3)));
  map[CG_V_HEAD] = cg_const(g, 5);
  int64_t v;
  assert_true(cg_is_const(g, cg_subst(g, m, map), &v) && v == 0);
  map[CG_V_HEAD] = CG_NONE;
  map[CG_V_QT] = cg_bin(g, CG_ADD, cg_var_ref(g, CG_V_QPOS), cg_const(g, 1));
  cg_ref r = cg_subst(g, m, map);
  assert_int_equal(cg_vars_used(g, r), (1u << CG_V_HEAD) | (1u << CG_V_QPOS));
  cg_graph_free(g);
}

static char *dump1(cg_graph *g, cg_ref r) {
  cg_buf b = {0};
  const char *name = "m";
  assert_int_equal(cg_dump(g, &r, 1, &name, &b), 0);
  return b.s;
}

/* The same mask built in two orders, the second graph cluttered first. */
static void dumps_canonically(void **st) {
  cg_graph *g1 = cg_graph_new(), *g2 = cg_graph_new();
  cg_ref d1 = cg_bin(g1, CG_SUB, cg_var_ref(g1, CG_V_QT), cg_var_ref(g1, CG_V_KT));
  cg_ref w1 = cg_bin(g1, CG_LE, cg_un(g1, CG_ABS, d1), cg_const(g1, 2));
  cg_ref a1 = cg_bin(g1, CG_EQ, cg_var_ref(g1, CG_V_KT), cg_const(g1, 0));
  cg_ref m1 = cg_bin(g1, CG_OR, w1, a1);
  for (int i = 0; i < 50; i++) cg_bin(g2, CG_MUL, cg_var_ref(g2, CG_V_KX), cg_const(g2, 100 + i));
  cg_ref a2 = cg_bin(g2, CG_EQ, cg_const(g2, 0), cg_var_ref(g2, CG_V_KT));
  cg_ref d2 = cg_bin(g2, CG_SUB, cg_var_ref(g2, CG_V_QT), cg_var_ref(g2, CG_V_KT));
  cg_ref m2 = cg_bin(g2, CG_OR, a2, cg_bin(g2, CG_LE, cg_un(g2, CG_ABS, d2), cg_const(g2, 2)));
  char *s1 = dump1(g1, m1), *s2 = dump1(g2, m2);
  assert_string_equal(s1, s2);
  free(s1);
  free(s2);
  cg_graph_free(g1);
  cg_graph_free(g2);
}

/* Graphs deeper than the C stack: the dump and scalar evaluation walk
** them without recursion (a chain of 300,000 used to overflow the stack). */
static void deep_graphs(void **st) {
  cg_graph *g = cg_graph_new();
  cg_ref e = cg_var_ref(g, CG_V_QT), k = cg_var_ref(g, CG_V_KT);
  for (int i = 0; i < 300000; i++) e = cg_bin(g, CG_ADD, cg_bin(g, CG_MUL, e, cg_const(g, 3)), k);
  assert_int_equal(cg_node_at(g, e)->depth, UINT16_MAX);
  assert_int_equal(cg_node_at(g, k)->depth, 1);
  char *s = dump1(g, e);
  size_t lines = 0;
  for (const char *c = s; *c; c++) lines += *c == '\n';
  assert_int_equal(lines, 600000 + 3 + 1);  /* q.t, k.t, 3, the root's line */
  free(s);
  int64_t vars[CG_NVARS] = {0};
  vars[CG_V_QT] = 1;
  int64_t want = 1;
  for (int i = 0; i < 300000; i++) want = (int64_t)((uint64_t)want * 3u);
  assert_true(cg_eval1(g, e, vars) == want);
  cg_graph_free(g);
}

/* Folding wraps (two's complement) instead of overflowing, and the one
** quotient that traps in C, INT64_MIN / -1, is defined. */
static void folds_wrap(void **st) {
  cg_graph *g = cg_graph_new();
  int64_t v;
  cg_ref big = cg_const(g, INT64_MAX), min = cg_const(g, INT64_MIN), m1 = cg_const(g, -1);
  assert_true(cg_is_const(g, cg_bin(g, CG_ADD, big, cg_const(g, 1)), &v) && v == INT64_MIN);
  assert_true(cg_is_const(g, cg_bin(g, CG_MUL, big, big), &v) && v == 1);
  assert_true(cg_is_const(g, cg_bin(g, CG_DIV, min, m1), &v) && v == INT64_MIN);
  assert_true(cg_is_const(g, cg_bin(g, CG_MOD, min, m1), &v) && v == 0);
  assert_true(cg_is_const(g, cg_un(g, CG_NEG, min), &v) && v == INT64_MIN);
  assert_true(cg_is_const(g, cg_un(g, CG_ABS, min), &v) && v == INT64_MIN);
  cg_graph_free(g);
}

static void floors(void **st) {
  static const int64_t c[][4] = {
    /* a, b, a div b, a mod b */
    {7, 2, 3, 1}, {-7, 2, -4, 1}, {7, -2, -4, -1}, {-7, -2, 3, -1}, {6, 3, 2, 0}, {-6, 3, -2, 0},
    {0, 5, 0, 0}, {5, 0, 0, 0}, {-5, 0, 0, 0}, {0, 0, 0, 0}, {-1, 128, -1, 127}, {1, -128, -1, -127},
  };
  cg_graph *g = cg_graph_new();
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    assert_int_equal(cg_floordiv(c[i][0], c[i][1]), c[i][2]);
    assert_int_equal(cg_floormod(c[i][0], c[i][1]), c[i][3]);
    assert_int_equal(cg_apply(CG_DIV, c[i][0], c[i][1], 0), c[i][2]);
    assert_int_equal(cg_apply(CG_MOD, c[i][0], c[i][1], 0), c[i][3]);
    int64_t v;
    assert_true(cg_is_const(g, cg_bin(g, CG_MOD, cg_const(g, c[i][0]), cg_const(g, c[i][1])), &v));
    assert_int_equal(v, c[i][3]);
  }
  /* The one quotient that overflows wraps instead of trapping. */
  assert_int_equal(cg_apply(CG_DIV, INT64_MIN, -1, 0), INT64_MIN);
  assert_int_equal(cg_apply(CG_MOD, INT64_MIN, -1, 0), 0);
  cg_graph_free(g);
}

/* -------------------------------------------------- random expressions */

static const cg_var all_vars[] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX, CG_V_KT, CG_V_KY,
                                  CG_V_KX, CG_V_KTEXT, CG_V_KIDX, CG_V_HEAD, CG_V_STEP, CG_V_LAYER,
                                  CG_V_QPOS, CG_V_KPOS};

static cg_ref rexpr(cg_graph *g, int depth) {
  if (depth == 0 || rnd() % 4 == 0) {
    if (rnd() % 3 == 0) return cg_const(g, rint_in(-6, 6));
    return cg_var_ref(g, all_vars[rnd() % (sizeof all_vars / sizeof all_vars[0])]);
  }
  cg_ref a = rexpr(g, depth - 1), b = rexpr(g, depth - 1);
  int op = (int)rint_in(CG_ADD, CG_SELECT);
  if (op == CG_NEG || op == CG_ABS || op == CG_NOT) return cg_un(g, (cg_op)op, a);
  if (op == CG_SELECT) return cg_select(g, a, b, rexpr(g, depth - 1));
  return cg_bin(g, (cg_op)op, a, b);
}

static cg_ref rbool(cg_graph *g, int depth) {
  static const cg_op cmp[] = {CG_EQ, CG_NE, CG_LT, CG_LE};
  return cg_bin(g, cmp[rnd() % 4], rexpr(g, depth), rexpr(g, depth));
}

/* n tokens with random coordinates. */
static void rcoords(cg_coords *c, int64_t n) {
  assert_int_equal(cg_coords_init(c, n), 0);
  for (int64_t i = 0; i < n; i++) {
    c->t[i] = (int32_t)rint_in(-1, 9);
    c->y[i] = (int32_t)rint_in(-1, 9);
    c->x[i] = (int32_t)rint_in(-1, 9);
    c->text[i] = (int32_t)rint_in(0, 1);
    c->idx[i] = (int32_t)rint_in(0, 400);
  }
}

static void vars_of(int64_t *v, const cg_coords *c, int64_t q, int64_t k, const int64_t u[3]) {
  int64_t qv[6] = {c->t[q], c->y[q], c->x[q], c->text[q], c->idx[q], q};
  int64_t kv[6] = {c->t[k], c->y[k], c->x[k], c->text[k], c->idx[k], k};
  const cg_var qn[6] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX, CG_V_QPOS};
  const cg_var kn[6] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX, CG_V_KPOS};
  for (int i = 0; i < 6; i++) {
    v[qn[i]] = qv[i];
    v[kn[i]] = kv[i];
  }
  v[CG_V_HEAD] = u[0];
  v[CG_V_STEP] = u[1];
  v[CG_V_LAYER] = u[2];
}

/* Bulk evaluation agrees with cg_eval1 on every pair, for random roots of
** every side (constant, query-only, key-only, mixed). */
static void bulk_matches_scalar(void **st) {
  for (int round = 0; round < 300; round++) {
    cg_graph *g = cg_graph_new();
    cg_ref r = rnd() % 2 ? rexpr(g, (int)rint_in(0, 5)) : rbool(g, (int)rint_in(0, 4));
    int64_t n = rint_in(1, 300), u[3] = {rint_in(0, 40), rint_in(0, 50), rint_in(0, 40)};
    cg_coords c;
    rcoords(&c, n);
    cg_prog *p = cg_prog_new(g, r);
    assert_non_null(p);
    cg_prog_bind(p, u[0], u[1], u[2]);
    cg_scratch *s = cg_scratch_new(p);
    int nq = cg_prog_nqv(p), nk = cg_prog_nkv(p);
    int64_t *qv = calloc((size_t)(n * (nq + 1)), 8), *kv = calloc((size_t)(n * (nk + 1)), 8);
    int64_t *out = calloc((size_t)n, 8), qrow[64];
    cg_prog_side(p, 0, &c, 0, n, qv, n, s);
    cg_prog_side(p, 1, &c, 0, n, kv, n, s);
    for (int64_t q = 0; q < n; q += 1 + n / 17) {
      for (int j = 0; j < nq; j++) qrow[j] = qv[j * n + q];
      cg_prog_row(p, qrow, kv, n, (int)n, out, s);
      for (int64_t k = 0; k < n; k++) {
        int64_t vars[CG_NVARS];
        vars_of(vars, &c, q, k, u);
        CHECK(out[k] == cg_eval1(g, r, vars));
      }
    }
    free(qv);
    free(kv);
    free(out);
    cg_scratch_free(s);
    cg_prog_free(p);
    cg_coords_free(&c);
    cg_graph_free(g);
  }
}

/* As bulk_matches_scalar, over tokens in runs of equal coordinates (the
** sides evaluate a run once), several chunks of runs, from an offset. */
static void sides_over_runs(void **st) {
  for (int round = 0; round < 200; round++) {
    cg_graph *g = cg_graph_new();
    cg_ref r = rnd() % 2 ? rexpr(g, (int)rint_in(0, 5)) : rbool(g, (int)rint_in(0, 4));
    int64_t n = rint_in(1, 900), u[3] = {rint_in(0, 40), rint_in(0, 50), rint_in(0, 40)};
    cg_coords c;
    rcoords(&c, n);
    for (int64_t i = 1; i < n; i++)
      if (rnd() % 6) {
        c.t[i] = c.t[i - 1];
        c.y[i] = c.y[i - 1];
        c.x[i] = rnd() % 3 ? c.x[i - 1] : c.x[i];
        c.text[i] = c.text[i - 1];
        c.idx[i] = c.idx[i - 1];
      }
    cg_prog *p = cg_prog_new(g, r);
    assert_non_null(p);
    cg_prog_bind(p, u[0], u[1], u[2]);
    cg_scratch *s = cg_scratch_new(p);
    int nq = cg_prog_nqv(p), nk = cg_prog_nkv(p);
    int64_t p0 = rint_in(0, n - 1), m = n - p0, ld = m + rint_in(0, 5);
    int64_t *qv = calloc((size_t)(ld * (nq + 1)), 8), *kv = calloc((size_t)(ld * (nk + 1)), 8);
    int64_t *out = calloc((size_t)m, 8), qrow[64];
    cg_prog_side(p, 0, &c, p0, m, qv, ld, s);
    cg_prog_side(p, 1, &c, p0, m, kv, ld, s);
    for (int64_t q = 0; q < m; q += 1 + m / 23) {
      for (int j = 0; j < nq; j++) qrow[j] = qv[j * ld + q];
      cg_prog_row(p, qrow, kv, ld, (int)m, out, s);
      for (int64_t k = 0; k < m; k++) {
        int64_t vars[CG_NVARS];
        vars_of(vars, &c, p0 + q, p0 + k, u);
        CHECK(out[k] == cg_eval1(g, r, vars));
      }
    }
    free(qv);
    free(kv);
    free(out);
    cg_scratch_free(s);
    cg_prog_free(p);
    cg_coords_free(&c);
    cg_graph_free(g);
  }
}

/* ------------------------------------------------------------ intervals */

static int64_t edge_value(void) {
  static const int64_t e[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX};
  switch (rnd() % 4) {
  case 0: return e[rnd() % 7];
  case 1: return rint_in(-1000000, 1000000) * 1000000000;
  default: return rint_in(-12, 12);
  }
}

static cg_ival rival(void) {
  int64_t a = edge_value(), b = edge_value();
  if (rnd() % 3 && a <= INT64_MAX - 9) b = a + rint_in(0, 9);
  if (b < a) { int64_t t = a; a = b; b = t; }
  return (cg_ival){a, b};
}

static int64_t point_in(cg_ival v) {
  if (rnd() % 3 == 0) return rnd() % 2 ? v.lo : v.hi;
  uint64_t w = (uint64_t)v.hi - (uint64_t)v.lo;
  return (int64_t)((uint64_t)v.lo + (w == UINT64_MAX ? rnd() : rnd() % (w + 1)));
}

/* Every op, on random intervals including the int64 edges: the value at
** points inside lies inside the result. */
static void interval_ops_sound(void **st) {
  for (int op = CG_ADD; op <= CG_OP_COPY; op++) {
    for (int round = 0; round < 20000; round++) {
      cg_ival a = rival(), b = rival(), c = rival();
      if (op >= CG_EQ && op <= CG_SELECT) {  /* boolean operands where the IR has them */
        if (op == CG_AND || op == CG_OR || op == CG_NOT) {
          a = (cg_ival){rint_in(0, 1), 1};
          b = (cg_ival){rint_in(0, 1), 1};
          if (rnd() % 2) { a.hi = a.lo; }
        }
      }
      cg_ival r = cg_ival_apply(op, a, b, c);
      for (int k = 0; k < 4; k++) {
        int64_t x = point_in(a), y = point_in(b), z = point_in(c);
        int64_t v = cg_apply(op, x, y, z);
        if (v < r.lo || v > r.hi)
          fail_msg("%s [%lld,%lld] [%lld,%lld] [%lld,%lld] -> [%lld,%lld] misses %lld at %lld %lld %lld "
                   "(SIEVE_SEED=%llu)",
                   op == CG_OP_COPY ? "copy" : cg_op_name((cg_op)op), (long long)a.lo, (long long)a.hi,
                   (long long)b.lo, (long long)b.hi, (long long)c.lo, (long long)c.hi, (long long)r.lo,
                   (long long)r.hi, (long long)v, (long long)x, (long long)y, (long long)z,
                   (unsigned long long)seed);
      }
    }
  }
}

/* Exact on points: a singleton box gives the value itself. */
static void interval_points_exact(void **st) {
  for (int op = CG_ADD; op <= CG_SELECT; op++)
    for (int round = 0; round < 2000; round++) {
      int64_t x = rint_in(-50, 50), y = rint_in(-9, 9), z = rint_in(-50, 50);
      cg_ival r = cg_ival_apply(op, (cg_ival){x, x}, (cg_ival){y, y}, (cg_ival){z, z});
      int64_t v = cg_apply(op, x, y, z);
      CHECK(r.lo == v && r.hi == v);
    }
}

/* A box of tokens with the coordinates of c[i0..i1). */
static cg_box box_of(const cg_coords *c, int64_t i0, int64_t i1) {
  cg_box b;
  const int32_t *v[5] = {c->t, c->y, c->x, c->text, c->idx};
  for (int j = 0; j < 5; j++) {
    b.v[j] = (cg_ival){v[j][i0], v[j][i0]};
    for (int64_t i = i0; i < i1; i++) {
      if (v[j][i] < b.v[j].lo) b.v[j].lo = v[j][i];
      if (v[j][i] > b.v[j].hi) b.v[j].hi = v[j][i];
    }
  }
  b.v[CG_IN_POS] = (cg_ival){i0, i1 - 1};
  return b;
}

/* Through whole programs: a pair of boxes called full has no false pair,
** and one called empty has no true pair. */
static void interval_program_sound(void **st) {
  int decided = 0;
  for (int round = 0; round < 400; round++) {
    cg_graph *g = cg_graph_new();
    cg_ref r = rbool(g, (int)rint_in(0, 4));
    int64_t n = rint_in(2, 40), u[3] = {rint_in(0, 40), rint_in(0, 50), rint_in(0, 40)};
    cg_coords c;
    rcoords(&c, n);
    /* Narrow ranges make decided boxes likely. */
    for (int64_t i = 0; i < n; i++) {
      c.t[i] = c.t[i] % 3;
      c.idx[i] = (int32_t)(c.idx[i] % 5);
    }
    cg_prog *p = cg_prog_new(g, r);
    cg_prog_bind(p, u[0], u[1], u[2]);
    cg_iscratch *s = cg_iscratch_new(p);
    int64_t h = n / 2;
    cg_box qb = box_of(&c, 0, h), kb = box_of(&c, h, n);
    cg_ival qv[64], kv[64];
    uint8_t cls;
    cg_ival_side(p, 0, &qb, 1, qv, 1, s);
    cg_ival_side(p, 1, &kb, 1, kv, 1, s);
    cg_ival_row(p, qv, kv, 1, 1, &cls, s);
    for (int64_t q = 0; q < h; q++)
      for (int64_t k = h; k < n; k++) {
        int64_t vars[CG_NVARS];
        vars_of(vars, &c, q, k, u);
        int64_t v = cg_eval1(g, r, vars);
        if (cls == CG_BLK_FULL) CHECK(v != 0);
        if (cls == CG_BLK_EMPTY) CHECK(v == 0);
      }
    decided += cls != CG_BLK_UNDECIDED;
    cg_iscratch_free(s);
    cg_prog_free(p);
    cg_coords_free(&c);
    cg_graph_free(g);
  }
  assert_true(decided > 40); /* the test exercised the decided paths */
}

/*
** The interval ops as they were written with branches, for the ops now
** written as selects: both must agree on every non-empty interval.
*/
static cg_ival ref_top(void) { return (cg_ival){INT64_MIN, INT64_MAX}; }
static cg_ival ref_truth(cg_ival a) {
  if (a.lo == 0 && a.hi == 0) return (cg_ival){0, 0};
  if (a.lo > 0 || a.hi < 0) return (cg_ival){1, 1};
  return (cg_ival){0, 1};
}
static cg_ival ref_op(int op, cg_ival a, cg_ival b, cg_ival c) {
  cg_ival r, x, y;
  switch (op) {
  case CG_ADD:
    if (__builtin_add_overflow(a.lo, b.lo, &r.lo) || __builtin_add_overflow(a.hi, b.hi, &r.hi)) return ref_top();
    return r;
  case CG_SUB:
    if (__builtin_sub_overflow(a.lo, b.hi, &r.lo) || __builtin_sub_overflow(a.hi, b.lo, &r.hi)) return ref_top();
    return r;
  case CG_NEG: return a.lo == INT64_MIN ? ref_top() : (cg_ival){-a.hi, -a.lo};
  case CG_ABS:
    if (a.lo >= 0) return a;
    if (a.lo == INT64_MIN) return ref_top();
    if (a.hi <= 0) return (cg_ival){-a.hi, -a.lo};
    return (cg_ival){0, -a.lo > a.hi ? -a.lo : a.hi};
  case CG_EQ:
  case CG_NE:
    r = a.lo == a.hi && b.lo == b.hi && a.lo == b.lo ? (cg_ival){1, 1}
        : a.hi < b.lo || b.hi < a.lo                   ? (cg_ival){0, 0}
                                                       : (cg_ival){0, 1};
    if (op == CG_NE) r = (cg_ival){1 - r.hi, 1 - r.lo};
    return r;
  case CG_LT: return a.hi < b.lo ? (cg_ival){1, 1} : a.lo >= b.hi ? (cg_ival){0, 0} : (cg_ival){0, 1};
  case CG_LE: return a.hi <= b.lo ? (cg_ival){1, 1} : a.lo > b.hi ? (cg_ival){0, 0} : (cg_ival){0, 1};
  case CG_AND: x = ref_truth(a), y = ref_truth(b); return (cg_ival){x.lo & y.lo, x.hi & y.hi};
  case CG_OR: x = ref_truth(a), y = ref_truth(b); return (cg_ival){x.lo | y.lo, x.hi | y.hi};
  case CG_NOT: x = ref_truth(a); return (cg_ival){1 - x.hi, 1 - x.lo};
  case CG_SELECT:
    x = ref_truth(a);
    if (x.lo == 1) return b;
    if (x.hi == 0) return c;
    return (cg_ival){b.lo < c.lo ? b.lo : c.lo, b.hi > c.hi ? b.hi : c.hi};
  default: return cg_ival_apply(op, a, b, c);
  }
}

static void interval_ops_as_branches(void **st) {
  for (int op = CG_ADD; op <= CG_OP_COPY; op++)
    for (int round = 0; round < 20000; round++) {
      cg_ival a = rival(), b = rival(), c = rival();
      cg_ival r = cg_ival_apply(op, a, b, c), e = ref_op(op, a, b, c);
      if (r.lo != e.lo || r.hi != e.hi)
        fail_msg("%s [%lld,%lld] [%lld,%lld] [%lld,%lld] -> [%lld,%lld], with branches [%lld,%lld] "
                 "(SIEVE_SEED=%llu)",
                 op == CG_OP_COPY ? "copy" : cg_op_name((cg_op)op), (long long)a.lo, (long long)a.hi,
                 (long long)b.lo, (long long)b.hi, (long long)c.lo, (long long)c.hi, (long long)r.lo,
                 (long long)r.hi, (long long)e.lo, (long long)e.hi, (unsigned long long)seed);
    }
}

/* A row of key boxes at once (several chunks, vector and broadcast
** operands mixed) gives each box what it gives alone, signatures too. */
static void interval_row_as_single(void **st) {
  for (int round = 0; round < 60; round++) {
    cg_graph *g = cg_graph_new();
    cg_ref r = rbool(g, (int)rint_in(1, 4));
    int n = (int)rint_in(1, 3 * CG_CHUNK);
    int64_t u[3] = {rint_in(0, 40), rint_in(0, 50), rint_in(0, 40)};
    cg_coords c;
    rcoords(&c, 4 * (int64_t)n + 4);
    cg_prog *p = cg_prog_new(g, r);
    cg_prog_bind(p, u[0], u[1], u[2]);
    cg_iscratch *s = cg_iscratch_new(p);
    int nkv = cg_prog_nkv(p), nqv = cg_prog_nqv(p);
    cg_box qb = box_of(&c, 0, 4), *kb = malloc(sizeof(cg_box) * (size_t)n);
    for (int i = 0; i < n; i++) kb[i] = box_of(&c, 4 + 4 * i, 4 + 4 * i + (int64_t)rint_in(1, 4));
    cg_ival qv[64], *kv = malloc(sizeof(cg_ival) * (size_t)n * (size_t)(nkv ? nkv : 1)), one[64];
    uint8_t *cls = malloc((size_t)n), c1;
    uint64_t *dec = malloc(sizeof(uint64_t) * (size_t)n), *val = malloc(sizeof(uint64_t) * (size_t)n), d1, v1;
    assert_true(nqv <= 64 && nkv <= 64);
    cg_ival_side(p, 0, &qb, 1, qv, 1, s);
    cg_ival_side(p, 1, kb, n, kv, n, s);
    cg_ival_row_sig(p, qv, kv, n, n, cls, dec, val, s);
    for (int i = 0; i < n; i++) {
      for (int v = 0; v < nkv; v++) one[v] = kv[(int64_t)v * n + i];
      cg_ival_row_sig(p, qv, one, 1, 1, &c1, &d1, &v1, s);
      CHECK(cls[i] == c1 && dec[i] == d1 && val[i] == v1);
    }
    free(kb);
    free(kv);
    free(cls);
    free(dec);
    free(val);
    cg_iscratch_free(s);
    cg_prog_free(p);
    cg_coords_free(&c);
    cg_graph_free(g);
  }
}

/* Pairs of query and key boxes in any order, several chunks of them,
** give each pair what a row of one gives, signatures too; with no query
** indices every lane takes the first query box. */
static void interval_pairs_as_rows(void **st) {
  for (int round = 0; round < 40; round++) {
    cg_graph *g = cg_graph_new();
    cg_ref r = rbool(g, (int)rint_in(1, 4));
    int nq = (int)rint_in(1, 5), nk = (int)rint_in(1, 40), n = (int)rint_in(1, 3 * CG_CHUNK);
    cg_coords c;
    rcoords(&c, 4 * (int64_t)(nq + nk) + 4);
    cg_prog *p = cg_prog_new(g, r);
    cg_prog_bind(p, rint_in(0, 40), rint_in(0, 50), rint_in(0, 40));
    cg_iscratch *s = cg_iscratch_new(p);
    int nkv = cg_prog_nkv(p), nqv = cg_prog_nqv(p);
    assert_true(nqv <= 64 && nkv <= 64);
    cg_box *qb = malloc(sizeof(cg_box) * (size_t)nq), *kb = malloc(sizeof(cg_box) * (size_t)nk);
    for (int i = 0; i < nq; i++) qb[i] = box_of(&c, 4 * i, 4 * i + (int64_t)rint_in(1, 4));
    for (int i = 0; i < nk; i++) kb[i] = box_of(&c, 4 * (nq + i), 4 * (nq + i) + (int64_t)rint_in(1, 4));
    cg_ival *qv = malloc(sizeof(cg_ival) * (size_t)nq * 64), *kv = malloc(sizeof(cg_ival) * (size_t)nk * 64);
    cg_ival_side(p, 0, qb, nq, qv, nq, s);
    cg_ival_side(p, 1, kb, nk, kv, nk, s);
    int32_t *qi = malloc(sizeof(int32_t) * (size_t)n), *ki = malloc(sizeof(int32_t) * (size_t)n);
    uint8_t *cls = malloc((size_t)n), c1;
    uint64_t *dec = malloc(sizeof(uint64_t) * (size_t)n), *val = malloc(sizeof(uint64_t) * (size_t)n), d1, v1;
    for (int i = 0; i < n; i++) {
      qi[i] = (int32_t)rint_in(0, nq - 1);
      ki[i] = (int32_t)rint_in(0, nk - 1);
    }
    cg_ival one_q[64], one_k[64];
    for (int pass = 0; pass < 2; pass++) {
      cg_ival_pairs_sig(p, qv, nq, pass ? NULL : qi, kv, nk, ki, n, cls, dec, val, s);
      for (int i = 0; i < n; i++) {
        for (int v = 0; v < nqv; v++) one_q[v] = qv[(int64_t)v * nq + (pass ? 0 : qi[i])];
        for (int v = 0; v < nkv; v++) one_k[v] = kv[(int64_t)v * nk + ki[i]];
        cg_ival_row_sig(p, one_q, one_k, 1, 1, &c1, &d1, &v1, s);
        CHECK(cls[i] == c1 && dec[i] == d1 && val[i] == v1);
      }
    }
    free(qb);
    free(kb);
    free(qv);
    free(kv);
    free(qi);
    free(ki);
    free(cls);
    free(dec);
    free(val);
    cg_iscratch_free(s);
    cg_prog_free(p);
    cg_coords_free(&c);
    cg_graph_free(g);
  }
}

/*
** The executor's vectors against the scalar ops: a phase run lane by lane
** through cg_ival_apply, slots stored by kind and index as the executor
** stores them (temporaries share storage), gives the same interfaces,
** classes and signatures.
*/
typedef struct ref_store {
  cg_ival in[64], cv[256], qv[64], tmp[256];
} ref_store;

static cg_ival *ref_slot(ref_store *r, const cg_phase *ph, int32_t i) {
  const cg_slot *sl = &ph->slots[i];
  return sl->kind == CG_SLOT_IN ? &r->in[sl->idx] : sl->kind == CG_SLOT_CONST ? &r->cv[sl->idx]
         : sl->kind == CG_SLOT_QV ? &r->qv[sl->idx] : &r->tmp[sl->idx];
}

static void ref_run(const cg_prog *p, const cg_phase *ph, ref_store *r) {
  for (int i = 0; i < p->ncval; i++) r->cv[i] = (cg_ival){p->cval[i], p->cval[i]};
  for (int k = 0; k < ph->nins; k++) {
    const cg_inst *in = &ph->ins[k];
    cg_ival a = *ref_slot(r, ph, in->a), b = in->b >= 0 ? *ref_slot(r, ph, in->b) : a;
    cg_ival c = in->c >= 0 ? *ref_slot(r, ph, in->c) : a;
    *ref_slot(r, ph, in->d) = cg_ival_apply(in->op, a, b, c);
  }
}

static void interval_executor_as_scalar(void **st) {
  for (int round = 0; round < 300; round++) {
    cg_graph *g = cg_graph_new();
    cg_ref root = rbool(g, (int)rint_in(1, 4));
    if (round % 3 == 0) { /* sums and differences that overflow, then abs and negation of int64 edges */
      cg_ref x = cg_bin(g, CG_ADD, rexpr(g, 2), cg_const(g, edge_value()));
      cg_ref y = cg_un(g, rnd() % 2 ? CG_ABS : CG_NEG, cg_bin(g, CG_SUB, rexpr(g, 2), cg_const(g, edge_value())));
      root = cg_bin(g, CG_OR, root, cg_bin(g, rnd() % 2 ? CG_LE : CG_EQ, x, y));
    }
    int n = (int)rint_in(1, 2 * CG_CHUNK + 9);
    int64_t u[3] = {rint_in(0, 40), rint_in(0, 50), rint_in(0, 40)};
    cg_coords c;
    rcoords(&c, 4 * (int64_t)n + 4);
    cg_prog *p = cg_prog_new(g, root);
    cg_prog_bind(p, u[0], u[1], u[2]);
    cg_iscratch *s = cg_iscratch_new(p);
    int nkv = cg_prog_nkv(p), nqv = cg_prog_nqv(p);
    assert_true(nqv <= 64 && nkv <= 64 && p->ncval <= 256 && p->maxtmp <= 256);
    cg_box qb = box_of(&c, 0, 4), *kb = malloc(sizeof(cg_box) * (size_t)n);
    for (int i = 0; i < n; i++) kb[i] = box_of(&c, 4 + 4 * i, 4 + 4 * i + (int64_t)rint_in(1, 4));
    cg_ival qv[64], *kv = malloc(sizeof(cg_ival) * (size_t)n * (size_t)(nkv ? nkv : 1));
    uint8_t *cls = malloc((size_t)n);
    uint64_t *dec = malloc(sizeof(uint64_t) * (size_t)n), *val = malloc(sizeof(uint64_t) * (size_t)n);
    cg_ival_side(p, 0, &qb, 1, qv, 1, s);
    cg_ival_side(p, 1, kb, n, kv, n, s);
    cg_ival_row_sig(p, qv, kv, n, n, cls, dec, val, s);
    ref_store r;
    memset(&r, 0, sizeof r);
    for (int v = 0; v < CG_NIN; v++) r.in[v] = qb.v[v];
    ref_run(p, &p->q, &r);
    for (int j = 0; j < nqv; j++) {
      cg_ival e = *ref_slot(&r, &p->q, p->q.out[j]);
      CHECK(qv[j].lo == e.lo && qv[j].hi == e.hi);
    }
    for (int i = 0; i < n; i++) {
      for (int v = 0; v < CG_NIN; v++) r.in[v] = kb[i].v[v];
      ref_run(p, &p->k, &r);
      cg_ival kk[64];
      for (int j = 0; j < nkv; j++) {
        kk[j] = *ref_slot(&r, &p->k, p->k.out[j]);
        CHECK(kv[(int64_t)j * n + i].lo == kk[j].lo && kv[(int64_t)j * n + i].hi == kk[j].hi);
      }
      for (int j = 0; j < nkv; j++) r.in[j] = kk[j];
      for (int j = 0; j < nqv; j++) r.qv[j] = qv[j];
      ref_run(p, &p->qk, &r);
      cg_ival t = *ref_slot(&r, &p->qk, p->root);
      int tl = t.lo > 0 || t.hi < 0, th = t.lo != 0 || t.hi != 0;
      uint8_t c1 = tl ? CG_BLK_FULL : !th ? CG_BLK_EMPTY : CG_BLK_UNDECIDED;
      uint64_t d1 = 0, v1 = 0;
      for (int k = 0; c1 == CG_BLK_UNDECIDED && k < p->qk.nins && k < 64; k++) {
        int op = p->qk.ins[k].op;
        if (op != CG_EQ && op != CG_NE && op != CG_LT && op != CG_LE && op != CG_AND && op != CG_OR && op != CG_NOT)
          continue;
        cg_ival x = *ref_slot(&r, &p->qk, p->qk.ins[k].d);
        if (x.lo == x.hi && (x.lo == 0 || x.lo == 1)) {
          d1 |= 1ull << k;
          v1 |= (uint64_t)x.lo << k;
        }
      }
      CHECK(cls[i] == c1 && dec[i] == d1 && val[i] == v1);
    }
    free(kb);
    free(kv);
    free(cls);
    free(dec);
    free(val);
    cg_iscratch_free(s);
    cg_prog_free(p);
    cg_coords_free(&c);
    cg_graph_free(g);
  }
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(folds_identities),
    cmocka_unit_test(interns_nodes),
    cmocka_unit_test(substitutes),
    cmocka_unit_test(dumps_canonically),
    cmocka_unit_test(deep_graphs),
    cmocka_unit_test(folds_wrap),
    cmocka_unit_test(floors),
    cmocka_unit_test(bulk_matches_scalar),
    cmocka_unit_test(sides_over_runs),
    cmocka_unit_test(interval_ops_sound),
    cmocka_unit_test(interval_points_exact),
    cmocka_unit_test(interval_program_sound),
    cmocka_unit_test(interval_ops_as_branches),
    cmocka_unit_test(interval_row_as_single),
    cmocka_unit_test(interval_pairs_as_rows),
    cmocka_unit_test(interval_executor_as_scalar),
  };
  return cmocka_run_group_tests(t, setup_seed, NULL);
}
