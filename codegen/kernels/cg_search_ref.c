/*
** The search's selection on the CPU, by sorting: the reference the
** selection kernel is checked against.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_search.h"

typedef struct ent {
  double m;
  int i;
} ent;

/* Mass descending, then index ascending: the kernel's tie order. */
static int by_mass(const void *a, const void *b) {
  const ent *x = a, *y = b;
  if (x->m != y->m) return x->m > y->m ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* Top-p of m[0..n) towards target, capped at topk (0: no cap). */
static int top_p(const double *m, int n, double target, int topk, uint8_t *sel, ent *v) {
  memset(sel, 0, (size_t)n);
  for (int i = 0; i < n; i++) v[i] = (ent){m[i], i};
  qsort(v, (size_t)n, sizeof(ent), by_mass);
  double got = 0;
  int k = 0;
  while (k < n && got < target && v[k].m > 0) got += v[k++].m;
  if (topk > 0 && k > topk) k = topk;
  for (int i = 0; i < k; i++) sel[v[i].i] = 1;
  return k;
}

/*
** Group masses are float sums in key-block order, as the kernel adds them,
** so that both see the same group masses from the same block masses.
*/
static void level(double *dense, int nk, int g, double target, double *gm, uint8_t *keep, ent *v) {
  int ng = (nk + g - 1) / g;
  for (int G = 0; G < ng; G++) {
    float s = 0;
    for (int kb = G * g; kb < nk && kb < (G + 1) * g; kb++) s += (float)dense[kb];
    gm[G] = s;
  }
  top_p(gm, ng, target, 0, keep, v);
  for (int kb = 0; kb < nk; kb++)
    if (!keep[kb / g]) dense[kb] = 0;
}

void cg_search_budget(const cg_selection *sel, int nk, float *recall, int *topk) {
  *recall = (float)sel->recall;
  *topk = sel->topk;
  if (sel->sparsity > 0) {
    int k = (int)ceil((1 - sel->sparsity) * nk - 1e-9);
    *topk = k < 1 ? 1 : k;
    *recall = 2;
  }
}

int cg_search_select_ref(const double *m, const int32_t *kb, int n, int nk, const int *groups, int ngroups,
                         double recall, int topk, uint8_t *sel) {
  int w = n > nk ? n : nk;
  ent *v = malloc(sizeof(ent) * (size_t)(w ? w : 1));
  double *dense = calloc((size_t)(nk ? nk : 1), sizeof(double)), *gm = malloc(sizeof(double) * (size_t)(w ? w : 1));
  double *mm = malloc(sizeof(double) * (size_t)(n ? n : 1));
  uint8_t *keep = malloc((size_t)(nk ? nk : 1));
  int k = -1;
  if (v && dense && gm && mm && keep) {
    double total = 0;
    for (int i = 0; i < n; i++) {
      total += m[i];
      dense[kb[i]] = m[i];
    }
    for (int l = 0; l < ngroups; l++) level(dense, nk, groups[l], recall * total, gm, keep, v);
    for (int i = 0; i < n; i++) mm[i] = dense[kb[i]];
    k = top_p(mm, n, recall * total, topk, sel, v);
  }
  free(v);
  free(dense);
  free(gm);
  free(mm);
  free(keep);
  return k;
}
