/*
** Sparse VideoGen's online profiling (arXiv 2502.01776), generated from the
** pattern: for a small sample of query rows, attention under the full mask
** and under each head class's mask, and per head how far each class's
** output is from the full one. The host gives each head the class with the
** lowest error (rt_dyn.h).
**
** Rows and keys are in model order here: the class masks are evaluated on
** the tokens' coordinates, so a class's layout plays no part in what its
** mask allows.
**
** Kernels of the module (P = classes + 1 passes; pass 0 has no mask, pass
** c + 1 the mask of class c; ns sampled rows, a multiple of 64, in G = ns /
** 64 groups; the keys cut into nchunks chunks of cg_profile_chunk(s) tokens; B batch
** elements, which are not compiled in, like the attention kernel's):
**   sieve_profile_part(q, k, v, q_sb, q_sh, q_ss, k_sb, k_sh, k_ss, v_sb,
**                      v_sh, v_ss, rows, part, i32 step, i32 layer, f32 scale)
**       grid (nchunks, H, G B), block 128, smem cg_profile_smem();
**       blockIdx.z = b G + g: batch element b, row group g (G is compiled
**       in, so B needs no parameter);
**       rows[ns]: the sampled query tokens, the same for every head and
**       batch element;
**       for each pass, the chunk's online-softmax state of each row:
**       part[((((b P + p) H + h) nchunks + c) ns + r) (D + 2) + ...] = O[D]
**       (unnormalised), m (log2 units), l.
**   sieve_profile_err(part, err)
**       grid (ns, H, B), block D, smem cg_profile_err_smem() (its CTA sums);
**       err[((b H + h) ns + r) P + p] = |O_0|^2 for p = 0, |O_p - O_0|^2
**       after, with each pass's chunks merged and normalised.
*/
#ifndef CG_PROFILE_H
#define CG_PROFILE_H

#include "cg_blocks.h"
#include "cg_ptx.h"
#include "cg_tile.h"

#define CG_PROFILE_CHUNK 4096   /* the longest key chunk of one CTA */
#define CG_PROFILE_ROWS 64   /* sampled rows per CTA */

typedef struct cg_profile_spec {
  cg_pattern *pattern;
  sieve_shape shape;     /* batch is not compiled in */
  cg_dtype dtype;
  cg_arch arch;
  int ns;                /* sampled rows, a multiple of CG_PROFILE_ROWS */
  int chunk;             /* keys per CTA, a multiple of 64 up to CG_PROFILE_CHUNK;
                            0: CG_PROFILE_CHUNK */
} cg_profile_spec;

/*
** The key chunk for `batch` inputs: CG_PROFILE_CHUNK, halved (down to 512)
** while the part kernel would have fewer than `ctas` CTAs. Each CTA walks
** its chunk one tile at a time, so a short sequence with few heads (Wan
** 1.3B at 480p: 8 chunks x 12 heads) would leave most SMs idle.
*/
int cg_profile_pick_chunk(const cg_profile_spec *s, int batch, int ctas);
int cg_profile_chunk(const cg_profile_spec *s);
sieve_status cg_profile_check(const cg_profile_spec *s, cg_err *e);
int cg_profile_chunks(const cg_profile_spec *s);
size_t cg_profile_smem(const cg_profile_spec *s);
size_t cg_profile_err_smem(const cg_profile_spec *s);
/* f32 elements of part and err for `batch` batch elements. */
size_t cg_profile_part_floats(const cg_profile_spec *s, int batch);
size_t cg_profile_err_floats(const cg_profile_spec *s, int batch);

sieve_status cg_profile_build(const cg_profile_spec *s, char **ptx, cg_err *e);

#endif
