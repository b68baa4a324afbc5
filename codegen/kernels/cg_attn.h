/*
** The attention forward kernel generator: block-sparse flash attention,
** written in tile operations (cg_tile.h), lowered to LLVM IR, emitted as PTX.
**
** Kernel ABI (one kernel per pattern x shape x dtype x config x arch; the
** name is returned by the generator):
**   params, in order:
**     ptr q, k, v        global, bf16/fp16, element (b, h, s, d) at
**                        b*sb + h*sh + s*ss + d (strides in elements, i64)
**     ptr o              same dtype, same indexing with its own strides
**     ptr lse            global f32 [B, H, S] contiguous, natural log, indexed
**                        by token row like O
**     i64 q_sb, q_sh, q_ss, k_sb, k_sh, k_ss, v_sb, v_sh, v_ss, o_sb, o_sh, o_ss
**     ptr tabs           global i32: packed block tables (cg_tables_pack)
**     ptr head_off       global i32 [H]: offset in tabs of head h's table
**     i32 step, layer    the denoising step and layer the tables were built
**                        for (>= 0: the compiled mask treats them as such)
**     f32 scale          softmax scale (1/sqrt(D) by default)
**   grid (ceil(S / block_m), H, B); block (32 * warps); dynamic shared
**   memory cg_attn_smem_bytes() (above 48 KB for most configs: the
**   launcher raises the function's dynamic shared-memory limit first).
**   Pointers need only the alignment of their element type, except that
**   rows of Q, K, V must start on 16 bytes (cp.async): ss and the base
**   pointers multiples of 8 elements. S, H, D, the table sizes, block sizes
**   and layouts are compiled in; batch, pointers, strides, step, layer and
**   scale are parameters.
**
** A packed table for nq query blocks is
**   rowptr[nq + 1], nfull[nq], idx[...]
** where row qb's key blocks are idx[rowptr[qb] .. rowptr[qb+1]), full ones
** first (nfull[qb] of them), then partial ones; nq and the block sizes are
** the pattern's block.q / block.k. A CTA of block_m rows reads table row
** (blockIdx.x * block_m) / block.q and walks each table block in block_n
** steps.
**
** The kernel works in layout positions: a CTA's query rows and a key block's
** rows are positions in the head class's layout; the row of Q/K/V/O read
** or written for position p is the layout's idx(p) (cg_kernel_exprs), so no
** separate permute pass is needed. Partial blocks evaluate the compiled mask
** per (query, key) position pair; disallowed pairs get -inf; the last key
** block is bounds-checked when S is not a multiple of block.k. A row with no
** allowed key writes O = 0 and LSE = -inf.
*/
#ifndef CG_ATTN_H
#define CG_ATTN_H

#include "cg_blocks.h"
#include "cg_ptx.h"
#include "cg_tile.h"  /* cg_dtype */

typedef struct cg_attn_config {
  int block_m;   /* 64, 128; divides the pattern's block.q */
  int block_n;   /* 32, 64, 128; divides the pattern's block.k */
  int warps;     /* 4, 8 */
  int stages;    /* 1, 2, 3: cp.async pipeline depth for K/V */
} cg_attn_config;

typedef struct cg_attn_spec {
  cg_pattern *pattern;
  sieve_shape shape;     /* batch is not compiled in; the rest is */
  cg_dtype dtype;
  cg_arch arch;
  cg_attn_config cfg;
} cg_attn_spec;

/* The config a plan uses when the tuning database has none. */
cg_attn_config cg_attn_default_config(const cg_attn_spec *s);
/* 0 when cfg is valid for the spec; else SIEVE_ERR_ARG with the reason. */
sieve_status cg_attn_check(const cg_attn_spec *s, cg_err *e);
size_t cg_attn_smem_bytes(const cg_attn_spec *s);

/* Generates the kernel. *ptx and *name are malloc'd. When llvm_ir is not
** NULL it receives the module's textual IR before optimisation. */
sieve_status cg_attn_build(const cg_attn_spec *s, char **ptx, char **name,
                           char **llvm_ir, cg_err *e);

#endif
