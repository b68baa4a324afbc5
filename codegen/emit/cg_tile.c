/*
** Tile operations. The generic part (register tiles, row operations,
** stores) is written once; the sm_80 target (cp.async, ldmatrix, mma.sync
** m16n8k16) fills the operation table; sm_90a uses the same table for the
** kernels and configs that do not take wgmma (cg_wgmma.c).
*/
#include "cg_tile.h"

#include <stdlib.h>

#define E (t->em)

static void lane_facts(cg_tk *t) {
  t->lane = CG_AND(E, t->tid, cg_i32(E, 31));
  t->warp = CG_LSHR(E, t->tid, cg_i32(E, 5));
  t->fr = CG_LSHR(E, t->lane, cg_i32(E, 2));
  t->fc = CG_AND(E, t->lane, cg_i32(E, 3));
}

sieve_status cg_tk_init(cg_tk *t, cg_em *em, cg_arch arch, cg_dtype dt, int nthreads) {
  t->em = em;
  t->tgt = cg_target_get(arch);
  t->dt = dt;
  t->nthreads = nthreads;
  t->arena = cg_arena_new();
  if (!t->arena) return cg_fail(&em->err, SIEVE_ERR_NOMEM, "out of memory");
  t->tid = cg_sreg_read(em, CG_TID_X);
  lane_facts(t);
  return SIEVE_OK;
}

void cg_tk_refresh(cg_tk *t) {
  t->tid = cg_sreg_fresh(E, CG_TID_X);
  if (t->tid0) t->tid = CG_SUB(E, t->tid, cg_i32(E, t->tid0));
  lane_facts(t);
}

void cg_tk_role(cg_tk *t, int first, int n) {
  t->tid = CG_SUB(E, t->tid, cg_i32(E, first - t->tid0));
  t->tid0 = first;
  t->nthreads = n;
  lane_facts(t);
}

void cg_tk_dispose(cg_tk *t) {
  cg_arena_free(t->arena);
  t->arena = NULL;
}

LLVMTypeRef cg_tk_elt(const cg_tk *t) { return t->dt == CG_FP16 ? E->t_f16 : E->t_bf16; }

cg_st cg_st_rows(cg_tk *t, const cg_st *s, LLVMValueRef r0, int rows) {
  cg_st v = *s;
  v.off = CG_ADD(E, s->off, CG_MUL(E, r0, cg_i32(E, cg_st_pitch(s->cols, s->pad))));
  v.rows = rows;
  return v;
}

void cg_sync(cg_tk *t) { cg_barrier(E); }

/* ---------------------------------------------------------- register tiles */

static cg_reg *slots(cg_tk *t, int n, LLVMTypeRef ty, LLVMValueRef fill) {
  cg_reg *v = cg_alloc(t->arena, sizeof(cg_reg) * (size_t)n);
  for (int i = 0; i < n; i++) v[i] = cg_reg_new(E, ty, fill);
  return v;
}

void cg_rt_init(cg_tk *t, cg_rt *r, int m, int n, LLVMValueRef fill) {
  r->m = m;
  r->n = n;
  r->v = slots(t, m / 16 * n / 8 * 4, E->t_f32, fill);
}

void cg_ra_init(cg_tk *t, cg_ra *r, int m, int k) {
  r->m = m;
  r->k = k;
  r->v = slots(t, m / 16 * k / 16 * 4, E->t_i32, NULL);
}

void cg_rv_init(cg_tk *t, cg_rv *r, int m, LLVMValueRef fill) {
  r->m = m;
  r->v = slots(t, m / 8, E->t_f32, fill);
}

void cg_rt_fill(cg_tk *t, cg_rt *r, LLVMValueRef v) {
  for (int i = 0; i < r->m / 16 * r->n / 8 * 4; i++) cg_rset(E, r->v[i], v);
}

LLVMValueRef cg_rv_get(cg_tk *t, const cg_rv *r, int i) { return cg_rget(E, r->v[i]); }
void cg_rv_set(cg_tk *t, cg_rv *r, int i, LLVMValueRef v) { cg_rset(E, r->v[i], v); }

