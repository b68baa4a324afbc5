/*
** The expression IR: a hash-consed graph of integer/boolean nodes. Masks,
** layouts and everything the kernels compute per token pair are written in
** it. Nodes are immutable and interned: building the same node twice gives
** the same ref, so equal subexpressions are shared and equal masks compare
** equal by ref. Children are always created before parents, so ascending
** ref order is a topological order.
**
** Semantics (CPU evaluation and GPU lowering must agree):
**   integers are 64-bit two's complement, wrapping (never undefined);
**   kernels compute a node in 32 bits where interval analysis proves its
**   value and operands fit, in 64 bits elsewhere, and refuse an expression
**   whose intervals may leave +-2^62 (cg_lower.h), so where a kernel runs,
**   it computes what the CPU does;
**   DIV and MOD floor (MOD takes the divisor's sign); x/0 = 0 and x%0 = 0,
**   INT64_MIN / -1 wraps to INT64_MIN and INT64_MIN % -1 = 0;
**   booleans are 0/1 and may be used as integers.
**
** Token coordinates: a video token has text=0 and its (t, y, x); a text
** token has text=1 and t = y = x = -1. `idx` is the token's index in model
** order (text first when text comes before). QPOS/KPOS are positions in the
** kernel's layout order, used once a layout has been applied.
*/
#ifndef CG_EXPR_H
#define CG_EXPR_H

#include <stdint.h>

#include "cg_arena.h"

typedef int32_t cg_ref;
#define CG_NONE ((cg_ref)-1)

typedef enum cg_op {
  CG_CONST, CG_VAR,
  CG_ADD, CG_SUB, CG_MUL, CG_DIV, CG_MOD, CG_MIN, CG_MAX,
  CG_NEG, CG_ABS,
  CG_EQ, CG_NE, CG_LT, CG_LE,
  CG_AND, CG_OR, CG_NOT,
  CG_SELECT,
  CG_NOPS
} cg_op;

typedef enum cg_var {
  CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX,
  CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX,
  CG_V_HEAD, CG_V_STEP, CG_V_LAYER,
  CG_V_QPOS, CG_V_KPOS,
  /* The shape's token grid and compiled text count: bound to constants
  ** wherever a mask meets a shape (cg_shape_vars), so a script can size a
  ** window by the video without knowing the shape when it runs. */
  CG_V_FRAMES, CG_V_HEIGHT, CG_V_WIDTH, CG_V_NTEXT,
  /* The valid text tokens of the kernel's batch element, a launch
  ** argument: text positions past it are padding (cg_valid_pairs). */
  CG_V_TLEN,
  CG_NVARS
} cg_var;

typedef enum cg_type { CG_INT, CG_BOOL } cg_type;

typedef struct cg_node {
  uint8_t op;      /* cg_op */
  uint8_t type;    /* cg_type */
  uint16_t depth;  /* arithmetic on the longest path to a leaf (CG_MAX_DEPTH):
                   ** variables 1; constants, the shape's grid and and/or/not
                   ** not counted; saturates at 65535 */
  cg_ref a, b, c;  /* operands, CG_NONE where unused */
  int64_t imm;     /* CG_CONST: value; CG_VAR: cg_var */
  uint64_t shash;  /* structural hash: independent of construction order */
} cg_node;

typedef struct cg_graph cg_graph;

cg_graph *cg_graph_new(void);
void cg_graph_free(cg_graph *g);
int cg_graph_size(const cg_graph *g);
const cg_node *cg_node_at(const cg_graph *g, cg_ref r);

/*
** Constructors fold constants and apply identities (x+0, x*1, and(x,true),
** select on a constant, ...), order the operands of commutative ops by
** structural hash, and intern the result. They return CG_NONE only when out
** of memory. Operands of AND/OR/NOT/SELECT's condition are coerced to
** boolean (x != 0) when they are integers.
*/
cg_ref cg_const(cg_graph *g, int64_t v);
cg_ref cg_bool(cg_graph *g, int v);
cg_ref cg_var_ref(cg_graph *g, cg_var v);
cg_ref cg_bin(cg_graph *g, cg_op op, cg_ref a, cg_ref b);
cg_ref cg_un(cg_graph *g, cg_op op, cg_ref a);
cg_ref cg_select(cg_graph *g, cg_ref cond, cg_ref a, cg_ref b);

int cg_is_const(const cg_graph *g, cg_ref r, int64_t *v);
cg_type cg_type_of(const cg_graph *g, cg_ref r);
/* Bit i set when var i occurs under r. */
uint32_t cg_vars_used(const cg_graph *g, cg_ref r);
/* The nodes root reaches, children before parents (ascending refs), for
** passes that visit each once: ref[k] is the k-th, slot[r] is r's k or -1
** when root does not reach r. Both arrays hold root + 1. Returns the count. */
int cg_reachable(const cg_graph *g, cg_ref root, int *slot, cg_ref *ref);

/*
** Rebuilds `root` with each var v for which map[v] != CG_NONE replaced by
** the expression map[v] (which lives in the same graph), folding as it goes.
** Used to fix head/step/layer to constants, and to compose a mask with a
** layout's position -> coordinate expressions.
*/
cg_ref cg_subst(cg_graph *g, cg_ref root, const cg_ref map[CG_NVARS]);

/* Scalar evaluation of one node with all vars given; for tests and tools.
** Bulk evaluation lives in cg_eval.h. Iterative (graphs may be deeper than
** the C stack); 0 when out of memory. */
int64_t cg_eval1(const cg_graph *g, cg_ref r, const int64_t vars[CG_NVARS]);

/* Floor division and modulo with the IR's semantics. */
static inline int64_t cg_floordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return (int64_t)(0 - (uint64_t)a);  /* INT64_MIN / -1 traps in C */
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}
static inline int64_t cg_floormod(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

const char *cg_op_name(cg_op op);
const char *cg_var_name(cg_var v);

/*
** Canonical text: the nodes reachable from `roots`, numbered in a
** depth-first order that depends only on structure, one per line
** ("%3 = add %1 %2"). Appended to the growable buffer *buf (malloc'd).
** Returns 0, or -1 when out of memory.
*/
typedef struct cg_buf {
  char *s;
  size_t len, cap;
} cg_buf;
int cg_buf_printf(cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cg_buf_free(cg_buf *b);
int cg_dump(const cg_graph *g, const cg_ref *roots, int nroots,
            const char *const *root_names, cg_buf *buf);

uint64_t cg_hash_bytes(const void *p, size_t n);  /* FNV-1a 64 */

#endif
