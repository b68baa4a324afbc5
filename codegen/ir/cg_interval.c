/*
** Interval arithmetic over the compiled phases of cg_eval.h.
**
** Intervals reaching an op are never empty (boxes hold tokens, and every
** op maps non-empty intervals to non-empty ones), so the cheap ops are
** written without branches, as selects the compiler turns into
** conditional moves: an interval row's lanes take either side of a test
** at random, and mispredicted branches cost more than the ops.
*/
#include "cg_interval.h"

#include <stdlib.h>
#include <string.h>

static const cg_ival TOP = {INT64_MIN, INT64_MAX};

static int64_t lmin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t lmax(int64_t a, int64_t b) { return a > b ? a : b; }
static cg_ival iv(int64_t lo, int64_t hi) { return (cg_ival){lo, hi}; }
static cg_ival bval(int v) { return iv(v, v); }

/* The hull of a and b; an interval with lo > hi is empty. */
static cg_ival hull(cg_ival a, cg_ival b) {
  if (a.lo > a.hi) return b;
  if (b.lo > b.hi) return a;
  return iv(lmin(a.lo, b.lo), lmax(a.hi, b.hi));
}
static const cg_ival NOTHING = {1, 0};

/* -------------------------------------------------------------- arithmetic */

/* r, or TOP where o is set. */
static cg_ival or_top(cg_ival r, int o) {
  r.lo = o ? INT64_MIN : r.lo;
  r.hi = o ? INT64_MAX : r.hi;
  return r;
}

static cg_ival iv_add(cg_ival a, cg_ival b) {
  cg_ival r;
  int o = __builtin_add_overflow(a.lo, b.lo, &r.lo) | __builtin_add_overflow(a.hi, b.hi, &r.hi);
  return or_top(r, o);
}

static cg_ival iv_sub(cg_ival a, cg_ival b) {
  cg_ival r;
  int o = __builtin_sub_overflow(a.lo, b.hi, &r.lo) | __builtin_sub_overflow(a.hi, b.lo, &r.hi);
  return or_top(r, o);
}

static cg_ival iv_mul(cg_ival a, cg_ival b) {
  int64_t p[4];
  if (__builtin_mul_overflow(a.lo, b.lo, &p[0]) || __builtin_mul_overflow(a.lo, b.hi, &p[1]) ||
      __builtin_mul_overflow(a.hi, b.lo, &p[2]) || __builtin_mul_overflow(a.hi, b.hi, &p[3]))
    return TOP;
  return iv(lmin(lmin(p[0], p[1]), lmin(p[2], p[3])), lmax(lmax(p[0], p[1]), lmax(p[2], p[3])));
}

/* Negations in unsigned arithmetic: -INT64_MIN wraps, and or_top discards
** it. */
static int64_t wneg(int64_t x) { return (int64_t)(0 - (uint64_t)x); }

static cg_ival iv_neg(cg_ival a) { return or_top(iv(wneg(a.hi), wneg(a.lo)), a.lo == INT64_MIN); }

/* lo >= 0: a; hi <= 0: -a; else [0, max(-lo, hi)]: all three at once. */
static cg_ival iv_abs(cg_ival a) {
  return or_top(iv(lmax(0, lmax(a.lo, wneg(a.hi))), lmax(a.hi, wneg(a.lo))), a.lo == INT64_MIN);
}

/*
** Floor division by divisors of one sign is monotone in each operand, so
** over a box its extremes sit at the corners; a divisor range that spans 0
** is split, and contributes 0 for x/0.
*/
static cg_ival div_corners(cg_ival a, int64_t d1, int64_t d2) {
  if (d1 == -1 || d2 == -1) {
    if (a.lo == INT64_MIN) return TOP;
  }
  int64_t p[4] = {cg_floordiv(a.lo, d1), cg_floordiv(a.lo, d2), cg_floordiv(a.hi, d1),
                  cg_floordiv(a.hi, d2)};
  return iv(lmin(lmin(p[0], p[1]), lmin(p[2], p[3])), lmax(lmax(p[0], p[1]), lmax(p[2], p[3])));
}

static cg_ival iv_div(cg_ival a, cg_ival b) {
  cg_ival r = NOTHING;
  if (b.lo <= 0 && b.hi >= 0) r = bval(0);
  if (b.hi > 0) r = hull(r, div_corners(a, lmax(b.lo, 1), b.hi));
  if (b.lo < 0) r = hull(r, div_corners(a, b.lo, lmin(b.hi, -1)));
  return r;
}

static cg_ival mod_const(cg_ival a, int64_t c) {
  if (c == 0 || c == 1 || c == -1) return bval(0);
  /* Within one period the remainder is a - const: monotone. */
  if (cg_floordiv(a.lo, c) == cg_floordiv(a.hi, c))
    return iv(cg_floormod(a.lo, c), cg_floormod(a.hi, c));
  return c > 0 ? iv(0, c - 1) : iv(c + 1, 0);
}

