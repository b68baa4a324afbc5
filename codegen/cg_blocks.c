/*
** Block tables. For each distinct (layout, mask with head/step/layer fixed)
** one table: every (query block, key block) pair is classified by interval
** evaluation over the blocks' coordinate boxes, and the undecided pairs are
** counted exactly.
**
** Exact counting is what makes density exact, and it stays cheap because
** a block pair rarely needs all its token pairs:
**   - a mask reads few coordinates (a frame window only t and text), so
**     consecutive tokens share their interface values (cg_eval.h) and a
**     block is a few runs;
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
**
** Rows of a table are spread over threads; each row's lists are written by
** one thread and stitched into CSR form afterwards.
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime, sysconf */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cg_blocks.h"
#include "cg_interval.h"

#define ROWS_PER_GRAB 4
#define MAX_THREADS 16

/* -------------------------------------------------------------- layouts */

#define MICRO 8  /* tokens per micro-block, the unit of a block pair's second look */

/* One distinct layout: the token at each position, and the boxes of the
** blocks and of the micro-blocks. */
typedef struct lay {
  cg_layout l;
  cg_coords c;
  cg_box *qbox, *kbox, *mbox;
  int nm;
} lay;

static void box_blocks(const cg_coords *c, int64_t bsz, int nb, cg_box *out) {
  for (int b = 0; b < nb; b++) {
    int64_t p0 = b * bsz, p1 = p0 + bsz < c->n ? p0 + bsz : c->n;
    const int32_t *v[CG_IN_POS] = {c->t, c->y, c->x, c->text, c->idx};
    for (int i = 0; i < CG_IN_POS; i++) {
      int64_t lo = v[i][p0], hi = v[i][p0];
      for (int64_t p = p0 + 1; p < p1; p++) {
        lo = v[i][p] < lo ? v[i][p] : lo;
        hi = v[i][p] > hi ? v[i][p] : hi;
      }
      out[b].v[i] = (cg_ival){lo, hi};
    }
    out[b].v[CG_IN_POS] = (cg_ival){p0, p1 - 1};
  }
}

/* Blocks made of whole micro-blocks: the hull of their boxes. */
static void box_from_micro(const cg_box *m, int nm, int64_t bsz, int nb, cg_box *out) {
  int per = (int)(bsz / MICRO);
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
  if (bsz % MICRO == 0) box_from_micro(L->mbox, L->nm, bsz, nb, out);
  else box_blocks(&L->c, bsz, nb, out);
}

static int same_layout(const cg_layout *a, const cg_layout *b) {
  if (a->kind != b->kind) return 0;
  return a->kind != CG_LAYOUT_TILE || !memcmp(a->tile, b->tile, sizeof a->tile);
}

static void lay_free(lay *L) {
  cg_coords_free(&L->c);
  free(L->qbox);
  free(L->kbox);
  free(L->mbox);
}

static int lay_init(lay *L, const cg_layout *l, const sieve_shape *s, const cg_tableset *t) {
  memset(L, 0, sizeof *L);
  L->l = *l;
  if (cg_layout_enum(l, s, &L->c)) return -1;
  L->nm = (int)((t->seq + MICRO - 1) / MICRO);
  L->qbox = malloc(sizeof(cg_box) * (size_t)t->nq);
  L->kbox = malloc(sizeof(cg_box) * (size_t)t->nk);
  L->mbox = malloc(sizeof(cg_box) * (size_t)L->nm);
  if (!L->qbox || !L->kbox || !L->mbox) return -1;
  box_blocks(&L->c, MICRO, L->nm, L->mbox);
  boxes(L, t->block_q, t->nq, L->qbox);
  boxes(L, t->block_k, t->nk, L->kbox);
  return 0;
}

/* ----------------------------------------------------------------- runs */

/*
** Runs of tokens with equal interfaces inside each block: a block pair is
** evaluated once per (query run, key run), weighted by the runs' lengths.
*/
typedef struct runs {
  int64_t *off;  /* [nb + 1]: the first run of each block */
  int64_t *v;    /* [nv][n]: each run's interface values */
  int64_t *w;    /* [n]: each run's length */
  int64_t n;     /* runs in all */
} runs;

