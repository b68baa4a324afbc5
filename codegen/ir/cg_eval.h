/*
** Bulk evaluation of expressions over many token pairs.
**
** A mask is evaluated for one query against a vector of keys at a time.
** Each reachable node is placed by the vars it depends on:
**   C   no q or k var (literals; head, step and layer, fixed per bind)
**   Q   query vars only: one scalar per query
**   K   key vars only: one value per key, computed once per key set
**   QK  both: the only work left per (query, key) pair
** The program is compiled once into three phases (Q, K, QK) of vector
** instructions over slots; ascending ref order is a topological order, so
** compilation is one pass. A Q or K node read by a QK node is an
** "interface" value: the Q and K phases produce exactly those, and the QK
** phase consumes them. Callers precompute the interfaces of every token once,
** and may skip runs of tokens whose interfaces repeat (cg_blocks_runs.c).
**
** The same compiled phases drive interval evaluation (cg_interval.h).
**
** Arithmetic follows cg_expr.h: 64-bit, wrapping instead of overflowing,
** floor division and modulo, x/0 = x%0 = 0.
*/
#ifndef CG_EVAL_H
#define CG_EVAL_H

#include <stdint.h>

#include "cg_expr.h"

#define CG_CHUNK 128  /* keys per vector step */

/* Token coordinates, struct of arrays; token i sits at position i. */
typedef struct cg_coords {
  int64_t n;
  int32_t *t, *y, *x, *text, *idx;
} cg_coords;

int cg_coords_init(cg_coords *c, int64_t n);  /* 0, or -1 out of memory */
void cg_coords_free(cg_coords *c);

/* Inputs of the Q and K phases: coordinates and the layout position. */
enum { CG_IN_T, CG_IN_Y, CG_IN_X, CG_IN_TEXT, CG_IN_IDX, CG_IN_POS, CG_NIN };

typedef enum cg_side { CG_SIDE_C = 0, CG_SIDE_Q = 1, CG_SIDE_K = 2, CG_SIDE_QK = 3 } cg_side;

/*
** Where an operand lives while a phase runs:
**   IN    an input vector (coordinates in Q/K; key interfaces in QK)
**   CONST a C-side value, broadcast
**   QV    a query interface value, broadcast (QK phase only)
**   TMP   a vector the phase computes
*/
typedef enum cg_slot_kind { CG_SLOT_IN, CG_SLOT_CONST, CG_SLOT_QV, CG_SLOT_TMP } cg_slot_kind;

typedef struct cg_slot {
  uint8_t kind;
  int32_t idx;
} cg_slot;

#define CG_OP_COPY CG_NOPS  /* internal: d = a (a root that is not QK) */

typedef struct cg_inst {
  uint8_t op;          /* cg_op, or CG_OP_COPY */
  int32_t d, a, b, c;  /* slots; -1 where unused */
} cg_inst;

typedef struct cg_phase {
  int nins, nslots, ntmp, nout;
  cg_inst *ins;
  cg_slot *slots;
  int32_t *out;        /* slots whose values leave the phase */
} cg_phase;

typedef struct cg_prog {
  int ncval;
  int64_t *cval;       /* C-side values: literals now, the rest at bind */
  int nc;
  cg_inst *cins;       /* C-side computations, over cval indices */
  int32_t uni[3];      /* cval index of head, step, layer; -1 if unused */
  int32_t c01[2];      /* cval index of the literals 0 and 1 */
  cg_phase q, k, qk;
  int32_t root;        /* slot of the result in the QK phase */
  int maxslots, maxtmp;
  uint64_t gen;        /* counts binds, so scratch knows when to reload */
} cg_prog;

/* NULL when out of memory. The program copies what it needs from g. */
cg_prog *cg_prog_new(const cg_graph *g, cg_ref root);
void cg_prog_free(cg_prog *p);
/* Fixes head, step and layer; call before evaluating. */
void cg_prog_bind(cg_prog *p, int64_t head, int64_t step, int64_t layer);
static inline int cg_prog_nqv(const cg_prog *p) { return p->q.nout; }
static inline int cg_prog_nkv(const cg_prog *p) { return p->k.nout; }

/* Per-thread buffers of one bound program. */
typedef struct cg_scratch cg_scratch;
cg_scratch *cg_scratch_new(const cg_prog *p);
void cg_scratch_free(cg_scratch *s);

/*
** Interface values of tokens [p0, p0 + n) of c (positions p0.. as well):
** query side when key_side is 0. Value j of token p0 + i goes to
** out[j * ld + i].
*/
void cg_prog_side(const cg_prog *p, int key_side, const cg_coords *c, int64_t p0,
                  int64_t n, int64_t *out, int64_t ld, cg_scratch *s);

/* The inputs a side's phase reads: bit CG_IN_* set for each. */
unsigned cg_prog_inputs(const cg_prog *p, int key_side);

/*
** One query (interface values qv) against n keys, whose interface value j
** is kv[j * ldk + i]: the expression's value for each key into out[0..n).
*/
void cg_prog_row(const cg_prog *p, const int64_t *qv, const int64_t *kv, int64_t ldk,
                 int n, int64_t *out, cg_scratch *s);

/*
** n (query, key) pairs, one per lane: lane i's query interface j is
** qv[j * ldq + i] and its key interface j is kv[j * ldk + i]. Values into
** out[0..n). For evaluating many short runs of queries and keys at once.
*/
void cg_prog_pairs(const cg_prog *p, const int64_t *qv, int64_t ldq, const int64_t *kv,
                   int64_t ldk, int n, int64_t *out, cg_scratch *s);

/*
** The QK phase specialised to a region where some instructions are known:
** instruction i (i < 64) with bit i of `dec` set always yields bit i of
** `val` (0 or 1), as interval evaluation over a block pair can show. Those
** become constants, and what no longer reaches the result is dropped;
** qlive/klive have bit j set for the query/key interfaces j (< 64) still
** read. Interfaces from 64 on are always read.
*/
typedef struct cg_spec {
  cg_phase ph;
  int32_t root;
  uint64_t qlive, klive;
} cg_spec;

cg_spec *cg_spec_new(const cg_prog *p, uint64_t dec, uint64_t val);
void cg_spec_free(cg_spec *sp);
/* cg_prog_pairs through a specialised phase. */
void cg_spec_pairs(const cg_prog *p, const cg_spec *sp, const int64_t *qv, int64_t ldq,
                   const int64_t *kv, int64_t ldk, int n, int64_t *out, cg_scratch *s);
/* cg_prog_row through a specialised phase: qv[j] is read for the live
** query interfaces only. */
void cg_spec_row(const cg_prog *p, const cg_spec *sp, const int64_t *qv, const int64_t *kv,
                 int64_t ldk, int n, int64_t *out, cg_scratch *s);

/* One operation on scalars, with the IR's semantics. */
int64_t cg_apply(int op, int64_t a, int64_t b, int64_t c);

#endif
