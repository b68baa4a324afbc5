/*
** The profiling kernels of Sparse VideoGen, in tile operations.
**
** sieve_profile_part: a CTA owns 64 sampled query rows of one head of one
** batch element (Q gathered by row index) and one chunk of keys; warp w
** owns 16 of the rows.
** For each pass (no mask, then each class's mask) it runs flash attention's
** online softmax over the chunk:
**
**   S = Q K^T,  S = -inf where the pass's mask is false or past the end
**   m' = max(m, rowmax(S) c),  P = 2^(S c - m'),  l = l 2^(m - m') + rowsum(P)
**   O = O 2^(m - m') + P V
**
** and leaves (O, m, l) of every row for the merge. K and V are read once
** per pass; the second and later passes find them in L2.
**
** sieve_profile_err: one CTA per (sampled row, head, batch element), one
** thread per column: each pass's chunks merged (the split-softmax merge),
** normalised, and the squared distances to the unmasked pass summed over
** the columns.
*/
#include "cg_profile.h"

#include <stdlib.h>

#include "cg_lower.h"
#include "cg_tile_ext.h"

#define LOG2E 1.4426950408889634
#define WARPS 4
#define RW 16
#define BN 64

enum {
  P_Q, P_K, P_V, P_QSB, P_QSH, P_QSS, P_KSB, P_KSH, P_KSS, P_VSB, P_VSH, P_VSS,
  P_ROWS, P_PART, P_STEP, P_LAYER, P_SCALE, P_TLEN, NP
};

typedef struct prof {
  const cg_profile_spec *spec;
  sieve_shape sh;
  int d, passes, nch, csize;
  int64_t seq;
  cg_em em;
  cg_tk tk;
  cg_lower **mask;               /* [passes]; [0], the unmasked pass: NULL, or the text padding */
  LLVMValueRef prm[NP];
  LLVMValueRef batch, head, chunk, grp, c, k0, ntiles, tlen;
  LLVMValueRef qs, ks, vs;
  LLVMValueRef qtok[RW / 8];     /* tokens of the rows this thread owns */
  cg_st sq, sk, sv;
  cg_rt s, o;
  cg_ra pa;
  cg_rv m, l, mx, base, alpha;
} prof;

#define EM (&a->em)
#define TK (&a->tk)

/* ------------------------------------------------------------- sizes */

sieve_status cg_profile_check(const cg_profile_spec *s, cg_err *e) {
  if (!s->pattern) return cg_fail(e, SIEVE_ERR_ARG, "profile: no pattern");
  sieve_status st = cg_shape_check(&s->shape, e);
  if (st) return st;
  if (s->shape.head_dim != 64 && s->shape.head_dim != 128)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "profile: head_dim %d (64 or 128)", s->shape.head_dim);
  if (s->ns < CG_PROFILE_ROWS || s->ns % CG_PROFILE_ROWS)
    return cg_fail(e, SIEVE_ERR_ARG, "profile: %d sampled rows (a multiple of %d)", s->ns, CG_PROFILE_ROWS);
  if (s->chunk < 0 || s->chunk > CG_PROFILE_CHUNK || s->chunk % BN)
    return cg_fail(e, SIEVE_ERR_ARG, "profile: key chunk %d (a multiple of %d up to %d)", s->chunk, BN, CG_PROFILE_CHUNK);
  return SIEVE_OK;
}

static int64_t tokens(const cg_profile_spec *s) {
  sieve_shape sh;
  cg_shape_for(s->pattern, &s->shape, &sh);
  return sieve_shape_tokens(&sh);
}

int cg_profile_chunk(const cg_profile_spec *s) { return s->chunk > 0 ? s->chunk : CG_PROFILE_CHUNK; }
int cg_profile_chunks(const cg_profile_spec *s) {
  int c = cg_profile_chunk(s);
  return (int)((tokens(s) + c - 1) / c);
}