/* Element k (0..3) of a C fragment sits in row half k / 2 of its m-tile;
** the row vector index of element e of tile r is therefore this. */
static int rv_index(const cg_rt *r, int e) { return e / 4 / (r->n / 8) * 2 + (e % 4) / 2; }

/* Thread-local column number of element e: n-tile j, column 2c + (k & 1). */
static int col_index(const cg_rt *r, int e) { return e / 4 % (r->n / 8) * 2 + (e & 1); }

LLVMValueRef cg_frag_row(cg_tk *t, int ri) { return CG_ADD(E, t->fr, cg_i32(E, 16 * (ri / 2) + 8 * (ri % 2))); }

/* Coordinates of element e in the warp's tile. */
static void rt_coords(cg_tk *t, const cg_rt *r, int e, LLVMValueRef *row, LLVMValueRef *col) {
  int nt = r->n / 8, f = e / 4, k = e % 4;
  int j = f % nt;
  *row = cg_frag_row(t, rv_index(r, e));
  *col = CG_ADD(E, CG_SHL(E, t->fc, cg_i32(E, 1)), cg_i32(E, 8 * j + (k & 1)));
}

/* ------------------------------------------------------------ elementwise */

void cg_rt_to_a(cg_tk *t, cg_ra *dst, const cg_rt *src) {
  /* C fragments of n-tiles 2j and 2j + 1 are exactly the four registers of
  ** the A fragment for k-step j: (r, 2c), (r + 8, 2c), (r, 8 + 2c), (r + 8, 8 + 2c). */
  int nt = src->n / 8, ks = src->n / 16;
  for (int i = 0; i < src->m / 16; i++)
    for (int j = 0; j < ks; j++)
      for (int x = 0; x < 4; x++) {
        int f = i * nt + 2 * j + x / 2, k = (x & 1) * 2;
        LLVMValueRef lo = cg_rget(E, src->v[f * 4 + k]), hi = cg_rget(E, src->v[f * 4 + k + 1]);
        cg_rset(E, dst->v[(i * ks + j) * 4 + x], cg_pack2(E, t->dt == CG_FP16, lo, hi));
      }
}

void cg_rt_mask(cg_tk *t, cg_rt *r, cg_pred pred, void *ctx, LLVMValueRef fill) {
  for (int e = 0; e < r->m / 16 * r->n / 8 * 4; e++) {
    LLVMValueRef row, col;
    rt_coords(t, r, e, &row, &col);
    LLVMValueRef keep = pred(ctx, rv_index(r, e), row, col_index(r, e), col);
    cg_rset(E, r->v[e], CG_SEL(E, keep, cg_rget(E, r->v[e]), fill));
  }
}

int cg_mask_words(int m, int n, cg_mask_mode mode) {
  return mode == CG_MASK_WARP ? n / 32 : (m / 16 * n / 8 * 4 + 31) / 32;
}

static void mask_bits_frag(cg_tk *t, int m, int n, cg_pred pred, void *ctx, cg_reg *words) {
  cg_rt shape = {m, n, NULL};
  LLVMValueRef w = NULL;
  for (int e = 0; e < m / 16 * n / 8 * 4; e++) {
    LLVMValueRef row, col;
    rt_coords(t, &shape, e, &row, &col);
    LLVMValueRef keep = pred(ctx, rv_index(&shape, e), row, col_index(&shape, e), col);
    LLVMValueRef bit = CG_SHL(E, LLVMBuildZExt(E->b, keep, E->t_i32, ""), cg_i32(E, e % 32));
    w = w ? CG_OR(E, w, bit) : bit;
    if (e % 32 == 31 || e + 1 == m / 16 * n / 8 * 4) {
      cg_rset(E, words[e / 32], w);
      w = NULL;
    }
  }
}

