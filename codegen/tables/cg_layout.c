/*
** Layouts: which token each kernel position holds, both as expressions of
** the position (what the kernel compiles) and enumerated directly (what the
** table builder and the tests use). The two are written independently and
** checked against each other in tests/test_layout.c.
**
** In every layout the text tokens keep their place, before or after the
** video tokens; only the video tokens move.
*/
#include <stdlib.h>

#include "cg_blocks.h"

/* ---------------------------------------------------------------- geometry */

typedef struct geom {
  int64_t T, Y, X, N;  /* frames, rows, columns, text tokens */
  int64_t V;           /* video tokens */
  int64_t v0;          /* position (and model index) of the first video token */
  int64_t text0;       /* position of the first text token */
  /* Tiles, clamped to the grid: regular size, count, and size of the last. */
  int64_t tile[3], ntile[3], last[3];
} geom;

static void geom_of(const cg_layout *l, const sieve_shape *s, geom *g) {
  g->T = s->frames;
  g->Y = s->height;
  g->X = s->width;
  g->N = s->text;
  g->V = g->T * g->Y * g->X;
  g->v0 = s->text_after ? 0 : g->N;
  g->text0 = s->text_after ? g->V : 0;
  int64_t dim[3] = {g->T, g->Y, g->X};
  for (int i = 0; i < 3; i++) {
    int64_t t = l->kind == CG_LAYOUT_TILE ? l->tile[i] : dim[i];
    if (t > dim[i]) t = dim[i];
    g->tile[i] = t;
    g->ntile[i] = (dim[i] + t - 1) / t;
    g->last[i] = dim[i] - (g->ntile[i] - 1) * t;
  }
}

static int layout_ok(const cg_layout *l) {
  return l->kind != CG_LAYOUT_TILE || (l->tile[0] > 0 && l->tile[1] > 0 && l->tile[2] > 0);
}

/* ------------------------------------------------------------- enumeration */

static void put(cg_coords *c, int64_t pos, int64_t t, int64_t y, int64_t x, int64_t idx) {
  c->t[pos] = (int32_t)t;
  c->y[pos] = (int32_t)y;
  c->x[pos] = (int32_t)x;
  c->text[pos] = t < 0;
  c->idx[pos] = (int32_t)idx;
}

static int64_t model_idx(const geom *g, int64_t t, int64_t y, int64_t x) {
  return g->v0 + (t * g->Y + y) * g->X + x;
}

/* n video tokens from position pos on, one step of x (or, dx 0, of t)
** and of the model index apart: the layouts' innermost loops, written a
** run at a time so that the compiler vectorises the stores (every
** candidate of sieve.layout.auto is enumerated). */
static void put_run(cg_coords *c, int64_t pos, int64_t n, int64_t t, int64_t y, int64_t x, int dx,
                    int64_t idx, int64_t didx) {
  int32_t *ct = c->t + pos, *cy = c->y + pos, *cx = c->x + pos, *ctext = c->text + pos, *ci = c->idx + pos;
  for (int64_t i = 0; i < n; i++) {
    ct[i] = (int32_t)(dx ? t : t + i);
    cx[i] = (int32_t)(dx ? x + i : x);
  }
  for (int64_t i = 0; i < n; i++) {
    cy[i] = (int32_t)y;
    ctext[i] = 0;
    ci[i] = (int32_t)(idx + i * didx);
  }
}

static void enum_tiles(const geom *g, cg_coords *c) {
  int64_t pos = g->v0;
  for (int64_t a = 0; a < g->ntile[0]; a++)
    for (int64_t b = 0; b < g->ntile[1]; b++)
      for (int64_t d = 0; d < g->ntile[2]; d++) {
        int64_t t1 = a * g->tile[0], y1 = b * g->tile[1], x1 = d * g->tile[2];
        int64_t t2 = t1 + g->tile[0] < g->T ? t1 + g->tile[0] : g->T;
        int64_t y2 = y1 + g->tile[1] < g->Y ? y1 + g->tile[1] : g->Y;
        int64_t x2 = x1 + g->tile[2] < g->X ? x1 + g->tile[2] : g->X;
        for (int64_t t = t1; t < t2; t++)
          for (int64_t y = y1; y < y2; y++, pos += x2 - x1) put_run(c, pos, x2 - x1, t, y, x1, 1, model_idx(g, t, y, x1), 1);
      }
}

