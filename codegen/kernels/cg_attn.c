/*
** Block-sparse flash attention, forward, written in tile operations.
**
** A CTA owns block_m query positions of one (batch, head); warp w owns rows
** w * rw .. w * rw + rw of them. For every key block of the CTA's table row:
**
**   S  = Q K^T                 Q fragments stay in registers when they fit
**   S  = -inf where masked     partial blocks and the ragged last block only
**   m' = max(m, rowmax(S) * c)            c = scale * log2(e)
**   P  = 2^(S * c - m'),  l = l * 2^(m - m') + rowsum(P),  O = O * 2^(m - m')
**   O += P V                   P stays in registers as the A operand, or
**                              goes through shared memory where S, P
**                              and O outgrow a consumer's registers
**
** K and V arrive through a `stages`-deep cp.async pipeline, K and V of a
** block in separate groups, so S is computed while V is still landing.
** The end divides O by l and writes LSE = (m + log2 l) * ln 2; a row that
** saw no allowed key has l = 0 and writes O = 0, LSE = -inf. A segments
** kernel (cg_attn_spec.segs) also writes each step's row sums by 64 keys.
*/
#include "cg_attn_geom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_attn_bits.h"
#include "cg_lower.h"
#include "cg_simplify.h"
#include "cg_tile.h"
#include "cg_tile_ext.h"
#include "cg_tma.h"
#include "cg_wgmma.h"

#define LOG2E 1.4426950408889634
#define LN2 0.6931471805599453
#define MAX_SLACK 8.0      /* log2 units the running max may lag the true one */
#define WS_NFULL_AT 252    /* the last word of the mbarriers' area (WS_BAR_BYTES): the CTA's full key blocks (ws_keep_nfull) */

enum {
  P_Q, P_K, P_V, P_O, P_LSE,
  P_QSB, P_QSH, P_QSS, P_KSB, P_KSH, P_KSS, P_VSB, P_VSH, P_VSS, P_OSB, P_OSH, P_OSS,
  P_TABS, P_HEAD_OFF, P_STEP, P_LAYER, P_SCALE, P_TLEN, NPARAMS,
  P_TMQ = NPARAMS, P_TMK, P_TMV, NPARAMS_TMA,
  P_SCHED = NPARAMS_TMA, P_NTILES, P_NITEMS, P_CTR, NPARAMS_SCHED,  /* cg_attn_sched.h */
  P_SEGS = NPARAMS_SCHED, NPARAMS_SEGS  /* spec->segs: after every other, used or not */
};

static const char *const param_names[NPARAMS_SEGS] = {
  "q", "k", "v", "o", "lse", "q_sb", "q_sh", "q_ss", "k_sb", "k_sh", "k_ss",
  "v_sb", "v_sh", "v_ss", "o_sb", "o_sh", "o_ss", "tabs", "head_off", "step", "layer", "scale", "tlen",
  "tmap_q", "tmap_k", "tmap_v", "sched", "ntiles", "nitems", "ctr", "segs",
};

#define MAX_ARMS 8

/*
** A per-kernel expression (mask, qidx, kidx) split by head class: the
** kernel branches once on the (uniform) class condition and computes one
** arm, not every class's and a select. cond[i] is NULL for the last arm.
*/
typedef struct choice {
  int n;
  cg_lower *cond[MAX_ARMS], *arm[MAX_ARMS];
} choice;

typedef struct attn {
  const cg_attn_spec *spec;
  sieve_shape sh;
  int d, bm, bn, warps, stages, rw, q_regs;
  int wg;                      /* sm_90a with 16 rows a warp: both products by wgmma */
  int ws;                      /* warp-specialised: a TMA producer warpgroup, wgmma consumers */
  int nwg;                     /* ws: consumer warpgroups, 1, 2 or 3 */
  int under_s;                 /* ws: O's rescale under S's product, not after P V's wait (cg_attn_rescale_under_s) */
  int p_smem;                  /* ws: P reaches O += P V through shared memory (ws_p_shared), not registers */
  LLVMValueRef bars;           /* ws: shared offset of the mbarriers */
  LLVMValueRef wgi;            /* ws: the consumer warpgroup, 0 .. nwg - 1 */
  int sched;                   /* ws: CG_SCHED_*; persistent past CG_SCHED_GRID */
  int segs;                    /* ws: each step's row sums by 64 keys to P_SEGS (cg_attn.h) */
  LLVMValueRef step_kb;        /* ws: the kernel key block of the step being run */
  LLVMValueRef seg_part[32];   /* ... and this thread's parts of its row sums by 64 keys */
  LLVMValueRef item;           /* persistent producer: the work item to read a tile's row for */
  LLVMValueRef rec;            /* persistent: shared offset of the tile's record (ws_rec_*) */
  int64_t seq;
  int nq, sub;                 /* table query blocks; kernel key blocks per table block */
  int64_t q_limit, k_limit;    /* cg_gv limits: 0 when no position can pass seq */
  cg_em em;
  cg_tk tk;
  choice mask, qidx, kidx;     /* arm NULL: mask true everywhere, layout the identity */
  cg_lower *qarm, *karm;       /* the idx arm being emitted */
  LLVMValueRef prm[NPARAMS_SEGS];
  LLVMValueRef head, batch, q0, c, row0;
  LLVMValueRef qblk, hoff;     /* the query block, and the offset of the head's table */
  LLVMValueRef tlen;            /* valid text tokens of the batch element */
  LLVMValueRef qb, kb, vb, ob;  /* the (batch, head) slices */
  LLVMValueRef tab, start, nblk, nfull;
  int nfull_smem;              /* ws: nfull is read from shared memory (nfull()) */
  int lean;                    /* a pattern's mask on a wide config: register-lean masking */
  cg_reg kbq[4];               /* kbq[i]: key block of iteration j + i, loaded ahead */
  cg_reg mwords[8];            /* the block's mask bits */
  int ahead;                   /* ws bitmask kernel: table reads a step ahead (cg_attn_bits_ahead) */
  cg_reg akb, abidx;           /* ... key block and bitmask offset of the step after next */
  cg_reg ckb, cbidx, aw[8];    /* ... and of the next step, with its bitmask words */
  LLVMValueRef mneed;          /* the block needs masking (NULL: no block does) */
  int masked;                  /* some class's mask is not true everywhere */
  int bits;                    /* partial blocks may read bitmasks: entries of two int32s */
  int pred;                    /* some class still evaluates its predicate */
  cg_mask_mode mmode;          /* how mask bits are laid out (see smem_pad) */
  int q_bytes, kv_bytes, pad;
  cg_st sq;
  cg_ra qa, pa;
  cg_rt o, s;
  cg_rv m, l, mx, base, alpha;
  cg_reg grow;                 /* ws: some row's max moved; O waits to be rescaled */
  LLVMValueRef *hmine, *hu;    /* mask_rows: the mask's row part of the lane's row, and its uniform part */
  LLVMValueRef hwords[8];      /* ... its booleans that the rest of the mask reads, packed */
  uint8_t *hfront;             /* ... the nodes the rest of the mask reads */
  uint8_t *hredo;              /* ... the nodes each copy computes again per row */
  int *hbit;                   /* ... a boolean's bit in hwords */
} attn;

typedef LLVMValueRef (*sreg_fn)(cg_em *, cg_sreg);

#define EM (&a->em)
#define TK (&a->tk)

/* ------------------------------------------------------------ pieces */

static LLVMValueRef param(attn *a, int i) { return a->prm[i]; }

/*
** A persistent tile's record: what the producer read for it (its work item
** decoded, its table row) and the consumers take from shared memory
** instead of reading it again (ws_publish). A batch below 0 is the stop.
** The tile being run has its first REC_RUN words at WS_TILE_AT too, the
** last of them (nfull) at WS_NFULL_AT (ws_run_words).
*/
enum { REC_BATCH, REC_HEAD, REC_QBLK, REC_HOFF, REC_START, REC_NFULL, REC_RUN, REC_NBLK = REC_RUN, REC_TLEN, REC_WORDS };
#define WS_TILE_AT (WS_NFULL_AT - 4 * REC_NFULL)

/* Volatile: a read stays where it is put, before the record's slot is freed. */
static LLVMValueRef rec_word(attn *a, int w) {
  LLVMValueRef v = cg_load(EM, EM->t_i32, cg_smem_at(EM, CG_ADD(EM, a->rec, cg_i32(EM, 4 * w))));
  LLVMSetVolatile(v, 1);
  return v;
}

/* The first n words of the tile's record, from its values, at shared offset at. */
static void rec_put(attn *a, LLVMValueRef at, int n) {
  LLVMValueRef w[REC_WORDS] = {a->batch, a->head, a->qblk, a->hoff, a->start, a->nfull, a->nblk, a->tlen};
  for (int i = 0; i < n; i++) cg_store(EM, w[i], cg_smem_at(EM, CG_ADD(EM, at, cg_i32(EM, 4 * i))));
}

static LLVMValueRef lower_at(attn *a, cg_lower *l, LLVMValueRef qpos, LLVMValueRef kpos) {
  return cg_lower_at(l, EM, qpos, kpos, a->head, param(a, P_STEP), param(a, P_LAYER), a->tlen);
}

static LLVMValueRef row_q(void *ctx, LLVMValueRef pos) { attn *a = ctx; return lower_at(a, a->qarm, pos, NULL); }
static LLVMValueRef row_k(void *ctx, LLVMValueRef pos) { attn *a = ctx; return lower_at(a, a->karm, NULL, pos); }

/* A global view of rows from pos0 on; rows go through the current idx arm. */
static cg_gv view(attn *a, LLVMValueRef base, int p_ss, LLVMValueRef pos0, int keys) {
  cg_gv g = {base, param(a, p_ss), pos0, keys ? a->k_limit : a->q_limit, NULL, a};
  if (keys ? a->karm != NULL : a->qarm != NULL) g.row_of = keys ? row_k : row_q;
  return g;
}

/* Emits fn once per arm of c, in an if / else-if chain on the arms' conditions. */
typedef void (*arm_fn)(attn *a, cg_lower *arm, void *ctx);

static void each_arm(attn *a, const choice *c, arm_fn fn, void *ctx) {
  cg_if ifs[MAX_ARMS];
  int open = 0;
  for (int i = 0; i < c->n; i++) {
    if (c->cond[i]) cg_if_begin(EM, &ifs[open++], lower_at(a, c->cond[i], NULL, NULL));
    fn(a, c->arm[i], ctx);
    if (c->cond[i]) cg_if_else(EM, &ifs[open - 1]);
  }
  while (open) cg_if_end(EM, &ifs[--open]);
}

/* Element offset of slice (batch, head) of tensor t with strides at p_sb, p_sb + 1. */
static LLVMValueRef slice(attn *a, int p_t, int p_sb) {
  LLVMValueRef off = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, a->batch), param(a, p_sb)),
                            CG_MUL(EM, CG_ZEXT64(EM, a->head), param(a, p_sb + 1)));
  return cg_gep(EM, EM->t_i16, param(a, p_t), off);
}

static LLVMValueRef tab_at(attn *a, LLVMValueRef i) {
  return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, a->tab, i));
}

/* The kernel key block of iteration j (sub-block j % sub of table entry
** j / sub); 0 past the row's end, where the table may end too. */
static LLVMValueRef key_block(attn *a, LLVMValueRef j) {
  cg_reg kb = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  cg_if c;
  cg_if_begin(EM, &c, CG_ICMP(EM, LLVMIntSLT, j, a->nblk));
  LLVMValueRef ent = CG_ADD(EM, a->start, CG_UDIV(EM, j, cg_i32(EM, a->sub)));
  LLVMValueRef t = tab_at(a, CG_ADD(EM, a->bits ? CG_MUL(EM, ent, cg_i32(EM, 2)) : ent, cg_i32(EM, 2 * a->nq + 1)));
  cg_rset(EM, kb, CG_ADD(EM, CG_MUL(EM, t, cg_i32(EM, a->sub)), CG_UREM(EM, j, cg_i32(EM, a->sub))));
  cg_if_end(EM, &c);
  return cg_rget(EM, kb);
}

