/*
** Settling a bound (cg_layout_bound.c): where a bound ran every row, the
** pairs its witnesses saw hold one value only are settled, each by
** whether it holds the other anywhere, and the bound becomes the exact
** score. The query block's end tokens try all of a row's open pairs in
** one witness pass each, then the remaining pairs by intervals, their
** query sub-blocks against whole key blocks and then the sub-block pairs
** those leave open (a call for each per row), and tokens only where
** those leave it open: the same answers as every token pair's, cheaper.
** Settling only adds, so it may stop once past a value the caller needs
** no more than (cg_layout_auto.c: a score past the best so far); the end
** tokens then go over every row first (blk_bound_exact). A query block's
** pairs are a row, run on the bound's threads (blk_lb_rows) and added up
** in row order, so the stop is one thread's.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_layout_bound.h"

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
  const int64_t *kv = NULL;
  int64_t ldk = 0;
  for (int i = 0; i < nqs * nks; i++)
    if (cls[i] == want) return 1;
  for (int i = 0; i < nqs; i++) {
    int und = 0;
    for (int j = 0; j < nks; j++) und |= cls[i * nks + j] == CG_BLK_UNDECIDED;
    if (!und) continue;
    int64_t t0 = q0 + (int64_t)i * MICRO, t1 = min64(t0 + MICRO, q1);
    if (!kv) kv = blk_lb_block_keys(b, kb, &ldk);
    for (int64_t q = t0; q < t1; q++) {
      for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * (q1 - q0) + (q - q0)];
      cg_prog_row(prog, b->qv1, kv, ldk, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++)
        if (!!b->out[k] == (seen == 1)) return 1;
    }
  }
  return 0;
}

/* Key sub-blocks of key block kb. */
static int key_subs_of(const blk_lbound *b, int kb) {
  int64_t k0 = (int64_t)kb * b->ts.block_k;
  return (int)((min64(k0 + b->ts.block_k, b->ts.seq) - k0 + MICRO - 1) / MICRO);
}

/*
** The classes of the sub-block pairs of pend[i0, i1) left open (done 0),
** pair after pair into b->lcls ([nqs][nks] each), in two calls: the
** executor's cost is paid per call, and a pair has only nqs x nks lanes.
** Each query sub-block meets the whole key block first; where that
** decides, its sub-block pairs take the class (the intervals are sound:
** other_value finds the same), and only the others are evaluated: a pair
** left open by its witnesses is mostly decided so, sub-row by sub-row.
*/
static void sub_pairs(blk_lbound *b, int64_t i0, int64_t i1, int nqs, const uint8_t *done) {
  const struct pend *pend = blk_lb_pend(b);
  const cg_tableset *ts = &b->ts;
  int n = 0;
  for (int64_t i = i0; i < i1; i++)
    if (!done[i - i0])
      for (int q = 0; q < nqs; q++, n++) {
        b->lq[n] = q;
        b->lk[n] = pend[i].kb;
      }
  cg_ival_pairs_sig(b->prog, b->qsiv, nqs, b->lq, b->kiv, ts->nk, b->lk, n, b->ccls, NULL, NULL, b->is);
  int m = 0;
  n = 0;
  for (int64_t i = i0; i < i1; i++) {
    if (done[i - i0]) continue;
    int kb = pend[i].kb, nks = key_subs_of(b, kb);
    for (int q = 0; q < nqs; q++, n++) {
      if (b->ccls[n] != CG_BLK_UNDECIDED) continue;
      blk_lb_key_subs(b, kb);
      for (int k = 0; k < nks; k++, m++) {
        b->lq[m] = q;
        b->lk[m] = kb * b->nsk + k;
      }
    }
  }
  cg_ival_pairs_sig(b->prog, b->qsiv, nqs, b->lq, b->ksiv, (int64_t)ts->nk * b->nsk, b->lk, m, b->fcls, NULL, NULL,
                    b->is);
  int64_t l = 0;
  m = n = 0;
  for (int64_t i = i0; i < i1; i++) {
    if (done[i - i0]) continue;
    int nks = key_subs_of(b, pend[i].kb);
    for (int q = 0; q < nqs; q++, n++, l += nks)
      if (b->ccls[n] != CG_BLK_UNDECIDED) memset(b->lcls + l, b->ccls[n], (size_t)nks);
      else {
        memcpy(b->lcls + l, b->fcls + m, (size_t)nks);
        m += nks;
      }
  }
}

