/*
** Division and modulo by positive constants, simplified with intervals,
** and sums, with a quotient and remainder of one dividend recombined.
** Ranges are kept for every node of the graph, old and new, in ref order
** (children come first, so one ascending sweep keeps them current). A
** sweep of both, the booleans known from their context substituted
** (cg_simplify_cond.c), and where that changed anything, a second sweep.
*/
#include "cg_simplify.h"

#include "cg_simplify_int.h"

#include <stdlib.h>

#define BIG ((int64_t)1 << 62)

typedef struct simp {
  cg_graph *g;
  const cg_range *vr;
  cg_range *rg;
  uint32_t *vu;     /* per node: the vars under it */
  int nr, cap;
  cg_memo memo;     /* (x, mod, c) -> x // c or x % c */
  int bad;
} simp;

static int known(cg_range r) { return r.lo > -BIG && r.hi < BIG && r.lo <= r.hi; }

static cg_range range(simp *s, cg_ref r) {
  int n = cg_graph_size(s->g);
  if (n > s->cap) {
    int cap = n * 2;
    cg_range *rg = realloc(s->rg, sizeof *rg * (size_t)cap);
    if (rg) s->rg = rg;
    uint32_t *vu = rg ? realloc(s->vu, sizeof *vu * (size_t)cap) : NULL;
    if (vu) s->vu = vu;
    if (!rg || !vu) {
      s->bad = 1;
      return (cg_range){-BIG, BIG};
    }
    s->cap = cap;
  }
  for (; s->nr < n; s->nr++) {
    cg_node nd = *cg_node_at(s->g, s->nr);
    cg_range z = {0, 0}, v = {-BIG, BIG};
    cg_range a = nd.a != CG_NONE ? s->rg[nd.a] : z, b = nd.b != CG_NONE ? s->rg[nd.b] : z;
    cg_range c = nd.c != CG_NONE ? s->rg[nd.c] : z;
    if (nd.op != CG_VAR || s->vr[nd.imm].lo <= s->vr[nd.imm].hi) v = cg_node_range(&nd, a, b, c, s->vr);
    s->rg[s->nr] = v;
    uint32_t u = nd.op == CG_VAR ? 1u << nd.imm : 0;
    if (nd.a != CG_NONE) u |= s->vu[nd.a];
    if (nd.b != CG_NONE) u |= s->vu[nd.b];
    if (nd.c != CG_NONE) u |= s->vu[nd.c];
    s->vu[s->nr] = u;
  }
  return s->rg[r];
}

static cg_ref K(simp *s, int64_t v) { return cg_const(s->g, v); }

static cg_ref plain(simp *s, cg_ref x, int64_t c, int mod) { return cg_bin(s->g, mod ? CG_MOD : CG_DIV, x, K(s, c)); }

/* x's quotient by c when x is a constant or constant-product multiple of c. */
static cg_ref multiple(simp *s, cg_ref x, int64_t c) {
  cg_node n = *cg_node_at(s->g, x);
  int64_t m;
  if (n.op == CG_CONST && n.type == CG_INT) return n.imm % c ? CG_NONE : K(s, n.imm / c);
  if (n.op == CG_MUL && cg_is_const(s->g, n.b, &m) && m % c == 0) return cg_bin(s->g, CG_MUL, n.a, K(s, m / c));
  return CG_NONE;
}

static cg_ref div_by(simp *s, cg_ref x, int64_t c, int mod);

