/*
** The GPU block-table builder: the tables of any static or step-dependent
** mask, built on the GPU by generated kernels from the same mask expression
** the CPU builder uses, equal to the CPU builder's (cg_blocks.h) list for
** list: full blocks, then partial ones, each in key order.
**
** Classification is the CPU's interval test (cg_interval.h), lowered to
** LLVM IR (cg_lower_interval.h) with step and layer left as kernel
** parameters, so one module serves every step. A pair the test leaves
** undecided goes on a work list and is refined exactly: a warp evaluates
** the mask (cg_lower.h) on the pair's token pairs, from the layout's
** coordinates of every position, until it has seen a true and a false one
** (partial) or the block ends (full or empty). The CPU builder's answer is
** the exact class too, so the two agree whatever shortcuts either takes.
**
** Heads are grouped into tables by (layout, mask with the head fixed);
** step and layer stay symbolic, so the grouping, the boxes, the coordinates
** and every buffer size are fixed per shape: they are uploaded once, and a
** new step costs five launches and no host work.
**
** Device buffers (int32 unless said):
**   boxes   [ntables][nq + nk][CG_NIN][2]  coordinate box of each query
**           block then each key block, in the table's layout (lo, hi)
**   coords  [nlays][5][seq]  t, y, x, text, idx of every position of each
**           distinct layout (lay[table] says which)
**   cls     u8 [ntables][nq][nk]  each pair's class (CG_BLK_*)
**   work    [ntables nq nk]  undecided pairs, (table nq + qb) nk + kb,
**           in no particular order; nwork (one int32) counts them, and
**           sieve_tbl_compact sets it back to 0 for the next build
**   rows    [ntables][nq][nk]   per row: full key blocks ascending from the
**           front, partial ones from the back (the first at nk - 1)
**   counts  [ntables][nq][2]    full and partial blocks per row
**   tabs    [ntables][table_ints]  packed tables (cg_attn.h's format), each
**           in a slot of its worst-case size, so head_off[h] =
**           head_table[h] * table_ints whatever the step
**
** Kernels (W = CG_TGEN_WARPS warps per CTA):
**   sieve_tbl_classify(boxes, cls, work, nwork, i32 step, i32 layer)
**       one warp per row: grid (ceil(nq / W), ntables), block 32 W
**   sieve_tbl_refine(coords, cls, work, nwork, i32 step, i32 layer)
**       one warp per undecided pair, a fixed grid looping over the list:
**       grid (CG_TGEN_REFINE_CTAS), block 32 W
**   sieve_tbl_compact(cls, rows, counts, nwork)
**       one warp per row: grid (ceil(nq / W), ntables), block 32 W
**   sieve_tbl_scan(counts, tabs)            grid (ntables), block 32
**   sieve_tbl_fill(rows, counts, tabs)      grid (ceil(nq / W), ntables), block 32 W
** The last two (cg_tpack_kernels) only pack rows and counts; AdaSpa's
** selection writes the same rows and counts and reuses them.
**
** Partial-block bitmasks (cg_tgen_new_bits; static masks only, as on the
** CPU): entries are two int32s, (key block, offset of its bitmask from the
** table's start, -1 for none), as cg_tables_pack writes them, and the
** bitmasks lie past the last table slot, each distinct one once, as on the
** CPU: equal blocks are found by a 128-bit hash of their bits. Partial
** blocks of classes with bits are numbered over all tables, row by row;
** pgbase [ntables][nq] holds each row's first number (-1 throughout a
** table without bits), set on the host from a first classification's
** counts (cg_tgen_bits_place). Then, once:
**   sieve_tbl_bhash(coords, rows, counts, pgbase, key0, key1, rep, uid,
**                   slot_of, count, i32 mask, i32 step, i32 layer)
**       each partial block's bits hashed into a set of mask + 1 slots
**       (key0, key1 u64; rep, uid int32: the first block with those bits
**       and their number among the distinct ones, count of them);
**       slot_of[number] its slot
** and at every build
**   sieve_tbl_fill(rows, counts, tabs, pgbase, slot_of, uid)   entries of
**       two, a partial block's bitmask at (ntables - table) table_ints +
**       uid wpb from its table's start
**   sieve_tbl_bits(coords, rows, counts, pgbase, tabs, slot_of, rep, uid,
**                  i32 step, i32 layer)
**       the bits of each distinct bitmask's first block, stored there
** both a CTA per row, its warps taking the row's partial blocks in turn:
** grid (nq, ntables), block 32 W (fill: as above).
*/
#ifndef CG_TABLEGEN_H
#define CG_TABLEGEN_H