/*
** The pairs pend[i0, i1) of query block qb (interfaces of its tokens in
** qtb) that the query tokens at the block's ends see holding the value
** their witness did not: flagged in done, as one witness pass over all of
** them each, far cheaper than other_value pair by pair; only the value
** seen counts, so the pairs settled are the same.
*/
static void end_witnesses(blk_lbound *b, int64_t i0, int64_t i1, int64_t nq, uint8_t *done) {
  const struct pend *pend = blk_lb_pend(b);
  const cg_tableset *ts = &b->ts;
  const cg_prog *prog = b->prog;
  int nqv = cg_prog_nqv(prog);
  for (int w = 0; w < 2; w++) {
    int64_t q = w ? nq - 1 : 0;
    int n = 0;
    for (int64_t i = i0; i < i1; i++)
      if (!done[i - i0]) b->und[n] = pend[i].kb, b->seen[n++] = 0;
    if (!n) return;
    for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * nq + q];
    blk_lb_point(b, (int64_t)pend[i0].qb * ts->block_q + q, b->qpt);
    blk_lb_witness(b, b->qv1, b->qpt, b->und, n, b->seen, 0);
    n = 0;
    for (int64_t i = i0; i < i1; i++)
      if (!done[i - i0]) done[i - i0] = (b->seen[n++] & ~pend[i].seen) != 0;
  }
}

/* blk_lbound_plain's settling: every query token against every key. */
static void plain_settle(blk_lbound *b, int64_t i0, int64_t i1, int64_t nq, uint8_t *done) {
  const struct pend *pend = blk_lb_pend(b);
  const cg_tableset *ts = &b->ts;
  int64_t S = ts->seq;
  int nqv = cg_prog_nqv(b->prog);
  for (int64_t i = i0; i < i1; i++) {
    const struct pend *pd = &pend[i];
    int64_t k0 = (int64_t)pd->kb * ts->block_k, k1 = min64(k0 + ts->block_k, S), ldk;
    const int64_t *kv = blk_lb_block_keys(b, pd->kb, &ldk);
    for (int64_t q = 0; q < nq && !done[i - i0]; q++) {
      for (int v = 0; v < nqv; v++) b->qv1[v] = b->qtb[v * nq + q];
      cg_prog_row(b->prog, b->qv1, kv, ldk, (int)(k1 - k0), b->out, b->sc);
      for (int64_t k = 0; k < k1 - k0; k++) done[i - i0] |= (b->out[k] ? 2 : 1) != pd->seen;
    }
  }
}

/* Row k's query block (pend[groups[k], groups[k + 1]), one query
** block's, by worker b): its tokens' interfaces into qtb; [*i0, *i1)
** its pairs, *nq its tokens. */
static int64_t row_tokens(blk_lbound *b, int k, int64_t *i0, int64_t *i1) {
  const blk_lbound *o = b->owner ? b->owner : b;
  const cg_tableset *ts = &b->ts;
  *i0 = o->groups[k];
  *i1 = o->groups[k + 1];
  int64_t q0 = (int64_t)blk_lb_pend(b)[*i0].qb * ts->block_q, q1 = min64(q0 + ts->block_q, ts->seq);
  cg_prog_side(b->prog, 0, &b->c, q0, q1 - q0, b->qtb, q1 - q0, b->sc);
  return q1 - q0;
}

/* The pairs of pend[i0, i1) flagged in done, turned partial, into r. */
static void turned(const struct pend *pend, int64_t i0, int64_t i1, const uint8_t *done, struct lrow *r) {
  *r = (struct lrow){0};
  for (int64_t i = i0; i < i1; i++)
    if (done[i - i0]) {
      r->part++; /* partial; a witness's true had counted it visited */
      r->full -= pend[i].seen == 2;
    }
}

/* Settling's first pass, row k by worker b: the end tokens' witnesses
** alone, their findings kept in the owner's endp. */
static int ends_row(blk_lbound *b, int k, struct lrow *r) {
  blk_lbound *o = b->owner ? b->owner : b;
  int64_t i0, i1, nq = row_tokens(b, k, &i0, &i1);
  uint8_t *done = o->endp + i0;
  memset(done, 0, (size_t)(i1 - i0));
  end_witnesses(b, i0, i1, nq, done);
  turned(blk_lb_pend(b), i0, i1, done, r);
  return 0;
}

