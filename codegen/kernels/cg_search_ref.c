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

int cg_search_topk(double s, int nk) {
  int k = (int)ceil((1 - s) * nk - 1e-9);
  return k < 1 ? 1 : k > nk ? nk : k;
}

void cg_search_budget(const cg_selection *sel, int nk, float *recall, int *topk) {
  *recall = (float)sel->recall;
  *topk = sel->topk;
  if (sel->sparsity > 0) {
    *topk = cg_search_topk(sel->sparsity, nk);
    *recall = 2;
  }
}

typedef struct hr {
  double r;
  int h;
} hr;

/* Recall descending, then head ascending. */
static int by_recall(const void *a, const void *b) {
  const hr *x = a, *y = b;
  if (x->r != y->r) return x->r > y->r ? -1 : 1;
  return (x->h > y->h) - (x->h < y->h);
}

int cg_search_tiers(const double *recall, int heads, double s, double thr, double *sparsity) {
  hr *v = malloc(sizeof(hr) * (size_t)(heads > 0 ? heads : 1));
  int n = 0;
  for (int h = 0; h < heads; h++) {
    sparsity[h] = s;
    n += recall[h] > thr;
  }
  if (!v) return 0;
  if (n > heads / 2) n = heads / 2;
  for (int h = 0; h < heads; h++) v[h] = (hr){recall[h], h};
  qsort(v, (size_t)heads, sizeof(hr), by_recall);
  double lo = (3 * s - 1) / 2;
  for (int i = 0; i < n; i++) {
    sparsity[v[i].h] = (1 + s) / 2;
    sparsity[v[heads - 1 - i].h] = lo > 0 ? lo : 0;
  }
  free(v);
  return n;
}

void cg_search_text_span(const sieve_shape *sh, int tlen, int64_t *lo, int64_t *hi) {
  int64_t n = tlen < 0 || tlen > sh->text ? sh->text : tlen;
  *lo = sh->text_after ? (int64_t)sh->frames * sh->height * sh->width : 0;
  *hi = *lo + n;
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
