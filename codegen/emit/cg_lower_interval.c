/*
** Interval arithmetic in LLVM IR, rule for rule the one of cg_interval.c.
** Each rule computes all its cases and selects: the code is straight-line
** (no divergence inside a warp), and when an operand is a constant, as
** divisors and moduli almost always are, LLVM folds the cases away. A
** division is never emitted with a divisor that could trap or overflow:
** the cases that would (x / 0, INT64_MIN / -1) are the ones the rules
** replace by a constant, so they divide by 1 instead.
*/
#include "cg_lower_interval.h"

#include <stdio.h>
#include <stdlib.h>

#include "cg_interval.h"  /* CG_BLK_* */

struct cg_ilower {
  const cg_graph *g;
  int n;
  cg_ref *ref;      /* reachable nodes, ascending = topological */
  int *slot;        /* ref -> index in ref[], -1 when unreached */
  cg_ivv *val;
};

#define B (e->b)

static LLVMValueRef K(cg_em *e, int64_t v) { return cg_i64(e, v); }
static cg_ivv IV(LLVMValueRef lo, LLVMValueRef hi) { return (cg_ivv){lo, hi}; }
static cg_ivv top(cg_em *e) { return IV(K(e, INT64_MIN), K(e, INT64_MAX)); }
static cg_ivv point(cg_em *e, int64_t v) { return IV(K(e, v), K(e, v)); }
static cg_ivv nothing(cg_em *e) { return IV(K(e, 1), K(e, 0)); }

static LLVMValueRef cmp(cg_em *e, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) { return CG_ICMP(e, p, a, b); }
static LLVMValueRef eqc(cg_em *e, LLVMValueRef a, int64_t c) { return cmp(e, LLVMIntEQ, a, K(e, c)); }
static LLVMValueRef smin(cg_em *e, LLVMValueRef a, LLVMValueRef b) { return CG_SEL(e, cmp(e, LLVMIntSLT, a, b), a, b); }
static LLVMValueRef smax(cg_em *e, LLVMValueRef a, LLVMValueRef b) { return CG_SEL(e, cmp(e, LLVMIntSGT, a, b), a, b); }
static LLVMValueRef b2i(cg_em *e, LLVMValueRef c) { return LLVMBuildZExt(B, c, e->t_i64, ""); }
static LLVMValueRef not1(cg_em *e, LLVMValueRef c) { return CG_XOR(e, c, cg_true(e)); }

static cg_ivv sel(cg_em *e, LLVMValueRef c, cg_ivv a, cg_ivv b) {
  return IV(CG_SEL(e, c, a.lo, b.lo), CG_SEL(e, c, a.hi, b.hi));
}

static LLVMValueRef min4(cg_em *e, LLVMValueRef p[4]) { return smin(e, smin(e, p[0], p[1]), smin(e, p[2], p[3])); }
static LLVMValueRef max4(cg_em *e, LLVMValueRef p[4]) { return smax(e, smax(e, p[0], p[1]), smax(e, p[2], p[3])); }

/* a op b with the overflow flag ORed into *ovf. */
static LLVMValueRef checked(cg_em *e, const char *op, LLVMValueRef a, LLVMValueRef b, LLVMValueRef *ovf) {
  char name[48];
  snprintf(name, sizeof name, "llvm.%s.with.overflow", op);
  LLVMValueRef args[2] = {a, b};
  LLVMValueRef r = cg_intr(e, name, &e->t_i64, 1, args, 2);
  LLVMValueRef o = cg_field(e, r, 1);
  *ovf = *ovf ? CG_OR(e, *ovf, o) : o;
  return cg_field(e, r, 0);
}

/* The hull of a and b; an interval with lo > hi is empty. */
static cg_ivv hull(cg_em *e, cg_ivv a, cg_ivv b) {
  cg_ivv r = IV(smin(e, a.lo, b.lo), smax(e, a.hi, b.hi));
  r = sel(e, cmp(e, LLVMIntSGT, b.lo, b.hi), a, r);
  return sel(e, cmp(e, LLVMIntSGT, a.lo, a.hi), b, r);
}

/* ------------------------------------------------------------ arithmetic */

static cg_ivv iv_add(cg_em *e, cg_ivv a, cg_ivv b) {
  LLVMValueRef o = NULL;
  cg_ivv r = IV(checked(e, "sadd", a.lo, b.lo, &o), checked(e, "sadd", a.hi, b.hi, &o));
  return sel(e, o, top(e), r);
}

