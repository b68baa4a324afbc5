/*
** The driver's tensor map of a [B, H, S, D] view, for the TMA kernels'
** tile loads (cg_tma_load): 4-D (D, S, H, B) with byte strides (ss, sh,
** sb), a 64 x rows box in the 128-byte swizzle the wgmma tiles use; rows
** past S read as zero.
*/
#ifndef RT_TMAP_H
#define RT_TMAP_H

#include "cg_tile.h"
#include "rt_cuda.h"
#include "sieve.h"

/* 1 and *m written, or 0 where the driver will not map the tensor (TMA
** wants 16-byte aligned bases and strides below 2^40, among others) or
** SIEVE_TMA=0 asks for none: the caller then runs its copy kernel. */
int rt_tmap_encode(const rt_cuda *cu, CUtensorMap *m, cg_dtype dtype, const sieve_shape *sh, unsigned heads,
                   unsigned batch, const sieve_tensor *t, int rows);

/* SIEVE_TMA=0: the copy kernels everywhere. */
int rt_tmap_off(void);

#endif
