/*
** The block-mass kernel of the LSE-cached search, in tile operations.
**
** A CTA owns one pattern query block (block_q rows) of one (batch, head);
** warp w owns rows w * rw .. w * rw + rw. For every kernel key block of the
** row's allowed entries:
**
**   S = Q K^T                  Q in shared memory (sm_90a: read once into
**                              registers), K double-buffered (sm_90a: by
**                              TMA where its rows are the model's,
**                              sieve_search_mass_tma)
**   S = -inf where masked      partial blocks and the ragged last block
**   P = 2^(S * c - L)          c = scale * log2(e), L = LSE * log2(e) per row
**   acc += sum of P            this thread's share
**
** and when the entry's last kernel block is done the warps' shares are
** summed and written as the entry's mass (flush, collect). A row that saw no key in the
** attention pass (LSE = -inf) and a row past the sequence contribute 0.
*/
#include "cg_search.h"

#include <math.h>
#include <stdlib.h>

#include "cg_lower.h"
#include "cg_tablegen.h"
#include "cg_tma.h"
#include "cg_tile_ext.h"
#include "cg_wgmma.h"

#define LOG2E 1.4426950408889634
#define SELECT_WARPS 4  /* cg_search_select.c's */
#define BN 64          /* keys a step, the least; sm_90a takes 128 where blocks allow */

enum {
  P_Q, P_K, P_LSE, P_QSB, P_QSH, P_QSS, P_KSB, P_KSH, P_KSS,
  P_TABS, P_HEAD_OFF, P_MASS, P_STEP, P_LAYER, P_SCALE, P_TLEN, NP,
  P_TMAP_K = NP, NP_TMA  /* the TMA kernel's K tensor map, by value */
};

typedef struct srch {
  const cg_search_spec *spec;
  sieve_shape sh;
  int d, bm, bn, rw, sub, nq, warps;
  int wg;                        /* sm_90a: S by wgmma from panelled tiles */
  int tma;                       /* K by TMA, completing on an mbarrier a stage */
  int64_t seq, q_limit, k_limit;
  cg_em em;
  cg_tk tk;
  cg_lower *mask, *qidx, *kidx;  /* NULL: dense mask, identity layouts */
  LLVMValueRef prm[NP_TMA];
  LLVMValueRef batch, head, q0, row0, c, tlen;
  LLVMValueRef qs, ks;           /* the (batch, head) slices */
  LLVMValueRef tab, start, nblk, nfull, out;
  cg_st sq;
  cg_rt s;
  cg_ra qa;                   /* sm_90a: this warp's 16 rows of Q, the products' A */
  cg_rv lrow;                 /* LSE * log2(e) of each owned row */
  cg_reg acc;
  int q_bytes, k_bytes, red_off, bar_off;
} srch;

#define EM (&a->em)
#define TK (&a->tk)

/* ------------------------------------------------------------ sizes */

static int block_rows(const cg_search_spec *s) { return cg_pattern_block_q(s->pattern); }
static int block_keys(const cg_search_spec *s) { return cg_pattern_block_k(s->pattern); }

/* sm_90a: a warpgroup per 64 rows, so a warp holds 16 rows of S. */
int cg_search_mass_warps(const cg_search_spec *s) { return s->arch == CG_SM90A ? block_rows(s) / 16 : 4; }

/* Keys a step: a warp of 16 rows holds 128 keys' S in 64 registers, and
** fewer steps mean fewer barriers. */
static int step_keys(const cg_search_spec *s) {
  return s->arch == CG_SM90A && block_keys(s) % 128 == 0 ? 128 : BN;
}

int cg_search_mass_box_rows(const cg_search_spec *s) { return step_keys(s); }

