/*
** A lower bound on a layout's visited block area, for ranking automatic
** layouts (cg_layout_auto.c). An exact score builds the layout's table
** job: every token's interfaces on both sides, runs, hashes and the memo,
** a fixed cost per layout however few rows it scores. A bound costs the
** layout's coordinates and block boxes, and the interfaces of the keys it
** looks at: on each scored row, block pairs the intervals prove full count
** whole, and an undecided pair counts by what WITNESSES of its query
** tokens see against its keys: a true proves it visited, a true and a false
** partial. It never exceeds the exact score of the same rows, so a layout
** whose bound passes the best exact score found need not be scored at all,
** and its rows stop there. Where every undecided pair is proven partial
** (dense masks: none is undecided) the bound is the exact score; where
** not, a bound that ran every row is made exact by settling the pairs its
** witnesses left open (blk_bound_exact), far cheaper than a build of the
** rows, whose setup covers every token.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

/* Query tokens tried per scored row, spread over its block. More prove
** more pairs partial, but each costs a pass over the row's undecided keys,
** and with one the bounds already pass the best score within a few more
** rows: radial and dilated at hunyuan-720p rank fastest with one. */
#define WITNESSES 1

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Keys of each undecided block the first look tries, all blocks in one
** call: half of dilated's pairs at hunyuan-720p show a true and a false
** within 8 keys of 64, and only the rest are evaluated whole. */
#define FIRST 8

/* Key interfaces of blocks und[0..n) not computed yet, a run of
** consecutive ones a call (most blocks are never looked at). */
static void key_sides(const cg_prog *prog, const cg_coords *c, int64_t *ktok, uint8_t *kdone, int64_t S, int bk,
                      const int32_t *und, int n, cg_scratch *s) {
  for (int b = 0; b < n;) {
    int r = b;
    while (r < n && !kdone[und[r]] && (r == b || und[r] == und[r - 1] + 1)) kdone[und[r++]] = 1;
    if (r > b) {
      int64_t b0 = (int64_t)und[b] * bk;
      cg_prog_side(prog, 1, c, b0, min64((int64_t)und[r - 1] * bk + bk, S) - b0, ktok + b0, S, s);
    }
    b = r > b ? r : b + 1;
  }
}

/* What query token q (interfaces qv) sees against the key blocks
** und[0..nund): seen[i] bit 0 set by a false, bit 1 by a true. Every
** block's first FIRST keys in one call (gathered into g, [nkv][nund *
** FIRST]); then the blocks that showed only one value, whole, consecutive
** ones in one call. */
static void witness(const cg_prog *prog, const int64_t *qv, const int64_t *ktok, int64_t S, int bk,
                    const int32_t *und, int nund, uint8_t *seen, int64_t *g, int64_t ldg, int32_t *left,
                    int64_t *out, cg_scratch *s) {
  int nkv = cg_prog_nkv(prog), f = bk < FIRST ? bk : FIRST;
  int64_t n = 0;
  for (int i = 0; i < nund; i++) {
    int64_t k0 = (int64_t)und[i] * bk, m = min64(f, S - k0);
    for (int v = 0; v < nkv; v++) memcpy(g + v * ldg + n, ktok + v * S + k0, sizeof(int64_t) * (size_t)m);
    n += m;
  }
  cg_prog_row(prog, qv, g, ldg, (int)n, out, s);
  int nl = 0;
  n = 0;
  for (int i = 0; i < nund; i++) {
    int64_t m = min64(f, S - (int64_t)und[i] * bk);
    for (int64_t k = 0; k < m && seen[i] != 3; k++) seen[i] |= out[n + k] ? 2 : 1;
    n += m;
    if (seen[i] != 3 && (int64_t)und[i] * bk + f < S) left[nl++] = i;
  }
  for (int a = 0; a < nl;) {
    int e = a + 1;
    while (e < nl && und[left[e]] == und[left[e - 1]] + 1) e++;
    int64_t k0 = (int64_t)und[left[a]] * bk + f, k1 = min64((int64_t)und[left[e - 1]] * bk + bk, S);
    cg_prog_row(prog, qv, ktok + k0, S, (int)(k1 - k0), out, s);
    for (int b = a; b < e; b++) {
      int i = left[b];
      int64_t b0 = (int64_t)und[i] * bk + (b == a ? f : 0) - k0, b1 = min64((int64_t)und[i] * bk + bk, k1) - k0;
      for (int64_t k = b0; k < b1 && seen[i] != 3; k++) seen[i] |= out[k] ? 2 : 1;
    }
    a = e;
  }
}

