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
** (dense masks: none is undecided) the bound is the exact score.
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

/* What query token q sees against the key blocks und[0..nund): seen[i] bit
** 0 set by a false, bit 1 by a true. Consecutive blocks go in one call. */
static void witness(const cg_prog *prog, const cg_coords *c, int64_t q, int64_t *ktok, uint8_t *kdone, int64_t S,
                    int bk, const int32_t *und, int nund, uint8_t *seen, int64_t *qv, int64_t *out, cg_scratch *s) {
  cg_prog_side(prog, 0, c, q, 1, qv, 1, s);
  for (int i = 0; i < nund;) {
    int e = i + 1;
    while (e < nund && und[e] == und[e - 1] + 1) e++;
    int64_t k0 = (int64_t)und[i] * bk, k1 = min64((int64_t)und[e - 1] * bk + bk, S);
    for (int b = i; b < e;) { /* key interfaces as blocks first need them (most never do), a run at a time */
      int r = b;
      while (r < e && !kdone[und[r]]) kdone[und[r++]] = 1;
      if (r > b) {
        int64_t b0 = (int64_t)und[b] * bk;
        cg_prog_side(prog, 1, c, b0, min64((int64_t)und[r - 1] * bk + bk, S) - b0, ktok + b0, S, s);
      }
      b = r > b ? r : b + 1;
    }
    cg_prog_row(prog, qv, ktok + k0, S, (int)(k1 - k0), out, s);
    for (int b = i; b < e; b++) {
      int64_t b0 = (int64_t)und[b] * bk - k0, b1 = min64(b0 + bk, k1 - k0);
      for (int64_t k = b0; k < b1 && seen[b] != 3; k++) seen[b] |= out[k] ? 2 : 1;
    }
    i = e;
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
  lay L;
  cg_prog *prog;
  cg_iscratch *is;
  cg_scratch *sc;
  cg_ival *qrow, *kiv;
  int64_t *ktok, *qtok, *out;
  uint8_t *cls, *seen, *kdone;
  int32_t *und;
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
  cg_prog_free(b->prog);
  blk_lay_free(&b->L); /* blk_lay_init zeroes L first, so this frees what it made */
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
  const cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  int ok = !blk_lay_init(&b->L, &id, s, ts) && (b->prog = cg_prog_new(p->g, mask));
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
    b->is = cg_iscratch_new(b->prog);
    b->sc = cg_scratch_new(b->prog);
    ok = b->is && b->sc && b->kiv && b->qrow && b->ktok && b->qtok && b->out && b->cls && b->seen && b->kdone &&
         b->und;
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
  if (blk_lay_set(&b->L, l, &ts->shape, ts)) return cg_fail(e, SIEVE_ERR_ARG, "an invalid layout");
  const cg_prog *prog = b->prog;
  int64_t S = ts->seq;
  int bq = ts->block_q, bk = ts->block_k, nqv = cg_prog_nqv(prog);
  uint8_t *cls = b->cls, *seen = b->seen;
  int32_t *und = b->und;
  memset(b->kdone, 0, (size_t)ts->nk);
  cg_ival_side(prog, 1, b->L.kbox, ts->nk, b->kiv, ts->nk, b->is);
  int64_t full = 0, part = 0, visited = 0, unsettled = 0;
  for (int qb = 0; qb < ts->nq; qb += stride) {
    cg_ival_side(prog, 0, b->L.qbox + qb, 1, b->qrow, 1, b->is);
    cg_ival_row(prog, b->qrow, b->kiv, ts->nk, ts->nk, cls, b->is);
    int nund = 0;
    for (int kb = 0; kb < ts->nk; kb++)
      if (cls[kb] == CG_BLK_FULL) full++;
      else if (cls[kb] == CG_BLK_UNDECIDED) seen[nund] = 0, und[nund++] = kb;
    int64_t q0 = (int64_t)qb * bq, q1 = min64(q0 + bq, S) - 1;
    for (int w = 0; w < WITNESSES && nund; w++) {
      int64_t q = q0 + (q1 - q0) * (2 * w + 1) / (2 * WITNESSES);
      witness(prog, &b->L.c, q, b->ktok, b->kdone, S, bk, und, nund, seen, b->qtok, b->out, b->sc);
      int left = 0; /* pairs proven partial are settled: later witnesses skip them */
      for (int i = 0; i < nund; i++)
        if (seen[i] == 3) part++;
        else seen[left] = seen[i], und[left++] = und[i];
      nund = left;
    }
    for (int i = 0; i < nund; i++) visited += seen[i] == 2;
    unsettled += nund;
    if ((double)(full + visited) + partial_cost * (double)part > stop) {
      unsettled++; /* rows left out */
      break;
    }
  }
  (void)nqv;
  *exact = !unsettled;
  *lo = (double)(full + visited) + partial_cost * (double)part;
  return SIEVE_OK;
}
