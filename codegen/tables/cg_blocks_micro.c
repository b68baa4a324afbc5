/*
** Block tables: the micro-pair cache. The memo (cg_blocks_memo.c) evaluates
** each distinct block pair in full, and an irregular mask has thousands of
** them (radial at 128-token blocks: 13,634, half the build). Their
** undecided micro pairs (8 x 8 tokens) repeat far more than the blocks do:
** a radial pair's micro pairs differ by where the two micro-blocks sit
** relative to each other, and the rows of a frame are alike. So a micro
** pair is keyed as the memo keys a block pair (the specialisation, the
** lengths, the live sequences shifted where they are translation pairs;
** the same hashes, at the micro-blocks' size) and its 64 bits are
** evaluated once per worker. Only tables with bits take it: they evaluate
** every distinct partial pair; without bits few pairs are looked up, and
** hashing every micro-block would cost more than it saves.
**
** The key takes the block pair's specialisation: it equals the mask on
** every token pair of the block, so on the micro pair too, and equal keys
** then mean equal bits by the memo's argument. Each worker keeps its own
** cache, so rows on threads share nothing; past MCACHE_MAX entries it stops
** growing and misses are evaluated without being kept.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

#if MICRO != 8
#error "a micro pair's bits are one uint64_t: 8 x 8"
#endif

#define MCACHE_MAX (1 << 17) /* entries a worker, in at most 6 MB of slots; radial keeps under 24,000 */

typedef struct ment {
  uint64_t h0, h1, bits; /* h0 0: an empty slot (keys have bit 0 set) */
} ment;

/* A micro pair the cache missed, evaluated in a batch. */
typedef struct pend {
  uint64_t h0, h1;
  int32_t mq, mk;
} pend;

struct blk_mcache {
  ment *e;
  uint64_t mask;
  int64_t n;
  pend *p;
  int64_t np, capp;
};

void blk_mcache_free(blk_mcache *c) {
  if (!c) return;
  free(c->e);
  free(c->p);
  free(c);
}

static blk_mcache *mcache_new(void) {
  blk_mcache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->mask = 4095;
  c->e = calloc(c->mask + 1, sizeof(ment));
  if (!c->e) {
    free(c);
    return NULL;
  }
  return c;
}

static const ment *lookup(const blk_mcache *c, uint64_t h0, uint64_t h1) {
  for (uint64_t i = (h0 ^ h1 >> 23) & c->mask;; i = (i + 1) & c->mask) {
    const ment *e = &c->e[i];
    if (e->h0 == h0 && e->h1 == h1) return e;
    if (!e->h0) return NULL;
  }
}

/* Keeps a pair's bits; a cache that cannot grow just stops keeping. */
static void insert(blk_mcache *c, uint64_t h0, uint64_t h1, uint64_t bits) {
  if (c->n >= MCACHE_MAX) return;
  if ((uint64_t)(c->n + 1) * 2 > c->mask + 1) {
    uint64_t cap = (c->mask + 1) * 2;
    ment *e = calloc(cap, sizeof(ment));
    if (!e) return;
    for (uint64_t k = 0; k <= c->mask; k++) {
      if (!c->e[k].h0) continue;
      uint64_t i = (c->e[k].h0 ^ c->e[k].h1 >> 23) & (cap - 1);
      while (e[i].h0) i = (i + 1) & (cap - 1);
      e[i] = c->e[k];
    }
    free(c->e);
    c->e = e;
    c->mask = cap - 1;
  }
  uint64_t i = (h0 ^ h1 >> 23) & c->mask;
  while (c->e[i].h0) i = (i + 1) & c->mask;
  c->e[i] = (ment){h0, h1, bits};
  c->n++;
}

static int pend_push(blk_mcache *c, uint64_t h0, uint64_t h1, int64_t mq, int64_t mk) {
  if (c->np == c->capp) {
    int64_t nc = c->capp ? c->capp * 2 : 256;
    pend *p = realloc(c->p, sizeof(pend) * (size_t)nc);
    if (!p) return -1;
    c->p = p;
    c->capp = nc;
  }
  c->p[c->np++] = (pend){h0, h1, (int32_t)mq, (int32_t)mk};
  return 0;
}

/* A micro pair's bits (row a: byte a) into the block's bitmask at row r0,
** column c0 (a multiple of 8, so a row's 8 bits share one word); its
** allowed pairs. */
static int64_t apply(worker *w, uint64_t bits, int64_t r0, int64_t c0, int la, int wpb) {
  if (wpb) {
    int wpr = w->j->bk / 32, sh = (int)(c0 & 31);
    uint32_t *row = w->mbits + r0 * wpr + (c0 >> 5);
    for (int a = 0; a < la; a++) row[(int64_t)a * wpr] |= (uint32_t)(bits >> (8 * a) & 0xff) << sh;
  }
  return __builtin_popcountll(bits);
}