/*
** What the candidates of one choice share: the mask's program (the same
** for every layout: only the coordinates differ) and buffers sized for
** the shape, made once, since fresh ones for each of some forty bounds
** cost more in page faults than the bounds' own work.
*/
struct blk_lbound {
  cg_tableset ts;  /* the shape and blocks only */
  cg_coords c;     /* the layout bounded */
  cg_box *qbox, *kbox; /* its blocks' boxes (one array when the blocks are the same) */
  cg_prog *prog;
  cg_iscratch *is;
  cg_scratch *sc;
  cg_ival *qrow, *kiv;
  int64_t *ktok, *qtok, *out, *g;
  uint8_t *cls, *seen, *kdone;
  int32_t *und, *left;
  /* the last bound: its counts, whether it ran every row, and the pairs
  ** its witnesses left unsettled, for blk_bound_exact */
  int64_t full, part, visited;
  int all_rows;
  struct pend {
    int32_t qb, kb;
    uint8_t seen;
  } *pend;
  int64_t npend, cappend;
  /* blk_bound_exact's: sub-blocks of MICRO tokens, their boxes and
  ** interface intervals, their classes, the query block's tokens'
  ** interfaces and one token's */
  cg_box *sbox;
  cg_ival *qsiv, *ksiv;
  uint8_t *scls;
  int64_t *qtb, *qv1;
};

void blk_lbound_free(blk_lbound *b) {
  if (!b) return;
  cg_iscratch_free(b->is);
  cg_scratch_free(b->sc);
  free(b->qrow);
  free(b->kiv);
  free(b->ktok);
  free(b->qtok);
  free(b->out);
  free(b->cls);
  free(b->seen);
  free(b->kdone);
  free(b->und);
  free(b->g);
  free(b->left);
  free(b->pend);
  free(b->sbox);
  free(b->qsiv);
  free(b->ksiv);
  free(b->scls);
  free(b->qtb);
  free(b->qv1);
  cg_prog_free(b->prog);
  cg_coords_free(&b->c);
  if (b->qbox != b->kbox) free(b->qbox);
  free(b->kbox);
  free(b);
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
    size_t qv = (size_t)(cg_prog_nqv(b->prog) ? cg_prog_nqv(b->prog) : 1);
    size_t kv = (size_t)(cg_prog_nkv(b->prog) ? cg_prog_nkv(b->prog) : 1);
    b->kiv = malloc(sizeof(cg_ival) * (size_t)ts->nk * kv);
    b->qrow = malloc(sizeof(cg_ival) * qv);
    b->ktok = malloc(sizeof(int64_t) * (size_t)S * kv);
    b->qtok = malloc(sizeof(int64_t) * qv);
    b->out = malloc(sizeof(int64_t) * (size_t)S);
    b->cls = malloc((size_t)ts->nk);
    b->seen = malloc((size_t)ts->nk);
    b->kdone = malloc((size_t)ts->nk);
    b->und = malloc(sizeof(int32_t) * (size_t)ts->nk);
    b->left = malloc(sizeof(int32_t) * (size_t)ts->nk);
    b->g = malloc(sizeof(int64_t) * (size_t)ts->nk * FIRST * kv);
    size_t bmax = (size_t)(bq > bk ? bq : bk), ns = (bmax + MICRO - 1) / MICRO;
    b->sbox = malloc(sizeof(cg_box) * ns);
    b->qsiv = malloc(sizeof(cg_ival) * ns * qv);
    b->ksiv = malloc(sizeof(cg_ival) * ns * kv);
    b->scls = malloc(ns);
    b->qtb = malloc(sizeof(int64_t) * (size_t)bq * qv);
    b->qv1 = malloc(sizeof(int64_t) * qv);
    b->is = cg_iscratch_new(b->prog);
    b->sc = cg_scratch_new(b->prog);
    ok = b->is && b->sc && b->kiv && b->qrow && b->ktok && b->qtok && b->out && b->cls && b->seen && b->kdone &&
         b->und && b->left && b->g && b->sbox && b->qsiv && b->ksiv && b->scls && b->qtb && b->qv1;
  }
  if (!ok) {
    blk_lbound_free(b);
    return NULL;
  }
  return b;
}

