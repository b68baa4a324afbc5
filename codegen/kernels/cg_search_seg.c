/*
** Block masses from the segments an attention pass wrote (cg_attn_spec.segs),
** for AdaSpa's first search: that pass is the dense one the search needs
** anyway, and its segments hold what the masses need, so no second Q K^T.
** A segment is log2 of a row's sum of 2^(S c) over 64 keys; with the row's
** LSE (L = LSE log2(e)),
**     mass(qb, kb) = sum over rows i of qb, segments g of kb of 2^(seg - L_i),
** S^2 / 64 exponentials where the mass kernel takes S^2, and a read of the
** segments (0.9 GB a head at hunyuan-720p) instead of Q K^T.
**
** A CTA per (query block, head), four warps over the row's entries, a
** lane per row (two or four of them). A row past the sequence, or one that
** saw no key (L = -inf), adds 0: its L is taken as +inf.
*/
#include "cg_search.h"

#include <math.h>

#include "cg_tile_ext.h"

#define WARPS 4
#define LOG2E 1.4426950408889634

enum { P_SEGS, P_LSE, P_TABS, P_HEAD_OFF, P_MASS, NP };

void cg_search_seg_kernel(cg_em *em, const sieve_shape *sh, int bq, int bk, int nq, int64_t cap) {
  static const char *names[NP] = {"segs", "lse", "tabs", "head_off", "mass"};
  LLVMTypeRef t[NP] = {em->t_gptr, em->t_gptr, em->t_gptr, em->t_gptr, em->t_gptr};
  LLVMValueRef fn = cg_em_kernel(em, CG_SEARCH_SEG_MASS, t, names, NP, 32 * WARPS, 0), prm[NP];
  for (int i = 0; i < NP; i++) prm[i] = LLVMGetParam(fn, (unsigned)i);
  int64_t seq = sieve_shape_tokens(sh), nseg = (seq + 63) / 64;
  int rows = bq / 32, per = bk / 64;
  LLVMValueRef h = cg_sreg_read(em, CG_CTAID_Y), qb = cg_sreg_read(em, CG_CTAID_X);
  LLVMValueRef tid = cg_sreg_read(em, CG_TID_X);
  LLVMValueRef lane = CG_AND(em, tid, cg_i32(em, 31)), warp = CG_LSHR(em, tid, cg_i32(em, 5));
  LLVMValueRef hoff = cg_load(em, em->t_i32, cg_gep(em, em->t_i32, prm[P_HEAD_OFF], h));
  LLVMValueRef tab = cg_gep(em, em->t_i32, prm[P_TABS], hoff);
  LLVMValueRef start = cg_load(em, em->t_i32, cg_gep(em, em->t_i32, tab, qb));
  LLVMValueRef end = cg_load(em, em->t_i32, cg_gep(em, em->t_i32, tab, CG_ADD(em, qb, cg_i32(em, 1))));
  LLVMValueRef h64 = CG_ZEXT64(em, h);
  LLVMValueRef segs = cg_gep(em, em->t_f32, prm[P_SEGS], CG_MUL(em, h64, cg_i64(em, nseg * seq)));
  LLVMValueRef lse = cg_gep(em, em->t_f32, prm[P_LSE], CG_MUL(em, h64, cg_i64(em, seq)));
  LLVMValueRef mass = cg_gep(em, em->t_f32, prm[P_MASS], CG_MUL(em, h64, cg_i64(em, cap)));
  LLVMValueRef row[4], l[4];
  LLVMValueRef inf = cg_f32(em, INFINITY);
  for (int r = 0; r < rows; r++) {
    LLVMValueRef i = CG_ADD(em, CG_MUL(em, qb, cg_i32(em, bq)), CG_ADD(em, lane, cg_i32(em, 32 * r)));
    LLVMValueRef in = CG_ICMP(em, LLVMIntSLT, i, cg_i32(em, (int)seq));
    row[r] = CG_SEL(em, in, i, cg_i32(em, 0));  /* a slot that exists; its L is +inf */
    LLVMValueRef x = cg_load(em, em->t_f32, cg_gep(em, em->t_f32, lse, row[r]));
    x = CG_SEL(em, CG_FCMP(em, LLVMRealOEQ, x, cg_fneg_inf(em)), inf, CG_FMUL(em, x, cg_f32(em, LOG2E)));
    l[r] = CG_SEL(em, in, x, inf);
  }
  cg_for loop;
  LLVMValueRef e = cg_for_step_begin(em, &loop, CG_ADD(em, start, warp), end, WARPS);
  LLVMValueRef kb = cg_load(em, em->t_i32, cg_gep(em, em->t_i32, tab, CG_ADD(em, e, cg_i32(em, 2 * nq + 1))));
  LLVMValueRef acc = cg_f32(em, 0);
  for (int s = 0; s < per; s++) {
    /* The sequence's last key block may hold fewer segments. */
    LLVMValueRef g = CG_ADD(em, CG_MUL(em, kb, cg_i32(em, per)), cg_i32(em, s));
    LLVMValueRef gin = CG_ICMP(em, LLVMIntSLT, g, cg_i32(em, (int)nseg));
    LLVMValueRef col = cg_gep(em, em->t_f32, segs, CG_MUL(em, CG_ZEXT64(em, CG_SEL(em, gin, g, cg_i32(em, 0))), cg_i64(em, seq)));
    LLVMValueRef part = cg_f32(em, 0);
    for (int r = 0; r < rows; r++) {
      LLVMValueRef x = cg_load(em, em->t_f32, cg_gep(em, em->t_f32, col, row[r]));
      part = CG_FADD(em, part, cg_ex2(em, CG_FSUB(em, x, l[r])));
    }
    acc = CG_FADD(em, acc, CG_SEL(em, gin, part, cg_f32(em, 0)));
  }
  for (int m = 16; m > 0; m /= 2) acc = CG_FADD(em, acc, cg_shfl_xor_f32(em, acc, m));
  cg_if one;
  cg_if_begin(em, &one, CG_ICMP(em, LLVMIntEQ, lane, cg_i32(em, 0)));
  cg_store(em, acc, cg_gep(em, em->t_f32, mass, e));
  cg_if_end(em, &one);
  cg_for_end(em, &loop);
  LLVMBuildRetVoid(em->b);
}
