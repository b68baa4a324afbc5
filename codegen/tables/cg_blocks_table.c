/*
** Block tables: one table, from its fixed mask to CSR lists. The mask is
** compiled once for the table, its job prepared and run, and the rows'
** lists, scattered over the workers that wrote them, are copied into the
** tableset's arena in row order; the workers' counts are summed into the
** table's and the tableset's statistics.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

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
  return 0;
}

/*
** Each partial block's memo entry, in table order; NULL when some partial
** block has none (the memo turned off, or the pair had few runs) or out
** of memory.
*/
static int32_t *memo_ids(const job *j, int64_t npart, size_t *cap) {
  int32_t *pm = blk_take(j->pool, POOL_PM, sizeof(int32_t) * (size_t)(npart ? npart : 1), cap);
  int64_t n = 0;
  for (int qb = 0; pm && qb < j->nq; qb++) {
    const rowres *r = &j->rows[qb];
    const worker *w = &j->w[r->w];
    for (int i = 0; i < r->np; i++)
      if ((pm[n++] = w->partm[r->poff + i]) < 0) {
        blk_give(j->pool, POOL_PM, pm, *cap);
        return NULL;
      }
  }
  return pm;
}

sieve_status blk_build_table(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, int bits, cg_err *e) {
  job j = {.pool = ts->pool, .L = L, .S = ts->seq, .bq = ts->block_q, .bk = ts->block_k, .nq = ts->nq, .nk = ts->nk,
           .exact = !!(ts->flags & CG_TABLES_EXACT), .stride = ts->row_stride > 1 ? ts->row_stride : 1,
           .bits = bits, .no_memo = !!(ts->flags & CG_TABLES_NO_MEMO), .stop4 = ts->stop4,
           .no_reuse = !!(ts->flags & CG_TABLES_NO_REUSE)};
  cg_prog *prog = cg_prog_new(g, t->mask);
  sieve_status st = SIEVE_ERR_NOMEM;
  if (prog) {
    cg_prog_bind(prog, 0, 0, 0); /* head, step and layer are constants in t->mask */
    j.prog = prog;
    j.nqv = cg_prog_nqv(prog);
    j.nkv = cg_prog_nkv(prog);
    if (!blk_job_prepare(&j) && !blk_job_run(&j)) {
      if ((ts->stopped = atomic_load(&j.stopped))) {
        for (int i = 0; i < j.nw; i++) t->nfull += j.w[i].nfull, t->npart += j.w[i].npart;
        st = SIEVE_OK;
      } else if (!finish_table(ts, t, &j)) st = SIEVE_OK;
    }
  }
  if (!st && bits && !ts->stopped && blk_memo_bits(j.memo) && blk_memo_on(j.memo)) {
    size_t cap = 0;
    int32_t *pm = memo_ids(&j, t->npart, &cap);
    if (pm) st = blk_bits_from_memo(ts, t, j.memo, pm);
    blk_give(j.pool, POOL_PM, pm, cap);
  }
  blk_job_free(&j);
  cg_prog_free(prog);
  return st == SIEVE_OK ? SIEVE_OK : cg_fail(e, st, "out of memory building block tables");
}