static cg_ival mod_pos(cg_ival a, int64_t p1, int64_t p2) {
  if (a.lo >= 0 && a.hi < p1) return a;
  if (a.lo >= 0) return iv(0, lmin(a.hi, p2 - 1));
  return iv(0, p2 - 1);
}

static cg_ival mod_neg(cg_ival a, int64_t n1, int64_t n2) {
  if (a.hi <= 0 && a.lo > n2) return a;
  if (a.hi <= 0) return iv(lmax(a.lo, n1 + 1), 0);
  return iv(n1 + 1, 0);
}

static cg_ival iv_mod(cg_ival a, cg_ival b) {
  if (b.lo == b.hi) return mod_const(a, b.lo);
  cg_ival r = NOTHING;
  if (b.lo <= 0 && b.hi >= 0) r = bval(0);
  if (b.hi > 0) r = hull(r, mod_pos(a, lmax(b.lo, 1), b.hi));
  if (b.lo < 0) r = hull(r, mod_neg(a, b.lo, lmin(b.hi, -1)));
  return r;
}

/* -------------------------------------------------------------- booleans */

/* Booleans: lo is "true for every pair", hi "true for some pair". */
static cg_ival iv_eq(cg_ival a, cg_ival b) {
  return iv((a.lo == a.hi) & (b.lo == b.hi) & (a.lo == b.lo), (a.hi >= b.lo) & (b.hi >= a.lo));
}

static cg_ival iv_lt(cg_ival a, cg_ival b) { return iv(a.hi < b.lo, a.lo < b.hi); }

static cg_ival iv_le(cg_ival a, cg_ival b) { return iv(a.hi <= b.lo, a.lo <= b.hi); }

/* Truth as a [0, 1] interval of an integer interval (x != 0). */
static cg_ival truth(cg_ival a) { return iv((a.lo > 0) | (a.hi < 0), (a.lo != 0) | (a.hi != 0)); }

static cg_ival iv_not(cg_ival a) {
  cg_ival t = truth(a);
  return iv(1 - t.hi, 1 - t.lo);
}

static cg_ival iv_select(cg_ival c, cg_ival a, cg_ival b) {
  cg_ival t = truth(c);
  int64_t lo = t.hi ? lmin(a.lo, b.lo) : b.lo, hi = t.hi ? lmax(a.hi, b.hi) : b.hi;
  return iv(t.lo ? a.lo : lo, t.lo ? a.hi : hi);
}

/* ------------------------------------------------------------- executor */

struct cg_iscratch {
  const cg_prog *p;
  cg_ival *cval;       /* [ncval]: the bound C values as points */
  cg_ival *qv;         /* [nqv] */
  cg_ival *tmp;        /* [maxtmp][CG_CHUNK] */
  cg_ival *in;         /* [CG_NIN][CG_CHUNK] */
  const cg_ival **ptr; /* [maxslots] */
  const cg_ival **inp; /* [max(CG_NIN, nkv)] */
  uint8_t *bcast;      /* [maxslots]: slot holds one value, not a vector */
  int32_t *ins;        /* [maxslots]: the input slots of phase ph, nin of them */
  int nin;
  const cg_phase *ph;  /* the phase, and binding, ptr and bcast were set for */
  uint64_t gen;
};

static int imax(int a, int b) { return a > b ? a : b; }

cg_iscratch *cg_iscratch_new(const cg_prog *p) {
  cg_iscratch *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->p = p;
  s->cval = calloc((size_t)imax(p->ncval, 1), sizeof(cg_ival));
  s->qv = calloc((size_t)imax(p->q.nout, 1), sizeof(cg_ival));
  s->tmp = calloc((size_t)imax(p->maxtmp, 1) * CG_CHUNK, sizeof(cg_ival));
  s->in = calloc((size_t)CG_NIN * CG_CHUNK, sizeof(cg_ival));
  s->ptr = calloc((size_t)imax(p->maxslots, 1), sizeof(cg_ival *));
  s->bcast = calloc((size_t)imax(p->maxslots, 1), 1);
  s->inp = calloc((size_t)imax(p->k.nout, CG_NIN), sizeof(cg_ival *));
  s->ins = calloc((size_t)imax(p->maxslots, 1), sizeof(int32_t));
  if (!s->cval || !s->qv || !s->tmp || !s->in || !s->ptr || !s->bcast || !s->inp || !s->ins) {
    cg_iscratch_free(s);
    return NULL;
  }
  return s;
}

void cg_iscratch_free(cg_iscratch *s) {
  if (!s) return;
  free(s->cval);
  free(s->qv);
  free(s->tmp);
  free(s->in);
  free(s->ptr);
  free(s->bcast);
  free(s->inp);
  free(s->ins);
  free(s);
}

