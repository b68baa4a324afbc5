/*
** Hash-consed expression graph: construction with folding, substitution,
** scalar evaluation.
*/
#include "cg_expr.h"

#include <stdlib.h>
#include <string.h>

struct cg_graph {
  cg_node *nodes;
  int n, cap;
  cg_ref *slots;  /* open addressing on (op, type, a, b, c, imm) */
  int nslots;     /* power of two */
};

static const char *op_names[CG_NOPS] = {
  "const", "var", "add", "sub", "mul", "div", "mod", "min", "max", "neg", "abs",
  "eq", "ne", "lt", "le", "and", "or", "not", "select",
};
static const char *var_names[CG_NVARS] = {
  "q.t", "q.y", "q.x", "q.text", "q.idx", "k.t", "k.y", "k.x", "k.text", "k.idx",
  "head", "step", "layer", "q.pos", "k.pos", "frames", "height", "width", "text.n", "text.valid",
};

const char *cg_op_name(cg_op op) { return op < CG_NOPS ? op_names[op] : "?"; }
const char *cg_var_name(cg_var v) { return v < CG_NVARS ? var_names[v] : "?"; }

uint64_t cg_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

cg_graph *cg_graph_new(void) {
  cg_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->nslots = 1024;
  g->slots = malloc(sizeof(cg_ref) * g->nslots);
  if (!g->slots) {
    free(g);
    return NULL;
  }
  memset(g->slots, 0xff, sizeof(cg_ref) * g->nslots);
  return g;
}

void cg_graph_free(cg_graph *g) {
  if (!g) return;
  free(g->nodes);
  free(g->slots);
  free(g);
}

int cg_graph_size(const cg_graph *g) { return g->n; }
const cg_node *cg_node_at(const cg_graph *g, cg_ref r) {
  return (r >= 0 && r < g->n) ? &g->nodes[r] : NULL;
}

static uint64_t key_hash(const cg_node *k) {
  uint64_t h = mix(k->op, k->type);
  h = mix(h, (uint32_t)k->a);
  h = mix(h, (uint32_t)k->b);
  h = mix(h, (uint32_t)k->c);
  return mix(h, (uint64_t)k->imm);
}

static int same(const cg_node *x, const cg_node *y) {
  return x->op == y->op && x->type == y->type && x->a == y->a && x->b == y->b &&
         x->c == y->c && x->imm == y->imm;
}

static int grow_slots(cg_graph *g) {
  int ns = g->nslots * 2;
  cg_ref *s = malloc(sizeof(cg_ref) * ns);
  if (!s) return -1;
  memset(s, 0xff, sizeof(cg_ref) * ns);
  for (int i = 0; i < g->n; i++) {
    uint64_t h = key_hash(&g->nodes[i]);
    int j = (int)(h & (uint64_t)(ns - 1));
    while (s[j] != CG_NONE) j = (j + 1) & (ns - 1);
    s[j] = i;
  }
  free(g->slots);
  g->slots = s;
  g->nslots = ns;
  return 0;
}

