/*
** The CPU reference: every token pair evaluated, attention in float64.
*/
#include "cg_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_interval.h"

/* ------------------------------------------------------------ mask rows */

/* A compiled mask over a token set, with every token's interfaces. */
typedef struct rows {
  cg_prog *prog;
  cg_scratch *s;
  int64_t S, *qv, *kv, *qrow, *out;
} rows;

static void rows_free(rows *r) {
  cg_scratch_free(r->s);
  cg_prog_free(r->prog);
  free(r->qv);
  free(r->kv);
  free(r->qrow);
  free(r->out);
  memset(r, 0, sizeof *r);
}

static int rows_init(rows *r, const cg_graph *g, cg_ref mask, const cg_coords *c, int64_t head,
                     int step, int layer) {
  memset(r, 0, sizeof *r);
  r->S = c->n;
  r->prog = cg_prog_new(g, mask);
  if (!r->prog) return -1;
  cg_prog_bind(r->prog, head, step, layer);
  size_t S = (size_t)c->n, nq = (size_t)cg_prog_nqv(r->prog), nk = (size_t)cg_prog_nkv(r->prog);
  r->s = cg_scratch_new(r->prog);
  r->qv = malloc(sizeof(int64_t) * S * (nq ? nq : 1));
  r->kv = malloc(sizeof(int64_t) * S * (nk ? nk : 1));
  r->qrow = malloc(sizeof(int64_t) * (nq ? nq : 1));
  r->out = malloc(sizeof(int64_t) * S);
  if (!r->s || !r->qv || !r->kv || !r->qrow || !r->out) return -1;
  cg_prog_side(r->prog, 0, c, 0, c->n, r->qv, c->n, r->s);
  cg_prog_side(r->prog, 1, c, 0, c->n, r->kv, c->n, r->s);
  return 0;
}

/* The mask of query token q against every key: r->out[0..S). */
static const int64_t *rows_eval(rows *r, int64_t q) {
  for (int j = 0; j < cg_prog_nqv(r->prog); j++) r->qrow[j] = r->qv[j * r->S + q];
  cg_prog_row(r->prog, r->qrow, r->kv, r->S, (int)r->S, r->out, r->s);
  return r->out;
}

static sieve_status model_coords(const sieve_shape *s, cg_coords *c, cg_err *e) {
  cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  if (cg_layout_enum(&id, s, c)) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  return SIEVE_OK;
}

/* The shape the pattern runs on, checked; head is checked when >= 0. */
static sieve_status check(const cg_pattern *p, const sieve_shape *in, int head, sieve_shape *s,
                          cg_err *e) {
  cg_shape_for(p, in, s);
  sieve_status st = cg_shape_check(s, e);
  if (st) return st;
  st = cg_pattern_check_classes(p, e);
  if (st) return st;
  if (head >= s->heads) return cg_fail(e, SIEVE_ERR_ARG, "head %d of %d", head, s->heads);
  return SIEVE_OK;
}

/* ----------------------------------------------------------------- mask */

/* Rows of `root` (a class's mask, or the one it is profiled under) for head. */
static sieve_status mask_of(const cg_pattern *p, const sieve_shape *shape, cg_ref root, int head, int step,
                            int layer, uint8_t *m, int64_t *allowed, cg_err *e) {
  sieve_shape s;
  cg_coords c;
  rows r = {0};
  sieve_status st = check(p, shape, head, &s, e);
  if (st || (st = model_coords(&s, &c, e))) return st;
  cg_ref mask = cg_mask_bound(p->g, root, &s, -1);
  if (mask == CG_NONE || rows_init(&r, p->g, mask, &c, head, step, layer)) {
    st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  } else {
    int64_t n = 0;
    for (int64_t q = 0; q < c.n; q++) {
      const int64_t *row = rows_eval(&r, q);
      for (int64_t k = 0; k < c.n; k++) n += m[q * c.n + k] = row[k] != 0;
    }
    if (allowed) *allowed = n;
  }
  rows_free(&r);
  cg_coords_free(&c);
  return st;
}

