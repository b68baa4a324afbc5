/*
** Parts of one attention call: a pattern seen from another first head, a
** chunk pair's tables cut from the whole sequence's, and its reference.
*/
#include "cg_part.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_ref.h"

/* ------------------------------------------------------------- heads */

/* Rebuilds the nodes `root` reaches in g into ng (map: old ref -> new),
** children first; head becomes head + h0. */
static int copy_expr(const cg_graph *g, cg_graph *ng, cg_ref root, int h0, cg_ref *map) {
  int *slot = malloc(sizeof(int) * (size_t)(root + 1));
  cg_ref *ref = malloc(sizeof(cg_ref) * (size_t)(root + 1));
  int n = slot && ref ? cg_reachable(g, root, slot, ref) : -1, bad = n < 0;
  for (int i = 0; !bad && i < n; i++) {
    cg_ref r = ref[i];
    if (map[r] != CG_NONE) continue;
    const cg_node *x = cg_node_at(g, r);
    cg_ref m;
    switch (x->op) {
    case CG_CONST: m = x->type == CG_BOOL ? cg_bool(ng, (int)x->imm) : cg_const(ng, x->imm); break;
    case CG_VAR:
      m = cg_var_ref(ng, (cg_var)x->imm);
      if (x->imm == CG_V_HEAD && h0) m = cg_bin(ng, CG_ADD, m, cg_const(ng, h0));
      break;
    case CG_NEG: case CG_ABS: case CG_NOT: m = cg_un(ng, x->op, map[x->a]); break;
    case CG_SELECT: m = cg_select(ng, map[x->a], map[x->b], map[x->c]); break;
    default: m = cg_bin(ng, x->op, map[x->a], map[x->b]); break;
    }
    bad = m == CG_NONE;
    map[r] = m;
  }
  free(slot);
  free(ref);
  return bad ? -1 : 0;
}

static int *copy_ints(cg_arena *a, const int *v, int n) {
  int *o = cg_alloc(a, sizeof(int) * (size_t)(n ? n : 1));
  if (o && n) memcpy(o, v, sizeof(int) * (size_t)n);
  return o;
}

#define DUP(a, s) ((s) ? cg_strdup((a), (s)) : NULL)

/* Scalars come over with the struct; every pointer is then replaced by a
** copy in c's arena, so the copy outlives p. A new pointer field in
** cg_pattern needs its line here. */
static int copy_pattern(const cg_pattern *p, int h0, cg_pattern *c) {
  cg_arena *a = c->arena;
  cg_graph *g = c->g;
  *c = *p;
  c->arena = a;
  c->g = g;
  c->ir_text = NULL;
  c->name = DUP(a, p->name);
  c->source = DUP(a, p->source);
  c->params = cg_alloc(a, sizeof(cg_param) * (size_t)(p->nparams ? p->nparams : 1));
  c->classes = cg_alloc(a, sizeof(cg_class) * (size_t)(p->nclasses ? p->nclasses : 1));
  c->head_class = cg_alloc(a, sizeof(int) * (size_t)p->period);
  c->sel.steps = copy_ints(a, p->sel.steps, p->sel.nsteps);
  c->sel.levels = copy_ints(a, p->sel.levels, p->sel.nlevels);
  c->auto_layout = NULL;
  c->autos = NULL;
  if (p->auto_layout && cg_layouts_copy(p, c)) return -1;
  cg_ref *map = malloc(sizeof(cg_ref) * (size_t)cg_graph_size(p->g));
  if (!c->params || !c->classes || !c->head_class || !c->sel.steps || !c->sel.levels || !map) {
    free(map);
    return -1;
  }
  for (int i = 0; i < p->nparams; i++) {
    c->params[i] = p->params[i];
    c->params[i].name = DUP(a, p->params[i].name);
    c->params[i].str = DUP(a, p->params[i].str);
  }
  for (int r = 0; r < p->period; r++) c->head_class[r] = p->head_class[(r + h0) % p->period];
  for (int i = 0; i < cg_graph_size(p->g); i++) map[i] = CG_NONE;
  int bad = 0;
  for (int i = 0; !bad && i < p->nclasses; i++) {
    c->classes[i] = p->classes[i];
    c->classes[i].name = DUP(a, p->classes[i].name);
    bad = copy_expr(p->g, g, p->classes[i].mask, h0, map);
    if (!bad) c->classes[i].mask = map[p->classes[i].mask];
  }
  if (!bad && p->sel.pmask) {
    c->sel.pmask = cg_alloc(a, sizeof(cg_ref) * (size_t)p->nclasses);
    bad = !c->sel.pmask;
    for (int i = 0; !bad && i < p->nclasses; i++) {
      bad = copy_expr(p->g, g, p->sel.pmask[i], h0, map);
      if (!bad) c->sel.pmask[i] = map[p->sel.pmask[i]];
    }
  }
  free(map);
  return bad;
}

