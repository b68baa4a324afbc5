/*
** The order a persistent attention kernel walks its query tiles in
** (cg_attn_sched.h), computed on the host once per block table.
*/
#ifndef RT_SCHED_H
#define RT_SCHED_H

#include <stdint.h>

/*
** Tiles t = h * nqk + qb (head h, kernel query block qb of block_m rows)
** of heads 0 .. heads - 1, into order[heads * nqk]: longest first, the
** cost of a tile being the key blocks its table rows visit (packed tables
** of nq rows of block_q queries, as cg_tables_pack writes them, head h's
** at tabs + head_off[h]; a tile covers the rows its queries fall in). Ties
** keep head-major order, so the CTAs running at once mostly share a head
** and its K and V stay in L2. 0, or -1 when out of memory (order is then
** the identity).
*/
int rt_sched_order(const int32_t *tabs, const int32_t *head_off, int heads, int nqk, int block_m,
                   int nq, int block_q, int32_t *order);

#endif
