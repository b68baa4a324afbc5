/*
** A lower bound on a layout's visited block area, for ranking automatic
** layouts (cg_layout_auto.c). An exact score builds the layout's table
** job: every token's interfaces on both sides, runs, hashes and the memo,
** a fixed cost per layout however few rows it scores. A bound costs the
** layout's coordinates and block boxes, and the interfaces of the keys it
** looks at: on each scored row, block pairs the intervals prove full count
** whole, and an undecided pair counts by what WITNESSES of its query
** tokens see against its keys: a true proves it visited, a true and a
** false partial. Keys' interfaces are gathered from every token's, made
** once per choice, where the mask's key side does not read the position.
** It never exceeds the exact score of the same rows, so a layout whose
** bound passes the best exact score found need not be scored at all, and
** its rows stop there. Where every undecided pair is proven partial (dense
** masks: none is undecided) the bound is the exact score; where not, a
** bound that ran every row is made exact by settling the pairs its
** witnesses left open (blk_bound_exact, cg_layout_settle.c), far cheaper
** than a build of the rows, whose setup covers every token. A witness
** token is tried against a key block's sub-blocks of MICRO keys by
** intervals first, and against keys only in the sub-blocks those leave
** open; the open pairs are first tried against the query block's end
** tokens, all of a row's in one pass, and then by their sub-block pairs:
** what is found is the same, only cheaper (radial's spatial candidates,
** all within 1% and so all settled, are settled mostly so).
*/
#include <stdlib.h>
#include <string.h>

#include "cg_layout_bound.h"

/* Query tokens tried per scored row, spread over its block. More prove
** more pairs partial, but each costs a pass over the row's undecided keys.
** Since a kernel's merged rows are ranked, one left radial's spatial
** bounds near half their scores, so nearly every candidate was settled:
** with three, radial's tables take 0.53-0.93x as long at wan-1.3b-480p,
** cogvideox-1.5 and hunyuan-720p (two to five cost about the same, by
** shape), dilated's 1.05-1.1x (its bounds were tight with one). */
#define WITNESSES 3

/* Whether key interfaces are gathered from tokv. */
static int gathers(const blk_lbound *b) { return b->tokv && !b->plain; }

/* Key interfaces of positions [p0, p0 + n) of the layout bounded into
** out ([nkv][ld]). */
static void keys_of(const blk_lbound *b, int64_t p0, int64_t n, int64_t *out, int64_t ld) {
  if (!gathers(b)) {
    cg_prog_side(b->prog, 1, &b->c, p0, n, out, ld, b->sc);
    return;
  }
  int nv = cg_prog_nkv(b->prog);
  const int32_t *idx = b->c.idx + p0;
  for (int64_t i = 0; i < n; i++)
    for (int v = 0; v < nv; v++) out[v * ld + i] = b->tokv[(int64_t)idx[i] * nv + v];
}

/* Key interfaces of blocks und[0..n) into ktok where not made yet, a run
** of consecutive ones a call (most blocks are never looked at). */
static void key_sides(blk_lbound *b, const int32_t *und, int n) {
  int64_t S = b->ts.seq, bk = b->ts.block_k;
  for (int i = 0; i < n;) {
    int r = i;
    while (r < n && !b->kdone[und[r]] && (r == i || und[r] == und[r - 1] + 1)) b->kdone[und[r++]] = 1;
    if (r > i) {
      int64_t b0 = und[i] * bk;
      keys_of(b, b0, min64(und[r - 1] * bk + bk, S) - b0, b->ktok + b0, S);
    }
    i = r > i ? r : i + 1;
  }
}

/* Key block kb's interfaces, [nkv][*ld]: gathered into kblk, or else in
** ktok (made there once per layout). */
const int64_t *blk_lb_block_keys(blk_lbound *b, int kb, int64_t *ld) {
  int64_t k0 = (int64_t)kb * b->ts.block_k, len = min64(b->ts.block_k, b->ts.seq - k0);
  if (gathers(b)) {
    keys_of(b, k0, len, b->kblk, b->ts.block_k);
    *ld = b->ts.block_k;
    return b->kblk;
  }
  key_sides(b, &kb, 1);
  *ld = b->ts.seq;
  return b->ktok + k0;
}

