/*
** Block tables: the block-pair memo. Irregular masks leave hundreds of
** thousands of block pairs undecided by intervals (radial on hunyuan-720p:
** 722,091), yet they hold a few hundred distinct bitmasks: a pair's bits
** are a function of the program specialised to it (what its intervals
** decide, cg_spec) and of the live interface values of its query and key
** tokens, in order. So each undecided pair gets a key from those, and each
** distinct key is evaluated once, exactly, every token pair of it: its
** count of allowed pairs, and its bitmask where the table carries them.
**
** Keys are translation-canonical. Where the specialised program reads a
** query interface i and a key interface j only through q_i - k_j or a
** comparison between them, adding one constant to both changes nothing; so
** both sequences are keyed relative to q_i at the query block's first
** token. A radial mask's pair then depends on where the blocks sit
** relative to each other, not on where they sit in the frame: 30,605
** absolute keys become a few thousand.
**
** A sequence's key is a polynomial hash modulo the prime 2^61 - 1, two
** bases, computed once per block and interface: shifting a sequence by c
** subtracts c * (sum of the powers), so a shifted key costs a product.
** The key side's sequences enter as one weighted sum (a random weight per
** interface and base, folded into the block hashes once), so a pair's key
** costs a few additions, its shifts one product per query block.
** Distinct residues need distinct values: the memo is off unless every
** interface value lies within +-2^58 (then shifted values lie within
** +-2^59, two of them differ by less than the prime, and a comparison of
** shifted values cannot wrap). Hash collisions: two distinct
** sequences agree on one base with probability below 2^-54, on both below
** 2^-108, over at most ~10^12 compared pairs.
**
** A memo that keeps missing (a mask over hashed positions, say) turns
** itself off, and the table falls back to witnesses and refinement
** (cg_blocks_witness.c, cg_blocks_refine.c); bits then come from
** cg_blocks_bits.c's own pass.
*/
#define _GNU_SOURCE /* glibc's adaptive mutex, where it has one */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

#define VMAX (1ll << 58)
#define MISS_PROBE 4096  /* lookups before the memo judges its hit rate */

static const uint64_t base[2] = {0x1d6e0c7b2a3f9e5ull, 0x0b7a2c4d9e1f3a7ull};

typedef struct ment {
  uint64_t dec, val, h[2];
  int64_t count;
  int32_t bits; /* its bitmask's number in the set, or -1 */
} ment;

struct blk_memo {
  const job *j;
  int wpb;           /* words per bitmask; 0: counts only */
  uint64_t *qh;      /* per interface and block, the two hashes: [nqv][nq][2] */
  uint64_t *kh;      /* per key block and interface, weighted: [nk][nkv][2] */
  uint64_t *kw;      /* [nkv][2]: each key interface's weight */
  uint64_t *g;       /* [len][2]: the sum of the first len powers */
  size_t mqh_cap, mkh_cap; /* their bytes, for the pool */
  uint64_t *mqh, *mkh; /* the same as qh and kh per micro-block, where blocks are whole ones and
                       ** the table carries bits (NULL else), for the micro-pair cache; */
  uint64_t *nqh, *nkh; /* and per mini-block where the job has them: */
  blk_mhash mh;
  atomic_int off;
  /* What workers write sits on lines of its own: beside the fields every
  ** pair's key reads, each lock taken moved their line between cores
  ** (radial at hunyuan-720p on two threads: 44 -> 35-37 ms with the lock
  ** below). The lock spins a while before it sleeps (glibc's adaptive
  ** mutex): it is held for a lookup or an insert, and a plain mutex put
  ** waiters to sleep and woke them for each. The bitmasks' set has a lock
  ** of its own (smu): interning one compares or copies its words (1.5 KB
  ** at a kernel's 192 x 64 merged blocks), two thirds of the time mu was
  ** held (radial's chosen table at hunyuan-720p), and lookups waited
  ** behind it. */
  _Alignas(64) pthread_mutex_t mu;
  ment *e;
  int64_t ne, cap;
  int32_t *slot;
  uint64_t mask;
  int fail;
  _Alignas(64) pthread_mutex_t smu;
  blk_bitset set;
  _Alignas(64) atomic_llong looks, miss;
};

/* A worker's copy of the entries it has looked up, read without the lock;
** keys carry the specialisation already (pair_key mixes it in first). */
typedef struct lent {
  uint64_t h[2];
  int64_t count;
  int32_t id, bits; /* the entry (-1: an empty slot), its bitmask */
} lent;

struct blk_lmemo {
  lent *e;
  uint64_t mask;
  int64_t n;
};

/* ------------------------------------------------------- shift analysis */

static int pairwise_op(int op) {
  return op == CG_SUB || op == CG_EQ || op == CG_NE || op == CG_LT || op == CG_LE;
}

