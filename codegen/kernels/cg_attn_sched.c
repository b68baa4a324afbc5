/*
** The persistent grid's work items: drawing them (a stride or a counter),
** handing the counter back at zero, and decoding an item into the tile it
** names. The kernel walks them in cg_attn.c (kernel_ws).
*/
#include "cg_attn_sched.h"

const char *cg_sched_name(int sched) {
  return sched == CG_SCHED_STATIC ? "static" : sched == CG_SCHED_ATOMIC ? "atomic" : "grid";
}

void cg_loop_begin(cg_em *e, cg_loop *l) {
  l->head = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "tiles");
  l->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "tiles_done");
  LLVMBuildBr(e->b, l->head);
  LLVMPositionBuilderAtEnd(e->b, l->head);
}

void cg_loop_break_if(cg_em *e, cg_loop *l, LLVMValueRef cond) {
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "tile");
  LLVMBuildCondBr(e->b, cond, l->exit, go);
  LLVMPositionBuilderAtEnd(e->b, go);
}

void cg_loop_end(cg_em *e, cg_loop *l) {
  LLVMBuildBr(e->b, l->head);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}

static LLVMValueRef nctaid(cg_em *e) { return cg_intr(e, "llvm.nvvm.read.ptx.sreg.nctaid.x", NULL, 0, NULL, 0); }

/* Read where it is used: hoisted, it held a register through the tile. */
static LLVMValueRef nctaid_fresh(cg_em *e) { return cg_asm(e, e->t_i32, "mov.u32 $0, %nctaid.x;", "=r", NULL, 0, 1); }

LLVMValueRef cg_sched_first(cg_em *e) { return cg_sreg_read(e, CG_CTAID_X); }

static LLVMValueRef atomic_add(cg_em *e, LLVMValueRef p, LLVMValueRef v) {
  return LLVMBuildAtomicRMW(e->b, LLVMAtomicRMWBinOpAdd, p, v, LLVMAtomicOrderingMonotonic, 0);
}

/*
** Counter draws start past the first gridDim.x items, which every CTA
** takes by its index without touching the counter. A stride's draw n is
** computed from n, so no item is held through a tile.
*/
LLVMValueRef cg_sched_next(cg_em *e, int sched, LLVMValueRef ctr, LLVMValueRef n) {
  if (sched == CG_SCHED_ATOMIC) return CG_ADD(e, atomic_add(e, ctr, cg_i32(e, 1)), nctaid_fresh(e));
  return CG_ADD(e, cg_sreg_fresh(e, CG_CTAID_X), CG_MUL(e, n, nctaid_fresh(e)));
}

/*
** ctr[1] counts CTAs done drawing. Every draw of a CTA precedes its count
** (the fence), so the CTA that counts last sees every other draw done and
** may zero both words: the next launch on the stream starts from zero.
*/
void cg_sched_finish(cg_em *e, int sched, LLVMValueRef ctr) {
  if (sched != CG_SCHED_ATOMIC) return;
  LLVMValueRef done = cg_gep(e, e->t_i32, ctr, cg_i32(e, 1));
  cg_asm(e, e->t_void, "fence.acq_rel.gpu;", "", NULL, 0, 1);
  LLVMValueRef n = atomic_add(e, done, cg_i32(e, 1));
  cg_if last;
  cg_if_begin(e, &last, CG_ICMP(e, LLVMIntEQ, n, CG_SUB(e, nctaid(e), cg_i32(e, 1))));
  cg_asm(e, e->t_void, "fence.acq_rel.gpu;", "", NULL, 0, 1);
  LLVMBuildAtomicRMW(e->b, LLVMAtomicRMWBinOpXchg, ctr, cg_i32(e, 0), LLVMAtomicOrderingMonotonic, 0);
  LLVMBuildAtomicRMW(e->b, LLVMAtomicRMWBinOpXchg, done, cg_i32(e, 0), LLVMAtomicOrderingMonotonic, 0);
  cg_if_end(e, &last);
}

void cg_sched_decode(cg_em *e, LLVMValueRef sched_tab, LLVMValueRef ntiles, int nqk, LLVMValueRef item,
                     LLVMValueRef *batch, LLVMValueRef *head, LLVMValueRef *qblk) {
  *batch = CG_UDIV(e, item, ntiles);
  LLVMValueRef t = cg_load(e, e->t_i32, cg_gep(e, e->t_i32, sched_tab, CG_UREM(e, item, ntiles)));
  *head = CG_UDIV(e, t, cg_i32(e, nqk));
  *qblk = CG_UREM(e, t, cg_i32(e, nqk));
}
