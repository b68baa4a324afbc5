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
** rows, whose setup covers every token. A witness token is tried against
** a key block's sub-blocks of MICRO keys by intervals first, and against
** keys only in the sub-blocks those leave open; the open pairs are first
** tried against the query block's end tokens, all of a row's in one pass,
** and then by their sub-block pairs: what is found is the same, only
** cheaper (radial's spatial candidates, all within 1% and so all settled,
** are settled mostly so).
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

/* Query tokens tried per scored row, spread over its block. More prove
** more pairs partial, but each costs a pass over the row's undecided keys,
** and with one the bounds already pass the best score within a few more
** rows: radial and dilated at hunyuan-720p rank fastest with one. */
#define WITNESSES 1

/* Keys gathered per call of witness's token pass, at most. */
#define GATHER(b) ((int64_t)(b)->ts.nk * MICRO)

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

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
  cg_ival *qrow, *kiv, *qpt; /* a query block's and a token's interface intervals, key blocks' */
  int64_t *ktok, *qtok, *out, *g;
  uint8_t *cls, *seen, *kdone;
  int32_t *und, *left, *sel;
  /* the last bound: its counts, whether it ran every row, and the pairs
  ** its witnesses left unsettled, for blk_bound_exact */
  int64_t full, part, visited;
  int all_rows;
  struct pend {
    int32_t qb, kb;
    uint8_t seen;
  } *pend;
  int64_t npend, cappend;
  /* sub-blocks of MICRO tokens: their boxes and interface intervals (a
  ** key block's made once per layout, on first use: many rows look at
  ** it; [nkv][nk * nsk]), lanes of sub-block pairs (their classes in
  ** lcls: sub_pairs' query and key sub-blocks in lq and lk, witness's key
  ** sub-blocks in lk, and in lq its token pass's blocks and lengths) */
  cg_box *sbox;
  cg_ival *qsiv, *ksiv;
  uint8_t *ksdone, *scls, *lcls;
  int32_t *lq, *lk;
  int nsk;
  /* blk_bound_exact's: the query block's tokens' interfaces and one token's */
  int64_t *qtb, *qv1;
  int plain; /* blk_lbound_plain */
};

void blk_lbound_plain(blk_lbound *b, int plain) { b->plain = plain; }

void blk_lbound_free(blk_lbound *b) {
  if (!b) return;
  cg_iscratch_free(b->is);
  cg_scratch_free(b->sc);
  free(b->qrow);
  free(b->qpt);
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
  free(b->sel);
  free(b->pend);
  free(b->sbox);
  free(b->qsiv);
  free(b->ksiv);
  free(b->ksdone);
  free(b->lcls);
  free(b->lq);
  free(b->lk);
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
    b->qpt = malloc(sizeof(cg_ival) * qv);
    b->ktok = malloc(sizeof(int64_t) * (size_t)S * kv);
    b->qtok = malloc(sizeof(int64_t) * qv);
    b->out = malloc(sizeof(int64_t) * (size_t)S);
    b->cls = malloc((size_t)ts->nk);
    b->seen = malloc((size_t)ts->nk);
    b->kdone = malloc((size_t)ts->nk);
    b->und = malloc(sizeof(int32_t) * (size_t)ts->nk);
    b->left = malloc(sizeof(int32_t) * (size_t)ts->nk);
    b->sel = malloc(sizeof(int32_t) * (size_t)ts->nk);
    b->g = malloc(sizeof(int64_t) * (size_t)GATHER(b) * kv);
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
    b->lq = malloc(sizeof(int32_t) * lanes);
    b->lk = malloc(sizeof(int32_t) * lanes);
    b->scls = malloc(ns);
    b->qtb = malloc(sizeof(int64_t) * (size_t)bq * qv);
    b->qv1 = malloc(sizeof(int64_t) * qv);
    b->is = cg_iscratch_new(b->prog);
    b->sc = cg_scratch_new(b->prog);
    ok = b->is && b->sc && b->kiv && b->qrow && b->qpt && b->ktok && b->qtok && b->out && b->cls && b->seen && b->kdone &&
         b->und && b->left && b->sel && b->g && b->sbox && b->qsiv && b->ksiv && b->ksdone && b->lcls && b->lq && b->lk && b->scls && b->qtb && b->qv1;
  }
  if (!ok) {
    blk_lbound_free(b);
    return NULL;
  }
  return b;
}

