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

/*
** The bits of (qb, kb) under table i's mask (row r, word w, bit b: column
** 32 w + b; positions past the sequence 0), word by word: lane l takes key
** 32 w + l, its key-only part computed once per word column, and the warp
** walks the query rows together, each row's word the warp's ballot. Every
** word goes to out (one lane stores it) or, with out NULL, into the two
** hash registers (the same in every lane), column by column.
*/
enum { B_COORDS, B_ROWS, B_COUNTS, B_PGBASE };

static void bits_pair(rk *k, cg_lower *l, int i, LLVMValueRef qb, LLVMValueRef kb, LLVMValueRef out, cg_reg *h) {
  static const cg_var qv[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
  static const cg_var kv[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};
  const uint32_t uni = 1u << CG_V_STEP | 1u << CG_V_LAYER;
  const uint32_t qside = 1u << CG_V_QT | 1u << CG_V_QY | 1u << CG_V_QX | 1u << CG_V_QTEXT | 1u << CG_V_QIDX |
                         1u << CG_V_QPOS | uni;
  const uint32_t kside = 1u << CG_V_KT | 1u << CG_V_KY | 1u << CG_V_KX | 1u << CG_V_KTEXT | 1u << CG_V_KIDX |
                         1u << CG_V_KPOS | uni;
  const cg_tgen *t = k->t;
  int wpr = t->bk / 32;
  LLVMValueRef lane = k->tk.lane;
  LLVMValueRef base = cg_gep(EM, EM->t_i32, k->prm[P_COORDS], cg_i64(EM, (int64_t)t->lay[i] * 5 * t->seq));
  LLVMValueRef q0 = CG_MUL(EM, qb, cg_i32(EM, t->bq)), k0 = CG_MUL(EM, kb, cg_i32(EM, t->bk));
  LLVMValueRef s = cg_i32(EM, t->seq);
  LLVMValueRef nqv = CG_SUB(EM, s, q0), nkv = CG_SUB(EM, s, k0);
  LLVMValueRef vars[CG_NVARS] = {0};
  vars[CG_V_STEP] = k->prm[P_STEP];
  vars[CG_V_LAYER] = k->prm[P_LAYER];
  size_t msz = sizeof(LLVMValueRef) * (size_t)cg_lower_size(l);
  LLVMValueRef *kmemo = cg_alloc(k->tk.arena, msz), *qmemo = cg_alloc(k->tk.arena, msz);
  if (!kmemo || !qmemo) {
    EM->bad = 1;
    return;
  }
  cg_for cols;
  LLVMValueRef w = cg_for_begin(EM, &cols, cg_i32(EM, 0), cg_i32(EM, wpr));
  LLVMValueRef kj = CG_ADD(EM, CG_SHL(EM, w, cg_i32(EM, 5)), lane);
  LLVMValueRef kin = CG_ICMP(EM, LLVMIntSLT, kj, nkv);
  LLVMValueRef kp = CG_ADD(EM, k0, CG_SEL(EM, kin, kj, cg_i32(EM, 0)));
  for (int a = 0; a < 5; a++) vars[kv[a]] = coord(k, base, a, kp);
  vars[CG_V_KPOS] = kp;
  cg_lower_part(l, EM, vars, kside, NULL, kmemo);
  cg_for rows;
  LLVMValueRef r = cg_for_begin(EM, &rows, cg_i32(EM, 0), cg_i32(EM, t->bq));
  LLVMValueRef qin = CG_ICMP(EM, LLVMIntSLT, r, nqv);
  LLVMValueRef qp = CG_ADD(EM, q0, CG_SEL(EM, qin, r, cg_i32(EM, 0)));
  for (int a = 0; a < 5; a++) vars[qv[a]] = coord(k, base, a, qp);
  vars[CG_V_QPOS] = qp;
  cg_lower_part(l, EM, vars, qside, NULL, qmemo);
  LLVMValueRef m = CG_AND(EM, CG_AND(EM, qin, kin), cg_lower_join(l, EM, vars, qmemo, kmemo));
  LLVMValueRef word = cg_ballot(EM, m);
  if (out) {
    cg_if lead;
    cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, lane, cg_i32(EM, 0)));
    cg_store(EM, word, cg_gep(EM, EM->t_i32, out, CG_ZEXT64(EM, CG_ADD(EM, CG_MUL(EM, r, cg_i32(EM, wpr)), w))));
    cg_if_end(EM, &lead);
  } else {
    /* Two independent multiply-xorshift streams: 128 bits. */
    static const uint64_t mul[2] = {0x9E3779B97F4A7C15ull, 0xD6E8FEB86659FD93ull};
    LLVMValueRef x = CG_ZEXT64(EM, word);
    for (int c = 0; c < 2; c++) {
      LLVMValueRef v = CG_MUL(EM, LLVMBuildXor(EM->b, cg_rget(EM, h[c]), x, ""), cg_i64(EM, (int64_t)mul[c]));
      cg_rset(EM, h[c], LLVMBuildXor(EM->b, v, CG_LSHR(EM, v, cg_i64(EM, c ? 32 : 29)), ""));
    }
  }
  cg_for_end(EM, &rows);
  cg_for_end(EM, &cols);
}

