/*
** The GPU block-table builder: host preparation (head grouping, coordinate
** boxes) and the classification kernel. Packing is in cg_tablegen_pack.c.
*/
#include "cg_tablegen.h"

#include <stdlib.h>
#include <string.h>

#include "cg_blocks.h"
#include "cg_interval.h"
#include "cg_lower_interval.h"
#include "cg_tile_ext.h"

/* ----------------------------------------------------------------- host */

static int same_layout(const cg_layout *a, const cg_layout *b) {
  if (a->kind != b->kind) return 0;
  return a->kind != CG_LAYOUT_TILE || !memcmp(a->tile, b->tile, sizeof a->tile);
}

/* The table of head h: one with the same layout and head-fixed mask, or a new one. */
static int group_head(cg_pattern *p, cg_tgen *t, int h) {
  int c = p->head_class[h % p->period];
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(p->g, h);
  cg_shape_vars(p->g, &t->shape, map);
  cg_ref m = cg_subst(p->g, p->classes[c].mask, map);
  if (m == CG_NONE) return -1;
  for (int i = 0; i < t->ntables; i++)
    if (t->mask[i] == m && same_layout(&p->classes[t->cls[i]].layout, &p->classes[c].layout)) return i;
  t->cls[t->ntables] = c;
  t->mask[t->ntables] = m;
  return t->ntables++;
}

/* Boxes of nb blocks of bsz positions, from position p0 on: lo, hi of each input. */
static void box_blocks(const cg_coords *c, int64_t bsz, int nb, int32_t *out) {
  const int32_t *v[CG_IN_POS] = {c->t, c->y, c->x, c->text, c->idx};
  for (int b = 0; b < nb; b++, out += 2 * CG_NIN) {
    int64_t p0 = b * bsz, p1 = p0 + bsz < c->n ? p0 + bsz : c->n;
    for (int i = 0; i < CG_IN_POS; i++) {
      int32_t lo = v[i][p0], hi = v[i][p0];
      for (int64_t p = p0 + 1; p < p1; p++) {
        lo = v[i][p] < lo ? v[i][p] : lo;
        hi = v[i][p] > hi ? v[i][p] : hi;
      }
      out[2 * i] = lo;
      out[2 * i + 1] = hi;
    }
    out[2 * CG_IN_POS] = (int32_t)p0;
    out[2 * CG_IN_POS + 1] = (int32_t)(p1 - 1);
  }
}

static int table_boxes(const cg_pattern *p, cg_tgen *t, int i) {
  cg_coords c;
  if (cg_layout_enum(&p->classes[t->cls[i]].layout, &t->shape, &c)) return -1;
  int32_t *b = t->boxes + (size_t)i * (size_t)(t->nq + t->nk) * 2 * CG_NIN;
  box_blocks(&c, t->bq, t->nq, b);
  box_blocks(&c, t->bk, t->nk, b + (size_t)t->nq * 2 * CG_NIN);
  cg_coords_free(&c);
  return 0;
}

static sieve_status check(const cg_pattern *p, const sieve_shape *s, cg_err *e) {
  if (p->nclasses < 1 || p->period < 1 || !p->head_class)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s has no head classes", p->name ? p->name : "?");
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] < 0 || p->head_class[r] >= p->nclasses)
      return cg_fail(e, SIEVE_ERR_ARG, "head residue %d names class %d of %d", r, p->head_class[r], p->nclasses);
  return cg_shape_check(s, e);
}