/* Key interfaces of positions [k0, k0 + len) into the gather buffer at
** m: from tokv, or else from ktok, which key_sides made. */
static void gather_keys(blk_lbound *b, int64_t k0, int64_t len, int64_t m) {
  if (gathers(b)) {
    keys_of(b, k0, len, b->g + m, GATHER(b));
    return;
  }
  for (int v = 0; v < cg_prog_nkv(b->prog); v++)
    memcpy(b->g + v * GATHER(b) + m, b->ktok + v * b->ts.seq + k0, sizeof(int64_t) * (size_t)len);
}

void blk_lbound_plain(blk_lbound *b, int plain) { b->plain = plain; }

/* A worker's own buffers; those of w[0] hold the shared state too. */
static void scratch_free(blk_lbound *b) {
  cg_iscratch_free(b->is);
  cg_scratch_free(b->sc);
  free(b->qrow);
  free(b->qpt);
  free(b->ktok);
  free(b->kblk);
  free(b->qtok);
  free(b->out);
  free(b->cls);
  free(b->seen);
  free(b->kdone);
  free(b->und);
  free(b->g);
  free(b->left);
  free(b->sel);
  free(b->pend);
  free(b->wp);
  free(b->sbox);
  free(b->qsiv);
  free(b->ksiv);
  free(b->ksdone);
  free(b->lcls);
  free(b->ccls);
  free(b->fcls);
  free(b->lq);
  free(b->lk);
  free(b->scls);
  free(b->qtb);
  free(b->qv1);
  free(b->skbox);
  free(b->skcls);
}

void blk_lbound_free(blk_lbound *b) {
  if (!b) return;
  blk_lb_records_free(b);
  for (int i = 1; i < b->nw; i++)
    if (b->w[i]) {
      scratch_free(b->w[i]);
      free(b->w[i]);
    }
  if (b->w) pthread_mutex_destroy(&b->mu);
  free(b->w);
  free(b->rows);
  free(b->done);
  free(b->groups);
  free(b->endp);
  scratch_free(b);
  free(b->kiv);
  free(b->skiv);
  free(b->tokv);
  cg_prog_free(b->prog);
  cg_coords_free(&b->c);
  if (b->qbox != b->kbox) free(b->qbox);
  free(b->kbox);
  free(b);
}