static LLVMValueRef stage_off(attn *a, LLVMValueRef j) {
  LLVMValueRef st = CG_UREM(EM, j, cg_i32(EM, a->stages));
  return CG_ADD(EM, cg_i32(EM, a->q_bytes), CG_MUL(EM, st, cg_i32(EM, 2 * a->kv_bytes)));
}

static cg_st kv_tile(attn *a, LLVMValueRef j, int v) {
  cg_st t = {CG_ADD(EM, stage_off(a, j), cg_i32(EM, v * a->kv_bytes)), a->bn, a->d, a->pad, a->wg};
  return t;
}

typedef struct kv_at {
  LLVMValueRef j, pos0;
} kv_at;

static void copy_kv(attn *a, cg_lower *arm, void *ctx) {
  kv_at *at = ctx;
  a->karm = arm;
  for (int v = 0; v < 2; v++) {
    cg_st dst = kv_tile(a, at->j, v);
    cg_gv src = view(a, v ? a->vb : a->kb, v ? P_VSS : P_KSS, at->pos0, 1);
    cg_copy_async(TK, &dst, &src);
    cg_copy_commit(TK);
  }
}

/* K and V of iteration j (key block kb) into its stage, as two copy groups
** (empty past the end). K and V share a branch, so the row indices of a
** remapped layout are computed once for both. */
static void issue_kv(attn *a, LLVMValueRef j, LLVMValueRef kb) {
  cg_if c;
  cg_if_begin(EM, &c, CG_ICMP(EM, LLVMIntSLT, j, a->nblk));
  kv_at at = {j, CG_MUL(EM, kb, cg_i32(EM, a->bn))};
  each_arm(a, &a->kidx, copy_kv, &at);
  cg_if_else(EM, &c);
  cg_copy_commit(TK);
  cg_copy_commit(TK);
  cg_if_end(EM, &c);
}

/* ------------------------------------------------------------- masking */

typedef struct mctx {
  attn *a;
  LLVMValueRef q0, k0;     /* positions of the warp's first row and the block's first key */
  LLVMValueRef partial;    /* the block is partial: the mask applies (NULL: never) */
  cg_lower *arm;           /* the head class's mask (NULL: true) */
  LLVMValueRef *qmemo[16], *kmemo[192];  /* the mask's per-row and per-column parts */
  LLVMValueRef kin[192];   /* per column: the key exists */
  LLVMValueRef *umemo;     /* the mask's part that reads uniform vars only */
} mctx;


static LLVMValueRef keep(void *ctx, int ri, LLVMValueRef row, int ci, LLVMValueRef col) {
  mctx *m = ctx;
  attn *a = m->a;
  const uint32_t uni = CG_UNIFORM_VARS;
  LLVMValueRef vars[CG_NVARS] = {0}, r = NULL;
  cg_vars_uniform(vars, a->head, param(a, P_STEP), param(a, P_LAYER), a->tlen);
  vars[CG_V_QPOS] = CG_ADD(EM, m->q0, row);
  vars[CG_V_KPOS] = CG_ADD(EM, m->k0, col);
  if (m->partial && m->arm) {
    size_t n = sizeof(LLVMValueRef) * (size_t)cg_lower_size(m->arm);
    if (!m->qmemo[ri]) {
      cg_lower_part(m->arm, EM, vars, uni | 1u << CG_V_QPOS, m->umemo, m->qmemo[ri] = cg_alloc(TK->arena, n));
      if (!m->umemo) cg_lower_only(m->arm, uni, m->qmemo[ri], m->umemo = cg_alloc(TK->arena, n));
    }
    if (!m->kmemo[ci]) cg_lower_part(m->arm, EM, vars, uni | 1u << CG_V_KPOS, m->umemo, m->kmemo[ci] = cg_alloc(TK->arena, n));
    r = CG_OR(EM, CG_XOR(EM, m->partial, cg_true(EM)), cg_lower_join(m->arm, EM, vars, m->qmemo[ri], m->kmemo[ci]));
  }
  if (a->k_limit) {
    if (!m->kin[ci]) m->kin[ci] = CG_ICMP(EM, LLVMIntSLT, vars[CG_V_KPOS], cg_i32(EM, a->seq));
    r = r ? CG_AND(EM, r, m->kin[ci]) : m->kin[ci];
  }
  return r;
}

/* v (i32 or i64) of lane src. */
static LLVMValueRef shfl_any(attn *a, LLVMValueRef v, LLVMValueRef src) {
  if (LLVMTypeOf(v) == EM->t_i32) return cg_shfl_idx_i32(EM, v, src);
  LLVMValueRef lo = cg_shfl_idx_i32(EM, LLVMBuildTrunc(EM->b, v, EM->t_i32, ""), src);
  LLVMValueRef hi = cg_shfl_idx_i32(EM, LLVMBuildTrunc(EM->b, CG_LSHR(EM, v, cg_i64(EM, 32)), EM->t_i32, ""), src);
  return LLVMBuildOr(EM->b, CG_SHL(EM, LLVMBuildZExt(EM->b, hi, EM->t_i64, ""), cg_i64(EM, 32)),
                     LLVMBuildZExt(EM->b, lo, EM->t_i64, ""), "");
}

/*
** The mask's row part (the nodes that read only the query position and
** the uniform vars) is the same for every key block, and for lvsa it is
** most of the mask (the window of a query's frame). It is computed here,
** before the key loop, once: lane l takes row l % rw of its warp. The
** values the rest of the mask reads from it stay live through the loop,
** booleans packed into words; each copy of the mask code (the
** warp-specialised kernel peels the first key block) fetches them for the
** rows its thread owns by shuffles, instead of evaluating the row part
** again for each. Values a few operations compute (a text test) are not
** worth a register through the loop: each copy computes them again, per
** row. Masks split by head class keep the row part in their class's branch.
*/
#define ROW_CHEAP 4

static void mask_rows(attn *a) {
  const uint32_t uni = CG_UNIFORM_VARS, rowv = uni | 1u << CG_V_QPOS;
  cg_lower *arm = a->mask.n == 1 ? a->mask.arm[0] : NULL;
  a->hu = NULL;
  if (!arm || !a->pred) return;
  int n = cg_lower_size(arm), nb = 0;
  size_t bytes = sizeof(LLVMValueRef) * (size_t)n;
  LLVMValueRef vars[CG_NVARS] = {0}, *mine = cg_alloc(TK->arena, bytes), *hu = cg_alloc(TK->arena, bytes);
  uint8_t *front = cg_alloc(TK->arena, (size_t)n), *redo = cg_alloc(TK->arena, (size_t)n);
  uint8_t *cone = cg_alloc(TK->arena, (size_t)n);
  int *bit = cg_alloc(TK->arena, sizeof(int) * (size_t)n);
  if (!mine || !hu || !front || !redo || !cone || !bit) return;
  cg_vars_uniform(vars, a->head, param(a, P_STEP), param(a, P_LAYER), a->tlen);
  vars[CG_V_QPOS] = CG_ADD(EM, a->row0, CG_AND(EM, TK->lane, cg_i32(EM, a->rw - 1)));
  cg_lower_part(arm, EM, vars, rowv, NULL, mine);
  cg_lower_only(arm, uni, mine, hu);
  cg_lower_frontier(arm, rowv, front);
  LLVMValueRef words[8] = {0};
  for (int k = 0; k < n; k++) {
    front[k] = front[k] && mine[k] && !hu[k] && !LLVMIsConstant(mine[k]);
    if (!front[k] || a->mmode == CG_MASK_WARP) continue;
    memset(cone, 0, (size_t)n);
    if (cg_lower_cone(arm, k, rowv, 1u << CG_V_QPOS, ROW_CHEAP, cone) >= 0) {
      front[k] = 0;
      for (int i = 0; i < n; i++) redo[i] |= cone[i];
      continue;
    }
    if (LLVMTypeOf(mine[k]) != EM->t_i1) continue;
    if (nb == 32 * 8) return;  /* past 256 booleans: the row part stays in the loop */
    bit[k] = nb++;
    LLVMValueRef b = CG_SHL(EM, LLVMBuildZExt(EM->b, mine[k], EM->t_i32, ""), cg_i32(EM, bit[k] % 32));
    words[bit[k] / 32] = words[bit[k] / 32] ? CG_OR(EM, words[bit[k] / 32], b) : b;
  }
  memcpy(a->hwords, words, sizeof words);
  a->hmine = mine;
  a->hfront = front;
  a->hredo = redo;
  a->hbit = bit;
  a->hu = hu;
}

/* The row memo of each row the thread owns, from mask_rows' values and
** the cheap nodes computed again for the row. */
static void mask_rows_fetch(attn *a, mctx *m) {
  cg_lower *arm = a->mask.arm[0];
  int n = cg_lower_size(arm);
  size_t bytes = sizeof(LLVMValueRef) * (size_t)n;
  LLVMValueRef vars[CG_NVARS] = {0};
  cg_vars_uniform(vars, a->head, param(a, P_STEP), param(a, P_LAYER), a->tlen);
  m->umemo = a->hu;
  if (a->mmode == CG_MASK_WARP) {  /* lane l owns row l % rw already */
    m->qmemo[0] = a->hmine;
    return;
  }
  for (int ri = 0; ri < a->rw / 8; ri++) {
    LLVMValueRef *q = m->qmemo[ri] = cg_alloc(TK->arena, bytes), src = cg_frag_row(TK, ri), words[8];
    for (int w = 0; w < 8; w++) words[w] = a->hwords[w] ? cg_shfl_idx_i32(EM, a->hwords[w], src) : NULL;
    for (int k = 0; k < n; k++) {
      LLVMValueRef v = a->hredo[k] ? NULL : a->hmine[k];
      if (a->hfront[k] && LLVMTypeOf(v) == EM->t_i1)
        v = CG_ICMP(EM, LLVMIntNE, CG_AND(EM, words[a->hbit[k] / 32], cg_i32(EM, 1u << a->hbit[k] % 32)), cg_i32(EM, 0));
      else if (a->hfront[k])
        v = shfl_any(a, v, src);
      q[k] = v;
    }
    vars[CG_V_QPOS] = CG_ADD(EM, a->row0, src);
    cg_lower_part(arm, EM, vars, CG_UNIFORM_VARS | 1u << CG_V_QPOS, q, q);
  }
}

/*
** Partial blocks get the compiled mask; a block reaching past the sequence
** gets the bounds test; full blocks inside it get nothing. The predicate is
** evaluated into bits before S = Q K^T is live (its temporaries would crowd
** the accumulators) and applied after.
*/
static void mask_arm(attn *a, cg_lower *arm, void *ctx) {
  mctx *m = ctx;
  m->arm = arm;
  m->umemo = NULL;
  memset(m->qmemo, 0, sizeof m->qmemo);
  memset(m->kmemo, 0, sizeof m->kmemo);
  memset(m->kin, 0, sizeof m->kin);
  if (a->hu && arm == a->mask.arm[0]) mask_rows_fetch(a, m);
  cg_mask_bits(TK, a->rw, a->bn, a->mmode, keep, m, a->mwords);
}

/* ------------------------------------------------------------ bitmasks */

static cg_bits_geom bits_geom(const attn *a) {
  cg_bits_geom g = {&a->sh, block_q(a->spec), block_k(a->spec), a->bm, a->bn, a->rw, a->seq};
  return g;
}

