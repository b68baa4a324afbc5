/*
** Block tables: exact refinement. A block pair the interval test left
** undecided gets its allowed token pairs counted exactly.
**
** Exact counting is what makes density exact, and it stays cheap because
** a block pair rarely needs all its token pairs:
**   - a mask reads few coordinates (a frame window only t and text), so
**     consecutive tokens share their interface values (cg_eval.h) and a
**     block is a few runs (cg_blocks_runs.c);
**   - the intervals that left the pair undecided still decide parts of the
**     mask (temporal heads: "same (y, x)" is false between distant blocks);
**     the program is specialised to that, and runs that differ only in
**     interfaces it no longer reads merge;
**   - one lane per (query tuple, key tuple), weighted by token counts;
**   - pairs that stay large (a window over idx, x or y) are split into
**     micro-blocks that get intervals of their own, so only micro pairs on
**     the mask's boundary are evaluated token by token.
** There is no early exit on the first mixed pair: the count needs every
** pair anyway.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

/* The phase specialised to what intervals decided on this pair, with its
** translation pairs, cached per worker; its sp NULL (the full phase) when
** out of memory. */
spec_entry *blk_spec(worker *w, uint64_t dec, uint64_t val) {
  /* Neighbouring blocks of a row mostly share one. */
  if (w->spec_last < w->nspec && w->spec[w->spec_last].dec == dec && w->spec[w->spec_last].val == val)
    return &w->spec[w->spec_last];
  for (int i = 0; i < w->nspec; i++)
    if (w->spec[i].dec == dec && w->spec[i].val == val) return &w->spec[w->spec_last = i];
  if (w->nspec == SPEC_CACHE) {
    for (int i = 0; i < w->nspec; i++) {
      cg_spec_free(w->spec[i].sp);
      free(w->spec[i].ks);
    }
    w->nspec = 0;
  }
  spec_entry *e = &w->spec[w->nspec];
  e->dec = dec;
  e->val = val;
  e->sp = cg_spec_new(w->j->prog, dec, val);
  e->qk.qb = -1;
  e->ks = NULL;
  if (e->sp) blk_shift_of(e->sp, &e->sh);
  w->spec_last = w->nspec++;
  return e;
}

static const cg_spec *spec_for(worker *w, uint64_t dec, uint64_t val) { return blk_spec(w, dec, val)->sp; }

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static int same_tuple(const tuples *t, int64_t i, const runs *r, int nv, uint64_t live, int64_t k) {
  for (int j = 0; j < nv; j++)
    if ((j >= 64 || (live >> j & 1)) && t->v[j * t->ld + i] != r->v[j * r->n + k]) return 0;
  return 1;
}

/*
** The distinct tuples of the live interfaces among runs [r0, r0 + m),
** written from t->v + 0 on: runs that differ only in interfaces the pair no
** longer reads merge.
*/
static void distinct(dedup *h, const runs *r, int nv, uint64_t live, int64_t r0, int64_t m, tuples *t) {
  t->n = 0;
  if (++h->stamp == 0) {
    memset(h->gen, 0, sizeof(uint32_t) * (h->mask + 1));
    h->stamp = 1;
  }
  for (int64_t k = r0; k < r0 + m; k++) {
    uint64_t x = 0;
    for (int j = 0; j < nv; j++)
      if (j >= 64 || (live >> j & 1)) x = mix(x, (uint64_t)r->v[j * r->n + k]);
    uint32_t s = (uint32_t)x & h->mask;
    while (h->gen[s] == h->stamp && !same_tuple(t, h->slot[s], r, nv, live, k)) s = (s + 1) & h->mask;
    if (h->gen[s] == h->stamp) {
      t->w[h->slot[s]] += r->w[k];
      continue;
    }
    h->gen[s] = h->stamp;
    h->slot[s] = (int32_t)t->n;
    for (int j = 0; j < nv; j++) t->v[j * t->ld + t->n] = r->v[j * r->n + k];
    t->w[t->n++] = r->w[k];
  }
}

/* The query block's tuples, kept while the row and live set repeat. */
static const tuples *query_tuples(worker *w, int qb, uint64_t live) {
  const job *j = w->j;
  if (w->tq_qb != qb || w->tq_live != live) {
    distinct(&w->h, &j->qr, j->nqv, live, j->qr.off[qb], j->qr.off[qb + 1] - j->qr.off[qb], &w->tq);
    w->tq_qb = qb;
    w->tq_live = live;
  }
  return &w->tq;
}

/* A key block's tuples, kept per block while its live set repeats: every
** row visits the same key blocks. */
static tuples key_tuples(worker *w, int kb, uint64_t live) {
  const job *j = w->j;
  int64_t o = j->kr.off[kb];
  tuples t = {w->tk.v + o, w->tk.w + o, w->tk.ld, w->tk_n[kb]};
  if (!w->tk_ok[kb] || w->tk_live[kb] != live) {
    distinct(&w->h, &j->kr, j->nkv, live, o, j->kr.off[kb + 1] - o, &t);
    w->tk_n[kb] = t.n;
    w->tk_live[kb] = live;
    w->tk_ok[kb] = 1;
  }
  return t;
}

