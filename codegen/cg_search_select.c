/*
** The selection of the LSE-cached search: per (head, query block), the
** fewest allowed key blocks holding `recall` of the row's mass, at most
** `topk` of them.
**
** No sort: masses are non-negative floats, whose bit patterns order like
** their values, so a binary search over bit patterns finds the threshold
** tau, the largest value such that the blocks of mass >= tau hold the
** target. The selection is every block above tau and, in entry order, as
** many blocks equal to tau as the target still needs. A top-k cap is a
** second search, on counts instead of mass. Each probe is one pass over
** the row's masses in shared memory and one CTA-wide sum.
**
** Writing is one warp walking the entries in order, with ballots placing
** each chosen block: full ones from the front of its row, partial ones from
** the back, as cg_tablegen.h's packing kernels read them.
*/
#include "cg_search.h"
#include "cg_tile_ext.h"

#define WARPS 4
#define THREADS (32 * WARPS)
#define FINF_BITS 0x7f800000

enum { P_MASS, P_TABS, P_HEAD_OFF, P_ROWS, P_COUNTS, P_RECALL, P_TOPK, P_BATCH, NP };

typedef struct sel {
  cg_em *em;
  cg_tk tk;
  int nq, nk, heads;
  int64_t cap;
  LLVMValueRef prm[NP];
  LLVMValueRef h, qb, tab, start, n, nf, target;
  int red;  /* shared-memory bytes of the CTA sums, after the masses */
} sel;

#define EM (s->em)
#define TK (&s->tk)

static LLVMValueRef P(sel *s, int i) { return s->prm[i]; }
static LLVMValueRef I(sel *s, int64_t v) { return cg_i32(EM, v); }
static LLVMValueRef tab_at(sel *s, LLVMValueRef i) { return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, s->tab, i)); }
static LLVMValueRef smem_i(sel *s, LLVMValueRef i) { return cg_smem_at(EM, CG_SHL(EM, i, I(s, 2))); }

/* for (i = tid; i < n; i += THREADS) as chunks: returns i, valid in *in. */
static LLVMValueRef chunk_begin(sel *s, cg_for *l, LLVMValueRef *in) {
  LLVMValueRef c = cg_for_begin(EM, l, I(s, 0), CG_UDIV(EM, CG_ADD(EM, s->n, I(s, THREADS - 1)), I(s, THREADS)));
  LLVMValueRef i = CG_ADD(EM, CG_MUL(EM, c, I(s, THREADS)), TK->tid);
  *in = CG_ICMP(EM, LLVMIntSLT, i, s->n);
  return i;
}

/* Masses of the row's entries, summed over the batch, into shared memory;
** returns the CTA's total. */
static LLVMValueRef load_masses(sel *s) {
  cg_reg part = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  cg_for l, b;
  LLVMValueRef in, i = chunk_begin(s, &l, &in);
  cg_if c;
  cg_if_begin(EM, &c, in);
  cg_reg m = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  LLVMValueRef bi = cg_for_begin(EM, &b, I(s, 0), P(s, P_BATCH));
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, bi, I(s, s->heads)), s->h);
  LLVMValueRef at = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, bh), cg_i64(EM, s->cap)), CG_ZEXT64(EM, CG_ADD(EM, s->start, i)));
  cg_rset(EM, m, CG_FADD(EM, cg_rget(EM, m), cg_load(EM, EM->t_f32, cg_gep(EM, EM->t_f32, P(s, P_MASS), at))));
  cg_for_end(EM, &b);
  cg_store(EM, cg_rget(EM, m), smem_i(s, i));
  cg_rset(EM, part, CG_FADD(EM, cg_rget(EM, part), cg_rget(EM, m)));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  return cg_block_sum_f32(TK, cg_rget(EM, part), s->red);
}

/* Over the row: the mass (or the count) of the entries whose bits compare
** to tau by pred, summed over the CTA. */
static LLVMValueRef sum_where(sel *s, LLVMIntPredicate pred, LLVMValueRef tau, int count) {
  cg_reg part = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  cg_for l;
  LLVMValueRef in, i = chunk_begin(s, &l, &in);
  LLVMValueRef bits = cg_load(EM, EM->t_i32, smem_i(s, CG_SEL(EM, in, i, I(s, 0))));
  LLVMValueRef hit = CG_AND(EM, in, CG_ICMP(EM, pred, bits, tau));
  LLVMValueRef v = count ? cg_f32(EM, 1) : LLVMBuildBitCast(EM->b, bits, EM->t_f32, "");
  cg_rset(EM, part, CG_FADD(EM, cg_rget(EM, part), CG_SEL(EM, hit, v, cg_f32(EM, 0))));
  cg_for_end(EM, &l);
  return cg_block_sum_f32(TK, cg_rget(EM, part), s->red);
}

