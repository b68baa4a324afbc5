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
** exact checks then settle them. A worker keeps the rows it built in
** RING slots (row qb in slot qb % RING, so rows up to RING back) and the
** key masks of the last NEEDS (distance, shift) pairs. Tables with bits
** copy a row's results whole: their memo never turns itself off. Tables
** without copy its interval classes and signatures only and settle the
** undecided blocks as a fresh row does, so their memo sees the lookups it
** would have seen and judges its hit rate as before.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

#define RING 256   /* rows a worker keeps: the farthest reference */
#define NEEDS 8    /* key masks a worker keeps; more than DISTS, so a row's best survives its others */
#define MOST 2048  /* entries a kept row may have, at least */
#define DISTS 6    /* distances a row tries */
#define SAMPLE 8   /* every SAMPLE-th key block judges a distance */
#define TRIES 16   /* rows with a reference a worker sees before it may give up on them */
#define VMAX (1ll << 58)

struct blk_reuse {
  blk_shift sh;          /* translation pairs of the whole QK phase */
  uint64_t *qsig, *ksig; /* per block, [nb][2]; both words 0: never reused */
  int64_t *qa, *ka;      /* per block and interface, [nb][nv]: its interval's low end where
                         ** the interface is paired (it moves), 0 where it must be equal */
  int dist[DISTS], ndist; /* the distances rows look back by, */
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
  blk_rrow ring[RING]; /* row qb in slot qb % RING */
  kneed kn[NEEDS];
  uint64_t tick;
  int64_t *delta;
  blk_ref ref;
  uint64_t *sig;       /* distinct signatures (dec, val): [nsig][2], found through slot */
  int32_t *slot, nsig, capsig;
  uint32_t smask;
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

/*
** The distances worth looking back by: those at which most key blocks
** (of a sample) are the block that far before, moved by one shift (a
** majority vote finds it). A radial mask on an identity layout at
** hunyuan-720p gets 5 (four token rows on) and 225 (four frames on)
** among them; each row then takes whichever leaves it the least to
** classify, at its distance's shift only.
*/
static int distances(const job *j, blk_reuse *ru) {
  int score[DISTS] = {0}, top = j->nq < RING ? j->nq : RING;
  size_t sz = sizeof(int64_t) * (size_t)(j->nkv ? j->nkv : 1);
  int64_t *cand = malloc(sz), *x = malloc(sz);
  ru->dk = malloc(sz * DISTS);
  if (!cand || !x || !ru->dk) {
    free(cand);
    free(x);
    return -1;
  }
  for (int d = 1; d < top && d < j->nk; d++) {
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
  if (!ru->qsig || !ru->ksig || !ru->qa || !ru->ka) return -1;
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

/* Key blocks below x that lie in super-blocks the row's super row left
** undecided (upre: such super-blocks before each one). */
static int64_t open_below(const worker *w, int x) {
  int s = x / SUPER;
  return (int64_t)w->upre[s] * SUPER + (s < w->j->nsk && w->scls[s] == CG_BLK_UNDECIDED ? x % SUPER : 0);
}

const blk_ref *blk_reuse_ref(worker *w, int qb) {
  const job *j = w->j;
  const blk_reuse *ru = j->ru;
  blk_rw *rw = rw_of(w);
  if (!rw) return NULL;
  const blk_rrow *best = NULL;
  const kneed *bk = NULL;
  int64_t cost = 0;
  const int64_t *qa = ru->qa;
  /* Of the rows the query block is a moved copy of, the one that leaves
  ** the fewest key blocks to classify where the super row decided nothing. */
  for (int i = 0; i < ru->ndist; i++) {
    int d = ru->dist[i];
    if (qb < d) continue;
    const blk_rrow *r = &rw->ring[(qb - d) % RING];
    if (r->qb != qb - d || !same_moved(j, 0, qb, r->qb, NULL)) continue;
    for (int v = 0; v < j->nqv; v++) rw->delta[v] = qa[(int64_t)qb * j->nqv + v] - qa[(int64_t)r->qb * j->nqv + v];
    /* Only the distance's own shift: its key blocks move by it, few by
    ** any other, and a mask costs a pass over every key block. */
    int same = 1;
    for (int v = 0; v < j->nkv && same; v++) {
      int pq = ru->sh.k[v];
      same = ru->dk[i * j->nkv + v] == (pq >= 0 ? rw->delta[pq] : 0);
    }
    if (!same) continue;
    const kneed *k = need_for(w, rw, d, rw->delta);
    if (!k) continue;
    int64_t c = 0;
    for (int n = 0; n < k->nruns; n++) c += open_below(w, k->runs[2 * n + 1]) - open_below(w, k->runs[2 * n]);
    if (!bk || c < cost) {
      best = r;
      bk = k;
      cost = c;
    }
  }
  /* A row copies where it leaves at most half of its open key blocks (in
  ** super-blocks its super row left undecided) to classify; copying
  ** classes only, an entry copied costs about what classifying a key
  ** block does, and the copy must save half (svg's rows copied more
  ** entries than they had open blocks). A worker that has taken none of
  ** its first TRIES candidates builds whole rows from then on, and keeps
  ** none. */
  if (!best) return NULL;
  rw->tried++;
  int64_t open = open_below(w, j->nk);
  if (j->reuse_cls ? 2 * cost + best->n > open : 2 * cost > open) {
    rw->off = rw->tried >= TRIES && !rw->taken;
    return NULL;
  }
  rw->taken++;
  rw->ref = (blk_ref){.d = qb - best->qb, .row = best, .need = bk->need, .gneed = bk->gneed, .runs = bk->runs,
                      .nruns = bk->nruns};
  return &rw->ref;
}

/* A row's record is dropped past MOST entries (or a quarter of its key
** blocks): RING rows of every key block would hold tens of megabytes at
** small blocks. */
blk_rrow *blk_reuse_begin(worker *w, int qb) {
  blk_rw *rw = rw_of(w);
  if (!rw || rw->off) return NULL;
  blk_rrow *r = &rw->ring[qb % RING];
  r->qb = -1;
  r->n = 0;
  r->most = w->j->nk / 4 > MOST ? w->j->nk / 4 : MOST;
  return r;
}

void blk_reuse_end(worker *w, blk_rrow *r, int qb) { r->qb = w->fail || r->most < 0 ? -1 : qb; }

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
    if (!x) {
      w->fail = 1;
      return -1;
    }
    rw->sig = x;
    rw->capsig = nc;
  }
  rw->sig[2 * rw->nsig] = dec;
  rw->sig[2 * rw->nsig + 1] = val;
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