int cg_layout_enum(const cg_layout *l, const sieve_shape *s, cg_coords *out) {
  if (!layout_ok(l) || cg_coords_init(out, sieve_shape_tokens(s))) return -1;
  return cg_layout_fill(l, s, out);
}

int cg_layout_fill(const cg_layout *l, const sieve_shape *s, cg_coords *out) {
  if (!layout_ok(l)) return -1;
  geom g;
  geom_of(l, s, &g);
  if (out->n != g.N + g.V) return -1;
  for (int64_t i = 0; i < g.N; i++) put(out, g.text0 + i, -1, -1, -1, g.text0 + i);
  if (l->kind == CG_LAYOUT_TILE) {
    enum_tiles(&g, out);
    return 0;
  }
  if (l->kind == CG_LAYOUT_TRANSPOSE)
    for (int64_t y = 0; y < g.Y; y++)
      for (int64_t x = 0; x < g.X; x++)
        put_run(out, g.v0 + (y * g.X + x) * g.T, g.T, 0, y, x, 0, model_idx(&g, 0, y, x), g.Y * g.X);
  else
    for (int64_t t = 0; t < g.T; t++)
      for (int64_t y = 0; y < g.Y; y++) put_run(out, model_idx(&g, t, y, 0), g.X, t, y, 0, 1, model_idx(&g, t, y, 0), 1);
  return 0;
}

/* -------------------------------------------------------------- expressions */

typedef struct tri {
  cg_ref t, y, x;
} tri;

typedef struct eb {
  cg_graph *g;
  const geom *gm;
} eb;

static cg_ref K(eb *b, int64_t v) { return cg_const(b->g, v); }
static cg_ref B(eb *b, cg_op op, cg_ref x, cg_ref y) { return cg_bin(b->g, op, x, y); }
static cg_ref Bc(eb *b, cg_op op, cg_ref x, int64_t v) { return cg_bin(b->g, op, x, K(b, v)); }

static tri pick(eb *b, cg_ref cond, tri x, tri y) {
  return (tri){cg_select(b->g, cond, x.t, y.t), cg_select(b->g, cond, x.y, y.y),
               cg_select(b->g, cond, x.x, y.x)};
}

/*
** Tiles. A slab of st frames splits into rows of sy, each into tiles of sx;
** only the last of each is short, so at every level the boundaries are
** multiples of the regular size and each step is a division by a constant
** once the sizes above it are chosen. A select per level picks the sizes.
*/
static tri tile_cell(eb *b, cg_ref a, cg_ref by, cg_ref bx, cg_ref r, int64_t sy, int64_t sx) {
  const geom *g = b->gm;
  cg_ref lt = Bc(b, CG_DIV, r, sy * sx);
  cg_ref ly = Bc(b, CG_MOD, Bc(b, CG_DIV, r, sx), sy);
  cg_ref lx = Bc(b, CG_MOD, r, sx);
  return (tri){B(b, CG_ADD, Bc(b, CG_MUL, a, g->tile[0]), lt),
               B(b, CG_ADD, Bc(b, CG_MUL, by, g->tile[1]), ly),
               B(b, CG_ADD, Bc(b, CG_MUL, bx, g->tile[2]), lx)};
}

static tri tile_row(eb *b, cg_ref a, cg_ref by, cg_ref r, int64_t st, int64_t sy) {
  const geom *g = b->gm;
  int64_t cell = st * sy * g->tile[2];
  cg_ref bx = Bc(b, CG_DIV, r, cell), rr = Bc(b, CG_MOD, r, cell);
  tri x = tile_cell(b, a, by, bx, rr, sy, g->last[2]), y = tile_cell(b, a, by, bx, rr, sy, g->tile[2]);
  return pick(b, Bc(b, CG_EQ, bx, g->ntile[2] - 1), x, y);
}

static tri tile_slab(eb *b, cg_ref a, cg_ref r, int64_t st) {
  const geom *g = b->gm;
  int64_t sy[2] = {g->last[1], g->tile[1]};
  int64_t rows = st * g->tile[1] * g->X;
  cg_ref by = Bc(b, CG_DIV, r, rows), rr = Bc(b, CG_MOD, r, rows);
  tri v[2];
  for (int i = 0; i < 2; i++) v[i] = tile_row(b, a, by, rr, st, sy[i]);
  return pick(b, Bc(b, CG_EQ, by, g->ntile[1] - 1), v[0], v[1]);
}