sieve_status cg_ref_mask(const cg_pattern *p, const sieve_shape *shape, int head, int step, int layer,
                         uint8_t *m, int64_t *allowed, cg_err *e) {
  if (head < 0) return cg_fail(e, SIEVE_ERR_ARG, "head %d", head);
  return mask_of(p, shape, cg_pattern_class(p, head)->mask, head, step, layer, m, allowed, e);
}

sieve_status cg_ref_profile_mask(const cg_pattern *p, const sieve_shape *shape, int cls, int step, int layer,
                                 uint8_t *m, int64_t *allowed, cg_err *e) {
  if (cls < 0 || cls >= p->nclasses) return cg_fail(e, SIEVE_ERR_ARG, "class %d of %d", cls, p->nclasses);
  return mask_of(p, shape, cg_profile_mask(p, cls), 0, step, layer, m, allowed, e);
}

/* ------------------------------------------------------------ attention */

/* One query row of one (b, h): O and LSE from the scores of its allowed keys. */
static double attend_row(const float *qr, const cg_ref_tensor *k, const cg_ref_tensor *v,
                         int64_t S, int D, double scale, const int64_t *mask, double *sc,
                         double *o) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < S; j++) {
    if (!mask[j]) continue;
    const float *kr = k->p + j * k->ss;
    double d = 0;
    for (int x = 0; x < D; x++) d += (double)qr[x] * kr[x];
    sc[j] = d * scale;
    if (sc[j] > mx) mx = sc[j];
  }
  memset(o, 0, sizeof(double) * (size_t)D);
  if (mx == -INFINITY) return -INFINITY;
  double sum = 0;
  for (int64_t j = 0; j < S; j++) {
    if (!mask[j]) continue;
    double w = exp(sc[j] - mx);
    const float *vr = v->p + j * v->ss;
    sum += w;
    for (int x = 0; x < D; x++) o[x] += w * vr[x];
  }
  for (int x = 0; x < D; x++) o[x] /= sum;
  return mx + log(sum);
}

/* One (b, h) of a tensor: its row 0 becomes the tensor's start. */
static cg_ref_tensor at(const cg_ref_tensor *t, int b, int h) {
  return (cg_ref_tensor){t->p + b * t->sb + h * t->sh, 0, 0, t->ss};
}

static void attend_head(rows *r, const sieve_shape *s, int b, int h, const cg_ref_tensor *q,
                        const cg_ref_tensor *k, const cg_ref_tensor *v, double scale, double *sc,
                        double *o, double *lse) {
  int64_t S = r->S, D = s->head_dim;
  cg_ref_tensor qh = at(q, b, h), kh = at(k, b, h), vh = at(v, b, h);
  int64_t base = ((int64_t)b * s->heads + h) * S;
  for (int64_t i = 0; i < S; i++) {
    const int64_t *mask = rows_eval(r, i);
    lse[base + i] = attend_row(qh.p + i * qh.ss, &kh, &vh, S, (int)D, scale, mask, sc,
                               o + (base + i) * D);
  }
}

sieve_status cg_ref_attention(const cg_pattern *p, const sieve_shape *shape, int step, int layer,
                              const cg_ref_tensor *q, const cg_ref_tensor *k,
                              const cg_ref_tensor *v, double scale, double *o, double *lse,
                              cg_err *e) {
  return cg_ref_attention_text(p, shape, step, layer, NULL, q, k, v, scale, o, lse, e);
}

