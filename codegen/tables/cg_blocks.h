/*
** Block tables: for every (head, query block), the key blocks the kernel
** visits, split into full (mask true on every token pair: no masking work)
** and partial (mixed: the token predicate is applied). Positions are in the
** head class's layout order. Blocks are classified by interval evaluation of
** the mask over each block's coordinate box, then undecided pairs are
** refined exactly; a block with a true pair is never dropped and a block
** with a false pair is never called full.
*/
#ifndef CG_BLOCKS_H
#define CG_BLOCKS_H

#include "cg_eval.h"
#include "cg_pattern.h"
#include "cg_shape.h"

typedef struct cg_table {
  int cls;              /* head class */
  cg_ref mask;          /* mask with head/step/layer fixed (coordinate vars) */
  cg_ref pos_mask;      /* the same mask over q.pos/k.pos via the layout */
  int nq, nk;
  int32_t *full_ptr, *full_idx;   /* CSR, nq + 1 offsets */
  int32_t *part_ptr, *part_idx;
  int64_t nfull, npart, nempty;
  int64_t allowed_pairs;          /* token pairs the mask allows (estimated, see below) */
  int64_t estimated;              /* partial blocks whose allowed pairs are estimated */
  /* Bitmasks (cg_blocks_bits.c), where the tableset's bits_classes name
  ** the class: part_bits[i] is partial block i's first word in bitw (its
  ** block_q x block_k bits, row-major, 32 columns a word), bitw the
  ** distinct bitmasks. ent_words: int32s per packed entry, 1 (key block)
  ** or 2 (key block, bitmask offset or -1) when any class has bitmasks. */
  int bits;
  int ent_words;
  int32_t *part_bits;
  uint32_t *bitw;
  int64_t nbitw, nbitmasks;
} cg_table;

typedef struct cg_tableset {
  cg_arena *arena;
  sieve_shape shape;
  int step, layer;
  int block_q, block_k;
  int nq, nk;
  int64_t seq;
  int ntables;
  cg_table *tables;
  int *head_table;      /* [shape.heads] */
  double build_ms;
  unsigned flags;       /* CG_TABLES_* */
  int row_stride;       /* 0 or 1: every row; more: only multiples (scoring a layout) */
  int64_t stop4;        /* scoring: 0, or stop once 4 full + 5 partial blocks over the rows
                        ** built pass it (the tables are then left out: counts only) */
  int stop_merge;       /* 0 or 1; more: stop4 counts the rows merged, this many to one */
  int stopped;          /* it did */
  int64_t estimated;    /* over all tables: 0 when every count is exact */
  int64_t interval_full, interval_empty, interval_undecided;
  int64_t refined_full, refined_empty, refined_partial;
  int64_t moved_rows;   /* rows copied in part from an earlier row (cg_blocks_reuse.c) */
  int64_t unmoved_blocks; /* key blocks such rows copied from the row before, unmoved (likewise) */
  uint32_t bits_classes; /* head classes whose partial blocks carry bitmasks */
  struct blk_pool *pool; /* while the tables are built: buffers one table leaves the next */
} cg_tableset;

/* Builds tables for all heads of `shape`. The graph of p grows (fixed
** masks are added to it).
**
** The classification is always exact. A partial block's allowed pairs are
** counted exactly only with CG_TABLES_EXACT: by default a block that shows
** a true and a false pair among a few sampled query tokens is partial at
** once, and its count is estimated from those samples (an unbiased sum
** over the many such blocks; cg_table.estimated says how many). Counting
** every pair of every partial block costs seconds on irregular masks, and
** the kernel needs only the classes.
**
** Pairs with many token runs go to a memo of distinct block pairs
** (cg_blocks_memo.c), whose counts are exact; CG_TABLES_NO_MEMO builds
** without it, to check one path against the other. Likewise
** CG_TABLES_NO_REUSE builds every row afresh (cg_blocks_reuse.c). */
enum { CG_TABLES_EXACT = 1, CG_TABLES_NO_MEMO = 2, CG_TABLES_NO_REUSE = 4 };
sieve_status cg_tables_build(cg_pattern *p, const sieve_shape *shape, int step,
                             int layer, cg_tableset **out, cg_err *e);
