/*
** Block tables: rows reused under translation. A radial mask on an
** identity layout classifies query block qb against key block kb exactly
** as qb - d against kb - d wherever both pairs are the same picture moved:
** blocks of 64 tokens in rows of 80 repeat their shape every 5 blocks
** within a frame, so most rows are the row 5 before, moved by 4 token rows.
** Such a row copies the rows' results for the key blocks that moved with
** it and classifies only the rest (cg_blocks_rows.c).
**
** When a pair is the same picture: where the QK phase reads query
** interface i only through q_i - k_j or a comparison of the two (its
** translation pairs, blk_shift_of over the whole phase), adding one
** constant to both changes no interval and no value. So (qb, kb) and
** (qb - d, kb - d) agree in their interval class, signature and every
** token pair when each paired interface of both blocks is its counterpart
** plus the same constant, the constant of its pair, and every other
** interface is equal: token sequences compared by the memo's hashes
** (cg_blocks_memo.c, relative to the block's first token), the
** intervals, on which the classes depend, exactly. Values stay within
** +-2^58 (the memo's bound), so no shifted value wraps.
**
** A block's signature hashes what must agree (length, relative sequences
** and intervals) so that candidates are found by one comparison; the
** exact checks then settle them. A worker keeps the last RING rows it
** built and the key masks of the last NEEDS (distance, shift) pairs;
** only bits tables reuse rows, since their memo never turns itself off
** (a copied pair is one lookup fewer, which would move that judgement).
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

#define RING 8
#define NEEDS 4
#define VMAX (1ll << 58)

struct blk_reuse {
  blk_shift sh;          /* translation pairs of the whole QK phase */
  uint64_t *qsig, *ksig; /* per block, [nb][2]; both words 0: never reused */
  int64_t *qa, *ka;      /* per block and interface, [nb][nv]: the first token's value where
                         ** the interface is paired (it moves), 0 where it must be equal */
};

typedef struct kneed {
  int d;
  int64_t *delta; /* [nqv] */
  uint8_t *need, *gneed;
  int32_t *runs;
  int nruns, nreuse;
  uint64_t tick;
} kneed;

struct blk_rw {
  blk_rrow ring[RING];
  int64_t seq;
  kneed kn[NEEDS];
  uint64_t tick;
  int64_t *delta;
  blk_ref ref;
};

static const cg_ival *side_iv(const job *j, int key_side, int v, int b) {
  return key_side ? &j->kiv[(int64_t)v * j->nkr + j->kmap[b]] : &j->qiv[(int64_t)v * j->nq + b];
}

/* Block b's anchors and signature. */
static void block_sig(const job *j, const blk_reuse *ru, int key_side, int b) {
  int nv = key_side ? j->nkv : j->nqv, bs = key_side ? j->bk : j->bq;
  const int8_t *pair = key_side ? ru->sh.k : ru->sh.q;
  const int64_t *tok = key_side ? j->ktok : j->qtok;
  int64_t p0 = (int64_t)b * bs, len = p0 + bs < j->S ? bs : j->S - p0;
  int64_t *a = (key_side ? ru->ka : ru->qa) + (int64_t)b * nv;
  uint64_t s0 = blk_mix(0x51ed270b27f4a3c1ull, (uint64_t)len), s1 = blk_mix(0x2545f4914f6cdd1dull, (uint64_t)len);
  int ok = 1;
  for (int v = 0; v < nv; v++) {
    a[v] = pair[v] >= 0 ? tok[(int64_t)v * j->S + p0] : 0;
    const cg_ival *iv = side_iv(j, key_side, v, b);
    ok &= iv->lo >= -VMAX && iv->hi <= VMAX;
    uint64_t h[2];
    blk_memo_seq(j->memo, key_side, v, b, a[v], h);
    s0 = blk_mix(blk_mix(blk_mix(s0, h[0]), (uint64_t)(iv->lo - a[v])), (uint64_t)(iv->hi - a[v]));
    s1 = blk_mix(blk_mix(s1, h[1]), (uint64_t)v);
  }
  uint64_t *sig = (key_side ? ru->ksig : ru->qsig) + 2 * (int64_t)b;
  sig[0] = ok ? s0 | 1 : 0;
  sig[1] = ok ? s1 : 0;
}