static cg_ref intern(cg_graph *g, cg_node k) {
  if (g->n * 2 >= g->nslots && grow_slots(g)) return CG_NONE;
  uint64_t h = key_hash(&k);
  int j = (int)(h & (uint64_t)(g->nslots - 1));
  for (; g->slots[j] != CG_NONE; j = (j + 1) & (g->nslots - 1))
    if (same(&g->nodes[g->slots[j]], &k)) return g->slots[j];
  if (g->n == g->cap) {
    int nc = g->cap ? g->cap * 2 : 256;
    cg_node *nn = realloc(g->nodes, sizeof(cg_node) * nc);
    if (!nn) return CG_NONE;
    g->nodes = nn;
    g->cap = nc;
  }
  uint64_t sh = mix(k.op * 31u + 7, k.type);
  if (k.op == CG_CONST || k.op == CG_VAR) sh = mix(sh, (uint64_t)k.imm);
  if (k.a != CG_NONE) sh = mix(sh, g->nodes[k.a].shash);
  if (k.b != CG_NONE) sh = mix(sh, g->nodes[k.b].shash);
  if (k.c != CG_NONE) sh = mix(sh, g->nodes[k.c].shash);
  k.shash = sh;
  int d = 0;
  if (k.a != CG_NONE && g->nodes[k.a].depth > d) d = g->nodes[k.a].depth;
  if (k.b != CG_NONE && g->nodes[k.b].depth > d) d = g->nodes[k.b].depth;
  if (k.c != CG_NONE && g->nodes[k.c].depth > d) d = g->nodes[k.c].depth;
  /* and/or/not chains (a union of many masks) cost LLVM little; arithmetic
  ** chains are what make it slow, so only they lengthen the depth. Constants,
  ** the shape's grid and what is computed from them alone have depth 0: they
  ** fold to one constant before any kernel is generated. */
  int add;
  if (k.op == CG_CONST)
    add = 0;
  else if (k.op == CG_VAR)
    add = !(k.imm == CG_V_FRAMES || k.imm == CG_V_HEIGHT || k.imm == CG_V_WIDTH || k.imm == CG_V_NTEXT);
  else
    add = d > 0 && !(k.op == CG_AND || k.op == CG_OR || k.op == CG_NOT);
  k.depth = (uint16_t)(d + add < UINT16_MAX ? d + add : UINT16_MAX);
  g->nodes[g->n] = k;
  g->slots[j] = g->n;
  return g->n++;
}

static cg_ref mk(cg_graph *g, cg_op op, cg_type t, cg_ref a, cg_ref b, cg_ref c, int64_t imm) {
  cg_node k = {.op = (uint8_t)op, .type = (uint8_t)t, .a = a, .b = b, .c = c, .imm = imm};
  return intern(g, k);
}

cg_ref cg_const(cg_graph *g, int64_t v) { return mk(g, CG_CONST, CG_INT, CG_NONE, CG_NONE, CG_NONE, v); }
cg_ref cg_bool(cg_graph *g, int v) { return mk(g, CG_CONST, CG_BOOL, CG_NONE, CG_NONE, CG_NONE, v != 0); }
cg_ref cg_var_ref(cg_graph *g, cg_var v) {
  cg_type t = (v == CG_V_QTEXT || v == CG_V_KTEXT) ? CG_BOOL : CG_INT;
  return mk(g, CG_VAR, t, CG_NONE, CG_NONE, CG_NONE, v);
}

int cg_is_const(const cg_graph *g, cg_ref r, int64_t *v) {
  if (r < 0 || r >= g->n || g->nodes[r].op != CG_CONST) return 0;
  if (v) *v = g->nodes[r].imm;
  return 1;
}

cg_type cg_type_of(const cg_graph *g, cg_ref r) { return (cg_type)g->nodes[r].type; }

static cg_ref as_bool(cg_graph *g, cg_ref a) {
  if (a == CG_NONE || g->nodes[a].type == CG_BOOL) return a;
  return cg_bin(g, CG_NE, a, cg_const(g, 0));
}

static int commutative(cg_op op) {
  return op == CG_ADD || op == CG_MUL || op == CG_MIN || op == CG_MAX || op == CG_EQ ||
         op == CG_NE || op == CG_AND || op == CG_OR;
}

static int64_t apply(cg_op op, int64_t x, int64_t y) {
  switch (op) {
  /* Wrapping, as cg_expr.h says: folding constants a script multiplies
  ** together must not be undefined behaviour. */
  case CG_ADD: return (int64_t)((uint64_t)x + (uint64_t)y);
  case CG_SUB: return (int64_t)((uint64_t)x - (uint64_t)y);
  case CG_MUL: return (int64_t)((uint64_t)x * (uint64_t)y);
  case CG_DIV: return cg_floordiv(x, y);
  case CG_MOD: return cg_floormod(x, y);
  case CG_MIN: return x < y ? x : y;
  case CG_MAX: return x > y ? x : y;
  case CG_EQ: return x == y;
  case CG_NE: return x != y;
  case CG_LT: return x < y;
  case CG_LE: return x <= y;
  case CG_AND: return x && y;
  case CG_OR: return x || y;
  default: return 0;
  }
}

static cg_type bin_type(cg_op op) { return op >= CG_EQ ? CG_BOOL : CG_INT; }

