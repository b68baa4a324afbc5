/*
** Block tables: one table, from its fixed mask to CSR lists. The mask is
** compiled once for the table, its job prepared and run, and the rows'
** lists, scattered over the workers that wrote them, are copied into the
** tableset's arena in row order; the workers' counts are summed into the
** table's and the tableset's statistics. Where worker 0 wrote every row
** (one thread), its lists are in row order already and become the
** table's as they are: a dense table's lists are tens of megabytes, and a
** copy would touch as many fresh pages again.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

static int one_writer(const job *j) {
  for (int qb = 0; qb < j->nq; qb++)
    if (j->rows[qb].w) return 0;
  return 1;
}

/* A worker's list of n entries as the arena's, shrunk to n; NULL out of
** memory (the list then stays the worker's). */
static int32_t *adopt(cg_arena *a, int32_t **list, int64_t n) {
  if (!*list) return cg_alloc(a, sizeof(int32_t));
  int32_t *s = realloc(*list, sizeof(int32_t) * (size_t)(n ? n : 1));
  if (s) *list = s;
  if (cg_arena_own(a, *list)) return NULL;
  s = *list;
  *list = NULL;
  return s;
}

static int32_t *csr(cg_arena *a, job *j, int full, int one, int32_t **idx, int64_t *total) {
  int32_t *ptr = cg_alloc(a, sizeof(int32_t) * (size_t)(j->nq + 1));
  int64_t n = 0;
  for (int qb = 0; qb < j->nq; qb++) n += full ? j->rows[qb].nf : j->rows[qb].np;
  if (one) *idx = adopt(a, full ? &j->w[0].full : &j->w[0].part, n);
  else *idx = cg_alloc(a, sizeof(int32_t) * (size_t)(n ? n : 1));
  if (!ptr || !*idx) return NULL;
  n = 0;
  for (int qb = 0; qb < j->nq; qb++) {
    const rowres *r = &j->rows[qb];
    const worker *w = &j->w[r->w];
    int cnt = full ? r->nf : r->np;
    /* A worker that found no block of a kind has no list to copy from. */
    if (cnt && !one) memcpy(*idx + n, full ? w->full + r->foff : w->part + r->poff, sizeof(int32_t) * (size_t)cnt);
    ptr[qb] = (int32_t)n;
    n += cnt;
  }
  ptr[j->nq] = (int32_t)n;
  *total = n;
  return ptr;
}

static int finish_table(cg_tableset *ts, cg_table *t, job *j, int one) {
  t->nq = j->nq;
  t->nk = j->nk;
  t->full_ptr = csr(ts->arena, j, 1, one, &t->full_idx, &t->nfull);
  t->part_ptr = csr(ts->arena, j, 0, one, &t->part_idx, &t->npart);
  if (!t->full_ptr || !t->part_ptr) return -1;
  t->nempty = (int64_t)j->nq * j->nk - t->nfull - t->npart;
  int64_t st[ST_N] = {0};
  for (int i = 0; i < j->nw; i++)
    for (int k = 0; k < ST_N; k++) st[k] += j->w[i].st[k];
  t->allowed_pairs = st[ST_ALLOWED];
  t->estimated = st[ST_EST];
  ts->estimated += st[ST_EST];
  ts->interval_full += st[ST_IFULL];
  ts->interval_empty += st[ST_IEMPTY];
  ts->interval_undecided += st[ST_IUND];
  ts->refined_full += st[ST_RFULL];
  ts->refined_empty += st[ST_REMPTY];
  ts->refined_partial += st[ST_RPART];
  ts->moved_rows += st[ST_MOVED];
  ts->unmoved_blocks += st[ST_UNMOVED];
  return 0;
}

/*
** Each partial block's bitmask, its first word in the memo's set, in
** table order, in an array of the arena's (worker 0's own list where it
** wrote every row); NULL when some partial block has none (the memo
** turned off, or the pair had few runs) or out of memory.
*/
static int32_t *memo_ids(cg_arena *a, job *j, int64_t npart, int one) {
  for (int i = 0; i < j->nw; i++)
    if (j->w[i].nomask) return NULL;
  if (one) return adopt(a, &j->w[0].partm, npart);
  int32_t *pm = cg_alloc(a, sizeof(int32_t) * (size_t)(npart ? npart : 1));
  for (int64_t n = 0, qb = 0; pm && qb < j->nq; qb++) {
    const rowres *r = &j->rows[qb];
    if (r->np) memcpy(pm + n, j->w[r->w].partm + r->poff, sizeof(int32_t) * (size_t)r->np);
    n += r->np;
  }
  return pm;
}

sieve_status blk_build_prog(cg_tableset *ts, cg_table *t, const lay *L, const cg_prog *prog, int bits,
                            const atomic_llong *stop, cg_err *e) {
  job j = {.pool = ts->pool, .L = L, .S = ts->seq, .bq = ts->block_q, .bk = ts->block_k, .nq = ts->nq, .nk = ts->nk,
           .exact = !!(ts->flags & CG_TABLES_EXACT), .stride = ts->row_stride > 1 ? ts->row_stride : 1,
           .bits = bits, .no_memo = !!(ts->flags & CG_TABLES_NO_MEMO), .stop4 = stop ? INT64_MAX : ts->stop4,
           .stop_live = stop, .merge = ts->stop_merge, .no_reuse = !!(ts->flags & CG_TABLES_NO_REUSE), .prog = prog,
           .nqv = cg_prog_nqv(prog), .nkv = cg_prog_nkv(prog)};
  sieve_status st = SIEVE_ERR_NOMEM;
  int one = 0;
  if (!blk_job_prepare(&j) && !blk_job_run(&j)) {
    if ((ts->stopped = atomic_load(&j.stopped))) {
      for (int i = 0; i < j.nw; i++) t->nfull += j.w[i].nfull, t->npart += j.w[i].npart;
      st = SIEVE_OK;
    } else if (!finish_table(ts, t, &j, one = one_writer(&j))) st = SIEVE_OK;
  }
  if (!st && bits && !ts->stopped && blk_memo_bits(j.memo) && blk_memo_on(j.memo)) {
    int32_t *pm = memo_ids(ts->arena, &j, t->npart, one);
    if (pm) st = blk_bits_from_memo(ts, t, j.memo, pm);
  }
  blk_job_free(&j);
  return st == SIEVE_OK ? SIEVE_OK : cg_fail(e, st, "out of memory building block tables");
}

cg_prog *blk_table_prog(const cg_graph *g, cg_ref mask) {
  cg_prog *prog = cg_prog_new(g, mask);
  if (prog) cg_prog_bind(prog, 0, 0, 0); /* head, step and layer are constants in the mask */
  return prog;
}

sieve_status blk_build_table(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, int bits, cg_err *e) {
  cg_prog *prog = blk_table_prog(g, t->mask);
  sieve_status st = prog ? blk_build_prog(ts, t, L, prog, bits, NULL, e)
                         : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory building block tables");
  cg_prog_free(prog);
  return st;
}
