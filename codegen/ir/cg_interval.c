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
#include "cg_clones.h"

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

/* Both ends are always written (| not ||), so no branch is taken on the
** first; the ints keep clang from reading it as a mistyped ||. */
static cg_ival iv_add(cg_ival a, cg_ival b) {
  cg_ival r;
  int o = (int)__builtin_add_overflow(a.lo, b.lo, &r.lo) | (int)__builtin_add_overflow(a.hi, b.hi, &r.hi);
  return or_top(r, o);
}

static cg_ival iv_sub(cg_ival a, cg_ival b) {
  cg_ival r;
  int o = (int)__builtin_sub_overflow(a.lo, b.hi, &r.lo) | (int)__builtin_sub_overflow(a.hi, b.lo, &r.hi);
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
  if (d1 == d2) { /* one divisor (a constant, mostly): monotone in a alone, two divisions */
    int64_t x = cg_floordiv(a.lo, d1), y = cg_floordiv(a.hi, d1);
    return d1 > 0 ? iv(x, y) : iv(y, x);
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

/*
** The executor keeps intervals as two vectors, lows and highs, so that the
** cheap ops run four lanes at a time in GCC's generic vectors; products,
** quotients and remainders go lane by lane through the scalar ops above.
** Every slot is a vector: constants are splat when the binding changes,
** the query's interfaces once per row.
*/
#define VL 4
typedef int64_t vi __attribute__((vector_size(VL * 8), aligned(8), may_alias));

struct cg_iscratch {
  const cg_prog *p;
  int64_t *cv;         /* [ncval][2][CG_CHUNK]: the bound C values as points */
  int64_t *qv;         /* [nqv][2][CG_CHUNK] */
  int64_t *tmp;        /* [maxtmp][2][CG_CHUNK]: lows, then highs */
  int64_t *in;         /* [max(CG_NIN, nkv)][2][CG_CHUNK] */
  int64_t **lo, **hi;  /* [maxslots] */
  const cg_phase *ph;  /* the phase the slots were set for */
  uint64_t gen;        /* the binding cv holds, plus one */
};

static int imax(int a, int b) { return a > b ? a : b; }

cg_iscratch *cg_iscratch_new(const cg_prog *p) {
  cg_iscratch *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->p = p;
  size_t ns = (size_t)imax(p->maxslots, 1), v = 2 * CG_CHUNK;
  s->cv = calloc((size_t)imax(p->ncval, 1) * v, sizeof(int64_t));
  s->qv = calloc((size_t)imax(p->q.nout, 1) * v, sizeof(int64_t));
  s->tmp = calloc((size_t)imax(p->maxtmp, 1) * v, sizeof(int64_t));
  s->in = calloc((size_t)imax(CG_NIN, p->k.nout) * v, sizeof(int64_t));
  s->lo = calloc(2 * ns, sizeof(int64_t *));
  if (!s->cv || !s->qv || !s->tmp || !s->in || !s->lo) {
    cg_iscratch_free(s);
    return NULL;
  }
  s->hi = s->lo + ns;
  return s;
}

void cg_iscratch_free(cg_iscratch *s) {
  if (!s) return;
  free(s->cv);
  free(s->qv);
  free(s->tmp);
  free(s->in);
  free(s->lo);
  free(s);
}

/* Input v's lanes: lows at in[v][0], highs at in[v][1]. */
static int64_t *in_lo(cg_iscratch *s, int v) { return s->in + (size_t)v * 2 * CG_CHUNK; }

/* Slot pointers, set when the phase changes; constants when the binding
** does. */
static void resolve(const cg_phase *ph, cg_iscratch *s) {
  if (s->gen != s->p->gen + 1) {
    for (int i = 0; i < s->p->ncval; i++)
      for (int k = 0; k < 2 * CG_CHUNK; k++) s->cv[(size_t)i * 2 * CG_CHUNK + k] = s->p->cval[i];
    s->gen = s->p->gen + 1;
  }
  if (s->ph == ph) return;
  for (int i = 0; i < ph->nslots; i++) {
    const cg_slot *sl = &ph->slots[i];
    int64_t *l = sl->kind == CG_SLOT_IN      ? s->in
                 : sl->kind == CG_SLOT_CONST ? s->cv
                 : sl->kind == CG_SLOT_QV    ? s->qv
                                             : s->tmp;
    s->lo[i] = l + (size_t)sl->idx * 2 * CG_CHUNK;
    s->hi[i] = s->lo[i] + CG_CHUNK;
  }
  s->ph = ph;
}

/* Lanes [0, len) of input v from n intervals at stride 1, the padding
** lanes set to [0, 0]. */
static void load_in(cg_iscratch *s, int v, const cg_ival *x, int len) {
  int64_t *l = in_lo(s, v), *h = l + CG_CHUNK;
  for (int i = 0; i < len; i++) {
    l[i] = x[i].lo;
    h[i] = x[i].hi;
  }
  for (int i = len; i < (len + VL - 1) / VL * VL; i++) l[i] = h[i] = 0;
}

static cg_ival slot_at(const cg_iscratch *s, int32_t slot, int i) { return iv(s->lo[slot][i], s->hi[slot][i]); }

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

typedef uint64_t vu __attribute__((vector_size(VL * 8), aligned(8), may_alias));

#define VBLEND(m, x, y) (((m) & (x)) | (~(m) & (y)))
#define VMIN(x, y) VBLEND((x) < (y), x, y)
#define VMAX(x, y) VBLEND((x) > (y), x, y)
#define WRAP(e) ((vi)(e)) /* unsigned arithmetic: wraps */
#define TRUE_LO(l, h) (((l) > zero) | ((h) < zero))  /* truth: true for every value */
#define TRUE_HI(l, h) (((l) != zero) | ((h) != zero)) /* ... for some value */

/* One op over the lanes: xl, xh, yl, yh, zl, zh the operands' lows and
** highs, the result's into rl, rh. */
#define VLOOP(body) \
  for (int i = 0; i < len; i += VL) { \
    vi xl = *(const vi *)(al + i), xh = *(const vi *)(ah + i), yl = *(const vi *)(bl + i); \
    vi yh = *(const vi *)(bh + i), zl = *(const vi *)(cl + i), zh = *(const vi *)(ch + i), rl, rh, o; \
    (void)yl; (void)yh; (void)zl; (void)zh; (void)o; \
    body; \
    *(vi *)(dl + i) = rl; \
    *(vi *)(dh + i) = rh; \
  } \
  break

CG_CLONES
static void run(const cg_phase *ph, cg_iscratch *s, int n) {
  const vi one = (vi){0} + 1, zero = (vi){0}, vmin = (vi){0} + INT64_MIN, vmax = (vi){0} + INT64_MAX;
  int len = (n + VL - 1) / VL * VL;
  for (int k = 0; k < ph->nins; k++) {
    const cg_inst *in = &ph->ins[k];
    int32_t a = in->a, b = in->b >= 0 ? in->b : a, c = in->c >= 0 ? in->c : a;
    int64_t *dl = s->lo[in->d], *dh = s->hi[in->d];
    const int64_t *al = s->lo[a], *ah = s->hi[a], *bl = s->lo[b], *bh = s->hi[b], *cl = s->lo[c], *ch = s->hi[c];
    switch (in->op) {
    case CG_ADD:
      VLOOP(rl = WRAP((vu)xl + (vu)yl); rh = WRAP((vu)xh + (vu)yh);
            o = (((xl ^ rl) & (yl ^ rl)) | ((xh ^ rh) & (yh ^ rh))) < zero;
            rl = VBLEND(o, vmin, rl); rh = VBLEND(o, vmax, rh));
    case CG_SUB:
      VLOOP(rl = WRAP((vu)xl - (vu)yh); rh = WRAP((vu)xh - (vu)yl);
            o = (((xl ^ yh) & (xl ^ rl)) | ((xh ^ yl) & (xh ^ rh))) < zero;
            rl = VBLEND(o, vmin, rl); rh = VBLEND(o, vmax, rh));
    case CG_MIN: VLOOP(rl = VMIN(xl, yl); rh = VMIN(xh, yh));
    case CG_MAX: VLOOP(rl = VMAX(xl, yl); rh = VMAX(xh, yh));
    case CG_NEG:
      VLOOP(o = xl == vmin; rl = VBLEND(o, vmin, WRAP((vu)zero - (vu)xh)); rh = VBLEND(o, vmax, WRAP((vu)zero - (vu)xl)));
    case CG_ABS:
      VLOOP(o = xl == vmin; rl = VMAX(zero, VMAX(xl, WRAP((vu)zero - (vu)xh))); rh = VMAX(xh, WRAP((vu)zero - (vu)xl));
            rl = VBLEND(o, vmin, rl); rh = VBLEND(o, vmax, rh));
    case CG_EQ: VLOOP(rl = (xl == xh) & (yl == yh) & (xl == yl) & one; rh = (xh >= yl) & (yh >= xl) & one);
    case CG_NE: VLOOP(rl = ~((xh >= yl) & (yh >= xl)) & one; rh = ~((xl == xh) & (yl == yh) & (xl == yl)) & one);
    case CG_LT: VLOOP(rl = (xh < yl) & one; rh = (xl < yh) & one);
    case CG_LE: VLOOP(rl = (xh <= yl) & one; rh = (xl <= yh) & one);
    case CG_AND: VLOOP(rl = TRUE_LO(xl, xh) & TRUE_LO(yl, yh) & one; rh = TRUE_HI(xl, xh) & TRUE_HI(yl, yh) & one);
    case CG_OR: VLOOP(rl = (TRUE_LO(xl, xh) | TRUE_LO(yl, yh)) & one; rh = (TRUE_HI(xl, xh) | TRUE_HI(yl, yh)) & one);
    case CG_NOT: VLOOP(rl = ~TRUE_HI(xl, xh) & one; rh = ~TRUE_LO(xl, xh) & one);
    case CG_SELECT:
      VLOOP(vi tl = TRUE_LO(xl, xh); vi th = TRUE_HI(xl, xh);
            rl = VBLEND(tl, yl, VBLEND(th, VMIN(yl, zl), zl)); rh = VBLEND(tl, yh, VBLEND(th, VMAX(yh, zh), zh)));
    case CG_MUL:
    case CG_DIV:
    case CG_MOD:
      for (int i = 0; i < n; i++) {
        cg_ival r = cg_ival_apply(in->op, slot_at(s, a, i), slot_at(s, b, i), slot_at(s, c, i));
        dl[i] = r.lo;
        dh[i] = r.hi;
      }
      for (int i = n; i < len; i++) dl[i] = dh[i] = 0;
      break;
    default: VLOOP(rl = xl; rh = xh);
    }
  }
}

void cg_ival_side(const cg_prog *p, int key_side, const cg_box *boxes, int64_t n,
                  cg_ival *out, int64_t ld, cg_iscratch *s) {
  const cg_phase *ph = key_side ? &p->k : &p->q;
  resolve(ph, s);
  for (int64_t o = 0; o < n; o += CG_CHUNK) {
    int len = (int)(n - o < CG_CHUNK ? n - o : CG_CHUNK);
    cg_ival col[CG_CHUNK];
    for (int v = 0; v < CG_NIN; v++) {
      for (int i = 0; i < len; i++) col[i] = boxes[o + i].v[v];
      load_in(s, v, col, len);
    }
    run(ph, s, len);
    for (int j = 0; j < ph->nout; j++)
      for (int i = 0; i < len; i++) out[j * ld + o + i] = slot_at(s, ph->out[j], i);
  }
}

static uint8_t classify(cg_ival r) {
  cg_ival t = truth(r);
  return t.lo == 1 ? CG_BLK_FULL : t.hi == 0 ? CG_BLK_EMPTY : CG_BLK_UNDECIDED;
}

/* Which of the first 64 instructions are the single value 0 or 1, in the
** lanes left undecided (the others need no refinement), a vector of lanes
** at a time. Only comparisons and logic are looked at: an arithmetic value
** that happens to be 0 or 1 feeds decided booleans, or stays live anyway,
** so it specialises little and costs a load per lane. Lanes past len hold
** what padding gave them and are not stored. */
CG_CLONES
static void signatures(const cg_phase *ph, cg_iscratch *s, int len, const uint8_t *cls,
                       uint64_t *dec, uint64_t *val) {
  const int64_t *rl[64], *rh[64];
  int kk[64], n = 0;
  for (int k = 0; k < ph->nins && k < 64; k++) {
    int op = ph->ins[k].op;
    if (op == CG_EQ || op == CG_NE || op == CG_LT || op == CG_LE || op == CG_AND || op == CG_OR || op == CG_NOT) {
      kk[n] = k;
      rl[n] = s->lo[ph->ins[k].d];
      rh[n++] = s->hi[ph->ins[k].d];
    }
  }
  const vu one = (vu){0} + 1;
  for (int i = 0; i < len; i += VL) {
    vu dd = (vu){0}, vv = (vu){0};
    for (int k = 0; k < n; k++) {
      vu lo = *(const vu *)(rl[k] + i), hi = *(const vu *)(rh[k] + i);
      vu b = (vu)((lo == hi) & (lo <= one)) & one;
      dd |= b << (uint64_t)kk[k];
      vv |= (b & lo) << (uint64_t)kk[k];
    }
    for (int l = 0; l < VL && i + l < len; l++) {
      int und = cls[i + l] == CG_BLK_UNDECIDED;
      dec[i + l] = und ? dd[l] : 0;
      val[i + l] = und ? vv[l] : 0;
    }
  }
}

void cg_ival_row_sig(const cg_prog *p, const cg_ival *qv, const cg_ival *kv, int64_t ldk, int n,
                     uint8_t *out, uint64_t *dec, uint64_t *val, cg_iscratch *s) {
  const cg_phase *ph = &p->qk;
  resolve(ph, s);
  int lanes = n < CG_CHUNK ? (n + VL - 1) / VL * VL : CG_CHUNK;
  for (int j = 0; j < p->q.nout; j++)
    for (int i = 0; i < lanes; i++) {
      s->qv[(size_t)j * 2 * CG_CHUNK + i] = qv[j].lo;
      s->qv[(size_t)j * 2 * CG_CHUNK + CG_CHUNK + i] = qv[j].hi;
    }
  for (int o = 0; o < n; o += CG_CHUNK) {
    int len = n - o < CG_CHUNK ? n - o : CG_CHUNK;
    for (int j = 0; j < p->k.nout; j++) load_in(s, j, kv + j * ldk + o, len);
    run(ph, s, len);
    for (int i = 0; i < len; i++) out[o + i] = classify(slot_at(s, p->root, i));
    if (dec) signatures(ph, s, len, out + o, dec + o, val + o);
  }
}

void cg_ival_row(const cg_prog *p, const cg_ival *qv, const cg_ival *kv, int64_t ldk,
                 int n, uint8_t *out, cg_iscratch *s) {
  cg_ival_row_sig(p, qv, kv, ldk, n, out, NULL, NULL, s);
}

/* Lanes [0, len) of interfaces from x[j * ld + at[i]], padding lanes
** [0, 0]. */
static void gather(int64_t *l, int64_t *h, const cg_ival *x, int64_t ld, int j, const int32_t *at, int len) {
  const cg_ival *c = x + (int64_t)j * ld;
  for (int i = 0; i < len; i++) {
    l[i] = c[at[i]].lo;
    h[i] = c[at[i]].hi;
  }
  for (int i = len; i < (len + VL - 1) / VL * VL; i++) l[i] = h[i] = 0;
}

/* Interface j is read where bit j of live is set (from 64 on, always). */
static int reads(uint64_t live, int j) { return j >= 64 || (live >> j & 1); }

static void pairs(const cg_prog *p, const cg_phase *ph, int32_t root, uint64_t qlive, uint64_t klive,
                  const cg_ival *qv, int64_t ldq, const int32_t *qi, const cg_ival *kv, int64_t ldk,
                  const int32_t *ki, int n, uint8_t *out, uint64_t *dec, uint64_t *val, cg_iscratch *s) {
  resolve(ph, s);
  /* One query in every lane: broadcast once for the whole call (the phase
  ** never writes its query inputs). */
  int lanes = n < CG_CHUNK ? (n + VL - 1) / VL * VL : CG_CHUNK;
  for (int j = 0; !qi && j < p->q.nout; j++) {
    if (!reads(qlive, j)) continue;
    int64_t *l = s->qv + (size_t)j * 2 * CG_CHUNK;
    cg_ival x = qv[(int64_t)j * ldq];
    for (int i = 0; i < lanes; i++) {
      l[i] = x.lo;
      l[CG_CHUNK + i] = x.hi;
    }
  }
  for (int o = 0; o < n; o += CG_CHUNK) {
    int len = n - o < CG_CHUNK ? n - o : CG_CHUNK;
    for (int j = 0; qi && j < p->q.nout; j++) {
      if (!reads(qlive, j)) continue;
      int64_t *l = s->qv + (size_t)j * 2 * CG_CHUNK;
      gather(l, l + CG_CHUNK, qv, ldq, j, qi + o, len);
    }
    for (int j = 0; j < p->k.nout; j++) {
      if (!reads(klive, j)) continue;
      int64_t *l = in_lo(s, j);
      gather(l, l + CG_CHUNK, kv, ldk, j, ki + o, len);
    }
    run(ph, s, len);
    for (int i = 0; i < len; i++) out[o + i] = classify(slot_at(s, root, i));
    if (dec) signatures(ph, s, len, out + o, dec + o, val + o);
  }
}

void cg_ival_pairs_sig(const cg_prog *p, const cg_ival *qv, int64_t ldq, const int32_t *qi, const cg_ival *kv,
                       int64_t ldk, const int32_t *ki, int n, uint8_t *out, uint64_t *dec, uint64_t *val,
                       cg_iscratch *s) {
  pairs(p, &p->qk, p->root, ~0ull, ~0ull, qv, ldq, qi, kv, ldk, ki, n, out, dec, val, s);
}

void cg_ival_spec_pairs(const cg_prog *p, const cg_spec *sp, const cg_ival *qv, int64_t ldq, const int32_t *qi,
                        const cg_ival *kv, int64_t ldk, const int32_t *ki, int n, uint8_t *out, cg_iscratch *s) {
  pairs(p, &sp->ph, sp->root, sp->qlive, sp->klive, qv, ldq, qi, kv, ldk, ki, n, out, NULL, NULL, s);
}