sieve_status cg_tables_build_flags(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                   unsigned flags, cg_tableset **out, cg_err *e);
/* The same, with bitmasks for the partial blocks of the classes in
** bits_classes (bit c: class c; cg_bits_classes chooses them). */
sieve_status cg_tables_build_bits(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                  unsigned flags, uint32_t bits_classes, cg_tableset **out, cg_err *e);
void cg_tables_free(cg_tableset *t);

/*
** Partial blocks: predicate or bitmask (cg_blocks_bits.c). A class takes
** bitmasks when its predicate's work per (query, key) pair, the QK phase of
** its compiled program, is more than CG_BITS_PAIR_OPS instructions (a frame
** window is 3 to 5; the radial bench mask 20 and more), and the pattern's
** tables are static: selection static, mask not reading step or layer,
** block_k a multiple of 32. Plans take the cost's choice by default
** (SIEVE_PARTIAL unset or =auto; cg_bits_mode_env), =predicate keeps every
** class on its predicate, =bitmask gives every eligible class bitmasks, =bitmask:HEX the classes in
** the hex mask only (cg_bits_env: what plans use). The kernel and the
** tables of one plan must be given the same classes.
*/
#define CG_BITS_PAIR_OPS 8
typedef enum cg_bits_mode { CG_BITS_COST, CG_BITS_NEVER, CG_BITS_ALWAYS } cg_bits_mode;
cg_bits_mode cg_bits_mode_env(void);
uint32_t cg_bits_classes(cg_pattern *p, const sieve_shape *shape, cg_bits_mode mode);
uint32_t cg_bits_env(cg_pattern *p, const sieve_shape *shape);
/* The per-pair instructions of class cls's predicate on shape; -1 out of
** memory. */
int cg_bits_pair_ops(cg_pattern *p, const sieve_shape *shape, int cls);

/* Device memory (cg_blocks_mem.c): one table's packed bytes (bitmasks
** included; cg_table_bits_bytes: the bitmasks alone); all distinct
** tables' with the heads' offsets, as a plan copies them; the bound
** (SIEVE_TABLES_MAX_MB, default 4096, over tables and bitmasks together,
** and the packed form's 32-bit offsets); and SIEVE_ERR_LIMIT with the
** numbers past it. */
int64_t cg_table_bytes(const cg_table *t);
int64_t cg_table_bits_bytes(const cg_table *t);
int64_t cg_tables_bits_bytes(const cg_tableset *t);
int64_t cg_tables_bytes(const cg_tableset *t);
int64_t cg_tables_limit(void);
sieve_status cg_tables_check(const cg_tableset *t, cg_err *e);

/* Whether two builds of one pattern's tables agree: the lists, block by
** block the bitmasks, and the allowed pairs where both counted them
** exactly. The builder's fast paths (the block-pair memo, rows reused
** under translation) must give what the plain build gives; the tests,
** the fuzzer and bench_tables --check compare them with this. NULL when
** they agree; else what differs first, written in why. */
const char *cg_tables_differ(const cg_tableset *a, const cg_tableset *b, char *why, size_t n);

/* Packs the distinct tables into the kernel's layout (see cg_attn.h):
** *buf (malloc'd, *n int32s) and head_off[shape.heads]. Fails with
** cg_tables_check's SIEVE_ERR_LIMIT past the bound. */
sieve_status cg_tables_pack(const cg_tableset *t, int32_t **buf, size_t *n,
                            int32_t *head_off, cg_err *e);

/*
** The per-pattern expressions the kernel compiles, over q.pos, k.pos, head,
** step and layer: the mask through each head class's layout (a select on
** the head's class), and idx(pos) for queries and keys (the token row in
** model order that layout position pos holds). Like cg_tables_build, it
** applies the geometry the pattern declares (cg_shape_for).
*/
sieve_status cg_kernel_exprs(cg_pattern *p, const sieve_shape *shape,
                             cg_ref *mask, cg_ref *qidx, cg_ref *kidx, cg_err *e);
