/*
** Block tables: buffers kept from one table to the next. A tableset builds
** its tables one after another, and each table's job needs buffers of
** about the same sizes (token runs, every token's interfaces, micro-block
** intervals and hashes); freed, large ones go back to the system, and the
** next table pays a page fault for each of their pages again. Each slot
** keeps one buffer, the largest given back to it, until the tables are
** built.
**
** Buffers of megabytes (a dense table's lists: the temporal sink's 3.4 M
** partial blocks are 27 MB with their bitmask offsets; the slots' per-token
** runs and interfaces) are written once from start to end, and a fault per
** 4 KB page cost more than writing them (17 ms for 27 MB here, 2.5 ms in
** 2 MB pages). Where Linux offers transparent huge pages on request, such
** a buffer is aligned to 2 MB and asks for them; it stays plain malloc
** memory to free. Elsewhere, or where huge pages are off, it is malloc's.
** (As malloc's, the slots' buffers came from the heap or fresh mappings as
** glibc's thresholds had moved: dilated's runs took 5k faults in five
** builds, or 13k after an unrelated change of allocations.)
*/
#define _DEFAULT_SOURCE /* madvise */

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
  return blk_big(n);
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

#define HUGE_PAGE ((size_t)2 << 20)

void *blk_big(size_t n) {
#ifdef MADV_HUGEPAGE
  if (n >= HUGE_PAGE) {
    void *p;
    size_t r = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (posix_memalign(&p, HUGE_PAGE, r)) return NULL;
    madvise(p, r, MADV_HUGEPAGE); /* advice: refused, the pages are plain ones */
    return p;
  }
#endif
  return malloc(n ? n : 1);
}

void *blk_big_grow(void *p, size_t used, size_t n) {
  if (n < HUGE_PAGE) return realloc(p, n);
  void *q = blk_big(n);
  if (!q) return NULL;
  if (used) memcpy(q, p, used);
  free(p);
  return q;
}
