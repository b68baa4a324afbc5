/*
** The selection of the LSE-cached search: per (batch, head, query block),
** the fewest allowed key blocks holding `recall` of the row's mass, at most
** `topk` of them.
**
** With a block hierarchy (sieve.search's levels), the same top-p runs level
** by level, coarse to fine, on the groups of key blocks each level makes:
** a level keeps the fewest groups, among the children of those the level
** above kept, whose mass still reaches the row's target; the key blocks of
** dropped groups count as mass 0 below. The last level is the kernel's key
** block, so the kept mass still reaches the target, and whole groups of
** blocks (a region of frames, a modality) come and go together as AdaSpa's
** blockified pattern has them. Group masses are summed in key-block order
** from a dense row of the entries' masses, so the sums do not depend on
** the order of the table's entries.
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
**
** AdaSpa's text sink (arXiv 2502.21079 §4.3 (1)) is added there: with it,
** every entry whose query or key block holds a token of the valid text is
** chosen besides the top-k, so text rows stay dense and text columns are
** kept in every row. The same warp sums the chosen entries' mass, which
** with the row's whole mass gives each head's recall (AdaSpa's tiers).
*/
#include "cg_lower.h"
#include "cg_search.h"
#include "cg_tile_ext.h"

#define WARPS 4
#define THREADS (32 * WARPS)
#define FINF_BITS 0x7f800000

enum { P_MASS, P_TABS, P_HEAD_OFF, P_ROWS, P_COUNTS, P_RECALL, P_TOPK, P_TLEN, P_ROWMASS, NP };

typedef struct sel {
  cg_em *em;
  cg_tk tk;
  const sieve_shape *sh;
  int nq, nk, heads, bq, bk, sink;
  int64_t cap;
  LLVMValueRef total, topk;   /* the row's mass; its (batch, head)'s cap */
  LLVMValueRef tlo, thi, trow; /* sink: valid text tokens [tlo, thi); the row holds one */
  const int *groups;  /* blocks per group of each coarse level, coarse first */
  int ngroups;
  LLVMValueRef prm[NP];
  LLVMValueRef h, b, qb, tab, start, n, nf, target;
  LLVMValueRef vals, cnt;  /* the values top-p works on: smem byte offset, count */
  int dense, grp, red;     /* smem byte offsets: dense row, group masses, CTA sums */
} sel;

#define EM (s->em)
#define TK (&s->tk)

static LLVMValueRef P(sel *s, int i) { return s->prm[i]; }
static LLVMValueRef I(sel *s, int64_t v) { return cg_i32(EM, v); }
static LLVMValueRef tab_at(sel *s, LLVMValueRef i) { return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, s->tab, i)); }
static LLVMValueRef smem_f(sel *s, LLVMValueRef base, LLVMValueRef i) {
  return cg_smem_at(EM, CG_ADD(EM, base, CG_SHL(EM, i, I(s, 2))));
}
static LLVMValueRef smem_i(sel *s, LLVMValueRef i) { return smem_f(s, I(s, 0), i); }
static LLVMValueRef val_at(sel *s, LLVMValueRef i) { return smem_f(s, s->vals, i); }
static LLVMValueRef entry_block(sel *s, LLVMValueRef i) {
  return tab_at(s, CG_ADD(EM, CG_ADD(EM, s->start, i), I(s, 2 * s->nq + 1)));
}

/* for (i = tid; i < n; i += THREADS) as chunks: returns i, valid in *in. */
static LLVMValueRef chunk_over(sel *s, cg_for *l, LLVMValueRef n, LLVMValueRef *in) {
  LLVMValueRef c = cg_for_begin(EM, l, I(s, 0), CG_UDIV(EM, CG_ADD(EM, n, I(s, THREADS - 1)), I(s, THREADS)));
  LLVMValueRef i = CG_ADD(EM, CG_MUL(EM, c, I(s, THREADS)), TK->tid);
  *in = CG_ICMP(EM, LLVMIntSLT, i, n);
  return i;
}
static LLVMValueRef chunk_begin(sel *s, cg_for *l, LLVMValueRef *in) { return chunk_over(s, l, s->cnt, in); }