int cg_profile_pick_chunk(const cg_profile_spec *s, int batch, int ctas) {
  cg_profile_spec t = *s;
  int64_t per = (int64_t)s->shape.heads * (s->ns / CG_PROFILE_ROWS) * (batch > 0 ? batch : 1);
  for (t.chunk = CG_PROFILE_CHUNK; t.chunk > 512 && cg_profile_chunks(&t) * per < ctas; t.chunk /= 2) {}
  return t.chunk;
}
size_t cg_profile_smem(const cg_profile_spec *s) {
  return (size_t)(CG_PROFILE_ROWS + 2 * BN) * (size_t)s->shape.head_dim * 2 + 4 * WARPS;
}
size_t cg_profile_err_smem(const cg_profile_spec *s) { return 4 * (size_t)(s->shape.head_dim / 32); }
size_t cg_profile_part_floats(const cg_profile_spec *s, int batch) {
  return (size_t)batch * (size_t)(s->pattern->nclasses + 1) * (size_t)s->shape.heads *
         (size_t)cg_profile_chunks(s) * (size_t)s->ns * (size_t)(s->shape.head_dim + 2);
}
size_t cg_profile_err_floats(const cg_profile_spec *s, int batch) {
  return (size_t)batch * (size_t)s->shape.heads * (size_t)s->ns * (size_t)(s->pattern->nclasses + 1);
}

/* ------------------------------------------------------------- pieces */

static LLVMValueRef P(prof *a, int i) { return a->prm[i]; }

static LLVMValueRef slice(prof *a, int p_t, int p_sb) {
  LLVMValueRef off = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, a->batch), P(a, p_sb)),
                            CG_MUL(EM, CG_ZEXT64(EM, a->head), P(a, p_sb + 1)));
  return cg_gep(EM, EM->t_i16, P(a, p_t), off);
}

/* Where row `row` of batch element b's part starts: 64-bit, since the batch
** together can pass 2^31 floats where one element does not. */
static LLVMValueRef part_at(prof *a, LLVMValueRef part, LLVMValueRef b, LLVMValueRef row) {
  int64_t per_b = (int64_t)a->passes * a->sh.heads * a->nch * a->spec->ns;
  LLVMValueRef at = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, b), cg_i64(EM, per_b)), CG_ZEXT64(EM, row));
  return cg_gep(EM, EM->t_f32, part, CG_MUL(EM, at, cg_i64(EM, a->d + 2)));
}

/* The token of sampled row i of this CTA's group. */
static LLVMValueRef sampled(void *ctx, LLVMValueRef i) {
  prof *a = ctx;
  LLVMValueRef at = CG_ADD(EM, CG_MUL(EM, a->grp, cg_i32(EM, CG_PROFILE_ROWS)), i);
  return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, P(a, P_ROWS), at));
}

typedef struct mctx {
  prof *a;
  cg_lower *mask;
} mctx;

static LLVMValueRef keep(void *ctx, int ri, LLVMValueRef row, int ci, LLVMValueRef col) {
  mctx *m = ctx;
  prof *a = m->a;
  LLVMValueRef kpos = CG_ADD(EM, a->k0, col), r = NULL;
  if (m->mask) {
    r = cg_lower_at(m->mask, EM, a->qtok[ri], kpos, a->head, P(a, P_STEP), P(a, P_LAYER), a->tlen);
  }
  if (a->seq % BN) {
    LLVMValueRef in = CG_ICMP(EM, LLVMIntSLT, kpos, cg_i32(EM, a->seq));
    r = r ? CG_AND(EM, r, in) : in;
  }
  return r;
}

static LLVMValueRef finite_base(prof *a, LLVMValueRef m) {
  return CG_SEL(EM, CG_FCMP(EM, LLVMRealOEQ, m, cg_fneg_inf(EM)), cg_f32(EM, 0), m);
}