static int witness(blk_lbound *b, const int64_t *qv, const cg_ival *qpt, const int32_t *und, int nund,
                    uint8_t *seen, int first);
static void point(blk_lbound *b, int64_t q, cg_ival *qpt);

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
  int bq = ts->block_q;
  uint8_t *cls = b->cls, *seen = b->seen;
  int32_t *und = b->und;
  memset(b->kdone, 0, (size_t)ts->nk);
  memset(b->ksdone, 0, (size_t)ts->nk);
  cg_ival_side(prog, 1, b->kbox, ts->nk, b->kiv, ts->nk, b->is);
  int64_t full = 0, part = 0, visited = 0, unsettled = 0, tried = 0, shown = 0;
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
      point(b, q, b->qpt);
      /* a first look at every block's first keys settles half of
      ** dilated's pairs at little cost, and almost none of radial's: kept
      ** while it settles a fair share */
      int first = tried < 256 || 4 * shown >= tried;
      if (first) tried += nund;
      shown += witness(b, b->qtok, b->qpt, und, nund, seen, first);
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

/* The query interfaces' intervals of token q alone. */
static void point(blk_lbound *b, int64_t q, cg_ival *qpt) {
  cg_box box;
  box_range(&b->c, q, q + 1, &box);
  cg_ival_side(b->prog, 0, &box, 1, qpt, 1, b->is);
}

/* Interface intervals of the sub-blocks of MICRO tokens of [p0, p1) into
** iv ([nv][ld]); n returned. */
static int sub_ivals(blk_lbound *b, int key_side, int64_t p0, int64_t p1, cg_ival *iv, int64_t ld) {
  int n = 0;
  for (int64_t p = p0; p < p1; p += MICRO, n++) box_range(&b->c, p, min64(p + MICRO, p1), &b->sbox[n]);
  cg_ival_side(b->prog, key_side, b->sbox, n, iv, ld, b->is);
  return n;
}

/* The sub-block intervals of key block kb, made on first use. */
static const cg_ival *key_subs(blk_lbound *b, int kb) {
  const cg_tableset *ts = &b->ts;
  cg_ival *ksiv = b->ksiv + (int64_t)kb * b->nsk;
  int64_t k0 = (int64_t)kb * ts->block_k;
  if (!b->ksdone[kb]) sub_ivals(b, 1, k0, min64(k0 + ts->block_k, ts->seq), ksiv, (int64_t)ts->nk * b->nsk);
  b->ksdone[kb] = 1;
  return ksiv;
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
** true. A key sub-block the intervals decide against the token holds that
** one value throughout; only those left undecided, of blocks not yet
** shown both, are evaluated token by token: the same bits as every key's,
** for a few of them (a dilated or radial row's undecided blocks are
** mostly decided sub-block by sub-block against one token). With first,
** every block's first sub-block is evaluated first, in one call, and
** only blocks that did not show both go on. The blocks that showed both
** in that first look returned.
*/
static int witness(blk_lbound *b, const int64_t *qv, const cg_ival *qpt, const int32_t *und, int nund,
                    uint8_t *seen, int first) {
  const cg_tableset *ts = &b->ts;
  const cg_prog *prog = b->prog;
  int64_t S = ts->seq, ld = (int64_t)ts->nk * b->nsk;
  int bk = ts->block_k, nkv = cg_prog_nkv(prog), n = 0, nsel = 0;
  int32_t *sel = b->sel;
  int shown = 0;
  if (b->plain) {
    key_sides(prog, &b->c, b->ktok, b->kdone, S, bk, und, nund, b->sc);
    for (int i = 0; i < nund; i++) {
      int64_t k0 = (int64_t)und[i] * bk, k1 = min64(k0 + bk, S);
      cg_prog_row(prog, qv, b->ktok + k0, S, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++) seen[i] |= b->out[k] ? 2 : 1;
    }
    return 0;
  }
  if (first) {
    key_sides(prog, &b->c, b->ktok, b->kdone, S, bk, und, nund, b->sc);
    int64_t m = 0;
    for (int i = 0; i < nund; i++) {
      int64_t k0 = (int64_t)und[i] * bk, len = min64(MICRO, min64(k0 + bk, S) - k0);
      for (int v = 0; v < nkv; v++) memcpy(b->g + v * GATHER(b) + m, b->ktok + v * S + k0, sizeof(int64_t) * (size_t)len);
      b->lq[i] = i;
      b->lq[ts->nk * b->nsk + i] = (int32_t)len;
      m += len;
    }
    gathered(b, qv, m, nund, b->lq, b->lq + ts->nk * b->nsk, seen);
    for (int i = 0; i < nund; i++) shown += seen[i] == 3;
  }
  for (int i = 0; i < nund; i++) {
    if (seen[i] == 3) continue;
    int64_t k0 = (int64_t)und[i] * bk;
    int nks = (int)((min64(k0 + bk, S) - k0 + MICRO - 1) / MICRO);
    key_subs(b, und[i]);
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
  key_sides(prog, &b->c, b->ktok, b->kdone, S, bk, b->left, nneed, b->sc);
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
      for (int v = 0; v < nkv; v++) memcpy(b->g + v * GATHER(b) + m, b->ktok + v * S + s0, sizeof(int64_t) * (size_t)len);
      b->lq[nsub] = i;
      b->lq[ts->nk * b->nsk + nsub++] = (int32_t)len;
      m += len;
    }
  }
  if (m) gathered(b, qv, m, nsub, b->lq, b->lq + ts->nk * b->nsk, seen);
  return shown;
}

