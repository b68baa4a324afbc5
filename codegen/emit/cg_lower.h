/*
** Expression IR -> LLVM IR. Integers become i32 where intervals prove
** they and their operands fit, i64 elsewhere (so the kernel computes what
** the CPU's 64-bit evaluation does), booleans i1, with the IR's semantics:
** floor division and modulo, x / 0 = x % 0 = 0. An expression with an
** interval that may leave +-2^62, or an integer root (an index) that may
** not fit i32, is refused (SIEVE_ERR_UNSUPPORTED).
**
** Lowering is prepared once per root: the nodes it reaches, in topological
** order, and an interval for each, from the ranges the caller gives its
** variables. Intervals pick the cheap instruction where the floor and
** zero-divisor fixups cannot matter (a non-negative dividend over a positive
** constant is one udiv, which LLVM turns into a multiply-high), and fold
** comparisons they decide. The prepared root can then be emitted many times,
** e.g. once per (query, key) pair of a fragment.
*/
#ifndef CG_LOWER_H
#define CG_LOWER_H

#include "cg_emit.h"
#include "cg_expr.h"
#include "cg_pattern.h"

/* What cg_lower_new takes: a mask at the loader's limit composed with
** layouts and head-class selection stays far below it. */
#define CG_MAX_LOWER_NODES (8 * CG_MAX_MASK_NODES)

typedef struct cg_range {
  int64_t lo, hi;
} cg_range;

typedef struct cg_lower cg_lower;

/* Vars the root uses must have lo <= hi in ranges; one without is an
** error naming it (SIEVE_ERR_CODEGEN). */
cg_lower *cg_lower_new(const cg_graph *g, cg_ref root, const cg_range ranges[CG_NVARS], cg_err *e);
void cg_lower_free(cg_lower *l);

/* The root's value with each used var bound to vars[v] (i32): i32 for an
** integer root (its interval fits), i1 for a boolean one. */
LLVMValueRef cg_lower_emit(cg_lower *l, cg_em *e, LLVMValueRef const vars[CG_NVARS]);

/* The variables every generated kernel has for the whole CTA: the head
** (from its grid), the step and the layer (its parameters), and the valid
** text count of its batch element (cg_text_valid). */
static inline void cg_vars_uniform(LLVMValueRef vars[CG_NVARS], LLVMValueRef head, LLVMValueRef step,
                                   LLVMValueRef layer, LLVMValueRef tlen) {
  vars[CG_V_HEAD] = head;
  vars[CG_V_STEP] = step;
  vars[CG_V_LAYER] = layer;
  vars[CG_V_TLEN] = tlen;
}
#define CG_UNIFORM_VARS (1u << CG_V_HEAD | 1u << CG_V_STEP | 1u << CG_V_LAYER | 1u << CG_V_TLEN)

/* An expression at a query and a key position (NULL where it reads
** neither) with the uniform variables: a mask at one pair, or a row's or
** a column's part of it. */
static inline LLVMValueRef cg_lower_at(cg_lower *l, cg_em *e, LLVMValueRef qpos, LLVMValueRef kpos,
                                       LLVMValueRef head, LLVMValueRef step, LLVMValueRef layer, LLVMValueRef tlen) {
  LLVMValueRef vars[CG_NVARS] = {0};
  vars[CG_V_QPOS] = qpos;
  vars[CG_V_KPOS] = kpos;
  cg_vars_uniform(vars, head, step, layer, tlen);
  return cg_lower_emit(l, e, vars);
}

/*
** Runtime text length. A kernel takes `tlen`, a pointer to one i32 per batch
** element (NULL: all text is valid); cg_text_valid loads the CTA's count,
** clamped to [0, text]. The mask of cg_kernel_exprs already excludes the
** padding (cg_valid_pairs), but tables mark blocks full that padding may
** reach, so a kernel also masks every block that cg_text_overlap says
** touches the text positions ([text0, text0 + text) in every layout).
*/
LLVMValueRef cg_text_valid(cg_em *e, const sieve_shape *s, LLVMValueRef tlen, LLVMValueRef batch);
/* Positions [p0, p0 + n) reach a text position; NULL when s has no text. */
LLVMValueRef cg_text_overlap(cg_em *e, const sieve_shape *s, LLVMValueRef p0, int n);

