/*
** Row-sampled float64 reference, so that large shapes can be checked: the
** mask is evaluated per (query row, key) from the pattern's mask with head,
** step and layer fixed, in model coordinates, as cg_ref does for whole
** matrices.
*/
#include <math.h>
#include <stdlib.h>

#include "gpu.h"

static void coords(const sieve_shape *s, int64_t i, int64_t v[5]) {
  int64_t video = (int64_t)s->frames * s->height * s->width;
  int64_t j = s->text_after ? i : i - s->text;
  if (j < 0 || j >= video) {
    v[0] = v[1] = v[2] = -1;
    v[3] = 1;
  } else {
    v[0] = j / ((int64_t)s->height * s->width);
    v[1] = (j / s->width) % s->height;
    v[2] = j % s->width;
    v[3] = 0;
  }
  v[4] = i;
}

int gpu_ref_rows(const cg_pattern *p, const sieve_shape *s, int head, int step, int layer,
                 const float *q, const float *k, const float *v, int64_t ss, double scale,
                 const int64_t *rows, int nrows, double *o, double *lse) {
  int64_t S = sieve_shape_tokens(s);
  int D = s->head_dim;
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(p->g, head);
  map[CG_V_STEP] = cg_const(p->g, step);
  map[CG_V_LAYER] = cg_const(p->g, layer);
  cg_ref m = cg_subst(p->g, cg_pattern_class(p, head)->mask, map);
  double *sc = malloc(sizeof(double) * (size_t)S);
  if (!sc || m == CG_NONE) {
    free(sc);
    return -1;
  }
  for (int r = 0; r < nrows; r++) {
    int64_t vars[CG_NVARS] = {0}, qc[5], kc[5];
    coords(s, rows[r], qc);
    for (int i = 0; i < 5; i++) vars[CG_V_QT + i] = qc[i];
    double mx = -INFINITY;
    for (int64_t j = 0; j < S; j++) {
      coords(s, j, kc);
      for (int i = 0; i < 5; i++) vars[CG_V_KT + i] = kc[i];
      if (!cg_eval1(p->g, m, vars)) {
        sc[j] = -INFINITY;
        continue;
      }
      double d = 0;
      for (int c = 0; c < D; c++) d += (double)q[rows[r] * ss + c] * k[j * ss + c];
      sc[j] = d * scale;
      if (sc[j] > mx) mx = sc[j];
    }
    double *out = o + (int64_t)r * D, sum = 0;
    for (int c = 0; c < D; c++) out[c] = 0;
    if (mx == -INFINITY) {
      lse[r] = -INFINITY;
      continue;
    }
    for (int64_t j = 0; j < S; j++) {
      if (sc[j] == -INFINITY) continue;
      double w = exp(sc[j] - mx);
      sum += w;
      for (int c = 0; c < D; c++) out[c] += w * v[j * ss + c];
    }
    for (int c = 0; c < D; c++) out[c] /= sum;
    lse[r] = mx + log(sum);
  }
  free(sc);
  return 0;
}