/* The largest tau whose entries >= tau reach `want` (mass, or count). */
static LLVMValueRef search(sel *s, LLVMValueRef want, int count) {
  cg_reg lo = cg_reg_new(EM, EM->t_i32, I(s, 0)), hi = cg_reg_new(EM, EM->t_i32, I(s, FINF_BITS));
  cg_for l;
  cg_for_begin(EM, &l, I(s, 0), I(s, 31));  /* hi - lo < 2^31 halves to 0 in 31 probes */
  LLVMValueRef a = cg_rget(EM, lo), b = cg_rget(EM, hi);
  LLVMValueRef mid = CG_ADD(EM, a, CG_LSHR(EM, CG_ADD(EM, CG_SUB(EM, b, a), I(s, 1)), I(s, 1)));
  LLVMValueRef ok = CG_FCMP(EM, LLVMRealOGE, sum_where(s, LLVMIntSGE, mid, count), want);
  cg_rset(EM, lo, CG_SEL(EM, ok, mid, a));
  cg_rset(EM, hi, CG_SEL(EM, ok, b, CG_SUB(EM, mid, I(s, 1))));
  cg_for_end(EM, &l);
  return cg_rget(EM, lo);
}

/* Top-p: tau, and how many entries equal to tau complete the target. */
static void top_p(sel *s, cg_reg tau, cg_reg ties, cg_reg count) {
  LLVMValueRef t = search(s, s->target, 0), above = CG_ADD(EM, t, I(s, 1));
  LLVMValueRef sum_gt = sum_where(s, LLVMIntSGE, above, 0), cnt_gt = sum_where(s, LLVMIntSGE, above, 1);
  LLVMValueRef cnt_eq = sum_where(s, LLVMIntEQ, t, 1);
  LLVMValueRef mt = LLVMBuildBitCast(EM->b, t, EM->t_f32, "");
  LLVMValueRef need = LLVMBuildFDiv(EM->b, CG_FSUB(EM, s->target, sum_gt), mt, "");
  LLVMValueRef k = cg_intr(EM, "llvm.ceil", &EM->t_f32, 1, &need, 1);
  k = cg_fmax(EM, cg_f32(EM, 0), k);
  k = CG_SEL(EM, CG_FCMP(EM, LLVMRealOGT, mt, cg_f32(EM, 0)), k, cg_f32(EM, 0));
  k = CG_SEL(EM, CG_FCMP(EM, LLVMRealOGT, k, cnt_eq), cnt_eq, k);
  LLVMValueRef ki = LLVMBuildFPToSI(EM->b, k, EM->t_i32, "");
  cg_rset(EM, tau, t);
  cg_rset(EM, ties, ki);
  cg_rset(EM, count, CG_ADD(EM, LLVMBuildFPToSI(EM->b, cnt_gt, EM->t_i32, ""), ki));
}

/* At most topk: the same on counts, when the top-p set is larger. */
static void cap_topk(sel *s, cg_reg tau, cg_reg ties, cg_reg count) {
  LLVMValueRef topk = P(s, P_TOPK);
  cg_if c;
  cg_if_begin(EM, &c, CG_AND(EM, CG_ICMP(EM, LLVMIntSGT, topk, I(s, 0)),
                             CG_ICMP(EM, LLVMIntSGT, cg_rget(EM, count), topk)));
  LLVMValueRef t = search(s, LLVMBuildSIToFP(EM->b, topk, EM->t_f32, ""), 1);
  LLVMValueRef cnt_gt = sum_where(s, LLVMIntSGE, CG_ADD(EM, t, I(s, 1)), 1);
  cg_rset(EM, tau, t);
  cg_rset(EM, ties, CG_SUB(EM, topk, LLVMBuildFPToSI(EM->b, cnt_gt, EM->t_i32, "")));
  cg_if_end(EM, &c);
}

