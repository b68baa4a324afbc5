/*
** Booleans known from where they are read. In and(x, y) the value of x
** matters only where y holds, in or(x, y) only where y fails, and in
** select(p, u, v) each arm only on its side of p; so x may be rewritten
** with y's facts substituted (y true, its negation false, and for a
** conjunction each conjunct true). A mask composed with a layout wraps
** every coordinate in select(q.text, -1, ...), under a test that
** already excludes the text: with q.text known false there, the selects
** go, and the coordinates' sums can be seen whole (cg_simplify's
** recomposition of quotients and remainders).
**
** Each new set of facts walks its operand again, so the work is bounded:
** past CG_COND_VISITS rewritten nodes the root comes back unchanged.
*/
#include "cg_simplify_int.h"

#include <stdlib.h>

#define MAX_FACTS 16
#define CG_COND_VISITS 200000

typedef struct fact {
  cg_ref b;
  int v;
} fact;

typedef struct env {
  fact f[MAX_FACTS];
  int n, id;
} env;

typedef struct cx {
  cg_graph *g;
  int n0;             /* graph size at the start: the nodes to rewrite */
  uint8_t *plain;     /* per node below n0: no boolean under it, nothing to rewrite */
  cg_memo memo;       /* (node, context id) -> the node rewritten there */
  int ids;
  long visits;
  int bad;            /* out of memory, or past the budget */
} cx;

static int known(const env *e, cg_ref b) {
  for (int i = 0; i < e->n; i++)
    if (e->f[i].b == b) return e->f[i].v;
  return -1;
}

static void add1(cx *c, env *e, cg_ref b, int v) {
  if (b == CG_NONE || e->n == MAX_FACTS || known(e, b) >= 0 || cg_is_const(c->g, b, NULL)) return;
  e->f[e->n++] = (fact){b, v};
}

/* b has value v: b, its negation, the other side of a comparison, and a
** conjunction's conjuncts (a disjunction's disjuncts when false). */
static void assume(cx *c, env *e, cg_ref b, int v, int depth) {
  const cg_node *n = cg_node_at(c->g, b);
  if (n->type != CG_BOOL || depth > 4) return;
  add1(c, e, b, v);
  cg_node nd = *n;
  if (nd.op == CG_NOT) assume(c, e, nd.a, !v, depth + 1);
  if (nd.op == CG_LT) add1(c, e, cg_bin(c->g, CG_LE, nd.b, nd.a), !v);
  if (nd.op == CG_LE) add1(c, e, cg_bin(c->g, CG_LT, nd.b, nd.a), !v);
  if ((nd.op == CG_AND && v) || (nd.op == CG_OR && !v)) {
    assume(c, e, nd.a, v, depth + 1);
    assume(c, e, nd.b, v, depth + 1);
  }
}

/* e with b = v added; a new context when that added a fact. */
static env with(cx *c, const env *e, cg_ref b, int v) {
  env x = *e;
  assume(c, &x, b, v, 0);
  if (x.n != e->n) x.id = ++c->ids;
  return x;
}

static cg_ref rw(cx *c, cg_ref r, const env *e) {
  if (c->bad) return r;
  if (r >= c->n0 || c->plain[r]) return r;
  int k = known(e, r);
  if (k >= 0) return cg_bool(c->g, k);
  if (cg_memo_grow(&c->memo)) {
    c->bad = 1;
    return r;
  }
  const cg_memo_ent *m = cg_memo_slot(&c->memo, r, e->id, 0);
  if (m->x != CG_NONE) return m->out;
  if (++c->visits > CG_COND_VISITS) {
    c->bad = 1;
    return r;
  }
  cg_node n = *cg_node_at(c->g, r);
  cg_ref out;
  switch ((cg_op)n.op) {
  case CG_CONST: case CG_VAR: out = r; break;
  case CG_AND: case CG_OR: {
    int v = n.op == CG_AND;
    env ea = with(c, e, n.b, v);
    cg_ref a = rw(c, n.a, &ea);
    env eb = with(c, e, a, v);
    out = cg_bin(c->g, (cg_op)n.op, a, rw(c, n.b, &eb));
    break;
  }
  case CG_SELECT: {
    cg_ref p = rw(c, n.a, e);
    env et = with(c, e, p, 1), ef = with(c, e, p, 0);
    out = cg_select(c->g, p, rw(c, n.b, &et), rw(c, n.c, &ef));
    break;
  }
  case CG_NEG: case CG_ABS: case CG_NOT: out = cg_un(c->g, (cg_op)n.op, rw(c, n.a, e)); break;
  default: out = cg_bin(c->g, (cg_op)n.op, rw(c, n.a, e), rw(c, n.b, e)); break;
  }
  if (out == CG_NONE) {
    c->bad = 1;
    return r;
  }
  cg_memo_put(&c->memo, r, e->id, 0, out);
  return out;
}

cg_ref cg_simplify_conds(cg_graph *g, cg_ref root) {
  cx C = {.g = g, .n0 = cg_graph_size(g)}, *c = &C;
  c->plain = malloc((size_t)c->n0);
  if (!c->plain) return CG_NONE;
  for (int i = 0; i < c->n0; i++) {
    const cg_node *n = cg_node_at(g, i);
    int p = n->type == CG_INT && n->op != CG_SELECT;
    if (n->a != CG_NONE) p &= c->plain[n->a];
    if (n->b != CG_NONE) p &= c->plain[n->b];
    if (n->c != CG_NONE) p &= c->plain[n->c];
    c->plain[i] = (uint8_t)p;
  }
  env e = {.n = 0, .id = 0};
  cg_ref out = rw(c, root, &e);
  int oom = c->bad && c->visits <= CG_COND_VISITS;
  free(c->plain);
  cg_memo_free(&c->memo);
  if (oom) return CG_NONE;
  return c->bad ? root : out;
}
