/*
** LLVM emission helpers. The kernel's entry block holds only allocas and a
** branch to the code proper, so slots can be made at any point of a
** generator without disturbing the instruction order.
*/
#include "cg_emit.h"

#include <stdio.h>
#include <string.h>

#define PTX_KERNEL_CC 71

int cg_em_init(cg_em *e, const char *module_name) {
  memset(e, 0, sizeof *e);
  e->ctx = LLVMContextCreate();
  if (!e->ctx) return -1;
  e->mod = LLVMModuleCreateWithNameInContext(module_name, e->ctx);
  e->b = LLVMCreateBuilderInContext(e->ctx);
  LLVMContextRef c = e->ctx;
  e->t_void = LLVMVoidTypeInContext(c);
  e->t_i1 = LLVMInt1TypeInContext(c);
  e->t_i16 = LLVMInt16TypeInContext(c);
  e->t_i32 = LLVMInt32TypeInContext(c);
  e->t_i64 = LLVMInt64TypeInContext(c);
  e->t_f32 = LLVMFloatTypeInContext(c);
  e->t_f16 = LLVMHalfTypeInContext(c);
  e->t_bf16 = LLVMBFloatTypeInContext(c);
  e->t_gptr = LLVMPointerTypeInContext(c, 1);
  e->t_sptr = LLVMPointerTypeInContext(c, 3);
  return e->mod && e->b ? 0 : -1;
}

sieve_status cg_em_start(cg_em *e, const char *module_name, cg_err *err) {
  if (!cg_em_init(e, module_name)) return SIEVE_OK;
  cg_em_dispose(e);
  return cg_fail(err, SIEVE_ERR_NOMEM, "out of memory starting a kernel");
}

void cg_em_dispose(cg_em *e) {
  if (e->b) LLVMDisposeBuilder(e->b);
  if (e->mod) LLVMDisposeModule(e->mod);
  if (e->ctx) LLVMContextDispose(e->ctx);
  memset(e, 0, sizeof *e);
}

static void fail(cg_em *e, const char *what, const char *name) {
  if (!e->bad) cg_fail(&e->err, SIEVE_ERR_CODEGEN, "%s: %s", what, name);
  e->bad = 1;
}

static void str_attr(cg_em *e, LLVMValueRef fn, const char *k, int v) {
  char buf[16];
  snprintf(buf, sizeof buf, "%d", v);
  LLVMAttributeRef a = LLVMCreateStringAttribute(e->ctx, k, (unsigned)strlen(k), buf, (unsigned)strlen(buf));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
}

LLVMValueRef cg_em_kernel(cg_em *e, const char *name, const LLVMTypeRef *params,
                          const char *const *pnames, int n, int max_threads, int min_ctas) {
  LLVMTypeRef ft = LLVMFunctionType(e->t_void, (LLVMTypeRef *)params, (unsigned)n, 0);
  LLVMValueRef fn = LLVMAddFunction(e->mod, name, ft);
  LLVMSetFunctionCallConv(fn, PTX_KERNEL_CC);
  str_attr(e, fn, "nvvm.maxntid", max_threads);
  if (min_ctas > 0) str_attr(e, fn, "nvvm.minctasm", min_ctas);
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  for (int i = 0; i < n; i++) {
    LLVMValueRef p = LLVMGetParam(fn, (unsigned)i);
    if (pnames && pnames[i]) LLVMSetValueName2(p, pnames[i], strlen(pnames[i]));
    /* Inputs, outputs and tables never overlap: the ABI says so. */
    if (LLVMGetTypeKind(params[i]) == LLVMPointerTypeKind)
      LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(e->ctx, noalias, 0));
  }
  e->fn = fn;
  e->entry = LLVMAppendBasicBlockInContext(e->ctx, fn, "entry");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(e->ctx, fn, "start");
  LLVMPositionBuilderAtEnd(e->b, e->entry);
  e->alloca_pt = LLVMBuildBr(e->b, start);
  LLVMPositionBuilderAtEnd(e->b, start);
  return fn;
}