/* The same for a kernel whose classes in `bits` read bitmasks: their arm
** of the mask is true (the kernel never evaluates it). */
sieve_status cg_kernel_exprs_bits(cg_pattern *p, const sieve_shape *shape, uint32_t bits,
                                  cg_ref *mask, cg_ref *qidx, cg_ref *kidx, cg_err *e);

/*
** Automatic layouts (cg_layout_auto.c): sets the layout of every class
** that declares sieve.layout.auto to the one chosen for this shape,
** choosing it first if the shape is new. The table builder and the kernel
** expressions call it, so both always see the same layout; anything else
** that reads a class's layout for a shape calls it first.
** cg_layouts_ranking is the choice and its runners-up as text (NULL for a
** class with a fixed layout, or a shape not resolved yet).
*/
sieve_status cg_layouts_resolve(cg_pattern *p, const sieve_shape *shape, cg_err *e);
const char *cg_layouts_ranking(const cg_pattern *p, const sieve_shape *shape, int cls);
/*
** For a cache of what a choice led to (a plan's block tables): every
** class's layout for the shape at p's blocks into out[nclasses] (a fixed
** class's own), 0; -1 where a class is automatic and the shape not yet
** resolved. cg_layouts_adopt takes such layouts back, as though chosen
** here (no ranking is made, so cg_layouts_ranking gives NULL): each must
** be the class's own where fixed, one of the candidates where automatic,
** and what the pattern chose already for the shape if it did; anything
** else is refused (SIEVE_ERR_CACHE, with the class).
*/
int cg_layouts_chosen(const cg_pattern *p, const sieve_shape *shape, cg_layout *out);
sieve_status cg_layouts_adopt(cg_pattern *p, const sieve_shape *shape, const cg_layout *in, cg_err *e);
/* For the tests: how many of class cls's candidate layouts a bound, its
** unsettled pairs then settled, scores differently from a build of the
** rows that are multiples of stride (0: the bounds are exact); -1 on
** failure. */
int cg_layouts_check_scores(cg_pattern *p, const sieve_shape *shape, int cls, int stride);
/* For the tests: how many of class cls's candidates' bounds (every row,
** then settled, and stopped halfway) differ from those of witnesses that
** evaluate every key and token pair (blk_lbound_plain); -1 on failure. */
int cg_layouts_check_bounds(cg_pattern *p, const sieve_shape *shape, int cls, int stride);
/* For the tests: how many of class cls's candidates' bounds, read from
** the record of them all at stops within and past what it holds, and
** settled, differ from bounds made one by one; -1 on failure. *anew is
** raised by the stops past what a record holds (the bound made anew). */
int cg_layouts_check_records(cg_pattern *p, const sieve_shape *shape, int cls, int stride, int *anew);
/* For the tests: whether class cls's choice and rankings (as chosen, and
** as were identity to win its check) differ from those made with every
** bound made as asked, not read from the record, and every candidate
** settled whole, 1 if so, -1 on failure; *open: the candidates whose
** settling stopped short; *moved: whether the guesses misled (a later
** candidate beat the first). */
int cg_layouts_check_ranking(cg_pattern *p, const sieve_shape *shape, int cls, int stride, int *open, int *moved);
/* For the tests: how many of class cls's candidates' visited areas at
** query blocks of m of p's, counted from their tables at p's blocks
** (what checks a plan's copy at merged rows against identity), differ
** from a build at those rows, or stop at that value; -1 on failure. */
int cg_layouts_check_merged(cg_pattern *p, const sieve_shape *shape, int cls, int m);
void cg_layout_text(const cg_layout *l, char *buf, size_t n);
/* Copies p's automatic-layout flags and choices into c's arena (a pattern
** copy, cg_part.c), so that a copy chooses what p chose. 0, or -1 out of
** memory. */
int cg_layouts_copy(const cg_pattern *p, cg_pattern *c);

/* The token at each position of a layout, enumerated directly rather than
** through the expressions of cg_layout_coords (cg_layout.c). -1 when out
** of memory or the layout is invalid. */
int cg_layout_enum(const cg_layout *l, const sieve_shape *s, cg_coords *out);
/* The same into coordinates already made for the shape's tokens, so that
** layouts compared on one shape reuse one set of buffers. */
int cg_layout_fill(const cg_layout *l, const sieve_shape *s, cg_coords *out);

#endif