static void online_softmax(prof *a) {
  cg_row_max(TK, &a->mx, &a->s);
  for (int i = 0; i < RW / 8; i++) {
    LLVMValueRef mo = cg_rv_get(TK, &a->m, i);
    LLVMValueRef mn = cg_fmax(EM, mo, CG_FMUL(EM, cg_rv_get(TK, &a->mx, i), a->c));
    LLVMValueRef b = finite_base(a, mn);
    cg_rv_set(TK, &a->alpha, i, cg_ex2(EM, CG_FSUB(EM, mo, b)));
    cg_rv_set(TK, &a->l, i, CG_FMUL(EM, cg_rv_get(TK, &a->l, i), cg_rv_get(TK, &a->alpha, i)));
    cg_rv_set(TK, &a->m, i, mn);
    cg_rv_set(TK, &a->base, i, b);
  }
  cg_rt_mul_rows(TK, &a->o, &a->alpha);
  cg_rt_exp2_rows(TK, &a->s, a->c, &a->base);
  cg_row_sum_part(TK, &a->l, &a->s);
}

/* K and V of tile t of the chunk, synchronously: profiling is a few rows. */
static void load_kv(prof *a, LLVMValueRef t) {
  LLVMValueRef pos0 = CG_ADD(EM, CG_MUL(EM, a->chunk, cg_i32(EM, a->csize)), CG_MUL(EM, t, cg_i32(EM, BN)));
  int64_t lim = a->seq % BN ? a->seq : 0;
  cg_gv k = {a->ks, P(a, P_KSS), pos0, lim, NULL, a}, v = {a->vs, P(a, P_VSS), pos0, lim, NULL, a};
  cg_sync(TK);  /* every warp is done with the last tile */
  cg_copy_async(TK, &a->sk, &k);
  cg_copy_async(TK, &a->sv, &v);
  cg_copy_commit(TK);
  cg_copy_wait(TK, 0);
  cg_sync(TK);
  a->k0 = pos0;
}

/* (O, m, l) of the warp's rows for pass p. */
static void store_state(prof *a, int p) {
  int64_t w = a->d + 2;
  LLVMValueRef blk = CG_ADD(EM, CG_MUL(EM, cg_i32(EM, p), cg_i32(EM, a->sh.heads)), a->head);
  blk = CG_ADD(EM, CG_MUL(EM, blk, cg_i32(EM, a->nch)), a->chunk);
  LLVMValueRef r0 = CG_ADD(EM, CG_MUL(EM, blk, cg_i32(EM, a->spec->ns)), CG_MUL(EM, a->grp, cg_i32(EM, CG_PROFILE_ROWS)));
  LLVMValueRef base = part_at(a, P(a, P_PART), a->batch, r0);
  LLVMValueRef wr = CG_MUL(EM, TK->warp, cg_i32(EM, RW));
  cg_rv_quad_sum(TK, &a->l);
  cg_rt_store_f32(TK, &a->o, base, cg_i64(EM, w), wr);
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, TK->fc, cg_i32(EM, 0)));
  for (int i = 0; i < RW / 8; i++) {
    LLVMValueRef row = CG_ADD(EM, wr, CG_ADD(EM, TK->fr, cg_i32(EM, 16 * (i / 2) + 8 * (i % 2))));
    LLVMValueRef at = cg_gep(EM, EM->t_f32, base, CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, w)), cg_i64(EM, a->d)));
    cg_store(EM, cg_rv_get(TK, &a->m, i), at);
    cg_store(EM, cg_rv_get(TK, &a->l, i), cg_gep(EM, EM->t_f32, at, cg_i32(EM, 1)));
  }
  cg_if_end(EM, &lead);
}