static cg_ref div_rule(simp *s, cg_ref x, int64_t c, int mod) {
  cg_graph *g = s->g;
  cg_node n = *cg_node_at(g, x);
  int64_t k;
  switch ((cg_op)n.op) {
  case CG_MUL: {
    cg_ref q = multiple(s, x, c);
    if (q != CG_NONE) return mod ? K(s, 0) : q;
    break;
  }
  case CG_ADD:
    for (int side = 0; side < 2; side++) {
      cg_ref q = multiple(s, side ? n.b : n.a, c), r = side ? n.a : n.b;
      if (q != CG_NONE) return mod ? div_by(s, r, c, 1) : cg_bin(g, CG_ADD, q, div_by(s, r, c, 0));
    }
    break;
  case CG_SUB: {
    cg_ref q = multiple(s, n.b, c);
    if (q != CG_NONE) return mod ? div_by(s, n.a, c, 1) : cg_bin(g, CG_SUB, div_by(s, n.a, c, 0), q);
    break;
  }
  case CG_DIV:
    if (!mod && cg_is_const(g, n.b, &k) && k > 0 && k < ((int64_t)1 << 30) && c < ((int64_t)1 << 30))
      return div_by(s, n.a, k * c, 0);
    break;
  case CG_MOD:
    if (mod && cg_is_const(g, n.b, &k) && k > 0 && k % c == 0) return div_by(s, n.a, c, 1);
    break;
  case CG_SELECT:
    if (n.type == CG_INT) {
      cg_ref u = div_by(s, n.b, c, mod), v = div_by(s, n.c, c, mod);
      if (u != plain(s, n.b, c, mod) || v != plain(s, n.c, c, mod)) return cg_select(g, n.a, u, v);
    }
    break;
  default: break;
  }
  return plain(s, x, c, mod);
}

static cg_ref div_by(simp *s, cg_ref x, int64_t c, int mod) {
  if (x == CG_NONE || s->bad) return CG_NONE;
  if (cg_memo_grow(&s->memo)) {
    s->bad = 1;
    return CG_NONE;
  }
  const cg_memo_ent *m = cg_memo_slot(&s->memo, x, mod, c);
  if (m->x != CG_NONE) return m->out;
  cg_range r = range(s, x);
  cg_ref out;
  if (known(r) && cg_floordiv(r.lo, c) == cg_floordiv(r.hi, c)) {
    int64_t k = cg_floordiv(r.lo, c);
    out = !mod ? K(s, k) : k ? cg_bin(s->g, CG_SUB, x, K(s, k * c)) : x;
  } else {
    out = div_rule(s, x, c, mod);
  }
  if (out == CG_NONE) s->bad = 1;
  cg_memo_put(&s->memo, x, mod, c, out);
  return out;
}

/* ------------------------------------------------------------ sums */

/*
** A sum of terms k * x (x anything but a sum, a difference, a negation or
** a product by a constant) plus a constant. Quotient and remainder of one
** dividend recombine: k * (y % c) + k * c * (y // c) = k * y, for every
** integer y and c > 0; with y = x // e and (x // e) // c = x // (e * c),
** the coordinates a layout takes apart and a mask puts back together
** (t * H * W + y * W + x of a position) come back to the position.
*/
#define MAX_TERMS 32
#define MAX_STEPS 512  /* nodes a flattening visits: shared operands are walked once per use */

typedef struct term {
  cg_ref x;
  int64_t k;
} term;

typedef struct lin {
  term t[MAX_TERMS];
  int n, ops, ok, steps;
  int64_t c;
} lin;

static int64_t lin_ck(lin *L, __int128 v) {
  if (v > BIG || v < -BIG) L->ok = 0;
  return L->ok ? (int64_t)v : 0;
}

static void lin_add(lin *L, cg_ref x, int64_t k) {
  for (int i = 0; i < L->n; i++)
    if (L->t[i].x == x) {
      L->t[i].k = lin_ck(L, (__int128)L->t[i].k + k);
      return;
    }
  if (L->n == MAX_TERMS) L->ok = 0;
  else L->t[L->n++] = (term){x, k};
}