static cg_ivv iv_sub(cg_em *e, cg_ivv a, cg_ivv b) {
  LLVMValueRef o = NULL;
  cg_ivv r = IV(checked(e, "ssub", a.lo, b.hi, &o), checked(e, "ssub", a.hi, b.lo, &o));
  return sel(e, o, top(e), r);
}

static cg_ivv iv_mul(cg_em *e, cg_ivv a, cg_ivv b) {
  LLVMValueRef o = NULL;
  LLVMValueRef p[4] = {checked(e, "smul", a.lo, b.lo, &o), checked(e, "smul", a.lo, b.hi, &o),
                       checked(e, "smul", a.hi, b.lo, &o), checked(e, "smul", a.hi, b.hi, &o)};
  return sel(e, o, top(e), IV(min4(e, p), max4(e, p)));
}

static LLVMValueRef neg(cg_em *e, LLVMValueRef x) { return CG_SUB(e, K(e, 0), x); }

static cg_ivv iv_neg(cg_em *e, cg_ivv a) {
  return sel(e, eqc(e, a.lo, INT64_MIN), top(e), IV(neg(e, a.hi), neg(e, a.lo)));
}

static cg_ivv iv_abs(cg_em *e, cg_ivv a) {
  cg_ivv r = IV(K(e, 0), smax(e, neg(e, a.lo), a.hi));
  r = sel(e, cmp(e, LLVMIntSLE, a.hi, K(e, 0)), IV(neg(e, a.hi), neg(e, a.lo)), r);
  r = sel(e, eqc(e, a.lo, INT64_MIN), top(e), r);
  return sel(e, cmp(e, LLVMIntSGE, a.lo, K(e, 0)), a, r);
}

/* Floor division and modulo; d is never 0 and never -1 under INT64_MIN
** here (see the file comment). */
static LLVMValueRef safe_div(cg_em *e, LLVMValueRef a, LLVMValueRef d) {
  LLVMValueRef bad = CG_OR(e, eqc(e, d, 0), CG_AND(e, eqc(e, d, -1), eqc(e, a, INT64_MIN)));
  return CG_SEL(e, bad, K(e, 1), d);
}

static LLVMValueRef floordiv(cg_em *e, LLVMValueRef a, LLVMValueRef d) {
  d = safe_div(e, a, d);
  LLVMValueRef q = LLVMBuildSDiv(B, a, d, ""), r = LLVMBuildSRem(B, a, d, "");
  LLVMValueRef fix = CG_AND(e, cmp(e, LLVMIntNE, r, K(e, 0)), cmp(e, LLVMIntSLT, CG_XOR(e, a, d), K(e, 0)));
  return CG_SUB(e, q, b2i(e, fix));
}

static LLVMValueRef floormod(cg_em *e, LLVMValueRef a, LLVMValueRef d) {
  d = safe_div(e, a, d);
  LLVMValueRef r = LLVMBuildSRem(B, a, d, "");
  LLVMValueRef fix = CG_AND(e, cmp(e, LLVMIntNE, r, K(e, 0)), cmp(e, LLVMIntSLT, CG_XOR(e, r, d), K(e, 0)));
  return CG_SEL(e, fix, CG_ADD(e, r, d), r);
}

static cg_ivv div_corners(cg_em *e, cg_ivv a, LLVMValueRef d1, LLVMValueRef d2) {
  LLVMValueRef t = CG_AND(e, CG_OR(e, eqc(e, d1, -1), eqc(e, d2, -1)), eqc(e, a.lo, INT64_MIN));
  LLVMValueRef p[4] = {floordiv(e, a.lo, d1), floordiv(e, a.lo, d2), floordiv(e, a.hi, d1),
                       floordiv(e, a.hi, d2)};
  return sel(e, t, top(e), IV(min4(e, p), max4(e, p)));
}

static LLVMValueRef spans0(cg_em *e, cg_ivv b) {
  return CG_AND(e, cmp(e, LLVMIntSLE, b.lo, K(e, 0)), cmp(e, LLVMIntSGE, b.hi, K(e, 0)));
}

static cg_ivv iv_div(cg_em *e, cg_ivv a, cg_ivv b) {
  cg_ivv r = sel(e, spans0(e, b), point(e, 0), nothing(e));
  cg_ivv pos = hull(e, r, div_corners(e, a, smax(e, b.lo, K(e, 1)), b.hi));
  r = sel(e, cmp(e, LLVMIntSGT, b.hi, K(e, 0)), pos, r);
  cg_ivv ng = hull(e, r, div_corners(e, a, b.lo, smin(e, b.hi, K(e, -1))));
  return sel(e, cmp(e, LLVMIntSLT, b.lo, K(e, 0)), ng, r);
}