sieve_status cg_search_check(const cg_search_spec *s, cg_err *e) {
  if (!s->pattern) return cg_fail(e, SIEVE_ERR_ARG, "search: no pattern");
  sieve_status st = cg_shape_check(&s->shape, e);
  if (st) return st;
  int bq = block_rows(s), bk = block_keys(s);
  if (bq != 64 && bq != 128)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "search: query blocks of %d rows (64 or 128 are supported)", bq);
  if (bk % BN) return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "search: key blocks of %d (a multiple of %d)", bk, BN);
  if (s->shape.head_dim != 64 && s->shape.head_dim != 128)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "search: head_dim %d (64 or 128)", s->shape.head_dim);
  if (s->cap < 1 || s->cap > INT32_MAX) return cg_fail(e, SIEVE_ERR_ARG, "search: %lld mass entries", (long long)s->cap);
  const cg_selection *q = &s->pattern->sel;
  if (q->nlevels > CG_SEARCH_MAX_LEVELS)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "pattern %s: search levels: %d of them (at most %d)", s->pattern->name,
                   q->nlevels, CG_SEARCH_MAX_LEVELS);
  for (int i = 0; i < q->nlevels; i++)
    if (q->levels[i] % bk)
      return cg_fail(e, SIEVE_ERR_UNSUPPORTED,
                     "pattern %s: search level %d tokens is not a multiple of the key block (%d)", s->pattern->name,
                     q->levels[i], bk);
  /* The sink reads the tables' blocks as model positions. */
  for (int c = 0; q->text_sink && c < s->pattern->nclasses; c++)
    if (s->pattern->classes[c].layout.kind != CG_LAYOUT_IDENTITY || s->pattern->auto_layout)
      return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "pattern %s: the search's text sink needs the identity layout",
                     s->pattern->name);
  return SIEVE_OK;
}

int cg_search_groups(const cg_search_spec *s, int groups[CG_SEARCH_MAX_LEVELS]) {
  const cg_selection *q = &s->pattern->sel;
  int n = 0, bk = block_keys(s);
  for (int i = 0; i < q->nlevels && n < CG_SEARCH_MAX_LEVELS; i++)
    if (q->levels[i] > bk) groups[n++] = q->levels[i] / bk;
  return n;
}

/* Q, two K stages, the warps' two-entry ring (collect), and on sm_90a the
** stages' mbarriers (the TMA kernel's). */
size_t cg_search_mass_smem(const cg_search_spec *s) {
  size_t d = (size_t)s->shape.head_dim;
  return (size_t)block_rows(s) * d * 2 + 2 * (size_t)step_keys(s) * d * 2 + 2 * 4 * (size_t)cg_search_mass_warps(s) +
         (s->arch == CG_SM90A ? 16 : 0);
}

static int64_t nblocks(const cg_search_spec *s, int bsz) {
  sieve_shape sh;
  cg_shape_for(s->pattern, &s->shape, &sh);
  return (sieve_shape_tokens(&sh) + bsz - 1) / bsz;
}

/* The entries' masses; with levels also the dense row and the group masses. */
size_t cg_search_select_smem(const cg_search_spec *s) {
  int g[CG_SEARCH_MAX_LEVELS];
  return (cg_search_groups(s, g) ? 12 : 4) * (size_t)nblocks(s, block_keys(s)) + 4 * SELECT_WARPS;
}

int64_t cg_search_table_ints(const cg_search_spec *s) {
  int64_t nq = nblocks(s, block_rows(s)), nk = nblocks(s, block_keys(s));
  return 2 * nq + 1 + nq * nk;
}

/* ------------------------------------------------------------ pieces */

static LLVMValueRef P(srch *a, int i) { return a->prm[i]; }

static LLVMValueRef lower_at(srch *a, cg_lower *l, LLVMValueRef qpos, LLVMValueRef kpos) {
  return cg_lower_at(l, EM, qpos, kpos, a->head, P(a, P_STEP), P(a, P_LAYER), a->tlen);
}

static LLVMValueRef row_q(void *ctx, LLVMValueRef pos) { srch *a = ctx; return lower_at(a, a->qidx, pos, NULL); }
static LLVMValueRef row_k(void *ctx, LLVMValueRef pos) { srch *a = ctx; return lower_at(a, a->kidx, NULL, pos); }

static LLVMValueRef slice(srch *a, int p_t, int p_sb) {
  LLVMValueRef off = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, a->batch), P(a, p_sb)),
                            CG_MUL(EM, CG_ZEXT64(EM, a->head), P(a, p_sb + 1)));
  return cg_gep(EM, EM->t_i16, P(a, p_t), off);
}

static LLVMValueRef tab_at(srch *a, LLVMValueRef i) { return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, a->tab, i)); }

