/*
** The public sieve_tables_* API over cg_tableset.
*/
#include <stdlib.h>

#include "api.h"
#include "cg_blocks.h"
#include "cg_part.h"
#include "lp.h"

struct sieve_tables {
  cg_tableset *ts;
  /* Per table, copied so that the tables outlive their pattern. */
  const char **klass, **layout, **choice;
  int *ops;  /* the class's predicate instructions per pair */
};

static int copy_names(sieve_tables *t, cg_pattern *p) {
  cg_tableset *ts = t->ts;
  size_t n = (size_t)(ts->ntables ? ts->ntables : 1);
  t->klass = cg_alloc(ts->arena, sizeof(char *) * n);
  t->layout = cg_alloc(ts->arena, sizeof(char *) * n);
  t->choice = cg_alloc(ts->arena, sizeof(char *) * n);
  t->ops = cg_alloc(ts->arena, sizeof(int) * n);
  if (!t->klass || !t->layout || !t->choice || !t->ops) return -1;
  for (int i = 0; i < ts->ntables; i++) {
    const cg_class *c = &p->classes[ts->tables[i].cls];
    char name[64];
    cg_layout_text(&c->layout, name, sizeof name);
    const char *rank = cg_layouts_ranking(p, &ts->shape, ts->tables[i].cls);
    t->klass[i] = cg_strdup(ts->arena, c->name ? c->name : "");
    t->layout[i] = cg_strdup(ts->arena, name);
    t->choice[i] = rank ? cg_strdup(ts->arena, rank) : NULL;
    t->ops[i] = cg_bits_pair_ops(p, &ts->shape, ts->tables[i].cls);
    if (!t->klass[i] || !t->layout[i] || (rank && !t->choice[i])) return -1;
  }
  return 0;
}

static sieve_status build(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *shape,
                          int step, int layer, const sieve_chunk *chunk, sieve_tables **out) {
  cg_err e = {0};
  cg_pattern *cp = p ? lp_pattern_ir(p) : NULL;
  if (!cp || !shape || !out) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_tables_build: pattern, shape and out are required");
    return api_ret(ctx, &e);
  }
  *out = NULL;
  /* Whole tables as a plan builds them, bitmasks included; chunk pairs
  ** take predicates (cg_tables_slice). */
  uint32_t bits = chunk ? 0 : cg_bits_env(cp, shape);
  cg_tableset *ts = NULL;
  sieve_chunk c;
  if (!cg_tables_build_bits(cp, shape, step, layer, 0, bits, &ts, &e) &&
      !(chunk && (cg_chunk_check(cp, ts->seq, ts->block_q, ts->block_k, chunk, &c, &e) ||
                  cg_tables_slice(ts, &c, &e)))) {
    api_tables_wrap(ts, cp, out, &e);
    ts = NULL;
  }
  cg_tables_free(ts);
  return api_ret(ctx, &e);
}

sieve_status api_tables_wrap(cg_tableset *ts, cg_pattern *p, sieve_tables **out, cg_err *e) {
  *out = NULL;
  sieve_tables *t = calloc(1, sizeof *t);
  if (t) t->ts = ts;
  if (!t || copy_names(t, p)) {
    if (t) sieve_tables_free(t);
    else cg_tables_free(ts);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  *out = t;
  return SIEVE_OK;
}

sieve_status sieve_tables_build(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *shape,
                                int step, int layer, sieve_tables **out) {
  return build(ctx, p, shape, step, layer, NULL, out);
}

sieve_status sieve_tables_build_chunk(sieve_ctx *ctx, const sieve_pattern *p,
                                      const sieve_shape *shape, int step, int layer,
                                      const sieve_chunk *chunk, sieve_tables **out) {
  static const sieve_chunk whole = {0, 0, 0, 0};
  return build(ctx, p, shape, step, layer, chunk ? chunk : &whole, out);
}

int64_t sieve_tables_visits(const sieve_tables *t) { return t ? cg_tables_visits(t->ts) : 0; }

void sieve_tables_free(sieve_tables *t) {
  if (!t) return;
  cg_tables_free(t->ts);
  free(t);
}

void sieve_tables_info_get(const sieve_tables *t, sieve_tables_info *out) {
  if (!t || !out) return;
  const cg_tableset *s = t->ts;
  *out = (sieve_tables_info){
    .heads = s->shape.heads,
    .tables = s->ntables,
    .q_blocks = s->nq,
    .k_blocks = s->nk,
    .block_q = s->block_q,
    .block_k = s->block_k,
    .build_ms = s->build_ms,
    .interval_full = s->interval_full,
    .interval_empty = s->interval_empty,
    .interval_undecided = s->interval_undecided,
    .refined_full = s->refined_full,
    .refined_empty = s->refined_empty,
    .refined_partial = s->refined_partial,
    .bytes = cg_tables_bytes(s),
    .max_bytes = cg_tables_limit(),
    .bitmask_bytes = cg_tables_bits_bytes(s),
  };
}

int sieve_tables_head_table(const sieve_tables *t, int head) {
  if (!t || head < 0 || head >= t->ts->shape.heads) return -1;
  return t->ts->head_table[head];
}

sieve_status sieve_tables_view(const sieve_tables *t, int table, sieve_table_view *out) {
  if (!t || !out || table < 0 || table >= t->ts->ntables) return SIEVE_ERR_ARG;
  const cg_table *tb = &t->ts->tables[table];
  double seq = (double)t->ts->seq;
  *out = (sieve_table_view){
    .q_blocks = tb->nq,
    .full_ptr = tb->full_ptr,
    .full_idx = tb->full_idx,
    .part_ptr = tb->part_ptr,
    .part_idx = tb->part_idx,
    .full_blocks = tb->nfull,
    .partial_blocks = tb->npart,
    .empty_blocks = tb->nempty,
    /* A chunk's tables keep no token counts (cg_tables_slice). */
    .density = tb->allowed_pairs < 0 ? (double)(tb->nfull + tb->npart) / ((double)tb->nq * tb->nk)
                                     : (double)tb->allowed_pairs / (seq * seq),
    .layout = t->layout[table],
    .klass = t->klass[table],
    .estimated_blocks = tb->estimated,
    .bytes = cg_table_bytes(tb),
    .layout_choice = t->choice[table],
    .bitmask = tb->bits,
    .pair_ops = t->ops[table],
    .bitmasks = tb->nbitmasks,
    .bitmask_bytes = cg_table_bits_bytes(tb),
  };
  return SIEVE_OK;
}
