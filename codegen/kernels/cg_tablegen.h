/*
** The GPU block-table builder: for patterns whose mask changes with the
** denoising step or the layer (LVSA's rotating anchors), the tables of a
** new (step, layer) are built on the GPU by generated kernels from the same
** mask expression the CPU builder uses, instead of on the host.
**
** Classification is the CPU's interval test (cg_interval.h), lowered to
** LLVM IR (cg_lower_interval.h) with step and layer left as kernel
** parameters, so one module serves every step: a pair the test finds true
** on the whole coordinate boxes is full, false on them is empty, anything
** else is partial. Partial is always sound (the attention kernel applies the
** token predicate on partial blocks); the CPU builder's exact refinement of
** undecided pairs is the only thing given up, and it only ever turns a few
** partial blocks into full or empty ones.
**
** Heads are grouped into tables by (layout, mask with the head fixed);
** step and layer stay symbolic, so the grouping, the coordinate boxes and
** every buffer size are fixed per shape: the boxes are uploaded once and a
** new step costs three launches and no host work.
**
** Device buffers (int32 unless said):
**   boxes   [ntables][nq + nk][CG_NIN][2]  coordinate box of each query
**           block then each key block, in the table's layout (lo, hi)
**   rows    [ntables][nq][nk]   per row: full key blocks ascending from the
**           front, partial ones from the back (the first at nk - 1)
**   counts  [ntables][nq][2]    full and partial blocks per row
**   tabs    [ntables][table_ints]  packed tables (cg_attn.h's format), each
**           in a slot of its worst-case size, so head_off[h] =
**           head_table[h] * table_ints whatever the step
**
** Kernels (W = CG_TGEN_WARPS warps per CTA, one warp per table row):
**   sieve_tbl_classify(boxes, rows, counts, i32 step, i32 layer)
**       grid (ceil(nq / W), ntables), block 32 W
**   sieve_tbl_scan(counts, tabs)            grid (ntables), block 32
**   sieve_tbl_fill(rows, counts, tabs)      grid (ceil(nq / W), ntables), block 32 W
** The last two (cg_tpack_kernels) only pack rows and counts; AdaSpa's
** selection writes the same rows and counts and reuses them.
*/
#ifndef CG_TABLEGEN_H
#define CG_TABLEGEN_H

#include "cg_blocks.h"
#include "cg_emit.h"
#include "cg_ptx.h"

#define CG_TGEN_WARPS 4

typedef struct cg_tgen {
  cg_arena *arena;
  sieve_shape shape;     /* resolved: the pattern's text geometry applied */
  int bq, bk, nq, nk;
  int64_t seq;
  int ntables;
  int *head_table;       /* [heads] */
  int *cls;              /* [ntables]: head class */
  cg_ref *mask;          /* [ntables]: class mask, head fixed; step and layer free */
  int32_t *boxes;        /* [ntables][nq + nk][CG_NIN][2], as uploaded */
  int64_t table_ints;    /* 2 nq + 1 + nq nk */
} cg_tgen;

/* Groups heads and computes the boxes. The pattern's graph grows. */
sieve_status cg_tgen_new(cg_pattern *p, const sieve_shape *shape, cg_tgen **out, cg_err *e);
void cg_tgen_free(cg_tgen *t);

/* The module with the three kernels, as PTX (*ptx malloc'd). */
sieve_status cg_tgen_build(const cg_pattern *p, const cg_tgen *t, cg_arch arch, char **ptx,
                           cg_err *e);

/*
** Adds sieve_tbl_scan and sieve_tbl_fill to em's module, for tables of nq
** rows over nk key blocks in slots of table_ints (cg_tablegen_pack.c).
*/
void cg_tpack_kernels(cg_em *em, cg_arch arch, int nq, int nk, int64_t table_ints);

/*
** The CPU's interval test on the same boxes, for checking the kernel: the
** class (CG_BLK_*) of every pair of table `table` at (step, layer) into
** cls[qb * nk + kb], from the mask with step and layer fixed, as
** cg_tables_build classifies before refining (cg_tablegen_ref.c).
*/
sieve_status cg_tgen_classes(cg_pattern *p, const cg_tgen *t, int table, int step, int layer,
                             uint8_t *cls, cg_err *e);

/* Bytes of each device buffer. */
size_t cg_tgen_rows_bytes(const cg_tgen *t);
size_t cg_tgen_counts_bytes(const cg_tgen *t);
size_t cg_tgen_tabs_bytes(const cg_tgen *t);
size_t cg_tgen_boxes_bytes(const cg_tgen *t);

#endif