/* Kernel key block of iteration j (j < nblk). */
static LLVMValueRef key_block(srch *a, LLVMValueRef j) {
  LLVMValueRef ent = CG_ADD(EM, a->start, CG_UDIV(EM, j, cg_i32(EM, a->sub)));
  LLVMValueRef t = tab_at(a, CG_ADD(EM, ent, cg_i32(EM, 2 * a->nq + 1)));
  return CG_ADD(EM, CG_MUL(EM, t, cg_i32(EM, a->sub)), CG_UREM(EM, j, cg_i32(EM, a->sub)));
}

static cg_st k_tile(srch *a, LLVMValueRef j) {
  LLVMValueRef st = CG_AND(EM, j, cg_i32(EM, 1));
  return (cg_st){.off = CG_ADD(EM, cg_i32(EM, a->q_bytes), CG_MUL(EM, st, cg_i32(EM, a->k_bytes))), .rows = a->bn, .cols = a->d, .panels = a->wg};
}

/* Stage j % 2's barrier (the TMA kernel). */
static LLVMValueRef k_bar(srch *a, LLVMValueRef j) {
  return CG_ADD(EM, cg_i32(EM, a->bar_off), CG_SHL(EM, CG_AND(EM, j, cg_i32(EM, 1)), cg_i32(EM, 3)));
}

static void issue_k_at(srch *a, LLVMValueRef j, LLVMValueRef kb) {
  cg_st dst = k_tile(a, j);
  if (a->tma) {
    cg_if one;
    cg_if_begin(EM, &one, CG_ICMP(EM, LLVMIntEQ, TK->tid, cg_i32(EM, 0)));
    LLVMValueRef bar = k_bar(a, j);
    cg_mbar_expect(TK, bar, a->k_bytes);
    cg_tma_load(TK, &dst, P(a, P_TMAP_K), CG_MUL(EM, kb, cg_i32(EM, a->bn)), a->head, a->batch, bar);
    cg_if_end(EM, &one);
    return;
  }
  cg_gv src = {a->ks, P(a, P_KSS), CG_MUL(EM, kb, cg_i32(EM, a->bn)), a->k_limit, NULL, a};
  if (a->kidx) src.row_of = row_k;
  cg_copy_async(TK, &dst, &src);
}

static void issue_k(srch *a, LLVMValueRef j) { issue_k_at(a, j, key_block(a, j)); }

/* ------------------------------------------------------------- masking */

typedef struct mctx {
  srch *a;
  LLVMValueRef k0, partial;
} mctx;

static LLVMValueRef keep(void *ctx, int ri, LLVMValueRef row, int ci, LLVMValueRef col) {
  mctx *m = ctx;
  srch *a = m->a;
  LLVMValueRef kpos = CG_ADD(EM, m->k0, col), r = NULL;
  if (a->mask) {
    LLVMValueRef qpos = CG_ADD(EM, a->row0, row);
    r = CG_OR(EM, CG_XOR(EM, m->partial, cg_true(EM)), lower_at(a, a->mask, qpos, kpos));
  }
  if (a->k_limit) {
    LLVMValueRef in = CG_ICMP(EM, LLVMIntSLT, kpos, cg_i32(EM, a->seq));
    r = r ? CG_AND(EM, r, in) : in;
  }
  return r;
}

static void mask(srch *a, cg_rt *s, LLVMValueRef j, LLVMValueRef kb) {
  if (!a->mask && !a->k_limit) return;
  LLVMValueRef k0 = CG_MUL(EM, kb, cg_i32(EM, a->bn)), need = NULL;
  mctx m = {a, k0, NULL};
  if (a->mask) {
    need = m.partial = CG_ICMP(EM, LLVMIntSGE, CG_UDIV(EM, j, cg_i32(EM, a->sub)), a->nfull);
    LLVMValueRef tk = cg_text_overlap(EM, &a->sh, k0, a->bn);
    if (tk) need = m.partial = CG_OR(EM, m.partial, tk);
  }
  if (a->k_limit) {
    LLVMValueRef past = CG_ICMP(EM, LLVMIntSGT, CG_ADD(EM, k0, cg_i32(EM, a->bn)), cg_i32(EM, a->seq));
    need = need ? CG_OR(EM, need, past) : past;
  }
  cg_if c;
  cg_if_begin(EM, &c, need);
  cg_rt_mask(TK, s, keep, &m, cg_fneg_inf(EM));
  cg_if_end(EM, &c);
}