/*
** Interfaces read only as q_i against k_j (a difference or comparison,
** always the same partner) are translation pairs: sh->q[i] = j and
** sh->k[j] = i; everything else -1.
*/
void blk_shift_of(const cg_spec *sp, blk_shift *sh) {
  int8_t q[64], k[64]; /* partner, -1 unseen, -2 read otherwise */
  memset(q, -1, sizeof q);
  memset(k, -1, sizeof k);
  const cg_phase *ph = &sp->ph;
  for (int n = 0; n < ph->nins; n++) {
    const cg_inst *in = &ph->ins[n];
    const int32_t ops[3] = {in->a, in->b, in->c};
    for (int o = 0; o < 3; o++) {
      if (ops[o] < 0) continue;
      const cg_slot *sl = &ph->slots[ops[o]];
      if (sl->kind != CG_SLOT_QV && sl->kind != CG_SLOT_IN) continue;
      if (sl->idx >= 64) continue; /* memo refuses programs this wide */
      int8_t *mine = sl->kind == CG_SLOT_QV ? q : k;
      int other = o == 0 ? in->b : o == 1 ? in->a : -1;
      const cg_slot *ot = other >= 0 ? &ph->slots[other] : NULL;
      int want = sl->kind == CG_SLOT_QV ? CG_SLOT_IN : CG_SLOT_QV;
      if (o == 2 || !pairwise_op(in->op) || !ot || ot->kind != want || ot->idx >= 64) {
        mine[sl->idx] = -2;
        continue;
      }
      if (mine[sl->idx] == -1) mine[sl->idx] = (int8_t)ot->idx;
      else if (mine[sl->idx] != ot->idx) mine[sl->idx] = -2;
    }
  }
  for (int i = 0; i < 64; i++) {
    sh->q[i] = q[i] >= 0 && k[q[i]] == i ? q[i] : -1;
    sh->k[i] = k[i] >= 0 && q[k[i]] == i ? k[i] : -1;
  }
}

/* ------------------------------------------------------------ the memo */

/* x mod 2^61 - 1, for any 128-bit x. */
static uint64_t fold(__uint128_t x) {
  __uint128_t y = (x & P61) + (x >> 61);  /* below 2^68 */
  uint64_t r = (uint64_t)(y & P61) + (uint64_t)(y >> 61);
  r = (r & P61) + (r >> 61);
  return r >= P61 ? r - P61 : r;
}

/* A side's hashes, made on threads, a range of blocks to each. */
typedef struct hjob {
  const job *j;
  const int64_t *tok;  /* side_hashes' tokens, or */
  const uint64_t *mh;  /* block_hashes' micro-blocks' hashes, laid out by sv, sb */
  int nv, bsz;
  const uint64_t *pw, *g, *rp;
  uint64_t *out;
  int64_t sv, sb, ov, ob;
} hjob;

#define HASH_GRAIN 256 /* blocks a thread takes at least */

/* Hashes of one side's blocks, per interface: sums of independent
** products with a table of powers (pw: [len][2]), not a Horner chain.
** Products of two residues are below 2^122, so 32 of them add up in 128
** bits before one reduction. A block whose values step evenly (a
** coordinate constant over it, or counting along it: most of them) is
** x0 * g[len] + step * rp[len] at once (g, rp: [len + 1][2], the sums of
** the first len powers and of p times the p-th). Interface v of block b
** goes to out[(v * sv + b * sb) * 2]. */
static int side_part(void *ctx, int64_t b0, int64_t b1) {
  const hjob *h = ctx;
  const job *j = h->j;
  int nv = h->nv, bsz = h->bsz;
  const uint64_t *pw = h->pw, *g = h->g, *rp = h->rp;
  uint64_t *out = h->out;
  int64_t sv = h->sv, sb = h->sb;
  for (int v = 0; v < nv; v++)
    for (int64_t b = b0; b < b1; b++) {
      int64_t p0 = (int64_t)b * bsz, p1 = p0 + bsz < j->S ? p0 + bsz : j->S, len = p1 - p0;
      const int64_t *x = h->tok + (int64_t)v * j->S + p0;
      uint64_t h0 = 0, h1 = 0;
      /* Values lie within +-2^58 (blk_memo_new), so steps do not wrap. */
      int64_t step = len > 1 ? x[1] - x[0] : 0, p = 2;
      while (p < len && x[p] - x[p - 1] == step) p++;
      if (p >= len) {
        uint64_t a = blk_res(x[0]), d = blk_res(step);
        h0 = blk_addp(blk_mulp(a, g[2 * len]), blk_mulp(d, rp[2 * len]));
        h1 = blk_addp(blk_mulp(a, g[2 * len + 1]), blk_mulp(d, rp[2 * len + 1]));
        out[(v * sv + b * sb) * 2] = h0;
        out[(v * sv + b * sb) * 2 + 1] = h1;
        continue;
      }
      for (int64_t c = 0; c < len; c += 32) {
        int64_t ce = c + 32 < len ? c + 32 : len;
        __uint128_t a0 = 0, a1 = 0;
        for (int64_t q = c; q < ce; q++) {
          uint64_t r = blk_res(x[q]);
          a0 += (__uint128_t)r * pw[2 * q];
          a1 += (__uint128_t)r * pw[2 * q + 1];
        }
        h0 = blk_addp(h0, fold(a0));
        h1 = blk_addp(h1, fold(a1));
      }
      out[(v * sv + b * sb) * 2] = h0;
      out[(v * sv + b * sb) * 2 + 1] = h1;
    }
  return 0;
}