void blk_reuse_free(blk_reuse *ru) {
  if (!ru) return;
  free(ru->qsig);
  free(ru->ksig);
  free(ru->qa);
  free(ru->ka);
  free(ru);
}

int blk_reuse_new(job *j) {
  j->ru = NULL;
  if (!j->bits || !blk_memo_bits(j->memo) || !blk_memo_on(j->memo) || j->stride != 1 || j->nqv > 64 || j->nkv > 64)
    return 0;
  blk_reuse *ru = calloc(1, sizeof *ru);
  if (!ru) return -1;
  j->ru = ru;
  blk_shift_of(&(cg_spec){.ph = j->prog->qk, .root = j->prog->root}, &ru->sh);
  ru->qsig = malloc(sizeof(uint64_t) * 2 * (size_t)j->nq);
  ru->ksig = malloc(sizeof(uint64_t) * 2 * (size_t)j->nk);
  ru->qa = malloc(sizeof(int64_t) * (size_t)j->nq * (size_t)(j->nqv ? j->nqv : 1));
  ru->ka = malloc(sizeof(int64_t) * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  if (!ru->qsig || !ru->ksig || !ru->qa || !ru->ka) return -1;
  for (int b = 0; b < j->nq; b++) block_sig(j, ru, 0, b);
  for (int b = 0; b < j->nk; b++) block_sig(j, ru, 1, b);
  return 0;
}

/* Blocks b and c of one side agree up to the shift: interface v of b is
** that of c plus delta[v] (delta NULL: the key side, each interface moving
** with its pair's query interface, qd). */
static int same_moved(const job *j, int key_side, int b, int c, const int64_t *qd) {
  const blk_reuse *ru = j->ru;
  const uint64_t *sig = key_side ? ru->ksig : ru->qsig;
  if (!sig[2 * b] || sig[2 * b] != sig[2 * c] || sig[2 * b + 1] != sig[2 * c + 1]) return 0;
  int nv = key_side ? j->nkv : j->nqv;
  const int64_t *a = key_side ? ru->ka : ru->qa;
  for (int v = 0; v < nv; v++) {
    int64_t ab = a[(int64_t)b * nv + v], ac = a[(int64_t)c * nv + v];
    if (key_side) {
      int pq = ru->sh.k[v];
      if (ab - ac != (pq >= 0 ? qd[pq] : 0)) return 0;
    }
    const cg_ival *x = side_iv(j, key_side, v, b), *y = side_iv(j, key_side, v, c);
    if (x->lo - ab != y->lo - ac || x->hi - ab != y->hi - ac) return 0;
  }
  return 1;
}

/* The key mask for distance d and query shift delta: key blocks that do
** not move with the row, as runs [a, b), per block and per group. */
static kneed *need_for(worker *w, blk_rw *rw, int d, const int64_t *delta) {
  const job *j = w->j;
  size_t dsz = sizeof(int64_t) * (size_t)j->nqv;
  kneed *k = NULL;
  for (int i = 0; i < NEEDS; i++)
    if (rw->kn[i].need && rw->kn[i].d == d && !memcmp(rw->kn[i].delta, delta, dsz)) {
      rw->kn[i].tick = ++rw->tick;
      return &rw->kn[i];
    }
  for (int i = 0; i < NEEDS; i++)
    if (!k || rw->kn[i].tick < k->tick) k = &rw->kn[i];
  if (!k->need) {
    k->delta = malloc(dsz ? dsz : 1);
    k->need = malloc((size_t)j->nk);
    k->gneed = malloc((size_t)j->ngk);
    k->runs = malloc(sizeof(int32_t) * 2 * (size_t)(j->nk + 1));
    if (!k->delta || !k->need || !k->gneed || !k->runs) {
      free(k->delta), free(k->need), free(k->gneed), free(k->runs);
      *k = (kneed){0};
      return NULL;
    }
  }
  k->d = d;
  memcpy(k->delta, delta, dsz);
  k->tick = ++rw->tick;
  k->nruns = k->nreuse = 0;
  memset(k->gneed, 0, (size_t)j->ngk);
  for (int kb = 0; kb < j->nk; kb++) {
    int moved = kb >= d && same_moved(j, 1, kb, kb - d, delta);
    k->need[kb] = (uint8_t)!moved;
    k->nreuse += moved;
    if (moved) continue;
    k->gneed[kb / GROUP] = 1;
    if (k->nruns && k->runs[2 * k->nruns - 1] == kb) k->runs[2 * k->nruns - 1]++;
    else {
      k->runs[2 * k->nruns] = kb;
      k->runs[2 * k->nruns + 1] = kb + 1;
      k->nruns++;
    }
  }
  return k;
}

static blk_rw *rw_of(worker *w) {
  if (!w->rw && (w->rw = calloc(1, sizeof *w->rw))) {
    w->rw->delta = malloc(sizeof(int64_t) * (size_t)(w->j->nqv ? w->j->nqv : 1));
    for (int i = 0; i < RING; i++) w->rw->ring[i].qb = -1;
    if (!w->rw->delta) {
      free(w->rw);
      w->rw = NULL;
    }
  }
  if (!w->rw) w->fail = 1;
  return w->rw;
}

const blk_ref *blk_reuse_ref(worker *w, int qb) {
  const job *j = w->j;
  blk_rw *rw = rw_of(w);
  if (!rw) return NULL;
  const blk_rrow *best = NULL, *cur = &rw->ring[rw->seq % RING];
  for (int i = 0; i < RING; i++) {
    const blk_rrow *r = &rw->ring[i];
    if (r == cur || r->qb < 0 || r->qb >= qb || (best && r->qb < best->qb)) continue;
    if (same_moved(j, 0, qb, r->qb, NULL)) best = r;
  }
  if (!best) return NULL;
  const int64_t *qa = j->ru->qa;
  for (int v = 0; v < j->nqv; v++) rw->delta[v] = qa[(int64_t)qb * j->nqv + v] - qa[(int64_t)best->qb * j->nqv + v];
  const kneed *k = need_for(w, rw, qb - best->qb, rw->delta);
  /* A row that keeps few of its reference's key blocks is cheaper built
  ** whole. */
  if (!k || k->nreuse * 2 < j->nk) return NULL;
  rw->ref = (blk_ref){.d = qb - best->qb, .row = best, .need = k->need, .gneed = k->gneed, .runs = k->runs,
                      .nruns = k->nruns};
  return &rw->ref;
}

blk_rrow *blk_reuse_begin(worker *w) {
  blk_rw *rw = rw_of(w);
  if (!rw) return NULL;
  blk_rrow *r = &rw->ring[rw->seq % RING];
  r->qb = -1;
  r->n = 0;
  return r;
}

void blk_reuse_end(worker *w, blk_rrow *r, int qb) {
  r->qb = w->fail ? -1 : qb;
  w->rw->seq++;
}

int blk_rrow_grow(blk_rrow *r) {
  int64_t nc = r->cap ? r->cap * 2 : 1024;
  blk_rent *e = realloc(r->e, sizeof(blk_rent) * (size_t)nc);
  if (!e) return -1;
  r->e = e;
  r->cap = nc;
  return 0;
}

void blk_rw_free(blk_rw *rw) {
  if (!rw) return;
  for (int i = 0; i < RING; i++) free(rw->ring[i].e);
  for (int i = 0; i < NEEDS; i++) {
    free(rw->kn[i].delta);
    free(rw->kn[i].need);
    free(rw->kn[i].gneed);
    free(rw->kn[i].runs);
  }
  free(rw->delta);
  free(rw);
}