/* ------------------------------------------------------------- phases */

/* L = LSE * log2(e) of each row this thread owns; +inf (P = 0) for rows
** past the sequence and rows with no key. */
static void load_lse(srch *a) {
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, a->batch, cg_i32(EM, a->sh.heads)), a->head);
  LLVMValueRef base = cg_gep(EM, EM->t_f32, P(a, P_LSE), CG_MUL(EM, CG_ZEXT64(EM, bh), cg_i64(EM, a->seq)));
  LLVMValueRef inf = cg_f32(EM, INFINITY);
  for (int i = 0; i < a->rw / 8; i++) {
    LLVMValueRef pos = CG_ADD(EM, a->row0, CG_ADD(EM, TK->fr, cg_i32(EM, 16 * (i / 2) + 8 * (i % 2))));
    LLVMValueRef in = CG_ICMP(EM, LLVMIntSLT, pos, cg_i32(EM, a->seq));
    LLVMValueRef safe = CG_SEL(EM, in, pos, cg_i32(EM, 0));
    LLVMValueRef row = a->qidx ? row_q(a, safe) : safe;
    LLVMValueRef l = cg_load(EM, EM->t_f32, cg_gep(EM, EM->t_f32, base, CG_ZEXT64(EM, row)));
    LLVMValueRef live = CG_AND(EM, in, CG_FCMP(EM, LLVMRealOGT, l, cg_fneg_inf(EM)));
    cg_rv_set(TK, &a->lrow, i, CG_SEL(EM, live, CG_FMUL(EM, l, cg_f32(EM, LOG2E)), inf));
  }
}

static void setup(srch *a) {
  a->batch = cg_sreg_read(EM, CG_CTAID_Z);
  a->head = cg_sreg_read(EM, CG_CTAID_Y);
  LLVMValueRef qblk = cg_sreg_read(EM, CG_CTAID_X);
  a->q0 = CG_MUL(EM, qblk, cg_i32(EM, a->bm));
  a->row0 = CG_ADD(EM, a->q0, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)));
  a->c = CG_FMUL(EM, P(a, P_SCALE), cg_f32(EM, LOG2E));
  a->tlen = cg_text_valid(EM, &a->sh, P(a, P_TLEN), a->batch);
  a->qs = slice(a, P_Q, P_QSB);
  a->ks = slice(a, P_K, P_KSB);
  LLVMValueRef hoff = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, P(a, P_HEAD_OFF), a->head));
  a->tab = cg_gep(EM, EM->t_i32, P(a, P_TABS), hoff);
  a->start = tab_at(a, qblk);
  LLVMValueRef end = tab_at(a, CG_ADD(EM, qblk, cg_i32(EM, 1)));
  a->nfull = tab_at(a, CG_ADD(EM, qblk, cg_i32(EM, a->nq + 1)));
  a->nblk = CG_MUL(EM, CG_SUB(EM, end, a->start), cg_i32(EM, a->sub));
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, a->batch, cg_i32(EM, a->sh.heads)), a->head);
  a->out = cg_gep(EM, EM->t_f32, P(a, P_MASS), CG_MUL(EM, CG_ZEXT64(EM, bh), cg_i64(EM, a->spec->cap)));
  a->sq = (cg_st){.off = cg_i32(EM, 0), .rows = a->bm, .cols = a->d, .panels = a->wg};
  cg_rt_init(TK, &a->s, a->rw, a->bn, NULL);
  cg_rv_init(TK, &a->lrow, a->rw, NULL);
  a->acc = cg_reg_new(EM, EM->t_f32, cg_f32(EM, 0));
  load_lse(a);
}

/*
** When kernel block j ends its entry: each warp's share goes to its slot of
** a two-entry ring in shared memory, and the entry is written after the next
** iteration's barrier (collect). No barrier of its own: a CTA-wide sum per
** entry cost two, against one per iteration for the K pipeline. The ring
** is safe because the next write to a slot is by the entry after next,
** which ends behind at least one more barrier than the read.
*/
static LLVMValueRef ring_slot(srch *a, LLVMValueRef local, LLVMValueRef warp) {
  LLVMValueRef i = CG_ADD(EM, CG_MUL(EM, CG_AND(EM, local, cg_i32(EM, 1)), cg_i32(EM, a->warps)), warp);
  return cg_smem_at(EM, CG_ADD(EM, cg_i32(EM, a->red_off), CG_SHL(EM, i, cg_i32(EM, 2))));
}