static void mask_bits_warp(cg_tk *t, int m, int n, cg_pred pred, void *ctx, cg_reg *words) {
  LLVMValueRef row = CG_AND(E, t->lane, cg_i32(E, m - 1));
  for (int w = 0; w < n / 32; w++) {
    LLVMValueRef acc = NULL;
    for (int b = 0; b < 32; b++) {
      LLVMValueRef keep = pred(ctx, 0, row, 32 * w + b, cg_i32(E, 32 * w + b));
      LLVMValueRef bit = CG_SHL(E, LLVMBuildZExt(E->b, keep, E->t_i32, ""), cg_i32(E, b));
      acc = acc ? CG_OR(E, acc, bit) : bit;
    }
    cg_rset(E, words[w], acc);
  }
}

void cg_mask_bits(cg_tk *t, int m, int n, cg_mask_mode mode, cg_pred pred, void *ctx, cg_reg *words) {
  if (mode == CG_MASK_WARP) mask_bits_warp(t, m, n, pred, ctx, words);
  else mask_bits_frag(t, m, n, pred, ctx, words);
}

/* Bit `bit` of word w decides element e. */
static void mask_one(cg_tk *t, cg_rt *r, int e, LLVMValueRef w, int bit, LLVMValueRef fill) {
  LLVMValueRef on = CG_ICMP(E, LLVMIntNE, CG_AND(E, w, cg_i32(E, (int64_t)1 << bit)), cg_i32(E, 0));
  cg_rset(E, r->v[e], CG_SEL(E, on, cg_rget(E, r->v[e]), fill));
}

void cg_rt_mask_apply(cg_tk *t, cg_rt *r, cg_mask_mode mode, const cg_reg *words, LLVMValueRef fill) {
  int n = r->m / 16 * r->n / 8 * 4;
  if (mode == CG_MASK_FRAG) {
    for (int e = 0; e < n; e++) mask_one(t, r, e, cg_rget(E, words[e / 32]), e % 32, fill);
    return;
  }
  /* own[k][w]: word w of owned row k, shifted so bit 8 j' + (e & 1) of it
  ** is column 32 w + 8 j' + 2 c + (e & 1) */
  LLVMValueRef own[16][8];
  for (int k = 0; k < r->m / 8; k++) {
    LLVMValueRef rowv = CG_ADD(E, t->fr, cg_i32(E, 16 * (k / 2) + 8 * (k % 2)));
    for (int w = 0; w < r->n / 32; w++)
      own[k][w] = CG_LSHR(E, cg_shfl_idx_i32(E, cg_rget(E, words[w]), rowv), CG_SHL(E, t->fc, cg_i32(E, 1)));
  }
  for (int e = 0; e < n; e++) {
    int col = e / 4 % (r->n / 8) * 8 + (e & 1);  /* without the lane's 2 c */
    mask_one(t, r, e, own[rv_index(r, e)][col / 32], col % 32, fill);
  }
}

void cg_rt_exp2_rows(cg_tk *t, cg_rt *r, LLVMValueRef scale, const cg_rv *sub) {
  for (int e = 0; e < r->m / 16 * r->n / 8 * 4; e++) {
    LLVMValueRef s = LLVMBuildFNeg(E->b, cg_rget(E, sub->v[rv_index(r, e)]), "");
    LLVMValueRef x = cg_fma(E, cg_rget(E, r->v[e]), scale, s);
    cg_rset(E, r->v[e], cg_ex2(E, x));
  }
}

void cg_rt_mul_rows(cg_tk *t, cg_rt *r, const cg_rv *f) {
  for (int e = 0; e < r->m / 16 * r->n / 8 * 4; e++)
    cg_rset(E, r->v[e], CG_FMUL(E, cg_rget(E, r->v[e]), cg_rget(E, f->v[rv_index(r, e)])));
}

