/*
** Block tables: their device memory, and its bound. A plan copies the
** packed tables (cg_blocks_pack.c) to the GPU; a pattern whose tables
** would not fit is refused when the plan is made, with the numbers, rather
** than when the copy or a launch fails. The bound is the packed form's
** 32-bit offsets, and below that SIEVE_TABLES_MAX_MB (default 4096):
** tables are a few MB at real shapes, so gigabytes mean a pattern that
** keeps nearly every block of many distinct tables at small blocks.
** Partial-block bitmasks (cg_blocks_bits.c) count against the same bound.
*/
#include <stdint.h>
#include <stdlib.h>

#include "cg_blocks.h"

#define DEFAULT_MAX_MB 4096

int64_t cg_table_bits_bytes(const cg_table *t) { return (int64_t)sizeof(uint32_t) * t->nbitw; }

int64_t cg_table_bytes(const cg_table *t) {
  int64_t ent = t->ent_words > 1 ? t->ent_words : 1;
  return (int64_t)sizeof(int32_t) * (2 * (int64_t)t->nq + 1 + ent * (t->nfull + t->npart)) + cg_table_bits_bytes(t);
}

int64_t cg_tables_bits_bytes(const cg_tableset *t) {
  int64_t n = 0;
  for (int i = 0; i < t->ntables; i++) n += cg_table_bits_bytes(&t->tables[i]);
  return n;
}

int64_t cg_tables_bytes(const cg_tableset *t) {
  int64_t n = 0;
  for (int i = 0; i < t->ntables; i++) n += cg_table_bytes(&t->tables[i]);
  return n + (int64_t)sizeof(int32_t) * t->shape.heads; /* each head's table offset */
}

int64_t cg_tables_limit(void) {
  const char *env = getenv("SIEVE_TABLES_MAX_MB");
  long long mb = env ? strtoll(env, NULL, 10) : DEFAULT_MAX_MB;
  int64_t b = (mb > 0 ? mb : DEFAULT_MAX_MB) * (int64_t)(1 << 20);
  int64_t offsets = (int64_t)INT32_MAX * (int64_t)sizeof(int32_t);
  return b < offsets ? b : offsets;
}

sieve_status cg_tables_check(const cg_tableset *t, cg_err *e) {
  int64_t need = cg_tables_bytes(t), max = cg_tables_limit();
  if (need <= max) return SIEVE_OK;
  int64_t big = 0;
  for (int i = 1; i < t->ntables; i++)
    if (cg_table_bytes(&t->tables[i]) > cg_table_bytes(&t->tables[big])) big = i;
  const cg_table *b = &t->tables[big];
  int64_t bits = cg_tables_bits_bytes(t);
  if (bits)
    return cg_fail(e, SIEVE_ERR_LIMIT,
                   "block tables need %.1f MiB (%.1f MiB of them partial-block bitmasks), over the bound of %.1f MiB "
                   "(SIEVE_TABLES_MAX_MB): %d distinct table%s, the largest %.1f MiB (%lld full + %lld partial of "
                   "%d x %d blocks, %lld distinct bitmasks); SIEVE_PARTIAL=predicate drops the bitmasks, larger "
                   "blocks or fewer distinct head masks make the tables smaller",
                   need / 1048576.0, bits / 1048576.0, max / 1048576.0, t->ntables, t->ntables == 1 ? "" : "s",
                   cg_table_bytes(b) / 1048576.0, (long long)b->nfull, (long long)b->npart, b->nq, b->nk,
                   (long long)b->nbitmasks);
  return cg_fail(e, SIEVE_ERR_LIMIT,
                 "block tables need %.1f MiB, over the bound of %.1f MiB (SIEVE_TABLES_MAX_MB): %d distinct "
                 "table%s, the largest %.1f MiB (%lld full + %lld partial of %d x %d blocks); larger blocks, "
                 "or fewer distinct head masks, make them smaller",
                 need / 1048576.0, max / 1048576.0, t->ntables, t->ntables == 1 ? "" : "s",
                 cg_table_bytes(b) / 1048576.0, (long long)b->nfull, (long long)b->npart, b->nq, b->nk);
}