static void pass(prof *a, int p) {
  cg_rt_fill(TK, &a->o, cg_f32(EM, 0));
  for (int i = 0; i < RW / 8; i++) {
    cg_rv_set(TK, &a->m, i, cg_fneg_inf(EM));
    cg_rv_set(TK, &a->l, i, cg_f32(EM, 0));
  }
  cg_for loop;
  LLVMValueRef t = cg_for_begin(EM, &loop, cg_i32(EM, 0), a->ntiles);
  load_kv(a, t);
  cg_st mine = cg_st_rows(TK, &a->sq, CG_MUL(EM, TK->warp, cg_i32(EM, RW)), RW);
  cg_rt_fill(TK, &a->s, cg_f32(EM, 0));
  cg_mma_abt(TK, &a->s, NULL, &mine, &a->sk);
  mctx m = {a, a->mask[p]};
  if (m.mask || a->seq % BN) cg_rt_mask(TK, &a->s, keep, &m, cg_fneg_inf(EM));
  online_softmax(a);
  cg_rt_to_a(TK, &a->pa, &a->s);
  cg_mma_ab(TK, &a->o, &a->pa, &a->sv);
  cg_for_end(EM, &loop);
  store_state(a, p);
}

static void part_body(prof *a) {
  a->chunk = cg_sreg_read(EM, CG_CTAID_X);
  a->head = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef z = cg_sreg_read(EM, CG_CTAID_Z), groups = cg_i32(EM, a->spec->ns / CG_PROFILE_ROWS);
  a->batch = CG_UDIV(EM, z, groups);
  a->grp = CG_SUB(EM, z, CG_MUL(EM, a->batch, groups));
  a->c = CG_FMUL(EM, P(a, P_SCALE), cg_f32(EM, LOG2E));
  a->tlen = cg_text_valid(EM, &a->sh, P(a, P_TLEN), a->batch);
  a->qs = slice(a, P_Q, P_QSB);
  a->ks = slice(a, P_K, P_KSB);
  a->vs = slice(a, P_V, P_VSB);
  LLVMValueRef left = CG_SUB(EM, cg_i32(EM, a->seq), CG_MUL(EM, a->chunk, cg_i32(EM, a->csize)));
  LLVMValueRef tiles = CG_UDIV(EM, CG_ADD(EM, left, cg_i32(EM, BN - 1)), cg_i32(EM, BN));
  a->ntiles = CG_SEL(EM, CG_ICMP(EM, LLVMIntSLT, tiles, cg_i32(EM, a->csize / BN)), tiles,
                     cg_i32(EM, a->csize / BN));
  int qb = CG_PROFILE_ROWS * a->d * 2, kb = BN * a->d * 2;
  a->sq = (cg_st){.off = cg_i32(EM, 0), .rows = CG_PROFILE_ROWS, .cols = a->d};
  a->sk = (cg_st){.off = cg_i32(EM, qb), .rows = BN, .cols = a->d};
  a->sv = (cg_st){.off = cg_i32(EM, qb + kb), .rows = BN, .cols = a->d};
  for (int i = 0; i < RW / 8; i++)
    a->qtok[i] = sampled(a, CG_ADD(EM, CG_MUL(EM, TK->warp, cg_i32(EM, RW)),
                                   CG_ADD(EM, TK->fr, cg_i32(EM, 16 * (i / 2) + 8 * (i % 2)))));
  cg_rt_init(TK, &a->s, RW, BN, NULL);
  cg_rt_init(TK, &a->o, RW, a->d, NULL);
  cg_ra_init(TK, &a->pa, RW, BN);
  cg_rv_init(TK, &a->m, RW, NULL);
  cg_rv_init(TK, &a->l, RW, NULL);
  cg_rv_init(TK, &a->mx, RW, NULL);
  cg_rv_init(TK, &a->base, RW, NULL);
  cg_rv_init(TK, &a->alpha, RW, NULL);
  cg_gv q = {a->qs, P(a, P_QSS), cg_i32(EM, 0), 0, sampled, a};
  cg_copy_async(TK, &a->sq, &q);
  cg_copy_commit(TK);
  for (int p = 0; p < a->passes; p++) pass(a, p);
  LLVMBuildRetVoid(EM->b);
}

/* ------------------------------------------------------------ merging */