/* The values of each owned row of src, reduced pairwise (a tree keeps the
** dependent chain short) with op: 0 max, 1 sum. With ng > 0 (op 1) also
** groups[i * ng + g] = this thread's part of row i's sum over columns
** [g n / ng, (g + 1) n / ng): the tree's values when it has narrowed to ng
** (it pairs neighbours, and a thread's values run in column order), so the
** group sums cost no adds. */
static void row_reduce_groups(cg_tk *t, const cg_rt *src, int op, LLVMValueRef *out, int ng, LLVMValueRef *groups) {
  int rows = src->m / 8, per = src->n / 4;
  LLVMValueRef *v = malloc(sizeof(LLVMValueRef) * (size_t)(rows * per));
  int *n = calloc((size_t)rows, sizeof(int));
  for (int e = 0; e < src->m / 16 * src->n / 8 * 4; e++) {
    int i = rv_index(src, e);
    v[i * per + n[i]++] = cg_rget(E, src->v[e]);
  }
  for (int i = 0; i < rows; i++) {
    LLVMValueRef *x = v + i * per;
    for (int w = per; w > 1; w = (w + 1) / 2) {
      if (w == ng)
        for (int g = 0; g < ng; g++) groups[i * ng + g] = x[g];
      for (int k = 0; k < w / 2; k++)
        x[k] = op ? CG_FADD(E, x[2 * k], x[2 * k + 1]) : cg_fmax(E, x[2 * k], x[2 * k + 1]);
      if (w & 1) x[w / 2] = x[w - 1];
    }
    if (ng == 1) groups[i] = x[0];
    out[i] = x[0];
  }
  free(v);
  free(n);
}

static void row_reduce(cg_tk *t, const cg_rt *src, int op, LLVMValueRef *out) {
  row_reduce_groups(t, src, op, out, 0, NULL);
}

void cg_row_max(cg_tk *t, cg_rv *dst, const cg_rt *src) {
  LLVMValueRef acc[16];
  row_reduce(t, src, 0, acc);
  for (int i = 0; i < src->m / 8; i++) {
    acc[i] = cg_fmax(E, acc[i], cg_shfl_xor_f32(E, acc[i], 1));
    acc[i] = cg_fmax(E, acc[i], cg_shfl_xor_f32(E, acc[i], 2));
    cg_rset(E, dst->v[i], acc[i]);
  }
}

void cg_row_sum_part(cg_tk *t, cg_rv *dst, const cg_rt *src) { cg_row_sum_groups(t, dst, src, 0, NULL); }

void cg_row_sum_groups(cg_tk *t, cg_rv *dst, const cg_rt *src, int ng, LLVMValueRef *groups) {
  LLVMValueRef acc[16];
  row_reduce_groups(t, src, 1, acc, ng, groups);
  for (int i = 0; i < src->m / 8; i++) cg_rset(E, dst->v[i], CG_FADD(E, cg_rget(E, dst->v[i]), acc[i]));
}

/* A round per lane bit of the quad: the lane gives its partner the half of
** its values the partner keeps and adds the partner's share of its own
** half; n / 2 + n / 4 shuffles for n >= 4 where summing every value over
** the quad takes 2 n. */
int cg_quad_spread_sum(cg_tk *t, LLVMValueRef *v, int n) {
  for (int bit = 1; bit <= 2; bit <<= 1) {
    LLVMValueRef hi = CG_ICMP(E, LLVMIntNE, CG_AND(E, t->fc, cg_i32(E, bit)), cg_i32(E, 0));
    if (n == 1) {
      v[0] = CG_FADD(E, v[0], cg_shfl_xor_f32(E, v[0], bit));
      continue;
    }
    int h = n / 2;
    for (int i = 0; i < h; i++) {
      LLVMValueRef give = CG_SEL(E, hi, v[i], v[h + i]), kept = CG_SEL(E, hi, v[h + i], v[i]);
      v[i] = CG_FADD(E, kept, cg_shfl_xor_f32(E, give, bit));
    }
    n = h;
  }
  return n;
}

