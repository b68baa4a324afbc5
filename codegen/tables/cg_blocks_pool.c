/*
** Block tables: buffers kept from one table to the next. A tableset builds
** its tables one after another, and each table's job needs buffers of
** about the same sizes (token runs, every token's interfaces, micro-block
** intervals and hashes); freed, large ones go back to the system, and the
** next table pays a page fault for each of their pages again. Each slot
** keeps one buffer, the largest given back to it, until the tables are
** built.
*/
#include <stdlib.h>

#include "cg_blocks_int.h"

void *blk_take(blk_pool *pl, int slot, size_t n, size_t *cap) {
  if (!n) n = 1;
  if (pl && pl->s[slot].p && pl->s[slot].cap >= n) {
    void *p = pl->s[slot].p;
    if (cap) *cap = pl->s[slot].cap;
    pl->s[slot].p = NULL;
    pl->s[slot].cap = 0;
    return p;
  }
  if (cap) *cap = n;
  return malloc(n);
}

void blk_give(blk_pool *pl, int slot, void *p, size_t cap) {
  if (!p) return;
  if (!pl || (pl->s[slot].p && pl->s[slot].cap >= cap)) {
    free(p);
    return;
  }
  free(pl->s[slot].p);
  pl->s[slot].p = p;
  pl->s[slot].cap = cap;
}

void blk_pool_free(blk_pool *pl) {
  for (int i = 0; pl && i < POOL_N; i++) free(pl->s[i].p);
}
