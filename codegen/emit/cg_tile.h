/*
** The tile layer: what a warp-level GPU kernel is written in. Shared tiles
** (swizzled, so ldmatrix is free of bank conflicts), global views (row
** remapping, bounds), async copies between them, register tiles in the
** layout of the tensor-core fragments, matrix products, and the row-wise
** operations softmax needs.
**
** A register tile belongs to one warp; every thread holds its part. The mma
** accumulator layout (m16n8 C fragment) fixes which part: for m-tile i and
** n-tile j a thread holds rows 16i + r and 16i + r + 8, columns 8j + 2c and
** 8j + 2c + 1, where r = lane / 4 and c = lane % 4. A row vector (cg_rv)
** holds one value per row a thread owns: rows 16i + r and 16i + r + 8.
**
** Target specifics (the instructions that move tiles and multiply them) sit
** behind cg_target. Hopper's warpgroup products (cg_wgmma.h) are a layer
** of their own: they take whole warpgroups and panelled shared tiles, so a
** kernel chooses them where its shape fits (16 rows a warp) and keeps the
** register-tile operations, whose layout wgmma's accumulators share.
*/
#ifndef CG_TILE_H
#define CG_TILE_H

#include "cg_arena.h"
#include "cg_emit.h"
#include "cg_ptx.h"

typedef enum cg_dtype { CG_BF16, CG_FP16 } cg_dtype;

typedef struct cg_target cg_target;

/* A kernel's per-thread facts, made once at entry. */
typedef struct cg_tk {
  cg_em *em;
  const cg_target *tgt;
  cg_arena *arena;            /* slot arrays of register tiles */
  cg_dtype dt;
  int nthreads;
  int tid0;                   /* first thread of the role (cg_tk_role) */
  LLVMValueRef tid, lane, warp;
  LLVMValueRef fr, fc;        /* lane / 4, lane % 4: fragment row, column pair */
} cg_tk;

sieve_status cg_tk_init(cg_tk *t, cg_em *em, cg_arch arch, cg_dtype dt, int nthreads);
void cg_tk_dispose(cg_tk *t);
/* Re-derives the per-thread facts from fresh special-register reads (see
** cg_sreg_fresh): for code after a loop, so they need not live through it. */
void cg_tk_refresh(cg_tk *t);
LLVMTypeRef cg_tk_elt(const cg_tk *t);
/* A warp-specialised kernel's role of `n` threads from thread `first`:
** tid, warp and lane count from its first thread, and cooperative copies
** spread over the role's threads (cg_sync still spans the block). */
void cg_tk_role(cg_tk *t, int first, int n);   /* bfloat or half */

/* ------------------------------------------------------------ shared tiles */
/*
** rows x cols 16-bit elements at byte offset `off` of dynamic shared memory,
** cols a multiple of 64, rows of 16-byte chunks, in one of two layouts that
** keep ldmatrix (eight rows at one column) and cp.async free of bank
** conflicts:
**   pad == 0   swizzled: rows of cols * 2 bytes, chunk c of row r stored at
**              chunk c ^ (r % 8). No wasted bytes; a lane needs one address
**              per low-chunk pattern (four) per tile.
**   pad == 16  padded: rows of cols * 2 + 16 bytes, chunks in place, so
**              every fragment of a tile is one lane address plus an
**              immediate; costs 1/16 (D=128) of the tile in bytes.
** or, with panels set, wgmma's 128-byte swizzle (cg_wgmma.h): the columns
** in panels of 64, each panel rows x 128 bytes, chunk c of row r at chunk
** c ^ (r % 8) of its 128 bytes; off a multiple of 1024. Only cp.async and
** wgmma read this layout.
*/
typedef struct cg_st {
  LLVMValueRef off;  /* i32 */
  int rows, cols, pad;
  int panels;
} cg_st;

static inline int cg_st_pitch(int cols, int pad) { return cols * 2 + pad; }
static inline int cg_st_bytes(int rows, int cols, int pad) { return rows * cg_st_pitch(cols, pad); }

/* Rows r0 .. r0 + rows of t; for a swizzled tile r0 (i32) must be a
** multiple of 8 so the view keeps the swizzle phase. */
cg_st cg_st_rows(cg_tk *t, const cg_st *s, LLVMValueRef r0, int rows);