LLVMValueRef cg_quad_spread_at(cg_tk *t, int n, LLVMValueRef *own) {
  LLVMValueRef idx = cg_i32(E, 0);
  *own = LLVMConstInt(E->t_i1, 1, 0);
  for (int bit = 1; bit <= 2; bit <<= 1) {
    LLVMValueRef hi = CG_ICMP(E, LLVMIntNE, CG_AND(E, t->fc, cg_i32(E, bit)), cg_i32(E, 0));
    if (n == 1) {
      *own = CG_AND(E, *own, LLVMBuildNot(E->b, hi, ""));
      continue;
    }
    idx = CG_ADD(E, idx, CG_SEL(E, hi, cg_i32(E, n / 2), cg_i32(E, 0)));
    n /= 2;
  }
  return idx;
}

void cg_rv_quad_sum(cg_tk *t, cg_rv *r) {
  for (int i = 0; i < r->m / 8; i++) {
    LLVMValueRef x = cg_rget(E, r->v[i]);
    x = CG_FADD(E, x, cg_shfl_xor_f32(E, x, 1));
    x = CG_FADD(E, x, cg_shfl_xor_f32(E, x, 2));
    cg_rset(E, r->v[i], x);
  }
}

/* ------------------------------------------------------------ global views */

static LLVMValueRef gv_valid(cg_tk *t, const cg_gv *g, LLVMValueRef pos) {
  return g->limit ? CG_ICMP(E, LLVMIntSLT, pos, cg_i32(E, g->limit)) : NULL;
}

/* Pointer to column col of token row `row` (row 0 when the position does
** not exist, so no address leaves the tensor). */
static LLVMValueRef gv_row_ptr(cg_tk *t, const cg_gv *g, LLVMValueRef row, LLVMValueRef valid, LLVMValueRef col) {
  if (valid) row = CG_SEL(E, valid, row, cg_i32(E, 0));
  LLVMValueRef off = CG_ADD(E, LLVMBuildNSWMul(E->b, CG_SEXT64(E, row), g->stride, ""), CG_SEXT64(E, col));
  return cg_gep(E, E->t_i16, g->base, off);
}

/* row_of(pos0 + lane + 32 q) for q < n: the lane's share of a remapped
** tile's rows; cg_shfl_idx_i32 hands row k to whoever needs it from lane
** k % 32 of share k / 32. */
static void lane_rows(cg_tk *t, const cg_gv *g, LLVMValueRef pos0, int n, LLVMValueRef *share) {
  for (int q = 0; q < n; q++)
    share[q] = g->row_of(g->ctx, CG_ADD(E, pos0, CG_ADD(E, t->lane, cg_i32(E, 32 * q))));
}

void cg_gv_frag_rows(cg_tk *t, const cg_gv *g, LLVMValueRef row0, int m, LLVMValueRef *rows) {
  LLVMValueRef share[4];
  LLVMValueRef pos0 = CG_ADD(E, g->pos0, row0);
  if (g->row_of) lane_rows(t, g, pos0, (m + 31) / 32, share);
  for (int k = 0; k < m / 8; k++) {
    int off = 16 * (k / 2) + 8 * (k % 2);
    LLVMValueRef r = CG_ADD(E, t->fr, cg_i32(E, off));
    rows[k] = g->row_of ? cg_shfl_idx_i32(E, share[off / 32], CG_AND(E, r, cg_i32(E, 31))) : CG_ADD(E, pos0, r);
  }
}

void cg_rt_store(cg_tk *t, const cg_rt *r, const cg_gv *dst, LLVMValueRef row0) {
  int nt = r->n / 8;
  LLVMValueRef rows[16];
  cg_gv_frag_rows(t, dst, row0, r->m, rows);
  for (int k = 0; k < r->m / 8; k++) {
    int i = k / 2, h = k % 2;
    LLVMValueRef pos = CG_ADD(E, dst->pos0, CG_ADD(E, row0, CG_ADD(E, t->fr, cg_i32(E, 16 * i + 8 * h))));
    LLVMValueRef valid = gv_valid(t, dst, pos);
    cg_if c;
    if (valid) cg_if_begin(E, &c, valid);
    LLVMValueRef p = gv_row_ptr(t, dst, rows[k], NULL, CG_SHL(E, t->fc, cg_i32(E, 1)));
    for (int j = 0; j < nt; j++) {
      int e = (i * nt + j) * 4 + 2 * h;
      LLVMValueRef v = cg_pack2(E, t->dt == CG_FP16, cg_rget(E, r->v[e]), cg_rget(E, r->v[e + 1]));
      LLVMValueRef st = LLVMBuildStore(E->b, v, cg_gep(E, E->t_i16, p, cg_i32(E, 8 * j)));
      LLVMSetAlignment(st, 4);
    }
    if (valid) cg_if_end(E, &c);
  }
}