/*
** A block's bits in the warp layout (cg_mask_bits' CG_MASK_WARP: lane l
** holds row l % rw, word w columns 32 w ..): its bitmask's words where it
** has one (bidx >= 0), else all ones, then cleared where the query row or
** the key is text padding or past the sequence (cg_attn_bits.h).
*/
static void bits_words(attn *a, LLVMValueRef j, LLVMValueRef k0, LLVMValueRef bidx) {
  cg_bits_geom g = bits_geom(a);
  int nw = a->bn / 32;
  LLVMValueRef lr = cg_bits_lane_row(EM, &g, TK->lane);
  if (a->ahead) {
    for (int w = 0; w < nw; w++) cg_rset(EM, a->mwords[w], cg_rget(EM, a->aw[w]));
  } else {
    cg_if has;
    cg_if_begin(EM, &has, CG_ICMP(EM, LLVMIntSGE, bidx, cg_i32(EM, 0)));
    LLVMValueRef at = cg_bits_word_at(EM, &g, bidx, a->row0, lr, j);
    for (int w = 0; w < nw; w++) cg_rset(EM, a->mwords[w], tab_at(a, CG_ADD(EM, at, cg_i32(EM, w))));
    cg_if_else(EM, &has);
    for (int w = 0; w < nw; w++) cg_rset(EM, a->mwords[w], cg_i32(EM, -1));
    cg_if_end(EM, &has);
  }
  if (!a->sh.text && !a->k_limit) return;
  /* The clearing words only change blocks that reach the text (its padding
  ** moves at run time, inside the text's span) or the sequence's end; built
  ** for every partial block they were ~120 instructions each (a frame
  ** window's steps at cogvideox-1.5: 8.6% partial, 2% of its time). The
  ** persistent kernels keep them unconditional: at 16 warps the branch
  ** spilled 8 bytes of their 128 registers. */
  LLVMValueRef tk = cg_text_overlap(EM, &a->sh, k0, a->bn), tq = cg_text_overlap(EM, &a->sh, a->q0, a->bm);
  LLVMValueRef edge = tk ? CG_OR(EM, tk, tq) : NULL;
  if (g.seq % g.bk) {  /* cg_bits_clear's ragged end */
    LLVMValueRef past = CG_ICMP(EM, LLVMIntSGT, CG_ADD(EM, k0, cg_i32(EM, a->bn)), cg_i32(EM, g.seq));
    edge = edge ? CG_OR(EM, edge, past) : past;
  }
  if (!edge) return;
  if (a->sched) edge = cg_true(EM);
  cg_if c;
  cg_if_begin(EM, &c, edge);
  LLVMValueRef qpos = CG_ADD(EM, a->row0, lr);
  for (int w = 0; w < nw; w++)
    cg_rset(EM, a->mwords[w], cg_bits_clear(EM, &g, cg_rget(EM, a->mwords[w]), w, qpos, k0, a->tlen));
  cg_if_end(EM, &c);
}

/* The row's full blocks: a register, or a shared word a step reads again
** (the warp-specialised kernel: ws_keep_nfull). */
static LLVMValueRef nfull(attn *a) {
  if (!a->nfull_smem) return a->nfull;
  return cg_load(EM, EM->t_i32, cg_smem_at(EM, CG_ADD(EM, a->bars, cg_i32(EM, WS_NFULL_AT))));
}

/*
** A bitmask kernel's blocks: partial ones with a bitmask take its bits,
** partial ones of a class that kept its predicate evaluate it, and full
** ones that reach text padding or past the sequence take the range tests
** alone (a full block is true on every pair of the whole text).
*/
static void mask_prepare_bits(attn *a, LLVMValueRef j, LLVMValueRef kb) {
  cg_bits_geom g = bits_geom(a);
  LLVMValueRef k0 = CG_MUL(EM, kb, cg_i32(EM, a->bn));
  LLVMValueRef jt = CG_UDIV(EM, j, cg_i32(EM, a->sub));
  LLVMValueRef partial = CG_ICMP(EM, LLVMIntSGE, jt, nfull(a));
  a->mneed = cg_bits_need(EM, &g, partial, a->q0, k0);
  cg_if c;
  cg_if_begin(EM, &c, a->mneed);
  cg_reg bidx = cg_reg_new(EM, EM->t_i32, cg_i32(EM, -1));
  if (a->ahead) {
    cg_rset(EM, bidx, cg_rget(EM, a->cbidx));
  } else {
    cg_if p;
    cg_if_begin(EM, &p, partial);
    LLVMValueRef ent = CG_ADD(EM, a->start, jt);
    cg_rset(EM, bidx, tab_at(a, CG_ADD(EM, CG_MUL(EM, ent, cg_i32(EM, 2)), cg_i32(EM, 2 * a->nq + 2))));
    cg_if_end(EM, &p);
  }
  LLVMValueRef b = cg_rget(EM, bidx);
  if (a->pred) {
    mctx m = {a, a->row0, k0, cg_true(EM), NULL, {0}, {0}, {0}, NULL};
    cg_if pr;
    cg_if_begin(EM, &pr, CG_AND(EM, partial, CG_ICMP(EM, LLVMIntSLT, b, cg_i32(EM, 0))));
    each_arm(a, &a->mask, mask_arm, &m);
    cg_if_else(EM, &pr);
    bits_words(a, j, k0, b);
    cg_if_end(EM, &pr);
  } else {
    bits_words(a, j, k0, b);
  }
  cg_if_end(EM, &c);
}

/*
** The warp-specialised kernel's bitmask reads, ahead of their use: a
** step's table entry (key block, bitmask offset) two steps ahead, its
** bitmask words (which need the offset) one step ahead, each issued just
** after the products, so no consumer waits on a global load between the
** K barrier and its next product. At 64-key steps the dependent loads
** (entry, then words) took longer than the other warpgroup's products.
*/
static void ahead_entry(attn *a, LLVMValueRef j) {
  cg_rset(EM, a->akb, key_block(a, j));
  cg_rset(EM, a->abidx, cg_i32(EM, -1));
  LLVMValueRef jt = CG_UDIV(EM, j, cg_i32(EM, a->sub));
  cg_if p;
  cg_if_begin(EM, &p, CG_AND(EM, CG_ICMP(EM, LLVMIntSLT, j, a->nblk), CG_ICMP(EM, LLVMIntSGE, jt, a->nfull)));
  LLVMValueRef ent = CG_ADD(EM, a->start, jt);
  cg_rset(EM, a->abidx, tab_at(a, CG_ADD(EM, CG_MUL(EM, ent, cg_i32(EM, 2)), cg_i32(EM, 2 * a->nq + 2))));
  cg_if_end(EM, &p);
}

/* Step j's words from the entry read a step before; the entry of j + 1. */
static void ahead_next(attn *a, LLVMValueRef j) {
  if (!a->ahead) return;
  cg_bits_geom g = bits_geom(a);
  LLVMValueRef kb = cg_rget(EM, a->akb), b = cg_rget(EM, a->abidx);
  int nw = a->bn / 32;
  for (int w = 0; w < nw; w++) cg_rset(EM, a->aw[w], cg_i32(EM, -1));
  cg_if has;
  cg_if_begin(EM, &has, CG_ICMP(EM, LLVMIntSGE, b, cg_i32(EM, 0)));
  LLVMValueRef at = cg_bits_word_at(EM, &g, b, a->row0, cg_bits_lane_row(EM, &g, TK->lane), j);
  for (int w = 0; w < nw; w++) cg_rset(EM, a->aw[w], tab_at(a, CG_ADD(EM, at, cg_i32(EM, w))));
  cg_if_end(EM, &has);
  cg_rset(EM, a->ckb, kb);
  cg_rset(EM, a->cbidx, b);
  ahead_entry(a, CG_ADD(EM, j, cg_i32(EM, 1)));
}

static void ahead_start(attn *a) {
  if (!a->ahead) return;
  a->akb = cg_reg_new(EM, EM->t_i32, NULL);
  a->abidx = cg_reg_new(EM, EM->t_i32, NULL);
  a->ckb = cg_reg_new(EM, EM->t_i32, NULL);
  a->cbidx = cg_reg_new(EM, EM->t_i32, NULL);
  for (int w = 0; w < a->bn / 32; w++) a->aw[w] = cg_reg_new(EM, EM->t_i32, NULL);
  ahead_entry(a, cg_i32(EM, 0));
  ahead_next(a, cg_i32(EM, 0));
}

static void mask_prepare(attn *a, LLVMValueRef j, LLVMValueRef kb) {
  if (a->bits) {
    mask_prepare_bits(a, j, kb);
    return;
  }
  a->mneed = NULL;
  if (!a->masked && !a->k_limit) return;
  LLVMValueRef k0 = CG_MUL(EM, kb, cg_i32(EM, a->bn));
  mctx m = {a, a->row0, k0, NULL, NULL, {0}, {0}, {0}, NULL};
  if (a->masked) {
    m.partial = CG_ICMP(EM, LLVMIntSGE, CG_UDIV(EM, j, cg_i32(EM, a->sub)), nfull(a));
    /* A persistent kernel has the query block's text test in nfull (setup). */
    LLVMValueRef tk = cg_text_overlap(EM, &a->sh, k0, a->bn);
    LLVMValueRef tq = a->sched ? NULL : cg_text_overlap(EM, &a->sh, a->q0, a->bm);
    if (tk) m.partial = CG_OR(EM, m.partial, tq ? CG_OR(EM, tk, tq) : tk);
    a->mneed = m.partial;
  }
  if (a->k_limit) {
    LLVMValueRef past = CG_ICMP(EM, LLVMIntSGT, CG_ADD(EM, k0, cg_i32(EM, a->bn)), cg_i32(EM, a->seq));
    a->mneed = a->mneed ? CG_OR(EM, a->mneed, past) : past;
  }
  cg_if c;
  cg_if_begin(EM, &c, a->mneed);
  each_arm(a, &a->mask, mask_arm, &m);
  cg_if_end(EM, &c);
}

static void mask_apply(attn *a) {
  if (!a->mneed) return;
  cg_if c;
  cg_if_begin(EM, &c, a->mneed);
  cg_rt_mask_apply(TK, &a->s, a->mmode, a->mwords, cg_fneg_inf(EM));
  cg_if_end(EM, &c);
}

/* ------------------------------------------------------------- softmax */

static LLVMValueRef finite_base(attn *a, LLVMValueRef m) {
  return CG_SEL(EM, CG_FCMP(EM, LLVMRealOEQ, m, cg_fneg_inf(EM)), cg_f32(EM, 0), m);
}

/*
** The step's segments (cg_attn_spec.segs): for each owned row and group
** of 64 keys, base + log2 of the group's P sum, which is the log2 of its
** sum of 2^(S c). The row sums give this thread's parts while S is live;
** seg_store, once S is P (the wide configs have no room beside S and O
** for more than the parts), sums them over the quad spread over its lanes,
** so each lane has a share of the logarithms and stores. Rows past the
** sequence and groups wholly past it have no slot.
*/
static int seg_count(const attn *a) {
  int n = a->rw / 8 * (a->bn / 64), np = 1;
  while (np < n) np *= 2;
  return np;
}

