/*
** Whether two builds of one pattern's tables agree (cg_blocks.h).
*/
#include <stdio.h>
#include <string.h>

#include "cg_blocks.h"

static int same_words(const int32_t *a, const int32_t *b, int64_t n) {
  return n <= 0 || !memcmp(a, b, sizeof(int32_t) * (size_t)n);
}

const char *cg_tables_differ(const cg_tableset *a, const cg_tableset *b, char *why, size_t n) {
  if (a->ntables != b->ntables || a->block_q != b->block_q || a->block_k != b->block_k) {
    snprintf(why, n, "%d against %d tables of %dx%d against %dx%d blocks", a->ntables, b->ntables, a->block_q,
             a->block_k, b->block_q, b->block_k);
    return why;
  }
  for (int i = 0; i < a->ntables; i++) {
    const cg_table *x = &a->tables[i], *y = &b->tables[i];
    const char *d = NULL;
    if (x->nq != y->nq || x->nfull != y->nfull || x->npart != y->npart) d = "block counts";
    else if (!same_words(x->full_ptr, y->full_ptr, x->nq + 1) || !same_words(x->full_idx, y->full_idx, x->nfull))
      d = "full lists";
    else if (!same_words(x->part_ptr, y->part_ptr, x->nq + 1) || !same_words(x->part_idx, y->part_idx, x->npart))
      d = "partial lists";
    else if (!x->estimated && !y->estimated && x->allowed_pairs != y->allowed_pairs) d = "exact allowed pairs";
    else if (x->bits != y->bits || (x->bits && x->nbitmasks != y->nbitmasks)) d = "bitmask counts";
    for (int64_t k = 0; !d && x->bits && k < x->npart; k++) {
      int64_t wpb = (int64_t)a->block_q * (a->block_k / 32);
      if (memcmp(x->bitw + x->part_bits[k], y->bitw + y->part_bits[k], sizeof(uint32_t) * (size_t)wpb)) d = "a bitmask";
    }
    if (d) {
      snprintf(why, n, "table %d: %s differ (%lld full, %lld partial against %lld, %lld)", i, d, (long long)x->nfull,
               (long long)x->npart, (long long)y->nfull, (long long)y->npart);
      return why;
    }
  }
  return NULL;
}