/* b's own buffers, for ts and prog set. */
static int scratch_new(blk_lbound *b) {
  const cg_tableset *ts = &b->ts;
  int64_t S = ts->seq;
  int bq = ts->block_q, bk = ts->block_k;
  size_t qv = (size_t)(cg_prog_nqv(b->prog) ? cg_prog_nqv(b->prog) : 1);
  size_t kv = (size_t)(cg_prog_nkv(b->prog) ? cg_prog_nkv(b->prog) : 1);
  b->qrow = malloc(sizeof(cg_ival) * qv);
  b->qpt = malloc(sizeof(cg_ival) * qv);
  b->ktok = malloc(sizeof(int64_t) * (size_t)S * kv);
  b->kblk = malloc(sizeof(int64_t) * (size_t)bk * kv);
  b->qtok = malloc(sizeof(int64_t) * qv);
  b->out = malloc(sizeof(int64_t) * (size_t)S);
  b->cls = malloc((size_t)ts->nk);
  b->seen = malloc((size_t)ts->nk);
  b->kdone = malloc((size_t)ts->nk);
  b->und = malloc(sizeof(int32_t) * (size_t)ts->nk);
  b->left = malloc(sizeof(int32_t) * (size_t)ts->nk);
  b->sel = malloc(sizeof(int32_t) * (size_t)ts->nk);
  b->g = malloc(sizeof(int64_t) * (size_t)GATHER(b) * kv); /* also tokv's staging */
  size_t bmax = (size_t)(bq > bk ? bq : bk), ns = (bmax + MICRO - 1) / MICRO;
  b->sbox = malloc(sizeof(cg_box) * ns);
  b->qsiv = malloc(sizeof(cg_ival) * ns * qv);
  b->nsk = (bk + MICRO - 1) / MICRO;
  b->ksiv = malloc(sizeof(cg_ival) * (size_t)ts->nk * (size_t)b->nsk * kv);
  b->ksdone = malloc((size_t)ts->nk);
  /* sub_pairs' lanes: a row's pairs by their sub-block pairs; witness's
  ** a row's key sub-blocks, in lq their blocks and lengths */
  size_t lanes = (size_t)ts->nk * (size_t)b->nsk * (size_t)((bq + MICRO - 1) / MICRO + 2);
  b->lcls = malloc(lanes);
  b->fcls = malloc(lanes);
  b->ccls = malloc((size_t)ts->nk * (size_t)((bq + MICRO - 1) / MICRO));
  b->lq = malloc(sizeof(int32_t) * lanes);
  b->lk = malloc(sizeof(int32_t) * lanes);
  b->scls = malloc(ns);
  b->qtb = malloc(sizeof(int64_t) * (size_t)bq * qv);
  b->qv1 = malloc(sizeof(int64_t) * qv);
  b->nks = (ts->nk + SUPER - 1) / SUPER;
  b->skbox = malloc(sizeof(cg_box) * (size_t)b->nks);
  b->skcls = malloc((size_t)b->nks);
  b->is = cg_iscratch_new(b->prog);
  b->sc = cg_scratch_new(b->prog);
  return b->is && b->sc && b->qrow && b->qpt && b->ktok && b->kblk && b->qtok && b->out && b->cls && b->seen &&
         b->kdone && b->und && b->left && b->sel && b->g && b->sbox && b->qsiv && b->ksiv && b->ksdone && b->lcls &&
         b->fcls && b->ccls && b->lq && b->lk && b->scls && b->qtb && b->qv1 && b->skbox && b->skcls;
}

/* The workers after w[0], sharing b's read-only state. */
static int workers_new(blk_lbound *b) {
  b->nw = blk_threads(b->ts.nq);
  b->w = calloc((size_t)b->nw, sizeof *b->w);
  b->rows = malloc(sizeof *b->rows * (size_t)b->ts.nq);
  b->done = malloc((size_t)b->ts.nq);
  b->groups = malloc(sizeof *b->groups * ((size_t)b->ts.nq + 1));
  if (!b->w || !b->rows || !b->done || !b->groups || pthread_mutex_init(&b->mu, NULL)) {
    free(b->w);
    b->w = NULL;
    b->nw = 0;
    return -1;
  }
  b->w[0] = b;
  for (int i = 1; i < b->nw; i++) {
    blk_lbound *w = b->w[i] = calloc(1, sizeof *w);
    if (!w) return -1;
    w->ts = b->ts;
    w->c = b->c;
    w->qbox = b->qbox;
    w->kbox = b->kbox;
    w->prog = b->prog;
    w->kiv = b->kiv;
    w->skiv = b->skiv;
    w->tokv = b->tokv;
    w->owner = b;
    w->idx = i;
    if (!scratch_new(w)) return -1;
  }
  return 0;
}