cg_ref cg_bin(cg_graph *g, cg_op op, cg_ref a, cg_ref b) {
  if (a == CG_NONE || b == CG_NONE) return CG_NONE;
  if (op == CG_AND || op == CG_OR) {
    a = as_bool(g, a);
    b = as_bool(g, b);
    if (a == CG_NONE || b == CG_NONE) return CG_NONE;
  }
  int64_t x, y;
  int ca = cg_is_const(g, a, &x), cb = cg_is_const(g, b, &y);
  if (ca && cb) {
    int64_t v = apply(op, x, y);
    return bin_type(op) == CG_BOOL ? cg_bool(g, (int)v) : cg_const(g, v);
  }
  if (commutative(op) && (ca || (!cb && g->nodes[a].shash > g->nodes[b].shash))) {
    cg_ref t = a; a = b; b = t;
    int c = ca; ca = cb; cb = c;
    int64_t v = x; x = y; y = v;
  }
  /* Now a constant operand, if any, is b (or a for non-commutative ops). */
  switch (op) {
  case CG_ADD: if (cb && y == 0) return a; break;
  case CG_SUB:
    if (cb && y == 0) return a;
    if (a == b) return cg_const(g, 0);
    break;
  case CG_MUL:
    if (cb && y == 1) return a;
    if (cb && y == 0) return cg_const(g, 0);
    break;
  case CG_DIV: if (cb && y == 1) return a; break;
  case CG_MOD: if (cb && (y == 1 || y == -1)) return cg_const(g, 0); break;
  case CG_MIN: case CG_MAX: if (a == b) return a; break;
  case CG_EQ: case CG_LE: if (a == b) return cg_bool(g, 1); break;
  case CG_NE: case CG_LT: if (a == b) return cg_bool(g, 0); break;
  case CG_AND:
    if (cb) return y ? a : cg_bool(g, 0);
    if (a == b) return a;
    break;
  case CG_OR:
    if (cb) return y ? cg_bool(g, 1) : a;
    if (a == b) return a;
    break;
  default: break;
  }
  return mk(g, op, bin_type(op), a, b, CG_NONE, 0);
}

cg_ref cg_un(cg_graph *g, cg_op op, cg_ref a) {
  if (a == CG_NONE) return CG_NONE;
  if (op == CG_NOT) a = as_bool(g, a);
  if (a == CG_NONE) return CG_NONE;
  int64_t x;
  const cg_node *n = &g->nodes[a];
  if (cg_is_const(g, a, &x)) {
    switch (op) {
    case CG_NEG: return cg_const(g, (int64_t)(0 - (uint64_t)x));
    case CG_ABS: return cg_const(g, x < 0 ? (int64_t)(0 - (uint64_t)x) : x);
    case CG_NOT: return cg_bool(g, !x);
    default: return CG_NONE;
    }
  }
  if (op == CG_NOT && n->op == CG_NOT) return n->a;
  if (op == CG_NEG && n->op == CG_NEG) return n->a;
  if (op == CG_ABS && (n->op == CG_ABS || n->type == CG_BOOL)) return a;
  return mk(g, op, op == CG_NOT ? CG_BOOL : CG_INT, a, CG_NONE, CG_NONE, 0);
}

cg_ref cg_select(cg_graph *g, cg_ref c, cg_ref a, cg_ref b) {
  c = as_bool(g, c);
  if (c == CG_NONE || a == CG_NONE || b == CG_NONE) return CG_NONE;
  int64_t v;
  if (cg_is_const(g, c, &v)) return v ? a : b;
  if (a == b) return a;
  cg_type t = (g->nodes[a].type == CG_BOOL && g->nodes[b].type == CG_BOOL) ? CG_BOOL : CG_INT;
  if (t == CG_BOOL) {
    int64_t x, y;
    if (cg_is_const(g, a, &x) && cg_is_const(g, b, &y)) {
      if (x && !y) return c;
      if (!x && y) return cg_un(g, CG_NOT, c);
    }
  }
  return mk(g, CG_SELECT, t, c, a, b, 0);
}