/* =============================================================== sm_80 */

static void sm80_copy_async(cg_tk *t, const cg_st *dst, const cg_gv *src) {
  int cpr = dst->cols / 8, rpp = t->nthreads / cpr, passes = dst->rows / rpp;
  LLVMValueRef c = CG_UREM(E, t->tid, cg_i32(E, cpr)), rt = CG_UDIV(E, t->tid, cg_i32(E, cpr));
  /* rpp is a multiple of 8, so every row this thread copies has phase rt % 8. */
  int pitch = dst->panels ? 128 : cg_st_pitch(dst->cols, dst->pad);
  LLVMValueRef sc = dst->pad ? c : CG_XOR(E, c, CG_AND(E, rt, cg_i32(E, 7)));
  if (dst->panels)  /* chunk c of a row: panel c / 8, swizzled within its 128 bytes */
    sc = CG_ADD(E, CG_MUL(E, CG_LSHR(E, c, cg_i32(E, 3)), cg_i32(E, dst->rows * 8)),
                CG_AND(E, sc, cg_i32(E, 7)));
  LLVMValueRef sbase = CG_ADD(E, dst->off, CG_ADD(E, CG_MUL(E, rt, cg_i32(E, pitch)),
                                                  CG_SHL(E, sc, cg_i32(E, 4))));
  LLVMValueRef col = CG_SHL(E, c, cg_i32(E, 3));
  /* Rows in position order walk the tensor by a fixed step: one multiply
  ** per tile instead of one per row. */
  LLVMValueRef step = NULL, walk = NULL, g, share[8];
  /* A warp's rows in one pass lie in one aligned group of 32 (rpp divides
  ** 32 or is 32), so row r is share[p * rpp / 32] of lane r % 32. */
  if (src->row_of) lane_rows(t, src, src->pos0, (dst->rows + 31) / 32, share);
  else step = CG_MUL(E, src->stride, cg_i64(E, rpp));
  for (int p = 0; p < passes; p++) {
    LLVMValueRef r = CG_ADD(E, rt, cg_i32(E, p * rpp));
    LLVMValueRef pos = CG_ADD(E, src->pos0, r), valid = gv_valid(t, src, pos);
    LLVMValueRef s = cg_smem_at(E, CG_ADD(E, sbase, cg_i32(E, p * rpp * pitch)));
    if (!step) {
      LLVMValueRef row = cg_shfl_idx_i32(E, share[p * rpp / 32], CG_AND(E, r, cg_i32(E, 31)));
      g = gv_row_ptr(t, src, row, valid, col);
    } else {
      g = walk = walk ? cg_gep(E, E->t_i16, walk, step) : gv_row_ptr(t, src, pos, NULL, col);
      if (valid) g = CG_SEL(E, valid, walk, src->base);
    }
    if (valid) {
      LLVMValueRef a[] = {s, g, CG_SEL(E, valid, cg_i32(E, 16), cg_i32(E, 0))};
      cg_intr(E, "llvm.nvvm.cp.async.cg.shared.global.16.s", NULL, 0, a, 3);
    } else {
      LLVMValueRef a[] = {s, g};
      cg_intr(E, "llvm.nvvm.cp.async.cg.shared.global.16", NULL, 0, a, 2);
    }
  }
}

static void sm80_copy_commit(cg_tk *t) { cg_intr(E, "llvm.nvvm.cp.async.commit.group", NULL, 0, NULL, 0); }

static void sm80_copy_wait(cg_tk *t, int pending) {
  LLVMValueRef n = cg_i32(E, pending);
  cg_intr(E, "llvm.nvvm.cp.async.wait.group", NULL, 0, &n, 1);
}

