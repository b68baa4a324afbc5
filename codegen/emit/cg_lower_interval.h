/*
** Interval evaluation of an expression, lowered to LLVM IR: the GPU twin of
** cg_interval.c. Every node becomes a pair of i64 values (lo, hi) computed
** by exactly the rules the CPU uses (64-bit bounds, a bound that would
** overflow widens the interval to the whole int64 range, floor division
** split at a divisor range that spans 0, the same comparison and boolean
** rules), so a block pair the CPU's interval test decides is decided the
** same way on the GPU. The table builder (cg_tablegen.h) relies on that:
** its tests compare the two pair by pair.
*/
#ifndef CG_LOWER_INTERVAL_H
#define CG_LOWER_INTERVAL_H

#include "cg_emit.h"
#include "cg_expr.h"

/* An interval as two i64 values. */
typedef struct cg_ivv {
  LLVMValueRef lo, hi;
} cg_ivv;

typedef struct cg_ilower cg_ilower;

cg_ilower *cg_ilower_new(const cg_graph *g, cg_ref root, cg_err *e);
void cg_ilower_free(cg_ilower *l);

/* The root's interval with each var v the root uses bound to vars[v]. */
cg_ivv cg_ilower_emit(cg_ilower *l, cg_em *e, const cg_ivv vars[CG_NVARS]);

/* CG_BLK_EMPTY, CG_BLK_UNDECIDED or CG_BLK_FULL (i32) for the interval of
** a boolean, as cg_interval.c classifies a block pair. */
LLVMValueRef cg_ivv_class(cg_em *e, cg_ivv r);

/* The point interval [v, v] of an i32 or i64 value. */
cg_ivv cg_ivv_point(cg_em *e, LLVMValueRef v);

#endif