static void seg_store(attn *a) {
  if (!a->segs) return;
  int ng = a->bn / 64, n = a->rw / 8 * ng, np = seg_count(a);
  for (int i = n; i < np; i++) a->seg_part[i] = cg_f32(EM, 0);
  int k = cg_quad_spread_sum(TK, a->seg_part, np);
  int64_t nseg = (a->seq + 63) / 64;
  LLVMValueRef own, idx0 = cg_quad_spread_at(TK, np, &own);
  /* The tile's coordinates are read again (special registers, or the
  ** persistent tile's record): values kept through the loop would cost
  ** registers the wide configs do not have. */
  LLVMValueRef batch, head, qblk;
  if (a->sched) {
    batch = rec_word(a, REC_BATCH);
    head = rec_word(a, REC_HEAD);
    qblk = rec_word(a, REC_QBLK);
  } else {
    batch = cg_sreg_fresh(EM, CG_CTAID_Z);
    head = cg_sreg_fresh(EM, CG_CTAID_Y);
    qblk = cg_sreg_fresh(EM, CG_CTAID_X);
  }
  LLVMValueRef tid = CG_SUB(EM, cg_sreg_fresh(EM, CG_TID_X), cg_i32(EM, TK->tid0));
  LLVMValueRef row0 = CG_ADD(EM, CG_MUL(EM, qblk, cg_i32(EM, a->bm)), CG_MUL(EM, CG_LSHR(EM, tid, cg_i32(EM, 5)), cg_i32(EM, a->rw)));
  LLVMValueRef fr = CG_LSHR(EM, CG_AND(EM, tid, cg_i32(EM, 31)), cg_i32(EM, 2));
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, CG_ZEXT64(EM, batch), cg_i64(EM, a->sh.heads)), CG_ZEXT64(EM, head));
  LLVMValueRef g0 = CG_MUL(EM, a->step_kb, cg_i32(EM, ng));
  for (int i = 0; i < k; i++) {
    LLVMValueRef idx = CG_ADD(EM, idx0, cg_i32(EM, i)), ri = CG_UDIV(EM, idx, cg_i32(EM, ng));
    LLVMValueRef rin = CG_ADD(EM, CG_MUL(EM, CG_LSHR(EM, ri, cg_i32(EM, 1)), cg_i32(EM, 16)),
                              CG_MUL(EM, CG_AND(EM, ri, cg_i32(EM, 1)), cg_i32(EM, 8)));
    LLVMValueRef base = cg_rv_get(TK, &a->base, 0);
    for (int r = 1; r < a->rw / 8; r++)
      base = CG_SEL(EM, CG_ICMP(EM, LLVMIntEQ, ri, cg_i32(EM, r)), cg_rv_get(TK, &a->base, r), base);
    LLVMValueRef row = CG_ADD(EM, row0, CG_ADD(EM, fr, rin));
    LLVMValueRef g = CG_ADD(EM, g0, CG_UREM(EM, idx, cg_i32(EM, ng)));
    LLVMValueRef ok = CG_AND(EM, own, CG_ICMP(EM, LLVMIntULT, idx, cg_i32(EM, n)));
    ok = CG_AND(EM, ok, CG_ICMP(EM, LLVMIntSLT, row, cg_i32(EM, (int)a->seq)));
    ok = CG_AND(EM, ok, CG_ICMP(EM, LLVMIntSLT, g, cg_i32(EM, (int)nseg)));
    /* Within a head in 32 bits (cg_attn_check). */
    LLVMValueRef in = CG_ADD(EM, CG_MUL(EM, g, cg_i32(EM, (int32_t)a->seq)), row);
    LLVMValueRef at = CG_ADD(EM, CG_MUL(EM, bh, cg_i64(EM, nseg * a->seq)), CG_ZEXT64(EM, in));
    cg_store_f32_if(EM, CG_FADD(EM, base, cg_lg2(EM, a->seg_part[i])), cg_gep(EM, EM->t_f32, param(a, P_SEGS), at), ok);
  }
}

/*
** The running max m only moves when some row of the warp has grown past it
** by more than MAX_SLACK: until then P = 2^(S c - m) stays below 2^MAX_SLACK
** and O, l need no rescaling, which saves a multiply per O element on most
** blocks. Rows that have seen only -inf use base 0, so 2^(x - base) is 0 and
** never (-inf) - (-inf).
*/
static void online_softmax(attn *a, int defer) {
  int rows = a->rw / 8;
  cg_row_max(TK, &a->mx, &a->s);
  LLVMValueRef grow = LLVMConstInt(EM->t_i1, 0, 0);
  for (int i = 0; i < rows; i++) {
    LLVMValueRef mo = cg_rv_get(TK, &a->m, i);
    LLVMValueRef mn = cg_fmax(EM, mo, CG_FMUL(EM, cg_rv_get(TK, &a->mx, i), a->c));
    cg_rv_set(TK, &a->mx, i, mn);
    grow = CG_OR(EM, grow, CG_FCMP(EM, LLVMRealOGT, mn, CG_FADD(EM, mo, cg_f32(EM, MAX_SLACK))));
  }
  LLVMValueRef any = cg_vote_any(EM, grow);
  cg_if rescale;
  cg_if_begin(EM, &rescale, any);
  for (int i = 0; i < rows; i++) {
    LLVMValueRef mo = cg_rv_get(TK, &a->m, i), mn = cg_rv_get(TK, &a->mx, i);
    LLVMValueRef alpha = cg_ex2(EM, CG_FSUB(EM, mo, finite_base(a, mn)));
    cg_rv_set(TK, &a->m, i, mn);
    cg_rv_set(TK, &a->alpha, i, alpha);
    cg_rv_set(TK, &a->l, i, CG_FMUL(EM, cg_rv_get(TK, &a->l, i), alpha));
  }
  if (!defer) cg_rt_mul_rows(TK, &a->o, &a->alpha);
  cg_if_end(EM, &rescale);
  if (defer) cg_rset(EM, a->grow, any);
  for (int i = 0; i < rows; i++) cg_rv_set(TK, &a->base, i, finite_base(a, cg_rv_get(TK, &a->m, i)));
  cg_rt_exp2_rows(TK, &a->s, a->c, &a->base);
  if (a->segs) {
    cg_row_sum_groups(TK, &a->l, &a->s, a->bn / 64, a->seg_part);
  } else {
    cg_row_sum_part(TK, &a->l, &a->s);
  }
}

/* O's share of a deferred online_softmax: O may be rescaled only once the
** product that was adding to it has retired. */
static void rescale_o(attn *a) {
  cg_if c;
  cg_if_begin(EM, &c, cg_rget(EM, a->grow));
  cg_rt_mul_rows(TK, &a->o, &a->alpha);
  cg_if_end(EM, &c);
}

/* -------------------------------------------------------------- phases */

/* Where this CTA and warp work; `fresh` re-reads the special registers so
** code after the main loop need not keep these values alive through it.
** A persistent tile reads its record (fresh or not) or decodes the item
** (the producer, before it has a record). */
static LLVMValueRef locate(attn *a, int fresh) {
  sreg_fn rd = fresh ? cg_sreg_fresh : cg_sreg_read;
  if (fresh) cg_tk_refresh(TK);
  LLVMValueRef qblk;
  if (a->rec) {
    a->batch = rec_word(a, REC_BATCH);
    a->head = rec_word(a, REC_HEAD);
    qblk = rec_word(a, REC_QBLK);
  } else if (a->item) {
    cg_sched_decode(EM, param(a, P_SCHED), param(a, P_NTILES), (int)((a->seq + a->bm - 1) / a->bm),
                    a->item, &a->batch, &a->head, &qblk);
  } else {
    a->batch = rd(EM, CG_CTAID_Z);
    a->head = rd(EM, CG_CTAID_Y);
    qblk = rd(EM, CG_CTAID_X);
  }
  a->q0 = CG_MUL(EM, qblk, cg_i32(EM, a->bm));
  a->row0 = CG_ADD(EM, a->q0, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)));
  return qblk;
}

/*
** A table block larger than the kernel's key step (sub > 1) may end in
** steps wholly past the sequence: S = 45106 in 384-key blocks of 128-key
** steps leaves the last block's third step empty. A row whose last entry
** is the sequence's last block skips them; the step that holds the end
** is still bounds-checked. (Elsewhere in a row that block costs them.)
*/
static void trim_tail(attn *a, LLVMValueRef end) {
  int bk = block_k(a->spec);
  int64_t nk = (a->seq + bk - 1) / bk, used = (a->seq - (nk - 1) * bk + a->bn - 1) / a->bn;
  if (!a->k_limit || a->sub - used <= 0) return;
  /* end - 1 < start only for an empty row, where the entry read is still
  ** inside the table (rowptr and nfull precede idx) and nblk stays 0. */
  LLVMValueRef ent = CG_SUB(EM, end, cg_i32(EM, 1));
  LLVMValueRef last = tab_at(a, CG_ADD(EM, a->bits ? CG_MUL(EM, ent, cg_i32(EM, 2)) : ent, cg_i32(EM, 2 * a->nq + 1)));
  LLVMValueRef cut = CG_AND(EM, CG_ICMP(EM, LLVMIntEQ, last, cg_i32(EM, (int)nk - 1)), CG_ICMP(EM, LLVMIntSGT, a->nblk, cg_i32(EM, 0)));
  a->nblk = CG_SUB(EM, a->nblk, CG_SEL(EM, cut, cg_i32(EM, (int)(a->sub - used)), cg_i32(EM, 0)));
}

/* The tile's values; a persistent consumer takes its record's (a->rec),
** which the producer filled from this same code (ws_publish). */
static void setup(attn *a) {
  LLVMValueRef qblk = a->qblk = locate(a, 0);
  a->c = CG_FMUL(EM, param(a, P_SCALE), cg_f32(EM, LOG2E));
  a->tlen = a->rec ? rec_word(a, REC_TLEN) : cg_text_valid(EM, &a->sh, param(a, P_TLEN), a->batch);
  a->qb = slice(a, P_Q, P_QSB);
  a->kb = slice(a, P_K, P_KSB);
  a->vb = slice(a, P_V, P_VSB);
  a->sq = (cg_st){cg_i32(EM, 0), a->bm, a->d, a->pad, a->wg};
  if (a->rec) {
    a->hoff = rec_word(a, REC_HOFF);
    a->tab = cg_gep(EM, EM->t_i32, param(a, P_TABS), a->hoff);
    a->start = rec_word(a, REC_START);
    a->nblk = rec_word(a, REC_NBLK);
    a->nfull = rec_word(a, REC_NFULL);
    return;
  }
  LLVMValueRef hoff = a->hoff = cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, param(a, P_HEAD_OFF), a->head));
  a->tab = cg_gep(EM, EM->t_i32, param(a, P_TABS), hoff);
  LLVMValueRef tq = CG_UDIV(EM, qblk, cg_i32(EM, block_q(a->spec) / a->bm));
  a->start = tab_at(a, tq);
  LLVMValueRef end = tab_at(a, CG_ADD(EM, tq, cg_i32(EM, 1)));
  a->nfull = tab_at(a, CG_ADD(EM, tq, cg_i32(EM, a->nq + 1)));
  a->nblk = CG_MUL(EM, CG_SUB(EM, end, a->start), cg_i32(EM, a->sub));
  trim_tail(a, end);
  /* A persistent tile's query block comes from its work item, which ptxas
  ** cannot prove warp-uniform, so mask_prepare's test of whether the block
  ** meets text held a register through the key loop (at D64 it spilled).
  ** Every key block of such a query block is partial: the test becomes
  ** its count of full blocks, 0, once a tile. */
  LLVMValueRef qtext = a->sched && !a->bits ? cg_text_overlap(EM, &a->sh, a->q0, a->bm) : NULL;
  if (qtext) a->nfull = CG_SEL(EM, qtext, cg_i32(EM, 0), a->nfull);
}