sieve_status cg_tgen_new(cg_pattern *p, const sieve_shape *shape, cg_tgen **out, cg_err *e) {
  sieve_shape s;
  *out = NULL;
  cg_shape_for(p, shape, &s);
  sieve_status st = check(p, &s, e);
  if (!st) st = cg_layouts_resolve(p, shape, e);
  if (st) return st;
  cg_arena *a = cg_arena_new();
  cg_tgen *t = a ? cg_alloc(a, sizeof *t) : NULL;
  if (!t) {
    cg_arena_free(a);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  t->arena = a;
  t->shape = s;
  t->seq = sieve_shape_tokens(&s);
  t->bq = p->block_q > 0 ? p->block_q : 128;
  t->bk = p->block_k > 0 ? p->block_k : 128;
  t->nq = (int)((t->seq + t->bq - 1) / t->bq);
  t->nk = (int)((t->seq + t->bk - 1) / t->bk);
  t->table_ints = 2 * (int64_t)t->nq + 1 + (int64_t)t->nq * t->nk;
  if ((int64_t)t->nq * t->nk > INT32_MAX / 2) {
    cg_tgen_free(t);
    return cg_fail(e, SIEVE_ERR_SHAPE, "%d x %d block pairs: too many for GPU-built tables", t->nq, t->nk);
  }
  t->head_table = cg_alloc(a, sizeof(int) * (size_t)s.heads);
  t->cls = cg_alloc(a, sizeof(int) * (size_t)s.heads);
  t->mask = cg_alloc(a, sizeof(cg_ref) * (size_t)s.heads);
  int ok = t->head_table && t->cls && t->mask;
  for (int h = 0; ok && h < s.heads; h++) ok = (t->head_table[h] = group_head(p, t, h)) >= 0;
  if (ok) {
    t->boxes = cg_alloc(a, cg_tgen_boxes_bytes(t));
    ok = t->boxes != NULL;
  }
  for (int i = 0; ok && i < t->ntables; i++) ok = !table_boxes(p, t, i);
  if (!ok) {
    cg_tgen_free(t);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory preparing GPU block tables");
  }
  *out = t;
  return SIEVE_OK;
}

void cg_tgen_free(cg_tgen *t) {
  if (t) cg_arena_free(t->arena);
}

size_t cg_tgen_rows_bytes(const cg_tgen *t) { return 4 * (size_t)t->ntables * (size_t)t->nq * (size_t)t->nk; }
size_t cg_tgen_counts_bytes(const cg_tgen *t) { return 8 * (size_t)t->ntables * (size_t)t->nq; }
size_t cg_tgen_tabs_bytes(const cg_tgen *t) { return 4 * (size_t)t->ntables * (size_t)t->table_ints; }
size_t cg_tgen_boxes_bytes(const cg_tgen *t) {
  return 4 * 2 * CG_NIN * (size_t)t->ntables * (size_t)(t->nq + t->nk);
}

/* --------------------------------------------------------------- kernel */

enum { P_BOXES, P_ROWS, P_COUNTS, P_STEP, P_LAYER, NP };

typedef struct kgen {
  const cg_tgen *t;
  cg_em *em;
  cg_tk tk;
  cg_ilower **lw;         /* [ntables] */
  LLVMValueRef prm[NP];
  LLVMValueRef table, box0;  /* this CTA's table; its first box */
} kgen;

#define EM (k->em)

/* The six intervals of box b (query boxes first, then key boxes). */
static void load_box(kgen *k, LLVMValueRef b, cg_ivv out[CG_NIN]) {
  LLVMValueRef base = cg_gep(EM, EM->t_i32, k->box0, CG_MUL(EM, CG_ZEXT64(EM, b), cg_i64(EM, 2 * CG_NIN)));
  for (int i = 0; i < CG_NIN; i++) {
    LLVMValueRef lo = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, base, cg_i32(EM, 2 * i)));
    LLVMValueRef hi = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, base, cg_i32(EM, 2 * i + 1)));
    out[i] = (cg_ivv){CG_SEXT64(EM, lo), CG_SEXT64(EM, hi)};
  }
}

/* The pair's class under the CTA's table: a uniform branch per table. */
static LLVMValueRef classify(kgen *k, const cg_ivv qb[CG_NIN], const cg_ivv kb[CG_NIN]) {
  static const cg_var qv[CG_NIN] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX, CG_V_QPOS};
  static const cg_var kv[CG_NIN] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX, CG_V_KPOS};
  cg_ivv vars[CG_NVARS] = {{0}};
  for (int i = 0; i < CG_NIN; i++) {
    vars[qv[i]] = qb[i];
    vars[kv[i]] = kb[i];
  }
  vars[CG_V_STEP] = cg_ivv_point(EM, k->prm[P_STEP]);
  vars[CG_V_LAYER] = cg_ivv_point(EM, k->prm[P_LAYER]);
  if (k->t->ntables == 1) return cg_ivv_class(EM, cg_ilower_emit(k->lw[0], EM, vars));
  cg_reg r = cg_reg_new(EM, EM->t_i32, cg_i32(EM, CG_BLK_UNDECIDED));
  for (int i = 0; i < k->t->ntables; i++) {
    cg_if c;
    cg_if_begin(EM, &c, CG_ICMP(EM, LLVMIntEQ, k->table, cg_i32(EM, i)));
    cg_rset(EM, r, cg_ivv_class(EM, cg_ilower_emit(k->lw[i], EM, vars)));
    cg_if_end(EM, &c);
  }
  return cg_rget(EM, r);
}