/*
** Emission in parts, for a predicate over many (query, key) pairs: the
** nodes that read no var outside `only` (e.g. q.pos and the uniform vars)
** are emitted once per query into a memo (cg_lower_size entries), likewise
** once per key, and cg_lower_join emits the rest per pair, taking memoized
** nodes as given. The IR that reaches LLVM is then per-row + per-column +
** per-pair work, not the whole expression per pair. cg_lower_part takes
** the nodes that base has (non-NULL entries; base may be NULL) as given,
** and cg_lower_only keeps of a memo the nodes that read no var outside
** `only`: the uniform vars' share of the first row part, emitted once,
** serves every part after it in the same block.
*/
int cg_lower_size(const cg_lower *l);
void cg_lower_part(cg_lower *l, cg_em *e, LLVMValueRef const vars[CG_NVARS], uint32_t only,
                   const LLVMValueRef *base, LLVMValueRef *memo);
void cg_lower_only(const cg_lower *l, uint32_t only, const LLVMValueRef *memo, LLVMValueRef *out);
/* The nodes such an emission writes: one per node of the uniform vars,
** rows per node of q.pos (and uniform vars), cols per node of k.pos, pairs
** per node of both (constants and vars cost nothing). */
int64_t cg_lower_cost(const cg_lower *l, uint32_t uniform, int rows, int cols, int pairs);
LLVMValueRef cg_lower_join(cg_lower *l, cg_em *e, LLVMValueRef const vars[CG_NVARS], const LLVMValueRef *a,
                           const LLVMValueRef *b);
/* Sets out[k] (cg_lower_size entries) for the nodes a memo made for `only`
** hands on: those that read no var outside it but have a user that does,
** and the root if it reads none. A memo whose other entries are stale
** (computed for another row, say) still joins correctly. */
void cg_lower_frontier(const cg_lower *l, uint32_t only, uint8_t *out);
/* Sets mark[] (zeroed by the caller) to 1 on node k and the nodes under it
** that read a var of `need` and none outside `only`; their count, or -1
** once past max. */
int cg_lower_cone(const cg_lower *l, int k, uint32_t only, uint32_t need, int max, uint8_t *mark);

/* The root's interval. */
cg_range cg_lower_range(const cg_lower *l);
/* A node's interval from its operands' (R(0, 0) where unused) and the
** vars'; saturated at +-2^62, which means "unknown". */
cg_range cg_node_range(const cg_node *n, cg_range a, cg_range b, cg_range c, const cg_range vars[CG_NVARS]);

/*
** A root that picks between expressions by conditions on uniform vars only
** (the select over head classes cg_kernel_exprs builds), split into arms:
** arm i applies when conds[i] holds and no earlier cond does; the last
** arm's cond is CG_NONE. A kernel branches on the conds once and runs one
** arm, instead of computing every arm and selecting. Returns the number
** of arms, at most max (1 when root picks nothing).
*/
int cg_split_uniform(const cg_graph *g, cg_ref root, uint32_t uniform_vars, cg_ref *conds,
                     cg_ref *arms, int max);

/* A range that says "any 32-bit value" and one that says "not available". */
static inline cg_range cg_range_any(void) { return (cg_range){INT32_MIN, INT32_MAX}; }
static inline cg_range cg_range_none(void) { return (cg_range){1, 0}; }

/* The vars of a kernel over layout positions: q.pos in [0, q_hi], k.pos in
** [0, k_hi] (the last block's padding included), head below heads, and
** step and layer, which are launch arguments, any non-negative i32, and
** the valid text count, 0 .. text. The model coordinates are not vars
** there: they are functions of positions. */
static inline void cg_kernel_ranges(cg_range r[CG_NVARS], int64_t q_hi, int64_t k_hi, int heads, int text) {
  for (int i = 0; i < CG_NVARS; i++) r[i] = cg_range_none();
  r[CG_V_QPOS] = (cg_range){0, q_hi};
  r[CG_V_KPOS] = (cg_range){0, k_hi};
  r[CG_V_HEAD] = (cg_range){0, heads - 1};
  r[CG_V_STEP] = r[CG_V_LAYER] = (cg_range){0, INT32_MAX};
  r[CG_V_TLEN] = (cg_range){0, text};
}

#endif
