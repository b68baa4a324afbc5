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

/* Table i's layout: the coordinates of an earlier table's, or enumerated
** into a new slot of coords; then its boxes. */
static int table_boxes(const cg_pattern *p, cg_tgen *t, int i) {
  const cg_layout *l = &p->classes[t->cls[i]].layout;
  int k = 0;
  while (k < i && !same_layout(&p->classes[t->cls[k]].layout, l)) k++;
  cg_coords c;
  if (cg_layout_enum(l, &t->shape, &c)) return -1;
  if (k < i) {
    t->lay[i] = t->lay[k];
  } else {
    t->lay[i] = t->nlays++;
    const int32_t *v[5] = {c.t, c.y, c.x, c.text, c.idx};
    int32_t *dst = t->coords + (size_t)t->lay[i] * 5 * (size_t)t->seq;
    for (int a = 0; a < 5; a++) {
      memcpy(dst + (size_t)a * (size_t)t->seq, v[a], sizeof(int32_t) * (size_t)t->seq);
      for (int64_t q = 0; q < t->seq; q++) {
        t->lo[a] = v[a][q] < t->lo[a] ? v[a][q] : t->lo[a];
        t->hi[a] = v[a][q] > t->hi[a] ? v[a][q] : t->hi[a];
      }
    }
  }
  int32_t *b = t->boxes + (size_t)i * (size_t)(t->nq + t->nk) * 2 * CG_NIN;
  box_blocks(&c, t->bq, t->nq, b);
  box_blocks(&c, t->bk, t->nk, b + (size_t)t->nq * 2 * CG_NIN);
  cg_coords_free(&c);
  return 0;
}

static sieve_status check(const cg_pattern *p, const sieve_shape *s, cg_err *e) {
  sieve_status st = cg_pattern_check_classes(p, e);
  return st ? st : cg_shape_check(s, e);
}

sieve_status cg_tgen_new(cg_pattern *p, const sieve_shape *shape, cg_tgen **out, cg_err *e) {
  return cg_tgen_new_bits(p, shape, 0, out, e);
}

