/*
** CPU reference, for checking what the GPU computes: the token-level mask,
** masked attention in float64, and block classes by brute force. Slow on
** purpose (every token pair is evaluated); for small shapes.
**
** All take the shape the caller passes and apply the pattern's fixed text
** geometry (cg_shape_for); S below is that shape's token count.
*/
#ifndef CG_REF_H
#define CG_REF_H

#include "cg_blocks.h"

/*
** The mask of one head at (step, layer) in model order: m[q * S + k] is 1
** when query token q may attend to key token k. *allowed (may be NULL)
** receives the number of allowed pairs.
*/
sieve_status cg_ref_mask(const cg_pattern *p, const sieve_shape *s, int head, int step, int layer,
                         uint8_t *m, int64_t *allowed, cg_err *e);
/* The same for the mask class cls is profiled under (cg_profile_mask). */
sieve_status cg_ref_profile_mask(const cg_pattern *p, const sieve_shape *s, int cls, int step, int layer,
                                 uint8_t *m, int64_t *allowed, cg_err *e);

/* A float tensor [B, H, S, D]: element (b, h, s, d) at
** p[b*sb + h*sh + s*ss + d]. */
typedef struct cg_ref_tensor {
  const float *p;
  int64_t sb, sh, ss;
} cg_ref_tensor;

/*
** O = softmax(scale * Q K^T, masked) V and the row log-sum-exp (natural
** log) for every batch and head, in float64. o is [B, H, S, D] and lse
** [B, H, S], both contiguous. A row with no allowed key gets O = 0 and
** LSE = -inf.
*/
sieve_status cg_ref_attention(const cg_pattern *p, const sieve_shape *s, int step, int layer,
                              const cg_ref_tensor *q, const cg_ref_tensor *k,
                              const cg_ref_tensor *v, double scale, double *o, double *lse,
                              cg_err *e);
/* The same with tlen[b] valid text tokens in batch element b (NULL: all):
** the padding neither attends nor is attended (cg_valid_pairs). */
sieve_status cg_ref_attention_text(const cg_pattern *p, const sieve_shape *s, int step, int layer,
                                   const int *tlen, const cg_ref_tensor *q, const cg_ref_tensor *k,
                                   const cg_ref_tensor *v, double scale, double *o, double *lse,
                                   cg_err *e);

/*
** Block classes of one head by evaluating every token pair of the kernel's
** mask expression (cg_kernel_exprs) over layout positions, with blocks of
** bq x bk positions: cls[qb * nk + kb] is CG_BLK_EMPTY, CG_BLK_UNDECIDED
** (partial) or CG_BLK_FULL. *allowed (may be NULL) gets the allowed pairs.
** The pattern's graph grows.
*/
sieve_status cg_ref_blocks(cg_pattern *p, const sieve_shape *s, int head, int step, int layer,
                           int bq, int bk, uint8_t *cls, int64_t *allowed, cg_err *e);

#endif