/*
** Broadcast operands are read as one value (stride 0) instead of being
** copied into vectors: interval ops are scalar code either way. Only the
** input slots change between calls on one phase and binding; the rest is
** set when either changes.
*/
static void resolve(const cg_phase *ph, cg_iscratch *s, const cg_ival *const *in) {
  if (s->ph != ph || s->gen != s->p->gen) {
    for (int i = 0; i < s->p->ncval; i++) s->cval[i] = iv(s->p->cval[i], s->p->cval[i]);
    s->nin = 0;
    for (int i = 0; i < ph->nslots; i++) {
      const cg_slot *sl = &ph->slots[i];
      s->bcast[i] = sl->kind == CG_SLOT_CONST || sl->kind == CG_SLOT_QV;
      switch (sl->kind) {
      case CG_SLOT_IN: s->ins[s->nin++] = i; break;
      case CG_SLOT_CONST: s->ptr[i] = s->cval + sl->idx; break;
      case CG_SLOT_QV: s->ptr[i] = s->qv + sl->idx; break;
      default: s->ptr[i] = s->tmp + (size_t)sl->idx * CG_CHUNK; break;
      }
    }
    s->ph = ph;
    s->gen = s->p->gen;
  }
  for (int i = 0; i < s->nin; i++) s->ptr[s->ins[i]] = in[ph->slots[s->ins[i]].idx];
}

static cg_ival iv_min(cg_ival a, cg_ival b) { return iv(lmin(a.lo, b.lo), lmin(a.hi, b.hi)); }
static cg_ival iv_max(cg_ival a, cg_ival b) { return iv(lmax(a.lo, b.lo), lmax(a.hi, b.hi)); }
static cg_ival iv_ne(cg_ival a, cg_ival b) { return iv_not(iv_eq(a, b)); }
static cg_ival iv_and(cg_ival a, cg_ival b) {
  cg_ival x = truth(a), y = truth(b);
  return iv(x.lo & y.lo, x.hi & y.hi);
}
static cg_ival iv_or(cg_ival a, cg_ival b) {
  cg_ival x = truth(a), y = truth(b);
  return iv(x.lo | y.lo, x.hi | y.hi);
}

cg_ival cg_ival_apply(int op, cg_ival a, cg_ival b, cg_ival c) {
  switch (op) {
  case CG_ADD: return iv_add(a, b);
  case CG_SUB: return iv_sub(a, b);
  case CG_MUL: return iv_mul(a, b);
  case CG_DIV: return iv_div(a, b);
  case CG_MOD: return iv_mod(a, b);
  case CG_MIN: return iv_min(a, b);
  case CG_MAX: return iv_max(a, b);
  case CG_NEG: return iv_neg(a);
  case CG_ABS: return iv_abs(a);
  case CG_EQ: return iv_eq(a, b);
  case CG_NE: return iv_ne(a, b);
  case CG_LT: return iv_lt(a, b);
  case CG_LE: return iv_le(a, b);
  case CG_AND: return iv_and(a, b);
  case CG_OR: return iv_or(a, b);
  case CG_NOT: return iv_not(a);
  case CG_SELECT: return iv_select(a, b, c);
  case CG_OP_COPY: return a;
  default: return TOP;
  }
}

/* One loop per op, so the op's code is inlined into its loop; binary ops
** have one per pattern of broadcast operands, so that the common one
** (vector against one value) reads no stride. */
#define L1(f) for (int i = 0; i < len; i++) d[i] = f(a[i * sa]); break
#define L2(f) \
  if (sa && sb) for (int i = 0; i < len; i++) d[i] = f(a[i], b[i]); \
  else if (sa) for (int i = 0; i < len; i++) d[i] = f(a[i], b[0]); \
  else if (sb) for (int i = 0; i < len; i++) d[i] = f(a[0], b[i]); \
  else for (int i = 0; i < len; i++) d[i] = f(a[0], b[0]); \
  break

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void run(const cg_phase *ph, cg_iscratch *s, int len) {
  for (int k = 0; k < ph->nins; k++) {
    const cg_inst *in = &ph->ins[k];
    cg_ival *d = (cg_ival *)s->ptr[in->d];
    const cg_ival *a = s->ptr[in->a];
    const cg_ival *b = in->b >= 0 ? s->ptr[in->b] : a;
    const cg_ival *c = in->c >= 0 ? s->ptr[in->c] : a;
    int sa = !s->bcast[in->a], sb = in->b >= 0 ? !s->bcast[in->b] : sa;
    int sc = in->c >= 0 ? !s->bcast[in->c] : sa;
    switch (in->op) {
    case CG_ADD: L2(iv_add);
    case CG_SUB: L2(iv_sub);
    case CG_MUL: L2(iv_mul);
    case CG_DIV: L2(iv_div);
    case CG_MOD: L2(iv_mod);
    case CG_MIN: L2(iv_min);
    case CG_MAX: L2(iv_max);
    case CG_NEG: L1(iv_neg);
    case CG_ABS: L1(iv_abs);
    case CG_EQ: L2(iv_eq);
    case CG_NE: L2(iv_ne);
    case CG_LT: L2(iv_lt);
    case CG_LE: L2(iv_le);
    case CG_AND: L2(iv_and);
    case CG_OR: L2(iv_or);
    case CG_NOT: L1(iv_not);
    case CG_SELECT:
      for (int i = 0; i < len; i++) d[i] = iv_select(a[i * sa], b[i * sb], c[i * sc]);
      break;
    default: for (int i = 0; i < len; i++) d[i] = a[i * sa]; break;
    }
  }
}