static void flush(srch *a, LLVMValueRef j, LLVMValueRef live) {
  cg_if last;
  LLVMValueRef r = CG_UREM(EM, CG_ADD(EM, j, cg_i32(EM, 1)), cg_i32(EM, a->sub));
  LLVMValueRef ends = CG_ICMP(EM, LLVMIntEQ, r, cg_i32(EM, 0));
  cg_if_begin(EM, &last, live ? CG_AND(EM, ends, live) : ends);
  LLVMValueRef w = cg_warp_sum_f32(EM, cg_rget(EM, a->acc));
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, TK->lane, cg_i32(EM, 0)));
  cg_store(EM, w, ring_slot(a, CG_UDIV(EM, j, cg_i32(EM, a->sub)), TK->warp));
  cg_if_end(EM, &lead);
  cg_rset(EM, a->acc, cg_f32(EM, 0));
  cg_if_end(EM, &last);
}

/* After a barrier: thread 0 writes the entry that kernel block j - 1 ended,
** its warps' shares added in warp order (the same sum every run). */
static void collect(srch *a, LLVMValueRef j) {
  LLVMValueRef prev = CG_SUB(EM, j, cg_i32(EM, 1));
  LLVMValueRef ended = CG_ICMP(EM, LLVMIntEQ, CG_UREM(EM, j, cg_i32(EM, a->sub)), cg_i32(EM, 0));
  LLVMValueRef go = CG_AND(EM, CG_AND(EM, ended, CG_ICMP(EM, LLVMIntSGT, j, cg_i32(EM, 0))),
                           CG_ICMP(EM, LLVMIntEQ, TK->tid, cg_i32(EM, 0)));
  cg_if c;
  cg_if_begin(EM, &c, go);
  LLVMValueRef local = CG_UDIV(EM, prev, cg_i32(EM, a->sub)), tot = NULL;
  for (int w = 0; w < a->warps; w++) {
    LLVMValueRef x = cg_load(EM, EM->t_f32, ring_slot(a, local, cg_i32(EM, w)));
    tot = tot ? CG_FADD(EM, tot, x) : x;
  }
  cg_store(EM, tot, cg_gep(EM, EM->t_f32, a->out, CG_ZEXT64(EM, CG_ADD(EM, a->start, local))));
  cg_if_end(EM, &c);
}

/* S_j's share of its entry's mass: masked, P = 2^(S c - L), summed;
** nothing where `live` (i1) is false. */
static void reduce(srch *a, cg_rt *s, LLVMValueRef j, LLVMValueRef kb, LLVMValueRef live) {
  mask(a, s, j, kb);
  cg_rt_exp2_rows(TK, s, a->c, &a->lrow);
  LLVMValueRef acc = cg_rget(EM, a->acc), sum = CG_FADD(EM, acc, cg_rt_sum_part(TK, s));
  cg_rset(EM, a->acc, live ? CG_SEL(EM, live, sum, acc) : sum);
  flush(a, j, live);
}

static LLVMValueRef before_end(srch *a, LLVMValueRef j) { return CG_ICMP(EM, LLVMIntSLT, j, a->nblk); }

/* The top of iteration j: this thread's copies in flight (K_j, or on the
** wgmma path K_{j+1}) landed and published to the CTA, every warp past
** its use of the stage the next copy overwrites. */
static void k_ready(srch *a, LLVMValueRef j) {
  if (a->tma) {
    /* K_{j+1}'s stage is filled for the ((j + 1) / 2)-th time; past the
    ** end nothing was issued (the product there is not counted). */
    LLVMValueRef j1 = CG_ADD(EM, j, cg_i32(EM, 1));
    cg_if in;
    cg_if_begin(EM, &in, before_end(a, j1));
    cg_mbar_wait(TK, k_bar(a, j1), CG_AND(EM, CG_LSHR(EM, j1, cg_i32(EM, 1)), cg_i32(EM, 1)));
    cg_if_end(EM, &in);
  } else {
    cg_copy_wait(TK, 0);
    if (a->wg) cg_wgmma_smem_fence(TK);
  }
  cg_sync(TK);
  collect(a, j);
}