static tri tile_coords(eb *b, cg_ref v) {
  const geom *g = b->gm;
  int64_t slab = g->tile[0] * g->Y * g->X;
  cg_ref a = Bc(b, CG_DIV, v, slab), r = Bc(b, CG_MOD, v, slab);
  tri x = tile_slab(b, a, r, g->last[0]), y = tile_slab(b, a, r, g->tile[0]);
  return pick(b, Bc(b, CG_EQ, a, g->ntile[0] - 1), x, y);
}

static tri video_coords(eb *b, const cg_layout *l, cg_ref v) {
  const geom *g = b->gm;
  switch (l->kind) {
  case CG_LAYOUT_TRANSPOSE:
    return (tri){Bc(b, CG_MOD, v, g->T), Bc(b, CG_DIV, v, g->T * g->X),
                 Bc(b, CG_MOD, Bc(b, CG_DIV, v, g->T), g->X)};
  case CG_LAYOUT_TILE: return tile_coords(b, v);
  default:
    return (tri){Bc(b, CG_DIV, v, g->Y * g->X), Bc(b, CG_MOD, Bc(b, CG_DIV, v, g->X), g->Y),
                 Bc(b, CG_MOD, v, g->X)};
  }
}

int cg_layout_coords(cg_graph *g, const cg_layout *l, const sieve_shape *s, int key_side,
                     cg_ref out[5]) {
  if (!layout_ok(l)) return -1;
  geom gm;
  geom_of(l, s, &gm);
  eb b = {g, &gm};
  cg_ref pos = cg_var_ref(g, key_side ? CG_V_KPOS : CG_V_QPOS);
  cg_ref text = gm.N == 0 ? cg_bool(g, 0)
                : s->text_after ? B(&b, CG_LE, K(&b, gm.V), pos)
                                : B(&b, CG_LT, pos, K(&b, gm.N));
  cg_ref v = Bc(&b, CG_SUB, pos, gm.v0);
  tri c = video_coords(&b, l, v);
  cg_ref idx = pos;
  if (l->kind != CG_LAYOUT_IDENTITY) {
    cg_ref m = B(&b, CG_ADD, Bc(&b, CG_MUL, B(&b, CG_ADD, Bc(&b, CG_MUL, c.t, gm.Y), c.y), gm.X), c.x);
    idx = cg_select(g, text, pos, Bc(&b, CG_ADD, m, gm.v0));
  }
  cg_ref none = K(&b, -1);
  out[0] = cg_select(g, text, none, c.t);
  out[1] = cg_select(g, text, none, c.y);
  out[2] = cg_select(g, text, none, c.x);
  out[3] = text;
  out[4] = idx;
  for (int i = 0; i < 5; i++)
    if (out[i] == CG_NONE) return -1;
  return 0;
}

/* ------------------------------------------------------- kernel expressions */

void cg_shape_vars(cg_graph *g, const sieve_shape *s, cg_ref map[]) {
  map[CG_V_FRAMES] = cg_const(g, s->frames);
  map[CG_V_HEIGHT] = cg_const(g, s->height);
  map[CG_V_WIDTH] = cg_const(g, s->width);
  map[CG_V_NTEXT] = cg_const(g, s->text);
}

static cg_ref padding(cg_graph *g, const sieve_shape *s, cg_var text, cg_var idx) {
  int64_t text0 = s->text_after ? (int64_t)s->frames * s->height * s->width : 0;
  cg_ref lim = cg_bin(g, CG_ADD, cg_var_ref(g, CG_V_TLEN), cg_const(g, text0));
  return cg_bin(g, CG_AND, cg_var_ref(g, text), cg_bin(g, CG_LE, lim, cg_var_ref(g, idx)));
}

cg_ref cg_valid_pairs(cg_graph *g, const sieve_shape *s) {
  if (s->text == 0) return cg_bool(g, 1);
  cg_ref any = cg_bin(g, CG_OR, padding(g, s, CG_V_QTEXT, CG_V_QIDX), padding(g, s, CG_V_KTEXT, CG_V_KIDX));
  return cg_un(g, CG_NOT, any);
}

