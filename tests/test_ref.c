/*
** The CPU reference: its token mask against scalar evaluation, and its
** attention against a naive computation written out here, including rows
** that allow no key (O = 0, LSE = -inf).
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_ref.h"

/* A pattern of one class: the mask the caller builds in p->g. */
static cg_pattern *one_class(cg_pattern *p, cg_ref mask) {
  p->name = "ref";
  p->nclasses = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  p->classes[0] = (cg_class){.name = "c", .layout = {.kind = CG_LAYOUT_IDENTITY}, .mask = mask};
  p->period = 1;
  p->head_class = cg_alloc(p->arena, sizeof(int));
  return p;
}

/*
** Keys of the same frame as the query, or text keys, and only for even
** heads: odd heads have no allowed key at all. Step and layer shift it so
** that they are seen to be passed through.
*/
static cg_pattern *test_pattern(void) {
  cg_pattern *p = cg_pattern_new();
  cg_graph *g = p->g;
  cg_ref shift = cg_bin(g, CG_SUB, cg_var_ref(g, CG_V_STEP), cg_var_ref(g, CG_V_LAYER));
  cg_ref same = cg_bin(g, CG_EQ, cg_var_ref(g, CG_V_QT), cg_bin(g, CG_SUB, cg_var_ref(g, CG_V_KT), shift));
  cg_ref m = cg_bin(g, CG_OR, same, cg_var_ref(g, CG_V_KTEXT));
  cg_ref even = cg_bin(g, CG_EQ, cg_bin(g, CG_MOD, cg_var_ref(g, CG_V_HEAD), cg_const(g, 2)), cg_const(g, 0));
  return one_class(p, cg_bin(g, CG_AND, m, even));
}

static void mask_matches_scalar(void **st) {
  cg_pattern *p = test_pattern();
  sieve_shape s = {1, 2, 64, 3, 2, 2, 3, 1};
  int64_t S = sieve_shape_tokens(&s), allowed;
  uint8_t *m = malloc((size_t)(S * S));
  cg_coords c;
  cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  cg_err e = {0};
  assert_int_equal(cg_layout_enum(&id, &s, &c), 0);
  for (int h = 0; h < 2; h++) {
    assert_int_equal(cg_ref_mask(p, &s, h, 5, 4, m, &allowed, &e), SIEVE_OK);
    int64_t n = 0;
    for (int64_t q = 0; q < S; q++)
      for (int64_t k = 0; k < S; k++) {
        int64_t v[CG_NVARS] = {0};
        v[CG_V_QT] = c.t[q], v[CG_V_KT] = c.t[k], v[CG_V_KTEXT] = c.text[k];
        v[CG_V_HEAD] = h, v[CG_V_STEP] = 5, v[CG_V_LAYER] = 4;
        int64_t want = cg_eval1(p->g, p->classes[0].mask, v);
        assert_int_equal(m[q * S + k], want);
        n += want;
      }
    assert_int_equal(allowed, n);
    assert_true(h == 0 ? n > 0 : n == 0);
  }
  cg_coords_free(&c);
  free(m);
  cg_pattern_free(p);
}