/* mma.sync. Copy groups in flight at the top of iteration j: K_j only (and
** Q at j = 0). */
static void step(srch *a, LLVMValueRef j) {
  k_ready(a, j);
  LLVMValueRef next = CG_ADD(EM, j, cg_i32(EM, 1));
  cg_if more;
  cg_if_begin(EM, &more, before_end(a, next));
  issue_k(a, next);
  cg_if_end(EM, &more);
  cg_copy_commit(TK);
  cg_st k = k_tile(a, j);
  cg_rt_fill(TK, &a->s, cg_f32(EM, 0));
  cg_st mine = cg_st_rows(TK, &a->sq, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)), a->rw);
  cg_mma_abt(TK, &a->s, NULL, &mine, &k);
  reduce(a, &a->s, j, key_block(a, j), NULL);
}

/*
** wgmma: S_{j+1} is multiplied while S_j's exponentials and sums run, so
** the tensor cores and the exponential unit work at once within a CTA, not
** only across CTAs (at D = 128 they have equal work: a 64 x 64 x 128 product
** against 4096 exponentials). At the top of iteration j, S_j (in cur) and
** the copy of K_{j+1} are in flight.
**
** Every iteration issues its product, and the loop runs two iterations a
** turn so that cur and nxt alternate between two tiles without copies:
** a product issued under a condition, or a tile moved, leaves ptxas a
** register written by other code while a wgmma owns it, and it then
** serialises every wgmma of the kernel. So the products past the last
** key block run too, on a stale stage, and are not counted (live); the key
** blocks are read a step ahead, kb holding j's (iterations of one parity
** share a register).
*/
static void wg_step(srch *a, LLVMValueRef j, cg_rt *cur, cg_rt *nxt, cg_reg kb) {
  LLVMValueRef one = cg_i32(EM, 1), last = CG_SUB(EM, a->nblk, one);
  LLVMValueRef j1 = CG_ADD(EM, j, one), j2 = CG_ADD(EM, j1, one);
  LLVMValueRef kbj = cg_rget(EM, kb);
  LLVMValueRef kb2 = key_block(a, CG_SEL(EM, before_end(a, j2), j2, last));
  cg_wgmma_wait(TK, 0, cur);
  k_ready(a, j);
  cg_if more;
  cg_if_begin(EM, &more, before_end(a, j2));
  issue_k_at(a, j2, kb2);
  cg_if_end(EM, &more);
  cg_copy_commit(TK);
  cg_st k = k_tile(a, j1);
  cg_wgmma_abt_rs_async(TK, nxt, &a->qa, &k, 1);
  reduce(a, cur, j, kbj, before_end(a, j));
  cg_rset(EM, kb, kb2);
}

static void wg_loop(srch *a) {
  LLVMValueRef zero = cg_i32(EM, 0), one = cg_i32(EM, 1);
  cg_rt other;
  cg_rt_init(TK, &other, a->rw, a->bn, NULL);
  LLVMValueRef k1 = CG_SEL(EM, before_end(a, one), one, zero);
  cg_reg kb[2] = {cg_reg_new(EM, EM->t_i32, key_block(a, zero)), cg_reg_new(EM, EM->t_i32, key_block(a, k1))};
  cg_if c;
  cg_if_begin(EM, &c, before_end(a, one));
  issue_k_at(a, one, cg_rget(EM, kb[1]));
  cg_if_end(EM, &c);
  cg_copy_commit(TK);
  cg_copy_wait(TK, a->tma ? 0 : 1);  /* Q, and K_0 unless TMA brings it */
  cg_wgmma_smem_fence(TK);
  cg_sync(TK);
  if (a->tma) cg_mbar_wait(TK, k_bar(a, zero), zero);
  /* Q from registers: the products then read only K from shared memory,
  ** whose bandwidth (K's copies in, both operands out) bounded the kernel
  ** before the tensor cores did. */
  cg_st mine = a->sq;
  mine.off = CG_ADD(EM, a->sq.off, CG_MUL(EM, TK->warp, cg_i32(EM, 16 * 128)));
  cg_ra_init(TK, &a->qa, 16, a->d);
  cg_load_a(TK, &a->qa, &mine);
  cg_st k = k_tile(a, zero);
  cg_wgmma_abt_rs_async(TK, &a->s, &a->qa, &k, 1);
  cg_for loop;
  LLVMValueRef j = cg_for_step_begin(EM, &loop, zero, a->nblk, 2);
  wg_step(a, j, &a->s, &other, kb[0]);
  wg_step(a, CG_ADD(EM, j, one), &other, &a->s, kb[1]);
  cg_for_end(EM, &loop);
  cg_wgmma_wait(TK, 0, NULL);  /* the product past the end */
}

