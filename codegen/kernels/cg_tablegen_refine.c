/*
** The GPU table builder's exact refinement (cg_tablegen.h): each pair the
** interval test left undecided gets one warp, which evaluates the mask on
** the pair's token pairs 32 at a time and stops as soon as it has seen a
** true and a false one. Most undecided pairs are partial, and a partial
** pair usually shows both values early when the token pairs are visited
** spread over the block rather than in order (a block whose query rows
** cross a frame boundary is true in the first rows and false in the last),
** so power-of-two blocks take their queries and keys in a multiplicative
** permutation order. A pair that is full or empty after all is evaluated
** to the end.
*/
#include "cg_tablegen.h"
#include "cg_interval.h"
#include "cg_tile_ext.h"

enum { P_COORDS, P_CLS, P_WORK, P_NWORK, P_STEP, P_LAYER, NP };

/* Odd, so multiplying by it permutes the integers modulo a power of two. */
#define SPREAD 0x9E3779B1u

typedef struct rk {
  cg_em *em;
  const cg_tgen *t;
  cg_tk tk;
  LLVMValueRef prm[NP];
} rk;

#define EM (k->em)

/* Leaves the loop when cond (warp-uniform) holds. */
static void loop_break(cg_em *em, cg_for *l, LLVMValueRef cond) {
  LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(em->ctx, em->fn, "cont");
  LLVMBuildCondBr(em->b, cond, l->exit, cont);
  LLVMPositionBuilderAtEnd(em->b, cont);
}

static LLVMValueRef coord(rk *k, LLVMValueRef base, int a, LLVMValueRef pos) {
  LLVMValueRef at = CG_ADD(EM, cg_i64(EM, (int64_t)a * k->t->seq), CG_ZEXT64(EM, pos));
  return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, base, at));
}

/* Index i of n in a spread order: a permutation when n is a power of two. */
static LLVMValueRef spread(rk *k, LLVMValueRef i, int64_t n) {
  if (n & (n - 1)) return i;
  return CG_AND(EM, CG_MUL(EM, i, cg_i32(EM, (int32_t)SPREAD)), cg_i32(EM, n - 1));
}