/* ------------------------------------------------------------ global views */
/* The token row for a position: layouts map positions to rows. */
typedef LLVMValueRef (*cg_rowmap)(void *ctx, LLVMValueRef pos);

typedef struct cg_gv {
  LLVMValueRef base;    /* global pointer to element (row 0, col 0) */
  LLVMValueRef stride;  /* i64: elements from one row to the next */
  LLVMValueRef pos0;    /* i32: position of the view's first row */
  int64_t limit;        /* positions >= limit do not exist; 0: all exist */
  cg_rowmap row_of;     /* NULL: row = position */
  void *ctx;
} cg_gv;

/*
** The token rows of the fragment rows a thread owns in rows row0 .. row0 + m
** of a view (rows[k] for row 16 (k / 2) + 8 (k % 2) + lane / 4, k < m / 8).
** A remapped view computes row_of once per lane (lane l: row l, l + 32, ...)
** and shares the results by shuffles, not once per row per thread.
*/
void cg_gv_frag_rows(cg_tk *t, const cg_gv *g, LLVMValueRef row0, int m, LLVMValueRef *rows);

/* ---------------------------------------------------------- register tiles */
typedef struct cg_rt {  /* m x n f32 accumulator */
  int m, n;
  cg_reg *v;           /* ((i * n/8) + j) * 4 + k */
} cg_rt;

typedef struct cg_ra {  /* m x k 16-bit A operand: 4 packed pairs per 16x16 */
  int m, k;
  cg_reg *v;           /* ((i * k/16) + j) * 4 + k */
} cg_ra;

typedef struct cg_rv {  /* one f32 per owned row: rows 16i + r (2i), 16i + r + 8 (2i + 1) */
  int m;
  cg_reg *v;
} cg_rv;

void cg_rt_init(cg_tk *t, cg_rt *r, int m, int n, LLVMValueRef fill);
void cg_ra_init(cg_tk *t, cg_ra *r, int m, int k);
void cg_rv_init(cg_tk *t, cg_rv *r, int m, LLVMValueRef fill);
void cg_rt_fill(cg_tk *t, cg_rt *r, LLVMValueRef v);
LLVMValueRef cg_rv_get(cg_tk *t, const cg_rv *r, int i);
void cg_rv_set(cg_tk *t, cg_rv *r, int i, LLVMValueRef v);

/* ---------------------------------------------------- target operations */
struct cg_target {
  const char *name;
  /* Global -> shared, asynchronously; rows past the view's limit read as 0. */
  void (*copy_async)(cg_tk *t, const cg_st *dst, const cg_gv *src);
  void (*copy_commit)(cg_tk *t);
  /* Waits until at most `pending` committed copy groups are in flight. */
  void (*copy_wait)(cg_tk *t, int pending);
  /* A operand from a shared tile (rows = a->m, cols = a->k). */
  void (*load_a)(cg_tk *t, cg_ra *a, const cg_st *src);
  /* c += a * b^T, a (m x k) in registers or (a == NULL) the shared tile as;
  ** b is n x k in shared memory. */
  void (*mma_abt)(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *as, const cg_st *b);
  /* c += a * b, b is k x n in shared memory (row-major). */
  void (*mma_ab)(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b);
};

const cg_target *cg_target_get(cg_arch arch);

static inline void cg_copy_async(cg_tk *t, const cg_st *d, const cg_gv *s) { t->tgt->copy_async(t, d, s); }
static inline void cg_copy_commit(cg_tk *t) { t->tgt->copy_commit(t); }
static inline void cg_copy_wait(cg_tk *t, int pending) { t->tgt->copy_wait(t, pending); }
static inline void cg_load_a(cg_tk *t, cg_ra *a, const cg_st *s) { t->tgt->load_a(t, a, s); }
static inline void cg_mma_abt(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *as, const cg_st *b) {
  t->tgt->mma_abt(t, c, a, as, b);
}
static inline void cg_mma_ab(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b) { t->tgt->mma_ab(t, c, a, b); }

