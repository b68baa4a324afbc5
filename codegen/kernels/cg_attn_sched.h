/*
** The persistent grid of the warp-specialised attention kernel: a CTA per
** multiprocessor walks query tiles in an order the host chose, instead of
** one CTA per tile.
**
** A tile is (head, kernel query block); tiles of one batch element are
** numbered t = head * nqk + qblk (nqk = ceil(S / block_m), compiled in).
** The kernel takes four more parameters after the tensor maps:
**     ptr sched     global i32 [ntiles]: the tiles in the order to run them
**     i32 ntiles    tiles a batch element has in this launch
**     i32 nitems    ntiles x batch elements
**     ptr ctr       global u32 [2], zero before the first launch; the
**                   kernel leaves it zero again (CG_SCHED_ATOMIC only)
** Work item i is batch element i / ntiles, tile sched[i % ntiles]. The grid
** is (CTAs, 1, 1) with any number of CTAs: CTA c starts at item c and takes
** the next from c + gridDim.x on (CG_SCHED_STATIC) or from a shared counter
** (CG_SCHED_ATOMIC: the next free item, so a CTA that drew short tiles
** draws more). The host orders tiles longest first (rt_sched.h), so the
** last items are the short ones and no CTA is left with a long tail.
**
** One thread of the producer warpgroup draws the items and hands each to
** the consumers one tile ahead, decoded with its table row, through one of
** two records in shared memory, each with its own full barrier (cg_attn.c:
** ws_publish): a tile's record is in place while the tile before it still
** runs, so the consumers begin each tile without a global load; a stop
** record past the last item tells them to stop. Consumers free Q on their
** own barrier once their last product of a tile has read it, so the next
** tile's Q and K/V copies overlap the epilogue of this one.
**
** Every tile starts the K/V ring at slot 0 and parity 0 (producer and
** consumers realign it between tiles, cg_attn.c: ws_realign), so a
** consumer's slot and barrier parities follow from the tile's step j, a
** count from a constant that ptxas keeps on the uniform datapath, as in a
** CTA per tile.
** A ring carried on across tiles, (j + steps of earlier tiles) mod stages,
** came from table loads: each wgmma descriptor was built in per-thread
** registers and moved to uniform ones (R2UR) before its HGMMA, and both
** schedules ran 3-13% slower than a CTA per tile on the H200
** (bench/RESULTS.md, 2026-12-04). Not the default until measured again.
*/
#ifndef CG_ATTN_SCHED_H
#define CG_ATTN_SCHED_H

#include "cg_emit.h"

enum { CG_SCHED_GRID = 0, CG_SCHED_STATIC = 1, CG_SCHED_ATOMIC = 2, CG_SCHED_N };

const char *cg_sched_name(int sched);

/* A loop with its exit test where the body says (cg_loop_break_if). */
typedef struct cg_loop {
  LLVMBasicBlockRef head, exit;
} cg_loop;
void cg_loop_begin(cg_em *e, cg_loop *l);
void cg_loop_break_if(cg_em *e, cg_loop *l, LLVMValueRef cond);
void cg_loop_end(cg_em *e, cg_loop *l);

/* The first item of this CTA, and that of its draw n >= 1 (ctr: the
** counter parameter; n counts the draws before, for the stride). Called by
** one thread, once per draw. */
LLVMValueRef cg_sched_first(cg_em *e);
LLVMValueRef cg_sched_next(cg_em *e, int sched, LLVMValueRef ctr, LLVMValueRef n);
/* Called once by that thread after its last draw: the last CTA to finish
** drawing sets the counter back to zero for the next launch. */
void cg_sched_finish(cg_em *e, int sched, LLVMValueRef ctr);

/* Batch element, head and kernel query block of item `item`. */
void cg_sched_decode(cg_em *e, LLVMValueRef sched_tab, LLVMValueRef ntiles, int nqk, LLVMValueRef item,
                     LLVMValueRef *batch, LLVMValueRef *head, LLVMValueRef *qblk);

#endif