/* Children have smaller refs than their parents: one descending sweep marks
** what root reaches, one ascending sweep numbers it. */
int cg_reachable(const cg_graph *g, cg_ref root, int *slot, cg_ref *ref) {
  for (cg_ref i = 0; i <= root; i++) slot[i] = -1;
  slot[root] = 0;
  for (cg_ref i = root; i >= 0; i--) {
    if (slot[i] < 0) continue;
    const cg_node *n = &g->nodes[i];
    if (n->a != CG_NONE) slot[n->a] = 0;
    if (n->b != CG_NONE) slot[n->b] = 0;
    if (n->c != CG_NONE) slot[n->c] = 0;
  }
  int k = 0;
  for (cg_ref i = 0; i <= root; i++)
    if (slot[i] >= 0) {
      slot[i] = k;
      ref[k++] = i;
    }
  return k;
}

uint32_t cg_vars_used(const cg_graph *g, cg_ref root) {
  if (root == CG_NONE) return 0;
  uint32_t *m = calloc((size_t)root + 1, sizeof *m);
  if (!m) return ~0u;
  for (cg_ref i = 0; i <= root; i++) {
    const cg_node *n = &g->nodes[i];
    uint32_t v = n->op == CG_VAR ? 1u << n->imm : 0;
    if (n->a != CG_NONE) v |= m[n->a];
    if (n->b != CG_NONE) v |= m[n->b];
    if (n->c != CG_NONE) v |= m[n->c];
    m[i] = v;
  }
  uint32_t r = m[root];
  free(m);
  return r;
}

cg_ref cg_subst(cg_graph *g, cg_ref root, const cg_ref map[CG_NVARS]) {
  if (root == CG_NONE) return CG_NONE;
  int n = root + 1;
  cg_ref *nw = malloc(sizeof(cg_ref) * (size_t)n);
  if (!nw) return CG_NONE;
  for (cg_ref i = 0; i < n; i++) {
    cg_node nd = g->nodes[i]; /* copy: g->nodes may move while we build */
    cg_ref r;
    switch (nd.op) {
    case CG_CONST: r = i; break;
    case CG_VAR: r = map[nd.imm] != CG_NONE ? map[nd.imm] : i; break;
    case CG_NEG: case CG_ABS: case CG_NOT: r = cg_un(g, nd.op, nw[nd.a]); break;
    case CG_SELECT: r = cg_select(g, nw[nd.a], nw[nd.b], nw[nd.c]); break;
    default: r = cg_bin(g, nd.op, nw[nd.a], nw[nd.b]); break;
    }
    nw[i] = r;
  }
  cg_ref r = nw[root];
  free(nw);
  return r;
}

/* Every node below r once, children first (a DAG shares subexpressions: a
** recursive walk would revisit them, exponentially in a chain of selects). */
int64_t cg_eval1(const cg_graph *g, cg_ref r, const int64_t vars[CG_NVARS]) {
  int64_t *v = malloc(sizeof(int64_t) * (size_t)(r + 1));
  int *slot = malloc(sizeof(int) * (size_t)(r + 1));
  cg_ref *ref = malloc(sizeof(cg_ref) * (size_t)(r + 1));
  int64_t out = 0;
  if (v && slot && ref) {
    int n = cg_reachable(g, r, slot, ref);
    for (int k = 0; k < n; k++) {
      const cg_node *nd = &g->nodes[ref[k]];
      int64_t a = nd->a != CG_NONE ? v[nd->a] : 0, b = nd->b != CG_NONE ? v[nd->b] : 0;
      int64_t x;
      switch (nd->op) {
      case CG_CONST: x = nd->imm; break;
      case CG_VAR: x = vars[nd->imm]; break;
      case CG_NEG: x = (int64_t)(0 - (uint64_t)a); break;
      case CG_ABS: x = a < 0 ? (int64_t)(0 - (uint64_t)a) : a; break;
      case CG_NOT: x = !a; break;
      case CG_SELECT: x = a ? b : v[nd->c]; break;
      default: x = apply(nd->op, a, b); break;
      }
      v[ref[k]] = x;
    }
    out = v[r];
  }
  free(v);
  free(slot);
  free(ref);
  return out;
}