blk_lbound *blk_lbound_new(cg_pattern *p, const sieve_shape *s, cg_ref mask) {
  blk_lbound *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  int bq = cg_pattern_block_q(p), bk = cg_pattern_block_k(p);
  cg_tableset *ts = &b->ts;
  *ts = (cg_tableset){.shape = *s, .block_q = bq, .block_k = bk, .seq = sieve_shape_tokens(s)};
  int64_t S = ts->seq;
  ts->nq = (int)((S + bq - 1) / bq);
  ts->nk = (int)((S + bk - 1) / bk);
  b->kbox = malloc(sizeof(cg_box) * (size_t)ts->nk);
  b->qbox = bq == bk ? b->kbox : malloc(sizeof(cg_box) * (size_t)ts->nq);
  int ok = !cg_coords_init(&b->c, S) && b->kbox && b->qbox && (b->prog = cg_prog_new(p->g, mask));
  if (ok) {
    cg_prog_bind(b->prog, 0, 0, 0); /* head, step and layer are constants in mask */
    size_t kv = (size_t)(cg_prog_nkv(b->prog) ? cg_prog_nkv(b->prog) : 1);
    b->kiv = malloc(sizeof(cg_ival) * (size_t)ts->nk * kv);
    b->skiv = malloc(sizeof(cg_ival) * (size_t)((ts->nk + SUPER - 1) / SUPER) * kv);
    ok = b->kiv && b->skiv && scratch_new(b);
  }
  /* identity puts each token at its model index */
  const cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  int nkv = ok ? cg_prog_nkv(b->prog) : 0;
  if (nkv && !(cg_prog_inputs(b->prog, 1) >> CG_IN_POS & 1)) {
    ok = (b->tokv = malloc(sizeof(int64_t) * (size_t)S * (size_t)nkv)) && !cg_layout_fill(&id, s, &b->c);
    for (int64_t p0 = 0; ok && p0 < S; p0 += GATHER(b)) {
      int64_t n = min64(GATHER(b), S - p0);
      cg_prog_side(b->prog, 1, &b->c, p0, n, b->g, GATHER(b), b->sc);
      for (int64_t i = 0; i < n; i++)
        for (int v = 0; v < nkv; v++) b->tokv[(p0 + i) * nkv + v] = b->g[v * GATHER(b) + i];
    }
  }
  if (!ok || workers_new(b)) {
    blk_lbound_free(b);
    return NULL;
  }
  return b;
}

/* Room in *p (*cap entries) for n: doubled, or n and 1024 more. */
static int pend_room(struct pend **p, int64_t *cap, int64_t n) {
  if (n <= *cap) return 0;
  int64_t nc = *cap * 2 > n ? *cap * 2 : n + 1024;
  struct pend *np = realloc(*p, sizeof *np * (size_t)nc);
  if (!np) return -1;
  *p = np;
  *cap = nc;
  return 0;
}

/* The interval class of every key block against the query block in
** w->qrow, into cls: key super-blocks first, and the blocks of those left
** undecided. Intervals only narrow as boxes do, so a super-block decided
** decides each of its blocks alike: the classes are every block's own
** (radial's rows leave most super-blocks empty). */
static void row_classes(blk_lbound *w, uint8_t *cls) {
  const cg_tableset *ts = &w->ts;
  if (w->plain) {
    cg_ival_row(w->prog, w->qrow, w->kiv, ts->nk, ts->nk, cls, w->is);
    return;
  }
  cg_ival_row(w->prog, w->qrow, w->skiv, w->nks, w->nks, w->skcls, w->is);
  int n = 0;
  for (int sk = 0; sk < w->nks; sk++) {
    int k0 = sk * SUPER, k1 = k0 + SUPER < ts->nk ? k0 + SUPER : ts->nk;
    if (w->skcls[sk] != CG_BLK_UNDECIDED) memset(cls + k0, w->skcls[sk], (size_t)(k1 - k0));
    else
      for (int kb = k0; kb < k1; kb++) w->lk[n++] = kb;
  }
  if (!n) return;
  cg_ival_pairs_sig(w->prog, w->qrow, 1, NULL, w->kiv, ts->nk, w->lk, n, w->lcls, NULL, NULL, w->is);
  for (int i = 0; i < n; i++) cls[w->lk[i]] = w->lcls[i];
}