static void kernel(srch *a) {
  setup(a);
  if (a->tma) {  /* published to the other threads by wg_loop's barrier */
    cg_if one;
    cg_if_begin(EM, &one, CG_ICMP(EM, LLVMIntEQ, TK->tid, cg_i32(EM, 0)));
    for (int i = 0; i < 2; i++) cg_mbar_init(TK, k_bar(a, cg_i32(EM, i)), 1);
    cg_mbar_init_fence(TK);
    cg_if_end(EM, &one);
  }
  cg_gv q = {a->qs, P(a, P_QSS), a->q0, a->q_limit, a->qidx ? row_q : NULL, a};
  cg_copy_async(TK, &a->sq, &q);
  cg_if any;
  cg_if_begin(EM, &any, CG_ICMP(EM, LLVMIntSGT, a->nblk, cg_i32(EM, 0)));
  issue_k(a, cg_i32(EM, 0));
  cg_if_end(EM, &any);
  cg_copy_commit(TK);
  if (a->wg) {
    cg_if_begin(EM, &any, CG_ICMP(EM, LLVMIntSGT, a->nblk, cg_i32(EM, 0)));
    wg_loop(a);
    cg_if_end(EM, &any);
  } else {
    cg_for loop;
    LLVMValueRef j = cg_for_begin(EM, &loop, cg_i32(EM, 0), a->nblk);
    step(a, j);
    cg_for_end(EM, &loop);
  }
  cg_copy_wait(TK, 0);
  cg_sync(TK);
  if (a->wg) {  /* with an odd count, the turn past the end wrote the last entry */
    cg_if even;
    cg_if_begin(EM, &even, CG_ICMP(EM, LLVMIntEQ, CG_AND(EM, a->nblk, cg_i32(EM, 1)), cg_i32(EM, 0)));
    collect(a, a->nblk);
    cg_if_end(EM, &even);
  } else {
    collect(a, a->nblk);
  }
  LLVMBuildRetVoid(EM->b);
}

/* ------------------------------------------------------------ building */

static sieve_status prepare_exprs(srch *a, cg_err *e) {
  cg_pattern *p = a->spec->pattern;
  cg_ref mask, qidx, kidx;
  sieve_status st = cg_kernel_exprs(p, &a->sh, &mask, &qidx, &kidx, e);
  if (st) return st;
  cg_range r[CG_NVARS];
  int bk = block_keys(a->spec);
  cg_kernel_ranges(r, (a->seq + a->bm - 1) / a->bm * a->bm - 1, (a->seq + bk - 1) / bk * bk - 1, a->sh.heads, a->sh.text);
  int64_t v;
  const cg_node *nq = cg_node_at(p->g, qidx), *nk = cg_node_at(p->g, kidx);
  if (!(cg_is_const(p->g, mask, &v) && v) && !(a->mask = cg_lower_new(p->g, mask, r, e))) return e->status;
  if (!(nq->op == CG_VAR && nq->imm == CG_V_QPOS) && !(a->qidx = cg_lower_new(p->g, qidx, r, e))) return e->status;
  if (!(nk->op == CG_VAR && nk->imm == CG_V_KPOS) && !(a->kidx = cg_lower_new(p->g, kidx, r, e))) return e->status;
  return SIEVE_OK;
}

static void free_exprs(srch *a) {
  cg_lower_free(a->mask);
  cg_lower_free(a->qidx);
  cg_lower_free(a->kidx);
  a->mask = a->qidx = a->kidx = NULL;
}

