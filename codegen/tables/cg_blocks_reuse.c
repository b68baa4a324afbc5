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
** (cg_blocks_memo.c, relative to the low end of the block's interval),
** the intervals, on which the classes depend, exactly. Values stay within
** +-2^58 (the memo's bound), so no shifted value wraps. A row records the
** class its super-block or group decided where they did; interval ops are
** monotone under inclusion, so the pair's own intervals decide it alike,
** and the copy counts as the fresh row would. Copied partial blocks keep
** the reference's memo entry: a different entry, maybe, than a lookup
** would find, but of equal bits, already in the set.
**
** A block's signature hashes what must agree (length, relative sequences
** and intervals) so that candidates are found by one comparison; the
** exact checks then settle them. The table keeps the rows built, by any
** worker, in SLOTS slots (row qb in slot qb % SLOTS); a row copies one
** RING back at most. A worker copied only its own rows once, and on eight
** threads the spatial table of radial's chosen layouts built 218 of its
** rows afresh where one thread built 133: the row a frame back had gone to
** another worker. A reference another worker has not begun, or is still
** writing, is not waited for: the row takes another distance's, or is
** built afresh. A worker keeps the key masks of the last NEEDS
** (distance, shift) pairs. Tables with bits copy a row's results whole:
** their memo never turns itself off, and its bitmasks are the table's, so
** any worker's row will do. Tables without copy its interval classes and
** signatures only and settle the undecided blocks as a fresh row does, so
** their memo sees the lookups it would have seen and judges its hit rate
** as before; their signatures are numbered per worker, so they copy their
** own worker's rows only.
**
** Key blocks that did not move along may still be copied unmoved, from the
** row before (blk_ref's src): where the intervals of a query super row
** against a key super-block decide enough of the program that what is
** left reads no query interface (a key sink: k.t == 0 once the near term
** is decided false), every token pair of the super pair has the value the
** key token alone gives. Two rows of query blocks of one length whose
** super rows leave that super-block undecided with the same decisions
** then agree on each of its key blocks: the same bits, count and class.
** The class too, since decided instructions stay decided alike in a
** block (inclusion) and the rest read key intervals only. A temporal
** mask with a sink in the transposed layout has a frame-0 token in every
** key block: the key blocks no earlier row moved to (the first 165 of
** every row at hunyuan-720p) are mostly such.
*/
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

#define RING 256   /* the farthest reference */
#define SLOTS 512  /* rows the table keeps: RING back from any row begun, and room for the workers' spread */
#define NEEDS 8    /* key masks a worker keeps; more than DISTS, so a row's best survives its others */
#define MOST 2048  /* entries a kept row may have, at least */
#define DISTS 6    /* distances a row tries */
#define SAMPLE 8   /* every SAMPLE-th key block judges a distance */
#define TRIES 16   /* rows with a reference a worker sees before it may give up on them */
#define VMAX (1ll << 58)
#define SRING 32   /* super rows whose query-free key super-blocks a worker keeps: more than RING rows */

/* A kept row and who may read it. st: qb + 1 (0: none) in the high word;
** in the low one, twice the readers holding it, plus 1 while a worker
** writes it. A row is written only where no one holds the slot's row, and
** read only once written. */
typedef struct rslot {
  _Atomic uint64_t st;
  blk_rrow r;
} rslot;

#define LOW 0xffffffffull

struct blk_reuse {
  rslot *slot;           /* [SLOTS] */
  blk_shift sh;          /* translation pairs of the whole QK phase */
  uint64_t *qsig, *ksig; /* per block, [nb][2]; both words 0: never reused */
  int64_t *qa, *ka;      /* per block and interface, [nb][nv]: its interval's low end where
                         ** the interface is paired (it moves), 0 where it must be equal */
  int dist[DISTS], ndist; /* the key blocks' distances rows copy along (qdist: the rows'), */
  int64_t *dk;           /* ... and the key side's shift at each: [DISTS][nkv] */
};

typedef struct kneed {
  int d;
  int64_t *delta; /* [nqv] */
  uint8_t *need, *gneed;
  int32_t *runs;
  int nruns;
  uint64_t tick;
} kneed;

struct blk_rw {
  int tried, taken, off; /* rows that had a reference, rows that took it; off: none kept */
  const blk_rrow *held[2]; /* the rows the current row holds: its reference and the row before */
  kneed kn[NEEDS];
  uint64_t tick;
  int64_t *delta;
  blk_ref ref;
  uint64_t *sig;       /* distinct signatures (dec, val): [nsig][2], found through slot */
  int32_t *slot, nsig, capsig;
  uint32_t smask;
  uint64_t *qlive;     /* per signature: the query interfaces its program reads, or ~0 unknown */
  int32_t *qf;         /* per kept super row (slot sr % SRING), per key super-block: the signature
                       ** of an undecided super pair whose program reads only query interfaces
                       ** constant over the super row, else -1: [SRING][nsk] */
  int32_t *qfl, *nqf;  /* per slot, the key super-blocks whose qf is set ([SRING][nsk]), and how many */
  cg_ival *sqiv;       /* the query interfaces of the super row in each slot: [SRING][nqv] */
  int qfsr[SRING];     /* the super row each slot holds, -1 none */
  uint8_t *need, *gneed; /* a row's own need, where it copies blocks unmoved (blk_ref's) */
  int32_t *runs;
};

static const cg_ival *side_iv(const job *j, int key_side, int v, int b) {
  return key_side ? &j->kiv[(int64_t)v * j->nkr + j->kmap[b]] : &j->qiv[(int64_t)v * j->nq + b];
}

/* Block b's anchors and signature. */
static void block_sig(const job *j, const blk_reuse *ru, int key_side, int b) {
  int nv = key_side ? j->nkv : j->nqv, bs = key_side ? j->bk : j->bq;
  const int8_t *pair = key_side ? ru->sh.k : ru->sh.q;
  int64_t p0 = (int64_t)b * bs, len = p0 + bs < j->S ? bs : j->S - p0;
  int64_t *a = (key_side ? ru->ka : ru->qa) + (int64_t)b * nv;
  uint64_t s0 = blk_mix(0x51ed270b27f4a3c1ull, (uint64_t)len), s1 = blk_mix(0x2545f4914f6cdd1dull, (uint64_t)len);
  int ok = 1;
  for (int v = 0; v < nv; v++) {
    /* The anchor: the interval's low end, which moves with the values
    ** (the signature then holds the values relative to it), read without
    ** touching the block's tokens. */
    const cg_ival *iv = side_iv(j, key_side, v, b);
    ok &= iv->lo >= -VMAX && iv->hi <= VMAX;
    a[v] = pair[v] >= 0 && ok ? iv->lo : 0;
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
  for (int i = 0; ru->slot && i < SLOTS; i++) free(ru->slot[i].r.e);
  free(ru->slot);
  free(ru->qsig);
  free(ru->ksig);
  free(ru->qa);
  free(ru->ka);
  free(ru->dk);
  free(ru);
}

/* Key block kb is kb - d moved by dk (its anchors'), as signatures tell. */
static int key_moved(const job *j, const blk_reuse *ru, int kb, int d, const int64_t *dk) {
  const uint64_t *a = ru->ksig + 2 * (int64_t)kb, *b = ru->ksig + 2 * (int64_t)(kb - d);
  if (!a[0] || a[0] != b[0] || a[1] != b[1]) return 0;
  for (int v = 0; v < j->nkv; v++)
    if (ru->ka[(int64_t)kb * j->nkv + v] - ru->ka[(int64_t)(kb - d) * j->nkv + v] != dk[v]) return 0;
  return 1;
}

/* The anchors' shift from key block kb - d to kb. */
static void key_shift(const job *j, const blk_reuse *ru, int kb, int d, int64_t *dk) {
  for (int v = 0; v < j->nkv; v++) dk[v] = ru->ka[(int64_t)kb * j->nkv + v] - ru->ka[(int64_t)(kb - d) * j->nkv + v];
}

/* The query rows as many tokens back as d key blocks (distances() keeps
** only the d for which that is whole). */
static int qdist(const job *j, int d) { return (int)((int64_t)d * j->bk / j->bq); }

/*
** The distances worth looking back by: those at which most key blocks
** (of a sample) are the block that far before, moved by one shift (a
** majority vote finds it). A radial mask on an identity layout at
** hunyuan-720p gets 5 (four token rows on) and 225 (four frames on)
** among them; each row then takes whichever leaves it the least to
** classify, at its distance's shift only. A query row looks back by the
** same tokens: d key blocks are d bk / bq query blocks, where that is
** whole (a kernel's merged rows: radial's identity spatial class at
** hunyuan-720p's 192-token rows looks back 20 rows, its key blocks 60 on,
** 48 token rows, first).
*/
static int distances(const job *j, blk_reuse *ru) {
  int score[DISTS] = {0}, top = j->nq < RING ? j->nq : RING;
  int64_t dmax = (int64_t)top * j->bq / j->bk;
  size_t sz = sizeof(int64_t) * (size_t)(j->nkv ? j->nkv : 1);
  int64_t *cand = malloc(sz), *x = malloc(sz);
  ru->dk = malloc(sz * DISTS);
  if (!cand || !x || !ru->dk) {
    free(cand);
    free(x);
    return -1;
  }
  for (int d = 1; d < dmax && d < j->nk; d++) {
    if ((int64_t)d * j->bk % j->bq) continue;
    int n = 0, all = 0, votes = 0;
    for (int kb = d; kb < j->nk; kb += SAMPLE) {
      const uint64_t *a = ru->ksig + 2 * (int64_t)kb, *b = ru->ksig + 2 * (int64_t)(kb - d);
      if (!a[0] || a[0] != b[0] || a[1] != b[1]) continue;
      key_shift(j, ru, kb, d, x);
      if (!votes) memcpy(cand, x, sz);
      votes += !votes || !memcmp(cand, x, sz) ? 1 : -1;
    }
    for (int kb = d; kb < j->nk; kb += SAMPLE, all++) n += votes > 0 && key_moved(j, ru, kb, d, cand);
    if (n * 2 < all) continue;
    int at = ru->ndist < DISTS ? ru->ndist++ : DISTS;
    for (; at > 0 && score[at - 1] < n; at--)
      if (at < DISTS) {
        score[at] = score[at - 1];
        ru->dist[at] = ru->dist[at - 1];
        memcpy(ru->dk + at * j->nkv, ru->dk + (at - 1) * j->nkv, sz);
      }
    if (at < DISTS) {
      score[at] = n;
      ru->dist[at] = d;
      memcpy(ru->dk + at * j->nkv, cand, sz);
    }
  }
  free(cand);
  free(x);
  return 0;
}

int blk_reuse_new(job *j) {
  j->ru = NULL;
  /* The memo's hashes compare blocks; only its bits tables copy results. */
  if (j->no_reuse || !j->memo || !blk_memo_on(j->memo) || j->stride != 1 || j->nqv > 64 || j->nkv > 64) return 0;
  j->reuse_cls = !j->bits || !blk_memo_bits(j->memo);
  blk_reuse *ru = calloc(1, sizeof *ru);
  if (!ru) return -1;
  j->ru = ru;
  blk_shift_of(&(cg_spec){.ph = j->prog->qk, .root = j->prog->root}, &ru->sh);
  ru->qsig = malloc(sizeof(uint64_t) * 2 * (size_t)j->nq);
  ru->ksig = malloc(sizeof(uint64_t) * 2 * (size_t)j->nk);
  ru->qa = malloc(sizeof(int64_t) * (size_t)j->nq * (size_t)(j->nqv ? j->nqv : 1));
  ru->ka = malloc(sizeof(int64_t) * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  ru->slot = calloc(SLOTS, sizeof(rslot));
  if (!ru->qsig || !ru->ksig || !ru->qa || !ru->ka || !ru->slot) return -1;
  for (int b = 0; b < j->nq; b++) block_sig(j, ru, 0, b);
  for (int b = 0; b < j->nk; b++) block_sig(j, ru, 1, b);
  if (distances(j, ru)) return -1;
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

/* Row qb as kept, held against rewriting until blk_reuse_end, or NULL:
** not kept, still being written, or (copying classes) another worker's. */
static const blk_rrow *hold(worker *w, blk_rw *rw, int qb) {
  const job *j = w->j;
  rslot *s = &j->ru->slot[qb % SLOTS];
  uint64_t x = atomic_load_explicit(&s->st, memory_order_relaxed), want = (uint64_t)(qb + 1) << 32;
  for (;;) {
    if ((x & ~LOW) != want || (x & 1)) return NULL;
    if (atomic_compare_exchange_weak_explicit(&s->st, &x, x + 2, memory_order_acquire, memory_order_relaxed)) break;
  }
  if (j->reuse_cls && s->r.owner != (int)(w - j->w)) {
    atomic_fetch_sub_explicit(&s->st, 2, memory_order_release);
    return NULL;
  }
  rw->held[rw->held[0] != NULL] = &s->r;
  return &s->r;
}

static rslot *slot_of(const blk_rrow *r) { return (rslot *)((char *)r - offsetof(rslot, r)); }

static void let_go(blk_rw *rw, const blk_rrow *r) {
  atomic_fetch_sub_explicit(&slot_of(r)->st, 2, memory_order_release);
  if (rw->held[0] == r) rw->held[0] = rw->held[1];
  rw->held[1] = NULL;
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
  k->nruns = 0;
  memset(k->gneed, 0, (size_t)j->ngk);
  for (int kb = 0; kb < j->nk; kb++) {
    int moved = kb >= d && same_moved(j, 1, kb, kb - d, delta);
    k->need[kb] = (uint8_t)!moved;
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
    const job *j = w->j;
    w->rw->delta = malloc(sizeof(int64_t) * (size_t)(j->nqv ? j->nqv : 1));
    w->rw->qf = malloc(sizeof(int32_t) * SRING * (size_t)j->nsk);
    w->rw->qfl = malloc(sizeof(int32_t) * SRING * (size_t)j->nsk);
    w->rw->nqf = malloc(sizeof(int32_t) * SRING);
    w->rw->sqiv = malloc(sizeof(cg_ival) * SRING * (size_t)(j->nqv ? j->nqv : 1));
    w->rw->need = malloc((size_t)j->nk);
    w->rw->gneed = malloc((size_t)j->ngk);
    w->rw->runs = malloc(sizeof(int32_t) * 2 * (size_t)(j->nk + 1));
    for (int i = 0; i < SRING; i++) w->rw->qfsr[i] = -1;
    if (!w->rw->delta || !w->rw->qf || !w->rw->qfl || !w->rw->nqf || !w->rw->sqiv || !w->rw->need || !w->rw->gneed || !w->rw->runs) {
      blk_rw_free(w->rw);
      w->rw = NULL;
    }
  }
  if (!w->rw) w->fail = 1;
  return w->rw;
}

/* Key blocks below x that lie in super-blocks the row's super row left
** undecided (upre: such super-blocks before each one). */
static int64_t open_below(const worker *w, int x) {
  int s = x / SUPER;
  return (int64_t)w->upre[s] * SUPER + (s < w->j->nsk && w->scls[s] == CG_BLK_UNDECIDED ? x % SUPER : 0);
}

/* The query interfaces signature id's program reads (~0 out of memory,
** which no caller may take for a set). */
static uint64_t qlive_of(worker *w, blk_rw *rw, int32_t id) {
  if (rw->qlive[id] == ~0ull) {
    cg_spec *sp = cg_spec_new(w->j->prog, rw->sig[2 * id], rw->sig[2 * id + 1]);
    if (!sp) w->fail = 1;
    else rw->qlive[id] = sp->qlive;
    cg_spec_free(sp);
  }
  return rw->qlive[id];
}

/* Interfaces live of query intervals a and b: each a point, the same in both. */
static int same_points(const cg_ival *a, const cg_ival *b, uint64_t live) {
  for (; live; live &= live - 1) {
    int v = __builtin_ctzll(live);
    if (a[v].lo != a[v].hi || a[v].lo != b[v].lo || a[v].hi != b[v].hi) return 0;
  }
  return 1;
}

void blk_reuse_super(worker *w, int sr) {
  const job *j = w->j;
  blk_rw *rw = j->ru && !j->reuse_cls ? rw_of(w) : NULL;
  if (!rw || rw->off) return;
  int32_t *qf = rw->qf + (int64_t)(sr % SRING) * j->nsk, *qfl = rw->qfl + (int64_t)(sr % SRING) * j->nsk;
  int nf = 0;
  cg_ival *qiv = rw->sqiv + (int64_t)(sr % SRING) * j->nqv;
  memcpy(qiv, w->qrow, sizeof(cg_ival) * (size_t)j->nqv);
  int n = 0;
  for (int sk = 0; sk < j->nsk; sk++) {
    qf[sk] = -1;
    if (w->scls[sk] == CG_BLK_UNDECIDED) w->lk[n++] = sk;
  }
  if (n) cg_ival_pairs_sig(j->prog, w->qrow, 1, NULL, j->skiv, j->nsk, w->lk, n, w->lcls, w->ldec, w->lval, w->is);
  for (int i = 0; i < n; i++) {
    if (w->lcls[i] != CG_BLK_UNDECIDED) continue;
    int32_t id = blk_reuse_sig(w, w->ldec[i], w->lval[i]);
    uint64_t live = id >= 0 ? qlive_of(w, rw, id) : ~0ull;
    if (live != ~0ull && same_points(qiv, qiv, live)) qf[qfl[nf++] = w->lk[i]] = id;
  }
  rw->nqf[sr % SRING] = nf;
  rw->qfsr[sr % SRING] = sr;
}

/* Key super-block sk holds the same key-only picture against super rows
** sa and sb (both kept): one signature, whose query interfaces are the
** same constants over both. */
static int same_picture(const job *j, const blk_rw *rw, int sa, int sb, int sk) {
  int32_t a = rw->qf[(int64_t)(sa % SRING) * j->nsk + sk], b = rw->qf[(int64_t)(sb % SRING) * j->nsk + sk];
  return a >= 0 && a == b &&
         (sa == sb || same_points(rw->sqiv + (int64_t)(sa % SRING) * j->nqv, rw->sqiv + (int64_t)(sb % SRING) * j->nqv,
                                  rw->qlive[a]));
}

/*
** Of the key blocks the reference leaves to classify (rf->row NULL: no
** reference, every block), those in key super-blocks that hold the same
** key-only picture against the row's super row and the row before's are
** copied unmoved from the row before (need 2): rf's need, gneed and runs
** become the row's own. The number of such blocks (0: rf is as it was).
*/
static int unmoved(worker *w, blk_rw *rw, int qb, blk_ref *rf) {
  const job *j = w->j;
  rf->src = NULL;
  if (qb == 0 || qb == j->nq - 1) return 0; /* the last query block is shorter than the one before */
  int sa = qb / SUPER, sb = (qb - 1) / SUPER;
  if (rw->qfsr[sa % SRING] != sa || rw->qfsr[sb % SRING] != sb) return 0;
  const blk_rrow *src = hold(w, rw, qb - 1);
  if (!src) return 0;
  const int32_t *qfl = rw->qfl + (int64_t)(sa % SRING) * j->nsk;
  int n = 0, nf = rw->nqf[sa % SRING];
  for (int i = 0; i < nf; i++) {
    int sk = qfl[i], k1 = (sk + 1) * SUPER < j->nk ? (sk + 1) * SUPER : j->nk;
    int open = !rf->row;
    for (int kb = sk * SUPER; kb < k1 && !open; kb++) open = rf->need[kb] == 1;
    if (!open || !same_picture(j, rw, sa, sb, sk)) continue;
    if (!n) {
      if (rf->row) memcpy(rw->need, rf->need, (size_t)j->nk);
      else memset(rw->need, 1, (size_t)j->nk);
    }
    for (int kb = sk * SUPER; kb < k1; kb++)
      if (rw->need[kb] == 1) rw->need[kb] = 2, n++;
  }
  if (!n) {
    let_go(rw, src);
    return 0;
  }
  /* The runs less the super-blocks copied unmoved, a super-block at a
  ** time (every block of a run in one became 2); groups lie in one. */
  const int32_t all[2] = {0, j->nk};
  const int32_t *runs = rf->row ? rf->runs : all;
  int nr = 0;
  if (rf->row) memcpy(rw->gneed, rf->gneed, (size_t)j->ngk);
  else memset(rw->gneed, 1, (size_t)j->ngk);
  for (int r = 0; r < (rf->row ? rf->nruns : 1); r++)
    for (int a = runs[2 * r], b = runs[2 * r + 1], c = a; c < b;) {
      int e = (c / SUPER + 1) * SUPER < b ? (c / SUPER + 1) * SUPER : b;
      if (rw->need[c] == 2) {
        for (int g = c / GROUP; g <= (e - 1) / GROUP; g++) rw->gneed[g] = 0;
      } else if (nr && rw->runs[2 * nr - 1] == c) {
        rw->runs[2 * nr - 1] = e;
      } else {
        rw->runs[2 * nr] = c;
        rw->runs[2 * nr + 1] = e;
        nr++;
      }
      c = e;
    }
  rf->src = src;
  rf->need = rw->need;
  rf->gneed = rw->gneed;
  rf->runs = rw->runs;
  rf->nruns = nr;
  return n;
}

/* A row without a reference to move: its unmoved copies only, where they
** are half of its open key blocks (a row of them is classified block by
** block, not a decided group at a time), or NULL. */
static const blk_ref *unmoved_only(worker *w, blk_rw *rw, int qb) {
  rw->ref = (blk_ref){0};
  int64_t n = w->j->reuse_cls ? 0 : unmoved(w, rw, qb, &rw->ref);
  return n && 2 * n >= open_below(w, w->j->nk) ? &rw->ref : NULL;
}

const blk_ref *blk_reuse_ref(worker *w, int qb) {
  const job *j = w->j;
  const blk_reuse *ru = j->ru;
  blk_rw *rw = rw_of(w);
  if (!rw) return NULL;
  const blk_rrow *best = NULL;
  const kneed *bk = NULL;
  int64_t cost = 0;
  int bd = 0;
  const int64_t *qa = ru->qa;
  /* Of the rows the query block is a moved copy of, the one that leaves
  ** the fewest key blocks to classify where the super row decided nothing. */
  for (int i = 0; i < ru->ndist; i++) {
    int d = ru->dist[i], dq = qdist(j, d);
    if (qb < dq || !same_moved(j, 0, qb, qb - dq, NULL)) continue;
    for (int v = 0; v < j->nqv; v++) rw->delta[v] = qa[(int64_t)qb * j->nqv + v] - qa[(int64_t)(qb - dq) * j->nqv + v];
    /* Only the distance's own shift: its key blocks move by it, few by
    ** any other, and a mask costs a pass over every key block. */
    int same = 1;
    for (int v = 0; v < j->nkv && same; v++) {
      int pq = ru->sh.k[v];
      same = ru->dk[i * j->nkv + v] == (pq >= 0 ? rw->delta[pq] : 0);
    }
    const blk_rrow *r = same ? hold(w, rw, qb - dq) : NULL;
    if (!r) continue;
    const kneed *k = need_for(w, rw, d, rw->delta);
    int64_t c = 0;
    for (int n = 0; k && n < k->nruns; n++) c += open_below(w, k->runs[2 * n + 1]) - open_below(w, k->runs[2 * n]);
    if (!k || (bk && c >= cost)) {
      let_go(rw, r);
      continue;
    }
    if (best) let_go(rw, best);
    best = r;
    bk = k;
    cost = c;
    bd = d;
  }
  /* A row copies where it leaves at most half of its open key blocks (in
  ** super-blocks its super row left undecided) to classify; copying
  ** classes only, an entry copied costs about what classifying a key
  ** block does, and the copy must save half (svg's rows copied more
  ** entries than they had open blocks). A worker that has taken none of
  ** its first TRIES candidates builds whole rows from then on, and keeps
  ** none. */
  if (!best) return unmoved_only(w, rw, qb);
  rw->tried++;
  int64_t open = open_below(w, j->nk);
  if (j->reuse_cls ? 2 * cost + best->n > open : 2 * cost > open) {
    let_go(rw, best);
    rw->off = rw->tried >= TRIES && !rw->taken;
    return rw->off ? NULL : unmoved_only(w, rw, qb);
  }
  rw->taken++;
  rw->ref = (blk_ref){.d = bd, .row = best, .need = bk->need, .gneed = bk->gneed, .runs = bk->runs,
                      .nruns = bk->nruns};
  if (!j->reuse_cls) unmoved(w, rw, qb, &rw->ref);
  return &rw->ref;
}

/* A row's record is dropped past MOST entries (or a quarter of its key
** blocks): RING rows of every key block would hold tens of megabytes at
** small blocks. */
blk_rrow *blk_reuse_begin(worker *w, int qb) {
  blk_rw *rw = rw_of(w);
  if (!rw || rw->off) return NULL;
  /* A slot whose row someone holds, or writes (the row SLOTS on: a worker
  ** that far ahead), is left alone; this row then goes unkept. */
  rslot *s = &w->j->ru->slot[qb % SLOTS];
  uint64_t x = atomic_load_explicit(&s->st, memory_order_relaxed);
  do
    if (x & LOW) return NULL;
  while (!atomic_compare_exchange_weak_explicit(&s->st, &x, (uint64_t)(qb + 1) << 32 | 1, memory_order_acquire,
                                                memory_order_relaxed));
  blk_rrow *r = &s->r;
  r->owner = (int)(w - w->j->w);
  r->n = 0;
  r->most = w->j->nk / 4 > MOST ? w->j->nk / 4 : MOST;
  rw->held[0] = rw->held[1] = NULL;
  return r;
}

void blk_reuse_end(worker *w, blk_rrow *r, int qb) {
  blk_rw *rw = w->rw;
  while (rw->held[0]) let_go(rw, rw->held[0]);
  atomic_store_explicit(&slot_of(r)->st, w->fail || r->most < 0 ? 0 : (uint64_t)(qb + 1) << 32, memory_order_release);
}

/* Room for m more entries of r, or NULL: out of memory (w->fail), or
** past r->most, when the row is not kept and entries are written over
** the first ones. */
blk_rent *blk_rrow_add(worker *w, blk_rrow *r, int64_t m) {
  if (r->most < 0 || r->n + m > r->most) {
    r->most = -1;
    r->n = 0;
    if (m > r->cap) return NULL;
    return r->e;
  }
  if (r->n + m > r->cap) {
    int64_t nc = r->cap ? r->cap : 1024;
    while (nc < r->n + m) nc *= 2;
    blk_rent *e = realloc(r->e, sizeof(blk_rent) * (size_t)nc);
    if (!e) {
      w->fail = 1;
      return NULL;
    }
    r->e = e;
    r->cap = nc;
  }
  r->n += m;
  return r->e + r->n - m;
}

/* Signature (dec, val) as a small number, so that an entry holds it in
** place of a memo entry: a table has a few hundred at most. -1: out of
** memory (w->fail). */
int32_t blk_reuse_sig(worker *w, uint64_t dec, uint64_t val) {
  blk_rw *rw = w->rw;
  if ((uint32_t)(rw->nsig + 1) * 2 > rw->smask + 1 || !rw->slot) {
    uint32_t cap = rw->slot ? (rw->smask + 1) * 2 : 256;
    int32_t *sl = malloc(sizeof(int32_t) * cap);
    if (!sl) {
      w->fail = 1;
      return -1;
    }
    memset(sl, 0xff, sizeof(int32_t) * cap);
    for (int32_t i = 0; i < rw->nsig; i++) {
      uint32_t h = (uint32_t)blk_mix(rw->sig[2 * i], rw->sig[2 * i + 1]) & (cap - 1);
      while (sl[h] >= 0) h = (h + 1) & (cap - 1);
      sl[h] = i;
    }
    free(rw->slot);
    rw->slot = sl;
    rw->smask = cap - 1;
  }
  uint32_t h = (uint32_t)blk_mix(dec, val) & rw->smask;
  for (; rw->slot[h] >= 0; h = (h + 1) & rw->smask)
    if (rw->sig[2 * rw->slot[h]] == dec && rw->sig[2 * rw->slot[h] + 1] == val) return rw->slot[h];
  if (rw->nsig == rw->capsig) {
    int32_t nc = rw->capsig ? rw->capsig * 2 : 64;
    uint64_t *x = realloc(rw->sig, sizeof(uint64_t) * 2 * (size_t)nc);
    if (x) rw->sig = x;
    uint64_t *f = x ? realloc(rw->qlive, sizeof(uint64_t) * (size_t)nc) : NULL;
    if (!f) {
      w->fail = 1;
      return -1;
    }
    rw->qlive = f;
    rw->capsig = nc;
  }
  rw->sig[2 * rw->nsig] = dec;
  rw->sig[2 * rw->nsig + 1] = val;
  rw->qlive[rw->nsig] = ~0ull;
  rw->slot[h] = rw->nsig;
  return rw->nsig++;
}

void blk_reuse_sig_at(const worker *w, int32_t id, uint64_t *dec, uint64_t *val) {
  *dec = w->rw->sig[2 * id];
  *val = w->rw->sig[2 * id + 1];
}

void blk_rw_free(blk_rw *rw) {
  if (!rw) return;
  free(rw->sig);
  free(rw->slot);
  for (int i = 0; i < NEEDS; i++) {
    free(rw->kn[i].delta);
    free(rw->kn[i].need);
    free(rw->kn[i].gneed);
    free(rw->kn[i].runs);
  }
  free(rw->delta);
  free(rw->qlive);
  free(rw->qf);
  free(rw->qfl);
  free(rw->nqf);
  free(rw->sqiv);
  free(rw->need);
  free(rw->gneed);
  free(rw->runs);
  free(rw);
}
