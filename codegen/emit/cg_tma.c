/*
** mbarriers and TMA tile loads through LLVM's NVVM intrinsics (LLVM 22 has
** all of them). The tile load addresses the destination in the cluster
** window, which for a CTA of its own is its shared memory.
*/
#include "cg_tma.h"

#define E (t->em)

static LLVMValueRef bar_ptr(cg_tk *t, LLVMValueRef bar) { return cg_smem_at(E, bar); }

void cg_mbar_init(cg_tk *t, LLVMValueRef bar, int count) {
  LLVMValueRef a[] = {bar_ptr(t, bar), cg_i32(E, count)};
  cg_intr(E, "llvm.nvvm.mbarrier.init.shared", NULL, 0, a, 2);
}

void cg_mbar_init_fence(cg_tk *t) {
  /* The copy engine (async proxy) must see the initialised barriers. */
  cg_asm(E, E->t_void, "fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;", "", NULL, 0, 1);
}

void cg_mbar_expect(cg_tk *t, LLVMValueRef bar, int bytes) {
  LLVMValueRef a[] = {bar_ptr(t, bar), cg_i32(E, bytes)};
  cg_intr(E, "llvm.nvvm.mbarrier.arrive.expect.tx.scope.cta.space.cta", NULL, 0, a, 2);
}

void cg_mbar_arrive(cg_tk *t, LLVMValueRef bar) {
  LLVMValueRef p = bar_ptr(t, bar);
  cg_intr(E, "llvm.nvvm.mbarrier.arrive.shared", NULL, 0, &p, 1);
}

void cg_mbar_wait(cg_tk *t, LLVMValueRef bar, LLVMValueRef parity) {
  /* try_wait suspends the thread for a while in hardware; loop until the
  ** phase is done. */
  LLVMBasicBlockRef spin = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "mbar_wait");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "mbar_done");
  LLVMBuildBr(E->b, spin);
  LLVMPositionBuilderAtEnd(E->b, spin);
  LLVMValueRef a[] = {bar_ptr(t, bar), parity};
  LLVMValueRef ok = cg_intr(E, "llvm.nvvm.mbarrier.try.wait.parity.scope.cta.space.cta", NULL, 0, a, 2);
  LLVMBuildCondBr(E->b, ok, done, spin);
  LLVMPositionBuilderAtEnd(E->b, done);
}

void cg_tma_load(cg_tk *t, const cg_st *dst, LLVMValueRef tmap, LLVMValueRef row, LLVMValueRef head,
                 LLVMValueRef batch, LLVMValueRef bar) {
  LLVMTypeRef cptr = LLVMPointerTypeInContext(E->ctx, 7);
  for (int p = 0; p < dst->cols / 64; p++) {
    LLVMValueRef s = cg_smem_at(E, CG_ADD(E, dst->off, cg_i32(E, p * dst->rows * 128)));
    LLVMValueRef a[] = {
      LLVMBuildAddrSpaceCast(E->b, s, cptr, ""), bar_ptr(t, bar), tmap,
      cg_i32(E, 64 * p), row, head, batch,
      LLVMConstInt(E->t_i16, 0, 0), cg_i64(E, 0),
      LLVMConstInt(E->t_i1, 0, 0), LLVMConstInt(E->t_i1, 0, 0), cg_i32(E, 0),
    };
    cg_intr(E, "llvm.nvvm.cp.async.bulk.tensor.g2s.tile.4d", NULL, 0, a, 12);
  }
}

/* The tensor map's 128 bytes fetched while the barriers are set up, not at
** the first copy that reads them (CUTLASS's prefetch_tma_descriptor at
** kernel entry): frame windows ±1 0.4-0.9% faster at wan-1.3b-480p and
** hunyuan-720p, where a CTA's tile is short (H100, bench/RESULTS.md). */
void cg_tmap_prefetch(cg_tk *t, LLVMValueRef tmap) {
  LLVMTypeRef ty = LLVMPointerTypeInContext(E->ctx, 101); /* param space: the map is a by-value parameter */
  LLVMValueRef p = LLVMBuildAddrSpaceCast(E->b, tmap, ty, "");
  cg_intr(E, "llvm.nvvm.prefetch.tensormap", &ty, 1, &p, 1);
}

void cg_setmaxnreg(cg_tk *t, int inc, int n) {
  LLVMValueRef v = cg_i32(E, n);
  cg_intr(E, inc ? "llvm.nvvm.setmaxnreg.inc.sync.aligned.u32" : "llvm.nvvm.setmaxnreg.dec.sync.aligned.u32",
          NULL, 0, &v, 1);
}

/* One warpgroup takes every turn: no barrier. */
void cg_turn_first(cg_tk *t, int n) {
  if (n < 2) return;
  cg_barrier_named(E, cg_i32(E, 1), 256, 1);
}

void cg_turn_wait(cg_tk *t, LLVMValueRef g, int n) {
  if (n < 2) return;
  cg_barrier_named(E, CG_ADD(E, g, cg_i32(E, 1)), 256, 0);
}

/* Barrier (g + 1) % n + 1; for two warpgroups 2 - g, as it always was. */
void cg_turn_pass(cg_tk *t, LLVMValueRef g, int n) {
  if (n < 2) return;
  LLVMValueRef next = n == 2 ? CG_SUB(E, cg_i32(E, 2), g)
                             : CG_SEL(E, CG_ICMP(E, LLVMIntEQ, g, cg_i32(E, n - 1)), cg_i32(E, 1), CG_ADD(E, g, cg_i32(E, 2)));
  cg_barrier_named(E, next, 256, 1);
}