/* Allowed pairs over the cross product of query and key tuples, as many
** lanes at a time as fit. */
static int64_t cross(worker *w, const cg_spec *sp, const tuples *q, const tuples *k) {
  const job *j = w->j;
  int64_t total = 0, g = w->lanes / k->n;
  for (int64_t a0 = 0; a0 < q->n; a0 += g) {
    int64_t na = q->n - a0 < g ? q->n - a0 : g;
    for (int v = 0; v < j->nqv; v++)
      for (int64_t a = 0; a < na; a++) {
        int64_t x = q->v[v * q->ld + a0 + a], *d = w->ql + v * w->lanes + a * k->n;
        for (int64_t b = 0; b < k->n; b++) d[b] = x;
      }
    for (int v = 0; v < j->nkv; v++)
      for (int64_t a = 0; a < na; a++)
        memcpy(w->kl + v * w->lanes + a * k->n, k->v + v * k->ld, sizeof(int64_t) * (size_t)k->n);
    int n = (int)(na * k->n);
    if (sp) cg_spec_pairs(j->prog, sp, w->ql, w->lanes, w->kl, w->lanes, n, w->out, w->s);
    else cg_prog_pairs(j->prog, w->ql, w->lanes, w->kl, w->lanes, n, w->out, w->s);
    for (int64_t a = 0; a < na; a++) {
      int64_t c = 0;
      for (int64_t b = 0; b < k->n; b++) c += w->out[a * k->n + b] ? k->w[b] : 0;
      total += c * q->w[a0 + a];
    }
  }
  return total;
}

/* Allowed pairs among query tokens [a0, a1) and key tokens [b0, b1) (at
** most a micro-block each), each pair in a lane. */
static int64_t exact_tokens(worker *w, int64_t a0, int64_t a1, int64_t b0, int64_t b1) {
  const job *j = w->j;
  int64_t na = a1 - a0, nb = b1 - b0, total = 0;
  cg_prog_side(j->prog, 0, &j->L->c, a0, na, w->tokq, MICRO, w->s);
  cg_prog_side(j->prog, 1, &j->L->c, b0, nb, w->tokk, MICRO, w->s);
  for (int v = 0; v < j->nqv; v++)
    for (int64_t a = 0; a < na; a++)
      for (int64_t b = 0; b < nb; b++) w->ql[v * w->lanes + a * nb + b] = w->tokq[v * MICRO + a];
  for (int v = 0; v < j->nkv; v++)
    for (int64_t a = 0; a < na; a++)
      memcpy(w->kl + v * w->lanes + a * nb, w->tokk + v * MICRO, sizeof(int64_t) * (size_t)nb);
  cg_prog_pairs(j->prog, w->ql, w->lanes, w->kl, w->lanes, (int)(na * nb), w->out, w->s);
  for (int64_t i = 0; i < na * nb; i++) total += w->out[i] != 0;
  return total;
}

/*
** A block pair whose tokens do not collapse into few runs (a window over
** idx, x or y): intervals again over micro-blocks, so that only micro pairs
** on the mask's boundary are evaluated token by token.
*/
static int64_t refine_micro(worker *w, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO, total = 0;
  for (int64_t mq = q0 / MICRO; mq < (q1 + MICRO - 1) / MICRO; mq++) {
    int64_t a0 = mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
    blk_micro_row(w, mq, m0, m1);
    for (int64_t mk = m0; mk < m1; mk++) {
      int64_t b0 = mk * MICRO, b1 = b0 + MICRO < k1 ? b0 + MICRO : k1;
      int c = w->mcls[mk - m0];
      if (c == CG_BLK_FULL) total += (a1 - a0) * (b1 - b0);
      else if (c == CG_BLK_UNDECIDED) total += exact_tokens(w, a0, a1, b0, b1);
    }
  }
  return total;
}

/*
** Allowed token pairs of one block pair. Runs that stay many after merging
** (a window over idx, x or y) go to micro-blocks; otherwise a lane per
** (query tuple, key tuple) of the program specialised to the pair.
*/
int64_t blk_refine(worker *w, int qb, int kb, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  const job *j = w->j;
  int64_t mq = j->qr.off[qb + 1] - j->qr.off[qb], mk = j->kr.off[kb + 1] - j->kr.off[kb];
  const cg_spec *sp = spec_for(w, w->dec[j->kmap[kb]], w->val[j->kmap[kb]]);
  if (j->micro && mq * mk > MICRO_PAIRS) return refine_micro(w, q0, q1, k0, k1);
  const tuples *q = query_tuples(w, qb, sp ? sp->qlive : ~0ull);
  tuples k = key_tuples(w, kb, sp ? sp->klive : ~0ull);
  return cross(w, sp, q, &k);
}