sieve_status cg_pattern_heads(const cg_pattern *p, int h0, cg_pattern **out, cg_err *e) {
  *out = NULL;
  if (h0 < 0) return cg_fail(e, SIEVE_ERR_ARG, "first head %d is negative", h0);
  if (p->period < 1 || !p->head_class)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s has no head classes", p->name ? p->name : "?");
  cg_pattern *c = cg_pattern_new();
  if (!c || copy_pattern(p, h0, c)) {
    cg_pattern_free(c);
    return cg_fail(e, SIEVE_ERR_NOMEM, "no memory to copy pattern %s", p->name);
  }
  sieve_status st = cg_pattern_finish(c, e);
  if (st) {
    cg_pattern_free(c);
    return st;
  }
  *out = c;
  return SIEVE_OK;
}

/* ------------------------------------------------------------- chunks */

static sieve_status check_range(const char *side, int64_t seq, int blk, int64_t b, int64_t *end,
                                cg_err *e) {
  if (!*end) *end = seq;
  if (b < 0 || b >= *end || *end > seq)
    return cg_fail(e, SIEVE_ERR_ARG, "%s tokens [%lld, %lld) are not a non-empty range of %lld",
                   side, (long long)b, (long long)*end, (long long)seq);
  if (b % blk || (*end % blk && *end != seq))
    return cg_fail(e, SIEVE_ERR_ARG,
                   "%s tokens [%lld, %lld) do not start and end on the pattern's %s blocks of %d tokens",
                   side, (long long)b, (long long)*end, side, blk);
  return SIEVE_OK;
}

sieve_status cg_chunk_check(const cg_pattern *p, int64_t seq, int bq, int bk,
                            const sieve_chunk *in, sieve_chunk *out, cg_err *e) {
  *out = in ? *in : (sieve_chunk){0};
  sieve_status st = check_range("query", seq, bq, out->q_begin, &out->q_end, e);
  if (!st) st = check_range("key", seq, bk, out->k_begin, &out->k_end, e);
  if (st) return st;
  int whole = out->q_begin == 0 && out->q_end == seq && out->k_begin == 0 && out->k_end == seq;
  for (int i = 0; !whole && i < p->nclasses; i++)
    if (p->classes[i].layout.kind != CG_LAYOUT_IDENTITY)
      return cg_fail(e, SIEVE_ERR_ARG,
                     "class %s has the %s layout; chunks of the sequence need the identity "
                     "layout (block rows are then token ranges)",
                     p->classes[i].name, cg_layout_name(p->classes[i].layout.kind));
  if (!whole && p->sel.kind != CG_SELECT_STATIC)
    return cg_fail(e, SIEVE_ERR_ARG,
                   "pattern %s chooses blocks at run time from whole rows; chunks need a static "
                   "selection", p->name);
  return SIEVE_OK;
}

/* ------------------------------------------------------------- slicing */

/* Row range [r0, r1) of one CSR, keeping columns in [c0, c1) as c - c0. */
static int cut(cg_arena *a, const int32_t *ptr, const int32_t *idx, int r0, int r1, int c0, int c1,
               int32_t **optr, int32_t **oidx, int64_t *count) {
  int64_t n = 0;
  for (int r = r0; r < r1; r++)
    for (int32_t j = ptr[r]; j < ptr[r + 1]; j++) n += idx[j] >= c0 && idx[j] < c1;
  *optr = cg_alloc(a, sizeof(int32_t) * (size_t)(r1 - r0 + 1));
  *oidx = cg_alloc(a, sizeof(int32_t) * (size_t)(n ? n : 1));
  if (!*optr || !*oidx) return -1;
  n = 0;
  for (int r = r0; r < r1; r++) {
    (*optr)[r - r0] = (int32_t)n;
    for (int32_t j = ptr[r]; j < ptr[r + 1]; j++)
      if (idx[j] >= c0 && idx[j] < c1) (*oidx)[n++] = idx[j] - c0;
  }
  (*optr)[r1 - r0] = (int32_t)n;
  *count = n;
  return 0;
}

sieve_status cg_tables_slice(cg_tableset *ts, const sieve_chunk *c, cg_err *e) {
  int r0 = (int)(c->q_begin / ts->block_q), r1 = (int)((c->q_end + ts->block_q - 1) / ts->block_q);
  int c0 = (int)(c->k_begin / ts->block_k), c1 = (int)((c->k_end + ts->block_k - 1) / ts->block_k);
  for (int i = 0; i < ts->ntables; i++) {
    cg_table *t = &ts->tables[i];
    if (cut(ts->arena, t->full_ptr, t->full_idx, r0, r1, c0, c1, &t->full_ptr, &t->full_idx, &t->nfull) ||
        cut(ts->arena, t->part_ptr, t->part_idx, r0, r1, c0, c1, &t->part_ptr, &t->part_idx, &t->npart))
      return cg_fail(e, SIEVE_ERR_NOMEM, "no memory to cut block tables");
    t->nq = r1 - r0;
    t->nk = c1 - c0;
    t->nempty = (int64_t)t->nq * t->nk - t->nfull - t->npart;
    t->allowed_pairs = -1;  /* the whole sequence's count says nothing of the cut */
    t->estimated = 0;
    /* Chunk pairs take predicates: their bitmasks are not cut. */
    t->bits = 0;
    t->ent_words = 1;
    t->part_bits = NULL;
    t->bitw = NULL;
    t->nbitw = t->nbitmasks = 0;
  }
  ts->bits_classes = 0;
  ts->nq = r1 - r0;
  ts->nk = c1 - c0;
  return SIEVE_OK;
}

