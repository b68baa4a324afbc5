/*
** Parts of one attention call, for sequence parallelism.
**
** Ulysses gives each rank all tokens of a slice of the heads: its plans are
** made from the pattern seen from the slice's first head (cg_pattern_heads),
** so every local head gets the class and mask of its global index.
**
** Ring attention gives each rank a query chunk and passes key chunks
** around: a chunk pair's tables are the whole sequence's, cut to the
** chunk's query blocks and to the key blocks inside the key chunk, with the
** mask evaluated at global token indices (cg_tables_slice). Cutting works on
** block boundaries and in model order, so chunks must be aligned to the
** pattern's block sizes and every class must have the identity layout.
*/
#ifndef CG_PART_H
#define CG_PART_H

#include "cg_blocks.h"

/*
** A copy of p (its own arena and graph) whose head i is p's head h0 + i:
** head classes rotated, and `head` in the masks read as head + h0. With h0
** a multiple of the period and no mask reading the head, the copy's IR
** equals p's, so plans made from it hit the same cached kernels.
*/
sieve_status cg_pattern_heads(const cg_pattern *p, int h0, cg_pattern **out, cg_err *e);

/* Resolves a chunk against seq tokens (an end of 0 means seq) and checks
** it can be cut from the tables of p on blocks bq x bk; the reason for a
** refusal names the rule broken. */
sieve_status cg_chunk_check(const cg_pattern *p, int64_t seq, int bq, int bk,
                            const sieve_chunk *in, sieve_chunk *out, cg_err *e);

/* Cuts ts, in place, to the chunk (resolved by cg_chunk_check): rows are
** the chunk's query blocks, and key block j is the key chunk's j-th. */
sieve_status cg_tables_slice(cg_tableset *ts, const sieve_chunk *c, cg_err *e);

/* Key blocks all heads of ts visit (full and partial): 0 when the chunk
** pair has nothing to compute. */
int64_t cg_tables_visits(const cg_tableset *ts);

/*
** The float64 reference for a part: heads 0 .. H of p (a cg_pattern_heads
** copy for a head slice), query tokens [q_begin, q_end) against key tokens
** [k_begin, k_end) of the whole shape, the mask evaluated at global token
** indices; with identity layouts only pairs inside the part's own tables
** count, so a block the cut lost shows up as an error. q is [B, H, Sq, D],
** k and v [B, H, Sk, D], o [B, H, Sq, D] and lse [B, H, Sq], contiguous.
** Rows with no allowed key get O = 0 and LSE = -inf.
*/
sieve_status cg_ref_part(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                         const sieve_chunk *chunk, const double *q, const double *k,
                         const double *v, double scale, double *o, double *lse, cg_err *e);

#endif