sieve_status cg_tgen_new_bits(cg_pattern *p, const sieve_shape *shape, uint32_t bits, cg_tgen **out, cg_err *e) {
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
  t->bq = cg_pattern_block_q(p);
  t->bk = cg_pattern_block_k(p);
  t->nq = (int)((t->seq + t->bq - 1) / t->bq);
  t->nk = (int)((t->seq + t->bk - 1) / t->bk);
  t->bits = t->bk % 32 ? 0 : bits;
  t->ew = t->bits ? 2 : 1;
  t->wpb = t->bq * (t->bk / 32);
  t->table_ints = 2 * (int64_t)t->nq + 1 + (int64_t)t->ew * t->nq * t->nk;
  if ((int64_t)t->nq * t->nk > INT32_MAX / 2 || t->seq > INT32_MAX / 8 || (int64_t)t->bq * t->bk > INT32_MAX / 2) {
    cg_tgen_free(t);
    return cg_fail(e, SIEVE_ERR_SHAPE, "%d x %d block pairs: too many for GPU-built tables", t->nq, t->nk);
  }
  t->head_table = cg_alloc(a, sizeof(int) * (size_t)s.heads);
  t->cls = cg_alloc(a, sizeof(int) * (size_t)s.heads);
  t->mask = cg_alloc(a, sizeof(cg_ref) * (size_t)s.heads);
  int ok = t->head_table && t->cls && t->mask;
  for (int h = 0; ok && h < s.heads; h++) ok = (t->head_table[h] = group_head(p, t, h)) >= 0;
  if (ok && ((int64_t)t->ntables * t->nq * t->nk > INT32_MAX || (int64_t)t->ntables * t->table_ints > INT32_MAX)) {
    cg_tgen_free(t);
    return cg_fail(e, SIEVE_ERR_SHAPE, "%d tables of %d x %d block pairs: too many for GPU-built tables",
                   t->ntables, t->nq, t->nk);
  }
  if (ok) {
    t->boxes = cg_alloc(a, cg_tgen_boxes_bytes(t));
    t->lay = cg_alloc(a, sizeof(int) * (size_t)t->ntables);
    t->coords = cg_alloc(a, 4 * 5 * (size_t)t->ntables * (size_t)t->seq);
    ok = t->boxes && t->lay && t->coords;
    for (int i = 0; i < 5; i++) {
      t->lo[i] = INT32_MAX;
      t->hi[i] = INT32_MIN;
    }
    t->lo[CG_IN_POS] = 0;
    t->hi[CG_IN_POS] = (int32_t)(t->seq - 1);
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

int cg_tgen_table_bits(const cg_tgen *t, int i) { return (int)(t->bits >> t->cls[i] & 1u); }

int64_t cg_tgen_bits_place(const cg_tgen *t, const int32_t *counts, int32_t *pgbase) {
  int64_t n = 0;
  for (int i = 0; i < t->ntables; i++) {
    int has = cg_tgen_table_bits(t, i);
    for (int qb = 0; qb < t->nq; qb++) {
      int64_t row = (int64_t)i * t->nq + qb;
      pgbase[row] = has ? (int32_t)n : -1;
      n += has ? counts[2 * row + 1] : 0;
      if (n > INT32_MAX) return -1;
    }
  }
  return n;
}

size_t cg_tgen_rows_bytes(const cg_tgen *t) { return 4 * (size_t)t->ntables * (size_t)t->nq * (size_t)t->nk; }
size_t cg_tgen_counts_bytes(const cg_tgen *t) { return 8 * (size_t)t->ntables * (size_t)t->nq; }
size_t cg_tgen_tabs_bytes(const cg_tgen *t) { return 4 * (size_t)t->ntables * (size_t)t->table_ints; }
size_t cg_tgen_boxes_bytes(const cg_tgen *t) {
  return 4 * 2 * CG_NIN * (size_t)t->ntables * (size_t)(t->nq + t->nk);
}
size_t cg_tgen_coords_bytes(const cg_tgen *t) { return 4 * 5 * (size_t)t->nlays * (size_t)t->seq; }
size_t cg_tgen_cls_bytes(const cg_tgen *t) { return (size_t)t->ntables * (size_t)t->nq * (size_t)t->nk; }
size_t cg_tgen_work_bytes(const cg_tgen *t) { return 4 * (cg_tgen_cls_bytes(t) + 1); }
size_t cg_tgen_pbase_bytes(const cg_tgen *t) { return t->bits ? 4 * (size_t)t->ntables * (size_t)t->nq : 0; }

/* -------------------------------------------------------------- kernels */

enum { P_BOXES, P_CLS, P_WORK, P_NWORK, P_STEP, P_LAYER, NP };

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

/* This warp's table row (table nq + qb) when qb is below nq. */
static LLVMValueRef warp_row(kgen *k, LLVMValueRef *qb) {
  *qb = CG_ADD(EM, CG_MUL(EM, cg_sreg_read(EM, CG_CTAID_X), cg_i32(EM, CG_TGEN_WARPS)), k->tk.warp);
  return CG_ADD(EM, CG_MUL(EM, k->table, cg_i32(EM, k->t->nq)), *qb);
}

/*
** One warp per row: 32 key blocks at a time are classified; the class goes
** to cls, and the undecided pairs onto the work list, one atomic per warp.
*/
static void row_classify(kgen *k, LLVMValueRef qb, LLVMValueRef row) {
  const cg_tgen *t = k->t;
  LLVMTypeRef i8 = LLVMInt8TypeInContext(EM->ctx);
  cg_ivv qbox[CG_NIN], kbox[CG_NIN];
  load_box(k, qb, qbox);
  LLVMValueRef pair0 = CG_MUL(EM, row, cg_i32(EM, t->nk));
  LLVMValueRef out = cg_gep(EM, i8, k->prm[P_CLS], CG_ZEXT64(EM, pair0));
  LLVMValueRef lane = k->tk.lane, below = cg_lanes_below(EM, lane);
  cg_for loop;
  LLVMValueRef c = cg_for_begin(EM, &loop, cg_i32(EM, 0), cg_i32(EM, (t->nk + 31) / 32));
  LLVMValueRef kb = CG_ADD(EM, CG_SHL(EM, c, cg_i32(EM, 5)), lane);
  LLVMValueRef valid = CG_ICMP(EM, LLVMIntSLT, kb, cg_i32(EM, t->nk));
  load_box(k, CG_ADD(EM, cg_i32(EM, t->nq), CG_SEL(EM, valid, kb, cg_i32(EM, t->nk - 1))), kbox);
  LLVMValueRef cls = classify(k, qbox, kbox);
  LLVMValueRef und = CG_AND(EM, valid, CG_ICMP(EM, LLVMIntEQ, cls, cg_i32(EM, CG_BLK_UNDECIDED)));
  LLVMValueRef bu = cg_ballot(EM, und);
  cg_if wv;
  cg_if_begin(EM, &wv, valid);
  cg_store(EM, LLVMBuildTrunc(EM->b, cls, i8, ""), cg_gep(EM, i8, out, kb));
  cg_if_end(EM, &wv);
  cg_reg base = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  cg_if any, lead;
  cg_if_begin(EM, &any, CG_ICMP(EM, LLVMIntNE, bu, cg_i32(EM, 0)));
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, lane, cg_i32(EM, 0)));
  cg_rset(EM, base, LLVMBuildAtomicRMW(EM->b, LLVMAtomicRMWBinOpAdd, k->prm[P_NWORK], cg_popc(EM, bu),
                                       LLVMAtomicOrderingMonotonic, 0));
  cg_if_end(EM, &lead);
  LLVMValueRef at = CG_ADD(EM, cg_shfl_idx_i32(EM, cg_rget(EM, base), cg_i32(EM, 0)),
                           cg_popc(EM, CG_AND(EM, bu, below)));
  cg_if wu;
  cg_if_begin(EM, &wu, und);
  cg_store(EM, CG_ADD(EM, pair0, kb), cg_gep(EM, EM->t_i32, k->prm[P_WORK], CG_ZEXT64(EM, at)));
  cg_if_end(EM, &wu);
  cg_if_end(EM, &any);
  cg_for_end(EM, &loop);
}