/*
** The exact class of (qb, kb) under table i's mask: CG_BLK_* (i32, uniform).
** Each lane takes one query of the block, 32 at a time, and the warp walks
** the keys together: the mask's query-only part (for LVSA most of it: the
** frame's window) is computed once per query, not once per token pair, and
** every key's coordinates are one broadcast load.
*/
static LLVMValueRef refine_pair(rk *k, cg_lower *l, int i, LLVMValueRef qb, LLVMValueRef kb) {
  static const cg_var qv[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
  static const cg_var kv[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};
  const uint32_t qside = 1u << CG_V_QT | 1u << CG_V_QY | 1u << CG_V_QX | 1u << CG_V_QTEXT | 1u << CG_V_QIDX |
                         1u << CG_V_QPOS | 1u << CG_V_STEP | 1u << CG_V_LAYER;
  const cg_tgen *t = k->t;
  LLVMValueRef lane = k->tk.lane;
  LLVMValueRef base = cg_gep(EM, EM->t_i32, k->prm[P_COORDS], cg_i64(EM, (int64_t)t->lay[i] * 5 * t->seq));
  LLVMValueRef q0 = CG_MUL(EM, qb, cg_i32(EM, t->bq)), k0 = CG_MUL(EM, kb, cg_i32(EM, t->bk));
  LLVMValueRef s = cg_i32(EM, t->seq);
  LLVMValueRef nqv = CG_SUB(EM, s, q0), nkv = CG_SUB(EM, s, k0);  /* capped by the block below */
  cg_reg any_t = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0)), any_f = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  LLVMValueRef vars[CG_NVARS] = {0};
  vars[CG_V_STEP] = k->prm[P_STEP];
  vars[CG_V_LAYER] = k->prm[P_LAYER];
  cg_for rows;
  LLVMValueRef g = cg_for_begin(EM, &rows, cg_i32(EM, 0), cg_i32(EM, (t->bq + 31) / 32));
  LLVMValueRef ql = CG_ADD(EM, CG_SHL(EM, g, cg_i32(EM, 5)), lane);
  LLVMValueRef qin = CG_ICMP(EM, LLVMIntSLT, ql, cg_i32(EM, t->bq));
  LLVMValueRef qi = spread(k, ql, t->bq);
  LLVMValueRef qvalid = CG_AND(EM, qin, CG_ICMP(EM, LLVMIntSLT, qi, nqv));
  LLVMValueRef qp = CG_ADD(EM, q0, CG_SEL(EM, qvalid, qi, cg_i32(EM, 0)));
  for (int a = 0; a < 5; a++) vars[qv[a]] = coord(k, base, a, qp);
  vars[CG_V_QPOS] = qp;
  LLVMValueRef *memo = cg_alloc(k->tk.arena, sizeof(LLVMValueRef) * (size_t)cg_lower_size(l));
  if (!memo) {
    EM->bad = 1;
    return cg_i32(EM, CG_BLK_UNDECIDED);
  }
  cg_lower_part(l, EM, vars, qside, NULL, memo);
  cg_for cols;
  LLVMValueRef j = cg_for_begin(EM, &cols, cg_i32(EM, 0), cg_i32(EM, t->bk));
  LLVMValueRef ki = spread(k, j, t->bk);
  LLVMValueRef valid = CG_AND(EM, qvalid, CG_ICMP(EM, LLVMIntSLT, ki, nkv));
  LLVMValueRef kp = CG_ADD(EM, k0, CG_SEL(EM, CG_ICMP(EM, LLVMIntSLT, ki, nkv), ki, cg_i32(EM, 0)));
  for (int a = 0; a < 5; a++) vars[kv[a]] = coord(k, base, a, kp);
  vars[CG_V_KPOS] = kp;
  LLVMValueRef m = cg_lower_join(l, EM, vars, memo, NULL);
  LLVMValueRef bt = cg_ballot(EM, CG_AND(EM, valid, m));
  LLVMValueRef bf = cg_ballot(EM, CG_AND(EM, valid, LLVMBuildNot(EM->b, m, "")));
  LLVMValueRef at = CG_OR(EM, cg_rget(EM, any_t), bt), af = CG_OR(EM, cg_rget(EM, any_f), bf);
  cg_rset(EM, any_t, at);
  cg_rset(EM, any_f, af);
  loop_break(EM, &cols, CG_AND(EM, CG_ICMP(EM, LLVMIntNE, at, cg_i32(EM, 0)), CG_ICMP(EM, LLVMIntNE, af, cg_i32(EM, 0))));
  cg_for_end(EM, &cols);
  LLVMValueRef ht = CG_ICMP(EM, LLVMIntNE, cg_rget(EM, any_t), cg_i32(EM, 0));
  LLVMValueRef hf = CG_ICMP(EM, LLVMIntNE, cg_rget(EM, any_f), cg_i32(EM, 0));
  loop_break(EM, &rows, CG_AND(EM, ht, hf));
  cg_for_end(EM, &rows);
  ht = CG_ICMP(EM, LLVMIntNE, cg_rget(EM, any_t), cg_i32(EM, 0));
  hf = CG_ICMP(EM, LLVMIntNE, cg_rget(EM, any_f), cg_i32(EM, 0));
  return CG_SEL(EM, ht, CG_SEL(EM, hf, cg_i32(EM, CG_BLK_UNDECIDED), cg_i32(EM, CG_BLK_FULL)),
                cg_i32(EM, CG_BLK_EMPTY));
}