static void init_state(attn *a) {
  LLVMValueRef zero = cg_f32(EM, 0), ninf = cg_fneg_inf(EM);
  cg_rt_init(TK, &a->o, a->rw, a->d, zero);
  cg_rt_init(TK, &a->s, a->rw, a->bn, NULL);
  cg_ra_init(TK, &a->pa, a->rw, a->bn);
  if (a->q_regs) cg_ra_init(TK, &a->qa, a->rw, a->d);
  cg_rv_init(TK, &a->m, a->rw, ninf);
  cg_rv_init(TK, &a->l, a->rw, zero);
  cg_rv_init(TK, &a->mx, a->rw, NULL);
  cg_rv_init(TK, &a->base, a->rw, NULL);
  cg_rv_init(TK, &a->alpha, a->rw, NULL);
  for (int i = 0; i < cg_mask_words(a->rw, a->bn, a->mmode); i++) a->mwords[i] = cg_reg_new(EM, EM->t_i32, NULL);
  a->grow = cg_reg_new(EM, EM->t_i1, NULL);
}

/* Q, then the first stages - 1 key blocks, in flight before the loop. */
static void copy_q(attn *a, cg_lower *arm, void *ctx) {
  a->qarm = arm;
  cg_gv q = view(a, a->qb, P_QSS, a->q0, 0);
  cg_copy_async(TK, &a->sq, &q);
}

static void prologue(attn *a) {
  each_arm(a, &a->qidx, copy_q, NULL);
  cg_copy_commit(TK);
  for (int i = 0; i < a->stages; i++) a->kbq[i] = cg_reg_new(EM, EM->t_i32, key_block(a, cg_i32(EM, i)));
  for (int i = 0; i < a->stages - 1; i++) issue_kv(a, cg_i32(EM, i), cg_rget(EM, a->kbq[i]));
  if (a->q_regs) {
    cg_copy_wait(TK, 2 * (a->stages - 1));
    cg_sync(TK);
    cg_st mine = cg_st_rows(TK, &a->sq, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)), a->rw);
    cg_load_a(TK, &a->qa, &mine);
  }
}

/* One key block. Copy groups in flight, oldest first: K_j V_j K_j+1 V_j+1 ...
** The table entry a later iteration needs is loaded one iteration early,
** so no copy waits on a global load. */
static void key_step(attn *a, LLVMValueRef j) {
  int st = a->stages;
  LLVMValueRef kb = cg_rget(EM, a->kbq[0]), ahead = key_block(a, CG_ADD(EM, j, cg_i32(EM, st)));
  if (st == 1) {
    cg_sync(TK);  /* everyone is done with the single stage */
    issue_kv(a, j, kb);
  }
  cg_copy_wait(TK, st == 1 ? 1 : 2 * st - 3);
  if (a->wg) cg_wgmma_smem_fence(TK);
  cg_sync(TK);  /* K_j visible to all; stage j - 1 free */
  if (st > 1) issue_kv(a, CG_ADD(EM, j, cg_i32(EM, st - 1)), cg_rget(EM, a->kbq[st - 1]));
  cg_st k = kv_tile(a, j, 0), v = kv_tile(a, j, 1);
  cg_st mine = cg_st_rows(TK, &a->sq, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)), a->rw);
  mask_prepare(a, j, kb);
  cg_rt_fill(TK, &a->s, cg_f32(EM, 0));
  if (a->wg) cg_wgmma_abt(TK, &a->s, &a->sq, cg_wgmma_row0(TK), &k);
  else cg_mma_abt(TK, &a->s, a->q_regs ? &a->qa : NULL, &mine, &k);
  mask_apply(a);
  online_softmax(a, 0);
  cg_rt_to_a(TK, &a->pa, &a->s);
  cg_copy_wait(TK, st == 1 ? 0 : 2 * st - 2);
  if (a->wg) cg_wgmma_smem_fence(TK);
  cg_sync(TK);  /* V_j visible to all */
  if (a->wg) cg_wgmma_ab_rs(TK, &a->o, &a->pa, &v);
  else cg_mma_ab(TK, &a->o, &a->pa, &v);
  for (int i = 0; i + 1 < st; i++) cg_rset(EM, a->kbq[i], cg_rget(EM, a->kbq[i + 1]));
  cg_rset(EM, a->kbq[st - 1], ahead);
}

/* O and LSE of the warp's rows, through the class's qidx arm. */
static void store_rows(attn *a, cg_lower *arm, void *ctx) {
  LLVMValueRef *lse = ctx;
  a->qarm = arm;
  cg_gv o = view(a, a->ob, P_OSS, a->q0, 0);
  cg_rt_store(TK, &a->o, &o, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)));
  /* The first thread of each quad writes the LSE of the rows the quad owns
  ** (the rows are gathered by the whole warp, before it splits). */
  LLVMValueRef rows[16], warp0 = CG_MUL(EM, TK->warp, cg_i32(EM, a->rw));
  cg_gv_frag_rows(TK, &o, warp0, a->rw, rows);
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, TK->fc, cg_i32(EM, 0)));
  LLVMValueRef bh = CG_ADD(EM, CG_MUL(EM, a->batch, cg_i32(EM, a->sh.heads)), a->head);
  LLVMValueRef lbase = cg_gep(EM, EM->t_f32, param(a, P_LSE), CG_MUL(EM, CG_ZEXT64(EM, bh), cg_i64(EM, a->seq)));
  for (int i = 0; i < a->rw / 8; i++) {
    LLVMValueRef pos = CG_ADD(EM, a->row0, CG_ADD(EM, TK->fr, cg_i32(EM, 8 * i)));
    cg_if in;
    if (a->q_limit) cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, pos, cg_i32(EM, a->seq)));
    cg_store(EM, lse[i], cg_gep(EM, EM->t_f32, lbase, CG_ZEXT64(EM, rows[i])));
    if (a->q_limit) cg_if_end(EM, &in);
  }
  cg_if_end(EM, &lead);
}

/* A persistent consumer has located the tile already (ws_consume_tiles). */
static void epilogue(attn *a) {
  if (!a->ws) cg_copy_wait(TK, 0);
  if (!a->sched) locate(a, 1);
  a->ob = slice(a, P_O, P_OSB);
  cg_rv_quad_sum(TK, &a->l);
  LLVMValueRef zero = cg_f32(EM, 0), one = cg_f32(EM, 1), ninf = cg_fneg_inf(EM);
  LLVMValueRef lse[8];
  for (int i = 0; i < a->rw / 8; i++) {
    LLVMValueRef l = cg_rv_get(TK, &a->l, i), any = CG_FCMP(EM, LLVMRealOGT, l, zero);
    cg_rv_set(TK, &a->alpha, i, CG_SEL(EM, any, LLVMBuildFDiv(EM->b, one, l, ""), zero));
    LLVMValueRef v = CG_FMUL(EM, CG_FADD(EM, cg_rv_get(TK, &a->m, i), cg_lg2(EM, l)), cg_f32(EM, LN2));
    lse[i] = CG_SEL(EM, any, v, ninf);
  }
  cg_rt_mul_rows(TK, &a->o, &a->alpha);
  each_arm(a, &a->qidx, store_rows, lse);
}

static void kernel(attn *a) {
  setup(a);
  init_state(a);
  prologue(a);
  mask_rows(a);
  cg_for loop;
  LLVMValueRef j = cg_for_begin(EM, &loop, cg_i32(EM, 0), a->nblk);
  key_step(a, j);
  cg_for_end(EM, &loop);
  epilogue(a);
  LLVMBuildRetVoid(EM->b);
}


/* ------------------------------------------ sm_90a, warp-specialised */
/*
** Warpgroup 0 produces: one thread walks the CTA's table row and copies Q
** once, then K and V of every key block, by TMA into a ring of `stages`
** slots. K and V of a slot complete on their own full barriers, so S can
** start while V lands, and are freed on their own empty barriers (all 256
** consumer threads arrive), K as soon as S is in registers. Warpgroups 1
** and 2 consume, 64 query rows each, and keep the tensor cores busy
** through the softmax:
**
**   S = Q K_0^T;  softmax;  P = S
**   for j = 1 ..:  [turn] issue S = Q K_j^T;  rescale O;  issue O += P V_j-1 [pass]
**                  wait for S;  free K_j;  mask, softmax (O's rescale deferred)
**                  wait for O;  free V_j-1;  P = S
**   rescale O;  O += P V_last;  free it
**
** (Three consumer warpgroups rescale O after its wait instead:
** cg_attn_rescale_under_s.)
**
** The two warpgroups take turns to issue (cg_turn_wait, cg_turn_pass), so
** one's softmax runs under the other's products (FlashAttention-3's
** ping-pong). Barrier phases: slot j % stages is filled for the
** (j / stages)-th time by iteration j, so its full barriers complete phase
** parity (j / stages) & 1, and the producer's (j / stages)-th refill waits
** for the empty barriers' previous phase. A persistent CTA starts every
** tile at slot 0 and parity 0 as well (ws_realign).
*/
enum { BAR_Q, BAR_K, BAR_V, BAR_KFREE, BAR_VFREE, BARS_SLOT = 4, BAR_QFREE = 64, BAR_REC = 65 };
/* A persistent CTA's words, from the top of the barrier area down: the
** running tile's (ws_run_words, the last at WS_NFULL_AT), the two tile
** records (ws_publish), their full barriers and Q's free barrier,
** BAR_QFREE. The ring's slots use the first 8 + 32 x stages bytes (136 at
** 4 stages). */
#define WS_REC_BYTES (4 * REC_WORDS)
#define WS_REC_OFF (WS_TILE_AT - 2 * WS_REC_BYTES)
#define WS_RECFULL_OFF (WS_REC_OFF / 8 * 8 - 16)
#define WS_QFREE_OFF (WS_RECFULL_OFF - 8)
_Static_assert(WS_QFREE_OFF >= 8 + 32 * 4, "the persistent grid's words overlap the ring's barriers");

/* j: for BAR_REC, the record's slot (0 or 1); else the step. */
static LLVMValueRef bar_at(attn *a, int which, LLVMValueRef j) {
  if (which == BAR_Q) return a->bars;
  if (which == BAR_QFREE) return CG_ADD(EM, a->bars, cg_i32(EM, WS_QFREE_OFF));
  if (which == BAR_REC) return CG_ADD(EM, a->bars, CG_ADD(EM, cg_i32(EM, WS_RECFULL_OFF), CG_MUL(EM, j, cg_i32(EM, 8))));
  LLVMValueRef slot = CG_UREM(EM, j, cg_i32(EM, a->stages));
  return CG_ADD(EM, a->bars, CG_MUL(EM, CG_ADD(EM, CG_MUL(EM, slot, cg_i32(EM, BARS_SLOT)), cg_i32(EM, which)), cg_i32(EM, 8)));
}

static LLVMValueRef round_parity(attn *a, LLVMValueRef j, int back) {
  LLVMValueRef r = CG_UDIV(EM, j, cg_i32(EM, a->stages));
  return CG_AND(EM, back ? CG_ADD(EM, r, cg_i32(EM, 1)) : r, cg_i32(EM, 1));
}

/* Until slot j's full barrier `which` has completed step j's round. */
static void ws_wait(attn *a, int which, LLVMValueRef j) { cg_mbar_wait(TK, bar_at(a, which, j), round_parity(a, j, 0)); }

static void ws_init_barriers(attn *a) {
  cg_if one;
  cg_if_begin(EM, &one, CG_ICMP(EM, LLVMIntEQ, TK->tid, cg_i32(EM, 0)));
  for (int m = P_TMQ; m <= P_TMV; m++) cg_tmap_prefetch(TK, param(a, m));
  cg_mbar_init(TK, bar_at(a, BAR_Q, NULL), 1);
  for (int st = 0; st < a->stages; st++) {
    LLVMValueRef j = cg_i32(EM, st);
    cg_mbar_init(TK, bar_at(a, BAR_K, j), 1);
    cg_mbar_init(TK, bar_at(a, BAR_V, j), 1);
    cg_mbar_init(TK, bar_at(a, BAR_KFREE, j), 32 * mma_warps(&a->spec->cfg));
    cg_mbar_init(TK, bar_at(a, BAR_VFREE, j), 32 * mma_warps(&a->spec->cfg));
  }
  if (a->sched) {
    cg_mbar_init(TK, bar_at(a, BAR_QFREE, NULL), 32 * mma_warps(&a->spec->cfg));
    for (int r = 0; r < 2; r++) cg_mbar_init(TK, bar_at(a, BAR_REC, cg_i32(EM, r)), 1);
  }
  cg_mbar_init_fence(TK);
  cg_if_end(EM, &one);
  cg_sync(TK);
}