static sieve_status classify_kernel(kgen *k, cg_arch arch, cg_err *e) {
  static const char *names[NP] = {"boxes", "cls", "work", "nwork", "step", "layer"};
  LLVMTypeRef ty[NP] = {EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_i32, EM->t_i32};
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_tbl_classify", ty, names, NP, 32 * CG_TGEN_WARPS, 0);
  for (int i = 0; i < NP; i++) k->prm[i] = LLVMGetParam(fn, (unsigned)i);
  if (cg_tk_init(&k->tk, EM, arch, CG_BF16, 32 * CG_TGEN_WARPS))
    return cg_fail(e, EM->err.status, "%s", EM->err.msg);
  const cg_tgen *t = k->t;
  k->table = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef boxes_per_table = cg_i64(EM, (int64_t)(t->nq + t->nk) * 2 * CG_NIN);
  k->box0 = cg_gep(EM, EM->t_i32, k->prm[P_BOXES], CG_MUL(EM, CG_ZEXT64(EM, k->table), boxes_per_table));
  LLVMValueRef qb, row = warp_row(k, &qb);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, qb, cg_i32(EM, t->nq)));
  row_classify(k, qb, row);
  cg_if_end(EM, &in);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
  return SIEVE_OK;
}

/*
** After refinement every class is exact: one warp per row places each full
** or partial block in the row by ballots, in key order, as the packing
** kernels expect. The first thread empties the work list for the next build.
*/
static void row_compact(kgen *k, LLVMValueRef cls0, LLVMValueRef rows, LLVMValueRef counts, LLVMValueRef row) {
  const cg_tgen *t = k->t;
  LLVMTypeRef i8 = LLVMInt8TypeInContext(EM->ctx);
  LLVMValueRef src = cg_gep(EM, i8, cls0, CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, t->nk)));
  LLVMValueRef out = cg_gep(EM, EM->t_i32, rows, CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, t->nk)));
  cg_reg nf = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0)), np = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  LLVMValueRef lane = k->tk.lane, below = cg_lanes_below(EM, lane);
  cg_for loop;
  LLVMValueRef c = cg_for_begin(EM, &loop, cg_i32(EM, 0), cg_i32(EM, (t->nk + 31) / 32));
  LLVMValueRef kb = CG_ADD(EM, CG_SHL(EM, c, cg_i32(EM, 5)), lane);
  LLVMValueRef valid = CG_ICMP(EM, LLVMIntSLT, kb, cg_i32(EM, t->nk));
  LLVMValueRef b = cg_load(EM, i8, cg_gep(EM, i8, src, CG_SEL(EM, valid, kb, cg_i32(EM, 0))));
  LLVMValueRef cls = LLVMBuildZExt(EM->b, b, EM->t_i32, "");
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
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, counts, CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1)));
  cg_store(EM, cg_rget(EM, nf), cnt);
  cg_store(EM, cg_rget(EM, np), cg_gep(EM, EM->t_i32, cnt, cg_i32(EM, 1)));
  cg_if_end(EM, &lead);
}

