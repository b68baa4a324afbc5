/*
** Block tables. For each distinct (layout, mask with head/step/layer fixed)
** one table: every (query block, key block) pair is classified by interval
** evaluation over the blocks' coordinate boxes, and the undecided pairs are
** counted exactly. This file drives a build; the stages are in
** cg_blocks_*.c, their shared state in cg_blocks_int.h:
**   heads    which heads share a table (cg_blocks_heads.c)
**   layout   each distinct layout's block boxes (cg_blocks_layout.c)
**   table    one table's job, prepared (cg_blocks_job.c, cg_blocks_runs.c)
**            and run row by row (cg_blocks_rows.c), both on threads
**            (cg_blocks_par.c; kept parked between runs,
**            cg_blocks_helpers.c), its undecided
**            pairs settled once per distinct pair by the memo
**            (cg_blocks_memo.c, its keys' arithmetic in cg_blocks_hash.h),
**            which evaluates a pair by its mini and micro pairs, each
**            distinct one once (cg_blocks_micro.c, in sets the rows'
**            threads share, cg_blocks_cset.c), else shown partial by sampled witnesses
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
**   score    a layout scored by building its table, on a thread of its own
**            where the check of an automatic layout runs beside the build
**            (cg_blocks_score.c)
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */

#include <stdlib.h>
#include <time.h>

#include "cg_blocks_int.h"

#define ASIDE_THREADS 3 /* threads from which the checks against identity run beside the build */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

sieve_status blk_tableset_new(const cg_pattern *p, const sieve_shape *shape, int step, int layer, cg_tableset **out,
                              cg_err *e) {
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
  /* the checks against identity run beside the build, where it leaves threads idle */
  if (!st && checked && blk_threads(MAX_THREADS) >= ASIDE_THREADS) st = blk_layouts_start(p, checked, shape, e);
  cg_tableset *ts = NULL;
  /* the check against identity, and a rebuild, take the buffers of the
  ** build before them instead of paying their pages' faults again */
  blk_pool pool = {0};
  for (int again = 1; !st && again;) {
    again = 0;
    cg_tables_free(ts);
    ts = NULL;
    st = blk_tableset_new(p, shape, step, layer, &ts, e);
    if (!st) {
      ts->flags = flags;
      ts->bits_classes = bits_classes;
      ts->pool = &pool;
      st = build_all(p, ts, e);
      ts->pool = NULL;
    }
    if (checked && st) blk_layouts_stop(p, checked);
    else if (checked) st = blk_layouts_check(p, checked, ts, &pool, &again, e);
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

void cg_tables_free(cg_tableset *t) {
  if (t) cg_arena_free(t->arena);
}