static void runs_free(runs *r) {
  free(r->off);
  free(r->v);
  free(r->w);
}

/*
** One pass over the tokens of a side, a chunk at a time: counts the runs,
** and when r->v is allocated, records them. Interface values are computed
** as the pass goes rather than kept per token, which would cost S * nv
** int64s of memory for every table.
*/
static void scan_runs(runs *r, const cg_prog *p, int key_side, const cg_coords *c, int64_t bsz,
                      int64_t *buf, int64_t *prev, cg_scratch *s) {
  int nv = key_side ? cg_prog_nkv(p) : cg_prog_nqv(p);
  int64_t i = -1;
  for (int64_t o = 0; o < c->n; o += CG_CHUNK) {
    int64_t len = c->n - o < CG_CHUNK ? c->n - o : CG_CHUNK;
    cg_prog_side(p, key_side, c, o, len, buf, CG_CHUNK, s);
    for (int64_t t = 0; t < len; t++) {
      int64_t pos = o + t;
      int st = pos % bsz == 0;
      for (int j = 0; j < nv; j++) {
        st |= buf[j * CG_CHUNK + t] != prev[j];
        prev[j] = buf[j * CG_CHUNK + t];
      }
      if (st) {
        i++;
        if (!r->v) continue;
        if (pos % bsz == 0) r->off[pos / bsz] = i;
        for (int j = 0; j < nv; j++) r->v[j * r->n + i] = prev[j];
        r->w[i] = 0;
      }
      if (r->v) r->w[i]++;
    }
  }
  if (!r->v) r->n = i + 1;
}

static int runs_build(runs *r, const cg_prog *p, int key_side, const cg_coords *c, int64_t bsz, int nb,
                      cg_scratch *s) {
  int nv = key_side ? cg_prog_nkv(p) : cg_prog_nqv(p);
  size_t n = (size_t)(nv ? nv : 1);
  int64_t *buf = malloc(sizeof(int64_t) * n * CG_CHUNK), *prev = calloc(n, sizeof(int64_t));
  r->off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
  int ok = buf && prev && r->off;
  if (ok) {
    scan_runs(r, p, key_side, c, bsz, buf, prev, s);
    r->v = malloc(sizeof(int64_t) * (size_t)r->n * n);
    r->w = malloc(sizeof(int64_t) * (size_t)r->n);
    ok = r->v && r->w;
  }
  if (ok) {
    scan_runs(r, p, key_side, c, bsz, buf, prev, s);
    r->off[nb] = r->n;
  }
  free(buf);
  free(prev);
  return ok ? 0 : -1;
}

/* ----------------------------------------------------------- table jobs */

#define PAIR_LANES 1024  /* (query tuple, key tuple) pairs per evaluation, at least */

typedef struct job job;

/* Where a row's lists were written. */
typedef struct rowres {
  int w;
  int64_t foff, poff;
  int nf, np;
} rowres;

#define SPEC_CACHE 32

typedef struct spec_entry {
  uint64_t dec, val;
  cg_spec *sp;
} spec_entry;

/* Interface tuples with their token counts: value j of tuple i is v[j * ld + i]. */
typedef struct tuples {
  int64_t *v, *w, ld, n;
} tuples;

/* A hash set of tuple indices, emptied by bumping the stamp. */
typedef struct dedup {
  int32_t *slot;
  uint32_t *gen, stamp, mask;
} dedup;

typedef struct worker {
  job *j;
  cg_scratch *s;
  cg_iscratch *is;
  int32_t *full, *part;
  int64_t nfull, npart, capf, capp;
  uint8_t *cls;          /* interval class per distinct key block (kmap) of the current row */
  cg_ival *qrow, *prev;  /* this row's query interfaces; those cls was made for */
  int have_prev;
  uint64_t *dec, *val;   /* per distinct key block: QK instructions the intervals decide */
  spec_entry spec[SPEC_CACHE];
  int nspec;
  int64_t *ql, *kl, *out; /* lanes: [nqv][lanes], [nkv][lanes], [lanes] */
  int64_t lanes;
  dedup h;
  /* Distinct tuples of the current query block, for (qb, qlive); of each
  ** key block, laid out like j->kr, for kl_live[kb] when kl_ok[kb]. */
  tuples tq, tk;
  int tq_qb;
  uint64_t tq_live;
  int64_t *tk_n;
  uint64_t *tk_live;
  uint8_t *tk_ok;
  uint8_t *mcls;         /* interval class per key micro-block */
  int64_t *tokq, *tokk;  /* a micro-block's interfaces: [nqv][MICRO], [nkv][MICRO] */
  int64_t st[7];         /* interval full/empty/undecided, refined full/empty/partial, allowed */
  int fail;
} worker;