/* Every thread of the block reaches this point; shared memory written
** before it is visible after it. */
void cg_sync(cg_tk *t);

/* ------------------------------------------------------------ elementwise */
/* Accumulator rounded to the kernel's 16-bit type as an A operand
** (an S tile becomes the P operand of the next product). */
void cg_rt_to_a(cg_tk *t, cg_ra *dst, const cg_rt *src);

/* Elements whose predicate is false become `fill`. row and col are the
** element's coordinates in the warp's tile (i32); ri and ci number the
** distinct rows (m / 8) and columns (n / 4) a thread owns, so a predicate
** can compute per-row and per-column parts once. */
typedef LLVMValueRef (*cg_pred)(void *ctx, int ri, LLVMValueRef row, int ci, LLVMValueRef col);
/* The row in the warp's tile of a thread's owned row ri (as pred gets it). */
LLVMValueRef cg_frag_row(cg_tk *t, int ri);
void cg_rt_mask(cg_tk *t, cg_rt *r, cg_pred pred, void *ctx, LLVMValueRef fill);

/*
** The same in two halves: the predicate into bits before the tile is live
** (a long predicate's temporaries would crowd its registers), then applied.
** Two ways to lay the bits out:
**   CG_MASK_FRAG  each thread evaluates its own elements (bit e % 32 of word
**                 e / 32 for slot e); per-row and per-column parts are
**                 computed once per thread and live together.
**   CG_MASK_WARP  lane l evaluates row l % m against every column (word w,
**                 bit b: column 32 w + b); apply fetches each owned row's
**                 words by shuffles. One row's and one column's values are
**                 live at a time: more arithmetic, fewer registers.
** pred gets ri / ci as in cg_rt_mask (CG_MASK_WARP: ri = 0, ci = column).
*/
typedef enum cg_mask_mode { CG_MASK_FRAG, CG_MASK_WARP } cg_mask_mode;
int cg_mask_words(int m, int n, cg_mask_mode mode);
void cg_mask_bits(cg_tk *t, int m, int n, cg_mask_mode mode, cg_pred pred, void *ctx, cg_reg *words);
void cg_rt_mask_apply(cg_tk *t, cg_rt *r, cg_mask_mode mode, const cg_reg *words, LLVMValueRef fill);

/* x = 2^(x * scale - sub[row]) */
void cg_rt_exp2_rows(cg_tk *t, cg_rt *r, LLVMValueRef scale, const cg_rv *sub);
/* x = x * f[row] */
void cg_rt_mul_rows(cg_tk *t, cg_rt *r, const cg_rv *f);

/* dst[row] = max over the row of src, reduced over the quad of threads that
** share the row, so every owner agrees. */
void cg_row_max(cg_tk *t, cg_rv *dst, const cg_rt *src);
/* dst[row] += this thread's part of the row sum (cg_rv_quad_sum completes it). */
void cg_row_sum_part(cg_tk *t, cg_rv *dst, const cg_rt *src);
void cg_rv_quad_sum(cg_tk *t, cg_rv *r);
/* cg_row_sum_part, and groups[i * ng + g] = this thread's part of owned row
** i's sum over column group g of ng equal ones (n / 4 / ng a power of 2;
** ng = 0: none). */
void cg_row_sum_groups(cg_tk *t, cg_rv *dst, const cg_rt *src, int ng, LLVMValueRef *groups);
/*
** Sums each of v[0 .. n) (n a power of 2) over the quad of lanes that
** shares a row, spread over the quad: afterwards this lane holds the
** returned count k = max(n / 4, 1) of the sums in v[0 .. k), v[i] the sum
** of value cg_quad_spread_at() + i. Where n < 4 lanes hold the same sums;
** *own is true on one lane of each.
*/
int cg_quad_spread_sum(cg_tk *t, LLVMValueRef *v, int n);
LLVMValueRef cg_quad_spread_at(cg_tk *t, int n, LLVMValueRef *own);

/* Stores the warp's rows row0 .. row0 + r->m of the view, rounded to the
** 16-bit type; rows past the view's limit are skipped. */
void cg_rt_store(cg_tk *t, const cg_rt *r, const cg_gv *dst, LLVMValueRef row0);

#endif
