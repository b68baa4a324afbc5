/*
** Layouts: the direct enumeration and the position expressions agree, for
** random grids (ragged tiles, text before and after); both are
** permutations of model order; and small cases match orders written out.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_blocks.h"
#include "test_rand.h"

static sieve_shape rshape(void) {
  sieve_shape s = {.batch = 1, .heads = 1, .head_dim = 64};
  s.frames = rint_in(1, 7);
  s.height = rint_in(1, 7);
  s.width = rint_in(1, 7);
  s.text = rnd() % 3 ? rint_in(0, 20) : 0;
  s.text_after = rint_in(0, 1);
  return s;
}

static cg_layout rlayout(const sieve_shape *s) {
  cg_layout l = {.kind = (cg_layout_kind)rint_in(0, 2)};
  if (l.kind == CG_LAYOUT_TILE) {
    l.tile[0] = rint_in(1, s->frames + 1);
    l.tile[1] = rint_in(1, s->height + 1);
    l.tile[2] = rint_in(1, s->width + 1);
  }
  return l;
}

/* Every position holds a distinct token, and that token's coordinates are
** the ones model order gives its index. */
static void check_permutation(const cg_coords *c, const cg_coords *model) {
  uint8_t *seen = calloc((size_t)c->n, 1);
  for (int64_t p = 0; p < c->n; p++) {
    int64_t i = c->idx[p];
    CHECK(i >= 0 && i < c->n && !seen[i]);
    seen[i] = 1;
    CHECK(c->t[p] == model->t[i] && c->y[p] == model->y[i] && c->x[p] == model->x[i]);
    CHECK(c->text[p] == model->text[i]);
    if (c->text[p]) CHECK(p == i); /* text keeps its place */
  }
  free(seen);
}

static void check_exprs(cg_graph *g, const cg_layout *l, const sieve_shape *s, const cg_coords *c) {
  for (int side = 0; side < 2; side++) {
    cg_ref e[5];
    assert_int_equal(cg_layout_coords(g, l, s, side, e), 0);
    assert_int_equal(cg_type_of(g, e[3]), CG_BOOL);
    const int32_t *want[5] = {c->t, c->y, c->x, c->text, c->idx};
    for (int64_t p = 0; p < c->n; p++) {
      int64_t vars[CG_NVARS] = {0};
      vars[side ? CG_V_KPOS : CG_V_QPOS] = p;
      for (int i = 0; i < 5; i++) CHECK(cg_eval1(g, e[i], vars) == want[i][p]);
    }
  }
}

static void enumeration_matches_exprs(void **st) {
  for (int round = 0; round < 400; round++) {
    sieve_shape s = rshape();
    cg_layout l = rlayout(&s), id = {.kind = CG_LAYOUT_IDENTITY};
    cg_coords c, model;
    assert_int_equal(cg_layout_enum(&l, &s, &c), 0);
    assert_int_equal(cg_layout_enum(&id, &s, &model), 0);
    assert_int_equal(c.n, sieve_shape_tokens(&s));
    check_permutation(&c, &model);
    cg_graph *g = cg_graph_new();
    check_exprs(g, &l, &s, &c);
    /* Position expressions use only the position. */
    cg_ref e[5];
    cg_layout_coords(g, &l, &s, 1, e);
    for (int i = 0; i < 5; i++) CHECK((cg_vars_used(g, e[i]) & ~(1u << CG_V_KPOS)) == 0);
    cg_graph_free(g);
    cg_coords_free(&c);
    cg_coords_free(&model);
  }
}

static void model_order(void **st) {
  sieve_shape s = {1, 1, 64, 2, 2, 3, 2, 0};  /* T2 Y2 X3, 2 text before */
  cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  cg_coords c;
  assert_int_equal(cg_layout_enum(&id, &s, &c), 0);
  assert_int_equal(c.n, 14);
  assert_true(c.text[0] && c.text[1] && c.t[1] == -1 && c.idx[1] == 1);
  /* token 2 + (t*2 + y)*3 + x */
  assert_true(c.t[9] == 1 && c.y[9] == 0 && c.x[9] == 1 && !c.text[9] && c.idx[9] == 9);
  cg_coords_free(&c);
  s.text_after = 1;
  assert_int_equal(cg_layout_enum(&id, &s, &c), 0);
  assert_true(!c.text[0] && c.t[0] == 0 && c.text[12] && c.text[13] && c.idx[13] == 13);
  cg_coords_free(&c);
}

static void transpose_order(void **st) {
  sieve_shape s = {1, 1, 64, 3, 1, 2, 1, 1};  /* T3 Y1 X2, 1 text after */
  cg_layout l = {.kind = CG_LAYOUT_TRANSPOSE};
  cg_coords c;
  assert_int_equal(cg_layout_enum(&l, &s, &c), 0);
  /* All frames of x=0, then of x=1; model index t*2 + x. */
  const int32_t t[] = {0, 1, 2, 0, 1, 2, -1}, x[] = {0, 0, 0, 1, 1, 1, -1}, idx[] = {0, 2, 4, 1, 3, 5, 6};
  for (int p = 0; p < 7; p++) {
    assert_int_equal(c.t[p], t[p]);
    assert_int_equal(c.x[p], x[p]);
    assert_int_equal(c.idx[p], idx[p]);
  }
  cg_coords_free(&c);
}

