/*
** Parts of one attention call (sequence parallelism), through the public
** API: a pattern seen from another first head gives each head its global
** class; chunk-pair tables are the whole sequence's, cut; the reference of
** key chunks, merged by LSE, is the reference of the whole.
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

#include "sieve.h"

/* A small ragged grid: 384 video tokens, then 29 text tokens (413). */
static const sieve_shape GEO = {1, 2, 64, 4, 8, 12, 29, 1};

static sieve_ctx *ctx;

static sieve_pattern *load(const char *name, const char *const *ov) {
  char path[1024];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/patterns/%s.lua", src ? src : ".", name);
  sieve_pattern *p = NULL;
  assert_int_equal(sieve_pattern_load(ctx, path, ov, &p), SIEVE_OK);
  return p;
}

static void heads_take_their_global_class(void **st) {
  (void)st;
  sieve_pattern *p = load("svg", NULL), *h;
  sieve_shape whole = GEO, part = GEO;
  whole.heads = 6;
  sieve_tables *tw, *tp;
  assert_int_equal(sieve_tables_build(ctx, p, &whole, 0, 0, &tw), SIEVE_OK);
  for (int h0 = 0; h0 < 4; h0++) {
    assert_int_equal(sieve_pattern_heads(ctx, p, h0, &h), SIEVE_OK);
    assert_int_equal(strcmp(sieve_pattern_ir(h), sieve_pattern_ir(p)) == 0, h0 % 2 == 0);
    assert_int_equal(sieve_tables_build(ctx, h, &part, 0, 0, &tp), SIEVE_OK);
    for (int i = 0; i < 2; i++) {
      sieve_table_view a, b;
      sieve_tables_view(tp, sieve_tables_head_table(tp, i), &a);
      sieve_tables_view(tw, sieve_tables_head_table(tw, h0 + i), &b);
      assert_string_equal(a.klass, b.klass);
      assert_int_equal(a.full_blocks, b.full_blocks);
      assert_int_equal(a.partial_blocks, b.partial_blocks);
    }
    sieve_tables_free(tp);
    sieve_pattern_free(h);
  }
  sieve_tables_free(tw);
  sieve_pattern_free(p);
}

/* Row r of the chunk's table against row r0 + r of the whole one, columns
** in [c0, c1) shifted by c0. */
static void same_row(const int32_t *pp, const int32_t *pi, int r, const int32_t *wp,
                     const int32_t *wi, int wr, int c0, int c1) {
  int n = 0;
  for (int32_t j = wp[wr]; j < wp[wr + 1]; j++) {
    if (wi[j] < c0 || wi[j] >= c1) continue;
    assert_true(pp[r] + n < pp[r + 1]);
    assert_int_equal(pi[pp[r] + n], wi[j] - c0);
    n++;
  }
  assert_int_equal(pp[r] + n, pp[r + 1]);
}

static void chunk_tables_are_cut_from_the_whole(void **st) {
  (void)st;
  const char *names[] = {"frame_window", "lvsa"};
  const sieve_chunk cs[] = {{0, 128, 0, 256}, {128, 384, 256, 0}, {384, 0, 0, 0}, {256, 384, 128, 256}};
  for (int n = 0; n < 2; n++) {
    sieve_pattern *p = load(names[n], NULL);
    sieve_tables *tw, *tc;
    assert_int_equal(sieve_tables_build(ctx, p, &GEO, 2, 3, &tw), SIEVE_OK);
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
      assert_int_equal(sieve_tables_build_chunk(ctx, p, &GEO, 2, 3, &cs[c], &tc), SIEVE_OK);
      int r0 = (int)(cs[c].q_begin / 128), c0 = (int)(cs[c].k_begin / 128);
      int c1 = cs[c].k_end ? (int)((cs[c].k_end + 127) / 128) : 1 << 30;
      int64_t visits = 0;
      for (int h = 0; h < GEO.heads; h++) {
        sieve_table_view a, w;
        sieve_tables_view(tc, sieve_tables_head_table(tc, h), &a);
        sieve_tables_view(tw, sieve_tables_head_table(tw, h), &w);
        for (int r = 0; r < a.q_blocks; r++) {
          same_row(a.full_ptr, a.full_idx, r, w.full_ptr, w.full_idx, r0 + r, c0, c1);
          same_row(a.part_ptr, a.part_idx, r, w.part_ptr, w.part_idx, r0 + r, c0, c1);
        }
        visits += a.full_blocks + a.partial_blocks;
      }
      assert_int_equal(sieve_tables_visits(tc), visits);
      sieve_tables_free(tc);
    }
    sieve_tables_free(tw);
    sieve_pattern_free(p);
  }
}

