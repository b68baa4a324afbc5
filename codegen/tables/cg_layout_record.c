/*
** Every candidate's bound at once (cg_layout_bound.c), for the ranking of
** automatic layouts (cg_layout_auto.c). Taken one at a time, a bound's
** few dozen rows are split over the threads, and each stops past the best
** score so far: on a 16-core host radial's ranking ran 3.4x faster than on
** one core, where a candidate's rows wait for its slowest. Here each
** worker bounds whole layouts on its own, and the rows' counts and open
** pairs are kept; the ranking then reads any bound it asks for, at any
** stop and on the guesses' rows, from the record, as blk_bound_layout
** would compute it: a row's counts do not depend on the stop, the worker
** or the other rows. A candidate's rows stop past the least score that a
** candidate recorded whole can reach (its bound with every open pair
** partial; identity's run whole): the best score is no more, so a stop
** at the best lies within the rows kept. A stop that the rows kept do not
** pass (the take's before it reaches the best) is made anew: none for
** radial_auto at hunyuan-720p. The guesses' rows are made first
** and whole, so the guesses and the take after a misled guess come free.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_layout_bound.h"

/* Worker w's own layout state, made on first use (w[0] has b's). */
static int own_state(blk_lbound *w) {
  if (!w->owner || w->okbox) return 0;
  const cg_tableset *ts = &w->ts;
  size_t kv = (size_t)(cg_prog_nkv(w->prog) ? cg_prog_nkv(w->prog) : 1);
  if (cg_coords_init(&w->oc, ts->seq)) return -1;
  w->okbox = malloc(sizeof(cg_box) * (size_t)ts->nk);
  w->oqbox = ts->block_q == ts->block_k ? w->okbox : malloc(sizeof(cg_box) * (size_t)ts->nq);
  w->okiv = malloc(sizeof(cg_ival) * (size_t)ts->nk * kv);
  w->oskiv = malloc(sizeof(cg_ival) * (size_t)w->nks * kv);
  return w->okbox && w->oqbox && w->okiv && w->oskiv ? 0 : -1;
}

/* The least of the scores that layouts recorded whole can have at most
** (most: this one's, its bound with every open pair partial, as settling
** turns a pair partial at most). */
static void upper(blk_lbound *b, double most) {
  pthread_mutex_lock(&b->mu);
  b->rstop = most < b->rstop ? most : b->rstop;
  pthread_mutex_unlock(&b->mu);
}

/* Layout i's bound by worker w alone into its record: the rows that are
** multiples of revery first (the guesses read every one), then the others
** in order, to the first row where the counts pass rstop (layout 0 runs
** whole); -1 out of memory or for an invalid layout. */
static int record_one(blk_lbound *w, blk_lbound *b, int i, double partial_cost) {
  const cg_tableset *ts = &w->ts;
  struct blk_lrec *r = &b->recs[i];
  int nrows = (ts->nq + b->rstride - 1) / b->rstride;
  if (blk_lb_load(w, &b->recl[i]) || !(r->rows = malloc(sizeof *r->rows * (size_t)nrows))) return -1;
  blk_lb_fresh(w, w->plain);
  for (int k = 0; k < nrows; k += b->revery)
    if (blk_lb_bound_row(w, k * b->rstride, &r->rows[k])) return -1;
  int64_t full = 0, part = 0, visited = 0;
  r->made = nrows;
  for (int k = 0; k < nrows; k++) {
    if (k % b->revery && blk_lb_bound_row(w, k * b->rstride, &r->rows[k])) return -1;
    full += r->rows[k].full;
    part += r->rows[k].part;
    visited += r->rows[k].visited;
    pthread_mutex_lock(&b->mu);
    double stop = b->rstop;
    pthread_mutex_unlock(&b->mu);
    if (i && (double)(full + visited) + partial_cost * (double)part > stop) {
      r->made = k + 1;
      break;
    }
  }
  /* the open pairs move to the record; the worker's next layout grows anew */
  r->pend = w->wp;
  r->npend = w->nwp;
  w->wp = NULL;
  w->nwp = w->capwp = 0;
  if (r->made == nrows) upper(b, (double)(full + visited) + partial_cost * (double)(part + r->npend));
  return 0;
}