static sieve_status compact_kernel(kgen *k, cg_arch arch, cg_err *e) {
  static const char *names[4] = {"cls", "rows", "counts", "nwork"};
  LLVMTypeRef ty[4] = {EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr};
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_tbl_compact", ty, names, 4, 32 * CG_TGEN_WARPS, 0);
  LLVMValueRef prm[4];
  for (int i = 0; i < 4; i++) prm[i] = LLVMGetParam(fn, (unsigned)i);
  if (cg_tk_init(&k->tk, EM, arch, CG_BF16, 32 * CG_TGEN_WARPS))
    return cg_fail(e, EM->err.status, "%s", EM->err.msg);
  k->table = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef qb, row = warp_row(k, &qb);
  LLVMValueRef first = CG_AND(EM, CG_ICMP(EM, LLVMIntEQ, CG_OR(EM, k->table, cg_sreg_read(EM, CG_CTAID_X)), cg_i32(EM, 0)),
                              CG_ICMP(EM, LLVMIntEQ, cg_sreg_read(EM, CG_TID_X), cg_i32(EM, 0)));
  cg_if reset, in;
  cg_if_begin(EM, &reset, first);
  cg_store(EM, cg_i32(EM, 0), prm[3]);
  cg_if_end(EM, &reset);
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, qb, cg_i32(EM, k->t->nq)));
  row_compact(k, prm[0], prm[1], prm[2], row);
  cg_if_end(EM, &in);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
  return SIEVE_OK;
}

/* The element mask of table i, over coordinates, step and layer, with the
** ranges the coordinates take in this shape. */
static cg_lower *element_mask(const cg_pattern *p, const cg_tgen *t, int i, cg_err *e) {
  static const cg_var qv[CG_NIN] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX, CG_V_QPOS};
  static const cg_var kv[CG_NIN] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX, CG_V_KPOS};
  cg_range r[CG_NVARS];
  for (int v = 0; v < CG_NVARS; v++) r[v] = cg_range_none();
  for (int a = 0; a < CG_NIN; a++) r[qv[a]] = r[kv[a]] = (cg_range){t->lo[a], t->hi[a]};
  r[CG_V_STEP] = r[CG_V_LAYER] = (cg_range){0, INT32_MAX};
  return cg_lower_new(p->g, t->mask[i], r, e);
}

sieve_status cg_tgen_build(const cg_pattern *p, const cg_tgen *t, cg_arch arch, char **ptx, cg_err *e) {
  cg_em em;
  kgen k = {.t = t, .em = &em};
  *ptx = NULL;
  sieve_status st = cg_em_start(&em, "sieve_tablegen", e);
  if (st) return st;
  k.lw = calloc((size_t)t->ntables, sizeof *k.lw);
  cg_lower **el = calloc((size_t)t->ntables, sizeof *el);
  if (!k.lw || !el) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int i = 0; !st && i < t->ntables; i++)
    if (!(k.lw[i] = cg_ilower_new(p->g, t->mask[i], e)) || !(el[i] = element_mask(p, t, i, e))) st = e->status;
  if (!st) st = classify_kernel(&k, arch, e);
  if (!st) cg_tgen_refine_kernel(&em, t, arch, el);
  if (!st) st = compact_kernel(&k, arch, e);
  if (!st && !t->bits) cg_tpack_kernels(&em, arch, t->nq, t->nk, t->table_ints);
  if (!st && t->bits) {
    cg_tpack_kernels_bits(&em, arch, t->nq, t->nk, t->table_ints, t->ntables, t->wpb);
    cg_tgen_bits_kernels(&em, t, arch, el);
  }
  if (!st) st = cg_em_ptx(&em, arch, ptx, e);
  for (int i = 0; k.lw && i < t->ntables; i++) cg_ilower_free(k.lw[i]);
  for (int i = 0; el && i < t->ntables; i++) cg_lower_free(el[i]);
  free(k.lw);
  free(el);
  cg_em_dispose(&em);
  return st;
}