static void flat(simp *s, cg_ref r, int64_t k, lin *L) {
  if (++L->steps > MAX_STEPS) L->ok = 0;
  if (!L->ok) return;
  cg_node n = *cg_node_at(s->g, r);
  int64_t m;
  if (n.type == CG_INT) switch ((cg_op)n.op) {
  case CG_CONST: L->c = lin_ck(L, (__int128)L->c + (__int128)k * n.imm); return;
  case CG_ADD: case CG_SUB:
    L->ops++;
    flat(s, n.a, k, L);
    flat(s, n.b, n.op == CG_SUB ? -k : k, L);
    return;
  case CG_NEG: L->ops++; flat(s, n.a, -k, L); return;
  case CG_MUL:
    if (!cg_is_const(s->g, n.b, &m)) break;
    L->ops++;
    flat(s, n.a, lin_ck(L, (__int128)k * m), L);
    return;
  default: break;
  }
  lin_add(L, r, k);
}

static int recompose(simp *s, lin *L) {
  int any = 0;
  for (int again = 1; again && L->ok;) {
    again = 0;
    for (int i = 0; i < L->n && !again; i++) {
      cg_node n = *cg_node_at(s->g, L->t[i].x);
      int64_t c, k = L->t[i].k;
      if (!k || n.op != CG_MOD || !cg_is_const(s->g, n.b, &c) || c <= 0) continue;
      cg_ref q = div_by(s, n.a, c, 0);
      if (q == CG_NONE) {
        L->ok = 0;
        break;
      }
      for (int j = 0; j < L->n; j++) {
        if (L->t[j].x != q || (__int128)L->t[j].k != (__int128)k * c) continue;
        L->t[i].k = L->t[j].k = 0;
        flat(s, n.a, k, L);
        any = again = 1;
        break;
      }
    }
  }
  return any;
}

/* A part of a sum, negated or not. */
typedef struct part {
  cg_ref v;
  int neg;
} part;

static part join(simp *s, part a, part b, int *ops) {
  if (a.v == CG_NONE) return b;
  if (b.v == CG_NONE) return a;
  ++*ops;
  if (a.neg == b.neg) return (part){cg_bin(s->g, CG_ADD, a.v, b.v), a.neg};
  return a.neg ? (part){cg_bin(s->g, CG_SUB, b.v, a.v), 0} : (part){cg_bin(s->g, CG_SUB, a.v, b.v), 0};
}

/* The sum rebuilt: the terms of no position, then the query's, the key's
** and the pairs' (so the kernel's row and column parts stay whole), the
** positive ones of each before the negative. */
static cg_ref rebuild(simp *s, const lin *L, int *ops) {
  part all = {CG_NONE, 0};
  const uint32_t q = 1u << CG_V_QPOS, kp = 1u << CG_V_KPOS;
  for (int grp = 0; grp < 4; grp++) {
    part p = {CG_NONE, 0};
    for (int neg = 0; neg < 2; neg++)
      for (int i = 0; i < L->n; i++) {
        int64_t k = L->t[i].k;
        uint32_t u = s->vu[L->t[i].x];
        if (!k || (k < 0) != neg || ((u & q ? 1 : 0) | (u & kp ? 2 : 0)) != grp) continue;
        int64_t a = k < 0 ? -k : k;
        cg_ref t = L->t[i].x;
        if (a != 1) {
          t = cg_bin(s->g, CG_MUL, t, K(s, a));
          ++*ops;
        }
        p = join(s, p, (part){t, neg}, ops);
      }
    if (grp == 0 && L->c) p = join(s, p, (part){K(s, L->c < 0 ? -L->c : L->c), L->c < 0}, ops);
    all = join(s, all, p, ops);
  }
  if (all.v == CG_NONE) return K(s, 0);
  if (all.neg) {
    ++*ops;
    return cg_un(s->g, CG_NEG, all.v);
  }
  return all.v;
}

static cg_ref sum(simp *s, cg_ref x) {
  if (x == CG_NONE) return x;
  cg_node n = *cg_node_at(s->g, x);
  if (n.type != CG_INT || (n.op != CG_ADD && n.op != CG_SUB)) return x;
  lin L = {.ok = 1};
  flat(s, x, 1, &L);
  int before = L.ops;
  int re = L.ok && recompose(s, &L), ops = 0;
  if (!L.ok) return x;
  range(s, cg_graph_size(s->g) - 1);  /* vars used of the new nodes */
  cg_ref y = rebuild(s, &L, &ops);
  return re || ops < before ? y : x;
}