static float frand(unsigned *st) {
  *st = *st * 1103515245u + 12345u;
  return (float)((*st >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* Naive masked attention of one (b, h): scores, max, exp, sum, weighted V. */
static void naive(const float *q, const float *k, const float *v, const uint8_t *m, int64_t S, int D,
                  double scale, double *o, double *lse) {
  for (int64_t i = 0; i < S; i++) {
    double *sc = calloc((size_t)S, sizeof(double)), mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < S; j++) {
      for (int d = 0; d < D; d++) sc[j] += (double)q[i * D + d] * k[j * D + d];
      sc[j] *= scale;
      if (m[i * S + j] && sc[j] > mx) mx = sc[j];
    }
    for (int d = 0; d < D; d++) o[i * D + d] = 0;
    for (int64_t j = 0; j < S; j++)
      if (m[i * S + j]) sum += exp(sc[j] - mx);
    for (int64_t j = 0; j < S && sum > 0; j++)
      if (m[i * S + j])
        for (int d = 0; d < D; d++) o[i * D + d] += exp(sc[j] - mx) / sum * v[j * D + d];
    lse[i] = sum > 0 ? mx + log(sum) : -INFINITY;
    free(sc);
  }
}

/*
** Q is [B, H, S, D]; K and V are stored [B, S, H, D] (BSHD) to exercise
** the strides.
*/
static void attention_matches_naive(void **st) {
  cg_pattern *p = test_pattern();
  sieve_shape s = {2, 2, 64, 3, 2, 3, 2, 0};
  int64_t S = sieve_shape_tokens(&s), B = 2, H = 2, D = 64, n = B * H * S * D;
  float *q = malloc(sizeof(float) * (size_t)n), *k = malloc(sizeof(float) * (size_t)n),
        *v = malloc(sizeof(float) * (size_t)n);
  unsigned seed = 7;
  for (int64_t i = 0; i < n; i++) q[i] = 3 * frand(&seed), k[i] = 3 * frand(&seed), v[i] = frand(&seed);
  cg_ref_tensor tq = {q, H * S * D, S * D, D}, tk = {k, S * H * D, D, H * D}, tv = {v, S * H * D, D, H * D};
  double *o = malloc(sizeof(double) * (size_t)n), *lse = malloc(sizeof(double) * (size_t)(B * H * S));
  double scale = 1 / sqrt((double)D);
  cg_err e = {0};
  assert_int_equal(cg_ref_attention(p, &s, 2, 1, &tq, &tk, &tv, scale, o, lse, &e), SIEVE_OK);
  uint8_t *m = malloc((size_t)(S * S));
  float *qh = malloc(sizeof(float) * (size_t)(S * D)), *kh = malloc(sizeof(float) * (size_t)(S * D)),
        *vh = malloc(sizeof(float) * (size_t)(S * D));
  double *oh = malloc(sizeof(double) * (size_t)(S * D)), *lh = malloc(sizeof(double) * (size_t)S);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++) {
      assert_int_equal(cg_ref_mask(p, &s, (int)h, 2, 1, m, NULL, &e), SIEVE_OK);
      for (int64_t i = 0; i < S; i++)
        for (int64_t d = 0; d < D; d++) {
          qh[i * D + d] = q[((b * H + h) * S + i) * D + d];
          kh[i * D + d] = k[((b * S + i) * H + h) * D + d];
          vh[i * D + d] = v[((b * S + i) * H + h) * D + d];
        }
      naive(qh, kh, vh, m, S, (int)D, scale, oh, lh);
      for (int64_t i = 0; i < S; i++) {
        double got = lse[(b * H + h) * S + i];
        if (isinf(lh[i])) assert_true(isinf(got) && got < 0);
        else assert_true(fabs(got - lh[i]) < 1e-12);
        for (int64_t d = 0; d < D; d++) {
          double og = o[((b * H + h) * S + i) * D + d];
          if (h % 2) assert_true(og == 0.0); /* odd heads: no allowed key */
          assert_true(fabs(og - oh[i * D + d]) < 1e-12);
        }
      }
    }
  free(q), free(k), free(v), free(o), free(lse), free(m), free(qh), free(kh), free(vh), free(oh), free(lh);
  cg_pattern_free(p);
}

static void rejects_bad_shapes(void **st) {
  cg_pattern *p = test_pattern();
  sieve_shape s = {1, 1, 64, 2, 2, -2, 0, 0};
  uint8_t m[1];
  cg_err e = {0};
  assert_int_equal(cg_ref_mask(p, &s, 0, 0, 0, m, NULL, &e), SIEVE_ERR_SHAPE);
  assert_non_null(strstr(e.msg, "width"));
  cg_pattern_free(p);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(mask_matches_scalar),
    cmocka_unit_test(attention_matches_naive),
    cmocka_unit_test(rejects_bad_shapes),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