static void err_body(prof *a, LLVMValueRef part, LLVMValueRef err) {
  LLVMValueRef r = cg_sreg_read(EM, CG_CTAID_X), h = cg_sreg_read(EM, CG_CTAID_Y), d = TK->tid;
  LLVMValueRef b = cg_sreg_read(EM, CG_CTAID_Z);
  int64_t ns = a->spec->ns;
  LLVMValueRef ninf = cg_fneg_inf(EM), ref = NULL;
  for (int p = 0; p < a->passes; p++) {
    LLVMValueRef blk = CG_MUL(EM, CG_ADD(EM, cg_i32(EM, p * a->sh.heads), h), cg_i32(EM, a->nch));
    cg_reg mx = cg_reg_new(EM, EM->t_f32, ninf), L = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
    cg_reg O = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
    for (int k = 0; k < 2; k++) {  /* the chunks' max first, then the merge */
      cg_for l;
      LLVMValueRef c = cg_for_begin(EM, &l, cg_i32(EM, 0), cg_i32(EM, a->nch));
      LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, CG_ADD(EM, blk, c), cg_i32(EM, ns)), r);
      LLVMValueRef base = part_at(a, part, b, row);
      LLVMValueRef m = cg_load(EM, EM->t_f32, cg_gep(EM, EM->t_f32, base, cg_i32(EM, a->d)));
      if (k == 0) {
        cg_rset(EM, mx, cg_fmax(EM, cg_rget(EM, mx), m));
      } else {
        LLVMValueRef dead = CG_FCMP(EM, LLVMRealOEQ, m, ninf);
        LLVMValueRef s = CG_SEL(EM, dead, cg_f32(EM, 0), cg_ex2(EM, CG_FSUB(EM, m, cg_rget(EM, mx))));
        LLVMValueRef lv = cg_load(EM, EM->t_f32, cg_gep(EM, EM->t_f32, base, cg_i32(EM, a->d + 1)));
        LLVMValueRef ov = cg_load(EM, EM->t_f32, cg_gep(EM, EM->t_f32, base, d));
        cg_rset(EM, L, cg_fma(EM, lv, s, cg_rget(EM, L)));
        cg_rset(EM, O, cg_fma(EM, ov, s, cg_rget(EM, O)));
      }
      cg_for_end(EM, &l);
    }
    LLVMValueRef lt = cg_rget(EM, L), any = CG_FCMP(EM, LLVMRealOGT, lt, cg_f32(EM, 0));
    LLVMValueRef fin = CG_SEL(EM, any, LLVMBuildFDiv(EM->b, cg_rget(EM, O), lt, ""), cg_f32(EM, 0));
    LLVMValueRef diff = p ? CG_FSUB(EM, fin, ref) : fin;
    if (!p) ref = fin;
    LLVMValueRef tot = cg_block_sum_f32(TK, CG_FMUL(EM, diff, diff), 0);
    cg_if lead;
    cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, d, cg_i32(EM, 0)));
    LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, b), cg_i64(EM, a->sh.heads)), CG_ZEXT64(EM, h));
    LLVMValueRef ei = CG_ADD(EM, CG_MUL(EM, CG_ADD(EM, CG_MUL(EM, bh, cg_i64(EM, ns)), CG_ZEXT64(EM, r)),
                                       cg_i64(EM, a->passes)),
                             cg_i64(EM, p));
    cg_store(EM, tot, cg_gep(EM, EM->t_f32, err, ei));
    cg_if_end(EM, &lead);
  }
  LLVMBuildRetVoid(EM->b);
}

/* ------------------------------------------------------------ building */

