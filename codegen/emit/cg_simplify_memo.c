/*
** The rewrite memo of cg_simplify's passes (cg_simplify_int.h): a node is
** rewritten once per key, so shared subexpressions stay shared.
*/
#include "cg_simplify_int.h"

#include <stdlib.h>

cg_memo_ent *cg_memo_slot(cg_memo *m, cg_ref x, int32_t tag, int64_t c) {
  uint64_t h = ((uint64_t)(uint32_t)x * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)c * 0xC2B2AE3D27D4EB4Full) ^
               ((uint64_t)(uint32_t)tag * 0xD6E8FEB86659FD93ull);
  for (int i = (int)(h % (uint64_t)m->n);; i = (i + 1) % m->n) {
    cg_memo_ent *e = &m->tab[i];
    if (e->x == CG_NONE || (e->x == x && e->tag == tag && e->c == c)) return e;
  }
}

int cg_memo_grow(cg_memo *m) {
  if (2 * (m->used + 1) < m->n) return 0;
  cg_memo_ent *old = m->tab;
  int n = m->n;
  cg_memo_ent *tab = malloc(sizeof *tab * (size_t)(n ? 2 * n : 256));
  if (!tab) return -1;
  m->tab = tab;
  m->n = n ? 2 * n : 256;
  for (int i = 0; i < m->n; i++) m->tab[i].x = CG_NONE;
  for (int i = 0; i < n; i++)
    if (old[i].x != CG_NONE) *cg_memo_slot(m, old[i].x, old[i].tag, old[i].c) = old[i];
  free(old);
  return 0;
}

void cg_memo_put(cg_memo *m, cg_ref x, int32_t tag, int64_t c, cg_ref out) {
  *cg_memo_slot(m, x, tag, c) = (cg_memo_ent){x, out, tag, c};
  m->used++;
}

void cg_memo_free(cg_memo *m) {
  free(m->tab);
  *m = (cg_memo){0};
}