void cg_em_param_byval(cg_em *e, int i, int bytes, int align) {
  LLVMTypeRef t = LLVMArrayType2(LLVMInt8TypeInContext(e->ctx), (uint64_t)bytes);
  unsigned idx = (unsigned)i + 1;
  LLVMAddAttributeAtIndex(e->fn, idx, LLVMCreateTypeAttribute(e->ctx, LLVMGetEnumAttributeKindForName("byval", 5), t));
  LLVMAddAttributeAtIndex(e->fn, idx, LLVMCreateEnumAttribute(e->ctx, LLVMGetEnumAttributeKindForName("align", 5), (uint64_t)align));
  const char *k = "nvvm.grid_constant";
  LLVMAddAttributeAtIndex(e->fn, idx, LLVMCreateStringAttribute(e->ctx, k, (unsigned)strlen(k), "", 0));
}

/* ---------------------------------------------------------------- values */

LLVMValueRef cg_i32(cg_em *e, int64_t v) { return LLVMConstInt(e->t_i32, (unsigned long long)v, 1); }
LLVMValueRef cg_i64(cg_em *e, int64_t v) { return LLVMConstInt(e->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(cg_em *e, double v) { return LLVMConstReal(e->t_f32, v); }
LLVMValueRef cg_true(cg_em *e) { return LLVMConstInt(e->t_i1, 1, 0); }
LLVMValueRef cg_fneg_inf(cg_em *e) { return LLVMConstReal(e->t_f32, -__builtin_inf()); }

LLVMValueRef cg_intr(cg_em *e, const char *name, LLVMTypeRef *ovl, int novl,
                     LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) {
    fail(e, "unknown LLVM intrinsic", name);
    return LLVMGetUndef(e->t_i32);
  }
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, ovl, (size_t)novl);
  LLVMTypeRef ft = LLVMIntrinsicGetType(e->ctx, id, ovl, (size_t)novl);
  return LLVMBuildCall2(e->b, ft, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cg_asm(cg_em *e, LLVMTypeRef ret, const char *text, const char *constraints,
                    LLVMValueRef *args, int nargs, int volatile_) {
  LLVMTypeRef at[160];  /* wgmma's accumulators go in as well as out: 64 + 3 operands */
  for (int i = 0; i < nargs && i < 160; i++) at[i] = LLVMTypeOf(args[i]);
  LLVMTypeRef ft = LLVMFunctionType(ret, at, (unsigned)nargs, 0);
  LLVMValueRef fn = LLVMGetInlineAsm(ft, (char *)text, strlen(text), (char *)constraints,
                                     strlen(constraints), volatile_, 0, LLVMInlineAsmDialectATT, 0);
  return LLVMBuildCall2(e->b, ft, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cg_field(cg_em *e, LLVMValueRef agg, unsigned i) {
  return LLVMBuildExtractValue(e->b, agg, i, "");
}

/* ------------------------------------------------------ special registers */

LLVMValueRef cg_sreg_read(cg_em *e, cg_sreg r) {
  static const char *names[] = {
    "llvm.nvvm.read.ptx.sreg.tid.x", "llvm.nvvm.read.ptx.sreg.ctaid.x",
    "llvm.nvvm.read.ptx.sreg.ctaid.y", "llvm.nvvm.read.ptx.sreg.ctaid.z",
    "llvm.nvvm.read.ptx.sreg.laneid",
  };
  return cg_intr(e, names[r], NULL, 0, NULL, 0);
}

LLVMValueRef cg_sreg_fresh(cg_em *e, cg_sreg r) {
  static const char *text[] = {
    "mov.u32 $0, %tid.x;", "mov.u32 $0, %ctaid.x;", "mov.u32 $0, %ctaid.y;", "mov.u32 $0, %ctaid.z;",
    "mov.u32 $0, %laneid;",
  };
  return cg_asm(e, e->t_i32, text[r], "=r", NULL, 0, 1);
}

/* --------------------------------------------------- warps and the block */

LLVMValueRef cg_shfl_xor_f32(cg_em *e, LLVMValueRef v, int lane_mask) {
  LLVMValueRef a[] = {cg_i32(e, -1), v, cg_i32(e, lane_mask), cg_i32(e, 0x1f)};
  return cg_intr(e, "llvm.nvvm.shfl.sync.bfly.f32", NULL, 0, a, 4);
}

LLVMValueRef cg_shfl_idx_i32(cg_em *e, LLVMValueRef v, LLVMValueRef src_lane) {
  LLVMValueRef a[] = {cg_i32(e, -1), v, src_lane, cg_i32(e, 0x1f)};
  return cg_intr(e, "llvm.nvvm.shfl.sync.idx.i32", NULL, 0, a, 4);
}

LLVMValueRef cg_vote_any(cg_em *e, LLVMValueRef pred) {
  LLVMValueRef a[] = {cg_i32(e, -1), pred};
  return cg_intr(e, "llvm.nvvm.vote.any.sync", NULL, 0, a, 2);
}

void cg_barrier(cg_em *e) {
  LLVMValueRef a = cg_i32(e, 0);
  cg_intr(e, "llvm.nvvm.barrier.cta.sync.aligned.all", NULL, 0, &a, 1);
}

void cg_syncwarp(cg_em *e) {
  LLVMValueRef all = cg_i32(e, -1);
  cg_intr(e, "llvm.nvvm.bar.warp.sync", NULL, 0, &all, 1);
}

void cg_barrier_named(cg_em *e, LLVMValueRef id, int count, int arrive_only) {
  LLVMValueRef a[] = {id, cg_i32(e, count)};
  cg_intr(e, arrive_only ? "llvm.nvvm.barrier.cta.arrive.aligned.count" : "llvm.nvvm.barrier.cta.sync.aligned.count",
          NULL, 0, a, 2);
}

/* ------------------------------------------------------------- float math */

LLVMValueRef cg_fmax(cg_em *e, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef x[] = {a, b};
  return cg_intr(e, "llvm.maxnum", &e->t_f32, 1, x, 2);
}

LLVMValueRef cg_ex2(cg_em *e, LLVMValueRef x) {
  return cg_intr(e, "llvm.nvvm.ex2.approx.ftz.f", &e->t_f32, 1, &x, 1);
}

LLVMValueRef cg_lg2(cg_em *e, LLVMValueRef x) {
  return cg_intr(e, "llvm.nvvm.lg2.approx.f", NULL, 0, &x, 1);
}

LLVMValueRef cg_fma(cg_em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef x[] = {a, b, c};
  return cg_intr(e, "llvm.fma", &e->t_f32, 1, x, 3);
}

LLVMValueRef cg_pack2(cg_em *e, int fp16, LLVMValueRef lo, LLVMValueRef hi) {
  LLVMTypeRef v2f = LLVMVectorType(e->t_f32, 2);
  LLVMValueRef v = LLVMGetUndef(v2f);
  v = LLVMBuildInsertElement(e->b, v, lo, cg_i32(e, 0), "");
  v = LLVMBuildInsertElement(e->b, v, hi, cg_i32(e, 1), "");
  LLVMValueRef h = LLVMBuildFPTrunc(e->b, v, LLVMVectorType(fp16 ? e->t_f16 : e->t_bf16, 2), "");
  return LLVMBuildBitCast(e->b, h, e->t_i32, "");
}

/* --------------------------------------------------------------- memory */

LLVMValueRef cg_smem_at(cg_em *e, LLVMValueRef off) {
  if (!e->smem) {
    LLVMTypeRef t = LLVMArrayType2(LLVMInt8TypeInContext(e->ctx), 0);
    e->smem = LLVMAddGlobalInAddressSpace(e->mod, t, "smem", 3);
    LLVMSetLinkage(e->smem, LLVMExternalLinkage);
    LLVMSetAlignment(e->smem, 1024);  /* wgmma's 128-byte swizzle repeats every 1024 bytes */
  }
  return LLVMBuildGEP2(e->b, LLVMInt8TypeInContext(e->ctx), e->smem, &off, 1, "");
}

LLVMValueRef cg_gep(cg_em *e, LLVMTypeRef t, LLVMValueRef ptr, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(e->b, t, ptr, &off, 1, "");
}

LLVMValueRef cg_load(cg_em *e, LLVMTypeRef t, LLVMValueRef ptr) { return LLVMBuildLoad2(e->b, t, ptr, ""); }
void cg_store(cg_em *e, LLVMValueRef v, LLVMValueRef ptr) { LLVMBuildStore(e->b, v, ptr); }

void cg_store_f32_if(cg_em *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef pred) {
  LLVMValueRef args[3] = {LLVMBuildPtrToInt(e->b, ptr, e->t_i64, ""), v, LLVMBuildZExt(e->b, pred, e->t_i32, "")};
  cg_asm(e, e->t_void, "{ .reg .pred p; setp.ne.u32 p, $2, 0; @p st.global.f32 [$0], $1; }", "l,f,r", args, 3, 1);
}

cg_reg cg_reg_new(cg_em *e, LLVMTypeRef t, LLVMValueRef init) {
  LLVMBuilderRef ab = LLVMCreateBuilderInContext(e->ctx);
  LLVMPositionBuilderBefore(ab, e->alloca_pt);
  LLVMValueRef s = LLVMBuildAlloca(ab, t, "");
  LLVMDisposeBuilder(ab);
  if (init) LLVMBuildStore(e->b, init, s);
  return s;
}

LLVMValueRef cg_rget(cg_em *e, cg_reg v) { return LLVMBuildLoad2(e->b, LLVMGetAllocatedType(v), v, ""); }
void cg_rset(cg_em *e, cg_reg v, LLVMValueRef x) { LLVMBuildStore(e->b, x, v); }

/* --------------------------------------------------------- control flow */

void cg_if_begin(cg_em *e, cg_if *c, LLVMValueRef cond) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "then");
  c->other = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "else");
  c->done = NULL;
  LLVMBuildCondBr(e->b, cond, then, c->other);
  LLVMPositionBuilderAtEnd(e->b, then);
}

void cg_if_else(cg_em *e, cg_if *c) {
  c->done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "endif");
  LLVMBuildBr(e->b, c->done);
  LLVMPositionBuilderAtEnd(e->b, c->other);
}