/* The same from the micro-blocks' hashes (mh laid out by sv, sb), where
** blocks are whole micro-blocks: one at token offset o of its block adds
** its hash times base^o. Into out laid out by ov, ob. */
static int block_part(void *ctx, int64_t b0, int64_t b1) {
  const hjob *x = ctx;
  const uint64_t *mh = x->mh, *pw = x->pw;
  int64_t sv = x->sv, sb = x->sb, ov = x->ov, ob = x->ob;
  int nm = x->j->L->nm, per = x->bsz / MICRO;
  for (int v = 0; v < x->nv; v++)
    for (int64_t b = b0; b < b1; b++) {
      int m0 = (int)b * per, m1 = m0 + per < nm ? m0 + per : nm;
      uint64_t h[2] = {0, 0};
      /* Products summed in 128 bits, 32 at a time, as side_hashes does. */
      for (int c = m0; c < m1; c += 32) {
        __uint128_t a[2] = {0, 0};
        for (int mi = c; mi < m1 && mi < c + 32; mi++)
          for (int r = 0; r < 2; r++) a[r] += (__uint128_t)mh[(v * sv + mi * sb) * 2 + r] * pw[2 * (mi - m0) * MICRO + r];
        for (int r = 0; r < 2; r++) h[r] = blk_addp(h[r], fold(a[r]));
      }
      x->out[(v * ov + b * ob) * 2] = h[0];
      x->out[(v * ov + b * ob) * 2 + 1] = h[1];
    }
  return 0;
}

static blk_task side_hashes(hjob *h, const job *j, const int64_t *tok, int nv, int bsz, int nb, const uint64_t *pw,
                            const uint64_t *g, const uint64_t *rp, uint64_t *out, int64_t sv, int64_t sb) {
  *h = (hjob){.j = j, .tok = tok, .nv = nv, .bsz = bsz, .pw = pw, .g = g, .rp = rp, .out = out, .sv = sv, .sb = sb};
  return (blk_task){side_part, h, nb, HASH_GRAIN};
}

static blk_task block_hashes(hjob *h, const job *j, const uint64_t *mh, int64_t sv, int64_t sb, int nv, int bsz,
                             int nb, const uint64_t *pw, uint64_t *out, int64_t ov, int64_t ob) {
  *h = (hjob){.j = j, .mh = mh, .nv = nv, .bsz = bsz, .pw = pw, .out = out, .sv = sv, .sb = sb, .ov = ov, .ob = ob};
  return (blk_task){block_part, h, nb, HASH_GRAIN};
}

static int in_range(const int64_t *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (v[i] < -VMAX || v[i] > VMAX) return 0;
  return 1;
}

/* The micro-blocks' hashes, unweighted: [nqv][nm][2] and [nm][nkv][2]. */
static int micro_hashes(blk_memo *m, const uint64_t *pw, const uint64_t *rp) {
  const job *j = m->j;
  int nm = j->L->nm;
  m->mqh = blk_take(j->pool, POOL_MQH, sizeof(uint64_t) * 2 * (size_t)nm * (size_t)(j->nqv ? j->nqv : 1), &m->mqh_cap);
  m->mkh = blk_take(j->pool, POOL_MKH, sizeof(uint64_t) * 2 * (size_t)nm * (size_t)(j->nkv ? j->nkv : 1), &m->mkh_cap);
  if (!m->mqh || !m->mkh) return -1;
  hjob h[2];
  blk_task t[2] = {side_hashes(&h[0], j, j->qtok, j->nqv, MICRO, nm, pw, m->g, rp, m->mqh, nm, 1),
                   side_hashes(&h[1], j, j->ktok, j->nkv, MICRO, nm, pw, m->g, rp, m->mkh, 1, j->nkv)};
  return blk_par_tasks(t, 2);
}