/* Each class's mask over model-order positions (the identity layout's
** coordinates), head, step and layer. */
static sieve_status prepare_masks(prof *a, cg_err *e) {
  cg_pattern *p = a->spec->pattern;
  const cg_layout id = {CG_LAYOUT_IDENTITY, {0}};
  cg_range r[CG_NVARS];
  cg_kernel_ranges(r, a->seq - 1, (a->seq + BN - 1) / BN * BN - 1, a->sh.heads, a->sh.text);
  a->mask = calloc((size_t)a->passes, sizeof *a->mask);
  if (!a->mask) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  cg_ref valid = cg_valid_pairs(p->g, &a->sh);
  /* The dense pass, the reference, leaves the text padding out too. */
  if (a->sh.text > 0) {
    cg_ref v = cg_mask_at_positions(p->g, valid, &id, &a->sh, NULL);
    if (v == CG_NONE) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    if (!(a->mask[0] = cg_lower_new(p->g, v, r, e))) return e->status;
  }
  for (int c = 0; c < p->nclasses; c++) {
    cg_ref m = cg_mask_at_positions(p->g, cg_bin(p->g, CG_AND, cg_profile_mask(p, c), valid), &id, &a->sh, NULL);
    if (m == CG_NONE) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    if (!(a->mask[c + 1] = cg_lower_new(p->g, m, r, e))) return e->status;
  }
  return SIEVE_OK;
}

static sieve_status part_kernel(prof *a, cg_err *e) {
  static const char *names[NP] = {"q", "k", "v", "q_sb", "q_sh", "q_ss", "k_sb", "k_sh", "k_ss", "v_sb",
                                  "v_sh", "v_ss", "rows", "part", "step", "layer", "scale", "tlen"};
  LLVMTypeRef t[NP];
  for (int i = 0; i < NP; i++) t[i] = EM->t_i64;
  t[P_Q] = t[P_K] = t[P_V] = t[P_ROWS] = t[P_PART] = t[P_TLEN] = EM->t_gptr;
  t[P_STEP] = t[P_LAYER] = EM->t_i32;
  t[P_SCALE] = EM->t_f32;
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_profile_part", t, names, NP, 32 * WARPS, 0);
  for (int i = 0; i < NP; i++) a->prm[i] = LLVMGetParam(fn, (unsigned)i);
  sieve_status st = SIEVE_OK;
  if (cg_tk_init(TK, EM, a->spec->arch, a->spec->dtype, 32 * WARPS)) st = cg_fail(e, EM->err.status, "%s", EM->err.msg);
  if (!st) part_body(a);
  cg_tk_dispose(TK);
  return st;
}

static sieve_status err_kernel(prof *a, cg_err *e) {
  static const char *names[2] = {"part", "err"};
  LLVMTypeRef t[2] = {EM->t_gptr, EM->t_gptr};
  LLVMValueRef fn = cg_em_kernel(EM, "sieve_profile_err", t, names, 2, a->d, 0);
  sieve_status st = SIEVE_OK;
  if (cg_tk_init(TK, EM, a->spec->arch, a->spec->dtype, a->d)) st = cg_fail(e, EM->err.status, "%s", EM->err.msg);
  if (!st) err_body(a, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1));
  cg_tk_dispose(TK);
  return st;
}

sieve_status cg_profile_build(const cg_profile_spec *s, char **ptx, cg_err *e) {
  *ptx = NULL;
  sieve_status st = cg_profile_check(s, e);
  if (st) return st;
  prof A = {0}, *a = &A;
  a->spec = s;
  cg_shape_for(s->pattern, &s->shape, &a->sh);
  a->d = a->sh.head_dim;
  a->passes = s->pattern->nclasses + 1;
  a->seq = sieve_shape_tokens(&a->sh);
  a->nch = cg_profile_chunks(s);
  a->csize = cg_profile_chunk(s);
  if ((st = cg_em_start(EM, "sieve_profile", e))) return st;
  st = prepare_masks(a, e);
  if (!st) st = part_kernel(a, e);
  if (!st) st = err_kernel(a, e);
  if (!st) st = cg_em_ptx(EM, s->arch, ptx, e);
  for (int i = 0; a->mask && i < a->passes; i++) cg_lower_free(a->mask[i]);
  free(a->mask);
  cg_em_dispose(EM);
  return st;
}
