/*
** Hopper's warpgroup matrix multiply (wgmma.mma_async, sm_90a): four warps
** multiply operands read straight from shared memory through matrix
** descriptors, with no ldmatrix and twice mma.sync's rate. Operands are
** shared tiles in the panelled layout (cg_st.panels), K-major.
**
** The accumulator a warp holds is laid out as mma.sync's: warp w % 4 of
** the warpgroup owns rows 16 (w % 4) .. + 16 of the 64, in a cg_rt of
** m = 16, so the register-tile operations (mask, exp2, sums) apply as they
** are.
*/
#ifndef CG_WGMMA_H
#define CG_WGMMA_H

#include "cg_tile.h"

/*
** c += A B^T and waits for it: A the 64 rows from a_row0 (i32, a multiple
** of 64) of panelled tile a, B all b->rows rows of panelled tile b (64 or
** 128), K = a->cols = b->cols. c is this warp's m = 16 x n = b->rows.
*/
void cg_wgmma_abt(cg_tk *t, cg_rt *c, const cg_st *a, LLVMValueRef a_row0, const cg_st *b);

/* The first of this warp's warpgroup's 64 rows (i32): A's a_row0 for it. */
LLVMValueRef cg_wgmma_row0(cg_tk *t);

/*
** c += A B and waits for it: A this warp's m = 16 x k registers (cg_ra, as
** cg_rt_to_a makes them), B the k rows of panelled tile b read N-major
** (b->cols = n columns: 64 or 128). c is this warp's m = 16 x n.
*/
void cg_wgmma_ab_rs(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b);

/*
** The same products issued and committed as one wgmma group, not waited
** for: the warpgroup may run other code meanwhile, touching neither c nor
** (for ab_rs) a's registers until cg_wgmma_wait has retired the group.
** abt_async with `zero` set computes c = A B^T, not reading c.
*/
void cg_wgmma_abt_async(cg_tk *t, cg_rt *c, const cg_st *a, LLVMValueRef a_row0, const cg_st *b, int zero);
void cg_wgmma_ab_rs_async(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b);
/* c = A B^T (zero set) or c += A B^T with A this warp's m = 16 x k registers
** (cg_ra, as cg_load_a reads them) and B as abt's: the product reads only B
** from shared memory. */
void cg_wgmma_abt_rs_async(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b, int zero);
/* c += A B with A the warpgroup's 64 rows from panelled tile a (a->rows =
** 64, K = a->cols), as cg_wgmma_store_a wrote them, and B as ab_rs's. */
void cg_wgmma_ab_async(cg_tk *t, cg_rt *c, const cg_st *a, const cg_st *b);
/* This warp's m = 16 x k registers (cg_ra) into rows 16 (warp % 4) .. + 16
** of the warpgroup's 64-row panelled tile dst, the layout wgmma reads an
** A operand in. wgmma sees them once each lane has fenced
** (cg_wgmma_smem_fence) and the warp has met (cg_syncwarp): a warp's rows
** of the product read only its own rows of A. */
void cg_wgmma_store_a(cg_tk *t, const cg_ra *a, const cg_st *dst);
/* Waits until at most `pending` of this warpgroup's groups are in flight;
** then c (if not NULL, from a retired group) may be read. */
void cg_wgmma_wait(cg_tk *t, int pending, cg_rt *c);

/*
** wgmma reads shared memory through the async proxy: a thread's own writes
** (cp.async included) must be fenced before the barrier that publishes
** them to a warpgroup's wgmma.
*/
void cg_wgmma_smem_fence(cg_tk *t);

#endif