/*
** One warp per row: 32 key blocks at a time are classified, and ballots
** give each full or partial block its place in the row, in key order.
*/
static void row_loop(kgen *k, LLVMValueRef qb) {
  const cg_tgen *t = k->t;
  cg_ivv qbox[CG_NIN], kbox[CG_NIN];
  load_box(k, qb, qbox);
  LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, k->table, cg_i32(EM, t->nq)), qb);
  LLVMValueRef out = cg_gep(EM, EM->t_i32, k->prm[P_ROWS], CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, t->nk)));
  cg_reg nf = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0)), np = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  LLVMValueRef lane = k->tk.lane, below = cg_lanes_below(EM, lane);
  cg_for loop;
  LLVMValueRef c = cg_for_begin(EM, &loop, cg_i32(EM, 0), cg_i32(EM, (t->nk + 31) / 32));
  LLVMValueRef kb = CG_ADD(EM, CG_SHL(EM, c, cg_i32(EM, 5)), lane);
  LLVMValueRef valid = CG_ICMP(EM, LLVMIntSLT, kb, cg_i32(EM, t->nk));
  load_box(k, CG_ADD(EM, cg_i32(EM, t->nq), CG_SEL(EM, valid, kb, cg_i32(EM, t->nk - 1))), kbox);
  LLVMValueRef cls = classify(k, qbox, kbox);
  LLVMValueRef isf = CG_AND(EM, valid, CG_ICMP(EM, LLVMIntEQ, cls, cg_i32(EM, CG_BLK_FULL)));
  LLVMValueRef isp = CG_AND(EM, valid, CG_ICMP(EM, LLVMIntEQ, cls, cg_i32(EM, CG_BLK_UNDECIDED)));
  LLVMValueRef bf = cg_ballot(EM, isf), bp = cg_ballot(EM, isp);
  LLVMValueRef f = cg_rget(EM, nf), p = cg_rget(EM, np);
  cg_if wf, wp;
  cg_if_begin(EM, &wf, isf);
  cg_store(EM, kb, cg_gep(EM, EM->t_i32, out, CG_ADD(EM, f, cg_popc(EM, CG_AND(EM, bf, below)))));
  cg_if_end(EM, &wf);
  cg_if_begin(EM, &wp, isp);
  LLVMValueRef at = CG_SUB(EM, cg_i32(EM, t->nk - 1), CG_ADD(EM, p, cg_popc(EM, CG_AND(EM, bp, below))));
  cg_store(EM, kb, cg_gep(EM, EM->t_i32, out, at));
  cg_if_end(EM, &wp);
  cg_rset(EM, nf, CG_ADD(EM, f, cg_popc(EM, bf)));
  cg_rset(EM, np, CG_ADD(EM, p, cg_popc(EM, bp)));
  cg_for_end(EM, &loop);
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, lane, cg_i32(EM, 0)));
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, k->prm[P_COUNTS], CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1)));
  cg_store(EM, cg_rget(EM, nf), cnt);
  cg_store(EM, cg_rget(EM, np), cg_gep(EM, EM->t_i32, cnt, cg_i32(EM, 1)));
  cg_if_end(EM, &lead);
}

static sieve_status classify_kernel(kgen *k, cg_arch arch, cg_err *e) {
  static const char *names[NP] = {"boxes", "rows", "counts", "step", "layer"};
  LLVMTypeRef ty[NP] = {EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_i32, EM->t_i32};
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_tbl_classify", ty, names, NP, 32 * CG_TGEN_WARPS, 0);
  for (int i = 0; i < NP; i++) k->prm[i] = LLVMGetParam(fn, (unsigned)i);
  if (cg_tk_init(&k->tk, EM, arch, CG_BF16, 32 * CG_TGEN_WARPS))
    return cg_fail(e, EM->err.status, "%s", EM->err.msg);
  const cg_tgen *t = k->t;
  k->table = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef boxes_per_table = cg_i64(EM, (int64_t)(t->nq + t->nk) * 2 * CG_NIN);
  k->box0 = cg_gep(EM, EM->t_i32, k->prm[P_BOXES], CG_MUL(EM, CG_ZEXT64(EM, k->table), boxes_per_table));
  LLVMValueRef qb = CG_ADD(EM, CG_MUL(EM, cg_sreg_read(EM, CG_CTAID_X), cg_i32(EM, CG_TGEN_WARPS)), k->tk.warp);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, qb, cg_i32(EM, t->nq)));
  row_loop(k, qb);
  cg_if_end(EM, &in);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
  return SIEVE_OK;
}

sieve_status cg_tgen_build(const cg_pattern *p, const cg_tgen *t, cg_arch arch, char **ptx, cg_err *e) {
  cg_em em;
  kgen k = {.t = t, .em = &em};
  *ptx = NULL;
  sieve_status st = cg_em_start(&em, "sieve_tablegen", e);
  if (st) return st;
  k.lw = calloc((size_t)t->ntables, sizeof *k.lw);
  if (!k.lw) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int i = 0; !st && i < t->ntables; i++)
    if (!(k.lw[i] = cg_ilower_new(p->g, t->mask[i], e))) st = e->status;
  if (!st) st = classify_kernel(&k, arch, e);
  if (!st) cg_tpack_kernels(&em, arch, t->nq, t->nk, t->table_ints);
  if (!st) st = cg_em_ptx(&em, arch, ptx, e);
  for (int i = 0; k.lw && i < t->ntables; i++) cg_ilower_free(k.lw[i]);
  free(k.lw);
  cg_em_dispose(&em);
  return st;
}
