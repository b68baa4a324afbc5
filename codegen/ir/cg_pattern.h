/*
** The pattern IR: what a script declares, after the script has run.
** Owned by one arena (and one expression graph); nothing in it points back
** into Lua. Its canonical text (cg_pattern_dump) is the pattern's identity:
** the kernel cache and the tuning database key on its hash.
*/
#ifndef CG_PATTERN_H
#define CG_PATTERN_H

#include "cg_arena.h"
#include "cg_err.h"
#include "cg_expr.h"
#include "sieve.h"

#define CG_MAX_HEADS 1024  /* head-class tables are evaluated up to this */

/*
** Bounds on what a script may hand the kernel generator, checked at load
** (SIEVE_ERR_LIMIT with the script's file:line). LLVM's time on a mask
** grows with its size and faster than linearly with the depth of its
** arithmetic: a chain of 200 adds and multiplies took 1.7 s to compile, one
** of 400 took 23 s, a mask of 2,500 nodes of depth 14 took 5.5 s, while a
** union of 120 comparisons took 0.6 s. So depth counts every operation
** but and, or and not (a union of many masks stays possible), and none
** that constants and the shape's grid alone decide: those fold to one
** constant before a kernel is generated (svg's budget-derived band, an
** integer square root of the grid, nests 143 deep in the script and 8 once
** folded). The shipped patterns reach depth 48 (lvsa -p window=5) and 3,398
** nodes (lvsa -p train_frames=21).
*/
#define CG_MAX_DEPTH 256        /* operations on the longest path of one expression */
#define CG_MAX_MASK_NODES 8192  /* distinct nodes of all class masks together */

typedef enum cg_layout_kind {
  CG_LAYOUT_IDENTITY,   /* model order: text, then t, y, x raster (or text after) */
  CG_LAYOUT_TRANSPOSE,  /* SVG: position-major, frames contiguous: y, x, t */
  CG_LAYOUT_TILE        /* STA: 3-D tiles contiguous, tiles in t,y,x raster;
                        ** ragged last tiles keep their actual size */
} cg_layout_kind;

typedef struct cg_layout {
  cg_layout_kind kind;
  int tile[3];          /* CG_LAYOUT_TILE: tile size in t, y, x */
} cg_layout;

/* Position -> coordinate expressions of a layout, for one side (q or k):
** roots indexed 0..4 = t, y, x, text, idx, as functions of CG_V_QPOS or
** CG_V_KPOS. Defined in cg_layout.c. */
int cg_layout_coords(cg_graph *g, const cg_layout *l, const sieve_shape *s,
                     int key_side, cg_ref out[5]);
const char *cg_layout_name(cg_layout_kind k);

/* mask with the model coordinates of both sides through layout l's
** expressions and s's constants bound: a function of positions (and head,
** step, layer, text.valid). idx (may be NULL) gets each side's idx
** expression. Defined in cg_layout.c; CG_NONE when out of memory. */
cg_ref cg_mask_at_positions(cg_graph *g, cg_ref mask, const cg_layout *l, const sieve_shape *s, cg_ref idx[2]);

/* Sets map[frames, height, width, text.n] to s's constants, for cg_subst:
** every place that composes a mask with a shape binds them first. */
void cg_shape_vars(cg_graph *g, const sieve_shape *s, cg_ref map[]);

/* Neither token is text padding: a text token is padding when its index
** among the text tokens is at or past text.valid (the launch argument).
** Padding rows then see no key (O = 0, LSE = -inf) and padding keys no
** query. True when s has no text. Over q/k text and idx (model order). */
cg_ref cg_valid_pairs(cg_graph *g, const sieve_shape *s);

/* mask & cg_valid_pairs with the shape's vars bound and text.valid fixed to
** tlen (the whole text when tlen < 0): what a reference evaluates over
** model coordinates. CG_NONE when out of memory. The graph grows. */
cg_ref cg_mask_bound(cg_graph *g, cg_ref mask, const sieve_shape *s, int tlen);

typedef struct cg_class {
  const char *name;
  cg_layout layout;
  cg_ref mask;          /* boolean, over q.*, k.*, head, step, layer */
} cg_class;

typedef enum cg_param_kind { CG_PARAM_NUMBER, CG_PARAM_BOOL, CG_PARAM_STRING } cg_param_kind;

typedef struct cg_param {
  const char *name;
  cg_param_kind kind;
  double num;           /* NUMBER, BOOL (0/1) */
  const char *str;      /* STRING */
  int overridden;
} cg_param;

typedef enum cg_select_kind {
  CG_SELECT_STATIC,     /* the mask decides */
  CG_SELECT_LSE_SEARCH, /* AdaSpa: block mass from cached LSE, top-p / top-k */
  CG_SELECT_PROFILE     /* SVG: sampled-query error decides each head's class */
} cg_select_kind;

/*
** What a profiling selection does at its steps:
**   ONLINE  profile, and run each head in the class of least error (SVG);
**   SEARCH  profile and keep the errors for a mask-search file, and run
**           full attention (STA's STA_searching: calibration runs dense);
**   FILE    profile nothing: each head's class at (step, layer) comes from
**           a mask-search file written by SEARCH (STA's STA_inference).
*/
typedef enum cg_profile_mode { CG_PROFILE_ONLINE, CG_PROFILE_SEARCH, CG_PROFILE_FILE } cg_profile_mode;