/*
** ldmatrix.x4 lane addressing. Lane l gives the address of row l % 8 of
** matrix l / 8. Two arrangements of the four 8x8 matrices are used:
**   SPLIT_K  matrices (rows 0-7, k 0-7) (rows 8-15, k 0-7) (rows 0-7, k 8-15)
**            (rows 8-15, k 8-15): the A operand, and B of a k x n tile
**            read transposed;
**   SPLIT_N  (rows 0-7, k 0-7) (rows 0-7, k 8-15) (rows 8-15, k 0-7)
**            (rows 8-15, k 8-15): B fragments of two n-tiles from an n x k tile.
** c0 (the first column, a multiple of 16) has chunk index c0 / 8 even and
** r0 is a multiple of 8, so the swizzled chunk is (c0 / 8) ^ (lane chunk ^
** lane row % 8), a per-lane constant xor'd with a constant.
*/
enum { SPLIT_K, SPLIT_N };

static LLVMValueRef ldm_addr(cg_tk *t, const cg_st *s, int split, int r0, int c0) {
  LLVMValueRef l = t->lane, lrow, lch;
  if (split == SPLIT_K) {
    lrow = CG_AND(E, l, cg_i32(E, 15));
    lch = CG_LSHR(E, l, cg_i32(E, 4));
  } else {
    lrow = CG_ADD(E, CG_AND(E, l, cg_i32(E, 7)), CG_SHL(E, CG_LSHR(E, l, cg_i32(E, 4)), cg_i32(E, 3)));
    lch = CG_AND(E, CG_LSHR(E, l, cg_i32(E, 3)), cg_i32(E, 1));
  }
  int rb = s->panels ? 128 : cg_st_pitch(s->cols, s->pad), ch = c0 / 8;
  /* A panelled tile's eight-chunk groups are its panels, s->rows rows of
  ** 128 bytes apart, swizzled as an unpadded row of 128 bytes is. */
  int group = s->panels ? s->rows * 128 : 128;
  if (s->pad) {
    LLVMValueRef lane = CG_ADD(E, CG_MUL(E, lrow, cg_i32(E, rb)), CG_SHL(E, lch, cg_i32(E, 4)));
    return CG_ADD(E, CG_ADD(E, s->off, lane), cg_i32(E, r0 * rb + ch * 16));
  }
  /* Only the low three chunk bits are swizzled: the rest of the column and
  ** the row go into the constant, so a tile needs four lane addresses (one
  ** per low-bit pattern) and every ldmatrix is one of them plus an immediate. */
  LLVMValueRef sw = CG_XOR(E, lch, CG_AND(E, lrow, cg_i32(E, 7)));
  LLVMValueRef lo = CG_SHL(E, CG_XOR(E, sw, cg_i32(E, ch & 7)), cg_i32(E, 4));
  LLVMValueRef lane = CG_ADD(E, CG_MUL(E, lrow, cg_i32(E, rb)), lo);
  return CG_ADD(E, CG_ADD(E, s->off, lane), cg_i32(E, r0 * rb + ch / 8 * group));
}

static void ldmatrix(cg_tk *t, LLVMValueRef off, int trans, LLVMValueRef out[4]) {
  LLVMValueRef p = cg_smem_at(E, off);
  LLVMValueRef r = cg_intr(E, trans ? "llvm.nvvm.ldmatrix.sync.aligned.m8n8.x4.trans.b16"
                                    : "llvm.nvvm.ldmatrix.sync.aligned.m8n8.x4.b16",
                           &E->t_sptr, 1, &p, 1);
  for (unsigned i = 0; i < 4; i++) out[i] = cg_field(E, r, i);
}

static LLVMValueRef mma_operand(cg_tk *t, LLVMValueRef x) {
  return t->dt == CG_FP16 ? LLVMBuildBitCast(E->b, x, LLVMVectorType(E->t_f16, 2), "") : x;
}

