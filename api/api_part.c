/*
** The public API for sequence parallelism: a pattern seen from another
** first head, and the float64 reference of a chunk pair (the chunk tables
** are in api_tables.c, next to the other tables).
*/
#include <stdlib.h>

#include "api.h"
#include "cg_part.h"
#include "lp.h"

sieve_status sieve_pattern_heads(sieve_ctx *ctx, const sieve_pattern *p, int head0,
                                 sieve_pattern **out) {
  cg_err e = {0};
  if (out) *out = NULL;
  if (!p || !out) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_pattern_heads: pattern and out are required");
    return api_ret(ctx, &e);
  }
  sieve_pattern *sp = malloc(sizeof *sp);
  if (!sp) cg_fail(&e, SIEVE_ERR_NOMEM, "out of memory");
  else if (cg_pattern_heads(lp_pattern_ir(p), head0, &sp->p, &e)) free(sp);
  else *out = sp;
  return api_ret(ctx, &e);
}

sieve_status sieve_reference(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *shape,
                             int step, int layer, const sieve_chunk *chunk, const double *q,
                             const double *k, const double *v, double scale, double *o,
                             double *lse) {
  cg_err e = {0};
  if (!p || !shape || !q || !k || !v || !o || !lse)
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_reference: pattern, shape, q, k, v, o and lse are required");
  else
    cg_ref_part(lp_pattern_ir(p), shape, step, layer, chunk, q, k, v, scale, o, lse, &e);
  return api_ret(ctx, &e);
}
