/*
** Division and modulo by positive constants, simplified with intervals.
** Ranges are kept for every node of the graph, old and new, in ref order
** (children come first, so one ascending sweep keeps them current).
*/
#include "cg_simplify.h"

#include <stdlib.h>

#define BIG ((int64_t)1 << 62)

typedef struct memo {
  cg_ref x, r;
  int64_t c;
  int mod;
} memo;

typedef struct simp {
  cg_graph *g;
  const cg_range *vr;
  cg_range *rg;
  int nr, cap;
  memo *tab;
  int ntab, used;
  int bad;
} simp;

static int known(cg_range r) { return r.lo > -BIG && r.hi < BIG && r.lo <= r.hi; }

static cg_range range(simp *s, cg_ref r) {
  int n = cg_graph_size(s->g);
  if (n > s->cap) {
    int cap = n * 2;
    cg_range *rg = realloc(s->rg, sizeof *rg * (size_t)cap);
    if (!rg) {
      s->bad = 1;
      return (cg_range){-BIG, BIG};
    }
    s->rg = rg;
    s->cap = cap;
  }
  for (; s->nr < n; s->nr++) {
    cg_node nd = *cg_node_at(s->g, s->nr);
    cg_range z = {0, 0}, v = {-BIG, BIG};
    cg_range a = nd.a != CG_NONE ? s->rg[nd.a] : z, b = nd.b != CG_NONE ? s->rg[nd.b] : z;
    cg_range c = nd.c != CG_NONE ? s->rg[nd.c] : z;
    if (nd.op != CG_VAR || s->vr[nd.imm].lo <= s->vr[nd.imm].hi) v = cg_node_range(&nd, a, b, c, s->vr);
    s->rg[s->nr] = v;
  }
  return s->rg[r];
}

static cg_ref K(simp *s, int64_t v) { return cg_const(s->g, v); }

static cg_ref plain(simp *s, cg_ref x, int64_t c, int mod) { return cg_bin(s->g, mod ? CG_MOD : CG_DIV, x, K(s, c)); }

static memo *slot_of(simp *s, cg_ref x, int64_t c, int mod) {
  uint64_t h = ((uint64_t)(uint32_t)x * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)c * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)mod;
  for (int i = (int)(h % (uint64_t)s->ntab);; i = (i + 1) % s->ntab) {
    memo *m = &s->tab[i];
    if (m->x == CG_NONE || (m->x == x && m->c == c && m->mod == mod)) return m;
  }
}

static int grow(simp *s) {
  if (2 * (s->used + 1) < s->ntab) return 0;
  memo *old = s->tab;
  int n = s->ntab;
  s->ntab = n ? 2 * n : 256;
  s->tab = malloc(sizeof *s->tab * (size_t)s->ntab);
  if (!s->tab) {
    s->tab = old;
    s->ntab = n;
    return -1;
  }
  for (int i = 0; i < s->ntab; i++) s->tab[i].x = CG_NONE;
  for (int i = 0; i < n; i++)
    if (old[i].x != CG_NONE) *slot_of(s, old[i].x, old[i].c, old[i].mod) = old[i];
  free(old);
  return 0;
}

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
  if (grow(s)) {
    s->bad = 1;
    return CG_NONE;
  }
  memo *m = slot_of(s, x, c, mod);
  if (m->x != CG_NONE) return m->r;
  cg_range r = range(s, x);
  cg_ref out;
  if (known(r) && cg_floordiv(r.lo, c) == cg_floordiv(r.hi, c)) {
    int64_t k = cg_floordiv(r.lo, c);
    out = !mod ? K(s, k) : k ? cg_bin(s->g, CG_SUB, x, K(s, k * c)) : x;
  } else {
    out = div_rule(s, x, c, mod);
  }
  if (out == CG_NONE) s->bad = 1;
  m = slot_of(s, x, c, mod); /* the table may have grown meanwhile */
  *m = (memo){x, out, c, mod};
  s->used++;
  return out;
}

cg_ref cg_simplify(cg_graph *g, cg_ref root, const cg_range ranges[CG_NVARS]) {
  if (root == CG_NONE) return CG_NONE;
  simp S = {g, ranges, NULL, 0, 0, NULL, 0, 0, 0}, *s = &S;
  int n = root + 1;
  int *slot = malloc(sizeof(int) * (size_t)n);
  cg_ref *ref = malloc(sizeof(cg_ref) * (size_t)n), *nw = malloc(sizeof(cg_ref) * (size_t)n);
  cg_ref out = CG_NONE;
  if (!slot || !ref || !nw) goto done;
  int cnt = cg_reachable(g, root, slot, ref);
  /* An expression the lowering would refuse (an interval reaching +-2^62)
  ** stays as it is, to be refused as it is. */
  out = root;
  for (int k = 0; k < cnt; k++) {
    cg_range r = range(s, ref[k]);
    if (cg_type_of(g, ref[k]) == CG_INT && !known(r)) goto done;
  }
  if (s->bad) {
    out = CG_NONE;
    goto done;
  }
  for (int k = 0; k < cnt; k++) {
    cg_node nd = *cg_node_at(g, ref[k]);
    cg_ref a = nd.a != CG_NONE ? nw[nd.a] : CG_NONE, b = nd.b != CG_NONE ? nw[nd.b] : CG_NONE, r;
    int64_t c;
    switch (nd.op) {
    case CG_CONST: case CG_VAR: r = ref[k]; break;
    case CG_NEG: case CG_ABS: case CG_NOT: r = cg_un(g, nd.op, a); break;
    case CG_SELECT: r = cg_select(g, a, b, nw[nd.c]); break;
    case CG_DIV: case CG_MOD:
      if (cg_is_const(g, b, &c) && c > 0) {
        r = div_by(s, a, c, nd.op == CG_MOD);
        break;
      }
      /* fall through */
    default: r = cg_bin(g, nd.op, a, b); break;
    }
    if (r == CG_NONE || s->bad) {
      out = CG_NONE;
      goto done;
    }
    nw[ref[k]] = r;
  }
  out = nw[root];
done:
  free(slot);
  free(ref);
  free(nw);
  free(s->rg);
  free(s->tab);
  return out;
}