/* c[0..3] += a (16x16) * b (16x8), one m16n8k16 product. */
static void mma16816(cg_tk *t, const cg_reg *c, LLVMValueRef a[4], LLVMValueRef b0, LLVMValueRef b1) {
  LLVMValueRef args[10];
  for (int i = 0; i < 4; i++) args[i] = mma_operand(t, a[i]);
  args[4] = mma_operand(t, b0);
  args[5] = mma_operand(t, b1);
  for (int i = 0; i < 4; i++) args[6 + i] = cg_rget(E, c[i]);
  LLVMValueRef d = cg_intr(E, t->dt == CG_FP16 ? "llvm.nvvm.mma.m16n8k16.row.col.f32.f32"
                                                : "llvm.nvvm.mma.m16n8k16.row.col.bf16",
                           NULL, 0, args, 10);
  for (unsigned i = 0; i < 4; i++) cg_rset(E, c[i], cg_field(E, d, i));
}

static void sm80_load_a(cg_tk *t, cg_ra *a, const cg_st *src) {
  int ks = a->k / 16;
  for (int i = 0; i < a->m / 16; i++)
    for (int j = 0; j < ks; j++) {
      LLVMValueRef f[4];
      ldmatrix(t, ldm_addr(t, src, SPLIT_K, 16 * i, 16 * j), 0, f);
      for (int x = 0; x < 4; x++) cg_rset(E, a->v[(i * ks + j) * 4 + x], f[x]);
    }
}

static void sm80_mma_abt(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *as, const cg_st *b) {
  int mt = c->m / 16, nt = c->n / 8, ks = (a ? a->k : as->cols) / 16;
  for (int kk = 0; kk < ks; kk++) {
    LLVMValueRef af[4][4];
    for (int i = 0; i < mt; i++) {
      if (a)
        for (int x = 0; x < 4; x++) af[i][x] = cg_rget(E, a->v[(i * ks + kk) * 4 + x]);
      else
        ldmatrix(t, ldm_addr(t, as, SPLIT_K, 16 * i, 16 * kk), 0, af[i]);
    }
    for (int np = 0; np < nt / 2; np++) {
      LLVMValueRef bf[4];
      ldmatrix(t, ldm_addr(t, b, SPLIT_N, 16 * np, 16 * kk), 0, bf);
      for (int i = 0; i < mt; i++) {
        mma16816(t, &c->v[(i * nt + 2 * np) * 4], af[i], bf[0], bf[1]);
        mma16816(t, &c->v[(i * nt + 2 * np + 1) * 4], af[i], bf[2], bf[3]);
      }
    }
  }
}

static void sm80_mma_ab(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b) {
  int mt = c->m / 16, nt = c->n / 8, ks = a->k / 16;
  for (int kk = 0; kk < ks; kk++)
    for (int np = 0; np < nt / 2; np++) {
      LLVMValueRef bf[4];
      ldmatrix(t, ldm_addr(t, b, SPLIT_K, 16 * kk, 16 * np), 1, bf);
      for (int i = 0; i < mt; i++) {
        LLVMValueRef af[4];
        for (int x = 0; x < 4; x++) af[x] = cg_rget(E, a->v[(i * ks + kk) * 4 + x]);
        mma16816(t, &c->v[(i * nt + 2 * np) * 4], af, bf[0], bf[1]);
        mma16816(t, &c->v[(i * nt + 2 * np + 1) * 4], af, bf[2], bf[3]);
      }
    }
}

static const cg_target sm80 = {
  "sm_80", sm80_copy_async, sm80_copy_commit, sm80_copy_wait, sm80_load_a, sm80_mma_abt, sm80_mma_ab,
};

/* sm_90a kernels outside wgmma's shapes run the sm_80 operations. */
static const cg_target sm90a = {
  "sm_90a", sm80_copy_async, sm80_copy_commit, sm80_copy_wait, sm80_load_a, sm80_mma_abt, sm80_mma_ab,
};

const cg_target *cg_target_get(cg_arch arch) { return arch == CG_SM90A ? &sm90a : &sm80; }