int64_t cg_tables_visits(const cg_tableset *ts) {
  int64_t n = 0;
  for (int h = 0; h < ts->shape.heads; h++) {
    const cg_table *t = &ts->tables[ts->head_table[h]];
    n += t->nfull + t->npart;
  }
  return n;
}

/* ----------------------------------------------------------- reference */

/* Marks in `in` the key tokens of query row qr (chunk-relative) that lie
** in a visited block of table t (block rows and columns chunk-relative). */
static void visited(const cg_table *t, int bq, int bk, int64_t qr, int64_t sk, uint8_t *in) {
  int r = (int)(qr / bq);
  memset(in, 0, (size_t)sk);
  const int32_t *ptr[2] = {t->full_ptr, t->part_ptr}, *idx[2] = {t->full_idx, t->part_idx};
  for (int s = 0; s < 2; s++)
    for (int32_t j = ptr[s][r]; j < ptr[s][r + 1]; j++)
      for (int64_t x = (int64_t)idx[s][j] * bk; x < (int64_t)(idx[s][j] + 1) * bk && x < sk; x++)
        in[x] = 1;
}

static void attend(const double *qr, const double *k, const double *v, int64_t sk, int D,
                   double scale, const uint8_t *m, const uint8_t *in, double *sc, double *o,
                   double *lse) {
  double mx = -INFINITY, sum = 0;
  for (int64_t j = 0; j < sk; j++) {
    sc[j] = -INFINITY;
    if (!m[j] || (in && !in[j])) continue;
    double d = 0;
    for (int x = 0; x < D; x++) d += qr[x] * k[j * D + x];
    sc[j] = d * scale;
    if (sc[j] > mx) mx = sc[j];
  }
  memset(o, 0, sizeof(double) * (size_t)D);
  if (mx == -INFINITY) {
    *lse = -INFINITY;
    return;
  }
  for (int64_t j = 0; j < sk; j++) {
    if (sc[j] == -INFINITY) continue;
    double w = exp(sc[j] - mx);
    sum += w;
    for (int x = 0; x < D; x++) o[x] += w * v[j * D + x];
  }
  for (int x = 0; x < D; x++) o[x] /= sum;
  *lse = mx + log(sum);
}

sieve_status cg_ref_part(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                         const sieve_chunk *chunk, const double *q, const double *k,
                         const double *v, double scale, double *o, double *lse, cg_err *e) {
  sieve_shape s;
  sieve_chunk c;
  cg_tableset *ts = NULL;
  cg_shape_for(p, shape, &s);
  sieve_status st = cg_shape_check(&s, e);
  if (st) return st;
  int64_t S = sieve_shape_tokens(&s);
  /* Automatic layouts are chosen per shape: the check reads the choice. */
  if ((st = cg_layouts_resolve(p, shape, e))) return st;
  int bq = cg_pattern_block_q(p), bk = cg_pattern_block_k(p);  /* cg_tables_build's */
  if ((st = cg_chunk_check(p, S, bq, bk, chunk, &c, e))) return st;
  int ident = 1;
  for (int i = 0; i < p->nclasses; i++) ident &= p->classes[i].layout.kind == CG_LAYOUT_IDENTITY;
  /* Tables place blocks in layout positions; only identity layouts make
  ** them token ranges the reference can hold them to. */
  if (ident && !(st = cg_tables_build(p, &s, step, layer, &ts, e))) st = cg_tables_slice(ts, &c, e);
  int64_t sq = c.q_end - c.q_begin, sk = c.k_end - c.k_begin, D = s.head_dim;
  uint8_t *m = malloc((size_t)(S * S)), *in = malloc((size_t)sk);
  double *sc = malloc(sizeof(double) * (size_t)sk);
  if (!st && (!m || !in || !sc)) st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the reference");
  if (scale <= 0) scale = 1.0 / sqrt((double)D);
  for (int h = 0; !st && h < s.heads; h++) {
    if ((st = cg_ref_mask(p, &s, h, step, layer, m, NULL, e))) break;
    const cg_table *t = ts ? &ts->tables[ts->head_table[h]] : NULL;
    for (int b = 0; b < s.batch; b++) {
      int64_t bh = (int64_t)b * s.heads + h;
      for (int64_t r = 0; r < sq; r++) {
        if (t) visited(t, ts->block_q, ts->block_k, r, sk, in);
        attend(q + (bh * sq + r) * D, k + bh * sk * D, v + bh * sk * D, sk, (int)D, scale,
               m + (c.q_begin + r) * S + c.k_begin, t ? in : NULL, sc, o + (bh * sq + r) * D,
               lse + bh * sq + r);
      }
    }
  }
  free(m);
  free(in);
  free(sc);
  cg_tables_free(ts);
  return st;
}