typedef struct cg_selection {
  cg_select_kind kind;
  double recall;        /* top-p target of attention mass, (0, 1] */
  int topk;             /* cap on key blocks per query block; 0 = none */
  double sparsity;      /* > 0: top-k, ceil((1 - sparsity) nk) blocks a row (AdaSpa) */
  int nsteps;           /* denoising steps that search / profile */
  int *steps;
  int samples;          /* PROFILE: sampled query rows per head */
  int sample_range;     /* PROFILE: drawn from the first this many video tokens; 0: all */
  cg_profile_mode mode; /* PROFILE: what the profiling step decides (below) */
  const char *file;     /* PROFILE, CG_PROFILE_FILE: the mask-search file (rt_strategy.h) */
  /* PROFILE: [nclasses] the mask each class is profiled under, where it
  ** differs from the one it runs (SVG profiles 1.5-frame block bands);
  ** NULL: the class masks (cg_profile_mask). */
  cg_ref *pmask;
  int nlevels;          /* hierarchical block sizes, coarse to fine, in tokens */
  int *levels;
  /* LSE search (AdaSpa, arXiv 2502.21079 §4.2-4.3): */
  double tiers;         /* > 0: head-adaptive tiers, heads above this recall at the base sparsity */
  int text_sink;        /* blocks holding valid text (query or key side) are always kept */
  int cache_lse;        /* searches after the first use the first search's LSE: no dense pass */
} cg_selection;

typedef struct cg_pattern {
  cg_arena *arena;
  cg_graph *g;
  const char *name;
  const char *source;   /* script chunk name (file path) */
  int nparams;
  cg_param *params;
  /* Table blocks, tokens; 0: left to the kernels, whose tile the tables
  ** follow where a plan builds them (cg_attn_table_blocks), else 128. */
  int block_q, block_k;
  /* Geometry the script declares; -1 where it says nothing. The token grid
  ** (frames, height, width) fills what the caller's shape leaves at 0; the
  ** text geometry, when declared, is the pattern's own and wins. */
  int frames, height, width;
  int text, text_after;
  int nclasses;
  cg_class *classes;
  /* Head h uses classes[head_class[h % period]]. */
  int period;
  int *head_class;
  cg_selection sel;
  /* The schedule: steps below dense_steps and layers below dense_layers run
  ** dense attention (the seeds' warm-up); 0: none. */
  int dense_steps, dense_layers;
  char *ir_text;        /* canonical dump, filled by cg_pattern_finish */
  uint64_t ir_hash;
  /*
  ** Classes that declare sieve.layout.auto: auto_layout[c] set (NULL when
  ** none does). Their layout is the one the table builder chose for the
  ** last shape resolved (cg_layouts_resolve, codegen/tables/cg_layout_auto.c),
  ** identity before any; the choices per shape are kept in autos.
  */
  uint8_t *auto_layout;
  struct cg_auto *autos;
  /* A plan's copy at merged query rows: the script's query block, which
  ** its rows are multiples of (0: none). sieve.layout.auto's check of a
  ** choice against identity counts identity there (cg_layout_auto.c). */
  int merged_from;
} cg_pattern;

/* The mask class c is profiled under (sieve.profile's masks, else its own). */
static inline cg_ref cg_profile_mask(const cg_pattern *p, int c) {
  return p->sel.pmask ? p->sel.pmask[c] : p->classes[c].mask;
}

cg_pattern *cg_pattern_new(void);
void cg_pattern_free(cg_pattern *p);
/* Computes ir_text and ir_hash once the declarations are complete. */
sieve_status cg_pattern_finish(cg_pattern *p, cg_err *e);

/* Whether every head residue names one of the pattern's classes: what
** each table builder and the reference check before indexing classes. */
sieve_status cg_pattern_check_classes(const cg_pattern *p, cg_err *e);

/* The dense pattern a schedule's warm-up runs: one class, mask true, the
** identity layout, p's blocks and geometry; NULL when out of memory. */
cg_pattern *cg_pattern_dense_of(const cg_pattern *p, cg_err *e);

/*
** p with table blocks of bq x bk tokens in place of its own: a copy of the
** struct that shares p's graph, arena and classes (p must outlive it;
** table building on either adds to the one graph) and has its own IR text,
** so keys made from the text tell the blocks apart. For patterns whose
** blocks are a table granularity, not part of the method: not for auto
** layouts, whose per-shape choices p keeps. Free with cg_pattern_view_free.
*/
cg_pattern *cg_pattern_with_blocks(const cg_pattern *p, int bq, int bk, cg_err *e);
void cg_pattern_view_free(cg_pattern *v);

/* Whether (step, layer) is in the pattern's dense warm-up. */
static inline int cg_pattern_dense_at(const cg_pattern *p, int step, int layer) {
  return step < p->dense_steps || layer < p->dense_layers;
}

/* The class head h uses. */
static inline const cg_class *cg_pattern_class(const cg_pattern *p, int h) {
  return &p->classes[p->head_class[h % p->period]];
}

/* The table blocks a builder uses: the pattern's own, else the 128 tokens
** tables take where no plan chose the kernel's tile (cg_attn_table_blocks). */
#define CG_TABLE_BLOCK 128
static inline int cg_pattern_block_q(const cg_pattern *p) { return p->block_q > 0 ? p->block_q : CG_TABLE_BLOCK; }
static inline int cg_pattern_block_k(const cg_pattern *p) { return p->block_k > 0 ? p->block_k : CG_TABLE_BLOCK; }

#endif
