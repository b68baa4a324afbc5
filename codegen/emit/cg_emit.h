/*
** The thin LLVM-emission layer the tile layer and the kernel generators
** stand on: one module with one kernel being built, the types a GPU kernel
** needs, intrinsics looked up by name (a wrong name is an error, not an
** external call ptxas rejects later), inline PTX, special registers, warp
** shuffles, barriers, shared memory, and structured control flow.
**
** Values that live across loop iterations or branches are kept in cg_reg
** slots (allocas in the entry block); SROA and mem2reg turn them into SSA
** registers, so generators never build phi nodes by hand.
*/
#ifndef CG_EMIT_H
#define CG_EMIT_H

#include <llvm-c/Core.h>
#include <stdint.h>

#include "cg_err.h"

typedef struct cg_em {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMValueRef fn;            /* the kernel being built */
  LLVMBasicBlockRef entry;    /* allocas live at its top */
  LLVMValueRef alloca_pt;     /* allocas are inserted before this */
  LLVMValueRef smem;          /* the dynamic shared-memory array, lazily made */
  LLVMTypeRef t_void, t_i1, t_i16, t_i32, t_i64, t_f32, t_f16, t_bf16;
  LLVMTypeRef t_gptr, t_sptr; /* pointers to global (1) and shared (3) memory */
  int bad;                    /* first failure kept in err; later calls still return values */
  cg_err err;
} cg_em;

/* Zeroes *e and makes a context, module and builder. 0, or -1 on failure. */
int cg_em_init(cg_em *e, const char *module_name);
/* cg_em_init for a generator: on failure e is disposed and err says so. */
sieve_status cg_em_start(cg_em *e, const char *module_name, cg_err *err);
void cg_em_dispose(cg_em *e);

/* A kernel (PTX entry) with the given parameter types, positioned at its
** entry block. max_threads becomes .maxntid; min_ctas (0: none) .minnctapersm. */
LLVMValueRef cg_em_kernel(cg_em *e, const char *name, const LLVMTypeRef *params,
                          const char *const *pnames, int n, int max_threads, int min_ctas);

/* Parameter i (declared as a generic pointer) becomes `bytes` bytes passed
** by value in parameter space, aligned to `align`, whose address the
** kernel may take (a grid constant: a TMA tensor map). */
void cg_em_param_byval(cg_em *e, int i, int bytes, int align);

/* ---------------------------------------------------------------- values */
LLVMValueRef cg_i32(cg_em *e, int64_t v);
LLVMValueRef cg_i64(cg_em *e, int64_t v);
LLVMValueRef cg_f32(cg_em *e, double v);
LLVMValueRef cg_true(cg_em *e);

/* Calls intrinsic `name`, overloaded on ovl[0..novl). */
LLVMValueRef cg_intr(cg_em *e, const char *name, LLVMTypeRef *ovl, int novl,
                     LLVMValueRef *args, int nargs);
/* Inline PTX; `ret` may be t_void. Always treated as having side effects
** when `volatile_` is set (ordering against barriers and async copies). */
LLVMValueRef cg_asm(cg_em *e, LLVMTypeRef ret, const char *text, const char *constraints,
                    LLVMValueRef *args, int nargs, int volatile_);
/* Field i of a struct-typed value (intrinsic multi-results). */
LLVMValueRef cg_field(cg_em *e, LLVMValueRef agg, unsigned i);

/* ------------------------------------------------------ special registers */
typedef enum cg_sreg { CG_TID_X, CG_CTAID_X, CG_CTAID_Y, CG_CTAID_Z, CG_LANEID } cg_sreg;
LLVMValueRef cg_sreg_read(cg_em *e, cg_sreg r);
/* A read LLVM cannot merge with earlier ones: after a long loop, reading a
** special register again is cheaper than keeping its value (and everything
** derived from it) in a register through the loop. */
LLVMValueRef cg_sreg_fresh(cg_em *e, cg_sreg r);

/* --------------------------------------------------- warps and the block */
LLVMValueRef cg_shfl_xor_f32(cg_em *e, LLVMValueRef v, int lane_mask);
/* v of lane src_lane (i32). */
LLVMValueRef cg_shfl_idx_i32(cg_em *e, LLVMValueRef v, LLVMValueRef src_lane);
/* True in every lane when pred is true in any lane of the warp. */
LLVMValueRef cg_vote_any(cg_em *e, LLVMValueRef pred);
void cg_barrier(cg_em *e);
/* Named barrier `id` (i32, 1..15) of `count` threads: wait there, or only
** count this warp's arrival and go on. */
void cg_barrier_named(cg_em *e, LLVMValueRef id, int count, int arrive_only);
/* The warp's lanes meet (bar.warp.sync, all lanes): what each wrote
** before, it has written for all of them after. */
void cg_syncwarp(cg_em *e);

