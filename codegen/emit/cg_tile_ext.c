/*
** Collectives over the warp and the CTA.
*/
#include "cg_tile_ext.h"

LLVMValueRef cg_ballot(cg_em *e, LLVMValueRef pred) {
  LLVMValueRef a[] = {cg_i32(e, -1), pred};
  return cg_intr(e, "llvm.nvvm.vote.ballot.sync", NULL, 0, a, 2);
}

LLVMValueRef cg_popc(cg_em *e, LLVMValueRef x) { return cg_intr(e, "llvm.ctpop", &e->t_i32, 1, &x, 1); }

LLVMValueRef cg_lanes_below(cg_em *e, LLVMValueRef lane) {
  return CG_SUB(e, CG_SHL(e, cg_i32(e, 1), lane), cg_i32(e, 1));
}

LLVMValueRef cg_shfl_up_i32(cg_em *e, LLVMValueRef v, int delta) {
  LLVMValueRef a[] = {cg_i32(e, -1), v, cg_i32(e, delta), cg_i32(e, 0)};
  return cg_intr(e, "llvm.nvvm.shfl.sync.up.i32", NULL, 0, a, 4);
}

LLVMValueRef cg_warp_scan_i32(cg_em *e, LLVMValueRef v, LLVMValueRef lane) {
  for (int d = 1; d < 32; d *= 2) {
    LLVMValueRef up = cg_shfl_up_i32(e, v, d);
    v = CG_ADD(e, v, CG_SEL(e, CG_ICMP(e, LLVMIntSGE, lane, cg_i32(e, d)), up, cg_i32(e, 0)));
  }
  return v;
}

LLVMValueRef cg_warp_sum_f32(cg_em *e, LLVMValueRef v) {
  for (int m = 16; m >= 1; m /= 2) v = CG_FADD(e, v, cg_shfl_xor_f32(e, v, m));
  return v;
}

LLVMValueRef cg_block_sum_f32(cg_tk *t, LLVMValueRef v, int smem_off) {
  cg_em *e = t->em;
  int warps = t->nthreads / 32;
  LLVMValueRef w = cg_warp_sum_f32(e, v);
  cg_if lead;
  cg_if_begin(e, &lead, CG_ICMP(e, LLVMIntEQ, t->lane, cg_i32(e, 0)));
  cg_store(e, w, cg_smem_at(e, CG_ADD(e, cg_i32(e, smem_off), CG_SHL(e, t->warp, cg_i32(e, 2)))));
  cg_if_end(e, &lead);
  cg_sync(t);
  /* Every thread adds the few warp sums itself: a broadcast read each,
  ** cheaper than a second round through one warp. */
  LLVMValueRef s = NULL;
  for (int i = 0; i < warps; i++) {
    LLVMValueRef x = cg_load(e, e->t_f32, cg_smem_at(e, cg_i32(e, smem_off + 4 * i)));
    s = s ? CG_FADD(e, s, x) : x;
  }
  cg_sync(t);  /* the slots may be written again by the next call */
  return s;
}

LLVMValueRef cg_rt_sum_part(cg_tk *t, const cg_rt *r) {
  cg_em *e = t->em;
  int n = r->m / 16 * r->n / 8 * 4;
  LLVMValueRef acc[4] = {0};
  /* Four chains, so the adds do not wait on one another. */
  for (int i = 0; i < n; i++) {
    LLVMValueRef x = cg_rget(e, r->v[i]);
    acc[i % 4] = acc[i % 4] ? CG_FADD(e, acc[i % 4], x) : x;
  }
  LLVMValueRef s = acc[0];
  for (int i = 1; i < 4 && i < n; i++) s = CG_FADD(e, s, acc[i]);
  return s;
}

void cg_rt_store_f32(cg_tk *t, const cg_rt *r, LLVMValueRef base, LLVMValueRef stride, LLVMValueRef row0) {
  cg_em *e = t->em;
  int nt = r->n / 8;
  for (int i = 0; i < r->m / 16; i++)
    for (int h = 0; h < 2; h++) {
      LLVMValueRef row = CG_ADD(e, row0, CG_ADD(e, t->fr, cg_i32(e, 16 * i + 8 * h)));
      LLVMValueRef p = cg_gep(e, e->t_f32, base, CG_ADD(e, CG_MUL(e, CG_ZEXT64(e, row), stride),
                                                       CG_ZEXT64(e, CG_SHL(e, t->fc, cg_i32(e, 1)))));
      for (int j = 0; j < nt; j++) {
        int k = (i * nt + j) * 4 + 2 * h;
        cg_store(e, cg_rget(e, r->v[k]), cg_gep(e, e->t_f32, p, cg_i32(e, 8 * j)));
        cg_store(e, cg_rget(e, r->v[k + 1]), cg_gep(e, e->t_f32, p, cg_i32(e, 8 * j + 1)));
      }
    }
}
