/*
** Block tables: the layouts. A table's blocks are ranges of positions in
** its head class's layout, so each distinct layout is enumerated once per
** build and shared by every table that uses it. The interval test needs a
** coordinate box per query block, key block and micro-block; blocks whose
** size is a multiple of MICRO take the hull of their micro-blocks' boxes
** instead of scanning their tokens a second time.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"
#include "cg_clones.h"

/* One coordinate of a block at a time, eight lanes of 32 bits: a box per
** block of every candidate of sieve.layout.auto is made, and lanes make
** it several times cheaper than a token at a time. */
typedef int32_t v8 __attribute__((vector_size(32), aligned(4), may_alias));

CG_CLONES
static void span(const int32_t *v, int64_t p0, int64_t p1, cg_ival *out) {
  int32_t lo = v[p0], hi = v[p0];
  int64_t p = p0;
  if (p1 - p0 >= 8) {
    v8 l = *(const v8 *)(v + p0), h = l;
    for (p = p0 + 8; p + 8 <= p1; p += 8) {
      v8 x = *(const v8 *)(v + p), a = x < l, b = x > h;
      l = (a & x) | (~a & l);
      h = (b & x) | (~b & h);
    }
    for (int i = 0; i < 8; i++) {
      lo = l[i] < lo ? l[i] : lo;
      hi = h[i] > hi ? h[i] : hi;
    }
  }
  for (; p < p1; p++) {
    lo = v[p] < lo ? v[p] : lo;
    hi = v[p] > hi ? v[p] : hi;
  }
  *out = (cg_ival){lo, hi};
}

void blk_box_blocks(const cg_coords *c, int64_t bsz, int nb, cg_box *out) {
  const int32_t *v[CG_IN_POS] = {c->t, c->y, c->x, c->text, c->idx};
  for (int b = 0; b < nb; b++) {
    int64_t p0 = b * bsz, p1 = p0 + bsz < c->n ? p0 + bsz : c->n;
    for (int i = 0; i < CG_IN_POS; i++) span(v[i], p0, p1, &out[b].v[i]);
    out[b].v[CG_IN_POS] = (cg_ival){p0, p1 - 1};
  }
}

void blk_box_hull(const cg_box *m, int nm, int per, int nb, cg_box *out) {
  for (int b = 0; b < nb; b++) {
    int m0 = b * per, m1 = m0 + per < nm ? m0 + per : nm;
    out[b] = m[m0];
    for (int i = m0 + 1; i < m1; i++)
      for (int v = 0; v < CG_NIN; v++) {
        if (m[i].v[v].lo < out[b].v[v].lo) out[b].v[v].lo = m[i].v[v].lo;
        if (m[i].v[v].hi > out[b].v[v].hi) out[b].v[v].hi = m[i].v[v].hi;
      }
  }
}

static void boxes(const lay *L, int64_t bsz, int nb, cg_box *out) {
  if (bsz % MICRO == 0) blk_box_hull(L->mbox, L->nm, (int)(bsz / MICRO), nb, out);
  else blk_box_blocks(&L->c, bsz, nb, out);
}

int blk_same_layout(const cg_layout *a, const cg_layout *b) {
  if (a->kind != b->kind) return 0;
  return a->kind != CG_LAYOUT_TILE || !memcmp(a->tile, b->tile, sizeof a->tile);
}

void blk_lay_free(lay *L) {
  cg_coords_free(&L->c);
  free(L->qbox);
  free(L->kbox);
  free(L->mbox);
}

int blk_lay_init(lay *L, const cg_layout *l, const sieve_shape *s, const cg_tableset *t) {
  memset(L, 0, sizeof *L);
  L->l = *l;
  if (cg_layout_enum(l, s, &L->c)) return -1;
  L->nm = (int)((t->seq + MICRO - 1) / MICRO);
  L->qbox = malloc(sizeof(cg_box) * (size_t)t->nq);
  L->kbox = malloc(sizeof(cg_box) * (size_t)t->nk);
  L->mbox = malloc(sizeof(cg_box) * (size_t)L->nm);
  if (!L->qbox || !L->kbox || !L->mbox) return -1;
  blk_box_blocks(&L->c, MICRO, L->nm, L->mbox);
  boxes(L, t->block_q, t->nq, L->qbox);
  boxes(L, t->block_k, t->nk, L->kbox);
  return 0;
}