static const cg_var qvars[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
static const cg_var kvars[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};

cg_ref cg_mask_bound(cg_graph *g, cg_ref mask, const sieve_shape *s, int tlen) {
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  cg_shape_vars(g, s, map);
  map[CG_V_TLEN] = cg_const(g, tlen < 0 || tlen > s->text ? s->text : tlen);
  cg_ref m = cg_bin(g, CG_AND, mask, cg_valid_pairs(g, s));
  return m == CG_NONE ? CG_NONE : cg_subst(g, m, map);
}

cg_ref cg_mask_at_positions(cg_graph *g, cg_ref mask, const cg_layout *l, const sieve_shape *s, cg_ref idx[2]) {
  cg_ref qc[5], kc[5], map[CG_NVARS];
  if (cg_layout_coords(g, l, s, 0, qc) || cg_layout_coords(g, l, s, 1, kc)) return CG_NONE;
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  for (int i = 0; i < 5; i++) {
    map[qvars[i]] = qc[i];
    map[kvars[i]] = kc[i];
  }
  cg_shape_vars(g, s, map);
  if (idx) {
    idx[0] = qc[4];
    idx[1] = kc[4];
  }
  return mask == CG_NONE ? CG_NONE : cg_subst(g, mask, map);
}

/* A class's mask over positions, and its layout's idx for each side. */
static int class_exprs(cg_pattern *p, const sieve_shape *s, int c, cg_ref r[3]) {
  const cg_class *k = &p->classes[c];
  r[0] = cg_mask_at_positions(p->g, cg_bin(p->g, CG_AND, k->mask, cg_valid_pairs(p->g, s)), &k->layout, s, r + 1);
  return r[0] == CG_NONE ? -1 : 0;
}

/* head % period is one of the residues that use class c. */
static cg_ref class_cond(cg_pattern *p, cg_ref hm, int c) {
  cg_ref cond = cg_bool(p->g, 0);
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] == c) cond = cg_bin(p->g, CG_OR, cond, cg_bin(p->g, CG_EQ, hm, cg_const(p->g, r)));
  return cond;
}

static int class_used(const cg_pattern *p, int c) {
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] == c) return 1;
  return 0;
}

sieve_status cg_kernel_exprs(cg_pattern *p, const sieve_shape *in, cg_ref *mask, cg_ref *qidx,
                             cg_ref *kidx, cg_err *e) {
  return cg_kernel_exprs_bits(p, in, 0, mask, qidx, kidx, e);
}

sieve_status cg_kernel_exprs_bits(cg_pattern *p, const sieve_shape *in, uint32_t bits, cg_ref *mask,
                                  cg_ref *qidx, cg_ref *kidx, cg_err *e) {
  sieve_shape sh, *shape = &sh;
  cg_shape_for(p, in, &sh);
  sieve_status st = cg_layouts_resolve(p, in, e);
  if (st) return st;
  st = cg_pattern_check_classes(p, e);
  if (st) return st;
  for (int c = 0; c < p->nclasses; c++)
    if (!layout_ok(&p->classes[c].layout))
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: tile sizes must be positive", p->classes[c].name);
  cg_ref hm = cg_bin(p->g, CG_MOD, cg_var_ref(p->g, CG_V_HEAD), cg_const(p->g, p->period));
  cg_ref acc[3] = {CG_NONE, CG_NONE, CG_NONE};
  /* A chain of selects over the used classes; the last used one is the
  ** default, reached when no earlier condition holds. */
  for (int c = p->nclasses - 1; c >= 0; c--) {
    cg_ref r[3];
    if (!class_used(p, c)) continue;
    if (class_exprs(p, shape, c, r)) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    if (bits >> c & 1) r[0] = cg_bool(p->g, 1); /* its partial blocks read bitmasks */
    cg_ref cond = acc[0] == CG_NONE ? CG_NONE : class_cond(p, hm, c);
    for (int i = 0; i < 3; i++) acc[i] = cond == CG_NONE ? r[i] : cg_select(p->g, cond, r[i], acc[i]);
  }
  if (acc[0] == CG_NONE || acc[1] == CG_NONE || acc[2] == CG_NONE)
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  *mask = acc[0];
  *qidx = acc[1];
  *kidx = acc[2];
  return SIEVE_OK;
}