static void ws_load(attn *a, const cg_st *dst, int p_map, LLVMValueRef row, LLVMValueRef bar, int bytes) {
  cg_mbar_expect(TK, bar, bytes);
  cg_tma_load(TK, dst, param(a, p_map), row, a->head, a->batch, bar);
}

static LLVMValueRef run_at(attn *a) { return CG_ADD(EM, a->bars, cg_i32(EM, WS_TILE_AT)); }

/*
** The running tile's words: the producer stores its record's first
** REC_RUN words at WS_TILE_AT before it copies Q, so Q's barrier publishes
** them, and stores the next tile's only after BAR_QFREE, which the
** consumers pass once they read them no more. Steps, and the end of the
** tile, read them again there (a->rec = run_at) rather than keep them in
** registers: per thread to ptxas (they come from shared memory), they
** spilled the producer's 24 at D128 and a frame window's consumers at
** D128, and a fixed address costs no register of its own.
*/
static void ws_run_words(attn *a) { rec_put(a, run_at(a), REC_RUN); }

/*
** A step's reads of them: the copies' coordinates and the table row
** (producer), or a bitmask consumer's full count and table row. Other
** consumers keep theirs in registers, which they have room for (the reads
** are volatile, never dropped). A bitmask consumer reads its lane afresh
** too: computed once from the thread id, warp x rows + lane % rows (its
** bitmask row) was kept through the loop, and at D128 ptxas spilled it.
*/
static void ws_run_row(attn *a, int consumer) {
  if (consumer && !a->bits) return;
  if (consumer) {
    a->nfull = rec_word(a, REC_NFULL);
    TK->lane = cg_sreg_fresh(EM, CG_LANEID);
  } else {
    a->batch = rec_word(a, REC_BATCH);
    a->head = rec_word(a, REC_HEAD);
  }
  a->tab = cg_gep(EM, EM->t_i32, param(a, P_TABS), rec_word(a, REC_HOFF));
  a->start = rec_word(a, REC_START);
}

/* Until the consumers have freed slot j's previous round (of K: v = 0, or
** V). The grid kernel's first round waits for nothing; a persistent CTA's
** every step waits, its first tile's first round too: on a fresh barrier
** the phase before the first reads as complete. */
static void ws_wait_free(attn *a, int v, LLVMValueRef j, LLVMValueRef refill) {
  cg_if c;
  if (refill) cg_if_begin(EM, &c, refill);
  cg_mbar_wait(TK, bar_at(a, v ? BAR_VFREE : BAR_KFREE, j), round_parity(a, j, 1));
  if (refill) cg_if_end(EM, &c);
}

/* K and V of steps lo .. hi - 1 (one thread). */
static void ws_copy_kv(attn *a, LLVMValueRef lo, LLVMValueRef hi) {
  cg_for loop;
  LLVMValueRef j = cg_for_begin(EM, &loop, lo, hi);
  LLVMValueRef keep[4] = {a->batch, a->head, a->tab, a->start};
  if (a->sched) ws_run_row(a, 0);
  LLVMValueRef row = CG_MUL(EM, key_block(a, j), cg_i32(EM, a->bn));
  LLVMValueRef refill = a->sched ? NULL : CG_ICMP(EM, LLVMIntSGE, j, cg_i32(EM, a->stages));
  for (int v = 0; v < 2; v++) {
    ws_wait_free(a, v, j, refill);
    cg_st t = kv_tile(a, j, v);
    ws_load(a, &t, v ? P_TMV : P_TMK, row, bar_at(a, v ? BAR_V : BAR_K, j), a->kv_bytes);
  }
  a->batch = keep[0], a->head = keep[1], a->tab = keep[2], a->start = keep[3];
  cg_for_end(EM, &loop);
}

/* Q of the tile, then K and V of its every key block (one thread; the
** persistent producer's tiles: ws_produce_tiles). */
static void ws_produce_tile(attn *a) {
  ws_load(a, &a->sq, P_TMQ, a->q0, bar_at(a, BAR_Q, NULL), a->q_bytes);
  if (a->nfull_smem && !a->sched) cg_store(EM, a->nfull, cg_smem_at(EM, CG_ADD(EM, a->bars, cg_i32(EM, WS_NFULL_AT))));
  ws_copy_kv(a, cg_i32(EM, 0), a->nblk);
}

/*
** A persistent CTA's tiles each start the ring at slot 0 and parity 0, so
** a consumer's slot and parities follow from the tile's step j alone, as
** in the grid kernel, and stay warp-uniform to ptxas. (A slot carried on
** from the earlier tiles, (j + their steps) mod stages, comes from table
** loads; every wgmma descriptor and barrier address was then built in
** per-thread registers and moved to uniform ones before each HGMMA, and
** the kernel ran 3-13% slower than a CTA per tile.) After a tile's last
** step both sides run the ring on to the next multiple of 2 x stages with
** steps that move nothing, each counting them from the tile's step count:
** the producer waits for the slot's previous round to be free and
** completes the full barriers by a plain arrival (no bytes); the consumers
** wait for the full barriers and free the slot as after a real step,
** without a product. So every phase is waited by the threads that wait on
** it in a real step (compute-sanitizer's synccheck reports a phase that
** completed with no waiter), and the steps keep a real step's order: the
** producer's step j waits for the consumers' step j - stages, which needs
** none of the producer's later steps. The consumers run them before the
** epilogue, so the next tile's copies, whose first steps wait for these,
** overlap it.
*/
static void ws_realign(attn *a, int consumer) {
  LLVMValueRef period = cg_i32(EM, 2 * a->stages);
  LLVMValueRef end = CG_MUL(EM, CG_UDIV(EM, CG_ADD(EM, a->nblk, cg_i32(EM, 2 * a->stages - 1)), period), period);
  cg_for loop;
  LLVMValueRef j = cg_for_begin(EM, &loop, a->nblk, end);
  for (int v = 0; v < 2; v++) {
    int full = v ? BAR_V : BAR_K;
    if (consumer) {
      ws_wait(a, full, j);
      cg_mbar_arrive(TK, bar_at(a, v ? BAR_VFREE : BAR_KFREE, j));
    } else {
      ws_wait_free(a, v, j, NULL);
      cg_mbar_arrive(TK, bar_at(a, full, j));
    }
  }
  cg_for_end(EM, &loop);
}

/*
** The persistent grid's hand-over, one tile ahead. Each tile t has a
** record (its item decoded and its table row: REC_*) in slot t % 2, whose
** full barrier BAR_REC(t % 2) the producer completes once the record is
** written (a plain arrival: its release makes the stores visible to the
** consumers' wait, an acquire). The producer writes record t + 1 once it
** has issued the copies of tile t's first ring's worth of steps
** (ws_produce_tiles), a whole tile before its use: the consumers read it
** after tile t's epilogue without waiting on anything that only then
** happens, set tile t + 1 up while its Q lands, and read no global memory
** for it. (Before, the item came with Q's barrier, and every tile began
** with its decode and table reads: the sched entry, the head's table
** offset, the row.)
**
** Who waits on what:
** - BAR_REC(s), count 1; its phase k is record 2k + s. The producer
**   arrives, every consumer thread waits (parity k & 1) before it reads
**   the record. No phase completes twice ahead of a waiter: record t + 2
**   is written after the producer's wait on BAR_QFREE's phase t, which
**   every consumer completes after its wait for record t. Every phase is
**   waited, the stop's too.
** - The slot of record t is written again (record t + 2) only after that
**   same wait; the consumers read record t only when they set tile t up,
**   before their arrival on BAR_QFREE for it. What they need of tile t
**   later comes from the running tile's words (ws_run_words).
** - BAR_Q, phase t: Q of tile t, with the producer's expected bytes, and
**   the running words stored before it; consumers wait parity t & 1. The
**   producer copies Q of tile t + 1 only after BAR_QFREE's phase t, which
**   the consumers complete after their wait on phase t: no phase runs
**   ahead of its waiters. A stop has no Q.
** - BAR_QFREE, one arrival a consumer thread, phase t once tile t's last
**   product has read Q and the consumers have read tile t's words: the
**   producer waits it before Q of tile t + 1, and its last phase after the
**   loop, so every phase is waited.
** The producer reads its own records back (program order is enough) and
** keeps only tile t's step count through record t + 1's reads: its 24
** registers at D128 do not hold a tile's values and the next one's reads
** at once.
*/
static LLVMValueRef rec_at(attn *a, LLVMValueRef slot) {
  return CG_ADD(EM, a->bars, CG_ADD(EM, cg_i32(EM, WS_REC_OFF), CG_MUL(EM, slot, cg_i32(EM, WS_REC_BYTES))));
}

static LLVMValueRef rec_stop(attn *a) { return CG_ICMP(EM, LLVMIntSLT, rec_word(a, REC_BATCH), cg_i32(EM, 0)); }

/* Record of item (or the stop past the last) into slot, by the producer. */
static void ws_publish(attn *a, LLVMValueRef item, LLVMValueRef slot) {
  LLVMValueRef rec = rec_at(a, slot);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntULT, item, param(a, P_NITEMS)));
  a->rec = NULL;
  a->item = item;
  setup(a);
  a->item = NULL;
  rec_put(a, rec, REC_WORDS);
  cg_if_else(EM, &in);
  cg_store(EM, cg_i32(EM, -1), cg_smem_at(EM, CG_ADD(EM, rec, cg_i32(EM, 4 * REC_BATCH))));
  cg_if_end(EM, &in);
  cg_mbar_arrive(TK, bar_at(a, BAR_REC, slot));
}

static void ws_wait_qfree(attn *a, LLVMValueRef tt) {
  cg_if c;
  cg_if_begin(EM, &c, CG_ICMP(EM, LLVMIntSGT, tt, cg_i32(EM, 0)));
  cg_mbar_wait(TK, bar_at(a, BAR_QFREE, NULL), CG_AND(EM, CG_SUB(EM, tt, cg_i32(EM, 1)), cg_i32(EM, 1)));
  cg_if_end(EM, &c);
}

/*
** The persistent producer: record 0, then for each tile t until a stop:
** its values from record t, Q once the consumers are done with the
** previous tile's, the copies of its first ring's worth of steps, the next
** draw and its record t + 1, the rest of its copies, and the ring
** realigned. Record t + 1 goes out where the producer would wait anyway:
** its next copy needs the consumers to have begun tile t (after the
** epilogue of t - 1), so the draw and the row's reads delay no copy; nor
** do they delay the producer's realignment, which the consumers' own
** waits for before their epilogue.
*/
static void ws_produce_tiles(attn *a) {
  cg_reg tt = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  ws_publish(a, cg_sched_first(EM), cg_i32(EM, 0));
  cg_loop l;
  cg_loop_begin(EM, &l);
  LLVMValueRef t = cg_rget(EM, tt), n = CG_ADD(EM, t, cg_i32(EM, 1));
  a->rec = rec_at(a, CG_AND(EM, t, cg_i32(EM, 1)));
  cg_loop_break_if(EM, &l, rec_stop(a));
  setup(a);
  LLVMValueRef nblk = a->nblk, ring = cg_i32(EM, a->stages);
  a->rec = run_at(a);
  ws_wait_qfree(a, t);
  ws_run_words(a);
  ws_load(a, &a->sq, P_TMQ, a->q0, bar_at(a, BAR_Q, NULL), a->q_bytes);
  ws_copy_kv(a, cg_i32(EM, 0), CG_SEL(EM, CG_ICMP(EM, LLVMIntSLT, nblk, ring), nblk, ring));
  ws_publish(a, cg_sched_next(EM, a->sched, param(a, P_CTR), n), CG_AND(EM, n, cg_i32(EM, 1)));
  a->rec = run_at(a);
  a->nblk = nblk;
  ws_copy_kv(a, ring, nblk);
  ws_realign(a, 0);
  cg_rset(EM, tt, n);
  cg_loop_end(EM, &l);
  ws_wait_qfree(a, cg_rget(EM, tt));
  cg_sched_finish(EM, a->sched, param(a, P_CTR));
  a->rec = NULL;
}