/* Masses of the row's entries into shared memory; returns the CTA's total. */
static LLVMValueRef load_masses(sel *s) {
  cg_reg part = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  cg_for l;
  LLVMValueRef in, i = chunk_over(s, &l, s->n, &in);
  cg_if c;
  cg_if_begin(EM, &c, in);
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, s->b, I(s, s->heads)), s->h);
  LLVMValueRef at = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, bh), cg_i64(EM, s->cap)), CG_ZEXT64(EM, CG_ADD(EM, s->start, i)));
  LLVMValueRef m = cg_load(EM, EM->t_f32, cg_gep(EM, EM->t_f32, P(s, P_MASS), at));
  cg_store(EM, m, smem_i(s, i));
  cg_rset(EM, part, CG_FADD(EM, cg_rget(EM, part), m));
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
  LLVMValueRef bits = cg_load(EM, EM->t_i32, val_at(s, CG_SEL(EM, in, i, I(s, 0))));
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
  LLVMValueRef topk = s->topk;
  cg_if c;
  cg_if_begin(EM, &c, CG_AND(EM, CG_ICMP(EM, LLVMIntSGT, topk, I(s, 0)),
                             CG_ICMP(EM, LLVMIntSGT, cg_rget(EM, count), topk)));
  LLVMValueRef t = search(s, LLVMBuildSIToFP(EM->b, topk, EM->t_f32, ""), 1);
  LLVMValueRef cnt_gt = sum_where(s, LLVMIntSGE, CG_ADD(EM, t, I(s, 1)), 1);
  cg_rset(EM, tau, t);
  cg_rset(EM, ties, CG_SUB(EM, topk, LLVMBuildFPToSI(EM->b, cnt_gt, EM->t_i32, "")));
  cg_if_end(EM, &c);
}

/*
** One step of warp 0's walk over the values in order: whether value i (in:
** i < cnt) is chosen, those above tau and, in order, the first `ties` of
** those equal to it. tb counts the ties seen before this chunk.
*/
static LLVMValueRef walk_pick(sel *s, LLVMValueRef i, LLVMValueRef in, LLVMValueRef tau, LLVMValueRef ties,
                              cg_reg tb) {
  LLVMValueRef bits = cg_load(EM, EM->t_i32, val_at(s, CG_SEL(EM, in, i, I(s, 0))));
  LLVMValueRef gt = CG_AND(EM, in, CG_ICMP(EM, LLVMIntSGT, bits, tau));
  LLVMValueRef tie = CG_AND(EM, in, CG_ICMP(EM, LLVMIntEQ, bits, tau));
  LLVMValueRef bt = cg_ballot(EM, tie), t0 = cg_rget(EM, tb);
  LLVMValueRef rank = CG_ADD(EM, t0, cg_popc(EM, CG_AND(EM, bt, cg_lanes_below(EM, TK->lane))));
  cg_rset(EM, tb, CG_ADD(EM, t0, cg_popc(EM, bt)));
  return CG_OR(EM, gt, CG_AND(EM, tie, CG_ICMP(EM, LLVMIntSLT, rank, ties)));
}

/* for (i = lane; i < cnt; i += 32) as chunks of the warp. */
static LLVMValueRef walk_begin(sel *s, cg_for *l, LLVMValueRef *in) {
  LLVMValueRef c = cg_for_begin(EM, l, I(s, 0), CG_LSHR(EM, CG_ADD(EM, s->cnt, I(s, 31)), I(s, 5)));
  LLVMValueRef i = CG_ADD(EM, CG_SHL(EM, c, I(s, 5)), TK->lane);
  *in = CG_ICMP(EM, LLVMIntSLT, i, s->cnt);
  return i;
}