/* The key micro-blocks' hashes times their interfaces' weights, in place;
** then the mini-blocks' from them, where the job has mini-blocks (the
** weight is a factor of every term). */
static int weigh_micro(blk_memo *m, const uint64_t *pw) {
  const job *j = m->j;
  for (int b = 0; b < j->L->nm; b++)
    for (int v = 0; v < j->nkv; v++)
      for (int r = 0; r < 2; r++) {
        uint64_t *y = m->mkh + ((int64_t)b * j->nkv + v) * 2 + r;
        *y = blk_mulp(*y, m->kw[2 * v + r]);
      }
  if (j->nn) {
    m->nqh = malloc(sizeof(uint64_t) * 2 * (size_t)j->nn * (size_t)(j->nqv ? j->nqv : 1));
    m->nkh = malloc(sizeof(uint64_t) * 2 * (size_t)j->nn * (size_t)(j->nkv ? j->nkv : 1));
    if (!m->nqh || !m->nkh) return -1;
    hjob h[2];
    blk_task t[2] = {block_hashes(&h[0], j, m->mqh, j->L->nm, 1, j->nqv, MICRO * MINI, j->nn, pw, m->nqh, j->nn, 1),
                     block_hashes(&h[1], j, m->mkh, 1, j->nkv, j->nkv, MICRO * MINI, j->nn, pw, m->nkh, 1, j->nkv)};
    if (blk_par_tasks(t, 2)) return -1;
  }
  m->mh = (blk_mhash){m->mqh, m->mkh, m->nqh, m->nkh, m->kw, m->g};
  return 0;
}

