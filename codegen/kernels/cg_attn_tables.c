/*
** The pattern a kernel's block tables are built from (cg_attn_tables.h).
*/
#include "cg_attn_tables.h"
#include "cg_part.h"

sieve_status cg_attn_merge_rows(cg_attn_spec *s, cg_pattern **rows, cg_err *e) {
  *rows = NULL;
  int bq = cg_attn_table_q(s);
  /* Blocks left to the kernel's tile take a view instead (cg_attn_tables_view). */
  if (s->pattern->block_q <= 0 || bq == s->pattern->block_q) return SIEVE_OK;
  cg_pattern *c = NULL;
  sieve_status st = cg_pattern_heads(s->pattern, 0, &c, e);
  if (st) return st;
  c->block_q = bq;
  if (!c->merged_from) c->merged_from = cg_pattern_block_q(s->pattern);
  if ((st = cg_pattern_finish(c, e))) {
    cg_pattern_free(c);
    return st;
  }
  *rows = c;
  s->pattern = c;
  return SIEVE_OK;
}

sieve_status cg_attn_tables_view(const cg_attn_spec *s, cg_pattern **view, cg_err *e) {
  int bq, bk;
  *view = NULL;
  cg_attn_table_blocks(s, &bq, &bk);
  if (bq == cg_pattern_block_q(s->pattern) && bk == cg_pattern_block_k(s->pattern)) return SIEVE_OK;
  if (!(*view = cg_pattern_with_blocks(s->pattern, bq, bk, e))) return e->status;
  return SIEVE_OK;
}