int blk_lb_bound_row(blk_lbound *w, int qb, struct lrow *r) {
  const cg_tableset *ts = &w->ts;
  const cg_prog *prog = w->prog;
  int64_t S = ts->seq;
  int bq = ts->block_q;
  uint8_t *cls = w->cls, *seen = w->seen;
  int32_t *und = w->und;
  int64_t full = 0, part = 0, visited = 0;
  cg_ival_side(prog, 0, w->qbox + qb, 1, w->qrow, 1, w->is);
  row_classes(w, cls);
  int nund = 0;
  for (int kb = 0; kb < ts->nk; kb++)
    if (cls[kb] == CG_BLK_FULL) full++;
    else if (cls[kb] == CG_BLK_UNDECIDED) seen[nund] = 0, und[nund++] = kb;
  int64_t q0 = (int64_t)qb * bq, q1 = min64(q0 + bq, S) - 1;
  for (int k = 0; k < WITNESSES && nund; k++) {
    int64_t q = q0 + (q1 - q0) * (2 * k + 1) / (2 * WITNESSES);
    cg_prog_side(prog, 0, &w->c, q, 1, w->qtok, 1, w->sc);
    blk_lb_point(w, q, w->qpt);
    /* a first look at every block's first keys settles half of dilated's
    ** pairs at little cost, and almost none of radial's: kept while it
    ** settles a fair share (of the worker's rows: what is found is the
    ** same either way) */
    int first = w->tried < 256 || 4 * w->shown >= w->tried;
    if (first) w->tried += nund;
    w->shown += blk_lb_witness(w, w->qtok, w->qpt, und, nund, seen, first);
    int left = 0; /* pairs proven partial are settled: later witnesses skip them */
    for (int i = 0; i < nund; i++)
      if (seen[i] == 3) part++;
      else seen[left] = seen[i], und[left++] = und[i];
    nund = left;
  }
  for (int i = 0; i < nund; i++) visited += seen[i] == 2;
  if (pend_room(&w->wp, &w->capwp, w->nwp + nund)) return -1;
  *r = (struct lrow){.full = full, .part = part, .visited = visited, .off = w->nwp, .nund = nund};
  for (int i = 0; i < nund; i++) w->wp[w->nwp++] = (struct pend){qb, und[i], seen[i]};
  return 0;
}

static int past(const blk_lbound *b, int64_t full, int64_t part, int64_t visited) {
  return (double)(full + visited) + b->partial_cost * (double)part > b->stop;
}