struct job {
  const cg_prog *prog;
  const lay *L;
  int64_t S;
  int bq, bk, nq, nk, nqv, nkv;
  runs qr, kr;
  cg_ival *qiv, *kiv;    /* interfaces per block: [nqv][nq], [nkv][nkr] */
  int nkr;               /* key blocks with distinct interfaces in a row... */
  int32_t *kmap;         /* ...and which of them each key block is */
  int micro;             /* blocks split into micro-blocks (sizes are multiples of MICRO) */
  cg_ival *qmiv, *kmiv;  /* interfaces per micro-block: [nqv][nm], [nkv][nm] */
  atomic_int next;
  rowres *rows;
  worker *w;
  int nw;
};

enum { ST_IFULL, ST_IEMPTY, ST_IUND, ST_RFULL, ST_REMPTY, ST_RPART, ST_ALLOWED };

static int push(int32_t **v, int64_t *n, int64_t *cap, int32_t x) {
  if (*n == *cap) {
    int64_t nc = *cap ? *cap * 2 : 1024;
    int32_t *nv = realloc(*v, sizeof(int32_t) * (size_t)nc);
    if (!nv) return -1;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = x;
  return 0;
}

/* ---------------------------------------------------------- refinement */

/* The phase specialised to what intervals decided on this pair, cached
** per worker; NULL (the full phase) when out of memory. */
static const cg_spec *spec_for(worker *w, uint64_t dec, uint64_t val) {
  for (int i = 0; i < w->nspec; i++)
    if (w->spec[i].dec == dec && w->spec[i].val == val) return w->spec[i].sp;
  if (w->nspec == SPEC_CACHE) {
    for (int i = 0; i < w->nspec; i++) cg_spec_free(w->spec[i].sp);
    w->nspec = 0;
  }
  cg_spec *sp = cg_spec_new(w->j->prog, dec, val);
  if (sp) w->spec[w->nspec++] = (spec_entry){dec, val, sp};
  return sp;
}

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
  const job *j = w->j;
  int nm = j->L->nm;
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO, total = 0;
  for (int64_t mq = q0 / MICRO; mq < (q1 + MICRO - 1) / MICRO; mq++) {
    int64_t a0 = mq * MICRO, a1 = a0 + MICRO < q1 ? a0 + MICRO : q1;
    for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->qmiv[(int64_t)v * nm + mq];
    cg_ival_row(j->prog, w->qrow, j->kmiv + m0, nm, (int)(m1 - m0), w->mcls, w->is);
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
static int64_t refine(worker *w, int qb, int kb, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  const job *j = w->j;
  int64_t mq = j->qr.off[qb + 1] - j->qr.off[qb], mk = j->kr.off[kb + 1] - j->kr.off[kb];
  const cg_spec *sp = spec_for(w, w->dec[j->kmap[kb]], w->val[j->kmap[kb]]);
  if (j->micro && mq * mk > 4 * PAIR_LANES) return refine_micro(w, q0, q1, k0, k1);
  const tuples *q = query_tuples(w, qb, sp ? sp->qlive : ~0ull);
  tuples k = key_tuples(w, kb, sp ? sp->klive : ~0ull);
  return cross(w, sp, q, &k);
}

/* Interval classes of a row; reused while the query interfaces repeat. */
static void row_classes(worker *w, int qb) {
  const job *j = w->j;
  for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->qiv[(int64_t)v * j->nq + qb];
  size_t sz = sizeof(cg_ival) * (size_t)j->nqv;
  if (w->have_prev && !memcmp(w->qrow, w->prev, sz)) return;
  cg_ival_row_sig(j->prog, w->qrow, j->kiv, j->nkr, j->nkr, w->cls, w->dec, w->val, w->is);
  memcpy(w->prev, w->qrow, sz);
  w->have_prev = 1;
}

static void do_row(worker *w, int qb) {
  const job *j = w->j;
  rowres *r = &j->rows[qb];
  r->w = (int)(w - j->w);
  r->foff = w->nfull;
  r->poff = w->npart;
  row_classes(w, qb);
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  for (int kb = 0; kb < j->nk; kb++) {
    int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
    int64_t all = (q1 - q0) * (k1 - k0), n = 0;
    int c = w->cls[j->kmap[kb]];
    if (c == CG_BLK_FULL) {
      w->st[ST_IFULL]++;
      n = all;
    } else if (c == CG_BLK_EMPTY) {
      w->st[ST_IEMPTY]++;
    } else {
      w->st[ST_IUND]++;
      n = refine(w, qb, kb, q0, q1, k0, k1);
      w->st[n == 0 ? ST_REMPTY : n == all ? ST_RFULL : ST_RPART]++;
    }
    w->st[ST_ALLOWED] += n;
    if (n == all) w->fail |= push(&w->full, &w->nfull, &w->capf, kb);
    else if (n) w->fail |= push(&w->part, &w->npart, &w->capp, kb);
  }
  r->nf = (int)(w->nfull - r->foff);
  r->np = (int)(w->npart - r->poff);
}

static void *work(void *arg) {
  worker *w = arg;
  job *j = w->j;
  for (;;) {
    int r0 = atomic_fetch_add(&j->next, ROWS_PER_GRAB);
    if (r0 >= j->nq || w->fail) break;
    int r1 = r0 + ROWS_PER_GRAB < j->nq ? r0 + ROWS_PER_GRAB : j->nq;
    for (int qb = r0; qb < r1; qb++) do_row(w, qb);
  }
  return NULL;
}

/* --------------------------------------------------------- job lifetime */

static int dedup_init(dedup *h, int64_t n) {
  uint32_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  h->mask = cap - 1;
  h->slot = malloc(sizeof(int32_t) * cap);
  h->gen = calloc(cap, sizeof(uint32_t));
  return h->slot && h->gen ? 0 : -1;
}

/* Tuple buffers: the query block's, and the key blocks' laid out like kr. */
static int tuples_init(worker *w, const job *j) {
  size_t nqv = (size_t)(j->nqv ? j->nqv : 1), nkv = (size_t)(j->nkv ? j->nkv : 1);
  size_t bq = (size_t)j->bq, nk = (size_t)j->kr.n;
  w->tq = (tuples){malloc(sizeof(int64_t) * nqv * bq), malloc(sizeof(int64_t) * bq), j->bq, 0};
  w->tk = (tuples){malloc(sizeof(int64_t) * nkv * nk), malloc(sizeof(int64_t) * nk), j->kr.n, 0};
  w->tq_qb = -1;
  w->tk_n = malloc(sizeof(int64_t) * (size_t)j->nk);
  w->tk_live = malloc(sizeof(uint64_t) * (size_t)j->nk);
  w->tk_ok = calloc((size_t)j->nk, 1);
  int64_t most = j->bq > j->bk ? j->bq : j->bk;
  if (dedup_init(&w->h, most)) return -1;
  return w->tq.v && w->tq.w && w->tk.v && w->tk.w && w->tk_n && w->tk_live && w->tk_ok ? 0 : -1;
}

static int worker_init(worker *w, job *j) {
  memset(w, 0, sizeof *w);
  w->j = j;
  w->s = cg_scratch_new(j->prog);
  w->is = cg_iscratch_new(j->prog);
  size_t nqv = (size_t)(j->nqv ? j->nqv : 1), nkv = (size_t)(j->nkv ? j->nkv : 1);
  w->lanes = j->bk > PAIR_LANES ? j->bk : PAIR_LANES;
  w->cls = malloc((size_t)j->nk);
  w->dec = malloc(sizeof(uint64_t) * (size_t)j->nk);
  w->val = malloc(sizeof(uint64_t) * (size_t)j->nk);
  w->qrow = malloc(sizeof(cg_ival) * nqv);
  w->prev = malloc(sizeof(cg_ival) * nqv);
  w->ql = malloc(sizeof(int64_t) * nqv * (size_t)w->lanes);
  w->kl = malloc(sizeof(int64_t) * nkv * (size_t)w->lanes);
  w->out = malloc(sizeof(int64_t) * (size_t)w->lanes);
  w->mcls = malloc((size_t)(j->bk / MICRO + 2));
  w->tokq = malloc(sizeof(int64_t) * nqv * MICRO);
  w->tokk = malloc(sizeof(int64_t) * nkv * MICRO);
  if (tuples_init(w, j)) return -1;
  return w->s && w->is && w->cls && w->dec && w->val && w->qrow && w->prev && w->ql && w->kl &&
                 w->out && w->mcls && w->tokq && w->tokk
             ? 0 : -1;
}

static void worker_free(worker *w) {
  cg_scratch_free(w->s);
  cg_iscratch_free(w->is);
  for (int i = 0; i < w->nspec; i++) cg_spec_free(w->spec[i].sp);
  free(w->h.slot);
  free(w->h.gen);
  free(w->tq.v);
  free(w->tq.w);
  free(w->tk.v);
  free(w->tk.w);
  free(w->tk_n);
  free(w->tk_live);
  free(w->tk_ok);
  free(w->full);
  free(w->part);
  free(w->cls);
  free(w->dec);
  free(w->val);
  free(w->qrow);
  free(w->prev);
  free(w->ql);
  free(w->kl);
  free(w->out);
  free(w->mcls);
  free(w->tokq);
  free(w->tokk);
}

static void job_free(job *j) {
  for (int i = 0; j->w && i < j->nw; i++) worker_free(&j->w[i]);
  free(j->w);
  runs_free(&j->qr);
  runs_free(&j->kr);
  free(j->qiv);
  free(j->kiv);
  free(j->kmap);
  free(j->qmiv);
  free(j->kmiv);
  free(j->rows);
}

static int thread_count(int nq) {
  const char *env = getenv("SIEVE_THREADS");
  long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (n > MAX_THREADS) n = MAX_THREADS;
  if (n > nq / ROWS_PER_GRAB) n = nq / ROWS_PER_GRAB;
  return n < 1 ? 1 : (int)n;
}

/* One side's interfaces per micro-block, and its runs. */
static int side_prepare(job *j, int key_side, cg_scratch *s, cg_iscratch *is) {
  int nv = key_side ? j->nkv : j->nqv, bsz = key_side ? j->bk : j->bq, nb = key_side ? j->nk : j->nq;
  cg_ival *miv = malloc(sizeof(cg_ival) * (size_t)j->L->nm * (size_t)(nv ? nv : 1));
  *(key_side ? &j->kmiv : &j->qmiv) = miv;
  if (!miv) return -1;
  cg_ival_side(j->prog, key_side, j->L->mbox, j->L->nm, miv, j->L->nm, is);
  return runs_build(key_side ? &j->kr : &j->qr, j->prog, key_side, &j->L->c, bsz, nb, s);
}

/*
** Consecutive key blocks with equal interface intervals classify alike in
** every row: each row evaluates them once. Compacts j->kiv in place.
*/
static void merge_key_blocks(job *j) {
  int n = 0;
  for (int kb = 0; kb < j->nk; kb++) {
    int same = n > 0;
    for (int v = 0; v < j->nkv && same; v++) {
      const cg_ival *a = &j->kiv[(int64_t)v * j->nk + kb], *b = &j->kiv[(int64_t)v * j->nk + n - 1];
      same = a->lo == b->lo && a->hi == b->hi;
    }
    if (!same) {
      for (int v = 0; v < j->nkv; v++) j->kiv[(int64_t)v * j->nk + n] = j->kiv[(int64_t)v * j->nk + kb];
      n++;
    }
    j->kmap[kb] = n - 1;
  }
  /* Close the rows up to the new stride. */
  for (int v = 1; v < j->nkv; v++)
    memmove(j->kiv + (int64_t)v * n, j->kiv + (int64_t)v * j->nk, sizeof(cg_ival) * (size_t)n);
  j->nkr = n;
}

/* Everything a row needs, computed once per table. */
static int job_prepare(job *j) {
  cg_scratch *s = cg_scratch_new(j->prog);
  cg_iscratch *is = cg_iscratch_new(j->prog);
  j->qiv = malloc(sizeof(cg_ival) * (size_t)j->nq * (size_t)(j->nqv ? j->nqv : 1));
  j->kiv = malloc(sizeof(cg_ival) * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  j->rows = calloc((size_t)j->nq, sizeof(rowres));
  j->kmap = malloc(sizeof(int32_t) * (size_t)j->nk);
  j->micro = j->bq % MICRO == 0 && j->bk % MICRO == 0;
  int ok = s && is && j->qiv && j->kiv && j->rows && j->kmap;
  ok = ok && !side_prepare(j, 0, s, is) && !side_prepare(j, 1, s, is);
  if (ok) {
    cg_ival_side(j->prog, 0, j->L->qbox, j->nq, j->qiv, j->nq, is);
    cg_ival_side(j->prog, 1, j->L->kbox, j->nk, j->kiv, j->nk, is);
    merge_key_blocks(j);
  }
  cg_scratch_free(s);
  cg_iscratch_free(is);
  return ok ? 0 : -1;
}

static int job_run(job *j) {
  j->nw = thread_count(j->nq);
  j->w = calloc((size_t)j->nw, sizeof(worker));
  if (!j->w) return -1;
  for (int i = 0; i < j->nw; i++)
    if (worker_init(&j->w[i], j)) return -1;
  atomic_init(&j->next, 0);
  pthread_t th[MAX_THREADS];
  int started = 0;
  for (int i = 1; i < j->nw; i++, started++)
    if (pthread_create(&th[i], NULL, work, &j->w[i])) break;
  work(&j->w[0]);
  for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < j->nw; i++)
    if (j->w[i].fail) return -1;
  return 0;
}

/* ------------------------------------------------------------- assembly */

static int32_t *csr(cg_arena *a, const job *j, int full, int32_t **idx, int64_t *total) {
  int32_t *ptr = cg_alloc(a, sizeof(int32_t) * (size_t)(j->nq + 1));
  int64_t n = 0;
  for (int qb = 0; qb < j->nq; qb++) n += full ? j->rows[qb].nf : j->rows[qb].np;
  *idx = cg_alloc(a, sizeof(int32_t) * (size_t)(n ? n : 1));
  if (!ptr || !*idx) return NULL;
  n = 0;
  for (int qb = 0; qb < j->nq; qb++) {
    const rowres *r = &j->rows[qb];
    const worker *w = &j->w[r->w];
    int cnt = full ? r->nf : r->np;
    /* A worker that found no block of a kind has no list to copy from. */
    if (cnt) memcpy(*idx + n, full ? w->full + r->foff : w->part + r->poff, sizeof(int32_t) * (size_t)cnt);
    ptr[qb] = (int32_t)n;
    n += cnt;
  }
  ptr[j->nq] = (int32_t)n;
  *total = n;
  return ptr;
}

static int finish_table(cg_tableset *ts, cg_table *t, const job *j) {
  t->nq = j->nq;
  t->nk = j->nk;
  t->full_ptr = csr(ts->arena, j, 1, &t->full_idx, &t->nfull);
  t->part_ptr = csr(ts->arena, j, 0, &t->part_idx, &t->npart);
  if (!t->full_ptr || !t->part_ptr) return -1;
  t->nempty = (int64_t)j->nq * j->nk - t->nfull - t->npart;
  int64_t st[7] = {0};
  for (int i = 0; i < j->nw; i++)
    for (int k = 0; k < 7; k++) st[k] += j->w[i].st[k];
  t->allowed_pairs = st[ST_ALLOWED];
  ts->interval_full += st[ST_IFULL];
  ts->interval_empty += st[ST_IEMPTY];
  ts->interval_undecided += st[ST_IUND];
  ts->refined_full += st[ST_RFULL];
  ts->refined_empty += st[ST_REMPTY];
  ts->refined_partial += st[ST_RPART];
  return 0;
}

static sieve_status build_table(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, cg_err *e) {
  job j = {.L = L, .S = ts->seq, .bq = ts->block_q, .bk = ts->block_k, .nq = ts->nq, .nk = ts->nk};
  cg_prog *prog = cg_prog_new(g, t->mask);
  sieve_status st = SIEVE_ERR_NOMEM;
  if (prog) {
    cg_prog_bind(prog, 0, 0, 0); /* head, step and layer are constants in t->mask */
    j.prog = prog;
    j.nqv = cg_prog_nqv(prog);
    j.nkv = cg_prog_nkv(prog);
    if (!job_prepare(&j) && !job_run(&j) && !finish_table(ts, t, &j)) st = SIEVE_OK;
  }
  job_free(&j);
  cg_prog_free(prog);
  return st == SIEVE_OK ? SIEVE_OK : cg_fail(e, st, "out of memory building block tables");
}

/* ---------------------------------------------------------------- heads */

static sieve_status check_pattern(const cg_pattern *p, cg_err *e) {
  if (p->nclasses < 1 || p->period < 1 || !p->head_class)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s has no head classes", p->name ? p->name : "?");
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] < 0 || p->head_class[r] >= p->nclasses)
      return cg_fail(e, SIEVE_ERR_ARG, "head residue %d names class %d of %d", r, p->head_class[r],
                     p->nclasses);
  for (int c = 0; c < p->nclasses; c++) {
    const cg_layout *l = &p->classes[c].layout;
    if (l->kind == CG_LAYOUT_TILE && (l->tile[0] < 1 || l->tile[1] < 1 || l->tile[2] < 1))
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: tile sizes must be positive", p->classes[c].name);
    if (cg_type_of(p->g, p->classes[c].mask) != CG_BOOL)
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: the mask is not a boolean", p->classes[c].name);
  }
  return SIEVE_OK;
}