sieve_status cg_ref_attention_text(const cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                   const int *tlen, const cg_ref_tensor *q, const cg_ref_tensor *k,
                                   const cg_ref_tensor *v, double scale, double *o, double *lse,
                                   cg_err *e) {
  sieve_shape s;
  cg_coords c;
  sieve_status st = check(p, shape, -1, &s, e);
  if (st || (st = model_coords(&s, &c, e))) return st;
  double *sc = malloc(sizeof(double) * (size_t)c.n);
  if (!sc) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int h = 0; !st && h < s.heads; h++) {
    for (int b = 0; !st && b < s.batch; b++) {
      rows r = {0};
      cg_ref mask = cg_mask_bound(p->g, cg_pattern_class(p, h)->mask, &s, tlen ? tlen[b] : -1);
      if (mask == CG_NONE || rows_init(&r, p->g, mask, &c, h, step, layer))
        st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
      else
        attend_head(&r, &s, b, h, q, k, v, scale, sc, o, lse);
      rows_free(&r);
    }
  }
  free(sc);
  cg_coords_free(&c);
  return st;
}

/* ----------------------------------------------------------- block mask */

static void count_blocks(rows *r, int bq, int bk, int nk, int64_t *cnt) {
  for (int64_t q = 0; q < r->S; q++) {
    const int64_t *row = rows_eval(r, q);
    int64_t *c = cnt + (q / bq) * nk;
    for (int64_t k = 0; k < r->S; k++) c[k / bk] += row[k] != 0;
  }
}

static void classify(const int64_t *cnt, int64_t S, int bq, int bk, int64_t nq, int64_t nk,
                     uint8_t *cls, int64_t *allowed) {
  int64_t n = 0;
  for (int64_t b = 0; b < nq * nk; b++) {
    int64_t q0 = b / nk * bq, k0 = b % nk * bk;
    int64_t all = ((q0 + bq < S ? q0 + bq : S) - q0) * ((k0 + bk < S ? k0 + bk : S) - k0);
    cls[b] = cnt[b] == 0 ? CG_BLK_EMPTY : cnt[b] == all ? CG_BLK_FULL : CG_BLK_UNDECIDED;
    n += cnt[b];
  }
  if (allowed) *allowed = n;
}

sieve_status cg_ref_blocks(cg_pattern *p, const sieve_shape *shape, int head, int step, int layer,
                           int bq, int bk, uint8_t *cls, int64_t *allowed, cg_err *e) {
  sieve_shape s;
  cg_ref mask, qi, ki;
  if (head < 0) return cg_fail(e, SIEVE_ERR_ARG, "head %d", head);
  sieve_status st = check(p, shape, head, &s, e);
  if (st || (st = cg_kernel_exprs(p, &s, &mask, &qi, &ki, e))) return st;
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_TLEN] = cg_const(p->g, s.text);  /* the tables assume the whole text */
  if ((mask = cg_subst(p->g, mask, map)) == CG_NONE) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  if (bq < 1 || bk < 1) return cg_fail(e, SIEVE_ERR_ARG, "block sizes must be positive");
  int64_t S = sieve_shape_tokens(&s), nq = (S + bq - 1) / bq, nk = (S + bk - 1) / bk;
  cg_coords c;
  rows r = {0};
  int64_t *cnt = calloc((size_t)(nq * nk), sizeof(int64_t));
  int bad = !cnt || cg_coords_init(&c, S);
  if (!bad) {
    /* Only positions matter: the expression reads q.pos and k.pos. */
    int32_t *a[5] = {c.t, c.y, c.x, c.text, c.idx};
    for (int i = 0; i < 5; i++) memset(a[i], 0, sizeof(int32_t) * (size_t)S);
    bad = rows_init(&r, p->g, mask, &c, head, step, layer);
  }
  if (!bad) {
    count_blocks(&r, bq, bk, (int)nk, cnt);
    classify(cnt, S, bq, bk, nq, nk, cls, allowed);
  }
  rows_free(&r);
  if (cnt) cg_coords_free(&c);
  free(cnt);
  return bad ? cg_fail(e, SIEVE_ERR_NOMEM, "out of memory") : SIEVE_OK;
}