/* An atomic read-modify-write on a global word. */
static LLVMValueRef rmw(cg_em *em, LLVMAtomicRMWBinOp op, LLVMValueRef ptr, LLVMValueRef v) {
  return LLVMBuildAtomicRMW(em->b, op, ptr, v, LLVMAtomicOrderingMonotonic, 0);
}

/*
** The block's bits, hashed (h), into the set: lane 0 probes from the
** hash, claims an empty slot (its key, then a number among the distinct
** bitmasks, and itself as their first block) or finds the slot another
** block with the same 128 bits claimed; slot_of[pg] says which.
*/
enum { H_KEY0 = 4, H_KEY1, H_REP, H_UID, H_SLOT_OF, H_COUNT, H_MASK, H_STEP, H_LAYER, NH };

static void insert(rk *k, LLVMValueRef *prm, cg_reg *h, LLVMValueRef pg) {
  LLVMTypeRef i64 = LLVMInt64TypeInContext(EM->ctx);
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, k->tk.lane, cg_i32(EM, 0)));
  LLVMValueRef k0 = CG_OR(EM, cg_rget(EM, h[0]), cg_i64(EM, 1)), k1 = CG_OR(EM, cg_rget(EM, h[1]), cg_i64(EM, 1));
  LLVMValueRef mask = prm[H_MASK];
  cg_reg at = cg_reg_new(EM, EM->t_i32, CG_AND(EM, LLVMBuildTrunc(EM->b, CG_LSHR(EM, k0, cg_i64(EM, 20)), EM->t_i32, ""), mask));
  cg_reg slot = cg_reg_new(EM, EM->t_i32, cg_i32(EM, -1));
  cg_for probe;
  cg_for_begin(EM, &probe, cg_i32(EM, 0), CG_ADD(EM, mask, cg_i32(EM, 1)));
  LLVMValueRef i = cg_rget(EM, at);
  LLVMValueRef p0 = cg_gep(EM, i64, prm[H_KEY0], CG_ZEXT64(EM, i)), p1 = cg_gep(EM, i64, prm[H_KEY1], CG_ZEXT64(EM, i));
  LLVMValueRef x = LLVMBuildAtomicCmpXchg(EM->b, p0, cg_i64(EM, 0), k0, LLVMAtomicOrderingMonotonic,
                                          LLVMAtomicOrderingMonotonic, 0);
  LLVMValueRef old = LLVMBuildExtractValue(EM->b, x, 0, "");
  cg_if claimed, same;
  cg_if_begin(EM, &claimed, CG_ICMP(EM, LLVMIntEQ, old, cg_i64(EM, 0)));
  rmw(EM, LLVMAtomicRMWBinOpXchg, p1, k1);
  LLVMValueRef u = rmw(EM, LLVMAtomicRMWBinOpAdd, prm[H_COUNT], cg_i32(EM, 1));
  cg_store(EM, u, cg_gep(EM, EM->t_i32, prm[H_UID], CG_ZEXT64(EM, i)));
  cg_store(EM, pg, cg_gep(EM, EM->t_i32, prm[H_REP], CG_ZEXT64(EM, i)));
  cg_rset(EM, slot, i);
  cg_if_end(EM, &claimed);
  cg_if_begin(EM, &same, CG_ICMP(EM, LLVMIntEQ, old, k0));
  /* Its claimer writes key1 right after the claim. */
  cg_reg v = cg_reg_new(EM, i64, cg_i64(EM, 0));
  cg_for spin;
  cg_for_begin(EM, &spin, cg_i32(EM, 0), cg_i32(EM, 1 << 30));
  cg_rset(EM, v, rmw(EM, LLVMAtomicRMWBinOpOr, p1, cg_i64(EM, 0)));
  loop_break(EM, &spin, CG_ICMP(EM, LLVMIntNE, cg_rget(EM, v), cg_i64(EM, 0)));
  cg_for_end(EM, &spin);
  cg_if match;
  cg_if_begin(EM, &match, CG_ICMP(EM, LLVMIntEQ, cg_rget(EM, v), k1));
  cg_rset(EM, slot, i);
  cg_if_end(EM, &match);
  cg_if_end(EM, &same);
  cg_rset(EM, at, CG_AND(EM, CG_ADD(EM, i, cg_i32(EM, 1)), mask));
  loop_break(EM, &probe, CG_ICMP(EM, LLVMIntSGE, cg_rget(EM, slot), cg_i32(EM, 0)));
  cg_for_end(EM, &probe);
  cg_store(EM, cg_rget(EM, slot), cg_gep(EM, EM->t_i32, prm[H_SLOT_OF], CG_ZEXT64(EM, pg)));
  cg_if_end(EM, &lead);
}

