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
** evaluated once per table. Only tables with bits take it: they evaluate
** every distinct partial pair; without bits few pairs are looked up, and
** hashing every micro-block would cost more than it saves.
**
** Where blocks are whole mini-blocks (32 tokens), mini pairs come first,
** keyed the same way at their size and kept with their 32 rows of bits: a
** block pair is then a few lookups, and only the mini pairs not met yet go
** through their micro pairs (radial at 128-token blocks: 215,660 mini pairs
** in the distinct block pairs, 63,436 of them met before, 20,594 new, the
** rest decided by intervals).
**
** The key takes the block pair's specialisation: it equals the mask on
** every token pair of the block, so on the mini and micro pairs too, and
** equal keys then mean equal bits by the memo's argument. Where a
** table's rows run on several workers, they share the caches
** (cg_blocks_cset.c), whose sizes are fixed; one worker keeps its own,
** which grow from small and stay near (on one worker, the shared sets made
** radial's tables 5-15% slower). Past MCACHE_MAX (NCACHE_MAX) entries the
** caches stop growing and misses are evaluated without being kept.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

#if MICRO != 8
#error "a micro pair's bits are one uint64_t: 8 x 8"
#endif

#define MCACHE_MAX (1 << 17) /* entries a cache, in at most 6 MB of slots; radial keeps under 24,000 */
#define NCACHE_MAX (1 << 15) /* mini pairs a cache keeps, in at most 5 MB */

typedef struct ment {
  uint64_t h0, h1, bits; /* h0 0: an empty slot (keys have bit 0 set) */
} ment;

/* A micro pair the cache missed, evaluated in a batch. */
typedef struct pend {
  uint64_t h0, h1;
  int32_t mq, mk;
} pend;

/* A mini pair's bits, a word per row (columns beyond its length 0), and
** their count. */
typedef struct nent {
  uint64_t h0, h1;
  int64_t count;
  uint32_t w[MICRO * MINI];
} nent;

/* A mini pair the cache missed: its key, and where it is in the block pair. */
typedef struct npend {
  uint64_t h0, h1;
  int64_t a, b;
} npend;

/* A kept mini pair's slot: its number, and the top of its key's first
** word, so that a probe reads an entry only where the tag matches (each
** entry read is a miss in the cache). */
typedef struct nslot {
  uint32_t tag;
  int32_t at; /* -1: empty */
} nslot;

/* Mini pairs are kept in chunks of NCHUNK, which never move: doubling one
** array copied and faulted megabytes as it grew. */
#define NCHUNK 1024

struct blk_mcache {
  ment *e;
  uint64_t mask;
  int64_t n;
  pend *p;
  int64_t np, capp;
  nent *ne[NCACHE_MAX / NCHUNK]; /* mini pairs kept, nn of them, found through ns */
  nslot *ns;
  uint64_t nmask;
  int64_t nn;
  npend *pn;
  int64_t npn, cappn;
};

void blk_mcache_free(blk_mcache *c) {
  if (!c) return;
  free(c->e);
  free(c->p);
  for (int64_t i = 0; i < c->nn; i += NCHUNK) free(c->ne[i / NCHUNK]);
  free(c->ns);
  free(c->pn);
  free(c);
}

static nent *nentry(const blk_mcache *c, int64_t i) { return &c->ne[i / NCHUNK][i % NCHUNK]; }

static uint64_t nhome(uint64_t h0, uint64_t h1) { return h0 ^ h1 >> 23; }

static const nent *nlookup(const blk_mcache *c, uint64_t h0, uint64_t h1) {
  if (!c->ns) return NULL;
  uint32_t tag = (uint32_t)(h0 >> 32);
  for (uint64_t i = nhome(h0, h1) & c->nmask; c->ns[i].at >= 0; i = (i + 1) & c->nmask) {
    if (c->ns[i].tag != tag) continue;
    const nent *e = nentry(c, c->ns[i].at);
    if (e->h0 == h0 && e->h1 == h1) return e;
  }
  return NULL;
}

static void nplace(nslot *s, uint64_t mask, const nent *x, int32_t at) {
  uint64_t i = nhome(x->h0, x->h1) & mask;
  while (s[i].at >= 0) i = (i + 1) & mask;
  s[i] = (nslot){(uint32_t)(x->h0 >> 32), at};
}

/* Keeps a mini pair; a cache that cannot grow just stops keeping. */
static void ninsert(blk_mcache *c, const nent *x) {
  if (c->nn >= NCACHE_MAX) return;
  if (!c->ns || (uint64_t)(c->nn + 1) * 2 > c->nmask + 1) {
    uint64_t cap = c->ns ? (c->nmask + 1) * 2 : 1024;
    nslot *s = malloc(sizeof(nslot) * cap);
    if (!s) return;
    memset(s, 0xff, sizeof(nslot) * cap);
    for (int64_t k = 0; k < c->nn; k++) nplace(s, cap - 1, nentry(c, k), (int32_t)k);
    free(c->ns);
    c->ns = s;
    c->nmask = cap - 1;
  }
  if (c->nn % NCHUNK == 0 && !(c->ne[c->nn / NCHUNK] = malloc(sizeof(nent) * NCHUNK))) return;
  *nentry(c, c->nn) = *x;
  nplace(c->ns, c->nmask, x, (int32_t)c->nn++);
}

/* Room in *v (of *cap elements of size sz) for element n: doubled when
** full, first elements at first. */
static int room(void **v, int64_t *cap, int64_t n, size_t sz, int64_t first) {
  if (n < *cap) return 0;
  int64_t nc = *cap ? *cap * 2 : first;
  void *p = realloc(*v, sz * (size_t)nc);
  if (!p) return -1;
  *v = p;
  *cap = nc;
  return 0;
}

/* The job's shared set at *at, made by the first worker to ask; NULL out
** of memory. */
static blk_cset *shared(blk_cset *_Atomic *at, int64_t max, size_t esz) {
  blk_cset *s = atomic_load_explicit(at, memory_order_acquire);
  if (s) return s;
  blk_cset *n = blk_cset_new(max, esz);
  if (!n) return NULL;
  if (atomic_compare_exchange_strong_explicit(at, &s, n, memory_order_acq_rel, memory_order_acquire)) return n;
  blk_cset_free(n);
  return s;
}

static int npend_push(blk_mcache *c, uint64_t h0, uint64_t h1, int64_t a, int64_t b) {
  if (room((void **)&c->pn, &c->cappn, c->npn, sizeof(npend), 64)) return -1;
  c->pn[c->npn++] = (npend){h0, h1, a, b};
  return 0;
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
  if (room((void **)&c->p, &c->capp, c->np, sizeof(pend), 256)) return -1;
  c->p[c->np++] = (pend){h0, h1, (int32_t)mq, (int32_t)mk};
  return 0;
}

/* Set bits, inline: a plain x86-64 build has no popcnt instruction, and
** __builtin_popcountll there is a call into libgcc per micro or mini pair. */
static inline int64_t pop64(uint64_t x) {
  x -= x >> 1 & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + (x >> 2 & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (int64_t)((x * 0x0101010101010101ull) >> 56);
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
  return pop64(bits);
}

static uint64_t ones(int la, int lb) {
  uint64_t r = 0, row = (1ull << lb) - 1;
  for (int a = 0; a < la; a++) r |= row << (8 * a);
  return r;
}

/* A micro row's eight values, stored a vector at a time: the compiler
** left the plain loops a store per value, 7% of radial's build at
** 128-token blocks with the temporal sink. */
typedef int64_t mrow __attribute__((vector_size(MICRO * 8), aligned(8), may_alias));

/* A micro pair's token pairs into lanes n.. of the worker's, L lanes an
** interface (row a: lanes a * lb..). */
static void stage(worker *w, const cg_spec *sp, int64_t L, int64_t a0, int64_t b0, int64_t n, int la, int lb) {
  const job *j = w->j;
  int whole = la == MICRO && lb == MICRO;
  for (int v = 0; v < j->nqv; v++) {
    if (!(sp->qlive >> v & 1)) continue;
    const int64_t *x = j->qtok + (int64_t)v * j->S + a0;
    int64_t *d = w->ql + v * L + n;
    for (int a = 0; a < la; a++)
      if (whole) *(mrow *)(d + a * MICRO) = (mrow){0} + x[a];
      else
        for (int b = 0; b < lb; b++) d[a * lb + b] = x[a];
  }
  for (int v = 0; v < j->nkv; v++) {
    if (!(sp->klive >> v & 1)) continue;
    const int64_t *x = j->ktok + (int64_t)v * j->S + b0;
    int64_t *d = w->kl + v * L + n;
    for (int a = 0; a < la; a++)
      if (whole) *(mrow *)(d + a * MICRO) = *(const mrow *)x;
      else memcpy(d + a * lb, x, sizeof(int64_t) * (size_t)lb);
  }
}

/* The pending micro pairs through the specialised program, as many a call
** as the worker's lanes hold; each kept and applied. */
static int64_t flush(worker *w, const cg_spec *sp, int64_t q0, int64_t q1, int64_t k0, int64_t k1, int wpb) {
  const job *j = w->j;
  blk_mcache *c = w->mc;
  blk_cset *set = atomic_load_explicit(&j->mset, memory_order_relaxed);
  int64_t L = w->lanes, total = 0;
  for (int64_t p0 = 0; p0 < c->np;) {
    int64_t p1 = p0, n = 0;
    for (; p1 < c->np && n + MICRO * MICRO <= L; p1++) {
      const pend *p = &c->p[p1];
      int64_t a0 = (int64_t)p->mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
      int64_t b0 = (int64_t)p->mk * MICRO, b1 = b0 + MICRO < k1 ? b0 + MICRO : k1;
      int la = (int)(a1 - a0), lb = (int)(b1 - b0);
      stage(w, sp, L, a0, b0, n, la, lb);
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
      if (set) blk_cset_add(set, &(ment){p->h0, p->h1, bits});
      else insert(c, p->h0, p->h1, bits);
      total += apply(w, bits, a0 - q0, b0 - k0, la, wpb);
    }
  }
  c->np = 0;
  return total;
}

/* The interval class of every micro pair of the block pair (micro rows
** mq0.., columns m0..) into w->mgrid, in one call (blocks that are not
** whole mini-blocks; minis() classifies the others). Sub-pairs are
** classified through the block pair's specialisation: it holds on them,
** and is shorter than the whole program. */
static void classes(worker *w, const cg_spec *sp, int64_t mq0, int64_t mq1, int64_t m0, int64_t m1) {
  const job *j = w->j;
  int n = 0;
  for (int64_t mq = mq0; mq < mq1; mq++)
    for (int64_t mk = m0; mk < m1; mk++) {
      w->lq[n] = (int32_t)mq;
      w->lk[n++] = (int32_t)mk;
    }
  cg_ival_spec_pairs(j->prog, sp, j->qmiv, j->L->nm, w->lq, j->kmiv, j->L->nm, w->lk, n, w->mgrid, w->is);
}

/*
** A sub-block pair's key, micro or mini, as cg_blocks_memo.c's pair_key
** makes a block pair's: the query sub-block's part and the key side's
** shift once per query sub-block (skey_query), the key length's part once
** per length, then the key sub-block's live interfaces' weighted hashes,
** summed (skey_at).
*/
typedef struct skey {
  uint64_t hq[2], d[2], hl[2], dg[2];
  int lb; /* the key length hl and dg are for; -1: none yet */
} skey;

/* Query sub-block b of its level (hashes qh: [nqv][nb][2]): la tokens from a0. */
static void skey_query(const job *j, const spec_entry *se, const blk_mhash *mh, const uint64_t *qh, int64_t nb,
                       int64_t b, int64_t a0, int la, const uint64_t s[2], skey *k) {
  const cg_spec *sp = se->sp;
  k->hq[0] = blk_mix(s[0], (uint64_t)la);
  k->hq[1] = blk_mix(s[1], (uint64_t)la);
  k->d[0] = k->d[1] = 0;
  k->lb = -1;
  for (int v = 0; v < j->nqv; v++) {
    if (!(sp->qlive >> v & 1)) continue;
    uint64_t sh = se->sh.q[v] >= 0 ? blk_res(j->qtok[(int64_t)v * j->S + a0]) : 0;
    const uint64_t *x = qh + ((int64_t)v * nb + b) * 2;
    k->hq[0] = blk_mix(k->hq[0], blk_subp(x[0], blk_mulp(sh, mh->g[2 * la])) ^ (uint64_t)v << 61);
    k->hq[1] = blk_mix(k->hq[1], blk_subp(x[1], blk_mulp(sh, mh->g[2 * la + 1])));
  }
  for (int v = 0; v < j->nkv; v++) {
    int pq = se->sh.k[v];
    if (!(sp->klive >> v & 1) || pq < 0) continue;
    uint64_t sh = blk_res(j->qtok[(int64_t)pq * j->S + a0]);
    for (int r = 0; r < 2; r++) k->d[r] = blk_addp(k->d[r], blk_mulp(sh, mh->kw[2 * v + r]));
  }
}

/* Key sub-block b of lb tokens (hashes kh: [nb][nkv][2], weighted): the
** pair's key (bit 0 of h[0] set: empty slots are 0). */
static void skey_at(const job *j, const cg_spec *sp, const blk_mhash *mh, const uint64_t *kh, int64_t b, int lb,
                    skey *k, uint64_t h[2]) {
  if (k->lb != lb) {
    k->lb = lb;
    k->hl[0] = blk_mix(k->hq[0], (uint64_t)lb);
    k->hl[1] = blk_mix(k->hq[1], (uint64_t)lb << 32);
    k->dg[0] = blk_mulp(k->d[0], mh->g[2 * lb]);
    k->dg[1] = blk_mulp(k->d[1], mh->g[2 * lb + 1]);
  }
  uint64_t x0 = 0, x1 = 0;
  for (uint64_t live = sp->klive; live; live &= live - 1) {
    int v = __builtin_ctzll(live);
    if (v >= j->nkv) break;
    const uint64_t *x = kh + (b * j->nkv + v) * 2;
    x0 = blk_addp(x0, x[0]);
    x1 = blk_addp(x1, x[1]);
  }
  h[0] = blk_mix(k->hl[0], blk_subp(x0, k->dg[0])) | 1;
  h[1] = blk_mix(k->hl[1], blk_subp(x1, k->dg[1]));
}

/* The micro pairs of the block pair that w->mgrid leaves undecided, by the
** cache or evaluated; those it calls full, at once. Their allowed pairs. */
static int64_t micro_pass(worker *w, const spec_entry *se, const blk_mhash *mh, int64_t q0, int64_t q1, int64_t k0,
                          int64_t k1, int wpb) {
  const job *j = w->j;
  blk_mcache *c = w->mc;
  const blk_cset *set = atomic_load_explicit(&j->mset, memory_order_relaxed);
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO, mq0 = q0 / MICRO, mq1 = (q1 + MICRO - 1) / MICRO;
  int nmk = (int)(m1 - m0), nm = j->L->nm;
  int64_t total = 0;
  const uint64_t s[2] = {blk_mix(blk_mix(se->dec, se->val), 0x6d6963726full), blk_mix(se->val ^ 0x5bd1e995ull, se->dec)};
  for (int64_t mq = mq0; mq < mq1; mq++) {
    int64_t a0 = mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
    int la = (int)(a1 - a0), have = 0;
    const uint8_t *mcls = w->mgrid + (mq - mq0) * nmk;
    skey k;
    for (int64_t mk = m0; mk < m1; mk++) {
      int cl = mcls[mk - m0];
      if (cl == CG_BLK_EMPTY) continue;
      int64_t b0 = mk * MICRO, b1 = b0 + MICRO < k1 ? b0 + MICRO : k1;
      int lb = (int)(b1 - b0);
      if (cl == CG_BLK_FULL) {
        total += apply(w, ones(la, lb), a0 - q0, b0 - k0, la, wpb);
        continue;
      }
      if (!have) skey_query(j, se, mh, mh->qh, nm, mq, a0, la, s, &k);
      have = 1;
      uint64_t h[2];
      skey_at(j, se->sp, mh, mh->kh, mk, lb, &k, h);
      const ment *e = set ? blk_cset_find(set, h[0], h[1]) : lookup(c, h[0], h[1]);
      if (e) total += apply(w, e->bits, a0 - q0, b0 - k0, la, wpb);
      else if (pend_push(c, h[0], h[1], mq, mk)) {
        w->fail = 1;
        return 0;
      }
    }
  }
  return total + flush(w, se->sp, q0, q1, k0, k1, wpb);
}

/*
** A block pair of whole mini-blocks (32 x 32 tokens), a mini pair at a
** time: the intervals decide some; the others are keyed like micro pairs,
** at the mini-blocks' size, and a mini pair met before gives its 32 rows
** of bits at once. A radial mask's ~10,000 distinct block pairs hold ~40,000
** mini pairs, a few thousand of them distinct. Those not met go through
** the micro pairs (micro_pass), and their bits, read back from the
** block's, are kept.
*/
static int64_t minis(worker *w, const spec_entry *se, const blk_mhash *mh, int64_t q0, int64_t q1, int64_t k0,
                     int64_t k1, int wpb) {
  const job *j = w->j;
  blk_mcache *c = w->mc;
  blk_cset *set = atomic_load_explicit(&j->nset, memory_order_relaxed);
  const int M = MICRO * MINI;
  int64_t n0 = k0 / M, n1 = (k1 + M - 1) / M, nq0 = q0 / M, nq1 = (q1 + M - 1) / M;
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO, mq0 = q0 / MICRO, mq1 = (q1 + MICRO - 1) / MICRO;
  int nnk = (int)(n1 - n0), nmk = (int)(m1 - m0), wpr = j->bk / 32, n = 0, u = 0, nmiss = 0;
  for (int64_t a = nq0; a < nq1; a++)
    for (int64_t b = n0; b < n1; b++) {
      w->lq[n] = (int32_t)a;
      w->lk[n++] = (int32_t)b;
    }
  cg_ival_spec_pairs(j->prog, se->sp, j->qniv, j->nn, w->lq, j->kniv, j->nn, w->lk, n, w->lcls, w->is);
  memset(w->mgrid, CG_BLK_EMPTY, (size_t)((mq1 - mq0) * nmk));
  const uint64_t s[2] = {blk_mix(blk_mix(se->dec, se->val), 0x6d696e69ull), blk_mix(se->val ^ 0x3c6ef372ull, se->dec)};
  int64_t total = 0;
  for (int64_t a = nq0; a < nq1; a++) {
    int64_t a0 = a * M, a1 = a0 + M < q1 ? a0 + M : q1;
    int la = (int)(a1 - a0), have = 0;
    skey k;
    for (int64_t b = n0; b < n1; b++) {
      int cl = w->lcls[(a - nq0) * nnk + (b - n0)];
      if (cl == CG_BLK_EMPTY) continue;
      int64_t b0 = b * M, b1 = b0 + M < k1 ? b0 + M : k1;
      int lb = (int)(b1 - b0);
      uint32_t *row = w->mbits + (a0 - q0) * wpr + (b0 - k0) / 32;
      if (cl == CG_BLK_FULL) {
        uint32_t x = lb == 32 ? ~0u : (1u << lb) - 1;
        for (int r = 0; r < la; r++) row[(int64_t)r * wpr] |= x;
        total += (int64_t)la * lb;
        continue;
      }
      if (!have) skey_query(j, se, mh, mh->nqh, j->nn, a, a0, la, s, &k);
      have = 1;
      uint64_t h[2];
      skey_at(j, se->sp, mh, mh->nkh, b, lb, &k, h);
      const nent *e = set ? blk_cset_find(set, h[0], h[1]) : nlookup(c, h[0], h[1]);
      if (e) {
        for (int r = 0; r < la; r++) row[(int64_t)r * wpr] |= e->w[r];
        total += e->count;
        continue;
      }
      /* Its micro pairs, classified in one call below; it is kept after. */
      if (npend_push(c, h[0], h[1], a, b)) {
        w->fail = 1;
        return 0;
      }
      nmiss++;
      for (int64_t mq = a * MINI; mq < a * MINI + MINI && mq < mq1; mq++)
        for (int64_t mk = b * MINI; mk < b * MINI + MINI && mk < m1; mk++) {
          w->lq[u] = (int32_t)mq;
          w->lk[u++] = (int32_t)mk;
        }
    }
  }
  if (!nmiss) return total;
  cg_ival_spec_pairs(j->prog, se->sp, j->qmiv, j->L->nm, w->lq, j->kmiv, j->L->nm, w->lk, u, w->lcls, w->is);
  for (int i = 0; i < u; i++) w->mgrid[(w->lq[i] - mq0) * nmk + (w->lk[i] - m0)] = w->lcls[i];
  total += micro_pass(w, se, mh, q0, q1, k0, k1, wpb);
  for (int i = 0; i < nmiss; i++) {
    const npend *x = &c->pn[i];
    int64_t a0 = x->a * M, b0 = x->b * M, la = (a0 + M < q1 ? a0 + M : q1) - a0;
    const uint32_t *row = w->mbits + (a0 - q0) * wpr + (b0 - k0) / 32;
    nent e = {x->h0, x->h1, 0, {0}};
    for (int r = 0; r < la; r++) e.count += pop64(e.w[r] = row[(int64_t)r * wpr]);
    if (set) blk_cset_add(set, &e);
    else ninsert(c, &e);
  }
  c->npn = 0;
  return total;
}

int64_t blk_micro_eval(worker *w, const spec_entry *se, const blk_mhash *mh, int64_t q0, int64_t q1, int64_t k0,
                       int64_t k1, int wpb) {
  job *j = w->j;
  int mini = mh->nqh && wpb, many = j->nw > 1;
  if ((!w->mc && !(w->mc = mcache_new())) || (many && !shared(&j->mset, MCACHE_MAX, sizeof(ment))) ||
      (many && mini && !shared(&j->nset, NCACHE_MAX, sizeof(nent)))) {
    w->fail = 1;
    return 0;
  }
  if (wpb) memset(w->mbits, 0, sizeof(uint32_t) * (size_t)wpb);
  /* Mini pairs' bits are whole rows of words: tables with bits only. */
  if (mini) return minis(w, se, mh, q0, q1, k0, k1, wpb);
  classes(w, se->sp, q0 / MICRO, (q1 + MICRO - 1) / MICRO, k0 / MICRO, (k1 + MICRO - 1) / MICRO);
  return micro_pass(w, se, mh, q0, q1, k0, k1, wpb);
}