sieve_status blk_bound_layout(blk_lbound *b, const cg_layout *l, int stride, double partial_cost, double stop,
                              double *lo, int *exact, cg_err *e) {
  *lo = 0;
  *exact = 0;
  const cg_tableset *ts = &b->ts;
  if (cg_layout_fill(l, &ts->shape, &b->c)) return cg_fail(e, SIEVE_ERR_ARG, "an invalid layout");
  /* from the tokens: the table builder's hull of micro-blocks' boxes is the same box */
  blk_box_blocks(&b->c, ts->block_k, ts->nk, b->kbox);
  if (b->qbox != b->kbox) blk_box_blocks(&b->c, ts->block_q, ts->nq, b->qbox);
  const cg_prog *prog = b->prog;
  int64_t S = ts->seq;
  int bq = ts->block_q, bk = ts->block_k;
  uint8_t *cls = b->cls, *seen = b->seen;
  int32_t *und = b->und;
  memset(b->kdone, 0, (size_t)ts->nk);
  cg_ival_side(prog, 1, b->kbox, ts->nk, b->kiv, ts->nk, b->is);
  int64_t full = 0, part = 0, visited = 0, unsettled = 0;
  b->npend = 0;
  b->all_rows = 1;
  for (int qb = 0; qb < ts->nq; qb += stride) {
    cg_ival_side(prog, 0, b->qbox + qb, 1, b->qrow, 1, b->is);
    cg_ival_row(prog, b->qrow, b->kiv, ts->nk, ts->nk, cls, b->is);
    int nund = 0;
    for (int kb = 0; kb < ts->nk; kb++)
      if (cls[kb] == CG_BLK_FULL) full++;
      else if (cls[kb] == CG_BLK_UNDECIDED) seen[nund] = 0, und[nund++] = kb;
    int64_t q0 = (int64_t)qb * bq, q1 = min64(q0 + bq, S) - 1;
    for (int w = 0; w < WITNESSES && nund; w++) {
      int64_t q = q0 + (q1 - q0) * (2 * w + 1) / (2 * WITNESSES);
      cg_prog_side(prog, 0, &b->c, q, 1, b->qtok, 1, b->sc);
      key_sides(prog, &b->c, b->ktok, b->kdone, S, bk, und, nund, b->sc);
      witness(prog, b->qtok, b->ktok, S, bk, und, nund, seen, b->g, (int64_t)ts->nk * FIRST, b->left, b->out, b->sc);
      int left = 0; /* pairs proven partial are settled: later witnesses skip them */
      for (int i = 0; i < nund; i++)
        if (seen[i] == 3) part++;
        else seen[left] = seen[i], und[left++] = und[i];
      nund = left;
    }
    for (int i = 0; i < nund; i++) visited += seen[i] == 2;
    unsettled += nund;
    if (b->npend + nund > b->cappend) {
      int64_t cap = b->cappend * 2 > b->npend + nund ? b->cappend * 2 : b->npend + nund + 1024;
      struct pend *np = realloc(b->pend, sizeof *np * (size_t)cap);
      if (!np) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory bounding a layout's block area");
      b->pend = np;
      b->cappend = cap;
    }
    for (int i = 0; i < nund; i++) b->pend[b->npend++] = (struct pend){qb, und[i], seen[i]};
    if ((double)(full + visited) + partial_cost * (double)part > stop) {
      unsettled++; /* rows left out */
      b->all_rows = 0;
      break;
    }
  }
  b->full = full;
  b->part = part;
  b->visited = visited;
  *exact = !unsettled;
  *lo = (double)(full + visited) + partial_cost * (double)part;
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

/* Interface intervals of the sub-blocks of MICRO tokens of [p0, p1) into
** iv ([nv][n]); n returned. */
static int sub_ivals(blk_lbound *b, int key_side, int64_t p0, int64_t p1, cg_ival *iv) {
  int n = 0;
  for (int64_t p = p0; p < p1; p += MICRO, n++) box_range(&b->c, p, min64(p + MICRO, p1), &b->sbox[n]);
  cg_ival_side(b->prog, key_side, b->sbox, n, iv, n, b->is);
  return n;
}

/*
** Whether block pair (qb, kb), whose witness saw only value `seen` (1:
** false, 2: true), holds the other value: by the intervals of its pairs
** of sub-blocks first, then token by token where those leave it open. The
** query block's sub-block intervals (qsiv, nqs) and tokens' interfaces
** (qtb) are made by the caller.
*/
static int other_value(blk_lbound *b, int qb, int kb, int seen, int nqs) {
  const cg_tableset *ts = &b->ts;
  const cg_prog *prog = b->prog;
  int64_t S = ts->seq, q0 = (int64_t)qb * ts->block_q, q1 = min64(q0 + ts->block_q, S);
  int64_t k0 = (int64_t)kb * ts->block_k, k1 = min64(k0 + ts->block_k, S);
  int nks = sub_ivals(b, 1, k0, k1, b->ksiv), nqv = cg_prog_nqv(prog);
  uint8_t want = seen == 1 ? CG_BLK_FULL : CG_BLK_EMPTY;
  for (int i = 0; i < nqs; i++) {
    for (int v = 0; v < nqv; v++) b->qrow[v] = b->qsiv[v * nqs + i];
    cg_ival_row(prog, b->qrow, b->ksiv, nks, nks, b->scls, b->is);
    int und = 0;
    for (int j = 0; j < nks; j++) {
      if (b->scls[j] == want) return 1;
      und |= b->scls[j] == CG_BLK_UNDECIDED;
    }
    if (!und) continue;
    int64_t t0 = q0 + (int64_t)i * MICRO, t1 = min64(t0 + MICRO, q1);
    for (int64_t q = t0; q < t1; q++) {
      for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * (q1 - q0) + (q - q0)];
      cg_prog_row(prog, b->qv1, b->ktok + k0, S, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++)
        if (!!b->out[k] == (seen == 1)) return 1;
    }
  }
  return 0;
}

sieve_status blk_bound_exact(blk_lbound *b, double partial_cost, double *lo, int *exact) {
  *exact = 0;
  if (!b->all_rows) return SIEVE_OK;
  const cg_tableset *ts = &b->ts;
  int64_t S = ts->seq, full = b->full + b->visited, part = b->part;
  int nqs = 0;
  for (int64_t i = 0; i < b->npend; i++) {
    const struct pend *pd = &b->pend[i];
    if (i == 0 || pd->qb != b->pend[i - 1].qb) {
      int64_t q0 = (int64_t)pd->qb * ts->block_q, q1 = min64(q0 + ts->block_q, S);
      nqs = sub_ivals(b, 0, q0, q1, b->qsiv);
      cg_prog_side(b->prog, 0, &b->c, q0, q1 - q0, b->qtb, q1 - q0, b->sc);
    }
    if (!other_value(b, pd->qb, pd->kb, pd->seen, nqs)) continue;
    part++; /* partial; a witness's true had counted it visited */
    full -= pd->seen == 2;
  }
  *lo = (double)full + partial_cost * (double)part;
  *exact = 1;
  return SIEVE_OK;
}