/* Work item w: the pair, its table's arm, and its class into cls. */
static void refine_item(rk *k, cg_lower **lw, LLVMValueRef w) {
  const cg_tgen *t = k->t;
  LLVMTypeRef i8 = LLVMInt8TypeInContext(EM->ctx);
  LLVMValueRef pid = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, k->prm[P_WORK], CG_ZEXT64(EM, w)));
  LLVMValueRef per = cg_i32(EM, (int64_t)t->nq * t->nk);
  LLVMValueRef table = CG_UDIV(EM, pid, per), rem = CG_UREM(EM, pid, per);
  LLVMValueRef qb = CG_UDIV(EM, rem, cg_i32(EM, t->nk)), kb = CG_UREM(EM, rem, cg_i32(EM, t->nk));
  cg_reg cls = cg_reg_new(EM, EM->t_i32, cg_i32(EM, CG_BLK_UNDECIDED));
  for (int i = 0; i < t->ntables; i++) {
    cg_if arm;
    if (t->ntables > 1) cg_if_begin(EM, &arm, CG_ICMP(EM, LLVMIntEQ, table, cg_i32(EM, i)));
    cg_rset(EM, cls, refine_pair(k, lw[i], i, qb, kb));
    if (t->ntables > 1) cg_if_end(EM, &arm);
  }
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, k->tk.lane, cg_i32(EM, 0)));
  cg_store(EM, LLVMBuildTrunc(EM->b, cg_rget(EM, cls), i8, ""), cg_gep(EM, i8, k->prm[P_CLS], CG_ZEXT64(EM, pid)));
  cg_if_end(EM, &lead);
}

void cg_tgen_refine_kernel(cg_em *em, const cg_tgen *t, cg_arch arch, cg_lower **lw) {
  static const char *names[NP] = {"coords", "cls", "work", "nwork", "step", "layer"};
  rk kk = {.em = em, .t = t}, *k = &kk;
  LLVMTypeRef ty[NP] = {EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_i32, EM->t_i32};
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_tbl_refine", ty, names, NP, 32 * CG_TGEN_WARPS, 0);
  for (int i = 0; i < NP; i++) k->prm[i] = LLVMGetParam(fn, (unsigned)i);
  if (cg_tk_init(&k->tk, EM, arch, CG_BF16, 32 * CG_TGEN_WARPS)) {
    EM->bad = 1;  /* err says why */
    return;
  }
  int stride = CG_TGEN_REFINE_CTAS * CG_TGEN_WARPS;
  LLVMValueRef gw = CG_ADD(EM, CG_MUL(EM, cg_sreg_read(EM, CG_CTAID_X), cg_i32(EM, CG_TGEN_WARPS)), k->tk.warp);
  LLVMValueRef n = cg_load(EM, EM->t_i32, k->prm[P_NWORK]);
  LLVMValueRef rounds = CG_UDIV(EM, CG_ADD(EM, n, cg_i32(EM, stride - 1)), cg_i32(EM, stride));
  cg_for loop;
  LLVMValueRef r = cg_for_begin(EM, &loop, cg_i32(EM, 0), rounds);
  LLVMValueRef w = CG_ADD(EM, CG_MUL(EM, r, cg_i32(EM, stride)), gw);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntULT, w, n));
  refine_item(k, lw, w);
  cg_if_end(EM, &in);
  cg_for_end(EM, &loop);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
}

/* ------------------------------------------------------------ bitmasks */

enum { B_COORDS, B_ROWS, B_COUNTS, B_PBASE, B_TABS, B_STEP, B_LAYER, NB };

