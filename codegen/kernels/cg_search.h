/*
** AdaSpa's fused LSE-cached search (arXiv 2502.21079), generated from the
** pattern: given Q, K and the row LSE of an attention pass over the
** pattern's allowed set, the exact attention mass of every allowed
** (head, query block, key block),
**     mass = sum over i in qb, j in kb of exp(q_i . k_j * scale - LSE_i),
** with no P V and no attention matrix in memory; then, per (head, query
** block), the fewest key blocks whose mass reaches `recall` of the row's
** total (top-p), at most `topk` of them when topk > 0, written as packed
** tables the attention kernel reads. With a block hierarchy (the search's
** levels), top-p runs on groups of key blocks, coarse level first, each
** level choosing among the children of the groups the level above kept
** (cg_search_select.c).
**
** Each input of the batch gets its own selection, as AdaSpa's pattern
** differs per input: one table per (batch, head), launched one batch
** element at a time (rt_plan_run_part).
**
** Kernels of the module (H heads, B batch, nq x nk blocks of the pattern):
**   sieve_search_mass(q, k, lse, q_sb, q_sh, q_ss, k_sb, k_sh, k_ss,
**                     tabs, head_off, mass, i32 step, i32 layer, f32 scale)
**       grid (nq, H, B), block 32 cg_search_mass_warps(), smem
**       cg_search_mass_smem(); on sm_90a S = Q K^T is a wgmma from shared
**       memory (cg_wgmma.h), elsewhere mma.sync;
**       tabs/head_off are the allowed tables (cg_tables_pack's format);
**       mass[(b H + h) cap + e] for entry e of head h's allowed table
**       (e = rowptr[qb] + i: masses line up with the table's entries)
**   sieve_search_mass_tma(the same, then .param .align 64 .b8 tmap_k[128])
**       where cg_search_mass_tma(): the same masses, K brought in by TMA
**       through the driver's tensor map of K as 4-D (D, S, H, B), a
**       64 x (step keys) box in the 128-byte swizzle (rt_tmap_encode);
**       a K the driver will not map takes sieve_search_mass
**   sieve_search_select(mass, tabs, head_off, rows, counts, f32 recall,
**                       topk, tlen, rowmass)
**       grid (nq, H, B), block 128, smem cg_search_select_smem();
**       rows/counts as in cg_tablegen.h, table b H + h for (batch b,
**       head h); a selected block keeps its allowed class (full or partial);
**       topk[b H + h] the cap of (batch b, head h) (0: none; AdaSpa's tiers
**       give heads their own); tlen[b] the valid text (NULL: all), for the
**       text sink: with sel.text_sink every allowed block holding a valid
**       text token, as query or key block, is chosen besides the top-k /
**       top-p (AdaSpa §4.3 (1)); rowmass[(b H + h) nq + qb] = {the chosen
**       entries' mass, the row's whole mass}, for the recall of each head
**   sieve_search_seg_mass(segs, lse, tabs, head_off, mass)
**       grid (nq, Hc, 1), block 128 (cg_search_seg.c): the same masses
**       from the segments of a dense attention pass (cg_attn_spec.segs)
**       over Hc heads of one batch element: segs the pass's own
**       ([Hc][ceil(S / 64)][S]), lse, head_off and mass offset by the
**       caller to the first head (the entries' masses only where every
**       pair is allowed: no mask)
**   sieve_tbl_scan, sieve_tbl_fill (cg_tablegen.h) with ntables = B H,
**       which pack the selection into slots of table_ints ints per table
** Ties in mass are broken by entry order, so the selection is the prefix
** of the entries sorted by (mass descending, entry ascending): exactly what
** cg_search_select_ref computes.
*/
#ifndef CG_SEARCH_H
#define CG_SEARCH_H

#include "cg_blocks.h"
#include "cg_ptx.h"
#include "cg_tile.h"

typedef struct cg_search_spec {
  cg_pattern *pattern;
  sieve_shape shape;     /* batch is not compiled in */
  cg_dtype dtype;
  cg_arch arch;
  int64_t cap;           /* mass entries per (batch, head): the largest allowed table */
} cg_search_spec;

