/*
** Hopper's asynchronous data movement, as tile operations: mbarriers (a
** shared-memory word that counts thread arrivals and bytes still to land,
** and flips its phase when both reach zero) and the tensor memory
** accelerator's tile copies (cp.async.bulk.tensor), which fill a panelled
** shared tile (cg_st.panels, wgmma's 128-byte swizzle) from a tensor map
** and complete on an mbarrier. One thread issues a whole tile; the threads
** that read it wait on the barrier's phase, not on a block-wide barrier, so
** a producer and its consumers run apart (warp specialisation).
**
** Barriers live in the kernel's dynamic shared memory at byte offset
** `bar` (i32, a multiple of 8).
*/
#ifndef CG_TMA_H
#define CG_TMA_H

#include "cg_tile.h"

/* Sets the barrier up for `count` arrivals a phase (one thread, before the
** block-wide barrier that publishes it: cg_mbar_init_fence then cg_sync). */
void cg_mbar_init(cg_tk *t, LLVMValueRef bar, int count);
void cg_mbar_init_fence(cg_tk *t);
/* Arrives and adds `bytes` to what the current phase waits for. */
void cg_mbar_expect(cg_tk *t, LLVMValueRef bar, int bytes);
void cg_mbar_arrive(cg_tk *t, LLVMValueRef bar);
/* Waits until the phase of parity `parity` (i32, 0 or 1) has completed. */
void cg_mbar_wait(cg_tk *t, LLVMValueRef bar, LLVMValueRef parity);

/*
** The tile of dst->rows rows from row `row` of (batch, head) of the tensor
** map at `tmap` (a generic pointer to a by-value kernel parameter), all of
** dst->cols columns, one copy per 64-column panel, completing on bar (whose
** phase must expect cg_st_bytes(dst) bytes). The map is 4-D (D, S, H, B) with
** a 64 x rows box and the 128-byte swizzle; rows past S read as zero.
*/
void cg_tma_load(cg_tk *t, const cg_st *dst, LLVMValueRef tmap, LLVMValueRef row, LLVMValueRef head,
                 LLVMValueRef batch, LLVMValueRef bar);

/* Fetches a tensor map (a by-value kernel parameter) ahead of its first copy. */
void cg_tmap_prefetch(cg_tk *t, LLVMValueRef tmap);

/* Moves the warpgroup's register budget to n per thread (setmaxnreg; the
** kernel needs a register cap at entry, see cg_em_kernel's min_ctas). */
void cg_setmaxnreg(cg_tk *t, int inc, int n);

/*
** Turns between n (2 or 3) warpgroups, round robin (named barriers 1 .. n,
** 256 threads: the waiting warpgroup and the one passing to it): warpgroup
** g waits for its turn, issues its products, and passes the turn to
** (g + 1) % n, so one warpgroup's softmax runs while the others' products
** hold the tensor cores. cg_turn_first lets warpgroup 0 begin: warpgroup
** n - 1 calls it once, before its first cg_turn_wait. All must take the
** same number of turns.
*/
void cg_turn_first(cg_tk *t, int n);
void cg_turn_wait(cg_tk *t, LLVMValueRef g, int n);
void cg_turn_pass(cg_tk *t, LLVMValueRef g, int n);

/* Parameter-space tensor maps: the size and alignment of the driver's
** CUtensorMap. */
#define CG_TMAP_BYTES 128
#define CG_TMAP_ALIGN 64

#endif
