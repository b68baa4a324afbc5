/*
** A layout scored by building its table (cg_layout_auto.c): the full and
** partial blocks of one mask, over every stride-th query-block row, or
** over every row merged m to one as a kernel merges them, with a stop
** past which the build gives up. A scorer may run on a thread of its own
** while the caller builds other tables, its stop given once known: the
** check of an automatic layout against identity runs beside the build of
** the choice's tables, whose score is that check's stop.
*/
#include <pthread.h>
#include <stdlib.h>

#include "cg_blocks_int.h"

struct blk_scorer {
  cg_tableset *ts;
  cg_table t;
  lay L;
  int have_lay, m, thread, cap;
  cg_prog *prog;
  atomic_llong stop4;  /* a threaded scorer's: INT64_MAX until its finish gives it */
  pthread_t th;
  sieve_status st;
  cg_err e;
};

static void *run(void *arg) {
  blk_scorer *sc = arg;
  if (sc->thread) blk_threads_cap(sc->cap);
  sc->st = blk_build_prog(sc->ts, &sc->t, &sc->L, sc->prog, 0, sc->thread ? &sc->stop4 : NULL, &sc->e);
  return NULL;
}

static void scorer_free(blk_scorer *sc) {
  if (sc->have_lay) blk_lay_free(&sc->L);
  cg_prog_free(sc->prog);
  cg_tables_free(sc->ts);
  free(sc);
}

sieve_status blk_scorer_start(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride, int m,
                              int64_t stop4, int thread, blk_pool *pool, blk_scorer **out, cg_err *e) {
  *out = NULL;
  blk_scorer *sc = calloc(1, sizeof *sc);
  if (!sc) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  sc->t = (cg_table){.mask = mask};
  sc->m = m > 1 ? m : 1;
  sieve_status st = blk_tableset_new(p, s, 0, 0, &sc->ts, e);
  if (!st) {
    sc->ts->pool = thread ? NULL : pool; /* the caller's builds take from its pool meanwhile */
    sc->ts->row_stride = stride;
    sc->ts->stop4 = thread ? 0 : stop4;
    sc->ts->stop_merge = sc->m;
    sc->have_lay = !blk_lay_init(&sc->L, l, &sc->ts->shape, sc->ts);
    /* compiled here: the caller's builds meanwhile add to p's graph */
    sc->prog = blk_table_prog(p->g, mask);
    if (!sc->have_lay || !sc->prog) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  if (st) {
    scorer_free(sc);
    return st;
  }
  atomic_init(&sc->stop4, INT64_MAX);
  /* without a thread, the build runs here, with no stop where one was wanted later */
  sc->thread = thread > 0;
  sc->cap = thread;
  if (sc->thread && pthread_create(&sc->th, NULL, run, sc)) sc->thread = 0;
  if (!sc->thread) run(sc);
  *out = sc;
  return SIEVE_OK;
}

static void merge_keys(const int32_t *k, int64_t n, int full, int32_t stamp, int32_t *cnt, int32_t *seen,
                       int64_t *vis) {
  for (int64_t i = 0; i < n; i++) {
    int32_t kb = k[i];
    if (seen[kb] != stamp) {
      seen[kb] = stamp;
      cnt[kb] = 0;
      (*vis)++;
    }
    cnt[kb] += full;
  }
}

void blk_merge_row(const int32_t *f, int64_t nf, const int32_t *p, int64_t np, int32_t stamp, int32_t *cnt,
                   int32_t *seen, int64_t *vis) {
  merge_keys(f, nf, 1, stamp, cnt, seen, vis);
  merge_keys(p, np, 0, stamp, cnt, seen, vis);
}

/* a key block full in every row is full in the first */
int64_t blk_merge_full(const int32_t *f, int64_t nf, int m, const int32_t *cnt) {
  int64_t n = 0;
  for (int64_t i = 0; i < nf; i++) n += cnt[f[i]] == m;
  return n;
}

/* Rows [r0, r1) of t merged into one: its full and visited key blocks,
** with cnt and seen (stamp r0) scratch over the key blocks. */
static void merge_rows(const cg_table *t, int r0, int r1, int32_t *cnt, int32_t *seen, int64_t *full, int64_t *vis) {
  for (int r = r0; r < r1; r++)
    blk_merge_row(t->full_idx + t->full_ptr[r], t->full_ptr[r + 1] - t->full_ptr[r], t->part_idx + t->part_ptr[r],
                  t->part_ptr[r + 1] - t->part_ptr[r], r0, cnt, seen, vis);
  *full += blk_merge_full(t->full_idx + t->full_ptr[r0], t->full_ptr[r0 + 1] - t->full_ptr[r0], r1 - r0, cnt);
}

sieve_status blk_scorer_finish(blk_scorer *sc, int64_t stop4, int64_t *full, int64_t *part, int *stopped, cg_err *e) {
  *full = *part = 0;
  *stopped = 0;
  if (!sc) return SIEVE_OK;
  if (sc->thread) {
    atomic_store(&sc->stop4, stop4 ? stop4 : INT64_MAX);
    pthread_join(sc->th, NULL);
  }
  sieve_status st = sc->st;
  if (st && e) *e = sc->e;
  cg_tableset *ts = sc->ts;
  *stopped = !st && ts->stopped;
  if (!st && sc->m == 1) {
    /* stopped, those of the rows built */
    *full = sc->t.nfull;
    *part = sc->t.npart;
  } else if (!st && !*stopped) {
    int32_t *cnt = malloc(sizeof(int32_t) * 2 * (size_t)ts->nk);
    if (!cnt) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else {
      int32_t *seen = cnt + ts->nk;
      for (int k = 0; k < ts->nk; k++) seen[k] = -1;
      int64_t vis = 0;
      for (int r0 = 0; r0 < ts->nq; r0 += sc->m)
        merge_rows(&sc->t, r0, r0 + sc->m < ts->nq ? r0 + sc->m : ts->nq, cnt, seen, full, &vis);
      *part = vis - *full;
      free(cnt);
    }
  }
  scorer_free(sc);
  return st;
}

sieve_status blk_score_layout(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride, int m,
                              int64_t stop4, blk_pool *pool, int64_t *full, int64_t *part, int *stopped, cg_err *e) {
  blk_scorer *sc = NULL;
  sieve_status st = blk_scorer_start(p, s, mask, l, stride, m, stop4, 0, pool, &sc, e);
  sieve_status fin = blk_scorer_finish(sc, stop4, full, part, stopped, e);
  return st ? st : fin;
}