/*
** The bits of (qb, kb) under table i's mask into out (row r, word w, bit
** b: column 32 w + b; positions past the sequence 0): each lane takes one
** query row, its query-only part computed once, and builds its row's
** words as the warp walks the keys together.
*/
static void bits_pair(rk *k, cg_lower *l, int i, LLVMValueRef qb, LLVMValueRef kb, LLVMValueRef out) {
  static const cg_var qv[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
  static const cg_var kv[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};
  const uint32_t qside = 1u << CG_V_QT | 1u << CG_V_QY | 1u << CG_V_QX | 1u << CG_V_QTEXT | 1u << CG_V_QIDX |
                         1u << CG_V_QPOS | 1u << CG_V_STEP | 1u << CG_V_LAYER;
  const cg_tgen *t = k->t;
  int wpr = t->bk / 32;
  LLVMValueRef lane = k->tk.lane;
  LLVMValueRef base = cg_gep(EM, EM->t_i32, k->prm[P_COORDS], cg_i64(EM, (int64_t)t->lay[i] * 5 * t->seq));
  LLVMValueRef q0 = CG_MUL(EM, qb, cg_i32(EM, t->bq)), k0 = CG_MUL(EM, kb, cg_i32(EM, t->bk));
  LLVMValueRef s = cg_i32(EM, t->seq);
  LLVMValueRef nqv = CG_SUB(EM, s, q0), nkv = CG_SUB(EM, s, k0);
  cg_reg word = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  LLVMValueRef vars[CG_NVARS] = {0};
  vars[CG_V_STEP] = k->prm[P_STEP];
  vars[CG_V_LAYER] = k->prm[P_LAYER];
  LLVMValueRef *memo = cg_alloc(k->tk.arena, sizeof(LLVMValueRef) * (size_t)cg_lower_size(l));
  if (!memo) {
    EM->bad = 1;
    return;
  }
  cg_for rows;
  LLVMValueRef g = cg_for_begin(EM, &rows, cg_i32(EM, 0), cg_i32(EM, (t->bq + 31) / 32));
  LLVMValueRef ql = CG_ADD(EM, CG_SHL(EM, g, cg_i32(EM, 5)), lane);
  LLVMValueRef qin = CG_ICMP(EM, LLVMIntSLT, ql, cg_i32(EM, t->bq));
  LLVMValueRef qvalid = CG_AND(EM, qin, CG_ICMP(EM, LLVMIntSLT, ql, nqv));
  LLVMValueRef qp = CG_ADD(EM, q0, CG_SEL(EM, qvalid, ql, cg_i32(EM, 0)));
  for (int a = 0; a < 5; a++) vars[qv[a]] = coord(k, base, a, qp);
  vars[CG_V_QPOS] = qp;
  cg_lower_part(l, EM, vars, qside, NULL, memo);
  LLVMValueRef rowp = cg_gep(EM, EM->t_i32, out, CG_ZEXT64(EM, CG_MUL(EM, CG_SEL(EM, qin, ql, cg_i32(EM, 0)), cg_i32(EM, wpr))));
  cg_rset(EM, word, cg_i32(EM, 0));
  cg_for cols;
  LLVMValueRef j = cg_for_begin(EM, &cols, cg_i32(EM, 0), cg_i32(EM, t->bk));
  LLVMValueRef kin = CG_ICMP(EM, LLVMIntSLT, j, nkv);
  LLVMValueRef kp = CG_ADD(EM, k0, CG_SEL(EM, kin, j, cg_i32(EM, 0)));
  for (int a = 0; a < 5; a++) vars[kv[a]] = coord(k, base, a, kp);
  vars[CG_V_KPOS] = kp;
  LLVMValueRef m = CG_AND(EM, CG_AND(EM, qvalid, kin), cg_lower_join(l, EM, vars, memo, NULL));
  LLVMValueRef bit = CG_SHL(EM, LLVMBuildZExt(EM->b, m, EM->t_i32, ""), CG_AND(EM, j, cg_i32(EM, 31)));
  LLVMValueRef wv = CG_OR(EM, cg_rget(EM, word), bit);
  cg_rset(EM, word, wv);
  cg_if last, st;
  cg_if_begin(EM, &last, CG_ICMP(EM, LLVMIntEQ, CG_AND(EM, j, cg_i32(EM, 31)), cg_i32(EM, 31)));
  cg_if_begin(EM, &st, qin);
  cg_store(EM, wv, cg_gep(EM, EM->t_i32, rowp, CG_LSHR(EM, j, cg_i32(EM, 5))));
  cg_if_end(EM, &st);
  cg_rset(EM, word, cg_i32(EM, 0));
  cg_if_end(EM, &last);
  cg_for_end(EM, &cols);
  cg_for_end(EM, &rows);
}

void cg_tgen_bits_kernel(cg_em *em, const cg_tgen *t, cg_arch arch, cg_lower **lw) {
  static const char *names[NB] = {"coords", "rows", "counts", "pbase", "tabs", "step", "layer"};
  rk kk = {.em = em, .t = t}, *k = &kk;
  LLVMTypeRef ty[NB] = {EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_i32, EM->t_i32};
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_tbl_bits", ty, names, NB, 32 * CG_TGEN_WARPS, 0);
  LLVMValueRef prm[NB];
  for (int i = 0; i < NB; i++) prm[i] = LLVMGetParam(fn, (unsigned)i);
  k->prm[P_COORDS] = prm[B_COORDS];
  k->prm[P_STEP] = prm[B_STEP];
  k->prm[P_LAYER] = prm[B_LAYER];
  if (cg_tk_init(&k->tk, EM, arch, CG_BF16, 32 * CG_TGEN_WARPS)) {
    EM->bad = 1;  /* err says why */
    return;
  }
  LLVMValueRef qb = cg_sreg_read(EM, CG_CTAID_X), table = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, table, cg_i32(EM, t->nq)), qb);
  LLVMValueRef pb = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, prm[B_PBASE], CG_ZEXT64(EM, row)));
  cg_if has;
  cg_if_begin(EM, &has, CG_ICMP(EM, LLVMIntSGE, pb, cg_i32(EM, 0)));
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, prm[B_COUNTS], CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1)));
  LLVMValueRef np = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, cnt, cg_i32(EM, 1)));
  LLVMValueRef slot = cg_gep(EM, EM->t_i32, prm[B_TABS], CG_MUL(EM, CG_ZEXT64(EM, table), cg_i64(EM, t->table_ints)));
  LLVMValueRef src = cg_gep(EM, EM->t_i32, prm[B_ROWS], CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, t->nk)));
  cg_for loop;
  LLVMValueRef r = cg_for_begin(EM, &loop, cg_i32(EM, 0),
                                CG_UDIV(EM, CG_ADD(EM, np, cg_i32(EM, CG_TGEN_WARPS - 1)), cg_i32(EM, CG_TGEN_WARPS)));
  LLVMValueRef p = CG_ADD(EM, CG_MUL(EM, r, cg_i32(EM, CG_TGEN_WARPS)), k->tk.warp);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, p, np));
  /* Partial block p sits p from the back of its row (sieve_tbl_compact). */
  LLVMValueRef kb = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, src, CG_SUB(EM, cg_i32(EM, t->nk - 1), p)));
  LLVMValueRef at = CG_ADD(EM, CG_ZEXT64(EM, pb), CG_MUL(EM, CG_ZEXT64(EM, p), cg_i64(EM, t->wpb)));
  LLVMValueRef out = cg_gep(EM, EM->t_i32, slot, at);
  for (int i = 0; i < t->ntables; i++) {
    if (!cg_tgen_table_bits(t, i)) continue;
    cg_if arm;
    if (t->ntables > 1) cg_if_begin(EM, &arm, CG_ICMP(EM, LLVMIntEQ, table, cg_i32(EM, i)));
    bits_pair(k, lw[i], i, qb, kb, out);
    if (t->ntables > 1) cg_if_end(EM, &arm);
  }
  cg_if_end(EM, &in);
  cg_for_end(EM, &loop);
  cg_if_end(EM, &has);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
}