static void ws_produce(attn *a) {
  cg_setmaxnreg(TK, 0, ws_producer_regs(&a->spec->cfg));
  cg_if one;
  cg_if_begin(EM, &one, CG_ICMP(EM, LLVMIntEQ, TK->tid, cg_i32(EM, 0)));
  if (a->sched) ws_produce_tiles(a);
  else ws_produce_tile(a);
  cg_if_end(EM, &one);
}

/* A segments kernel's tables hold every key block of a row in order
** (cg_attn_check): step j is key block j. Opaque to LLVM, which would
** otherwise carry the step's store address through the loop as a 64-bit
** induction variable (the wide configs have no registers for it). */
static LLVMValueRef seg_block(attn *a, LLVMValueRef j) {
  return cg_asm(EM, EM->t_i32, "mov.u32 $0, $1;", "=r,r", &j, 1, 0);
}

/* K_j is in, and the mask's bits ready before S is live. */
static void ws_ready_k(attn *a, LLVMValueRef j) {
  ws_wait(a, BAR_K, j);
  a->step_kb = a->ahead ? cg_rget(EM, a->ckb) : a->segs ? seg_block(a, j) : key_block(a, j);
  mask_prepare(a, j, a->step_kb);
}

static void ws_issue_s(attn *a, LLVMValueRef j) {
  cg_st k = kv_tile(a, j, 0);
  cg_wgmma_abt_async(TK, &a->s, &a->sq, CG_MUL(EM, a->wgi, cg_i32(EM, 64)), &k, 1);
}

/* Shared memory past Q and the ring: P's tiles (ws_p_shared), then the mbarriers. */
static int ring_end(const attn *a) { return a->q_bytes + a->stages * 2 * a->kv_bytes; }

/* The warpgroup's P tile. */
static cg_st p_tile(attn *a) {
  LLVMValueRef at = cg_i32(EM, ring_end(a));
  return (cg_st){CG_ADD(EM, at, CG_MUL(EM, a->wgi, cg_i32(EM, 64 * a->bn * 2))), 64, a->bn, 0, 1};
}

/*
** P of the step's softmax, as the A operand of O += P V. Through shared
** memory it is written only after the warpgroup's last P V has retired
** (the step's wait for O comes first), and read once the warp's lanes
** have fenced their writes: a warp's rows of the product read only its
** own rows of P, so the warp meets alone, as FlashAttention-3's does.
*/
static void ws_make_p(attn *a) {
  cg_rt_to_a(TK, &a->pa, &a->s);
  if (!a->p_smem) return;
  cg_st p = p_tile(a);
  /* Beside a mask at D = 64 and 192 keys even the one lane address kept
  ** through the loop spilled (4 bytes): there it is made again from the
  ** thread index. (At D = 128 and 128 keys that spilled 8 bytes instead.) */
  cg_tk keep = *TK;
  if (a->masked && a->d == 64) cg_tk_refresh(TK);
  cg_wgmma_store_a(TK, &a->pa, &p);
  *TK = keep;
  cg_wgmma_smem_fence(TK);
  cg_syncwarp(EM);
}

static void ws_issue_pv(attn *a, LLVMValueRef j) {
  cg_st v = kv_tile(a, j, 1);
  if (a->p_smem) {
    cg_st p = p_tile(a);
    cg_wgmma_ab_async(TK, &a->o, &p, &v);
  } else {
    cg_wgmma_ab_rs_async(TK, &a->o, &a->pa, &v);
  }
}

static void ws_step(attn *a, LLVMValueRef j) {
  LLVMValueRef prev = CG_SUB(EM, j, cg_i32(EM, 1));
  ws_ready_k(a, j);
  ws_wait(a, BAR_V, prev);
  cg_turn_wait(TK, a->wgi, a->nwg);
  ws_issue_s(a, j);
  if (a->under_s) rescale_o(a);
  ws_issue_pv(a, prev);
  cg_turn_pass(TK, a->wgi, a->nwg);
  ahead_next(a, CG_ADD(EM, j, cg_i32(EM, 1)));
  cg_wgmma_wait(TK, 1, &a->s);
  cg_mbar_arrive(TK, bar_at(a, BAR_KFREE, j));
  mask_apply(a);
  online_softmax(a, 1);
  cg_wgmma_wait(TK, 0, &a->o);
  cg_mbar_arrive(TK, bar_at(a, BAR_VFREE, prev));
  if (!a->under_s) rescale_o(a);
  ws_make_p(a);
  seg_store(a);  /* S is free: the wide configs have no room for it beside S and O */
}

/* The first turn goes to warpgroup 0: the last one lets it begin. */
static void ws_turn_first(attn *a) {
  cg_if last;
  cg_if_begin(EM, &last, CG_ICMP(EM, LLVMIntEQ, a->wgi, cg_i32(EM, a->nwg - 1)));
  cg_turn_first(TK, a->nwg);
  cg_if_end(EM, &last);
}

/* The products and softmax of the tile's key blocks, once Q is in. */
static void ws_consume_tile(attn *a) {
  cg_if any;
  cg_if_begin(EM, &any, CG_ICMP(EM, LLVMIntSGT, a->nblk, cg_i32(EM, 0)));
  if (!a->sched) ws_turn_first(a);
  LLVMValueRef zero = cg_i32(EM, 0);
  ws_ready_k(a, zero);
  cg_turn_wait(TK, a->wgi, a->nwg);
  ws_issue_s(a, zero);
  cg_turn_pass(TK, a->wgi, a->nwg);
  ahead_next(a, cg_i32(EM, 1));
  cg_wgmma_wait(TK, 0, &a->s);
  cg_mbar_arrive(TK, bar_at(a, BAR_KFREE, zero));
  mask_apply(a);
  online_softmax(a, 0);
  if (a->under_s) cg_rset(EM, a->grow, LLVMConstInt(EM->t_i1, 0, 0));
  ws_make_p(a);
  seg_store(a);
  cg_for loop;
  LLVMValueRef j = cg_for_begin(EM, &loop, cg_i32(EM, 1), a->nblk);
  LLVMValueRef keep[4] = {a->nfull, a->tab, a->start, TK->lane};
  if (a->sched) ws_run_row(a, 1);
  ws_step(a, j);
  a->nfull = keep[0], a->tab = keep[1], a->start = keep[2], TK->lane = keep[3];
  cg_for_end(EM, &loop);
  LLVMValueRef last = CG_SUB(EM, a->nblk, cg_i32(EM, 1));
  if (a->under_s) rescale_o(a);
  ws_wait(a, BAR_V, last);
  cg_turn_wait(TK, a->wgi, a->nwg);
  ws_issue_pv(a, last);
  cg_turn_pass(TK, a->wgi, a->nwg);
  cg_wgmma_wait(TK, 0, &a->o);
  cg_mbar_arrive(TK, bar_at(a, BAR_VFREE, last));
  cg_if_end(EM, &any);
}

/*
** The persistent consumers: the turns run on across tiles (every
** warpgroup takes nblk + 1 of them a tile), so only the first tile starts
** them. A tile is set up from its record before Q is waited for; Q is
** freed once the tile's last product has read it, and the ring run on to
** the next tile's start (ws_realign), before the epilogue, so the
** producer's next copies overlap it. (The hand-over: ws_publish.)
*/
static void ws_consume_tiles(attn *a) {
  cg_reg tt = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  ws_turn_first(a);
  cg_loop l;
  cg_loop_begin(EM, &l);
  LLVMValueRef t = cg_rget(EM, tt), slot = CG_AND(EM, t, cg_i32(EM, 1));
  cg_mbar_wait(TK, bar_at(a, BAR_REC, slot), CG_AND(EM, CG_LSHR(EM, t, cg_i32(EM, 1)), cg_i32(EM, 1)));
  a->rec = rec_at(a, slot);
  cg_loop_break_if(EM, &l, rec_stop(a));
  setup(a);
  init_state(a);
  mask_rows(a);
  ahead_start(a);
  a->rec = run_at(a);
  cg_mbar_wait(TK, bar_at(a, BAR_Q, NULL), slot);
  ws_consume_tile(a);
  /* The epilogue's tile, read while its words are still ours. */
  locate(a, 1);
  cg_mbar_arrive(TK, bar_at(a, BAR_QFREE, NULL));
  ws_realign(a, 1);
  epilogue(a);
  cg_rset(EM, tt, CG_ADD(EM, t, cg_i32(EM, 1)));
  cg_loop_end(EM, &l);
  a->rec = NULL;
}

/*
** The consumer's warpgroup index. Where it is lane 0's, broadcast, it is
** the same value, but one ptxas knows to be the warp's, so what follows
** from it (its rows of Q, its tile of P, their wgmma descriptors, its
** turns' barriers) sits in uniform registers, as FlashAttention-3's
** canonical_warp_group_idx has it; from tid / 128 every wgmma with Q or P
** as A took two R2UR and a 64-bit add in the key loop (bench/RESULTS.md).
** Beside partial-block bitmasks at D = 128 with P in registers and text
** tokens (20 before the video, not 256) the register the broadcast takes
** spilled 16 bytes: there it stays per thread.
*/
static LLVMValueRef ws_wg_index(attn *a) {
  int per_thread = a->bits && !a->p_smem && a->d == 128 && a->sh.text;
  LLVMValueRef w = per_thread ? TK->warp : cg_shfl_idx_i32(EM, TK->warp, cg_i32(EM, 0));
  return CG_LSHR(EM, w, cg_i32(EM, 2));
}

static void ws_consume(attn *a) {
  cg_setmaxnreg(TK, 1, ws_consumer_regs(&a->spec->cfg, a->d));
  cg_tk_role(TK, 128, 32 * mma_warps(&a->spec->cfg));
  if (a->sched) {
    a->wgi = ws_wg_index(a);
    ws_consume_tiles(a);
    return;
  }
  a->row0 = CG_ADD(EM, a->q0, CG_MUL(EM, TK->warp, cg_i32(EM, a->rw)));
  a->wgi = ws_wg_index(a);
  init_state(a);
  mask_rows(a);
  ahead_start(a);
  cg_mbar_wait(TK, bar_at(a, BAR_Q, NULL), cg_i32(EM, 0));
  ws_consume_tile(a);
  epilogue(a);
}

/*
** A masked consumer of the wide configs holds S, P and O of its step at
** once, which leaves no room for the row's full-block count through the
** loop (ptxas spilled it), nor does one whose P goes through shared
** memory (its lane address takes what is left at D = 64 and 192 keys;
** 4 bytes spilled), nor a persistent one at D64 (160
** registers), whose tile values come from its work item and so sit in
** per-thread registers, where a CTA per tile has them in uniform ones: it
** is kept in shared memory instead, one word each step reads again. The
** producer stores it after issuing Q and before K_0's barrier (whose
** arrive releases it, and whose wait, before any read, acquires it), so
** Q's copy waits for no table load. (A grid that
** walks several tiles must not store the next tile's before the last
** read of this one's: after this tile's last S, as Q's slot is.)
*/
static void ws_keep_nfull(attn *a) { a->nfull_smem = a->lean || a->sched || a->p_smem; }

