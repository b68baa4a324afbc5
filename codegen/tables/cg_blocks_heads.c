/*
** Block tables: from heads to tables. A table is built per distinct
** (layout, mask with head, step and layer fixed), not per head: heads whose
** fixed masks are the same node of the hash-consed graph, on the same
** layout, share one, so a pattern whose mask depends on the head only
** through its class builds one table per class. The head classes are
** checked before anything indexes them, and each table also gets its mask
** over layout positions, as the kernel sees it.
*/
#include "cg_blocks_int.h"

sieve_status blk_check_pattern(const cg_pattern *p, cg_err *e) {
  sieve_status st = cg_pattern_check_classes(p, e);
  if (st) return st;
  for (int c = 0; c < p->nclasses; c++) {
    const cg_layout *l = &p->classes[c].layout;
    if (l->kind == CG_LAYOUT_TILE && (l->tile[0] < 1 || l->tile[1] < 1 || l->tile[2] < 1))
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: tile sizes must be positive", p->classes[c].name);
    if (cg_type_of(p->g, p->classes[c].mask) != CG_BOOL)
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: the mask is not a boolean", p->classes[c].name);
  }
  return SIEVE_OK;
}

/* The table head h uses: an existing one with the same layout and fixed
** mask, or a new one. */
int blk_head_table(cg_pattern *p, cg_tableset *ts, int h) {
  int c = p->head_class[h % p->period];
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(p->g, h);
  map[CG_V_STEP] = cg_const(p->g, ts->step);
  map[CG_V_LAYER] = cg_const(p->g, ts->layer);
  cg_shape_vars(p->g, &ts->shape, map);
  cg_ref m = cg_subst(p->g, p->classes[c].mask, map);
  if (m == CG_NONE) return -1;
  for (int i = 0; i < ts->ntables; i++)
    if (ts->tables[i].mask == m && blk_same_layout(&p->classes[ts->tables[i].cls].layout, &p->classes[c].layout))
      return i;
  cg_table *t = &ts->tables[ts->ntables];
  t->cls = c;
  t->mask = m;
  return ts->ntables++;
}

/* The mask over layout positions, as the kernel sees it. */
int blk_pos_mask(cg_pattern *p, const cg_tableset *ts, cg_table *t) {
  cg_ref qc[5], kc[5], map[CG_NVARS];
  const cg_layout *l = &p->classes[t->cls].layout;
  if (cg_layout_coords(p->g, l, &ts->shape, 0, qc) || cg_layout_coords(p->g, l, &ts->shape, 1, kc))
    return -1;
  const cg_var qv[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
  const cg_var kv[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  for (int i = 0; i < 5; i++) {
    map[qv[i]] = qc[i];
    map[kv[i]] = kc[i];
  }
  t->pos_mask = cg_subst(p->g, t->mask, map);
  return t->pos_mask == CG_NONE ? -1 : 0;
}