/* Warp 0 writes the chosen entries' key blocks in entry order. */
static void write_row(sel *s, LLVMValueRef tau, LLVMValueRef ties) {
  LLVMValueRef lane = TK->lane, below = cg_lanes_below(EM, lane);
  LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, s->h, I(s, s->nq)), s->qb);
  LLVMValueRef out = cg_gep(EM, EM->t_i32, P(s, P_ROWS), CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, s->nk)));
  cg_reg tb = cg_reg_new(EM, EM->t_i32, I(s, 0)), nf = cg_reg_new(EM, EM->t_i32, I(s, 0));
  cg_reg np = cg_reg_new(EM, EM->t_i32, I(s, 0));
  cg_for l;
  LLVMValueRef c = cg_for_begin(EM, &l, I(s, 0), CG_LSHR(EM, CG_ADD(EM, s->n, I(s, 31)), I(s, 5)));
  LLVMValueRef i = CG_ADD(EM, CG_SHL(EM, c, I(s, 5)), lane), in = CG_ICMP(EM, LLVMIntSLT, i, s->n);
  LLVMValueRef bits = cg_load(EM, EM->t_i32, smem_i(s, CG_SEL(EM, in, i, I(s, 0))));
  LLVMValueRef gt = CG_AND(EM, in, CG_ICMP(EM, LLVMIntSGT, bits, tau));
  LLVMValueRef tie = CG_AND(EM, in, CG_ICMP(EM, LLVMIntEQ, bits, tau));
  LLVMValueRef bt = cg_ballot(EM, tie), t0 = cg_rget(EM, tb);
  LLVMValueRef rank = CG_ADD(EM, t0, cg_popc(EM, CG_AND(EM, bt, below)));
  LLVMValueRef pick = CG_OR(EM, gt, CG_AND(EM, tie, CG_ICMP(EM, LLVMIntSLT, rank, ties)));
  LLVMValueRef full = CG_ICMP(EM, LLVMIntSLT, i, s->nf);
  LLVMValueRef isf = CG_AND(EM, pick, full), isp = CG_AND(EM, pick, CG_XOR(EM, full, cg_true(EM)));
  LLVMValueRef bf = cg_ballot(EM, isf), bp = cg_ballot(EM, isp), f = cg_rget(EM, nf), p = cg_rget(EM, np);
  cg_if w;
  cg_if_begin(EM, &w, pick);
  LLVMValueRef kb = tab_at(s, CG_ADD(EM, CG_ADD(EM, s->start, i), I(s, 2 * s->nq + 1)));
  LLVMValueRef front = CG_ADD(EM, f, cg_popc(EM, CG_AND(EM, bf, below)));
  LLVMValueRef back = CG_SUB(EM, I(s, s->nk - 1), CG_ADD(EM, p, cg_popc(EM, CG_AND(EM, bp, below))));
  cg_store(EM, kb, cg_gep(EM, EM->t_i32, out, CG_SEL(EM, full, front, back)));
  cg_if_end(EM, &w);
  cg_rset(EM, tb, CG_ADD(EM, t0, cg_popc(EM, bt)));
  cg_rset(EM, nf, CG_ADD(EM, f, cg_popc(EM, bf)));
  cg_rset(EM, np, CG_ADD(EM, p, cg_popc(EM, bp)));
  cg_for_end(EM, &l);
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, lane, I(s, 0)));
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, P(s, P_COUNTS), CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1)));
  cg_store(EM, cg_rget(EM, nf), cnt);
  cg_store(EM, cg_rget(EM, np), cg_gep(EM, EM->t_i32, cnt, I(s, 1)));
  cg_if_end(EM, &lead);
}

static void body(sel *s) {
  s->h = cg_sreg_read(EM, CG_CTAID_Y);
  s->qb = cg_sreg_read(EM, CG_CTAID_X);
  LLVMValueRef hoff = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, P(s, P_HEAD_OFF), s->h));
  s->tab = cg_gep(EM, EM->t_i32, P(s, P_TABS), hoff);
  s->start = tab_at(s, s->qb);
  s->n = CG_SUB(EM, tab_at(s, CG_ADD(EM, s->qb, I(s, 1))), s->start);
  s->nf = tab_at(s, CG_ADD(EM, s->qb, I(s, s->nq + 1)));
  s->target = CG_FMUL(EM, P(s, P_RECALL), load_masses(s));
  cg_reg tau = cg_reg_new(EM, EM->t_i32, NULL), ties = cg_reg_new(EM, EM->t_i32, NULL);
  cg_reg count = cg_reg_new(EM, EM->t_i32, NULL);
  top_p(s, tau, ties, count);
  cap_topk(s, tau, ties, count);
  cg_if w0;
  cg_if_begin(EM, &w0, CG_ICMP(EM, LLVMIntEQ, TK->warp, I(s, 0)));
  write_row(s, cg_rget(EM, tau), cg_rget(EM, ties));
  cg_if_end(EM, &w0);
}

void cg_search_select_kernel(cg_em *em, int nq, int nk, int heads, int64_t cap) {
  static const char *names[NP] = {"mass", "tabs", "head_off", "rows", "counts", "recall", "topk", "batch"};
  sel S = {.em = em, .nq = nq, .nk = nk, .heads = heads, .cap = cap, .red = 4 * nk}, *s = &S;
  LLVMTypeRef t[NP] = {em->t_gptr, em->t_gptr, em->t_gptr, em->t_gptr, em->t_gptr,
                       em->t_f32, em->t_i32, em->t_i32};
  LLVMValueRef fn = cg_em_kernel(em, "sieve_search_select", t, names, NP, THREADS, 0);
  for (int i = 0; i < NP; i++) s->prm[i] = LLVMGetParam(fn, (unsigned)i);
  if (cg_tk_init(TK, em, CG_SM80, CG_BF16, THREADS)) {
    em->bad = 1;  /* err says why */
    return;
  }
  body(s);
  LLVMBuildRetVoid(em->b);
  cg_tk_dispose(TK);
}