static sieve_status mass_kernel(srch *a, int tma, cg_err *e) {
  static const char *names[NP_TMA] = {"q", "k", "lse", "q_sb", "q_sh", "q_ss", "k_sb", "k_sh", "k_ss",
                                      "tabs", "head_off", "mass", "step", "layer", "scale", "tlen", "tmap_k"};
  int n = tma ? NP_TMA : NP;
  LLVMTypeRef t[NP_TMA];
  for (int i = 0; i < NP; i++) t[i] = EM->t_i64;
  t[P_Q] = t[P_K] = t[P_LSE] = t[P_TABS] = t[P_HEAD_OFF] = t[P_MASS] = t[P_TLEN] = EM->t_gptr;
  t[P_STEP] = t[P_LAYER] = EM->t_i32;
  t[P_SCALE] = EM->t_f32;
  t[P_TMAP_K] = LLVMPointerTypeInContext(EM->ctx, 0);
  LLVMValueRef fn = cg_em_kernel(EM, tma ? CG_SEARCH_MASS_TMA : "sieve_search_mass", t, names, n, 32 * a->warps, 0);
  if (tma) cg_em_param_byval(EM, P_TMAP_K, CG_TMAP_BYTES, CG_TMAP_ALIGN);
  for (int i = 0; i < n; i++) a->prm[i] = LLVMGetParam(fn, (unsigned)i);
  a->tma = tma;
  sieve_status st = SIEVE_OK;
  if (cg_tk_init(TK, EM, a->spec->arch, a->spec->dtype, 32 * a->warps)) st = cg_fail(e, EM->err.status, "%s", EM->err.msg);
  if (!st) st = prepare_exprs(a, e);
  if (!st) kernel(a);
  cg_tk_dispose(TK);
  free_exprs(a);
  return st;
}

/* K comes in by TMA where its rows are the model's: a remapped layout
** gathers rows, which a tile copy cannot. */
int cg_search_mass_tma(const cg_search_spec *s) {
  if (s->arch != CG_SM90A) return 0;
  sieve_shape sh;
  cg_shape_for(s->pattern, &s->shape, &sh);
  cg_ref mask, qidx, kidx;
  cg_err e = {0};
  if (cg_kernel_exprs(s->pattern, &sh, &mask, &qidx, &kidx, &e)) return 0;
  const cg_node *nk = cg_node_at(s->pattern->g, kidx);
  return nk->op == CG_VAR && nk->imm == CG_V_KPOS;
}

sieve_status cg_search_build(const cg_search_spec *s, char **ptx, cg_err *e) {
  *ptx = NULL;
  sieve_status st = cg_search_check(s, e);
  if (st) return st;
  srch A = {0}, *a = &A;
  a->spec = s;
  cg_shape_for(s->pattern, &s->shape, &a->sh);
  a->d = a->sh.head_dim;
  a->bm = block_rows(s);
  a->warps = cg_search_mass_warps(s);
  a->wg = s->arch == CG_SM90A;
  a->rw = a->bm / a->warps;
  a->bn = step_keys(s);
  a->sub = block_keys(s) / a->bn;
  a->seq = sieve_shape_tokens(&a->sh);
  a->nq = (int)nblocks(s, a->bm);
  int nk = (int)nblocks(s, block_keys(s));
  a->q_limit = a->seq % a->bm ? a->seq : 0;
  a->k_limit = a->seq % block_keys(s) ? a->seq : 0;
  a->q_bytes = a->bm * a->d * 2;
  a->k_bytes = a->bn * a->d * 2;
  a->red_off = a->q_bytes + 2 * a->k_bytes;
  a->bar_off = a->red_off + 8 * a->warps;
  if ((st = cg_em_start(EM, "sieve_search", e))) return st;
  st = mass_kernel(a, 0, e);
  if (!st && cg_search_mass_tma(s)) st = mass_kernel(a, 1, e);
  if (!st) cg_search_seg_kernel(EM, &a->sh, a->bm, block_keys(s), a->nq, s->cap);
  if (!st) {
    int g[CG_SEARCH_MAX_LEVELS], ng = cg_search_groups(s, g);
    cg_search_select_kernel(EM, &a->sh, a->bm, block_keys(s), a->nq, nk, s->cap, g, ng, s->pattern->sel.text_sink);
    cg_tpack_kernels(EM, s->arch, a->nq, nk, cg_search_table_ints(s));
  }
  if (!st) st = cg_em_ptx(EM, s->arch, ptx, e);
  cg_em_dispose(EM);
  return st;
}