/* 0, or why the spec cannot be searched (block sizes, head dim). */
sieve_status cg_search_check(const cg_search_spec *s, cg_err *e);
size_t cg_search_mass_smem(const cg_search_spec *s);
int cg_search_mass_warps(const cg_search_spec *s);  /* the mass kernel's block is 32 x this */
/* The module has sieve_search_mass_tma (sm_90a, K in the model's layout);
** its box is cg_search_mass_box_rows() keys. */
int cg_search_mass_tma(const cg_search_spec *s);
int cg_search_mass_box_rows(const cg_search_spec *s);
#define CG_SEARCH_MASS_TMA "sieve_search_mass_tma"
size_t cg_search_select_smem(const cg_search_spec *s);
#define CG_SEARCH_SEG_MASS "sieve_search_seg_mass"
void cg_search_seg_kernel(cg_em *em, const sieve_shape *sh, int bq, int bk, int nq, int64_t cap);
/* The packed slot of one head's selected table: 2 nq + 1 + nq nk ints. */
int64_t cg_search_table_ints(const cg_search_spec *s);

/* The module (*ptx malloc'd). */
sieve_status cg_search_build(const cg_search_spec *s, char **ptx, cg_err *e);

#define CG_SEARCH_MAX_LEVELS 8

/*
** The coarse levels of the pattern's block hierarchy as key blocks per
** group, coarse first; levels of one key block are the kernel's own and
** left out. Returns how many (cg_search_check has refused bad levels).
*/
int cg_search_groups(const cg_search_spec *s, int groups[CG_SEARCH_MAX_LEVELS]);

/* Adds sieve_search_select to em's module (cg_search_select.c); sh is the
** resolved shape, bq x bk the pattern's blocks, sink the text sink. */
void cg_search_select_kernel(cg_em *em, const sieve_shape *sh, int bq, int bk, int nq, int nk, int64_t cap,
                             const int *groups, int ngroups, int sink);

/*
** The selection on the CPU, for checking: masses m[0..n) of one row's
** entries and their key blocks kb[0..n) (of nk), into sel[i] = 1 for the
** chosen entries, level by level through `groups` (cg_search_groups; none:
** one level). Returns how many were chosen.
*/
/* The select kernel's recall and topk for a selection over nk key blocks:
** the pattern's, or for a top-k sparsity (AdaSpa) k = ceil((1 - s) nk)
** heaviest blocks with a recall no row reaches (2), so the cap decides. */
void cg_search_budget(const cg_selection *sel, int nk, float *recall, int *topk);
/* Top-k at sparsity s over nk key blocks: ceil((1 - s) nk), at least 1. */
int cg_search_topk(double s, int nk);

/*
** AdaSpa's head-adaptive tiers (arXiv 2502.21079 §4.2): recall[h] of each
** of `heads` heads at the base sparsity s. With n heads above `thr` (n at
** most heads / 2), the n of highest recall get sparsity (1 + s) / 2 and
** the n of lowest (3s - 1) / 2 (0 if below), the rest s; ties in recall go
** by head index. Writes sparsity[h]; returns n.
*/
int cg_search_tiers(const double *recall, int heads, double s, double thr, double *sparsity);

/*
** The text sink's tokens, [*lo, *hi) in model order, of a resolved shape
** with tlen valid text tokens (tlen < 0 or above the text: all of it);
** lo == hi when there is none. A block [b bs, (b + 1) bs) is in the sink
** when it holds one of them (cg_search_in_sink).
*/
void cg_search_text_span(const sieve_shape *sh, int tlen, int64_t *lo, int64_t *hi);
static inline int cg_search_in_sink(int64_t b, int bs, int64_t lo, int64_t hi) {
  return lo < hi && b * bs < hi && (b + 1) * bs > lo;
}

int cg_search_select_ref(const double *m, const int32_t *kb, int n, int nk, const int *groups, int ngroups,
                         double recall, int topk, uint8_t *sel);

#endif