static uint64_t ones(int la, int lb) {
  uint64_t r = 0, row = (1ull << lb) - 1;
  for (int a = 0; a < la; a++) r |= row << (8 * a);
  return r;
}

/* The pending micro pairs through the specialised program, as many a call
** as the worker's lanes hold; each kept and applied. */
static int64_t flush(worker *w, const cg_spec *sp, int64_t q0, int64_t q1, int64_t k0, int64_t k1, int wpb) {
  const job *j = w->j;
  blk_mcache *c = w->mc;
  int64_t L = w->lanes, total = 0;
  for (int64_t p0 = 0; p0 < c->np;) {
    int64_t p1 = p0, n = 0;
    for (; p1 < c->np && n + MICRO * MICRO <= L; p1++) {
      const pend *p = &c->p[p1];
      int64_t a0 = (int64_t)p->mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
      int64_t b0 = (int64_t)p->mk * MICRO, b1 = b0 + MICRO < k1 ? b0 + MICRO : k1;
      int la = (int)(a1 - a0), lb = (int)(b1 - b0);
      for (int v = 0; v < j->nqv; v++) {
        if (!(sp->qlive >> v & 1)) continue;
        const int64_t *x = j->qtok + (int64_t)v * j->S + a0;
        int64_t *d = w->ql + v * L + n;
        for (int a = 0; a < la; a++)
          for (int b = 0; b < lb; b++) d[a * lb + b] = x[a];
      }
      for (int v = 0; v < j->nkv; v++) {
        if (!(sp->klive >> v & 1)) continue;
        const int64_t *x = j->ktok + (int64_t)v * j->S + b0;
        int64_t *d = w->kl + v * L + n;
        for (int a = 0; a < la; a++) memcpy(d + a * lb, x, sizeof(int64_t) * (size_t)lb);
      }
      n += la * lb;
    }
    cg_spec_pairs(j->prog, sp, w->ql, L, w->kl, L, (int)n, w->out, w->s);
    n = 0;
    for (; p0 < p1; p0++) {
      const pend *p = &c->p[p0];
      int64_t a0 = (int64_t)p->mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
      int64_t b0 = (int64_t)p->mk * MICRO, b1 = b0 + MICRO < k1 ? b0 + MICRO : k1;
      int la = (int)(a1 - a0), lb = (int)(b1 - b0);
      uint64_t bits = 0;
      for (int a = 0; a < la; a++)
        for (int b = 0; b < lb; b++) bits |= (uint64_t)(w->out[n + a * lb + b] != 0) << (8 * a + b);
      n += la * lb;
      insert(c, p->h0, p->h1, bits);
      total += apply(w, bits, a0 - q0, b0 - k0, la, wpb);
    }
  }
  c->np = 0;
  return total;
}

/*
** The interval class of every micro pair of the block pair (micro rows
** mq0.., columns m0..) into w->mgrid: by mini pairs first where the job has
** mini-blocks, then the micro pairs of undecided mini pairs, each level in
** one call.
*/
static void classes(worker *w, int64_t mq0, int64_t mq1, int64_t m0, int64_t m1) {
  const job *j = w->j;
  int nm = j->L->nm, nmk = (int)(m1 - m0), n = 0;
  if (!j->nn) {
    for (int64_t mq = mq0; mq < mq1; mq++)
      for (int64_t mk = m0; mk < m1; mk++) {
        w->lq[n] = (int32_t)mq;
        w->lk[n++] = (int32_t)mk;
      }
    cg_ival_pairs_sig(j->prog, j->qmiv, nm, w->lq, j->kmiv, nm, w->lk, n, w->mgrid, NULL, NULL, w->is);
    return;
  }
  int64_t n0 = m0 / MINI, n1 = (m1 + MINI - 1) / MINI, nq0 = mq0 / MINI, nq1 = (mq1 + MINI - 1) / MINI;
  for (int64_t a = nq0; a < nq1; a++)
    for (int64_t b = n0; b < n1; b++) {
      w->lq[n] = (int32_t)a;
      w->lk[n++] = (int32_t)b;
    }
  cg_ival_pairs_sig(j->prog, j->qniv, j->nn, w->lq, j->kniv, j->nn, w->lk, n, w->lcls, NULL, NULL, w->is);
  int nnk = (int)(n1 - n0), u = 0;
  for (int64_t mq = mq0; mq < mq1; mq++)
    for (int64_t mk = m0; mk < m1; mk++) {
      int c = w->lcls[(mq / MINI - nq0) * nnk + (mk / MINI - n0)];
      w->mgrid[(mq - mq0) * nmk + (mk - m0)] = (uint8_t)c;
      if (c != CG_BLK_UNDECIDED) continue;
      w->lq[u] = (int32_t)mq;
      w->lk[u++] = (int32_t)mk;
    }
  if (!u) return;
  /* lq/lk now hold the undecided micro pairs; their classes land in lcls
  ** and go back to the grid. */
  cg_ival_pairs_sig(j->prog, j->qmiv, nm, w->lq, j->kmiv, nm, w->lk, u, w->lcls, NULL, NULL, w->is);
  for (int i = 0; i < u; i++) w->mgrid[(w->lq[i] - mq0) * nmk + (w->lk[i] - m0)] = w->lcls[i];
}