/* Whether blocks [b n, (b + 1) n) hold a valid text token. */
static LLVMValueRef in_sink(sel *s, LLVMValueRef b, int n) {
  LLVMValueRef p0 = CG_MUL(EM, b, I(s, n));
  return CG_AND(EM, CG_ICMP(EM, LLVMIntSLT, p0, s->thi),
                CG_AND(EM, CG_ICMP(EM, LLVMIntSGT, CG_ADD(EM, p0, I(s, n)), s->tlo),
                       CG_ICMP(EM, LLVMIntSLT, s->tlo, s->thi)));
}

/* Warp 0 writes the chosen entries' key blocks in entry order. */
static void write_row(sel *s, LLVMValueRef tau, LLVMValueRef ties) {
  LLVMValueRef lane = TK->lane, below = cg_lanes_below(EM, lane);
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, s->b, I(s, s->heads)), s->h);
  LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, bh, I(s, s->nq)), s->qb);
  LLVMValueRef out = cg_gep(EM, EM->t_i32, P(s, P_ROWS), CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, s->nk)));
  cg_reg tb = cg_reg_new(EM, EM->t_i32, I(s, 0)), nf = cg_reg_new(EM, EM->t_i32, I(s, 0));
  cg_reg np = cg_reg_new(EM, EM->t_i32, I(s, 0)), kept = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  cg_for l;
  LLVMValueRef in, i = walk_begin(s, &l, &in);
  LLVMValueRef pick = walk_pick(s, i, in, tau, ties, tb);
  LLVMValueRef safe = CG_SEL(EM, in, i, I(s, 0));
  if (s->sink) pick = CG_OR(EM, pick, CG_AND(EM, in, CG_OR(EM, s->trow, in_sink(s, entry_block(s, safe), s->bk))));
  LLVMValueRef m = cg_load(EM, EM->t_f32, smem_i(s, safe));
  cg_rset(EM, kept, CG_FADD(EM, cg_rget(EM, kept), CG_SEL(EM, pick, m, cg_f32(EM, 0))));
  LLVMValueRef full = CG_ICMP(EM, LLVMIntSLT, i, s->nf);
  LLVMValueRef isf = CG_AND(EM, pick, full), isp = CG_AND(EM, pick, CG_XOR(EM, full, cg_true(EM)));
  LLVMValueRef bf = cg_ballot(EM, isf), bp = cg_ballot(EM, isp), f = cg_rget(EM, nf), p = cg_rget(EM, np);
  cg_if w;
  cg_if_begin(EM, &w, pick);
  LLVMValueRef front = CG_ADD(EM, f, cg_popc(EM, CG_AND(EM, bf, below)));
  LLVMValueRef back = CG_SUB(EM, I(s, s->nk - 1), CG_ADD(EM, p, cg_popc(EM, CG_AND(EM, bp, below))));
  cg_store(EM, entry_block(s, i), cg_gep(EM, EM->t_i32, out, CG_SEL(EM, full, front, back)));
  cg_if_end(EM, &w);
  cg_rset(EM, nf, CG_ADD(EM, f, cg_popc(EM, bf)));
  cg_rset(EM, np, CG_ADD(EM, p, cg_popc(EM, bp)));
  cg_for_end(EM, &l);
  LLVMValueRef ksum = cg_warp_sum_f32(EM, cg_rget(EM, kept));
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, lane, I(s, 0)));
  LLVMValueRef at2 = CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1));
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, P(s, P_COUNTS), at2);
  cg_store(EM, cg_rget(EM, nf), cnt);
  cg_store(EM, cg_rget(EM, np), cg_gep(EM, EM->t_i32, cnt, I(s, 1)));
  LLVMValueRef rm = cg_gep(EM, EM->t_f32, P(s, P_ROWMASS), at2);
  cg_store(EM, ksum, rm);
  cg_store(EM, s->total, cg_gep(EM, EM->t_f32, rm, I(s, 1)));
  cg_if_end(EM, &lead);
}