#include "cg_blocks.h"
#include "cg_emit.h"
#include "cg_lower.h"
#include "cg_ptx.h"

#define CG_TGEN_WARPS 4
#define CG_TGEN_REFINE_CTAS 1056  /* 8 per SM of an H100 or H200 */

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
  int nlays;
  int *lay;              /* [ntables]: the table's layout, an index into coords */
  int32_t *coords;       /* [nlays][5][seq], as uploaded */
  int32_t lo[CG_NIN], hi[CG_NIN];  /* every coordinate's range over all layouts */
  int64_t table_ints;    /* 2 nq + 1 + ew nq nk */
  uint32_t bits;         /* head classes whose partial blocks get bitmasks */
  int ew;                /* int32s per packed entry: 2 with bits, else 1 */
  int wpb;               /* words per bitmask: bq bk / 32 */
} cg_tgen;

/* Groups heads and computes the boxes and the layouts' coordinates. The
** pattern's graph grows. */
sieve_status cg_tgen_new(cg_pattern *p, const sieve_shape *shape, cg_tgen **out, cg_err *e);
/* ... with bitmasks for the partial blocks of the classes in bits (a mask
** that reads step or layer takes none: cg_bits_classes). */
sieve_status cg_tgen_new_bits(cg_pattern *p, const sieve_shape *shape, uint32_t bits, cg_tgen **out, cg_err *e);
void cg_tgen_free(cg_tgen *t);
/* Whether table i's partial blocks carry bitmasks. */
int cg_tgen_table_bits(const cg_tgen *t, int i);
/*
** With bits: each row's pgbase from the built tables' counts ([ntables]
** [nq][2], full then partial, as the compaction writes them); returns the
** partial blocks of tables with bits, or -1 past INT32_MAX.
*/
int64_t cg_tgen_bits_place(const cg_tgen *t, const int32_t *counts, int32_t *pgbase);

/* The module with the five kernels, as PTX (*ptx malloc'd). */
sieve_status cg_tgen_build(const cg_pattern *p, const cg_tgen *t, cg_arch arch, char **ptx,
                           cg_err *e);

/*
** Adds sieve_tbl_scan and sieve_tbl_fill to em's module, for tables of nq
** rows over nk key blocks in slots of table_ints (cg_tablegen_pack.c).
*/
void cg_tpack_kernels(cg_em *em, cg_arch arch, int nq, int nk, int64_t table_ints);
/* ... and for two-int32 entries with bitmasks placed as above. */
void cg_tpack_kernels_bits(cg_em *em, cg_arch arch, int nq, int nk, int64_t table_ints, int ntables, int wpb);

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
size_t cg_tgen_coords_bytes(const cg_tgen *t);
size_t cg_tgen_cls_bytes(const cg_tgen *t);
size_t cg_tgen_work_bytes(const cg_tgen *t);  /* the list, then nwork */
size_t cg_tgen_pbase_bytes(const cg_tgen *t);

/* cg_tablegen_refine.c: adds sieve_tbl_refine to em's module, one arm per
** table, each evaluating lw[table]'s mask (lowered over coordinates and
** step and layer). */
void cg_tgen_refine_kernel(cg_em *em, const cg_tgen *t, cg_arch arch, cg_lower **lw);
/* ... and sieve_tbl_bhash and sieve_tbl_bits, where t has bits. */
void cg_tgen_bits_kernels(cg_em *em, const cg_tgen *t, cg_arch arch, cg_lower **lw);

#endif