int64_t blk_micro_eval(worker *w, const spec_entry *se, const blk_mhash *mh, int64_t q0, int64_t q1, int64_t k0,
                       int64_t k1, int wpb) {
  const job *j = w->j;
  const cg_spec *sp = se->sp;
  if (!w->mc && !(w->mc = mcache_new())) {
    w->fail = 1;
    return 0;
  }
  blk_mcache *c = w->mc;
  if (wpb) memset(w->mbits, 0, sizeof(uint32_t) * (size_t)wpb);
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO, mq0 = q0 / MICRO, mq1 = (q1 + MICRO - 1) / MICRO;
  int nmk = (int)(m1 - m0), nm = j->L->nm;
  classes(w, mq0, mq1, m0, m1);
  int64_t total = 0;
  uint64_t s0 = blk_mix(blk_mix(se->dec, se->val), 0x6d6963726full), s1 = blk_mix(se->val ^ 0x5bd1e995ull, se->dec);
  for (int64_t mq = mq0; mq < mq1; mq++) {
    int64_t a0 = mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
    int la = (int)(a1 - a0), lk = -1; /* lk: the key length hl and dg are for; -1: no key yet */
    const uint8_t *mcls = w->mgrid + (mq - mq0) * nmk;
    uint64_t hq[2] = {0, 0}, d[2] = {0, 0}, hl[2] = {0, 0}, dg[2] = {0, 0};
    for (int64_t mk = m0; mk < m1; mk++) {
      int cl = mcls[mk - m0];
      if (cl == CG_BLK_EMPTY) continue;
      int64_t b0 = mk * MICRO, b1 = b0 + MICRO < k1 ? b0 + MICRO : k1;
      int lb = (int)(b1 - b0);
      if (cl == CG_BLK_FULL) {
        total += apply(w, ones(la, lb), a0 - q0, b0 - k0, la, wpb);
        continue;
      }
      if (lk < 0) {
        /* The query micro-block's part of the key, and the key side's
        ** shift, once per query micro-block (cg_blocks_memo.c's pair_key). */
        hq[0] = blk_mix(s0, (uint64_t)la);
        hq[1] = blk_mix(s1, (uint64_t)la);
        for (int v = 0; v < j->nqv; v++) {
          if (!(sp->qlive >> v & 1)) continue;
          uint64_t sh = se->sh.q[v] >= 0 ? blk_res(j->qtok[(int64_t)v * j->S + a0]) : 0;
          const uint64_t *x = mh->qh + ((int64_t)v * nm + mq) * 2;
          hq[0] = blk_mix(hq[0], blk_subp(x[0], blk_mulp(sh, mh->g[2 * la])) ^ (uint64_t)v << 61);
          hq[1] = blk_mix(hq[1], blk_subp(x[1], blk_mulp(sh, mh->g[2 * la + 1])));
        }
        for (int v = 0; v < j->nkv; v++) {
          int pq = se->sh.k[v];
          if (!(sp->klive >> v & 1) || pq < 0) continue;
          uint64_t sh = blk_res(j->qtok[(int64_t)pq * j->S + a0]);
          for (int r = 0; r < 2; r++) d[r] = blk_addp(d[r], blk_mulp(sh, mh->kw[2 * v + r]));
        }
      }
      if (lk != lb) {
        lk = lb;
        hl[0] = blk_mix(hq[0], (uint64_t)lb);
        hl[1] = blk_mix(hq[1], (uint64_t)lb << 32);
        dg[0] = blk_mulp(d[0], mh->g[2 * lb]);
        dg[1] = blk_mulp(d[1], mh->g[2 * lb + 1]);
      }
      uint64_t x0 = 0, x1 = 0;
      for (uint64_t live = sp->klive; live; live &= live - 1) {
        int v = __builtin_ctzll(live);
        if (v >= j->nkv) break;
        const uint64_t *x = mh->kh + (mk * j->nkv + v) * 2;
        x0 = blk_addp(x0, x[0]);
        x1 = blk_addp(x1, x[1]);
      }
      uint64_t h0 = blk_mix(hl[0], blk_subp(x0, dg[0])) | 1, h1 = blk_mix(hl[1], blk_subp(x1, dg[1]));
      const ment *e = lookup(c, h0, h1);
      if (e) total += apply(w, e->bits, a0 - q0, b0 - k0, la, wpb);
      else if (pend_push(c, h0, h1, mq, mk)) {
        w->fail = 1;
        return 0;
      }
    }
  }
  return total + flush(w, sp, q0, q1, k0, k1, wpb);
}