/* The table head h uses: an existing one with the same layout and fixed
** mask, or a new one. */
static int head_table(cg_pattern *p, cg_tableset *ts, int h) {
  int c = p->head_class[h % p->period];
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(p->g, h);
  map[CG_V_STEP] = cg_const(p->g, ts->step);
  map[CG_V_LAYER] = cg_const(p->g, ts->layer);
  cg_ref m = cg_subst(p->g, p->classes[c].mask, map);
  if (m == CG_NONE) return -1;
  for (int i = 0; i < ts->ntables; i++)
    if (ts->tables[i].mask == m && same_layout(&p->classes[ts->tables[i].cls].layout, &p->classes[c].layout))
      return i;
  cg_table *t = &ts->tables[ts->ntables];
  t->cls = c;
  t->mask = m;
  return ts->ntables++;
}

/* The mask over layout positions, as the kernel sees it. */
static int pos_mask(cg_pattern *p, const cg_tableset *ts, cg_table *t) {
  cg_ref qc[5], kc[5], map[CG_NVARS];
  const cg_layout *l = &p->classes[t->cls].layout;
  if (cg_layout_coords(p->g, l, &ts->shape, 0, qc) || cg_layout_coords(p->g, l, &ts->shape, 1, kc))
    return -1;
  const cg_var qv[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
  const cg_var kv[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  for (int i = 0; i < 5; i++) {
    map[qv[i]] = qc[i];
    map[kv[i]] = kc[i];
  }
  t->pos_mask = cg_subst(p->g, t->mask, map);
  return t->pos_mask == CG_NONE ? -1 : 0;
}

/* -------------------------------------------------------------- the build */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static sieve_status tableset_new(const cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                 cg_tableset **out, cg_err *e) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  sieve_status st = cg_shape_check(&s, e);
  if (st) return st;
  int bq = p->block_q > 0 ? p->block_q : 128, bk = p->block_k > 0 ? p->block_k : 128;
  if (bq > 65536 || bk > 65536) return cg_fail(e, SIEVE_ERR_ARG, "block sizes must be at most 65536");
  cg_arena *a = cg_arena_new();
  cg_tableset *ts = a ? cg_alloc(a, sizeof *ts) : NULL;
  if (!ts) {
    cg_arena_free(a);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  *ts = (cg_tableset){.arena = a, .shape = s, .step = step, .layer = layer, .block_q = bq, .block_k = bk};
  ts->seq = sieve_shape_tokens(&s);
  int64_t nq = (ts->seq + bq - 1) / bq, nk = (ts->seq + bk - 1) / bk;
  if (nq * nk > INT32_MAX) {
    cg_tables_free(ts);
    return cg_fail(e, SIEVE_ERR_SHAPE, "%lld x %lld block pairs: too many for 32-bit tables (larger blocks?)",
                   (long long)nq, (long long)nk);
  }
  ts->nq = (int)nq;
  ts->nk = (int)nk;
  ts->tables = cg_alloc(a, sizeof(cg_table) * (size_t)s.heads);
  ts->head_table = cg_alloc(a, sizeof(int) * (size_t)s.heads);
  if (!ts->tables || !ts->head_table) {
    cg_tables_free(ts);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  *out = ts;
  return SIEVE_OK;
}

static sieve_status build_all(cg_pattern *p, cg_tableset *ts, cg_err *e) {
  for (int h = 0; h < ts->shape.heads; h++)
    if ((ts->head_table[h] = head_table(p, ts, h)) < 0) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  lay *lays = calloc((size_t)ts->ntables, sizeof(lay));
  int nlays = 0;
  sieve_status st = lays ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int i = 0; !st && i < ts->ntables; i++) {
    cg_table *t = &ts->tables[i];
    const cg_layout *l = &p->classes[t->cls].layout;
    int k = 0;
    while (k < nlays && !same_layout(&lays[k].l, l)) k++;
    if (k == nlays && lay_init(&lays[nlays++], l, &ts->shape, ts))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else if (pos_mask(p, ts, t))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else
      st = build_table(ts, t, &lays[k], p->g, e);
  }
  for (int k = 0; k < nlays; k++) lay_free(&lays[k]);
  free(lays);
  return st;
}

sieve_status cg_tables_build(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                             cg_tableset **out, cg_err *e) {
  double t0 = now_ms();
  *out = NULL;
  sieve_status st = check_pattern(p, e);
  cg_tableset *ts = NULL;
  if (!st) st = tableset_new(p, shape, step, layer, &ts, e);
  if (!st) st = build_all(p, ts, e);
  if (st) {
    cg_tables_free(ts);
    return st;
  }
  ts->build_ms = now_ms() - t0;
  *out = ts;
  cg_err_clear(e);
  return SIEVE_OK;
}

void cg_tables_free(cg_tableset *t) {
  if (t) cg_arena_free(t->arena);
}

/* ------------------------------------------------------------------ pack */

sieve_status cg_tables_pack(const cg_tableset *t, int32_t **buf, size_t *n, int32_t *head_off,
                            cg_err *e) {
  size_t total = 0;
  for (int i = 0; i < t->ntables; i++)
    total += 2 * (size_t)t->tables[i].nq + 1 + (size_t)(t->tables[i].nfull + t->tables[i].npart);
  if (total > INT32_MAX) return cg_fail(e, SIEVE_ERR_SHAPE, "block tables too large for 32-bit offsets");
  int32_t *b = malloc(sizeof(int32_t) * (total ? total : 1));
  if (!b) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory packing block tables");
  int32_t *off = malloc(sizeof(int32_t) * (size_t)(t->ntables ? t->ntables : 1));
  if (!off) {
    free(b);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory packing block tables");
  }
  size_t o = 0;
  for (int i = 0; i < t->ntables; i++) {
    const cg_table *tb = &t->tables[i];
    int32_t *rowptr = b + o, *nfull = rowptr + tb->nq + 1, *idx = nfull + tb->nq;
    off[i] = (int32_t)o;
    rowptr[0] = 0;
    for (int q = 0; q < tb->nq; q++) {
      int32_t f0 = tb->full_ptr[q], nf = tb->full_ptr[q + 1] - f0;
      int32_t p0 = tb->part_ptr[q], np = tb->part_ptr[q + 1] - p0;
      memcpy(idx + rowptr[q], tb->full_idx + f0, sizeof(int32_t) * (size_t)nf);
      memcpy(idx + rowptr[q] + nf, tb->part_idx + p0, sizeof(int32_t) * (size_t)np);
      nfull[q] = nf;
      rowptr[q + 1] = rowptr[q] + nf + np;
    }
    o += 2 * (size_t)tb->nq + 1 + (size_t)rowptr[tb->nq];
  }
  for (int h = 0; h < t->shape.heads; h++) head_off[h] = off[t->head_table[h]];
  free(off);
  *buf = b;
  *n = total;
  return SIEVE_OK;
}
