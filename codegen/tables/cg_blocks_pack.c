/*
** Block tables: packing for the kernel. The distinct tables go into one
** int32 buffer in the layout cg_attn.h reads, and each head gets the
** offset of its table, so heads that share a table share its bytes. A
** row's full key blocks come before its partial ones, with the count of
** full ones beside them, so the kernel tells the two kinds apart by
** position, with no per-block flag.
**
** When some class has partial-block bitmasks every entry is two int32s,
** the key block and the offset from the table's start of its bitmask's
** first word (-1: none; full blocks and predicate classes), and the
** table's distinct bitmasks follow its entries.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks.h"

sieve_status cg_tables_pack(const cg_tableset *t, int32_t **buf, size_t *n, int32_t *head_off,
                            cg_err *e) {
  sieve_status st = cg_tables_check(t, e);
  if (st) return st;
  size_t total = 0;
  for (int i = 0; i < t->ntables; i++) total += (size_t)cg_table_bytes(&t->tables[i]) / sizeof(int32_t);
  int32_t *b = malloc(sizeof(int32_t) * (total ? total : 1));
  if (!b) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory packing block tables");
  int32_t *off = malloc(sizeof(int32_t) * (size_t)(t->ntables ? t->ntables : 1));
  if (!off) {
    free(b);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory packing block tables");
  }
  size_t o = 0;
  for (int i = 0; i < t->ntables; i++) {
    const cg_table *tb = &t->tables[i];
    int32_t *rowptr = b + o, *nfull = rowptr + tb->nq + 1, *idx = nfull + tb->nq;
    int ew = tb->ent_words > 1 ? 2 : 1;
    int64_t nent = tb->nfull + tb->npart;
    int32_t words0 = (int32_t)(2 * (int64_t)tb->nq + 1 + ew * nent); /* the bitmasks, from the table's start */
    off[i] = (int32_t)o;
    rowptr[0] = 0;
    for (int q = 0; q < tb->nq; q++) {
      int32_t f0 = tb->full_ptr[q], nf = tb->full_ptr[q + 1] - f0;
      int32_t p0 = tb->part_ptr[q], np = tb->part_ptr[q + 1] - p0;
      if (ew == 1) {
        memcpy(idx + rowptr[q], tb->full_idx + f0, sizeof(int32_t) * (size_t)nf);
        memcpy(idx + rowptr[q] + nf, tb->part_idx + p0, sizeof(int32_t) * (size_t)np);
      } else {
        int32_t *en = idx + 2 * (int64_t)rowptr[q];
        for (int32_t k = 0; k < nf; k++) {
          en[2 * k] = tb->full_idx[f0 + k];
          en[2 * k + 1] = -1;
        }
        for (int32_t k = 0; k < np; k++) {
          en[2 * (nf + k)] = tb->part_idx[p0 + k];
          en[2 * (nf + k) + 1] = tb->bits && tb->part_bits ? words0 + tb->part_bits[p0 + k] : -1;
        }
      }
      nfull[q] = nf;
      rowptr[q + 1] = rowptr[q] + nf + np;
    }
    if (tb->nbitw) memcpy(b + o + words0, tb->bitw, sizeof(uint32_t) * (size_t)tb->nbitw);
    o += (size_t)words0 + (size_t)tb->nbitw;
  }
  for (int h = 0; h < t->shape.heads; h++) head_off[h] = off[t->head_table[h]];
  free(off);
  *buf = b;
  *n = total;
  return SIEVE_OK;
}
