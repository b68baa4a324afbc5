/*
** Longest-first tile order: a stable sort by visited key blocks.
*/
#include "rt_sched.h"

#include <stdlib.h>

typedef struct tile {
  int32_t cost, t;
} tile;

static int by_cost(const void *x, const void *y) {
  const tile *a = x, *b = y;
  if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
  return (a->t > b->t) - (a->t < b->t);
}

int rt_sched_order(const int32_t *tabs, const int32_t *head_off, int heads, int nqk, int block_m,
                   int nq, int block_q, int32_t *order) {
  size_t n = (size_t)heads * (size_t)nqk;
  tile *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) order[i] = (int32_t)i;
  if (!v) return -1;
  for (int h = 0; h < heads; h++) {
    const int32_t *rowptr = tabs + head_off[h];
    for (int qb = 0; qb < nqk; qb++) {
      int64_t r0 = (int64_t)qb * block_m / block_q, r1 = ((int64_t)qb + 1) * block_m / block_q;
      if (r1 <= r0) r1 = r0 + 1;
      if (r1 > nq) r1 = nq;
      size_t i = (size_t)h * (size_t)nqk + (size_t)qb;
      v[i] = (tile){r1 > r0 ? rowptr[r1] - rowptr[r0] : 0, (int32_t)i};
    }
  }
  qsort(v, n, sizeof *v, by_cost);
  for (size_t i = 0; i < n; i++) order[i] = v[i].t;
  free(v);
  return 0;
}