/* A worker: rows in turn until none is left or the rows done in order
** pass the stop. */
static void *run_rows(void *arg) {
  blk_lbound *w = *(blk_lbound **)arg, *b = w->owner ? w->owner : w;
  pthread_mutex_lock(&b->mu);
  while (!b->stopped && b->next < b->nrows) {
    int k = b->next++;
    pthread_mutex_unlock(&b->mu);
    int fail = b->row(w, k, &b->rows[k]);
    b->rows[k].w = w->idx;
    pthread_mutex_lock(&b->mu);
    b->done[k] = 1;
    b->fail |= fail;
    b->stopped |= fail;
    for (; b->pre < b->nrows && b->done[b->pre] && !b->stopped; b->pre++) {
      const struct lrow *r = &b->rows[b->pre];
      b->pfull += r->full;
      b->ppart += r->part;
      b->pvisited += r->visited;
      b->stopped = past(b, b->pfull, b->ppart, b->pvisited);
    }
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

int blk_lb_rows(blk_lbound *b, int nrows, blk_lb_row row, double stop, double partial_cost, int64_t full,
                int64_t part) {
  b->nrows = nrows;
  b->row = row;
  b->stop = stop;
  b->partial_cost = partial_cost;
  b->next = b->pre = b->stopped = b->fail = 0;
  b->pfull = full;
  b->ppart = part;
  b->pvisited = 0;
  memset(b->done, 0, (size_t)nrows);
  blk_on_threads(b->nw < nrows ? b->nw : nrows, run_rows, b->w, sizeof *b->w);
  return b->fail ? -1 : 0;
}

static int bound_row_k(blk_lbound *w, int k, struct lrow *r) {
  const blk_lbound *b = w->owner ? w->owner : w;
  return blk_lb_bound_row(w, k * b->stride, r);
}

int blk_lb_load(blk_lbound *w, const cg_layout *l) {
  const cg_tableset *ts = &w->ts;
  if (cg_layout_fill(l, &ts->shape, &w->c)) return -1;
  /* from the tokens: the table builder's hull of micro-blocks' boxes is the same box */
  blk_box_blocks(&w->c, ts->block_k, ts->nk, w->kbox);
  if (w->qbox != w->kbox) blk_box_blocks(&w->c, ts->block_q, ts->nq, w->qbox);
  cg_ival_side(w->prog, 1, w->kbox, ts->nk, w->kiv, ts->nk, w->is);
  blk_box_hull(w->kbox, ts->nk, SUPER, w->nks, w->skbox);
  cg_ival_side(w->prog, 1, w->skbox, w->nks, w->skiv, w->nks, w->is);
  return 0;
}

void blk_lb_fresh(blk_lbound *w, int plain) {
  memset(w->kdone, 0, (size_t)w->ts.nk);
  memset(w->ksdone, 0, (size_t)w->ts.nk);
  w->plain = plain;
  w->nwp = w->tried = w->shown = 0;
}

int blk_lb_take(blk_lbound *b, const cg_layout *l, int stride) {
  if (blk_lb_load(b, l)) return -1;
  /* every worker: those the bound leaves idle may settle */
  for (int i = 0; i < b->nw; i++) blk_lb_fresh(b->w[i], b->plain);
  b->stride = stride;
  return 0;
}

int blk_lb_sum(blk_lbound *b, const struct lrow *rows, int nrows, int every, const struct pend *pend,
               double partial_cost, double stop, double *lo, int *exact) {
  int64_t full = 0, part = 0, visited = 0, unsettled = 0;
  b->stop = stop;
  b->partial_cost = partial_cost;
  b->npend = 0;
  b->all_rows = 1;
  for (int k = 0; k < nrows; k += every) {
    const struct lrow *r = &rows[k];
    full += r->full;
    part += r->part;
    visited += r->visited;
    unsettled += r->nund;
    if (r->nund && every == 1) { /* a row with none may have no buffer behind it */
      if (pend_room(&b->pend, &b->cappend, b->npend + r->nund)) return -1;
      memcpy(b->pend + b->npend, (pend ? pend : b->w[r->w]->wp) + r->off, sizeof *b->pend * (size_t)r->nund);
      b->npend += r->nund;
    }
    if (past(b, full, part, visited)) {
      unsettled++; /* rows left out */
      b->all_rows = 0;
      break;
    }
  }
  /* the rows of a guess (every past 1) are not every row */
  b->all_rows &= every == 1;
  b->full = full;
  b->part = part;
  b->visited = visited;
  *exact = !unsettled;
  *lo = (double)(full + visited) + partial_cost * (double)part;
  return 0;
}

sieve_status blk_bound_layout(blk_lbound *b, const cg_layout *l, int stride, double partial_cost, double stop,
                              double *lo, int *exact, cg_err *e) {
  *lo = 0;
  *exact = 0;
  const cg_tableset *ts = &b->ts;
  if (blk_lb_take(b, l, stride)) return cg_fail(e, SIEVE_ERR_ARG, "an invalid layout");
  if (blk_lb_rows(b, (ts->nq + stride - 1) / stride, bound_row_k, stop, partial_cost, 0, 0) ||
      blk_lb_sum(b, b->rows, b->nrows, 1, NULL, partial_cost, stop, lo, exact))
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory bounding a layout's block area");
  return SIEVE_OK;
}

/* The box of positions [p0, p1) of c. */
static void box_range(const cg_coords *c, int64_t p0, int64_t p1, cg_box *out) {
  const int32_t *v[CG_IN_POS] = {c->t, c->y, c->x, c->text, c->idx};
  for (int i = 0; i < CG_IN_POS; i++) {
    int64_t lo = v[i][p0], hi = v[i][p0];
    for (int64_t p = p0 + 1; p < p1; p++) {
      lo = v[i][p] < lo ? v[i][p] : lo;
      hi = v[i][p] > hi ? v[i][p] : hi;
    }
    out->v[i] = (cg_ival){lo, hi};
  }
  out->v[CG_IN_POS] = (cg_ival){p0, p1 - 1};
}

/* The query interfaces' intervals of token q alone. */
void blk_lb_point(blk_lbound *b, int64_t q, cg_ival *qpt) {
  cg_box box;
  box_range(&b->c, q, q + 1, &box);
  cg_ival_side(b->prog, 0, &box, 1, qpt, 1, b->is);
}

/* Interface intervals of the sub-blocks of MICRO tokens of [p0, p1) into
** iv ([nv][ld]); n returned. */
int blk_lb_sub_ivals(blk_lbound *b, int key_side, int64_t p0, int64_t p1, cg_ival *iv, int64_t ld) {
  int n = 0;
  for (int64_t p = p0; p < p1; p += MICRO, n++) box_range(&b->c, p, min64(p + MICRO, p1), &b->sbox[n]);
  cg_ival_side(b->prog, key_side, b->sbox, n, iv, ld, b->is);
  return n;
}

/* The sub-block intervals of key block kb, made on first use. */
void blk_lb_key_subs(blk_lbound *b, int kb) {
  const cg_tableset *ts = &b->ts;
  int64_t k0 = (int64_t)kb * ts->block_k;
  if (!b->ksdone[kb])
    blk_lb_sub_ivals(b, 1, k0, min64(k0 + ts->block_k, ts->seq), b->ksiv + (int64_t)kb * b->nsk, (int64_t)ts->nk * b->nsk);
  b->ksdone[kb] = 1;
}

/* witness's token pass: the keys gathered in g (n of them), their blocks'
** indices in und per sub-block in own (the sub-block's length in len). */
static void gathered(blk_lbound *b, const int64_t *qv, int64_t n, int nsub, const int32_t *own, const int32_t *len,
                     uint8_t *seen) {
  cg_prog_row(b->prog, qv, b->g, GATHER(b), (int)n, b->out, b->sc);
  int64_t k = 0;
  for (int j = 0; j < nsub; j++)
    for (int64_t e = k + len[j]; k < e; k++) seen[own[j]] |= b->out[k] ? 2 : 1;
}

/*
** What query token q (interfaces qv, their intervals qpt) sees against the
** key blocks und[0..nund): seen[i] bit 0 set by a false, bit 1 by a
** true. A key block, then a key sub-block, that the intervals decide
** against the token holds that one value throughout (the whole block
** first: radial's rows decide many so); only sub-blocks left undecided,
** of blocks not yet shown both, are evaluated token by token: the same bits as every key's,
** for a few of them (a dilated or radial row's undecided blocks are
** mostly decided sub-block by sub-block against one token). With first,
** every block's first sub-block is evaluated first, in one call, and
** only blocks that did not show both go on. The blocks that showed both
** in that first look returned.
*/
int blk_lb_witness(blk_lbound *b, const int64_t *qv, const cg_ival *qpt, const int32_t *und, int nund,
                   uint8_t *seen, int first) {
  const cg_tableset *ts = &b->ts;
  const cg_prog *prog = b->prog;
  int64_t S = ts->seq, ld = (int64_t)ts->nk * b->nsk;
  int bk = ts->block_k, n = 0, nsel = 0;
  int32_t *sel = b->sel;
  int shown = 0;
  if (b->plain) {
    key_sides(b, und, nund);
    for (int i = 0; i < nund; i++) {
      int64_t k0 = (int64_t)und[i] * bk, k1 = min64(k0 + bk, S);
      cg_prog_row(prog, qv, b->ktok + k0, S, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++) seen[i] |= b->out[k] ? 2 : 1;
    }
    return 0;
  }
  if (first) {
    if (!gathers(b)) key_sides(b, und, nund);
    int64_t m = 0;
    for (int i = 0; i < nund; i++) {
      int64_t k0 = (int64_t)und[i] * bk, len = min64(MICRO, min64(k0 + bk, S) - k0);
      gather_keys(b, k0, len, m);
      b->lq[i] = i;
      b->lq[ts->nk * b->nsk + i] = (int32_t)len;
      m += len;
    }
    gathered(b, qv, m, nund, b->lq, b->lq + ts->nk * b->nsk, seen);
    for (int i = 0; i < nund; i++) shown += seen[i] == 3;
  }
  /* the token against whole key blocks first: where that decides, every
  ** key of the block holds the one value */
  int nc = 0;
  for (int i = 0; i < nund; i++)
    if (seen[i] != 3) b->lk[nc++] = und[i];
  cg_ival_pairs_sig(prog, qpt, 1, NULL, b->kiv, ts->nk, b->lk, nc, b->ccls, NULL, NULL, b->is);
  nc = 0;
  for (int i = 0; i < nund; i++) {
    if (seen[i] == 3) continue;
    uint8_t c = b->ccls[nc++];
    if (c != CG_BLK_UNDECIDED) {
      seen[i] |= c == CG_BLK_FULL ? 2 : 1;
      continue;
    }
    int64_t k0 = (int64_t)und[i] * bk;
    int nks = (int)((min64(k0 + bk, S) - k0 + MICRO - 1) / MICRO);
    blk_lb_key_subs(b, und[i]);
    sel[nsel++] = i;
    for (int j = 0; j < nks; j++) b->lk[n++] = und[i] * b->nsk + j;
  }
  if (!nsel) return shown;
  cg_ival_pairs_sig(prog, qpt, 1, NULL, b->ksiv, ld, b->lk, n, b->lcls, NULL, NULL, b->is);
  int nneed = 0;
  n = 0;
  for (int a = 0; a < nsel; a++) {
    int i = sel[a];
    int64_t k0 = (int64_t)und[i] * bk;
    int nks = (int)((min64(k0 + bk, S) - k0 + MICRO - 1) / MICRO), open = 0;
    for (int j = 0; j < nks; j++, n++) {
      seen[i] |= b->lcls[n] == CG_BLK_FULL ? 2 : b->lcls[n] == CG_BLK_EMPTY ? 1 : 0;
      open |= b->lcls[n] == CG_BLK_UNDECIDED;
    }
    if (open && seen[i] != 3) b->left[nneed++] = und[i];
  }
  if (!nneed) return shown;
  if (!gathers(b)) key_sides(b, b->left, nneed);
  int nsub = 0;
  int64_t m = 0;
  n = 0;
  for (int a = 0; a < nsel; a++) {
    int i = sel[a];
    int64_t k0 = (int64_t)und[i] * bk, k1 = min64(k0 + bk, S);
    int nks = (int)((k1 - k0 + MICRO - 1) / MICRO);
    if (seen[i] == 3) {
      n += nks;
      continue;
    }
    for (int j = 0; j < nks; j++, n++) {
      if (b->lcls[n] != CG_BLK_UNDECIDED || (first && j == 0)) continue;
      int64_t s0 = k0 + (int64_t)j * MICRO, len = min64(s0 + MICRO, k1) - s0;
      if (m + len > GATHER(b)) {
        gathered(b, qv, m, nsub, b->lq, b->lq + ts->nk * b->nsk, seen);
        m = nsub = 0;
      }
      gather_keys(b, s0, len, m);
      b->lq[nsub] = i;
      b->lq[ts->nk * b->nsk + nsub++] = (int32_t)len;
      m += len;
    }
  }
  if (m) gathered(b, qv, m, nsub, b->lq, b->lq + ts->nk * b->nsk, seen);
  return shown;
}

