/*
** The layout permute: Q, K and V gathered into their head class's layout
** order, so the warp-specialised sm_90a attention kernel can load tiles by
** TMA with no index arithmetic (cg_attn.h). Layout position p of head h
** holds token idx_h(p), the same expression the attention kernel compiles
** for its O and LSE stores (cg_kernel_exprs); the permute is a bijection of
** the S positions (text tokens keep their place, ragged tiles are short,
** not padded), so the permuted buffers have exactly S rows.
**
** Kernel ABI (one kernel per pattern x shape; 16-bit elements, so one
** kernel serves bf16 and fp16):
**   sieve_permute(ptr q, k, v,
**                 i64 q_sb, q_sh, q_ss, k_sb, k_sh, k_ss, v_sb, v_sh, v_ss,
**                 ptr qp, kp, vp)
**   grid (ceil(S * D / 8 / CG_PERMUTE_THREADS), H', B'), block
**   CG_PERMUTE_THREADS; no shared memory. Thread t of CTA x copies the
**   16-byte piece (x * threads + t) % (D / 8) of position
**   (x * threads + t) / (D / 8), for all three tensors:
**     qp[((b * H + h) * S + p) * D + d] = q[b*q_sb + h*q_sh + idx_h(p)*q_ss + d]
**   H (the shape's heads) is compiled in, so the outputs are [B', H, S, D]
**   contiguous whatever part of the heads the grid covers (H' <= H heads
**   from the first; the kernel's head h is blockIdx.y, as the attention
**   kernel's is). Sources need 16-byte rows: base pointers and the strides
**   multiples of 8 elements.
*/
#ifndef CG_PERMUTE_H
#define CG_PERMUTE_H

#include "cg_blocks.h"
#include "cg_ptx.h"

#define CG_PERMUTE_THREADS 256
#define CG_PERMUTE_KERNEL "sieve_permute"

/* The permute of p's head classes on shape (the pattern's graph grows). */
sieve_status cg_permute_build(cg_pattern *p, const sieve_shape *shape, cg_arch arch, char **ptx,
                              cg_err *e);

/*
** The position -> token map the kernel compiles, evaluated on the host for
** head h: idx[p] for every position (cg_permute_map; idx has S entries).
** For tests and checks of the index math against cg_layout_enum.
*/
sieve_status cg_permute_map(cg_pattern *p, const sieve_shape *shape, int head, int32_t *idx,
                            cg_err *e);

/* Grid x of the kernel for shape (resolved). */
int64_t cg_permute_blocks(const sieve_shape *shape);

#endif
