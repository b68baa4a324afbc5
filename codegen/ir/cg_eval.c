/*
** Bulk evaluation: compilation of an expression into Q, K and QK phases,
** and the vector executor that runs them.
*/
#include "cg_eval.h"
#include "cg_clones.h"

#include <stdlib.h>
#include <string.h>

#define PAD 4  /* lanes per vector operation */

int cg_coords_init(cg_coords *c, int64_t n) {
  memset(c, 0, sizeof *c);
  size_t b = sizeof(int32_t) * (size_t)(n > 0 ? n : 1);
  c->n = n;
  c->t = malloc(b);
  c->y = malloc(b);
  c->x = malloc(b);
  c->text = malloc(b);
  c->idx = malloc(b);
  if (c->t && c->y && c->x && c->text && c->idx) return 0;
  cg_coords_free(c);
  return -1;
}

void cg_coords_free(cg_coords *c) {
  free(c->t);
  free(c->y);
  free(c->x);
  free(c->text);
  free(c->idx);
  memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ semantics */

static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* -1 is the one divisor whose quotient can overflow; it is a negation. */
static int64_t safe_div(int64_t a, int64_t b) {
  if (b == -1) return wrap_sub(0, a);
  return cg_floordiv(a, b);
}
static int64_t safe_mod(int64_t a, int64_t b) { return b == -1 ? 0 : cg_floormod(a, b); }

int64_t cg_apply(int op, int64_t a, int64_t b, int64_t c) {
  switch (op) {
  case CG_ADD: return wrap_add(a, b);
  case CG_SUB: return wrap_sub(a, b);
  case CG_MUL: return wrap_mul(a, b);
  case CG_DIV: return safe_div(a, b);
  case CG_MOD: return safe_mod(a, b);
  case CG_MIN: return a < b ? a : b;
  case CG_MAX: return a > b ? a : b;
  case CG_NEG: return wrap_sub(0, a);
  case CG_ABS: return a < 0 ? wrap_sub(0, a) : a;
  case CG_EQ: return a == b;
  case CG_NE: return a != b;
  case CG_LT: return a < b;
  case CG_LE: return a <= b;
  case CG_AND: return (a != 0) & (b != 0);
  case CG_OR: return (a != 0) | (b != 0);
  case CG_NOT: return a == 0;
  case CG_SELECT: return a ? b : c;
  case CG_OP_COPY: return a;
  default: return 0;
  }
}

/* ------------------------------------------------------------- compiler */

typedef struct phase_b {
  cg_phase ph;
  int32_t *slot_of;  /* node -> slot in this phase, -1 if none yet */
} phase_b;

typedef struct comp {
  const cg_graph *g;
  int n;
  uint8_t *side;     /* cg_side per node */
  uint8_t *reach;
  int32_t *cidx;     /* C node -> cval index */
  int32_t *qifc, *kifc;  /* Q/K node -> interface number, -1 if not one */
  cg_prog *p;
  phase_b q, k, qk;
} comp;

static int in_of_var(cg_var v) {
  switch (v) {
  case CG_V_QT: case CG_V_KT: return CG_IN_T;
  case CG_V_QY: case CG_V_KY: return CG_IN_Y;
  case CG_V_QX: case CG_V_KX: return CG_IN_X;
  case CG_V_QTEXT: case CG_V_KTEXT: return CG_IN_TEXT;
  case CG_V_QIDX: case CG_V_KIDX: return CG_IN_IDX;
  case CG_V_QPOS: case CG_V_KPOS: return CG_IN_POS;
  default: return -1;
  }
}

static cg_side var_side(cg_var v) {
  switch (v) {
  case CG_V_QT: case CG_V_QY: case CG_V_QX: case CG_V_QTEXT: case CG_V_QIDX: case CG_V_QPOS:
    return CG_SIDE_Q;
  case CG_V_KT: case CG_V_KY: case CG_V_KX: case CG_V_KTEXT: case CG_V_KIDX: case CG_V_KPOS:
    return CG_SIDE_K;
  default: return CG_SIDE_C;
  }
}

static int32_t new_slot(phase_b *b, cg_slot_kind kind, int32_t idx) {
  cg_phase *ph = &b->ph;
  if (kind == CG_SLOT_TMP) idx = ph->ntmp++;
  ph->slots[ph->nslots] = (cg_slot){.kind = (uint8_t)kind, .idx = idx};
  return ph->nslots++;
}

/* The slot through which phase `b` reads node r. */
static int32_t operand(comp *c, phase_b *b, cg_ref r) {
  if (b->slot_of[r] >= 0) return b->slot_of[r];
  const cg_node *n = cg_node_at(c->g, r);
  int32_t s;
  if (c->side[r] == CG_SIDE_C) s = new_slot(b, CG_SLOT_CONST, c->cidx[r]);
  else if (b == &c->qk && c->side[r] == CG_SIDE_Q) s = new_slot(b, CG_SLOT_QV, c->qifc[r]);
  else if (b == &c->qk && c->side[r] == CG_SIDE_K) s = new_slot(b, CG_SLOT_IN, c->kifc[r]);
  else s = new_slot(b, CG_SLOT_IN, in_of_var((cg_var)n->imm)); /* a var: computed nodes have slots */
  b->slot_of[r] = s;
  return s;
}

static void emit(comp *c, phase_b *b, cg_ref r, int op, cg_ref a, cg_ref x, cg_ref y) {
  cg_inst in = {.op = (uint8_t)op, .a = -1, .b = -1, .c = -1};
  if (a != CG_NONE) in.a = operand(c, b, a);
  if (x != CG_NONE) in.b = operand(c, b, x);
  if (y != CG_NONE) in.c = operand(c, b, y);
  in.d = new_slot(b, CG_SLOT_TMP, 0);
  if (r != CG_NONE) b->slot_of[r] = in.d;
  b->ph.ins[b->ph.nins++] = in;
}

static void place_c(comp *c, cg_ref r) {
  const cg_node *n = cg_node_at(c->g, r);
  cg_prog *p = c->p;
  int32_t i = p->ncval++;
  c->cidx[r] = i;
  if (n->op == CG_CONST) {
    p->cval[i] = n->imm;
  } else if (n->op == CG_VAR) {
    p->uni[n->imm - CG_V_HEAD] = i;
  } else {
    cg_inst in = {.op = n->op, .d = i, .a = -1, .b = -1, .c = -1};
    if (n->a != CG_NONE) in.a = c->cidx[n->a];
    if (n->b != CG_NONE) in.b = c->cidx[n->b];
    if (n->c != CG_NONE) in.c = c->cidx[n->c];
    p->cins[p->nc++] = in;
  }
}

static void classify(comp *c, cg_ref root) {
  c->reach[root] = 1;
  for (cg_ref i = root; i >= 0; i--) {
    if (!c->reach[i]) continue;
    const cg_node *n = cg_node_at(c->g, i);
    if (n->a != CG_NONE) c->reach[n->a] = 1;
    if (n->b != CG_NONE) c->reach[n->b] = 1;
    if (n->c != CG_NONE) c->reach[n->c] = 1;
  }
  for (cg_ref i = 0; i <= root; i++) {
    if (!c->reach[i]) continue;
    const cg_node *n = cg_node_at(c->g, i);
    uint8_t s = n->op == CG_VAR ? (uint8_t)var_side((cg_var)n->imm) : CG_SIDE_C;
    if (n->a != CG_NONE) s |= c->side[n->a];
    if (n->b != CG_NONE) s |= c->side[n->b];
    if (n->c != CG_NONE) s |= c->side[n->c];
    c->side[i] = s;
  }
}

static void mark_iface(comp *c, cg_ref r) {
  if (c->side[r] == CG_SIDE_Q && c->qifc[r] < 0) c->qifc[r] = c->q.ph.nout++;
  if (c->side[r] == CG_SIDE_K && c->kifc[r] < 0) c->kifc[r] = c->k.ph.nout++;
}

static void find_ifaces(comp *c, cg_ref root) {
  for (cg_ref i = 0; i <= root; i++) {
    const cg_node *n = cg_node_at(c->g, i);
    if (!c->reach[i] || c->side[i] != CG_SIDE_QK) continue;
    if (n->a != CG_NONE) mark_iface(c, n->a);
    if (n->b != CG_NONE) mark_iface(c, n->b);
    if (n->c != CG_NONE) mark_iface(c, n->c);
  }
  mark_iface(c, root);
}

static void build_phases(comp *c, cg_ref root) {
  for (cg_ref i = 0; i <= root; i++) {
    if (!c->reach[i]) continue;
    const cg_node *n = cg_node_at(c->g, i);
    phase_b *b = c->side[i] == CG_SIDE_Q ? &c->q : c->side[i] == CG_SIDE_K ? &c->k : &c->qk;
    if (c->side[i] == CG_SIDE_C) place_c(c, i);
    else if (n->op != CG_VAR) emit(c, b, i, n->op, n->a, n->b, n->c);
  }
  if (c->side[root] == CG_SIDE_QK) c->p->root = c->qk.slot_of[root];
  else {
    emit(c, &c->qk, CG_NONE, CG_OP_COPY, root, CG_NONE, CG_NONE);
    c->p->root = c->qk.ph.ins[c->qk.ph.nins - 1].d;
  }
  /* Interfaces leave their phase in interface order. */
  for (cg_ref i = 0; i <= root; i++) {
    if (c->qifc[i] >= 0) c->q.ph.out[c->qifc[i]] = operand(c, &c->q, i);
    if (c->kifc[i] >= 0) c->k.ph.out[c->kifc[i]] = operand(c, &c->k, i);
  }
}

static int phase_alloc(phase_b *b, int n) {
  b->ph.ins = calloc((size_t)n, sizeof(cg_inst));
  b->ph.slots = calloc((size_t)n, sizeof(cg_slot));
  b->ph.out = calloc((size_t)n, sizeof(int32_t));
  b->slot_of = malloc(sizeof(int32_t) * (size_t)n);
  if (!b->ph.ins || !b->ph.slots || !b->ph.out || !b->slot_of) return -1;
  memset(b->slot_of, 0xff, sizeof(int32_t) * (size_t)n);
  return 0;
}

static void comp_free(comp *c) {
  free(c->side);
  free(c->reach);
  free(c->cidx);
  free(c->qifc);
  free(c->kifc);
  free(c->q.slot_of);
  free(c->k.slot_of);
  free(c->qk.slot_of);
}

static int comp_alloc(comp *c, int n) {
  size_t m = (size_t)n;
  c->side = calloc(m, 1);
  c->reach = calloc(m, 1);
  c->cidx = calloc(m, sizeof(int32_t));
  c->qifc = malloc(m * sizeof(int32_t));
  c->kifc = malloc(m * sizeof(int32_t));
  cg_prog *p = c->p;
  p->cval = calloc(m + 2, sizeof(int64_t));
  p->cins = calloc(m, sizeof(cg_inst));
  if (!c->side || !c->reach || !c->cidx || !c->qifc || !c->kifc || !p->cval || !p->cins) return -1;
  memset(c->qifc, 0xff, m * sizeof(int32_t));
  memset(c->kifc, 0xff, m * sizeof(int32_t));
  /* Slots per phase: at most one per node, plus the root's copy. */
  if (phase_alloc(&c->q, n + 1) || phase_alloc(&c->k, n + 1) || phase_alloc(&c->qk, n + 1))
    return -1;
  return 0;
}

static int imax(int a, int b) { return a > b ? a : b; }

cg_prog *cg_prog_new(const cg_graph *g, cg_ref root) {
  if (root < 0 || root >= cg_graph_size(g)) return NULL;
  /* Shape vars and text.valid are bound before evaluation (cg_mask_bound). */
  const uint32_t bound = 1u << CG_V_FRAMES | 1u << CG_V_HEIGHT | 1u << CG_V_WIDTH | 1u << CG_V_NTEXT |
                         1u << CG_V_TLEN;
  if (cg_vars_used(g, root) & bound) return NULL;
  cg_prog *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  comp c = {.g = g, .n = root + 1, .p = p};
  p->uni[0] = p->uni[1] = p->uni[2] = -1;
  if (comp_alloc(&c, root + 1)) {
    p->q = c.q.ph;
    p->k = c.k.ph;
    p->qk = c.qk.ph;
    comp_free(&c);
    cg_prog_free(p);
    return NULL;
  }
  classify(&c, root);
  find_ifaces(&c, root);
  build_phases(&c, root);
  /* 0 and 1, for the constants of specialised phases (cg_spec_new). */
  p->c01[0] = p->ncval++;
  p->c01[1] = p->ncval;
  p->cval[p->ncval++] = 1;
  p->q = c.q.ph;
  p->k = c.k.ph;
  p->qk = c.qk.ph;
  comp_free(&c);
  /* A specialised QK phase adds two constant slots. */
  p->maxslots = imax(imax(p->q.nslots, p->k.nslots), p->qk.nslots + 2);
  p->maxtmp = imax(imax(p->q.ntmp, p->k.ntmp), p->qk.ntmp);
  return p;
}

static void phase_free(cg_phase *ph) {
  free(ph->ins);
  free(ph->slots);
  free(ph->out);
}

void cg_prog_free(cg_prog *p) {
  if (!p) return;
  free(p->cval);
  free(p->cins);
  phase_free(&p->q);
  phase_free(&p->k);
  phase_free(&p->qk);
  free(p);
}

void cg_prog_bind(cg_prog *p, int64_t head, int64_t step, int64_t layer) {
  int64_t u[3] = {head, step, layer};
  p->gen++;
  for (int i = 0; i < 3; i++)
    if (p->uni[i] >= 0) p->cval[p->uni[i]] = u[i];
  for (int i = 0; i < p->nc; i++) {
    const cg_inst *in = &p->cins[i];
    int64_t a = in->a >= 0 ? p->cval[in->a] : 0;
    int64_t b = in->b >= 0 ? p->cval[in->b] : 0;
    int64_t c = in->c >= 0 ? p->cval[in->c] : 0;
    p->cval[in->d] = cg_apply(in->op, a, b, c);
  }
}

/* ------------------------------------------------------------- executor */

struct cg_scratch {
  const cg_prog *p;
  int64_t *cbuf;       /* cval broadcast, [ncval][CG_CHUNK] */
  int64_t *qbuf;       /* query interface broadcast, [nqv][CG_CHUNK] */
  int64_t *tmp;        /* [maxtmp][CG_CHUNK] */
  int64_t *in;         /* converted coordinates, [CG_NIN][CG_CHUNK] */
  int64_t *kstage;     /* padded key interfaces, [nkv][CG_CHUNK] */
  const int64_t **ptr; /* [maxslots] */
  const int64_t **inp; /* [max(CG_NIN, nkv)] */
  const int64_t **qin; /* [nqv] */
  uint64_t gen;        /* the bind cbuf holds */
};

cg_scratch *cg_scratch_new(const cg_prog *p) {
  cg_scratch *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  size_t ch = CG_CHUNK * sizeof(int64_t);
  s->p = p;
  s->gen = p->gen - 1;
  s->cbuf = malloc(ch * (size_t)imax(p->ncval, 1));
  s->qbuf = calloc((size_t)imax(p->q.nout, 1), ch);
  s->tmp = calloc((size_t)imax(p->maxtmp, 1), ch);
  s->in = calloc(CG_NIN, ch);
  s->kstage = calloc((size_t)imax(p->k.nout, 1), ch);
  s->ptr = calloc((size_t)imax(p->maxslots, 1), sizeof(int64_t *));
  s->inp = calloc((size_t)imax(p->k.nout, CG_NIN), sizeof(int64_t *));
  s->qin = calloc((size_t)imax(p->q.nout, 1), sizeof(int64_t *));
  if (!s->cbuf || !s->qbuf || !s->tmp || !s->in || !s->kstage || !s->ptr || !s->inp || !s->qin) {
    cg_scratch_free(s);
    return NULL;
  }
  return s;
}

void cg_scratch_free(cg_scratch *s) {
  if (!s) return;
  free(s->cbuf);
  free(s->qbuf);
  free(s->tmp);
  free(s->in);
  free(s->kstage);
  free(s->ptr);
  free(s->inp);
  free(s->qin);
  free(s);
}

static void fill(int64_t *d, int64_t v, int n) {
  for (int i = 0; i < n; i++) d[i] = v;
}

/* Broadcasts the bound C values, once per bind. */
static void load_consts(cg_scratch *s) {
  if (s->gen == s->p->gen) return;
  for (int i = 0; i < s->p->ncval; i++) fill(s->cbuf + (size_t)i * CG_CHUNK, s->p->cval[i], CG_CHUNK);
  s->gen = s->p->gen;
}

/* Slot pointers for one chunk: inputs from `in`, query interfaces from
** `qin` (QK phase only). */
static void resolve(const cg_phase *ph, cg_scratch *s, const int64_t *const *in,
                    const int64_t *const *qin) {
  for (int i = 0; i < ph->nslots; i++) {
    const cg_slot *sl = &ph->slots[i];
    size_t o = (size_t)sl->idx * CG_CHUNK;
    switch (sl->kind) {
    case CG_SLOT_IN: s->ptr[i] = in[sl->idx]; break;
    case CG_SLOT_CONST: s->ptr[i] = s->cbuf + o; break;
    case CG_SLOT_QV: s->ptr[i] = qin[sl->idx]; break;
    default: s->ptr[i] = s->tmp + o; break;
    }
  }
}

/*
** Loops run over whole vectors of PAD lanes (callers pad their inputs), in
** GCC's generic vectors so the code is SIMD on every target; arithmetic is
** unsigned so that it wraps. Comparisons give 0 or -1 per lane.
*/
typedef uint64_t vu __attribute__((vector_size(PAD * 8), aligned(8), may_alias));
typedef int64_t vs __attribute__((vector_size(PAD * 8), aligned(8), may_alias));

#define VLOOP(expr) \
  for (int i = 0; i < len; i += PAD) { \
    vu x = *(const vu *)(a + i), y = *(const vu *)(b + i), z = *(const vu *)(c + i); \
    (void)y; (void)z; \
    *(vu *)(d + i) = (expr); \
  }
#define SLT(x, y) ((vu)((vs)(x) < (vs)(y)))
#define BLEND(m, x, y) (((m) & (x)) | (~(m) & (y)))

CG_CLONES
static void run(const cg_inst *ins, int nins, const int64_t **ptr, int len) {
  const vu one = (vu){0} + 1, zero = (vu){0};
  for (int k = 0; k < nins; k++) {
    const cg_inst *in = &ins[k];
    int64_t *d = (int64_t *)ptr[in->d];
    const int64_t *a = ptr[in->a];
    const int64_t *b = in->b >= 0 ? ptr[in->b] : a;
    const int64_t *c = in->c >= 0 ? ptr[in->c] : a;
    switch (in->op) {
    case CG_ADD: VLOOP(x + y); break;
    case CG_SUB: VLOOP(x - y); break;
    case CG_MUL: VLOOP(x * y); break;
    case CG_DIV: for (int i = 0; i < len; i++) d[i] = safe_div(a[i], b[i]); break;
    case CG_MOD: for (int i = 0; i < len; i++) d[i] = safe_mod(a[i], b[i]); break;
    case CG_MIN: VLOOP(BLEND(SLT(x, y), x, y)); break;
    case CG_MAX: VLOOP(BLEND(SLT(y, x), x, y)); break;
    case CG_NEG: VLOOP(zero - x); break;
    case CG_ABS: VLOOP(BLEND(SLT(x, zero), zero - x, x)); break;
    case CG_EQ: VLOOP((vu)(x == y) & one); break;
    case CG_NE: VLOOP((vu)(x != y) & one); break;
    case CG_LT: VLOOP(SLT(x, y) & one); break;
    case CG_LE: VLOOP(~SLT(y, x) & one); break;
    case CG_AND: VLOOP((vu)((x != zero) & (y != zero)) & one); break;
    case CG_OR: VLOOP((vu)((x != zero) | (y != zero)) & one); break;
    case CG_NOT: VLOOP((vu)(x == zero) & one); break;
    case CG_SELECT: VLOOP(BLEND((vu)(x != zero), y, z)); break;
    default: VLOOP(x); break;
    }
  }
}

static int padded(int n) { return (n + PAD - 1) / PAD * PAD; }

static void convert(int64_t *d, const int32_t *s, int n) {
  for (int i = 0; i < n; i++) d[i] = s[i];
  for (int i = n; i < padded(n); i++) d[i] = 0;
}

/*
** A side's interfaces are a function of the coordinates its phase reads,
** and consecutive tokens often agree on those (a frame's tokens on t):
** unless the phase reads the position, each lane is one run of equal
** inputs, evaluated once and written over the run. A mask over frames
** then evaluates its per-frame arithmetic (divisions, long choose chains)
** once per frame, not per token.
*/
static void side_runs(const cg_phase *ph, const int32_t *const *src, unsigned used, int64_t p0, int64_t n,
                      int64_t *out, int64_t ld, cg_scratch *s) {
  int64_t rs[CG_CHUNK + 1];
  for (int v = 0; v < CG_NIN; v++) s->inp[v] = s->in + (size_t)v * CG_CHUNK;
  for (int64_t i = 0; i < n;) {
    int nl = 0;
    while (i < n && nl < CG_CHUNK) {
      rs[nl] = i;
      for (int v = 0; v < CG_IN_POS; v++)
        if (used & (1u << v)) s->in[(size_t)v * CG_CHUNK + nl] = src[v][p0 + i];
      for (i++; i < n; i++) {
        int same = 1;
        for (int v = 0; v < CG_IN_POS; v++)
          if (used & (1u << v)) same &= src[v][p0 + i] == src[v][p0 + i - 1];
        if (!same) break;
      }
      nl++;
    }
    rs[nl] = i;
    for (int v = 0; v < CG_IN_POS; v++)
      for (int l = nl; l < padded(nl); l++) s->in[(size_t)v * CG_CHUNK + l] = 0;
    resolve(ph, s, s->inp, NULL);
    run(ph->ins, ph->nins, s->ptr, padded(nl));
    for (int j = 0; j < ph->nout; j++) {
      const int64_t *r = s->ptr[ph->out[j]];
      for (int l = 0; l < nl; l++)
        for (int64_t t = rs[l]; t < rs[l + 1]; t++) out[j * ld + t] = r[l];
    }
  }
}

/* Runs pay where the first tokens hold at most half as many runs as
** tokens; where every token differs (a mask over x), lanes per token. */
static int few_runs(const int32_t *const *src, unsigned used, int64_t p0, int64_t n) {
  int64_t m = n < 4 * CG_CHUNK ? n : 4 * CG_CHUNK, runs = 1;
  for (int64_t i = p0 + 1; i < p0 + m; i++) {
    int same = 1;
    for (int v = 0; v < CG_IN_POS; v++)
      if (used & (1u << v)) same &= src[v][i] == src[v][i - 1];
    runs += !same;
  }
  return 2 * runs <= m;
}

unsigned cg_prog_inputs(const cg_prog *p, int key_side) {
  const cg_phase *ph = key_side ? &p->k : &p->q;
  unsigned used = 0;
  for (int i = 0; i < ph->nslots; i++)
    if (ph->slots[i].kind == CG_SLOT_IN) used |= 1u << ph->slots[i].idx;
  return used;
}

void cg_prog_side(const cg_prog *p, int key_side, const cg_coords *c, int64_t p0,
                  int64_t n, int64_t *out, int64_t ld, cg_scratch *s) {
  const cg_phase *ph = key_side ? &p->k : &p->q;
  const int32_t *src[CG_IN_POS] = {c->t, c->y, c->x, c->text, c->idx};
  unsigned used = cg_prog_inputs(p, key_side);
  if (ph->nout == 0) return;
  load_consts(s);
  if (!(used & (1u << CG_IN_POS)) && few_runs(src, used, p0, n)) {
    side_runs(ph, src, used, p0, n, out, ld, s);
    return;
  }
  for (int64_t o = 0; o < n; o += CG_CHUNK) {
    int len = (int)(n - o < CG_CHUNK ? n - o : CG_CHUNK);
    for (int v = 0; v < CG_NIN; v++) s->inp[v] = s->in + (size_t)v * CG_CHUNK;
    for (int v = 0; v < CG_IN_POS; v++)
      if (used & (1u << v)) convert(s->in + (size_t)v * CG_CHUNK, src[v] + p0 + o, len);
    if (used & (1u << CG_IN_POS))
      for (int i = 0; i < CG_CHUNK; i++) s->in[(size_t)CG_IN_POS * CG_CHUNK + i] = p0 + o + i;
    resolve(ph, s, s->inp, NULL);
    run(ph->ins, ph->nins, s->ptr, padded(len));
    for (int j = 0; j < ph->nout; j++)
      memcpy(out + j * ld + o, s->ptr[ph->out[j]], sizeof(int64_t) * (size_t)len);
  }
}

/*
** Lanes [o, o + len) of a caller's vector; staged through `stage` when the
** padded tail would read past it.
*/
static const int64_t *lanes_at(const int64_t *v, int len, int64_t *stage) {
  if (len % PAD == 0) return v;
  memcpy(stage, v, sizeof(int64_t) * (size_t)len);
  memset(stage + len, 0, sizeof(int64_t) * (size_t)(padded(len) - len));
  return stage;
}

/* The QK phase `ph` over n lanes; query interfaces per lane when qv is
** given, else already broadcast in qbuf. Interfaces outside the live masks
** are not read. */
static void qk(const cg_prog *p, const cg_phase *ph, int32_t root, uint64_t qlive, uint64_t klive,
               const int64_t *qv, int64_t ldq, const int64_t *kv, int64_t ldk, int n, int64_t *out,
               cg_scratch *s) {
  for (int o = 0; o < n; o += CG_CHUNK) {
    int len = n - o < CG_CHUNK ? n - o : CG_CHUNK;
    for (int j = 0; j < p->k.nout; j++)
      if (j >= 64 || (klive >> j & 1))
        s->inp[j] = lanes_at(kv + j * ldk + o, len, s->kstage + (size_t)j * CG_CHUNK);
    for (int j = 0; j < p->q.nout; j++)
      if (j >= 64 || (qlive >> j & 1))
        s->qin[j] = qv ? lanes_at(qv + j * ldq + o, len, s->qbuf + (size_t)j * CG_CHUNK)
                       : s->qbuf + (size_t)j * CG_CHUNK;
    resolve(ph, s, s->inp, s->qin);
    run(ph->ins, ph->nins, s->ptr, padded(len));
    memcpy(out + o, s->ptr[root], sizeof(int64_t) * (size_t)len);
  }
}

void cg_prog_row(const cg_prog *p, const int64_t *qv, const int64_t *kv, int64_t ldk,
                 int n, int64_t *out, cg_scratch *s) {
  load_consts(s);
  /* Broadcast only the lanes this row will read: runs of keys are often
  ** far shorter than a chunk. */
  int lanes = padded(n < CG_CHUNK ? n : CG_CHUNK);
  for (int j = 0; j < p->q.nout; j++) fill(s->qbuf + (size_t)j * CG_CHUNK, qv[j], lanes);
  qk(p, &p->qk, p->root, ~0ull, ~0ull, NULL, 0, kv, ldk, n, out, s);
}

void cg_prog_pairs(const cg_prog *p, const int64_t *qv, int64_t ldq, const int64_t *kv,
                   int64_t ldk, int n, int64_t *out, cg_scratch *s) {
  load_consts(s);
  qk(p, &p->qk, p->root, ~0ull, ~0ull, qv, ldq, kv, ldk, n, out, s);
}

void cg_spec_pairs(const cg_prog *p, const cg_spec *sp, const int64_t *qv, int64_t ldq,
                   const int64_t *kv, int64_t ldk, int n, int64_t *out, cg_scratch *s) {
  load_consts(s);
  qk(p, &sp->ph, sp->root, sp->qlive, sp->klive, qv, ldq, kv, ldk, n, out, s);
}

void cg_spec_row(const cg_prog *p, const cg_spec *sp, const int64_t *qv, const int64_t *kv,
                 int64_t ldk, int n, int64_t *out, cg_scratch *s) {
  load_consts(s);
  int lanes = padded(n < CG_CHUNK ? n : CG_CHUNK);
  for (int j = 0; j < p->q.nout; j++)
    if (j >= 64 || (sp->qlive >> j & 1)) fill(s->qbuf + (size_t)j * CG_CHUNK, qv[j], lanes);
  qk(p, &sp->ph, sp->root, sp->qlive, sp->klive, NULL, 0, kv, ldk, n, out, s);
}

/* --------------------------------------------------------- specialising */

/* Marks the slots the root needs, through instructions not decided. */
static void live_slots(const cg_phase *ph, int32_t root, uint64_t dec, uint8_t *live) {
  live[root] = 1;
  for (int i = ph->nins - 1; i >= 0; i--) {
    const cg_inst *in = &ph->ins[i];
    if (!live[in->d] || (i < 64 && (dec >> i & 1))) continue;
    if (in->a >= 0) live[in->a] = 1;
    if (in->b >= 0) live[in->b] = 1;
    if (in->c >= 0) live[in->c] = 1;
  }
}

static void spec_copy(const cg_prog *p, cg_spec *sp, uint64_t dec, uint64_t val, const uint8_t *live,
                      int32_t *map) {
  const cg_phase *ph = &p->qk;
  int32_t zero = ph->nslots, one = ph->nslots + 1;
  for (int i = 0; i < ph->nslots; i++) map[i] = i;
  for (int i = 0; i < ph->nins && i < 64; i++)
    if (dec >> i & 1) map[ph->ins[i].d] = (val >> i & 1) ? one : zero;
  for (int i = 0; i < ph->nins; i++) {
    cg_inst in = ph->ins[i];
    if (!live[in.d] || map[in.d] != in.d) continue;
    in.a = in.a >= 0 ? map[in.a] : -1;
    in.b = in.b >= 0 ? map[in.b] : -1;
    in.c = in.c >= 0 ? map[in.c] : -1;
    sp->ph.ins[sp->ph.nins++] = in;
    const int32_t ops[3] = {in.a, in.b, in.c};
    for (int k = 0; k < 3; k++) {
      if (ops[k] < 0 || ops[k] >= ph->nslots) continue;
      const cg_slot *sl = &ph->slots[ops[k]];
      if (sl->kind == CG_SLOT_QV && sl->idx < 64) sp->qlive |= 1ull << sl->idx;
      if (sl->kind == CG_SLOT_IN && sl->idx < 64) sp->klive |= 1ull << sl->idx;
    }
  }
  sp->root = map[p->root];
}

cg_spec *cg_spec_new(const cg_prog *p, uint64_t dec, uint64_t val) {
  const cg_phase *ph = &p->qk;
  cg_spec *sp = calloc(1, sizeof *sp);
  uint8_t *live = calloc((size_t)ph->nslots + 2, 1);
  int32_t *map = malloc(sizeof(int32_t) * ((size_t)ph->nslots + 2));
  if (sp) {
    sp->ph = *ph;
    sp->ph.nins = 0;
    sp->ph.nslots = ph->nslots + 2;
    sp->ph.ins = malloc(sizeof(cg_inst) * (size_t)(ph->nins ? ph->nins : 1));
    sp->ph.slots = malloc(sizeof(cg_slot) * (size_t)sp->ph.nslots);
    sp->ph.out = NULL;
  }
  if (!sp || !live || !map || !sp->ph.ins || !sp->ph.slots) {
    free(live);
    free(map);
    cg_spec_free(sp);
    return NULL;
  }
  memcpy(sp->ph.slots, ph->slots, sizeof(cg_slot) * (size_t)ph->nslots);
  sp->ph.slots[ph->nslots] = (cg_slot){.kind = CG_SLOT_CONST, .idx = p->c01[0]};
  sp->ph.slots[ph->nslots + 1] = (cg_slot){.kind = CG_SLOT_CONST, .idx = p->c01[1]};
  live_slots(ph, p->root, dec, live);
  spec_copy(p, sp, dec, val, live, map);
  free(live);
  free(map);
  return sp;
}

void cg_spec_free(cg_spec *sp) {
  if (!sp) return;
  free(sp->ph.ins);
  free(sp->ph.slots);
  free(sp);
}