static void kernel_ws(attn *a) {
  if (!a->sched) setup(a);
  a->bars = cg_i32(EM, ring_end(a) + ws_p_bytes(&a->spec->cfg, a->d));
  ws_keep_nfull(a);
  ws_init_barriers(a);
  cg_if role;
  cg_if_begin(EM, &role, CG_ICMP(EM, LLVMIntULT, TK->tid, cg_i32(EM, 128)));
  ws_produce(a);
  cg_if_else(EM, &role);
  ws_consume(a);
  cg_if_end(EM, &role);
  LLVMBuildRetVoid(EM->b);
}

/* ------------------------------------------------------------- building */

/* Whether an arm needs no code: a mask true everywhere, an identity idx. */
static int trivial(const cg_graph *g, cg_ref r, int var) {
  int64_t v;
  const cg_node *n = cg_node_at(g, r);
  return var < 0 ? cg_is_const(g, r, &v) && v : n->op == CG_VAR && n->imm == var;
}

/* Splits root by head class and prepares each arm's lowering; a choice
** whose arms are all trivial becomes one trivial arm, so a dense kernel
** in identity layout carries no mask, index or class work at all. */
static sieve_status prepare_choice(attn *a, cg_ref root, int var, const cg_range *r, choice *c, cg_err *e) {
  cg_graph *g = a->spec->pattern->g;
  cg_ref conds[MAX_ARMS], arms[MAX_ARMS];
  uint32_t uniform = CG_UNIFORM_VARS;
  int n = cg_split_uniform(g, root, uniform, conds, arms, MAX_ARMS), all = 1;
  for (int i = 0; i < n; i++) all &= trivial(g, arms[i], var);
  c->n = all ? 1 : n;
  if (all) return SIEVE_OK;
  for (int i = 0; i < n; i++) {
    if (conds[i] != CG_NONE && !(c->cond[i] = cg_lower_new(g, conds[i], r, e))) return e->status;
    if (!trivial(g, arms[i], var) && !(c->arm[i] = cg_lower_new(g, arms[i], r, e))) return e->status;
  }
  return SIEVE_OK;
}

/*
** A thread evaluates the mask's row part for each row it holds, the column
** part for each column and the rest for each element, in every copy of the
** mask code (the warp-specialised kernel has two). Graph limits bound the
** nodes, not that product: within them a union of 1,350 terms took 130 s
** to compile at sm_90a, against about 5,000 emitted nodes and 1 s for the
** largest shipped mask (lvsa -p window=5). Past MASK_BUDGET emitted nodes
** a kernel is refused before LLVM sees it (bench/RESULTS.md).
*/
#define MASK_BUDGET 40000

static sieve_status mask_budget(attn *a, cg_err *e) {
  int warp = a->mmode == CG_MASK_WARP;
  int rows = warp ? 1 : a->rw / 8, cols = warp ? a->bn : a->bn / 4, pairs = warp ? a->bn : a->rw * a->bn / 32;
  int64_t cost = 0;
  for (int i = 0; i < a->mask.n; i++)
    if (a->mask.arm[i]) cost += cg_lower_cost(a->mask.arm[i], CG_UNIFORM_VARS, rows, cols, pairs);
  cost *= a->ws ? 2 : 1;
  if (cost > MASK_BUDGET)
    return cg_fail(e, SIEVE_ERR_LIMIT, "the mask is too large to compile: a thread would evaluate %lld operations "
                   "of it (%d rows, %d columns, %d elements; at most %d): use fewer distinct terms", (long long)cost, rows, cols, pairs, MASK_BUDGET);
  return SIEVE_OK;
}

static sieve_status prepare_exprs(attn *a, cg_err *e) {
  cg_pattern *p = a->spec->pattern;
  cg_ref mask, qidx, kidx;
  sieve_status st = cg_kernel_exprs_bits(p, &a->sh, a->spec->bits, &mask, &qidx, &kidx, e);
  if (st) return st;
  cg_range r[CG_NVARS];
  cg_kernel_ranges(r, (a->seq + a->bm - 1) / a->bm * a->bm - 1,
                   (a->seq + block_k(a->spec) - 1) / block_k(a->spec) * block_k(a->spec) - 1, a->sh.heads, a->sh.text);
  if ((mask = cg_simplify(p->g, mask, r)) == CG_NONE || (qidx = cg_simplify(p->g, qidx, r)) == CG_NONE ||
      (kidx = cg_simplify(p->g, kidx, r)) == CG_NONE)
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory simplifying the mask");
  if ((st = prepare_choice(a, mask, -1, r, &a->mask, e)) || (st = prepare_choice(a, qidx, CG_V_QPOS, r, &a->qidx, e)) ||
      (st = prepare_choice(a, kidx, CG_V_KPOS, r, &a->kidx, e)))
    return st;
  a->pred = a->mask.n > 1 || a->mask.arm[0];
  a->masked = a->pred || a->bits;
  return SIEVE_OK;
}

static char *kernel_name(const attn *a) {
  char nm[64], *s = nm;
  const char *src = a->spec->pattern->name ? a->spec->pattern->name : "pattern";
  for (; *src && s < nm + sizeof nm - 1; src++)
    *s++ = ((*src >= 'a' && *src <= 'z') || (*src >= 'A' && *src <= 'Z') || (*src >= '0' && *src <= '9')) ? *src : '_';
  *s = 0;
  const cg_attn_config *c = &a->spec->cfg;
  char buf[160];
  snprintf(buf, sizeof buf, "sieve_attn_%s_%s_d%d_m%dn%dw%ds%d%s%s%s%s%s", nm, a->spec->dtype == CG_FP16 ? "fp16" : "bf16",
           a->d, c->block_m, c->block_n, c->warps, c->stages, a->bits ? "_bits" : "",
           a->ws && a->bits && !a->ahead ? "_nb" : "",
           a->sched == CG_SCHED_STATIC ? "_ps" : a->sched == CG_SCHED_ATOMIC ? "_pa" : "", a->segs ? "_seg" : "",
           cg_attn_rescale_moved(a->spec) ? (a->under_s ? "_rs" : "_rv") : "");
  return strdup(buf);
}

static void declare(attn *a, const char *name) {
  int n = a->segs ? NPARAMS_SEGS : a->sched ? NPARAMS_SCHED : a->ws ? NPARAMS_TMA : NPARAMS;
  LLVMTypeRef t[NPARAMS_SEGS];
  for (int i = 0; i < NPARAMS; i++) t[i] = EM->t_i64;
  for (int i = P_Q; i <= P_LSE; i++) t[i] = EM->t_gptr;
  t[P_TABS] = t[P_HEAD_OFF] = t[P_TLEN] = EM->t_gptr;
  t[P_STEP] = t[P_LAYER] = EM->t_i32;
  t[P_SCALE] = EM->t_f32;
  for (int i = NPARAMS; i < n && i < NPARAMS_TMA; i++) t[i] = LLVMPointerTypeInContext(EM->ctx, 0);
  t[P_SCHED] = t[P_CTR] = t[P_SEGS] = EM->t_gptr;
  t[P_NTILES] = t[P_NITEMS] = EM->t_i32;
  /* setmaxnreg needs a register cap at entry: ws_ctas CTAs a multiprocessor. */
  LLVMValueRef fn = cg_em_kernel(EM, name, t, param_names, n, 32 * a->warps, a->ws ? ws_ctas(&a->spec->cfg, a->d) : 0);
  for (int i = NPARAMS; i < n && i < NPARAMS_TMA; i++) cg_em_param_byval(EM, i, CG_TMAP_BYTES, CG_TMAP_ALIGN);
  for (int i = 0; i < n; i++) a->prm[i] = LLVMGetParam(fn, (unsigned)i);
}

static void choice_free(choice *c) {
  for (int i = 0; i < c->n; i++) {
    cg_lower_free(c->cond[i]);
    cg_lower_free(c->arm[i]);
  }
}

static void attn_free(attn *a) {
  choice_free(&a->mask);
  choice_free(&a->qidx);
  choice_free(&a->kidx);
  cg_tk_dispose(&a->tk);
  cg_em_dispose(&a->em);
}

sieve_status cg_attn_build(const cg_attn_spec *s, char **ptx, char **name, char **llvm_ir, cg_err *e) {
  sieve_status st = cg_attn_check(s, e);
  if (st) return st;
  attn A = {0}, *a = &A;
  a->spec = s;
  cg_shape_for(s->pattern, &s->shape, &a->sh);
  a->d = a->sh.head_dim;
  a->bm = s->cfg.block_m;
  a->bn = s->cfg.block_n;
  a->warps = s->cfg.warps;
  a->stages = s->cfg.stages;
  a->rw = a->bm / mma_warps(&s->cfg);
  /* wgmma reads Q, K and V from shared memory in its own layout. */
  a->wg = uses_wgmma(s);
  a->ws = cg_attn_uses_tma(s);
  a->nwg = a->ws ? mma_warps(&s->cfg) / 4 : 0;
  a->sched = a->ws ? s->cfg.sched : CG_SCHED_GRID;
  a->segs = s->segs;
  a->q_regs = !a->wg && q_in_regs(a->rw, a->d, a->bn);
  a->seq = sieve_shape_tokens(&a->sh);
  a->nq = (int)((a->seq + block_q(s) - 1) / block_q(s));
  a->sub = block_k(s) / a->bn;
  a->q_limit = a->seq % a->bm ? a->seq : 0;
  a->k_limit = a->seq % block_k(s) ? a->seq : 0;
  a->pad = cg_attn_smem_pad(s);
  a->bits = s->bits != 0;
  /* Patterns busy enough for padded tiles also get the register-lean mask;
  ** bitmasks are read a row a lane, in its layout. */
  a->mmode = a->pad || a->bits ? CG_MASK_WARP : CG_MASK_FRAG;
  a->q_bytes = cg_st_bytes(a->bm, a->d, a->pad);
  a->kv_bytes = cg_st_bytes(a->bn, a->d, a->pad);
  a->ahead = a->ws && a->bits && cg_attn_bits_ahead(s);
  a->under_s = cg_attn_rescale_under_s(s);
  a->p_smem = a->ws && ws_p_shared(&s->cfg, a->d);
  char *nm = kernel_name(a);
  if (!nm || cg_em_init(EM, nm)) {
    free(nm);
    cg_em_dispose(EM);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory starting a kernel");
  }
  declare(a, nm);
  st = cg_tk_init(TK, EM, s->arch, s->dtype, 32 * a->warps);
  if (!st) st = prepare_exprs(a, e);
  /* So do the pattern's masks on the wide configs, whose S, P and O fill
  ** their register budget (ws_live_max): a frame window's per-thread row
  ** and column parts spilled 44 bytes at three consumer warpgroups,
  ** causal's 4 at 192-key steps. (Dense attention's text padding and
  ** ragged end keep the code it was measured with.) */
  a->lean = a->masked && !cg_attn_mask_free(s->pattern) && (a->warps == CG_WS3_WARPS || a->bn == 192);
  if (a->lean) a->mmode = CG_MASK_WARP;
  if (!st) st = mask_budget(a, e);
  if (!st) {
    if (a->ws) kernel_ws(a);
    else kernel(a);
    if (a->em.bad) st = cg_fail(e, a->em.err.status, "%s", a->em.err.msg);
  }
  if (!st && llvm_ir) *llvm_ir = cg_module_text(EM->mod);
  if (!st) st = cg_emit_ptx(EM->mod, s->arch, ptx, e);
  attn_free(a);
  if (st) {
    free(nm);
    return st;
  }
  *name = nm;
  return SIEVE_OK;
}