int blk_memo_new(job *j, int bits) {
  j->memo = NULL;
  if (j->nqv > 64 || j->nkv > 64 || !j->qtok || !j->ktok) return 0;
  if (!in_range(j->qtok, j->S * j->nqv) || !in_range(j->ktok, j->S * j->nkv)) return 0;
  blk_memo *m = aligned_alloc(64, sizeof *m);
  if (m) memset(m, 0, sizeof *m);
  if (!m) return -1;
  m->j = j;
  m->wpb = bits && j->bk % 32 == 0 ? j->bq * (j->bk / 32) : 0;
  m->set.wpb = m->wpb;
  int len = j->bq > j->bk ? j->bq : j->bk;
  m->qh = malloc(sizeof(uint64_t) * 2 * (size_t)j->nq * (size_t)(j->nqv ? j->nqv : 1));
  m->kh = malloc(sizeof(uint64_t) * 2 * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  m->g = malloc(sizeof(uint64_t) * 2 * (size_t)(len + 1));
  m->mask = 1023;
  m->slot = malloc(sizeof(int32_t) * (m->mask + 1));
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
  m->mu = m->smu = (pthread_mutex_t)PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
#else
  pthread_mutex_init(&m->mu, NULL);
  pthread_mutex_init(&m->smu, NULL);
#endif
  atomic_init(&m->looks, 0);
  atomic_init(&m->miss, 0);
  atomic_init(&m->off, 0);
  j->memo = m;
  if (!m->qh || !m->kh || !m->g || !m->slot) return -1;
  memset(m->slot, 0xff, sizeof(int32_t) * (m->mask + 1));
  uint64_t *pw = malloc(sizeof(uint64_t) * 2 * (size_t)len), *rp = malloc(sizeof(uint64_t) * 2 * (size_t)(len + 1));
  if (!pw || !rp) {
    free(pw);
    free(rp);
    return -1;
  }
  for (int r = 0; r < 2; r++) {
    uint64_t x = 1;
    m->g[r] = rp[r] = 0;
    for (int n = 1; n <= len; n++) {
      pw[2 * (n - 1) + r] = x;
      m->g[2 * n + r] = blk_addp(m->g[2 * (n - 1) + r], x);
      rp[2 * n + r] = blk_addp(rp[2 * (n - 1) + r], blk_mulp((uint64_t)(n - 1), x));
      x = blk_mulp(x, base[r]);
    }
  }
  /* Micro-blocks first (key ones laid out like kh below), blocks from
  ** them, where the micro-pair cache reads them. */
  int micro = j->micro && m->wpb;
  if (micro && micro_hashes(m, pw, rp)) {
    free(pw);
    free(rp);
    return -1;
  }
  hjob h[2];
  blk_task ht[2];
  if (micro) {
    ht[0] = block_hashes(&h[0], j, m->mqh, j->L->nm, 1, j->nqv, j->bq, j->nq, pw, m->qh, j->nq, 1);
    ht[1] = block_hashes(&h[1], j, m->mkh, 1, j->nkv, j->nkv, j->bk, j->nk, pw, m->kh, j->nk, 1);
  } else {
    ht[0] = side_hashes(&h[0], j, j->qtok, j->nqv, j->bq, j->nq, pw, m->g, rp, m->qh, j->nq, 1);
    ht[1] = side_hashes(&h[1], j, j->ktok, j->nkv, j->bk, j->nk, pw, m->g, rp, m->kh, j->nk, 1);
  }
  int hashed = !blk_par_tasks(ht, 2);
  free(rp);
  if (!hashed) {
    free(pw);
    return -1;
  }
  m->kw = malloc(sizeof(uint64_t) * 2 * (size_t)(j->nkv ? j->nkv : 1));
  if (!m->kw) {
    free(pw);
    return -1;
  }
  uint64_t x = 0x243f6a8885a308d3ull;
  for (int v = 0; v < 2 * j->nkv; v++) {
    /* splitmix64: weights in [1, P61) */
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    m->kw[v] = (z ^ (z >> 31)) % (P61 - 1) + 1;
  }
  /* A key block's interfaces side by side: a pair's key reads one line. */
  uint64_t *t = malloc(sizeof(uint64_t) * 2 * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  if (!t) {
    free(pw);
    return -1;
  }
  for (int v = 0; v < j->nkv; v++)
    for (int b = 0; b < j->nk; b++)
      for (int r = 0; r < 2; r++)
        t[((int64_t)b * j->nkv + v) * 2 + r] = blk_mulp(m->kh[((int64_t)v * j->nk + b) * 2 + r], m->kw[2 * v + r]);
  free(m->kh);
  m->kh = t;
  int st = m->mqh ? weigh_micro(m, pw) : 0;
  free(pw);
  return st;
}

void blk_memo_free(blk_memo *m) {
  if (!m) return;
  free(m->qh);
  free(m->kh);
  free(m->kw);
  free(m->g);
  blk_give(m->j->pool, POOL_MQH, m->mqh, m->mqh_cap);
  blk_give(m->j->pool, POOL_MKH, m->mkh, m->mkh_cap);
  free(m->nqh);
  free(m->nkh);
  free(m->e);
  free(m->slot);
  blk_bitset_free(&m->set);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->smu);
  free(m);
}

int blk_memo_on(const blk_memo *m) { return m && !atomic_load(&m->off); }

int blk_memo_bits(const blk_memo *m) { return m ? m->wpb : 0; }

/* A partial block's allowed pairs are its bitmask's set bits: none lie
** past a short block's edge. */
int64_t blk_memo_bits_count(blk_memo *m, int32_t b) {
  int64_t n = 0;
  pthread_mutex_lock(&m->smu);
  const uint32_t *x = m->set.w + (int64_t)b * m->wpb;
  for (int i = 0; i < m->wpb; i++) n += __builtin_popcount(x[i]);
  pthread_mutex_unlock(&m->smu);
  return n;
}

blk_bitset *blk_memo_set(blk_memo *m) { return &m->set; }

/* Block b's hash of interface v's sequence less a, the key side's times
** the interface's weight as kept here (cg_blocks_reuse.c compares blocks
** by it). */
void blk_memo_seq(const blk_memo *m, int key_side, int v, int b, int64_t a, uint64_t h[2]) {
  const job *j = m->j;
  int bs = key_side ? j->bk : j->bq;
  int64_t p0 = (int64_t)b * bs, len = p0 + bs < j->S ? bs : j->S - p0;
  uint64_t c = blk_res(a);
  for (int r = 0; r < 2; r++) {
    uint64_t g = m->g[2 * len + r];
    if (key_side) h[r] = blk_subp(m->kh[((int64_t)b * j->nkv + v) * 2 + r], blk_mulp(c, blk_mulp(m->kw[2 * v + r], g)));
    else h[r] = blk_subp(m->qh[((int64_t)v * j->nq + b) * 2 + r], blk_mulp(c, g));
  }
}

/* Key block kb's live interfaces' weighted hashes, summed. */
static void key_sum(const blk_memo *m, uint64_t klive, int kb, uint64_t *x0, uint64_t *x1) {
  const job *j = m->j;
  *x0 = *x1 = 0;
  for (uint64_t live = klive; live; live &= live - 1) {
    int v = __builtin_ctzll(live);
    if (v >= j->nkv) break;
    const uint64_t *x = m->kh + ((int64_t)kb * j->nkv + v) * 2;
    *x0 = blk_addp(*x0, x[0]);
    *x1 = blk_addp(*x1, x[1]);
  }
}

/* Every key block's sum for one specialisation, once: its pairs number
** hundreds of thousands, its key blocks a few thousand. Left NULL when out
** of memory (pair_key then sums per pair). */
static void key_sums(const blk_memo *m, spec_entry *se) {
  const job *j = m->j;
  se->ks = malloc(sizeof(uint64_t) * 2 * (size_t)j->nk);
  for (int kb = 0; se->ks && kb < j->nk; kb++) key_sum(m, se->sp->klive, kb, &se->ks[2 * kb], &se->ks[2 * kb + 1]);
}

/*
** The pair's key: its specialisation, lengths, and live sequences, shifted
** where the program reads them as translation pairs. The query part, and
** the key side's shift (sum over shifted key interfaces of their weight
** times the query value they are read against), are kept in the
** specialisation's entry while its row repeats.
*/
static void pair_key(const blk_memo *m, spec_entry *se, int qb, int kb, uint64_t h[2]) {
  const job *j = m->j;
  const cg_spec *sp = se->sp;
  blk_qkey *k = &se->qk;
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
  int lq = (int)(q1 - q0), lk = (int)(k1 - k0);
  if (k->qb != qb) {
    uint64_t a = blk_mix(blk_mix(se->dec, se->val), (uint64_t)lq);
    uint64_t b = blk_mix(blk_mix(se->val ^ 0x5bd1e995ull, se->dec), (uint64_t)lq);
    for (int v = 0; v < j->nqv; v++) {
      if (!(sp->qlive >> v & 1)) continue;
      uint64_t c = se->sh.q[v] >= 0 ? blk_res(j->qtok[(int64_t)v * j->S + q0]) : 0;
      const uint64_t *x = m->qh + ((int64_t)v * j->nq + qb) * 2;
      a = blk_mix(a, blk_subp(x[0], blk_mulp(c, m->g[2 * lq])) ^ (uint64_t)v << 61);
      b = blk_mix(b, blk_subp(x[1], blk_mulp(c, m->g[2 * lq + 1])));
    }
    uint64_t d[2] = {0, 0};
    for (int v = 0; v < j->nkv; v++) {
      int pq = se->sh.k[v];
      if (!(sp->klive >> v & 1) || pq < 0) continue;
      uint64_t c = blk_res(j->qtok[(int64_t)pq * j->S + q0]);
      for (int r = 0; r < 2; r++) d[r] = blk_addp(d[r], blk_mulp(c, m->kw[2 * v + r]));
    }
    *k = (blk_qkey){.qb = qb, .lk = -1, .h = {a, b}, .d = {d[0], d[1]}};
  }
  if (k->lk != lk) {
    k->lk = lk;
    k->hl[0] = blk_mix(k->h[0], (uint64_t)lk);
    k->hl[1] = blk_mix(k->h[1], (uint64_t)lk << 32);
    k->dg[0] = blk_mulp(k->d[0], m->g[2 * lk]);
    k->dg[1] = blk_mulp(k->d[1], m->g[2 * lk + 1]);
  }
  if (!se->ks) key_sums(m, se);
  uint64_t x0, x1;
  if (se->ks) {
    x0 = se->ks[2 * kb];
    x1 = se->ks[2 * kb + 1];
  } else {
    key_sum(m, sp->klive, kb, &x0, &x1);
  }
  h[0] = blk_mix(k->hl[0], blk_subp(x0, k->dg[0]));
  h[1] = blk_mix(k->hl[1], blk_subp(x1, k->dg[1]));
}

static int32_t find(const blk_memo *m, const spec_entry *se, const uint64_t h[2], uint64_t *at) {
  uint64_t i = blk_mix(h[0], h[1]) & m->mask;
  for (; m->slot[i] >= 0; i = (i + 1) & m->mask) {
    const ment *e = &m->e[m->slot[i]];
    if (e->h[0] == h[0] && e->h[1] == h[1] && e->dec == se->dec && e->val == se->val) return m->slot[i];
  }
  *at = i;
  return -1;
}

static int grow(blk_memo *m) {
  uint64_t cap = (m->mask + 1) * 2;
  int32_t *s = malloc(sizeof(int32_t) * cap);
  if (!s) return -1;
  memset(s, 0xff, sizeof(int32_t) * cap);
  for (int64_t k = 0; k < m->ne; k++) {
    uint64_t i = blk_mix(m->e[k].h[0], m->e[k].h[1]) & (cap - 1);
    while (s[i] >= 0) i = (i + 1) & (cap - 1);
    s[i] = (int32_t)k;
  }
  free(m->slot);
  m->slot = s;
  m->mask = cap - 1;
  return 0;
}

/* Query tokens [a0, a1) against keys [b0, b1) through the specialised
** program, into the count and the bits (row a - q0, column b - k0): as
** many query tokens at a time as the worker's lanes hold, each against
** the whole key range, in one call. */
static int64_t tokens(worker *w, const cg_spec *sp, int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t q0,
                      int64_t k0, int wpb) {
  const job *j = w->j;
  int64_t total = 0, L = w->lanes, n = b1 - b0, per = L / n > 0 ? L / n : 1;
  int wpr = j->bk / 32, x0 = (int)(b0 - k0);
  for (int64_t a = a0; a < a1; a += per) {
    int64_t e = a + per < a1 ? a + per : a1;
    for (int v = 0; v < j->nqv; v++) {
      if (!(sp->qlive >> v & 1)) continue;
      for (int64_t t = a; t < e; t++) {
        int64_t x = j->qtok[(int64_t)v * j->S + t], *d = w->ql + v * L + (t - a) * n;
        for (int64_t b = 0; b < n; b++) d[b] = x;
      }
    }
    for (int v = 0; v < j->nkv; v++) {
      if (!(sp->klive >> v & 1)) continue;
      for (int64_t t = a; t < e; t++)
        memcpy(w->kl + v * L + (t - a) * n, j->ktok + (int64_t)v * j->S + b0, sizeof(int64_t) * (size_t)n);
    }
    cg_spec_pairs(j->prog, sp, w->ql, L, w->kl, L, (int)((e - a) * n), w->out, w->s);
    for (int64_t t = a; t < e; t++) {
      const int64_t *o = w->out + (t - a) * n;
      if (wpb) {
        uint32_t *row = w->mbits + (t - q0) * wpr;
        for (int b = 0; b < n; b++)
          if (o[b]) row[(x0 + b) >> 5] |= 1u << ((x0 + b) & 31);
      }
      for (int b = 0; b < n; b++) total += o[b] != 0;
    }
  }
  return total;
}

/*
** A block pair's allowed pairs without bits, where blocks are whole
** micro-blocks: micro pairs the intervals decide are counted at once, and
** only runs of undecided ones are evaluated, token by token. (Tables
** without bits look up few distinct pairs: hashing every micro-block for
** the micro-pair cache would cost them more than it saves.)
*/
static int64_t count_micro(worker *w, const cg_spec *sp, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  const job *j = w->j;
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO, total = 0;
  int64_t mq0 = q0 / MICRO, mq1 = (q1 + MICRO - 1) / MICRO;
  int nmk = (int)(m1 - m0), n = 0;
  for (int64_t mq = mq0; mq < mq1; mq++)
    for (int64_t mk = m0; mk < m1; mk++) {
      w->lq[n] = (int32_t)mq;
      w->lk[n++] = (int32_t)mk;
    }
  cg_ival_pairs_sig(j->prog, j->qmiv, j->L->nm, w->lq, j->kmiv, j->L->nm, w->lk, n, w->lcls, NULL, NULL, w->is);
  for (int64_t mq = mq0; mq < mq1; mq++) {
    int64_t a0 = mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
    const uint8_t *mcls = w->lcls + (mq - mq0) * nmk;
    for (int64_t mk = m0; mk < m1;) {
      int c = mcls[mk - m0];
      int64_t e = mk + 1;
      while (e < m1 && mcls[e - m0] == c) e++;
      int64_t b0 = mk * MICRO, b1 = e * MICRO < k1 ? e * MICRO : k1;
      if (c == CG_BLK_FULL) total += (a1 - a0) * (b1 - b0);
      else if (c == CG_BLK_UNDECIDED) total += tokens(w, sp, a0, a1, b0, b1, q0, k0, 0);
      mk = e;
    }
  }
  return total;
}

/*
** Every token pair of the block pair: the allowed pairs, and the bits into
** w->mbits when the memo keeps them: by the micro-pair cache
** (cg_blocks_micro.c) where the memo hashed the micro-blocks, by
** count_micro where blocks are whole micro-blocks, else token by token.
*/
static int64_t evaluate(worker *w, const spec_entry *se, int64_t q0, int64_t q1, int64_t k0, int64_t k1, int wpb) {
  const job *j = w->j;
  if (j->memo->mqh) return blk_micro_eval(w, se, &j->memo->mh, q0, q1, k0, k1, wpb);
  if (j->micro && !wpb) return count_micro(w, se->sp, q0, q1, k0, k1);
  if (wpb) memset(w->mbits, 0, sizeof(uint32_t) * (size_t)wpb);
  return tokens(w, se->sp, q0, q1, k0, k1, q0, k0, wpb);
}

/*
** Turns the memo off when lookups keep missing: evaluating every pair in
** full is then dearer than sampling witnesses. The first rows of a table
** miss more than the rest (each relative position is new once), so the
** bar is high early and low later.
*/
static void judge(worker *w, blk_memo *m, int missed) {
  w->mlook++;
  w->mmiss += missed;
  if (w->mlook < 256) return; /* the memo's counters are shared: added to now and then */
  long long l = atomic_fetch_add(&m->looks, w->mlook) + w->mlook, n = atomic_fetch_add(&m->miss, w->mmiss) + w->mmiss;
  w->mlook = w->mmiss = 0;
  if (m->wpb) return; /* the bits need every pair anyway */
  if ((l >= MISS_PROBE && n * 4 > l * 3) || (l >= 8 * MISS_PROBE && n * 8 > l)) atomic_store(&m->off, 1);
}

static uint64_t lslot(const uint64_t h[2]) { return h[0] ^ h[1] >> 17; }

static lent *lfind(const blk_lmemo *l, const uint64_t h[2]) {
  for (uint64_t i = lslot(h) & l->mask; l->e[i].id >= 0; i = (i + 1) & l->mask) {
    const lent *e = &l->e[i];
    if (e->h[0] == h[0] && e->h[1] == h[1]) return (lent *)e;
  }
  return NULL;
}

static int lput(blk_lmemo *l, const lent *x) {
  if ((uint64_t)(l->n + 1) * 2 > l->mask + 1 || !l->e) {
    uint64_t cap = l->e ? (l->mask + 1) * 2 : 1024;
    lent *e = malloc(sizeof(lent) * cap);
    if (!e) return -1;
    for (uint64_t i = 0; i < cap; i++) e[i].id = -1;
    for (uint64_t k = 0; l->e && k <= l->mask; k++) {
      if (l->e[k].id < 0) continue;
      uint64_t i = lslot(l->e[k].h) & (cap - 1);
      while (e[i].id >= 0) i = (i + 1) & (cap - 1);
      e[i] = l->e[k];
    }
    free(l->e);
    l->e = e;
    l->mask = cap - 1;
  }
  uint64_t i = lslot(x->h) & l->mask;
  while (l->e[i].id >= 0) i = (i + 1) & l->mask;
  l->e[i] = *x;
  l->n++;
  return 0;
}

void blk_lmemo_free(blk_lmemo *l) {
  if (!l) return;
  free(l->e);
  free(l);
}

/* The shared memo, under its lock: the pair's entry, evaluated and added
** where it is new; its bitmask into *bits. */
static int32_t shared_pair(worker *w, blk_memo *m, int qb, int kb, const spec_entry *se, const uint64_t h[2],
                           int64_t *count, int32_t *bits) {
  const job *j = w->j;
  uint64_t at;
  pthread_mutex_lock(&m->mu);
  int32_t k = find(m, se, h, &at);
  *count = k >= 0 ? m->e[k].count : -1;
  *bits = k >= 0 ? m->e[k].bits : -1;
  pthread_mutex_unlock(&m->mu);
  judge(w, m, k < 0);
  if (k >= 0) return k;
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
  *count = evaluate(w, se, q0, q1, k0, k1, m->wpb);
  /* Only partial blocks carry bitmasks: an empty or full pair's would be
  ** a word set no block reads. Their first words must be int32s. A
  ** bitmask's hash is made before either lock: it reads every word. It is
  ** interned before the entry goes in, under the set's lock: a worker that
  ** added the pair meanwhile interned equal words, so the number is its. */
  int partial = m->wpb && *count > 0 && *count < (q1 - q0) * (k1 - k0);
  int64_t b = -1;
  if (partial) {
    uint64_t bh = blk_bits_hash(&m->set, w->mbits);
    pthread_mutex_lock(&m->smu);
    b = blk_intern_hashed(&m->set, w->mbits, bh);
    pthread_mutex_unlock(&m->smu);
  }
  pthread_mutex_lock(&m->mu);
  k = find(m, se, h, &at);
  *bits = k >= 0 ? m->e[k].bits : -1;
  if (k < 0) {
    if (partial) {
      if (b < 0 || b > INT32_MAX / m->wpb) m->fail = 1;
      else *bits = (int32_t)b;
    }
    if (m->ne == m->cap) {
      int64_t nc = m->cap ? m->cap * 2 : 256;
      ment *ne = nc <= INT32_MAX ? realloc(m->e, sizeof(ment) * (size_t)nc) : NULL;
      if (ne) {
        m->e = ne;
        m->cap = nc;
      } else m->fail = 1;
    }
    if (!m->fail) {
      m->e[m->ne] = (ment){se->dec, se->val, {h[0], h[1]}, *count, *bits};
      m->slot[at] = (int32_t)m->ne;
      k = (int32_t)m->ne++;
      if ((uint64_t)m->ne * 2 > m->mask + 1 && grow(m)) m->fail = 1;
    }
  }
  if (m->fail) w->fail = 1;
  pthread_mutex_unlock(&m->mu);
  return k;
}

/* A pair the worker has looked up before is answered from its own copy,
** with no lock; it still counts as a hit towards judging the memo. */
int64_t blk_memo_pair(worker *w, int qb, int kb, spec_entry *se, int32_t *id) {
  blk_memo *m = w->j->memo;
  uint64_t h[2];
  pair_key(m, se, qb, kb, h);
  if (!w->lm && !(w->lm = calloc(1, sizeof *w->lm))) {
    w->fail = 1;
    *id = -1;
    return -1;
  }
  const lent *e = w->lm->e ? lfind(w->lm, h) : NULL;
  if (e) {
    judge(w, m, 0);
    *id = e->bits;
    return e->count;
  }
  int64_t count;
  int32_t bits, k = shared_pair(w, m, qb, kb, se, h, &count, &bits);
  if (k >= 0 && lput(w->lm, &(lent){{h[0], h[1]}, count, k, bits})) w->fail = 1;
  *id = k >= 0 ? bits : -1;
  return count;
}