/*
** Whether block pair (qb, kb), whose witness saw only value `seen` (1:
** false, 2: true), holds the other value: by the classes of its pairs of
** sub-blocks (cls, [nqs][nks], query sub-block by key sub-block) first,
** then token by token where those leave it open. The query block's
** tokens' interfaces (qtb) are made by the caller.
*/
static int other_value(blk_lbound *b, int qb, int kb, int seen, int nqs, const uint8_t *cls) {
  const cg_tableset *ts = &b->ts;
  const cg_prog *prog = b->prog;
  int64_t S = ts->seq, q0 = (int64_t)qb * ts->block_q, q1 = min64(q0 + ts->block_q, S);
  int64_t k0 = (int64_t)kb * ts->block_k, k1 = min64(k0 + ts->block_k, S);
  int nks = (int)((k1 - k0 + MICRO - 1) / MICRO), nqv = cg_prog_nqv(prog);
  uint8_t want = seen == 1 ? CG_BLK_FULL : CG_BLK_EMPTY;
  for (int i = 0; i < nqs * nks; i++)
    if (cls[i] == want) return 1;
  for (int i = 0; i < nqs; i++) {
    int und = 0;
    for (int j = 0; j < nks; j++) und |= cls[i * nks + j] == CG_BLK_UNDECIDED;
    if (!und) continue;
    int64_t t0 = q0 + (int64_t)i * MICRO, t1 = min64(t0 + MICRO, q1);
    key_sides(prog, &b->c, b->ktok, b->kdone, S, ts->block_k, &kb, 1, b->sc);
    for (int64_t q = t0; q < t1; q++) {
      for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * (q1 - q0) + (q - q0)];
      cg_prog_row(prog, b->qv1, b->ktok + k0, S, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++)
        if (!!b->out[k] == (seen == 1)) return 1;
    }
  }
  return 0;
}

/* The classes of the sub-block pairs of pend[i0, i1) left open (done 0),
** pair after pair into b->lcls, in one call: the executor's cost is paid
** per call, and a pair has only nqs x nks lanes. */
static void sub_pairs(blk_lbound *b, int64_t i0, int64_t i1, int nqs, const uint8_t *done) {
  const cg_tableset *ts = &b->ts;
  int n = 0;
  for (int64_t i = i0; i < i1; i++) {
    if (done[i - i0]) continue;
    int kb = b->pend[i].kb;
    int64_t k0 = (int64_t)kb * ts->block_k;
    int nks = (int)((min64(k0 + ts->block_k, ts->seq) - k0 + MICRO - 1) / MICRO);
    key_subs(b, kb);
    for (int q = 0; q < nqs; q++)
      for (int k = 0; k < nks; k++, n++) {
        b->lq[n] = q;
        b->lk[n] = kb * b->nsk + k;
      }
  }
  cg_ival_pairs_sig(b->prog, b->qsiv, nqs, b->lq, b->ksiv, (int64_t)ts->nk * b->nsk, b->lk, n, b->lcls, NULL, NULL,
                    b->is);
}

