/*
** Warp and block collectives beside the tile layer (cg_tile.h), for the
** kernels that build tables, search and profile: ballots and population
** counts for ordered compaction, integer shuffles and scans, float sums
** over a warp or a whole CTA, and the sum of a register tile.
*/
#ifndef CG_TILE_EXT_H
#define CG_TILE_EXT_H

#include "cg_tile.h"

/* Bit i set when pred (i1) holds in lane i (every lane of the warp votes). */
LLVMValueRef cg_ballot(cg_em *e, LLVMValueRef pred);
LLVMValueRef cg_popc(cg_em *e, LLVMValueRef x);
/* (1 << lane) - 1: the lanes before this one. */
LLVMValueRef cg_lanes_below(cg_em *e, LLVMValueRef lane);

LLVMValueRef cg_shfl_up_i32(cg_em *e, LLVMValueRef v, int delta);
/* Inclusive prefix sum over the warp of an i32. */
LLVMValueRef cg_warp_scan_i32(cg_em *e, LLVMValueRef v, LLVMValueRef lane);
/* Sum over the warp of an f32; every lane gets it. */
LLVMValueRef cg_warp_sum_f32(cg_em *e, LLVMValueRef v);

/* Sum over the CTA of an f32; every thread gets it. Every thread must call
** it; it uses 4 * warps bytes of shared memory at byte offset smem_off and
** two barriers. */
LLVMValueRef cg_block_sum_f32(cg_tk *t, LLVMValueRef v, int smem_off);

/* The warp's rows of r as f32: element (row, col) to base[(row0 + row)
** * stride + col] (base a global f32 pointer, stride in elements, i64). */
void cg_rt_store_f32(cg_tk *t, const cg_rt *r, LLVMValueRef base, LLVMValueRef stride, LLVMValueRef row0);

/* This thread's share of the sum of every element of r. */
LLVMValueRef cg_rt_sum_part(cg_tk *t, const cg_rt *r);

#endif