/* ------------------------------------------------------------- float math */
LLVMValueRef cg_fmax(cg_em *e, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_ex2(cg_em *e, LLVMValueRef x);      /* ex2.approx.ftz */
LLVMValueRef cg_lg2(cg_em *e, LLVMValueRef x);      /* lg2.approx */
LLVMValueRef cg_fma(cg_em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
LLVMValueRef cg_fneg_inf(cg_em *e);
/* Two f32 rounded to a packed pair of 16-bit floats in an i32, `lo` in the
** low half (the lower column of an mma operand register). */
LLVMValueRef cg_pack2(cg_em *e, int fp16, LLVMValueRef lo, LLVMValueRef hi);

/* --------------------------------------------------------------- memory */
/* The kernel's dynamic shared memory, byte offset `off` (i32). */
LLVMValueRef cg_smem_at(cg_em *e, LLVMValueRef off);
/* ptr + off elements of type t (off: i32 or i64). */
LLVMValueRef cg_gep(cg_em *e, LLVMTypeRef t, LLVMValueRef ptr, LLVMValueRef off);
LLVMValueRef cg_load(cg_em *e, LLVMTypeRef t, LLVMValueRef ptr);
void cg_store(cg_em *e, LLVMValueRef v, LLVMValueRef ptr);
/* An f32 store to global ptr where pred (i1) holds, predicated rather than
** branched around: no divergent branch in a loop that must stay converged. */
void cg_store_f32_if(cg_em *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef pred);

/* A mutable value of type t, in a slot that becomes a register. */
typedef LLVMValueRef cg_reg;
cg_reg cg_reg_new(cg_em *e, LLVMTypeRef t, LLVMValueRef init);
LLVMValueRef cg_rget(cg_em *e, cg_reg v);
void cg_rset(cg_em *e, cg_reg v, LLVMValueRef x);

/* --------------------------------------------------------- control flow */
typedef struct cg_if {
  LLVMBasicBlockRef other, done;
} cg_if;
void cg_if_begin(cg_em *e, cg_if *c, LLVMValueRef cond);
void cg_if_else(cg_em *e, cg_if *c);
void cg_if_end(cg_em *e, cg_if *c);

/* for (i = lo; i < hi; i += step): cg_for_begin (step 1) and
** cg_for_step_begin return i (i32). */
typedef struct cg_for {
  LLVMBasicBlockRef head, body, exit;
  LLVMValueRef i, hi;
  int step;
} cg_for;
LLVMValueRef cg_for_begin(cg_em *e, cg_for *l, LLVMValueRef lo, LLVMValueRef hi);
LLVMValueRef cg_for_step_begin(cg_em *e, cg_for *l, LLVMValueRef lo, LLVMValueRef hi, int step);
void cg_for_end(cg_em *e, cg_for *l);

/* Shorthands for the builder's integer arithmetic (i32 or i64 alike). */
#define CG_ADD(e, x, y) LLVMBuildAdd((e)->b, (x), (y), "")
#define CG_SUB(e, x, y) LLVMBuildSub((e)->b, (x), (y), "")
#define CG_MUL(e, x, y) LLVMBuildMul((e)->b, (x), (y), "")
#define CG_AND(e, x, y) LLVMBuildAnd((e)->b, (x), (y), "")
#define CG_OR(e, x, y) LLVMBuildOr((e)->b, (x), (y), "")
#define CG_XOR(e, x, y) LLVMBuildXor((e)->b, (x), (y), "")
#define CG_SHL(e, x, y) LLVMBuildShl((e)->b, (x), (y), "")
#define CG_LSHR(e, x, y) LLVMBuildLShr((e)->b, (x), (y), "")
#define CG_UDIV(e, x, y) LLVMBuildUDiv((e)->b, (x), (y), "")
#define CG_UREM(e, x, y) LLVMBuildURem((e)->b, (x), (y), "")
#define CG_ICMP(e, p, x, y) LLVMBuildICmp((e)->b, (p), (x), (y), "")
#define CG_SEL(e, c, x, y) LLVMBuildSelect((e)->b, (c), (x), (y), "")
#define CG_SEXT64(e, x) LLVMBuildSExt((e)->b, (x), (e)->t_i64, "")
#define CG_ZEXT64(e, x) LLVMBuildZExt((e)->b, (x), (e)->t_i64, "")
#define CG_FADD(e, x, y) LLVMBuildFAdd((e)->b, (x), (y), "")
#define CG_FSUB(e, x, y) LLVMBuildFSub((e)->b, (x), (y), "")
#define CG_FMUL(e, x, y) LLVMBuildFMul((e)->b, (x), (y), "")
#define CG_FCMP(e, p, x, y) LLVMBuildFCmp((e)->b, (p), (x), (y), "")

#endif