/* Settling's row k by worker b: the pairs turned partial into r. */
static int settle_row(blk_lbound *b, int k, struct lrow *r) {
  const blk_lbound *o = b->owner ? b->owner : b;
  const struct pend *pend = blk_lb_pend(b);
  int64_t i0, i1, nq = row_tokens(b, k, &i0, &i1);
  uint8_t *done = b->cls;
  int64_t q0 = (int64_t)pend[i0].qb * b->ts.block_q;
  int nqs = (int)((nq + MICRO - 1) / MICRO);
  blk_lb_sub_ivals(b, 0, q0, q0 + nq, b->qsiv, nqs);
  if (o->ends) memcpy(done, o->endp + i0, (size_t)(i1 - i0));
  else memset(done, 0, (size_t)(i1 - i0));
  if (b->plain) plain_settle(b, i0, i1, nq, done);
  else {
    if (!o->ends) end_witnesses(b, i0, i1, nq, done);
    sub_pairs(b, i0, i1, nqs, done);
  }
  int64_t l = 0;
  for (int64_t i = i0; i < i1; i++) {
    const struct pend *pd = &pend[i];
    if (done[i - i0] || b->plain) continue;
    done[i - i0] = (uint8_t)other_value(b, pd->qb, pd->kb, pd->seen, nqs, b->lcls + l);
    l += nqs * key_subs_of(b, pd->kb);
  }
  turned(pend, i0, i1, done, r);
  return 0;
}

/* Settling's rows by row, from the bound's counts, to the first past
** stop (*lo that sum, 1) or the last (*lo the score, 0). */
static int rows_past(blk_lbound *b, int n, blk_lb_row row, double partial_cost, double stop, double *lo, int *fail) {
  int64_t full = b->full + b->visited, part = b->part;
  *fail = blk_lb_rows(b, n, row, stop, partial_cost, full, part);
  for (int k = 0; k < n && !*fail; k++) {
    full += b->rows[k].full;
    part += b->rows[k].part;
    /* settling only adds (a pair counted visited or empty turns partial) */
    if ((double)full + partial_cost * (double)part > stop) {
      *lo = (double)full + partial_cost * (double)part;
      return 1;
    }
  }
  *lo = (double)full + partial_cost * (double)part;
  return 0;
}

/*
** With a stop, the end tokens' pass runs over every row first: where a
** candidate's score passes the best, it mostly does so by what they find,
** and the rows' costly part is left undone (radial_auto's spatial class
** at hunyuan-720p, one thread: 12 of the 13 candidates that pass it did
** so, in 0.4-1.7 ms each against 0.8-6.1 settled row by row; all 16
** settlings 66 -> 45 ms). Its findings then stand in for the same pass
** in the settling that follows, so a candidate settled whole pays little
** for it (the thirteenth: 8.8 -> 9.7 ms). The bound it stops at is one
** thread's as well.
*/
sieve_status blk_bound_exact(blk_lbound *b, double partial_cost, double stop, double *lo, int *exact) {
  *exact = 0;
  if (!b->all_rows) return SIEVE_OK;
  int n = 0, fail = 0;
  for (int64_t i = 0; i < b->npend; i++)
    if (!i || b->pend[i].qb != b->pend[i - 1].qb) b->groups[n++] = i;
  b->groups[n] = b->npend;
  int ends = !b->plain && stop < INFINITY;
  if (ends && b->npend > b->capends) {
    uint8_t *x = realloc(b->endp, (size_t)b->npend);
    if (!x) return SIEVE_ERR_NOMEM;
    b->endp = x;
    b->capends = b->npend;
  }
  if (ends && rows_past(b, n, ends_row, partial_cost, stop, lo, &fail)) return SIEVE_OK;
  b->ends = ends && !fail;
  int past = fail ? 0 : rows_past(b, n, settle_row, partial_cost, stop, lo, &fail);
  b->ends = 0;
  if (fail) return SIEVE_ERR_NOMEM;
  *exact = !past;
  return SIEVE_OK;
}