/* A worker: layouts in turn, on its own state, until none is left. */
static void *record_layouts(void *arg) {
  blk_lbound *w = *(blk_lbound **)arg, *b = w->owner ? w->owner : w;
  int fail = own_state(w);
  if (!fail && w->owner) {
    w->c = w->oc;
    w->qbox = w->oqbox;
    w->kbox = w->okbox;
    w->kiv = w->okiv;
    w->skiv = w->oskiv;
  }
  pthread_mutex_lock(&b->mu);
  b->fail |= fail;
  while (!b->fail && b->next < b->nrec) {
    int i = b->next++;
    pthread_mutex_unlock(&b->mu);
    fail = record_one(w, b, i, b->partial_cost);
    pthread_mutex_lock(&b->mu);
    b->fail |= fail;
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

void blk_lb_records_free(blk_lbound *b) {
  for (int i = 0; i < b->nrec; i++) {
    free(b->recs[i].rows);
    free(b->recs[i].pend);
  }
  free(b->recs);
  free(b->recl);
  b->recs = NULL;
  b->recl = NULL;
  b->nrec = 0;
  for (int i = 1; b->w && i < b->nw; i++) {
    blk_lbound *w = b->w[i];
    if (!w || !w->okbox) continue;
    cg_coords_free(&w->oc);
    if (w->oqbox != w->okbox) free(w->oqbox);
    free(w->okbox);
    free(w->okiv);
    free(w->oskiv);
    w->okbox = w->oqbox = NULL;
    w->okiv = w->oskiv = NULL;
  }
}

sieve_status blk_bound_record(blk_lbound *b, const cg_layout *ls, int n, int stride, int every, double partial_cost,
                              cg_err *e) {
  blk_lb_records_free(b);
  b->recs = calloc((size_t)(n ? n : 1), sizeof *b->recs);
  b->recl = malloc(sizeof *b->recl * (size_t)(n ? n : 1));
  if (!b->recs || !b->recl) {
    blk_lb_records_free(b);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory bounding layouts' block areas");
  }
  memcpy(b->recl, ls, sizeof *b->recl * (size_t)n);
  b->nrec = n;
  b->rstride = stride;
  b->revery = every;
  b->rstop = INFINITY;
  b->partial_cost = partial_cost;
  b->next = b->fail = 0;
  for (int i = 1; i < b->nw; i++) b->w[i]->plain = b->plain;
  blk_on_threads(b->nw < n ? b->nw : n, record_layouts, b->w, sizeof *b->w);
  /* the workers read b's layout state again (settling's rows) */
  for (int i = 1; i < b->nw; i++) {
    blk_lbound *w = b->w[i];
    w->c = b->c;
    w->qbox = b->qbox;
    w->kbox = b->kbox;
    w->kiv = b->kiv;
    w->skiv = b->skiv;
  }
  if (b->fail) {
    blk_lb_records_free(b);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory bounding layouts' block areas");
  }
  return SIEVE_OK;
}

/* With every 1, a bound that ran every row leaves pairs to settle: b
** takes the layout, as blk_bound_layout would have, for blk_bound_exact.
** A stop the record's rows do not pass, where it left rows out, is made
** anew. */
sieve_status blk_bound_replay(blk_lbound *b, int i, int every, double partial_cost, double stop, double *lo,
                              int *exact, cg_err *e) {
  const cg_tableset *ts = &b->ts;
  const struct blk_lrec *r = &b->recs[i];
  int nrows = (ts->nq + b->rstride - 1) / b->rstride;
  *lo = 0;
  *exact = 0;
  if (every != 1 && every != b->revery)
    return cg_fail(e, SIEVE_ERR_ARG, "a bound on every %d-th row, which the record does not hold", every);
  if (blk_lb_sum(b, r->rows, every == 1 ? r->made : nrows, every, r->pend, partial_cost, stop, lo, exact))
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory bounding a layout's block area");
  if (every == 1 && r->made < nrows && b->all_rows)
    return blk_bound_layout(b, &b->recl[i], b->rstride, partial_cost, stop, lo, exact, e);
  if (!b->all_rows || *exact) return SIEVE_OK;
  if (blk_lb_take(b, &b->recl[i], b->rstride)) return cg_fail(e, SIEVE_ERR_ARG, "an invalid layout");
  return SIEVE_OK;
}

/* Bound i made anew and read from the record at stop, then each settled
** where it ran every row: 1 where they differ. */
static int same_bound(blk_lbound *b, int i, int every, double partial_cost, double stop) {
  double lo[2], set[2];
  int ex[2], all[2];
  cg_err e = {0};
  for (int r = 0; r < 2; r++) {
    sieve_status st = r ? blk_bound_replay(b, i, every, partial_cost, stop, &lo[r], &ex[r], &e)
                        : blk_bound_layout(b, &b->recl[i], b->rstride * every, partial_cost, stop, &lo[r], &ex[r], &e);
    all[r] = b->all_rows;
    set[r] = lo[r];
    int sx = ex[r];
    if (st || (every == 1 && !sx && blk_bound_exact(b, partial_cost, INFINITY, &set[r], &sx))) return -1;
  }
  /* a guess (every past 1) never settles: its rows are not every row */
  return lo[0] != lo[1] || ex[0] != ex[1] || (every == 1 && (all[0] != all[1] || set[0] != set[1]));
}

int blk_bound_check_record(blk_lbound *b, const cg_layout *ls, int n, int stride, int every, double partial_cost,
                           int *anew) {
  cg_err e = {0};
  if (blk_bound_record(b, ls, n, stride, every, partial_cost, &e)) return -1;
  int nrows = (b->ts.nq + stride - 1) / stride, bad = 0;
  for (int i = 0; i < n && bad >= 0; i++) {
    const struct blk_lrec *r = &b->recs[i];
    double whole = 0, made = 0;
    for (int k = 0; k < r->made; k++)
      made += (double)(r->rows[k].full + r->rows[k].visited) + partial_cost * (double)r->rows[k].part;
    if (r->made == nrows) whole = made;
    /* stops the record's rows pass, and (a record cut short) ones past them */
    const double stops[] = {INFINITY, b->rstop, made / 2, made, made - 1, whole ? whole + 1 : made + 1};
    for (size_t s = 0; s < sizeof stops / sizeof *stops && bad >= 0; s++) {
      *anew += r->made < nrows && stops[s] >= made;
      for (int ev = 0; ev < 2 && bad >= 0; ev++) {
        int d = same_bound(b, i, ev ? every : 1, partial_cost, stops[s]);
        bad = d < 0 ? -1 : bad + d;
      }
    }
  }
  return bad;
}