static double frand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (double)((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

/*
** Each query chunk against each key chunk, merged by LSE as ring attention
** does, equals the whole call's reference; with text=false the text rows
** see no key at all and must stay O = 0, LSE = -inf through the merge.
*/
static void key_chunks_merge_to_the_whole(void **st) {
  (void)st;
  const char *nt[] = {"window=0", "text=false", NULL};
  sieve_pattern *ps[] = {load("frame_window", nt), load("lvsa", NULL)};
  const int64_t S = 413, D = 64, H = GEO.heads, cut[] = {0, 128, 256, 384, 413};
  size_t n = (size_t)(H * S * D);
  double *q = malloc(n * 8), *k = malloc(n * 8), *v = malloc(n * 8), *o = malloc(n * 8),
         *l = malloc((size_t)(H * S) * 8), *po = malloc(n * 8), *pl = malloc((size_t)(H * S) * 8),
         *qc = malloc(n * 8), *kc = malloc(n * 8), *vc = malloc(n * 8);
  unsigned seed = 1;
  for (size_t i = 0; i < n; i++) q[i] = frand(&seed), k[i] = frand(&seed), v[i] = frand(&seed);
  for (int pi = 0; pi < 2; pi++) {
    assert_int_equal(sieve_reference(ctx, ps[pi], &GEO, 1, 2, NULL, q, k, v, 0, o, l), SIEVE_OK);
    int64_t empty = 0;
    for (int qi = 0; qi < 4; qi++) {
      int64_t q0 = cut[qi], sq = cut[qi + 1] - q0;
      double *mo = calloc((size_t)(H * sq * D), 8), *ml = malloc((size_t)(H * sq) * 8);
      for (int64_t i = 0; i < H * sq; i++) ml[i] = -INFINITY;
      for (int h = 0; h < H; h++) memcpy(qc + h * sq * D, q + (h * S + q0) * D, (size_t)(sq * D) * 8);
      for (int ki = 0; ki < 4; ki++) {
        int64_t k0 = cut[ki], sk = cut[ki + 1] - k0;
        for (int h = 0; h < H; h++) {
          memcpy(kc + h * sk * D, k + (h * S + k0) * D, (size_t)(sk * D) * 8);
          memcpy(vc + h * sk * D, v + (h * S + k0) * D, (size_t)(sk * D) * 8);
        }
        sieve_chunk c = {q0, q0 + sq, k0, k0 + sk};
        assert_int_equal(sieve_reference(ctx, ps[pi], &GEO, 1, 2, &c, qc, kc, vc, 0, po, pl), SIEVE_OK);
        for (int64_t r = 0; r < H * sq; r++) {
          double m = fmax(ml[r], pl[r]);
          if (m == -INFINITY) continue;
          double a = exp(ml[r] - m), b = exp(pl[r] - m);
          for (int64_t d = 0; d < D; d++)
            mo[r * D + d] = (a * mo[r * D + d] + b * po[r * D + d]) / (a + b);
          ml[r] = m + log(a + b);
        }
      }
      for (int h = 0; h < H; h++)
        for (int64_t r = 0; r < sq; r++) {
          double want = l[h * S + q0 + r], got = ml[h * sq + r];
          empty += want == -INFINITY;
          assert_true(want == -INFINITY ? got == -INFINITY : fabs(got - want) < 1e-12);
          for (int64_t d = 0; d < D; d++)
            assert_true(fabs(mo[(h * sq + r) * D + d] - o[((h * S) + q0 + r) * D + d]) < 1e-12);
        }
      free(mo);
      free(ml);
    }
    assert_true(pi == 0 ? empty == H * 29 : empty == 0);
    sieve_pattern_free(ps[pi]);
  }
  free(q), free(k), free(v), free(o), free(l), free(po), free(pl), free(qc), free(kc), free(vc);
}

static void refusals_name_the_rule(void **st) {
  (void)st;
  sieve_pattern *f = load("frame_window", NULL), *s = load("svg", NULL);
  sieve_tables *t = NULL;
  sieve_chunk odd = {0, 100, 0, 0}, ok = {0, 128, 0, 0}, bad = {0, 0, 64, 0};
  assert_int_equal(sieve_tables_build_chunk(ctx, f, &GEO, 0, 0, &odd, &t), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "query blocks of 128"));
  assert_int_equal(sieve_tables_build_chunk(ctx, f, &GEO, 0, 0, &bad, &t), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "key blocks of 128"));
  assert_int_equal(sieve_tables_build_chunk(ctx, s, &GEO, 0, 0, &ok, &t), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "identity layout"));
  assert_null(t);
  sieve_pattern *h;
  assert_int_equal(sieve_pattern_heads(ctx, f, -1, &h), SIEVE_ERR_ARG);
  assert_null(h);
  sieve_pattern_free(f);
  sieve_pattern_free(s);
}

int main(void) {
  if (sieve_open(&ctx)) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(heads_take_their_global_class),
    cmocka_unit_test(chunk_tables_are_cut_from_the_whole),
    cmocka_unit_test(key_chunks_merge_to_the_whole),
    cmocka_unit_test(refusals_name_the_rule),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  sieve_close(ctx);
  return rc;
}