static cg_ivv mod_const(cg_em *e, cg_ivv a, LLVMValueRef c) {
  LLVMValueRef small = CG_OR(e, CG_OR(e, eqc(e, c, 0), eqc(e, c, 1)), eqc(e, c, -1));
  LLVMValueRef cs = CG_SEL(e, small, K(e, 2), c);
  LLVMValueRef same = cmp(e, LLVMIntEQ, floordiv(e, a.lo, cs), floordiv(e, a.hi, cs));
  cg_ivv within = IV(floormod(e, a.lo, cs), floormod(e, a.hi, cs));
  cg_ivv wide = sel(e, cmp(e, LLVMIntSGT, c, K(e, 0)), IV(K(e, 0), CG_SUB(e, c, K(e, 1))),
                    IV(CG_ADD(e, c, K(e, 1)), K(e, 0)));
  return sel(e, small, point(e, 0), sel(e, same, within, wide));
}

static cg_ivv mod_pos(cg_em *e, cg_ivv a, LLVMValueRef p1, LLVMValueRef p2) {
  LLVMValueRef nonneg = cmp(e, LLVMIntSGE, a.lo, K(e, 0)), m = CG_SUB(e, p2, K(e, 1));
  cg_ivv r = sel(e, nonneg, IV(K(e, 0), smin(e, a.hi, m)), IV(K(e, 0), m));
  return sel(e, CG_AND(e, nonneg, cmp(e, LLVMIntSLT, a.hi, p1)), a, r);
}

static cg_ivv mod_neg(cg_em *e, cg_ivv a, LLVMValueRef n1, LLVMValueRef n2) {
  LLVMValueRef nonpos = cmp(e, LLVMIntSLE, a.hi, K(e, 0)), m = CG_ADD(e, n1, K(e, 1));
  cg_ivv r = sel(e, nonpos, IV(smax(e, a.lo, m), K(e, 0)), IV(m, K(e, 0)));
  return sel(e, CG_AND(e, nonpos, cmp(e, LLVMIntSGT, a.lo, n2)), a, r);
}

static cg_ivv iv_mod(cg_em *e, cg_ivv a, cg_ivv b) {
  cg_ivv r = sel(e, spans0(e, b), point(e, 0), nothing(e));
  cg_ivv pos = hull(e, r, mod_pos(e, a, smax(e, b.lo, K(e, 1)), b.hi));
  r = sel(e, cmp(e, LLVMIntSGT, b.hi, K(e, 0)), pos, r);
  cg_ivv ng = hull(e, r, mod_neg(e, a, b.lo, smin(e, b.hi, K(e, -1))));
  r = sel(e, cmp(e, LLVMIntSLT, b.lo, K(e, 0)), ng, r);
  return sel(e, cmp(e, LLVMIntEQ, b.lo, b.hi), mod_const(e, a, b.lo), r);
}

/* -------------------------------------------------------------- booleans */

/* [1, 1] when one, [0, 0] when zero, else [0, 1] (never both). */
static cg_ivv decided(cg_em *e, LLVMValueRef one, LLVMValueRef zero) {
  return IV(b2i(e, one), b2i(e, not1(e, zero)));
}

static cg_ivv truth(cg_em *e, cg_ivv a) {
  LLVMValueRef zero = CG_AND(e, eqc(e, a.lo, 0), eqc(e, a.hi, 0));
  LLVMValueRef one = CG_OR(e, cmp(e, LLVMIntSGT, a.lo, K(e, 0)), cmp(e, LLVMIntSLT, a.hi, K(e, 0)));
  return decided(e, one, zero);
}

static cg_ivv iv_eq(cg_em *e, cg_ivv a, cg_ivv b) {
  LLVMValueRef one = CG_AND(e, CG_AND(e, cmp(e, LLVMIntEQ, a.lo, a.hi), cmp(e, LLVMIntEQ, b.lo, b.hi)),
                            cmp(e, LLVMIntEQ, a.lo, b.lo));
  LLVMValueRef zero = CG_OR(e, cmp(e, LLVMIntSLT, a.hi, b.lo), cmp(e, LLVMIntSLT, b.hi, a.lo));
  return decided(e, one, zero);
}

static cg_ivv iv_not(cg_em *e, cg_ivv a) {
  cg_ivv t = truth(e, a);
  return IV(CG_SUB(e, K(e, 1), t.hi), CG_SUB(e, K(e, 1), t.lo));
}

static cg_ivv iv_logic(cg_em *e, int or, cg_ivv a, cg_ivv b) {
  cg_ivv x = truth(e, a), y = truth(e, b);
  return or ? IV(CG_OR(e, x.lo, y.lo), CG_OR(e, x.hi, y.hi)) : IV(CG_AND(e, x.lo, y.lo), CG_AND(e, x.hi, y.hi));
}

