/*
** Block tables. For each distinct (layout, mask with head/step/layer fixed)
** one table: every (query block, key block) pair is classified by interval
** evaluation over the blocks' coordinate boxes, and the undecided pairs are
** counted exactly. This file drives a build; the stages are in
** cg_blocks_*.c, their shared state in cg_blocks_int.h:
**   heads    which heads share a table (cg_blocks_heads.c)
**   layout   each distinct layout's block boxes (cg_blocks_layout.c)
**   table    one table's job, prepared (cg_blocks_job.c, cg_blocks_runs.c),
**            run row by row on threads (cg_blocks_rows.c), its undecided
**            pairs settled once per distinct pair by the memo
**            (cg_blocks_memo.c, its keys' arithmetic in cg_blocks_hash.h),
**            which evaluates a pair by its mini and micro pairs, each
**            distinct one once (cg_blocks_micro.c), else shown partial by sampled witnesses
**            (cg_blocks_witness.c) or refined (cg_blocks_refine.c),
**            assembled into CSR (cg_blocks_table.c); large buffers kept
**            for the next table (cg_blocks_pool.c); a row that is an
**            earlier row moved copies it where its key blocks moved along,
**            and the row before where a key block's picture is the key's
**            alone (cg_blocks_reuse.c)
**   bits     bitmasks of the partial blocks, for classes whose predicate
**            costs more than a bit: the memo's, or their own pass
**            (cg_blocks_bits.c), each distinct one kept once
**            (cg_blocks_bitset.c)
**   pack     the kernel's buffer (cg_blocks_pack.c)
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */

#include <stdlib.h>
#include <time.h>

#include "cg_blocks_int.h"

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
  int bq = cg_pattern_block_q(p), bk = cg_pattern_block_k(p);
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
    if ((ts->head_table[h] = blk_head_table(p, ts, h)) < 0) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  lay *lays = calloc((size_t)ts->ntables, sizeof(lay));
  int nlays = 0;
  sieve_status st = lays ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int i = 0; !st && i < ts->ntables; i++) {
    cg_table *t = &ts->tables[i];
    const cg_layout *l = &p->classes[t->cls].layout;
    int k = 0;
    while (k < nlays && !blk_same_layout(&lays[k].l, l)) k++;
    if (k == nlays && blk_lay_init(&lays[nlays++], l, &ts->shape, ts))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else if (blk_pos_mask(p, ts, t))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else
      st = blk_build_table(ts, t, &lays[k], p->g, ts->bits_classes >> t->cls & 1, e);
    if (!st && ts->bits_classes) t->ent_words = 2;
    if (!st && (ts->bits_classes >> t->cls & 1) && !t->bits) st = blk_build_bits(ts, t, &lays[k], p->g, e);
  }
  for (int k = 0; k < nlays; k++) blk_lay_free(&lays[k]);
  free(lays);
  return st;
}

sieve_status cg_tables_build_bits(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                  unsigned flags, uint32_t bits_classes, cg_tableset **out, cg_err *e) {
  double t0 = now_ms();
  *out = NULL;
  struct cg_auto *checked = NULL;
  sieve_status st = blk_check_pattern(p, e);
  /* A bitmask row is whole 32-bit words (cg_bits_classes gives none otherwise). */
  if (!st && bits_classes && cg_pattern_block_k(p) % 32)
    st = cg_fail(e, SIEVE_ERR_ARG, "partial-block bitmasks need key blocks of a multiple of 32 tokens, not %d",
                 cg_pattern_block_k(p));
  if (!st) st = blk_layouts_resolve(p, shape, &checked, e);
  cg_tableset *ts = NULL;
  /* the check against identity, and a rebuild, take the buffers of the
  ** build before them instead of paying their pages' faults again */
  blk_pool pool = {0};
  for (int again = 1; !st && again;) {
    again = 0;
    cg_tables_free(ts);
    ts = NULL;
    st = tableset_new(p, shape, step, layer, &ts, e);
    if (!st) {
      ts->flags = flags;
      ts->bits_classes = bits_classes;
      ts->pool = &pool;
      st = build_all(p, ts, e);
      ts->pool = NULL;
    }
    if (!st && checked) st = blk_layouts_check(p, checked, ts, &pool, &again, e);
    checked = NULL;
  }
  blk_pool_free(&pool);
  if (st) {
    cg_tables_free(ts);
    return st;
  }
  ts->build_ms = now_ms() - t0;
  *out = ts;
  cg_err_clear(e);
  return SIEVE_OK;
}

sieve_status cg_tables_build_flags(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                   unsigned flags, cg_tableset **out, cg_err *e) {
  return cg_tables_build_bits(p, shape, step, layer, flags, 0, out, e);
}

sieve_status cg_tables_build(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                             cg_tableset **out, cg_err *e) {
  return cg_tables_build_flags(p, shape, step, layer, 0, out, e);
}

/* Layout l's table of mask alone (the layout scorers'), in *ts, which
** the caller frees. */
static sieve_status score_build(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride,
                                int64_t stop4, int merge, blk_pool *pool, cg_tableset **ts, cg_table *t, cg_err *e) {
  *t = (cg_table){.mask = mask};
  sieve_status st = tableset_new(p, s, 0, 0, ts, e);
  if (st) return st;
  (*ts)->pool = pool;
  (*ts)->row_stride = stride;
  (*ts)->stop4 = stop4;
  (*ts)->stop_merge = merge;
  lay L;
  if (blk_lay_init(&L, l, &(*ts)->shape, *ts)) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  else st = blk_build_table(*ts, t, &L, p->g, 0, e);
  blk_lay_free(&L);
  return st;
}

sieve_status blk_score_layout(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride,
                              int64_t stop4, blk_pool *pool, int64_t *full, int64_t *part, int *stopped, cg_err *e) {
  cg_tableset *ts = NULL;
  cg_table t;
  sieve_status st = score_build(p, s, mask, l, stride, stop4, 1, pool, &ts, &t, e);
  *full = t.nfull;
  *part = t.npart;
  *stopped = ts && ts->stopped;
  cg_tables_free(ts);
  return st;
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

sieve_status blk_score_merged(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int m,
                              int64_t stop4, blk_pool *pool, int64_t *full, int64_t *part, int *stopped, cg_err *e) {
  *full = *part = 0;
  cg_tableset *ts = NULL;
  cg_table t;
  sieve_status st = score_build(p, s, mask, l, 1, stop4, m, pool, &ts, &t, e);
  *stopped = ts && ts->stopped;
  int32_t *cnt = st || *stopped ? NULL : malloc(sizeof(int32_t) * 2 * (size_t)ts->nk);
  if (!st && !*stopped && !cnt) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  if (cnt) {
    int32_t *seen = cnt + ts->nk;
    for (int k = 0; k < ts->nk; k++) seen[k] = -1;
    int64_t vis = 0;
    for (int r0 = 0; r0 < ts->nq; r0 += m) merge_rows(&t, r0, r0 + m < ts->nq ? r0 + m : ts->nq, cnt, seen, full, &vis);
    *part = vis - *full;
  }
  free(cnt);
  cg_tables_free(ts);
  return st;
}

void cg_tables_free(cg_tableset *t) {
  if (t) cg_arena_free(t->arena);
}
