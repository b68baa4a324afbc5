/*
** The attention kernel's geometry, which both its config policy
** (cg_attn_config.c: the configs, table blocks and shared memory a spec
** gets) and its generator (cg_attn.c) read: warp roles, table blocks,
** register budgets, the shared-memory layout. Internal to the kernels.
*/
#ifndef CG_ATTN_GEOM_H
#define CG_ATTN_GEOM_H

#include "cg_attn.h"

#define QREG_BUDGET 128    /* f32 accumulators a thread may hold with Q fragments kept in registers too */
#define WS_BAR_BYTES 256   /* the warp-specialised kernel's mbarriers, after the tiles */

static inline int q_in_regs(int rw, int d, int bn) { return rw * (d + bn) / 32 + rw * d / 64 <= QREG_BUDGET; }

/* The warp-specialised configs: 12 or 16 warps, and 8 over 64 rows (8
** plain warps of 8 rows each are no config, so the two cannot be taken
** for one another). */
static inline int ws_config(const cg_attn_config *c) {
  return c->warps == CG_WS_WARPS || c->warps == CG_WS3_WARPS || (c->warps == CG_WS1_WARPS && c->block_m == 64);
}

/* Consumer warps: a warp-specialised kernel's first warpgroup only copies. */
static inline int mma_warps(const cg_attn_config *c) { return ws_config(c) ? c->warps - 4 : c->warps; }

/* sm_90a kernels with a warp per 16 rows: warpgroups of 64 rows, wgmma. */
static inline int uses_wgmma(const cg_attn_spec *s) {
  return s->arch == CG_SM90A && s->cfg.warps && s->cfg.block_m / mma_warps(&s->cfg) == 16;
}

static inline int block_q(const cg_attn_spec *s) {
  int bq, bk;
  cg_attn_table_blocks(s, &bq, &bk);
  return bq;
}

static inline int block_k(const cg_attn_spec *s) {
  int bq, bk;
  cg_attn_table_blocks(s, &bq, &bk);
  return bk;
}

/*
** The warp-specialised kernels' register split (setmaxnreg): the producer
** warpgroup keeps WS_PRODUCER_REGS a thread, each consumer the rest, and a
** consumer holds S, the P operand and O at once (registers a thread: S and
** O f32, P packed pairs) besides addresses and softmax state. The caps on
** that sum are where ptxas still allocates with no spill (tests/test_ptxas.c).
**
** One consumer warpgroup (CG_WS1_WARPS) leaves the tensor cores idle
** through its softmax unless other CTAs' products fill them, as a second
** warpgroup's do in the others: it is compiled for two CTAs a
** multiprocessor (128 registers a thread at launch, 24 + 232 after the
** split), and three at D = 64 with 64-key steps, whose S, P and O fit 136
** (85 at launch, 80 allocated: 24 + 136).
*/
static inline int ws_ctas(const cg_attn_config *c, int d) {
  return c->warps != CG_WS1_WARPS ? 1 : d == 64 && c->block_n == 64 ? 3 : 2;
}
static inline int ws_producer_regs(const cg_attn_config *c) { return c->warps == CG_WS3_WARPS ? 32 : 24; }
static inline int ws_consumer_regs(const cg_attn_config *c, int d) {
  return c->warps == CG_WS3_WARPS ? 160 : ws_ctas(c, d) == 3 ? 136 : c->warps == CG_WS1_WARPS ? 232 : 240;
}
static inline int ws_live_max(const cg_attn_config *c, int d) {
  return c->warps == CG_WS3_WARPS ? 128 : ws_ctas(c, d) == 3 ? 104 : c->warps == CG_WS1_WARPS ? 200 : 208;
}

/*
** Where S, P and O exceed that budget but S and O fit it, P goes through
** shared memory instead (a tile of 64 rows per consumer warpgroup, after
** the ring): at D = 64, three consumer warpgroups then reach 192-key
** steps, as FlashAttention-3's 192 x 192 tile at that head size does. On
** an H100 that ran 8-13% slower than the default 192/128/16/2 (dense
** cogvideox-1.5), and three warpgroups of 128-key steps at D = 128 no
** faster than 128/192/12/2 (bench/RESULTS.md, 2026-12-07): configs for
** `sieve tune` to try, not defaults.
*/
/* Registers a thread: S and O (f32), and P (packed pairs). */
static inline int acc_regs(const cg_attn_config *c, int d) { return c->block_m / mma_warps(c) * (d + c->block_n) / 32; }
static inline int p_regs(const cg_attn_config *c) { return c->block_m / mma_warps(c) * c->block_n / 64; }
static inline int ws_p_shared(const cg_attn_config *c, int d) {
  return ws_config(c) && acc_regs(c, d) + p_regs(c) > ws_live_max(c, d);
}
static inline int ws_p_bytes(const cg_attn_config *c, int d) {
  return ws_p_shared(c, d) ? mma_warps(c) / 4 * 64 * c->block_n * 2 : 0;
}

/* Padding of the shared tiles' rows in bytes: 16 or 0 (swizzled). */
int cg_attn_smem_pad(const cg_attn_spec *s);

#endif