/* ------------------------------------------------------- hierarchy */

static LLVMValueRef dense_at(sel *s, LLVMValueRef kb) { return smem_f(s, I(s, s->dense), kb); }
static LLVMValueRef group_at(sel *s, LLVMValueRef g) { return smem_f(s, I(s, s->grp), g); }

/* The row's masses by key block, 0 where no entry is. */
static void dense_row(sel *s) {
  cg_for l;
  LLVMValueRef in, kb = chunk_over(s, &l, I(s, s->nk), &in);
  cg_if c;
  cg_if_begin(EM, &c, in);
  cg_store(EM, cg_f32(EM, 0), dense_at(s, kb));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  cg_sync(TK);
  LLVMValueRef i = chunk_over(s, &l, s->n, &in);
  cg_if_begin(EM, &c, in);
  cg_store(EM, cg_load(EM, EM->t_f32, smem_i(s, i)), dense_at(s, entry_block(s, i)));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  cg_sync(TK);
}

/* One level of g blocks per group: group masses, top-p on them, and the
** blocks of the groups it drops zeroed in the dense row. */
static void level(sel *s, int g) {
  int ng = (s->nk + g - 1) / g;
  cg_for l, x;
  LLVMValueRef in, G = chunk_over(s, &l, I(s, ng), &in);
  cg_if c;
  cg_if_begin(EM, &c, in);
  LLVMValueRef k0 = CG_MUL(EM, G, I(s, g));
  LLVMValueRef k1 = CG_SEL(EM, CG_ICMP(EM, LLVMIntSLT, CG_ADD(EM, k0, I(s, g)), I(s, s->nk)),
                           CG_ADD(EM, k0, I(s, g)), I(s, s->nk));
  cg_reg m = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  LLVMValueRef kb = cg_for_begin(EM, &x, k0, k1);
  cg_rset(EM, m, CG_FADD(EM, cg_rget(EM, m), cg_load(EM, EM->t_f32, dense_at(s, kb))));
  cg_for_end(EM, &x);
  cg_store(EM, cg_rget(EM, m), group_at(s, G));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  cg_sync(TK);
  s->vals = I(s, s->grp);
  s->cnt = I(s, ng);
  cg_reg tau = cg_reg_new(EM, EM->t_i32, NULL), ties = cg_reg_new(EM, EM->t_i32, NULL);
  cg_reg count = cg_reg_new(EM, EM->t_i32, NULL);
  top_p(s, tau, ties, count);
  /* Warp 0 overwrites each group's mass with whether it stays (1 or 0):
  ** a lane reads and writes only its own groups. */
  cg_if w0;
  cg_if_begin(EM, &w0, CG_ICMP(EM, LLVMIntEQ, TK->warp, I(s, 0)));
  cg_reg tb = cg_reg_new(EM, EM->t_i32, I(s, 0));
  LLVMValueRef i = walk_begin(s, &l, &in);
  LLVMValueRef pick = walk_pick(s, i, in, cg_rget(EM, tau), cg_rget(EM, ties), tb);
  cg_if_begin(EM, &c, in);
  cg_store(EM, CG_SEL(EM, pick, cg_f32(EM, 1), cg_f32(EM, 0)), group_at(s, i));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  cg_if_end(EM, &w0);
  cg_sync(TK);
  kb = chunk_over(s, &l, I(s, s->nk), &in);
  LLVMValueRef safe = CG_SEL(EM, in, kb, I(s, 0));
  LLVMValueRef kept = CG_FCMP(EM, LLVMRealOGT, cg_load(EM, EM->t_f32, group_at(s, CG_UDIV(EM, safe, I(s, g)))),
                              cg_f32(EM, 0));
  cg_if_begin(EM, &c, CG_AND(EM, in, CG_XOR(EM, kept, cg_true(EM))));
  cg_store(EM, cg_f32(EM, 0), dense_at(s, kb));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  cg_sync(TK);
}