/*
** The pairs pend[i0, i1) of query block qb (interfaces of its tokens in
** qtb) that the query tokens at the block's ends see holding the value
** their witness did not: flagged in done, as one witness pass over all of
** them each, far cheaper than other_value pair by pair; only the value
** seen counts, so the pairs settled are the same.
*/
static void end_witnesses(blk_lbound *b, int64_t i0, int64_t i1, int64_t nq, uint8_t *done) {
  const cg_tableset *ts = &b->ts;
  const cg_prog *prog = b->prog;
  int nqv = cg_prog_nqv(prog);
  for (int w = 0; w < 2; w++) {
    int64_t q = w ? nq - 1 : 0;
    int n = 0;
    for (int64_t i = i0; i < i1; i++)
      if (!done[i - i0]) b->und[n] = b->pend[i].kb, b->seen[n++] = 0;
    if (!n) return;
    for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * nq + q];
    point(b, (int64_t)b->pend[i0].qb * ts->block_q + q, b->qpt);
    witness(b, b->qv1, b->qpt, b->und, n, b->seen, 0);
    n = 0;
    for (int64_t i = i0; i < i1; i++)
      if (!done[i - i0]) done[i - i0] = (b->seen[n++] & ~b->pend[i].seen) != 0;
  }
}

/* blk_lbound_plain's settling: every query token against every key. */
static void plain_settle(blk_lbound *b, int64_t i0, int64_t i1, int64_t nq, uint8_t *done) {
  const cg_tableset *ts = &b->ts;
  int64_t S = ts->seq;
  int nqv = cg_prog_nqv(b->prog);
  for (int64_t i = i0; i < i1; i++) {
    const struct pend *pd = &b->pend[i];
    int64_t k0 = (int64_t)pd->kb * ts->block_k, k1 = min64(k0 + ts->block_k, S);
    key_sides(b->prog, &b->c, b->ktok, b->kdone, S, ts->block_k, &pd->kb, 1, b->sc);
    for (int64_t q = 0; q < nq && !done[i - i0]; q++) {
      for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * nq + q];
      cg_prog_row(b->prog, b->qv1, b->ktok + k0, S, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++) done[i - i0] |= (b->out[k] ? 2 : 1) != pd->seen;
    }
  }
}

sieve_status blk_bound_exact(blk_lbound *b, double partial_cost, double *lo, int *exact) {
  *exact = 0;
  if (!b->all_rows) return SIEVE_OK;
  const cg_tableset *ts = &b->ts;
  int64_t S = ts->seq, full = b->full + b->visited, part = b->part;
  uint8_t *done = b->cls;
  for (int64_t i0 = 0, i1; i0 < b->npend; i0 = i1) {
    int qb = b->pend[i0].qb;
    for (i1 = i0 + 1; i1 < b->npend && b->pend[i1].qb == qb;) i1++;
    int64_t q0 = (int64_t)qb * ts->block_q, q1 = min64(q0 + ts->block_q, S);
    int nqs = (int)((q1 - q0 + MICRO - 1) / MICRO);
    sub_ivals(b, 0, q0, q1, b->qsiv, nqs);
    cg_prog_side(b->prog, 0, &b->c, q0, q1 - q0, b->qtb, q1 - q0, b->sc);
    memset(done, 0, (size_t)(i1 - i0));
    if (b->plain) plain_settle(b, i0, i1, q1 - q0, done);
    else {
      end_witnesses(b, i0, i1, q1 - q0, done);
      sub_pairs(b, i0, i1, nqs, done);
    }
    int64_t l = 0;
    for (int64_t i = i0; i < i1; i++) {
      const struct pend *pd = &b->pend[i];
      if (!done[i - i0]) {
        if (b->plain) continue;
        int64_t k0 = (int64_t)pd->kb * ts->block_k, nks = (min64(k0 + ts->block_k, S) - k0 + MICRO - 1) / MICRO;
        int yes = other_value(b, pd->qb, pd->kb, pd->seen, nqs, b->lcls + l);
        l += nqs * nks;
        if (!yes) continue;
      }
      part++; /* partial; a witness's true had counted it visited */
      full -= pd->seen == 2;
    }
  }
  *lo = (double)full + partial_cost * (double)part;
  *exact = 1;
  return SIEVE_OK;
}
