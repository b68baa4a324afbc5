/*
** The interval test of cg_blocks_rows.c on the GPU builder's boxes, on the CPU:
** what the classification kernel must reproduce pair for pair.
*/
#include <stdlib.h>

#include "cg_interval.h"
#include "cg_tablegen.h"

static void to_boxes(const int32_t *src, int n, cg_box *out) {
  for (int b = 0; b < n; b++)
    for (int i = 0; i < CG_NIN; i++)
      out[b].v[i] = (cg_ival){src[(size_t)b * 2 * CG_NIN + 2 * i], src[(size_t)b * 2 * CG_NIN + 2 * i + 1]};
}

sieve_status cg_tgen_classes(cg_pattern *p, const cg_tgen *t, int table, int step, int layer,
                             uint8_t *cls, cg_err *e) {
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_STEP] = cg_const(p->g, step);
  map[CG_V_LAYER] = cg_const(p->g, layer);
  cg_ref m = cg_subst(p->g, t->mask[table], map);
  cg_prog *prog = m == CG_NONE ? NULL : cg_prog_new(p->g, m);
  cg_iscratch *is = prog ? cg_iscratch_new(prog) : NULL;
  int nq = t->nq, nk = t->nk;
  size_t nqv = prog ? (size_t)cg_prog_nqv(prog) + 1 : 1, nkv = prog ? (size_t)cg_prog_nkv(prog) + 1 : 1;
  cg_box *qb = malloc(sizeof(cg_box) * (size_t)nq), *kb = malloc(sizeof(cg_box) * (size_t)nk);
  cg_ival *qiv = malloc(sizeof(cg_ival) * nqv * (size_t)nq), *kiv = malloc(sizeof(cg_ival) * nkv * (size_t)nk);
  cg_ival *row = malloc(sizeof(cg_ival) * nqv);
  sieve_status st = SIEVE_OK;
  if (!is || !qb || !kb || !qiv || !kiv || !row) {
    st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  } else {
    const int32_t *b = t->boxes + (size_t)table * (size_t)(nq + nk) * 2 * CG_NIN;
    to_boxes(b, nq, qb);
    to_boxes(b + (size_t)nq * 2 * CG_NIN, nk, kb);
    cg_prog_bind(prog, 0, 0, 0);  /* head, step and layer are constants in m */
    cg_ival_side(prog, 0, qb, nq, qiv, nq, is);
    cg_ival_side(prog, 1, kb, nk, kiv, nk, is);
    for (int q = 0; q < nq; q++) {
      for (int v = 0; v < cg_prog_nqv(prog); v++) row[v] = qiv[(size_t)v * nq + q];
      cg_ival_row(prog, row, kiv, nk, nk, cls + (size_t)q * nk, is);
    }
  }
  free(qb);
  free(kb);
  free(qiv);
  free(kiv);
  free(row);
  cg_iscratch_free(is);
  cg_prog_free(prog);
  return st;
}
