/*
** wgmma through inline PTX ($N names operand N in LLVM's asm strings):
** LLVM's NVPTX backend has no wgmma intrinsics
** that take descriptors in this form, and the instruction's contract (no
** touching the accumulators between issue and wait) is kept by issuing,
** committing and waiting in one place and passing the accumulators through
** an empty asm after the wait, so no use of them is scheduled above it.
*/
#include "cg_wgmma.h"

#include <stdio.h>

#define E (t->em)

/*
** A shared-memory matrix descriptor for a K-major operand in the 128-byte
** swizzle: start address >> 4 (bits 0-13), leading byte offset (unused by
** this layout, 1 by convention) at 16, stride byte offset 1024 >> 4 (eight
** rows of 128 bytes to the next eight) at 32, swizzle mode 1 at 62.
*/
static LLVMValueRef desc(cg_tk *t, LLVMValueRef off) {
  LLVMValueRef addr = LLVMBuildPtrToInt(E->b, cg_smem_at(E, off), E->t_i64, "");
  LLVMValueRef lo = CG_LSHR(E, CG_AND(E, addr, cg_i64(E, 0x3ffff)), cg_i64(E, 4));
  return CG_OR(E, lo, cg_i64(E, (1ll << 16) | (64ll << 32) | (1ll << 62)));
}

static void fence_regs(cg_tk *t, cg_rt *c, int n) {
  for (int i = 0; i < n; i++) {
    LLVMValueRef v = cg_rget(E, c->v[i]);
    cg_rset(E, c->v[i], cg_asm(E, E->t_f32, "", "=f,0", &v, 1, 1));
  }
}

void cg_wgmma_abt(cg_tk *t, cg_rt *c, const cg_st *a, LLVMValueRef a_row0, const cg_st *b) {
  int n = b->rows, regs = n / 2, ks = a->cols / 16;
  char text[2048], cons[1024];
  size_t tl = 0, cl = 0;
  tl += (size_t)snprintf(text + tl, sizeof text - tl,
                         "{\n.reg .pred p;\nsetp.ne.b32 p, $%d, 0;\nwgmma.mma_async.sync.aligned.m64n%dk16.f32.%s.%s {",
                         2 * regs + 2, n, t->dt == CG_FP16 ? "f16" : "bf16", t->dt == CG_FP16 ? "f16" : "bf16");
  for (int i = 0; i < regs; i++) tl += (size_t)snprintf(text + tl, sizeof text - tl, "%s$%d", i ? ", " : "", i);
  snprintf(text + tl, sizeof text - tl, "}, $%d, $%d, p, 1, 1, 0, 0;\n}", 2 * regs, 2 * regs + 1);
  for (int i = 0; i < regs; i++) cl += (size_t)snprintf(cons + cl, sizeof cons - cl, "=f,");
  for (int i = 0; i < regs; i++) cl += (size_t)snprintf(cons + cl, sizeof cons - cl, "%d,", i);
  snprintf(cons + cl, sizeof cons - cl, "l,l,r");
  LLVMTypeRef ft[64];
  for (int i = 0; i < regs; i++) ft[i] = E->t_f32;
  LLVMTypeRef st = LLVMStructTypeInContext(E->ctx, ft, (unsigned)regs, 0);

  fence_regs(t, c, regs);
  cg_asm(E, LLVMVoidTypeInContext(E->ctx), "wgmma.fence.sync.aligned;", "", NULL, 0, 1);
  LLVMValueRef arow = CG_MUL(E, a_row0, cg_i32(E, 128));
  for (int k = 0; k < ks; k++) {
    int panel = k / 4, in = (k % 4) * 32;
    LLVMValueRef ao = CG_ADD(E, CG_ADD(E, a->off, arow), cg_i32(E, panel * a->rows * 128 + in));
    LLVMValueRef bo = CG_ADD(E, b->off, cg_i32(E, panel * b->rows * 128 + in));
    LLVMValueRef args[67];
    for (int i = 0; i < regs; i++) args[i] = cg_rget(E, c->v[i]);
    args[regs] = desc(t, ao);
    args[regs + 1] = desc(t, bo);
    args[regs + 2] = cg_i32(E, 1);
    LLVMValueRef r = cg_asm(E, st, text, cons, args, regs + 3, 1);
    for (int i = 0; i < regs; i++) cg_rset(E, c->v[i], cg_field(E, r, (unsigned)i));
  }
  cg_asm(E, LLVMVoidTypeInContext(E->ctx), "wgmma.commit_group.sync.aligned;", "", NULL, 0, 1);
  cg_asm(E, LLVMVoidTypeInContext(E->ctx), "wgmma.wait_group.sync.aligned 0;", "", NULL, 0, 1);
  fence_regs(t, c, regs);
}