/* Coarse levels first; then the entries' masses as the levels left them. */
static void hierarchy(sel *s) {
  dense_row(s);
  for (int i = 0; i < s->ngroups; i++) level(s, s->groups[i]);
  cg_for l;
  cg_if c;
  LLVMValueRef in, i = chunk_over(s, &l, s->n, &in);
  cg_if_begin(EM, &c, in);
  cg_store(EM, cg_load(EM, EM->t_f32, dense_at(s, entry_block(s, i))), smem_i(s, i));
  cg_if_end(EM, &c);
  cg_for_end(EM, &l);
  cg_sync(TK);
  s->vals = I(s, 0);
  s->cnt = s->n;
}

static void body(sel *s) {
  s->h = cg_sreg_read(EM, CG_CTAID_Y);
  s->b = cg_sreg_read(EM, CG_CTAID_Z);
  s->qb = cg_sreg_read(EM, CG_CTAID_X);
  LLVMValueRef hoff = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, P(s, P_HEAD_OFF), s->h));
  s->tab = cg_gep(EM, EM->t_i32, P(s, P_TABS), hoff);
  s->start = tab_at(s, s->qb);
  s->n = CG_SUB(EM, tab_at(s, CG_ADD(EM, s->qb, I(s, 1))), s->start);
  s->nf = tab_at(s, CG_ADD(EM, s->qb, I(s, s->nq + 1)));
  s->vals = I(s, 0);
  s->cnt = s->n;
  s->topk = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, P(s, P_TOPK), CG_ADD(EM, CG_MUL(EM, s->b, I(s, s->heads)), s->h)));
  if (s->sink) {
    int64_t lo, hi;
    cg_search_text_span(s->sh, -1, &lo, &hi);
    s->tlo = I(s, lo);
    s->thi = CG_ADD(EM, s->tlo, cg_text_valid(EM, s->sh, P(s, P_TLEN), s->b));
    s->trow = in_sink(s, s->qb, s->bq);
  }
  s->total = load_masses(s);
  s->target = CG_FMUL(EM, P(s, P_RECALL), s->total);
  if (s->ngroups) hierarchy(s);
  cg_reg tau = cg_reg_new(EM, EM->t_i32, NULL), ties = cg_reg_new(EM, EM->t_i32, NULL);
  cg_reg count = cg_reg_new(EM, EM->t_i32, NULL);
  top_p(s, tau, ties, count);
  cap_topk(s, tau, ties, count);
  cg_if w0;
  cg_if_begin(EM, &w0, CG_ICMP(EM, LLVMIntEQ, TK->warp, I(s, 0)));
  write_row(s, cg_rget(EM, tau), cg_rget(EM, ties));
  cg_if_end(EM, &w0);
}

void cg_search_select_kernel(cg_em *em, const sieve_shape *sh, int bq, int bk, int nq, int nk, int64_t cap,
                             const int *groups, int ngroups, int sink) {
  static const char *names[NP] = {"mass", "tabs", "head_off", "rows", "counts", "recall", "topk", "tlen", "rowmass"};
  sel S = {.em = em, .sh = sh, .nq = nq, .nk = nk, .heads = sh->heads, .bq = bq, .bk = bk,
           .sink = sink && sh->text > 0, .cap = cap, .groups = groups, .ngroups = ngroups}, *s = &S;
  s->dense = 4 * nk;
  s->grp = 8 * nk;
  s->red = ngroups ? 12 * nk : 4 * nk;
  LLVMTypeRef t[NP] = {em->t_gptr, em->t_gptr, em->t_gptr, em->t_gptr, em->t_gptr, em->t_f32, em->t_gptr,
                       em->t_gptr, em->t_gptr};
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
