/*
** Expression lowering with interval facts. Bounds saturate at +-2^62 so
** interval arithmetic never overflows; such a bound just means "unknown".
**
** One integer semantics with the CPU (cg_expr.h): a node is computed in
** i32 when its interval and its integer operands' fit in 32 bits, else in
** i64, where every value whose interval stays inside +-2^62 is exact, as it
** is in the CPU's 64-bit evaluation. An interval that reaches +-2^62 is a
** value neither side can promise, and the expression is refused.
*/
#include "cg_lower.h"

#include <stdlib.h>

#define BIG ((int64_t)1 << 62)

struct cg_lower {
  const cg_graph *g;
  int n;            /* reachable nodes */
  cg_ref *ref;      /* ascending = topological */
  int *slot;        /* ref -> index in ref[], -1 when unreached; sized root + 1 */
  cg_range *rg;     /* per reachable node */
  uint32_t *uses;   /* per reachable node: the vars under it */
  uint8_t *wide;    /* per reachable node: computed in i64 */
  LLVMValueRef *val;
};

static int fits32(cg_range r) { return r.lo >= INT32_MIN && r.hi <= INT32_MAX; }

static int64_t sat(int64_t v) { return v > BIG ? BIG : v < -BIG ? -BIG : v; }
static int64_t mn(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t mx(int64_t a, int64_t b) { return a > b ? a : b; }
/* Saturating, since bounds already at +-BIG (cg_simplify ranges every
** node, the ones the lowering will refuse too) must not wrap. */
static int64_t sadd(int64_t a, int64_t b) {
  __int128 s = (__int128)a + b;
  return s > BIG ? BIG : s < -BIG ? -BIG : (int64_t)s;
}
static int64_t smul(int64_t a, int64_t b) {
  __int128 p = (__int128)a * b;
  return p > BIG ? BIG : p < -BIG ? -BIG : (int64_t)p;
}
static int point(cg_range r) { return r.lo == r.hi; }
static cg_range R(int64_t lo, int64_t hi) { return (cg_range){sat(lo), sat(hi)}; }

static cg_range range_div(cg_range a, cg_range b) {
  if (b.lo <= 0 && b.hi >= 0) {
    int64_t m = mx(llabs(a.lo), llabs(a.hi));
    return R(-m, m);
  }
  int64_t c[4] = {cg_floordiv(a.lo, b.lo), cg_floordiv(a.lo, b.hi), cg_floordiv(a.hi, b.lo),
                  cg_floordiv(a.hi, b.hi)};
  return R(mn(mn(c[0], c[1]), mn(c[2], c[3])), mx(mx(c[0], c[1]), mx(c[2], c[3])));
}

static cg_range range_mod(cg_range a, cg_range b) {
  if (b.lo > 0) {
    if (a.lo >= 0 && a.hi < b.lo) return a;
    return R(0, b.hi - 1);
  }
  if (b.hi < 0) return R(b.lo + 1, 0);
  int64_t m = mx(mx(llabs(b.lo), llabs(b.hi)) - 1, 0);  /* x % 0 = 0 */
  return R(-m, m);
}

static cg_range range_cmp(cg_op op, cg_range a, cg_range b) {
  switch (op) {
  case CG_LT:
    if (a.hi < b.lo) return R(1, 1);
    if (a.lo >= b.hi) return R(0, 0);
    break;
  case CG_LE:
    if (a.hi <= b.lo) return R(1, 1);
    if (a.lo > b.hi) return R(0, 0);
    break;
  case CG_EQ:
    if (point(a) && point(b) && a.lo == b.lo) return R(1, 1);
    if (a.hi < b.lo || b.hi < a.lo) return R(0, 0);
    break;
  case CG_NE:
    if (point(a) && point(b) && a.lo == b.lo) return R(0, 0);
    if (a.hi < b.lo || b.hi < a.lo) return R(1, 1);
    break;
  default: break;
  }
  return R(0, 1);
}

static cg_range node_range(cg_lower *l, const cg_node *n, const cg_range vr[CG_NVARS]) {
  cg_range a = n->a != CG_NONE ? l->rg[l->slot[n->a]] : R(0, 0);
  cg_range b = n->b != CG_NONE ? l->rg[l->slot[n->b]] : R(0, 0);
  cg_range c = n->c != CG_NONE ? l->rg[l->slot[n->c]] : R(0, 0);
  return cg_node_range(n, a, b, c, vr);
}

cg_range cg_node_range(const cg_node *n, cg_range a, cg_range b, cg_range c, const cg_range vr[CG_NVARS]) {
  switch ((cg_op)n->op) {
  case CG_CONST: return R(n->imm, n->imm);
  case CG_VAR: return vr[n->imm];
  case CG_ADD: return R(sadd(a.lo, b.lo), sadd(a.hi, b.hi));
  case CG_SUB: return R(sadd(a.lo, -b.hi), sadd(a.hi, -b.lo));
  case CG_MUL: {
    int64_t p[4] = {smul(a.lo, b.lo), smul(a.lo, b.hi), smul(a.hi, b.lo), smul(a.hi, b.hi)};
    return R(mn(mn(p[0], p[1]), mn(p[2], p[3])), mx(mx(p[0], p[1]), mx(p[2], p[3])));
  }
  case CG_DIV: return range_div(a, b);
  case CG_MOD: return range_mod(a, b);
  case CG_MIN: return R(mn(a.lo, b.lo), mn(a.hi, b.hi));
  case CG_MAX: return R(mx(a.lo, b.lo), mx(a.hi, b.hi));
  case CG_NEG: return R(-a.hi, -a.lo);
  case CG_ABS:
    if (a.lo >= 0) return a;
    if (a.hi <= 0) return R(-a.hi, -a.lo);
    return R(0, mx(-a.lo, a.hi));
  case CG_EQ: case CG_NE: case CG_LT: case CG_LE: return range_cmp(n->op, a, b);
  case CG_AND:
    if (a.hi == 0 || b.hi == 0) return R(0, 0);
    if (a.lo == 1 && b.lo == 1) return R(1, 1);
    return R(0, 1);
  case CG_OR:
    if (a.lo == 1 || b.lo == 1) return R(1, 1);
    if (a.hi == 0 && b.hi == 0) return R(0, 0);
    return R(0, 1);
  case CG_NOT: return R(1 - a.hi, 1 - a.lo);
  case CG_SELECT:
    if (a.lo == 1) return b;
    if (a.hi == 0) return c;
    return R(mn(b.lo, c.lo), mx(b.hi, c.hi));
  default: return R(-BIG, BIG);
  }
}

cg_lower *cg_lower_new(const cg_graph *g, cg_ref root, const cg_range ranges[CG_NVARS], cg_err *e) {
  cg_lower *l = calloc(1, sizeof *l);
  int cap = root + 1;
  if (l) {
    l->g = g;
    l->slot = malloc(sizeof(int) * (size_t)cap);
    l->ref = malloc(sizeof(cg_ref) * (size_t)cap);
  }
  if (!l || !l->slot || !l->ref) {
    cg_lower_free(l);
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory lowering an expression");
    return NULL;
  }
  l->n = cg_reachable(g, root, l->slot, l->ref);
  /* The loader bounds what scripts hand over (cg_pattern.h); this bounds
  ** what reaches LLVM whatever built the graph, layouts composed in. */
  if (l->n > CG_MAX_LOWER_NODES) {
    cg_fail(e, SIEVE_ERR_LIMIT, "an expression of %d operations is too large to compile (at most %d)", l->n,
            CG_MAX_LOWER_NODES);
    cg_lower_free(l);
    return NULL;
  }
  l->rg = malloc(sizeof(cg_range) * (size_t)l->n);
  l->val = malloc(sizeof(LLVMValueRef) * (size_t)l->n);
  l->uses = calloc((size_t)l->n, sizeof(uint32_t));
  l->wide = calloc((size_t)l->n, 1);
  if (!l->rg || !l->val || !l->uses || !l->wide) {
    cg_lower_free(l);
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory lowering an expression");
    return NULL;
  }
  for (int k = 0; k < l->n; k++) {
    const cg_node *n = cg_node_at(g, l->ref[k]);
    if (n->op == CG_VAR && ranges[n->imm].lo > ranges[n->imm].hi) {
      cg_fail(e, SIEVE_ERR_CODEGEN, "the kernel cannot evaluate variable %s here",
              cg_var_name((cg_var)n->imm));
      cg_lower_free(l);
      return NULL;
    }
    l->rg[k] = node_range(l, n, ranges);
    if (n->type == CG_INT && (l->rg[k].lo <= -BIG || l->rg[k].hi >= BIG)) {
      cg_fail(e, SIEVE_ERR_UNSUPPORTED, "the mask's %s can leave the 63-bit range on this shape, where kernels "
              "and CPU tables could disagree", cg_op_name((cg_op)n->op));
      cg_lower_free(l);
      return NULL;
    }
    /* i64 where the node or an integer operand may not fit i32. */
    int w = n->type == CG_INT && !fits32(l->rg[k]);
    const cg_ref ops[3] = {n->a, n->b, n->c};
    for (int i = 0; i < 3; i++)
      if (ops[i] != CG_NONE && cg_type_of(g, ops[i]) == CG_INT && !fits32(l->rg[l->slot[ops[i]]])) w = 1;
    /* INT32_MIN / -1 overflows i32 (LLVM makes it poison); in i64 it is exact. */
    if ((n->op == CG_DIV || n->op == CG_MOD) && l->rg[l->slot[n->a]].lo <= INT32_MIN &&
        l->rg[l->slot[n->b]].lo <= -1 && l->rg[l->slot[n->b]].hi >= -1)
      w = 1;
    l->wide[k] = (uint8_t)w;
    l->uses[k] = n->op == CG_VAR ? 1u << n->imm : 0;
    if (n->a != CG_NONE) l->uses[k] |= l->uses[l->slot[n->a]];
    if (n->b != CG_NONE) l->uses[k] |= l->uses[l->slot[n->b]];
    if (n->c != CG_NONE) l->uses[k] |= l->uses[l->slot[n->c]];
  }
  if (cg_type_of(g, root) == CG_INT && !fits32(l->rg[l->n - 1])) {
    cg_fail(e, SIEVE_ERR_UNSUPPORTED, "an integer the kernel computes (an index or position) may not fit 32 bits");
    cg_lower_free(l);
    return NULL;
  }
  return l;
}

void cg_lower_free(cg_lower *l) {
  if (!l) return;
  free(l->slot);
  free(l->ref);
  free(l->rg);
  free(l->val);
  free(l->uses);
  free(l->wide);
  free(l);
}

cg_range cg_lower_range(const cg_lower *l) { return l->rg[l->n - 1]; }

/* ------------------------------------------------------------- emission */

/* An operand in the type t a node computes in (i32 or i64): booleans
** zero-extend, i32 sign-extends to i64; an i64 operand of an i32 node fits
** (else the node would be wide) and is truncated. */
static LLVMValueRef as_type(cg_em *e, LLVMValueRef v, LLVMTypeRef t) {
  LLVMTypeRef vt = LLVMTypeOf(v);
  if (vt == t) return v;
  if (vt == e->t_i1) return LLVMBuildZExt(e->b, v, t, "");
  if (t == e->t_i64) return LLVMBuildSExt(e->b, v, t, "");
  return LLVMBuildTrunc(e->b, v, t, "");
}
static LLVMValueRef as_bool(cg_em *e, LLVMValueRef v) {
  if (LLVMTypeOf(v) == e->t_i1) return v;
  return CG_ICMP(e, LLVMIntNE, v, LLVMTypeOf(v) == e->t_i64 ? cg_i64(e, 0) : cg_i32(e, 0));
}

/* floor(a / b) and floor-mod, b != 0 known or made so by the caller; z is
** zero of the operands' type. */
static LLVMValueRef floor_divmod(cg_em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef z, int mod) {
  LLVMValueRef q = LLVMBuildSDiv(e->b, a, b, ""), r = LLVMBuildSRem(e->b, a, b, "");
  LLVMValueRef fix = CG_AND(e, CG_ICMP(e, LLVMIntNE, r, z),
                            CG_ICMP(e, LLVMIntSLT, CG_XOR(e, r, b), z));
  if (mod) return CG_SEL(e, fix, CG_ADD(e, r, b), r);
  return CG_SUB(e, q, LLVMBuildZExt(e->b, fix, LLVMTypeOf(a), ""));
}

/*
** A possibly negative dividend over a positive constant c: shifted by k*c
** into the unsigned range, floor(a / c) = (a + k*c) / c - k and the floor
** modulo is (a + k*c) % c, both unsigned, which LLVM turns into a
** multiply-high. Layout expressions take this path: positions minus the
** text length go negative, on the text side of a select.
*/
static LLVMValueRef shifted_divmod(cg_em *e, LLVMValueRef a, int64_t c, cg_range ra, int mod) {
  int64_t k = (-ra.lo + c - 1) / c;
  LLVMValueRef s = CG_ADD(e, a, cg_i32(e, k * c));
  if (mod) return CG_UREM(e, s, cg_i32(e, c));
  return CG_SUB(e, CG_UDIV(e, s, cg_i32(e, c)), cg_i32(e, k));
}

static LLVMValueRef emit_divmod(cg_em *e, LLVMValueRef a, LLVMValueRef b, cg_range ra, cg_range rb, int wide,
                                int mod) {
  LLVMValueRef z = wide ? cg_i64(e, 0) : cg_i32(e, 0);
  if (rb.lo > 0 && ra.lo >= 0) return mod ? CG_UREM(e, a, b) : CG_UDIV(e, a, b);
  if (!wide && point(rb) && rb.lo > 0 && ra.lo > INT32_MIN && ra.hi <= INT32_MAX &&
      ra.hi + (-ra.lo + rb.lo - 1) / rb.lo * rb.lo <= (int64_t)UINT32_MAX)
    return shifted_divmod(e, a, rb.lo, ra, mod);
  if (rb.lo > 0 || rb.hi < 0) return floor_divmod(e, a, b, z, mod);
  LLVMValueRef zero = CG_ICMP(e, LLVMIntEQ, b, z);
  LLVMValueRef r = floor_divmod(e, a, CG_SEL(e, zero, wide ? cg_i64(e, 1) : cg_i32(e, 1), b), z, mod);
  return CG_SEL(e, zero, z, r);
}

/* The node in its computing type t (i32, or i64 when wide). */
static LLVMValueRef emit_op(cg_lower *l, cg_em *e, const cg_node *n, int k, LLVMValueRef const vars[CG_NVARS]) {
  int wide = l->wide[k];
  LLVMTypeRef t = wide ? e->t_i64 : e->t_i32;
  LLVMValueRef z = wide ? cg_i64(e, 0) : cg_i32(e, 0);
  LLVMValueRef a = n->a != CG_NONE ? l->val[l->slot[n->a]] : NULL;
  LLVMValueRef b = n->b != CG_NONE ? l->val[l->slot[n->b]] : NULL;
  LLVMValueRef c = n->c != CG_NONE ? l->val[l->slot[n->c]] : NULL;
  cg_range rk = l->rg[k];
  cg_range ra = n->a != CG_NONE ? l->rg[l->slot[n->a]] : rk;
  cg_range rb = n->b != CG_NONE ? l->rg[l->slot[n->b]] : rk;
  switch ((cg_op)n->op) {
  case CG_VAR: return vars[n->imm];
  case CG_ADD: return CG_ADD(e, as_type(e, a, t), as_type(e, b, t));
  case CG_SUB: return CG_SUB(e, as_type(e, a, t), as_type(e, b, t));
  case CG_MUL: return CG_MUL(e, as_type(e, a, t), as_type(e, b, t));
  case CG_DIV: return emit_divmod(e, as_type(e, a, t), as_type(e, b, t), ra, rb, wide, 0);
  case CG_MOD: return emit_divmod(e, as_type(e, a, t), as_type(e, b, t), ra, rb, wide, 1);
  case CG_MIN: case CG_MAX: {
    a = as_type(e, a, t);
    b = as_type(e, b, t);
    LLVMValueRef lt = CG_ICMP(e, LLVMIntSLT, a, b);
    return n->op == CG_MIN ? CG_SEL(e, lt, a, b) : CG_SEL(e, lt, b, a);
  }
  case CG_NEG: return CG_SUB(e, z, as_type(e, a, t));
  case CG_ABS: {
    a = as_type(e, a, t);
    return CG_SEL(e, CG_ICMP(e, LLVMIntSLT, a, z), CG_SUB(e, z, a), a);
  }
  case CG_EQ: return CG_ICMP(e, LLVMIntEQ, as_type(e, a, t), as_type(e, b, t));
  case CG_NE: return CG_ICMP(e, LLVMIntNE, as_type(e, a, t), as_type(e, b, t));
  case CG_LT: return CG_ICMP(e, LLVMIntSLT, as_type(e, a, t), as_type(e, b, t));
  case CG_LE: return CG_ICMP(e, LLVMIntSLE, as_type(e, a, t), as_type(e, b, t));
  case CG_AND: return CG_AND(e, as_bool(e, a), as_bool(e, b));
  case CG_OR: return CG_OR(e, as_bool(e, a), as_bool(e, b));
  case CG_NOT: return CG_XOR(e, as_bool(e, a), cg_true(e));
  case CG_SELECT:
    if (n->type == CG_BOOL) return CG_SEL(e, as_bool(e, a), as_bool(e, b), as_bool(e, c));
    return CG_SEL(e, as_bool(e, a), as_type(e, b, t), as_type(e, c, t));
  default: return z;
  }
}

/* Integer nodes are kept in i32 where their own interval fits, whatever
** they were computed in; in i64 otherwise. */
static LLVMValueRef emit_node(cg_lower *l, cg_em *e, const cg_node *n, int k, LLVMValueRef const vars[CG_NVARS]) {
  cg_range rk = l->rg[k];
  if (point(rk)) {
    if (n->type == CG_BOOL) return LLVMConstInt(e->t_i1, rk.lo != 0, 0);
    return fits32(rk) ? cg_i32(e, rk.lo) : cg_i64(e, rk.lo);
  }
  LLVMValueRef v = emit_op(l, e, n, k, vars);
  if (n->type == CG_INT && l->wide[k] && fits32(rk)) v = LLVMBuildTrunc(e->b, v, e->t_i32, "");
  return v;
}

LLVMValueRef cg_lower_emit(cg_lower *l, cg_em *e, LLVMValueRef const vars[CG_NVARS]) {
  return cg_lower_join(l, e, vars, NULL, NULL);
}

int cg_lower_size(const cg_lower *l) { return l->n; }

void cg_lower_part(cg_lower *l, cg_em *e, LLVMValueRef const vars[CG_NVARS], uint32_t only,
                   const LLVMValueRef *base, LLVMValueRef *memo) {
  for (int k = 0; k < l->n; k++)
    memo[k] = base && base[k] ? (l->val[k] = base[k])
              : l->uses[k] & ~only ? NULL : (l->val[k] = emit_node(l, e, cg_node_at(l->g, l->ref[k]), k, vars));
}

int64_t cg_lower_cost(const cg_lower *l, uint32_t uniform, int rows, int cols, int pairs) {
  int64_t c = 0;
  for (int k = 0; k < l->n; k++) {
    uint32_t u = l->uses[k] & ~uniform;
    if (point(l->rg[k]) || cg_node_at(l->g, l->ref[k])->op == CG_VAR) continue;
    c += !u ? 1 : !(u & ~(1u << CG_V_QPOS)) ? rows : !(u & ~(1u << CG_V_KPOS)) ? cols : pairs;
  }
  return c;
}

void cg_lower_frontier(const cg_lower *l, uint32_t only, uint8_t *out) {
  for (int k = 0; k < l->n; k++) out[k] = 0;
  for (int k = 0; k < l->n; k++) {
    if (!(l->uses[k] & ~only)) continue;
    const cg_node *n = cg_node_at(l->g, l->ref[k]);
    const cg_ref ops[3] = {n->a, n->b, n->c};
    for (int i = 0; i < 3; i++)
      if (ops[i] != CG_NONE && !(l->uses[l->slot[ops[i]]] & ~only)) out[l->slot[ops[i]]] = 1;
  }
  if (!(l->uses[l->n - 1] & ~only)) out[l->n - 1] = 1;
}

int cg_lower_cone(const cg_lower *l, int k, uint32_t only, uint32_t need, int max, uint8_t *mark) {
  int count = 0;
  mark[k] = 2;
  for (int i = k; i >= 0; i--) {  /* operands come before their users */
    if (mark[i] != 2) continue;
    mark[i] = 1;
    if (++count > max) return -1;
    const cg_node *n = cg_node_at(l->g, l->ref[i]);
    const cg_ref ops[3] = {n->a, n->b, n->c};
    for (int j = 0; j < 3; j++) {
      if (ops[j] == CG_NONE) continue;
      int o = l->slot[ops[j]];
      if (!mark[o] && !(l->uses[o] & ~only) && (l->uses[o] & need) && !point(l->rg[o])) mark[o] = 2;
    }
  }
  return count;
}

void cg_lower_only(const cg_lower *l, uint32_t only, const LLVMValueRef *memo, LLVMValueRef *out) {
  for (int k = 0; k < l->n; k++) out[k] = l->uses[k] & ~only ? NULL : memo[k];
}

LLVMValueRef cg_lower_join(cg_lower *l, cg_em *e, LLVMValueRef const vars[CG_NVARS], const LLVMValueRef *a,
                           const LLVMValueRef *b) {
  for (int k = 0; k < l->n; k++) {
    LLVMValueRef m = a && a[k] ? a[k] : b && b[k] ? b[k] : NULL;
    l->val[k] = m ? m : emit_node(l, e, cg_node_at(l->g, l->ref[k]), k, vars);
  }
  return l->val[l->n - 1];
}

int cg_split_uniform(const cg_graph *g, cg_ref root, uint32_t uniform_vars, cg_ref *conds,
                     cg_ref *arms, int max) {
  int n = 0;
  for (const cg_node *nd = cg_node_at(g, root); n < max - 1 && nd->op == CG_SELECT &&
                                                !(cg_vars_used(g, nd->a) & ~uniform_vars);
       nd = cg_node_at(g, root)) {
    conds[n] = nd->a;
    arms[n++] = nd->b;
    root = nd->c;
  }
  conds[n] = CG_NONE;
  arms[n++] = root;
  return n;
}

/* ---------------------------------------------------- runtime text length */

LLVMValueRef cg_text_valid(cg_em *e, const sieve_shape *s, LLVMValueRef tlen, LLVMValueRef batch) {
  LLVMValueRef n = cg_i32(e, s->text);
  if (s->text == 0) return n;
  LLVMValueRef null = LLVMBuildICmp(e->b, LLVMIntEQ, tlen, LLVMConstNull(LLVMTypeOf(tlen)), "");
  cg_reg r = cg_reg_new(e, e->t_i32, n);
  cg_if c;
  cg_if_begin(e, &c, CG_XOR(e, null, cg_true(e)));
  LLVMValueRef v = cg_load(e, e->t_i32, cg_gep(e, e->t_i32, tlen, batch));
  v = CG_SEL(e, CG_ICMP(e, LLVMIntSLT, v, cg_i32(e, 0)), cg_i32(e, 0), v);
  cg_rset(e, r, CG_SEL(e, CG_ICMP(e, LLVMIntSGT, v, n), n, v));
  cg_if_end(e, &c);
  return cg_rget(e, r);
}

LLVMValueRef cg_text_overlap(cg_em *e, const sieve_shape *s, LLVMValueRef p0, int n) {
  if (s->text == 0) return NULL;
  int64_t t0 = s->text_after ? (int64_t)s->frames * s->height * s->width : 0;
  LLVMValueRef lo = CG_ICMP(e, LLVMIntSLT, p0, cg_i32(e, t0 + s->text));
  LLVMValueRef hi = CG_ICMP(e, LLVMIntSGT, CG_ADD(e, p0, cg_i32(e, n)), cg_i32(e, t0));
  return CG_AND(e, lo, hi);
}