static void ragged_tiles(void **st) {
  sieve_shape s = {1, 1, 64, 1, 3, 3, 0, 0};  /* one frame of 3x3, tiles 2x2 */
  cg_layout l = {.kind = CG_LAYOUT_TILE, .tile = {1, 2, 2}};
  cg_coords c;
  assert_int_equal(cg_layout_enum(&l, &s, &c), 0);
  /* Tiles: (0..1,0..1) of 4, (0..1,2) of 2, (2,0..1) of 2, (2,2) of 1. */
  const int32_t y[] = {0, 0, 1, 1, 0, 1, 2, 2, 2}, x[] = {0, 1, 0, 1, 2, 2, 0, 1, 2};
  for (int p = 0; p < 9; p++) {
    assert_int_equal(c.y[p], y[p]);
    assert_int_equal(c.x[p], x[p]);
    assert_int_equal(c.idx[p], y[p] * 3 + x[p]);
  }
  cg_coords_free(&c);
}

static void rejects_bad_tiles(void **st) {
  sieve_shape s = {1, 1, 64, 2, 2, 2, 0, 0};
  cg_layout l = {.kind = CG_LAYOUT_TILE, .tile = {1, 0, 2}};
  cg_coords c;
  cg_ref e[5];
  cg_graph *g = cg_graph_new();
  assert_int_equal(cg_layout_enum(&l, &s, &c), -1);
  assert_int_equal(cg_layout_coords(g, &l, &s, 0, e), -1);
  cg_graph_free(g);
}

/* A pattern of two classes with different layouts, heads alternating. */
static cg_pattern *two_class_pattern(void) {
  cg_pattern *p = cg_pattern_new();
  cg_graph *g = p->g;
  p->name = "two";
  p->nclasses = 2;
  p->classes = cg_alloc(p->arena, sizeof(cg_class) * 2);
  p->classes[0] = (cg_class){.name = "a", .layout = {.kind = CG_LAYOUT_IDENTITY},
                             .mask = cg_bin(g, CG_EQ, cg_var_ref(g, CG_V_QT), cg_var_ref(g, CG_V_KT))};
  p->classes[1] = (cg_class){.name = "b", .layout = {.kind = CG_LAYOUT_TILE, .tile = {2, 2, 2}},
                             .mask = cg_bin(g, CG_LE, cg_var_ref(g, CG_V_KIDX), cg_var_ref(g, CG_V_QIDX))};
  p->period = 2;
  p->head_class = cg_alloc(p->arena, sizeof(int) * 2);
  p->head_class[0] = 0;
  p->head_class[1] = 1;
  return p;
}

/* The kernel's expressions: for each head, the mask at positions is the
** class mask at the tokens the layout puts there, and idx is that token. */
static void kernel_exprs_follow_layouts(void **st) {
  cg_pattern *p = two_class_pattern();
  sieve_shape s = {1, 4, 64, 3, 3, 5, 4, 0};
  cg_ref m, qi, ki;
  cg_err e = {0};
  assert_int_equal(cg_kernel_exprs(p, &s, &m, &qi, &ki, &e), SIEVE_OK);
  for (int h = 0; h < 4; h++) {
    const cg_class *c = cg_pattern_class(p, h);
    cg_coords L;
    assert_int_equal(cg_layout_enum(&c->layout, &s, &L), 0);
    for (int64_t a = 0; a < L.n; a += 3)
      for (int64_t b = 0; b < L.n; b += 2) {
        int64_t v[CG_NVARS] = {0}, w[CG_NVARS] = {0};
        v[CG_V_QPOS] = a;
        v[CG_V_KPOS] = b;
        v[CG_V_HEAD] = h;
        w[CG_V_QT] = L.t[a], w[CG_V_QY] = L.y[a], w[CG_V_QX] = L.x[a], w[CG_V_QTEXT] = L.text[a];
        w[CG_V_QIDX] = L.idx[a];
        w[CG_V_KT] = L.t[b], w[CG_V_KY] = L.y[b], w[CG_V_KX] = L.x[b], w[CG_V_KTEXT] = L.text[b];
        w[CG_V_KIDX] = L.idx[b];
        v[CG_V_TLEN] = s.text;
        assert_int_equal(cg_eval1(p->g, m, v), cg_eval1(p->g, c->mask, w));
        /* Two valid text tokens: the other two are padding on either side. */
        v[CG_V_TLEN] = 2;
        int pad = (L.text[a] && L.idx[a] >= 2) || (L.text[b] && L.idx[b] >= 2);
        assert_int_equal(cg_eval1(p->g, m, v), pad ? 0 : cg_eval1(p->g, c->mask, w));
        assert_int_equal(cg_eval1(p->g, qi, v), L.idx[a]);
        assert_int_equal(cg_eval1(p->g, ki, v), L.idx[b]);
      }
    cg_coords_free(&L);
  }
  cg_pattern_free(p);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(enumeration_matches_exprs),
    cmocka_unit_test(model_order),
    cmocka_unit_test(transpose_order),
    cmocka_unit_test(ragged_tiles),
    cmocka_unit_test(rejects_bad_tiles),
    cmocka_unit_test(kernel_exprs_follow_layouts),
  };
  return cmocka_run_group_tests(t, setup_seed, NULL);
}
