/*
** The search's selection on the CPU, by sorting: the reference the
** selection kernel is checked against.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_search.h"

typedef struct ent {
  double m;
  int i;
} ent;

/* Mass descending, then entry ascending: the kernel's tie order. */
static int by_mass(const void *a, const void *b) {
  const ent *x = a, *y = b;
  if (x->m != y->m) return x->m > y->m ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

int cg_search_select_ref(const double *m, int n, double recall, int topk, uint8_t *sel) {
  memset(sel, 0, (size_t)n);
  ent *v = malloc(sizeof(ent) * (size_t)(n ? n : 1));
  if (!v) return -1;
  double total = 0;
  for (int i = 0; i < n; i++) {
    v[i] = (ent){m[i], i};
    total += m[i];
  }
  qsort(v, (size_t)n, sizeof(ent), by_mass);
  double target = recall * total, got = 0;
  int k = 0;
  while (k < n && got < target && v[k].m > 0) got += v[k++].m;
  if (topk > 0 && k > topk) k = topk;
  for (int i = 0; i < k; i++) sel[v[i].i] = 1;
  free(v);
  return k;
}