void cg_ival_side(const cg_prog *p, int key_side, const cg_box *boxes, int64_t n,
                  cg_ival *out, int64_t ld, cg_iscratch *s) {
  const cg_phase *ph = key_side ? &p->k : &p->q;
  for (int64_t o = 0; o < n; o += CG_CHUNK) {
    int len = (int)(n - o < CG_CHUNK ? n - o : CG_CHUNK);
    for (int v = 0; v < CG_NIN; v++) {
      cg_ival *col = s->in + (size_t)v * CG_CHUNK;
      for (int i = 0; i < len; i++) col[i] = boxes[o + i].v[v];
      s->inp[v] = col;
    }
    resolve(ph, s, s->inp);
    run(ph, s, len);
    for (int j = 0; j < ph->nout; j++) {
      const cg_ival *src = s->ptr[ph->out[j]];
      int st = !s->bcast[ph->out[j]];
      for (int i = 0; i < len; i++) out[j * ld + o + i] = src[i * st];
    }
  }
}

static uint8_t classify(cg_ival r) {
  cg_ival t = truth(r);
  return t.lo == 1 ? CG_BLK_FULL : t.hi == 0 ? CG_BLK_EMPTY : CG_BLK_UNDECIDED;
}

/* Which of the first 64 instructions are the single value 0 or 1, in the
** lanes left undecided (the others need no refinement): a lane's bits are
** gathered in registers, with no branch per instruction. Only comparisons
** and logic are looked at: an arithmetic value that happens to be 0 or 1
** feeds decided booleans, or stays live anyway, so it specialises little
** and costs a load per lane. */
static void signatures(const cg_phase *ph, cg_iscratch *s, int len, const uint8_t *cls,
                       uint64_t *dec, uint64_t *val) {
  const cg_ival *r[64];
  int kk[64], n = 0;
  for (int k = 0; k < ph->nins && k < 64; k++) {
    int op = ph->ins[k].op;
    if (op == CG_EQ || op == CG_NE || op == CG_LT || op == CG_LE || op == CG_AND || op == CG_OR || op == CG_NOT) {
      kk[n] = k;
      r[n++] = s->ptr[ph->ins[k].d];
    }
  }
  for (int i = 0; i < len; i++) {
    uint64_t dd = 0, vv = 0;
    if (cls[i] == CG_BLK_UNDECIDED)
      for (int k = 0; k < n; k++) {
        cg_ival x = r[k][i];
        uint64_t b = (x.lo == x.hi) & ((uint64_t)x.lo <= 1);
        dd |= b << kk[k];
        vv |= (b & (uint64_t)x.lo) << kk[k];
      }
    dec[i] = dd;
    val[i] = vv;
  }
}

void cg_ival_row_sig(const cg_prog *p, const cg_ival *qv, const cg_ival *kv, int64_t ldk, int n,
                     uint8_t *out, uint64_t *dec, uint64_t *val, cg_iscratch *s) {
  const cg_phase *ph = &p->qk;
  memcpy(s->qv, qv, sizeof(cg_ival) * (size_t)p->q.nout);
  for (int o = 0; o < n; o += CG_CHUNK) {
    int len = n - o < CG_CHUNK ? n - o : CG_CHUNK;
    for (int j = 0; j < p->k.nout; j++) s->inp[j] = kv + j * ldk + o;
    resolve(ph, s, s->inp);
    run(ph, s, len);
    const cg_ival *r = s->ptr[p->root];
    int st = !s->bcast[p->root];
    for (int i = 0; i < len; i++) out[o + i] = classify(r[i * st]);
    if (dec) signatures(ph, s, len, out + o, dec + o, val + o);
  }
}

void cg_ival_row(const cg_prog *p, const cg_ival *qv, const cg_ival *kv, int64_t ldk,
                 int n, uint8_t *out, cg_iscratch *s) {
  cg_ival_row_sig(p, qv, kv, ldk, n, out, NULL, NULL, s);
}