static cg_ivv iv_select(cg_em *e, cg_ivv c, cg_ivv a, cg_ivv b) {
  cg_ivv t = truth(e, c);
  cg_ivv r = sel(e, eqc(e, t.hi, 0), b, hull(e, a, b));
  return sel(e, eqc(e, t.lo, 1), a, r);
}

/* --------------------------------------------------------------- nodes */

static cg_ivv apply(cg_em *e, int op, cg_ivv a, cg_ivv b, cg_ivv c) {
  switch (op) {
  case CG_ADD: return iv_add(e, a, b);
  case CG_SUB: return iv_sub(e, a, b);
  case CG_MUL: return iv_mul(e, a, b);
  case CG_DIV: return iv_div(e, a, b);
  case CG_MOD: return iv_mod(e, a, b);
  case CG_MIN: return IV(smin(e, a.lo, b.lo), smin(e, a.hi, b.hi));
  case CG_MAX: return IV(smax(e, a.lo, b.lo), smax(e, a.hi, b.hi));
  case CG_NEG: return iv_neg(e, a);
  case CG_ABS: return iv_abs(e, a);
  case CG_EQ: return iv_eq(e, a, b);
  case CG_NE: return iv_not(e, iv_eq(e, a, b));
  case CG_LT: return decided(e, cmp(e, LLVMIntSLT, a.hi, b.lo), cmp(e, LLVMIntSGE, a.lo, b.hi));
  case CG_LE: return decided(e, cmp(e, LLVMIntSLE, a.hi, b.lo), cmp(e, LLVMIntSGT, a.lo, b.hi));
  case CG_AND: return iv_logic(e, 0, a, b);
  case CG_OR: return iv_logic(e, 1, a, b);
  case CG_NOT: return iv_not(e, a);
  case CG_SELECT: return iv_select(e, a, b, c);
  default: return top(e);
  }
}

cg_ilower *cg_ilower_new(const cg_graph *g, cg_ref root, cg_err *e) {
  cg_ilower *l = calloc(1, sizeof *l);
  int cap = root + 1;
  if (l) {
    l->g = g;
    l->slot = malloc(sizeof(int) * (size_t)cap);
    l->ref = malloc(sizeof(cg_ref) * (size_t)cap);
    l->val = malloc(sizeof(cg_ivv) * (size_t)cap);
  }
  if (!l || !l->slot || !l->ref || !l->val) {
    cg_ilower_free(l);
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory lowering an interval expression");
    return NULL;
  }
  l->n = cg_reachable(g, root, l->slot, l->ref);
  return l;
}

void cg_ilower_free(cg_ilower *l) {
  if (!l) return;
  free(l->slot);
  free(l->ref);
  free(l->val);
  free(l);
}

cg_ivv cg_ilower_emit(cg_ilower *l, cg_em *e, const cg_ivv vars[CG_NVARS]) {
  for (int k = 0; k < l->n; k++) {
    const cg_node *n = cg_node_at(l->g, l->ref[k]);
    cg_ivv a = n->a != CG_NONE ? l->val[l->slot[n->a]] : top(e);
    cg_ivv b = n->b != CG_NONE ? l->val[l->slot[n->b]] : a;
    cg_ivv c = n->c != CG_NONE ? l->val[l->slot[n->c]] : a;
    if (n->op == CG_CONST) {
      l->val[k] = point(e, n->imm);
    } else if (n->op == CG_VAR) {
      l->val[k] = vars[n->imm];
      if (!vars[n->imm].lo) {
        if (!e->bad) cg_fail(&e->err, SIEVE_ERR_CODEGEN, "interval kernel: no range for variable %s",
                             cg_var_name((cg_var)n->imm));
        e->bad = 1;
        l->val[k] = top(e);
      }
    } else {
      l->val[k] = apply(e, n->op, a, b, c);
    }
  }
  return l->val[l->n - 1];
}

LLVMValueRef cg_ivv_class(cg_em *e, cg_ivv r) {
  cg_ivv t = truth(e, r);
  LLVMValueRef c = CG_ADD(e, t.lo, t.hi);  /* [0,0] -> 0, [0,1] -> 1, [1,1] -> 2 */
  return LLVMBuildTrunc(B, c, e->t_i32, "");
}

cg_ivv cg_ivv_point(cg_em *e, LLVMValueRef v) {
  if (LLVMTypeOf(v) != e->t_i64) v = CG_SEXT64(e, v);
  return IV(v, v);
}