/* ------------------------------------------------------------- passes */

/* One sweep of the rules over root's nodes, children first. */
static cg_ref sweep(simp *s, cg_ref root) {
  cg_graph *g = s->g;
  int n = root + 1;
  int *slot = malloc(sizeof(int) * (size_t)n);
  cg_ref *ref = malloc(sizeof(cg_ref) * (size_t)n), *nw = malloc(sizeof(cg_ref) * (size_t)n);
  cg_ref out = CG_NONE;
  if (!slot || !ref || !nw) goto done;
  int cnt = cg_reachable(g, root, slot, ref);
  for (int k = 0; k < cnt; k++) {
    cg_node nd = *cg_node_at(g, ref[k]);
    cg_ref a = nd.a != CG_NONE ? nw[nd.a] : CG_NONE, b = nd.b != CG_NONE ? nw[nd.b] : CG_NONE, r;
    int64_t c;
    switch (nd.op) {
    case CG_CONST: case CG_VAR: r = ref[k]; break;
    case CG_NEG: case CG_ABS: case CG_NOT: r = cg_un(g, nd.op, a); break;
    case CG_SELECT: r = cg_select(g, a, b, nw[nd.c]); break;
    case CG_ADD: case CG_SUB: r = sum(s, cg_bin(g, nd.op, a, b)); break;
    case CG_DIV: case CG_MOD:
      if (cg_is_const(g, b, &c) && c > 0) {
        r = div_by(s, a, c, nd.op == CG_MOD);
        break;
      }
      /* fall through */
    default: r = cg_bin(g, nd.op, a, b); break;
    }
    if (r == CG_NONE || s->bad) goto done;
    nw[ref[k]] = r;
  }
  out = nw[root];
done:
  free(slot);
  free(ref);
  free(nw);
  return out;
}

/* Whether every integer node under root has a bounded interval. */
static int bounded(simp *s, cg_ref root) {
  int n = root + 1, ok = 1;
  int *slot = malloc(sizeof(int) * (size_t)n);
  cg_ref *ref = malloc(sizeof(cg_ref) * (size_t)n);
  if (!slot || !ref) {
    s->bad = 1;
    ok = 0;
  } else {
    int cnt = cg_reachable(s->g, root, slot, ref);
    for (int k = 0; k < cnt && ok; k++) ok = cg_type_of(s->g, ref[k]) != CG_INT || known(range(s, ref[k]));
  }
  free(slot);
  free(ref);
  return ok;
}

cg_ref cg_simplify(cg_graph *g, cg_ref root, const cg_range ranges[CG_NVARS]) {
  if (root == CG_NONE) return CG_NONE;
  simp S = {.g = g, .vr = ranges}, *s = &S;
  cg_ref out = root;
  /* An expression the lowering would refuse (an interval reaching +-2^62)
  ** stays as it is, to be refused as it is. */
  if (!bounded(s, root)) {
    out = s->bad ? CG_NONE : root;
    goto done;
  }
  cg_ref r1 = sweep(s, root);
  if (r1 == CG_NONE || s->bad) {
    out = CG_NONE;
    goto done;
  }
  out = r1;
  cg_ref r2 = cg_simplify_conds(g, r1);
  if (r2 == CG_NONE) {
    out = CG_NONE;
    goto done;
  }
  if (r2 != r1) {
    cg_ref r3 = sweep(s, r2);
    if (r3 == CG_NONE || s->bad) {
      out = CG_NONE;
      goto done;
    }
    /* Rearranged sums keep their values, not always their partial ones'
    ** bounds: what the lowering could refuse falls back. */
    if (bounded(s, r3)) out = r3;
    else if (s->bad) out = CG_NONE;
  }
done:
  free(s->rg);
  free(s->vu);
  cg_memo_free(&s->memo);
  return out;
}