void cg_if_end(cg_em *e, cg_if *c) {
  LLVMBasicBlockRef end = c->done ? c->done : c->other;
  LLVMBuildBr(e->b, end);
  LLVMPositionBuilderAtEnd(e->b, end);
}

LLVMValueRef cg_for_begin(cg_em *e, cg_for *l, LLVMValueRef lo, LLVMValueRef hi) {
  return cg_for_step_begin(e, l, lo, hi, 1);
}

LLVMValueRef cg_for_step_begin(cg_em *e, cg_for *l, LLVMValueRef lo, LLVMValueRef hi, int step) {
  l->step = step;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  l->head = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
  l->body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "exit");
  l->hi = hi;
  LLVMBuildBr(e->b, l->head);
  LLVMPositionBuilderAtEnd(e->b, l->head);
  l->i = LLVMBuildPhi(e->b, LLVMTypeOf(lo), "i");
  LLVMAddIncoming(l->i, &lo, &pre, 1);
  LLVMBuildCondBr(e->b, CG_ICMP(e, LLVMIntSLT, l->i, hi), l->body, l->exit);
  LLVMPositionBuilderAtEnd(e->b, l->body);
  return l->i;
}

void cg_for_end(cg_em *e, cg_for *l) {
  LLVMValueRef next = LLVMBuildNSWAdd(e->b, l->i, LLVMConstInt(LLVMTypeOf(l->i), (unsigned long long)l->step, 0), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, l->head);
  LLVMAddIncoming(l->i, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}