/*
** A CTA per row, its warps taking the row's partial blocks in turn: with
** hash set, each block's bits hashed into the set (sieve_tbl_bhash); else
** the bits of each distinct bitmask's first block into place
** (sieve_tbl_bits).
*/
enum { S_TABS = 4, S_SLOT_OF, S_REP, S_UID, S_STEP, S_LAYER, NS };

static void bits_kernel(cg_em *em, const cg_tgen *t, cg_arch arch, cg_lower **lw, int hash) {
  static const char *hn[NH] = {"coords", "rows", "counts", "pgbase", "key0", "key1", "rep", "uid",
                               "slot_of", "count", "mask", "step", "layer"};
  static const char *sn[NS] = {"coords", "rows", "counts", "pgbase", "tabs", "slot_of", "rep", "uid", "step", "layer"};
  rk kk = {.em = em, .t = t}, *k = &kk;
  int np = hash ? NH : NS;
  LLVMTypeRef ty[NH];
  for (int i = 0; i < np; i++) ty[i] = EM->t_gptr;
  ty[np - 2] = ty[np - 1] = EM->t_i32;
  if (hash) ty[H_MASK] = EM->t_i32;
  LLVMValueRef fn = cg_em_kernel(EM, hash ? "sieve_tbl_bhash" : "sieve_tbl_bits", ty, hash ? hn : sn, np,
                                 32 * CG_TGEN_WARPS, 0);
  LLVMValueRef prm[NH];
  for (int i = 0; i < np; i++) prm[i] = LLVMGetParam(fn, (unsigned)i);
  k->prm[P_COORDS] = prm[B_COORDS];
  k->prm[P_STEP] = prm[np - 2];
  k->prm[P_LAYER] = prm[np - 1];
  if (cg_tk_init(&k->tk, EM, arch, CG_BF16, 32 * CG_TGEN_WARPS)) {
    EM->bad = 1;  /* err says why */
    return;
  }
  LLVMTypeRef i64 = LLVMInt64TypeInContext(EM->ctx);
  LLVMValueRef qb = cg_sreg_read(EM, CG_CTAID_X), table = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, table, cg_i32(EM, t->nq)), qb);
  LLVMValueRef pg0 = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, prm[B_PGBASE], CG_ZEXT64(EM, row)));
  cg_if has;
  cg_if_begin(EM, &has, CG_ICMP(EM, LLVMIntSGE, pg0, cg_i32(EM, 0)));
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, prm[B_COUNTS], CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1)));
  LLVMValueRef npart = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, cnt, cg_i32(EM, 1)));
  LLVMValueRef src = cg_gep(EM, EM->t_i32, prm[B_ROWS], CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, t->nk)));
  /* The bitmasks past the last table slot. */
  LLVMValueRef bits0 = hash ? NULL : cg_gep(EM, EM->t_i32, prm[S_TABS], cg_i64(EM, (int64_t)t->ntables * t->table_ints));
  cg_reg h[2];
  if (hash)
    for (int c = 0; c < 2; c++) h[c] = cg_reg_new(EM, i64, NULL);
  cg_for loop;
  LLVMValueRef r = cg_for_begin(EM, &loop, cg_i32(EM, 0),
                                CG_UDIV(EM, CG_ADD(EM, npart, cg_i32(EM, CG_TGEN_WARPS - 1)), cg_i32(EM, CG_TGEN_WARPS)));
  LLVMValueRef p = CG_ADD(EM, CG_MUL(EM, r, cg_i32(EM, CG_TGEN_WARPS)), k->tk.warp);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, p, npart));
  /* Partial block p sits p from the back of its row (sieve_tbl_compact). */
  LLVMValueRef kb = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, src, CG_SUB(EM, cg_i32(EM, t->nk - 1), p)));
  LLVMValueRef pg = CG_ADD(EM, pg0, p);
  LLVMValueRef out = NULL;
  cg_if first;
  if (hash) {
    cg_rset(EM, h[0], cg_i64(EM, 0x243F6A8885A308D3ll));
    cg_rset(EM, h[1], cg_i64(EM, 0x13198A2E03707344ll));
  } else {
    LLVMValueRef sl = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, prm[S_SLOT_OF], CG_ZEXT64(EM, pg)));
    LLVMValueRef rep = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, prm[S_REP], CG_ZEXT64(EM, sl)));
    LLVMValueRef u = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, prm[S_UID], CG_ZEXT64(EM, sl)));
    out = cg_gep(EM, EM->t_i32, bits0, CG_MUL(EM, CG_ZEXT64(EM, u), cg_i64(EM, t->wpb)));
    cg_if_begin(EM, &first, CG_ICMP(EM, LLVMIntEQ, rep, pg));
  }
  for (int i = 0; i < t->ntables; i++) {
    if (!cg_tgen_table_bits(t, i)) continue;
    cg_if arm;
    if (t->ntables > 1) cg_if_begin(EM, &arm, CG_ICMP(EM, LLVMIntEQ, table, cg_i32(EM, i)));
    bits_pair(k, lw[i], i, qb, kb, out, hash ? h : NULL);
    if (t->ntables > 1) cg_if_end(EM, &arm);
  }
  if (hash) insert(k, prm, h, pg);
  else cg_if_end(EM, &first);
  cg_if_end(EM, &in);
  cg_for_end(EM, &loop);
  cg_if_end(EM, &has);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
}

void cg_tgen_bits_kernels(cg_em *em, const cg_tgen *t, cg_arch arch, cg_lower **lw) {
  bits_kernel(em, t, arch, lw, 1);
  bits_kernel(em, t, arch, lw, 0);
}
