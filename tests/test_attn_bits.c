/*
** How the attention kernels read partial-block bitmasks, on the CPU. The
** arithmetic of cg_attn_bits.h is emitted with constant operands, which
** LLVM's builder folds to constants, and driven the way a kernel drives
** it: every CTA, warp, lane and key step over packed tables, with key
** steps smaller than the table's key blocks, CTAs smaller than its query
** blocks, 16- and 32-row warps, text before and after with a run-time
** length, and ragged sequence ends. Every bit a lane ends with must equal
** the token mask, and a step the kernel leaves unmasked must be true
** everywhere.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_attn.h"
#include "cg_attn_bits.h"
#include "cg_attn_geom.h"  /* mma_warps */
#include "cg_ref.h"
#include "test_rand.h"

static cg_ref var(cg_pattern *p, cg_var v) { return cg_var_ref(p->g, v); }
static cg_ref bin(cg_pattern *p, cg_op op, cg_ref a, cg_ref b) { return cg_bin(p->g, op, a, b); }

static cg_ref near(cg_pattern *p, cg_var q, cg_var k, int r) {
  return bin(p, CG_LE, cg_un(p->g, CG_ABS, bin(p, CG_SUB, var(p, q), var(p, k))), cg_const(p->g, r));
}

/* A local 3-D window with text rows and columns (dilated's shape, without
** its grid), in identity layout for even heads and (trans) transposed for
** odd ones: partial blocks everywhere, in both layouts. The warp-specialised
** kernel (TMA loads) takes identity layouts only. */
static cg_pattern *make_pattern(int bq, int bk, int trans_odd) {
  cg_pattern *p = cg_pattern_new();
  p->name = "window3d";
  p->block_q = bq;
  p->block_k = bk;
  p->nclasses = p->period = 2;
  p->classes = cg_alloc(p->arena, sizeof(cg_class) * 2);
  p->head_class = cg_alloc(p->arena, sizeof(int) * 2);
  p->head_class[0] = 0;
  p->head_class[1] = 1;
  p->sel.kind = CG_SELECT_STATIC;
  cg_ref text = bin(p, CG_OR, var(p, CG_V_QTEXT), var(p, CG_V_KTEXT));
  cg_layout ident = {CG_LAYOUT_IDENTITY, {0, 0, 0}}, trans = {CG_LAYOUT_TRANSPOSE, {0, 0, 0}};
  for (int c = 0; c < 2; c++) {
    cg_ref w = bin(p, CG_AND, near(p, CG_V_QT, CG_V_KT, 1),
                   bin(p, CG_AND, near(p, CG_V_QY, CG_V_KY, 1 + c), near(p, CG_V_QX, CG_V_KX, 2 - c)));
    p->classes[c] = (cg_class){c ? "temporal" : "spatial", c && trans_odd ? trans : ident, bin(p, CG_OR, text, w)};
  }
  cg_err e = {0};
  if (cg_pattern_finish(p, &e)) fail_msg("%s", e.msg);
  return p;
}

/* ------------------------------------------------------- folded values */

static cg_em em;

static LLVMValueRef c32(int64_t v) { return cg_i32(&em, v); }

static int64_t folded(LLVMValueRef v) {
  if (!LLVMIsAConstantInt(v)) fail_msg("the bitmask arithmetic did not fold to a constant");
  return LLVMGetIntTypeWidth(LLVMTypeOf(v)) == 1 ? (int64_t)LLVMConstIntGetZExtValue(v) : LLVMConstIntGetSExtValue(v);
}

/* ---------------------------------------------------------------- check */

typedef struct kcase {
  cg_attn_config cfg;
  int tlen;             /* valid text tokens */
} kcase;

typedef struct truth {
  const uint8_t *m;     /* model-order mask, all text valid */
  const int32_t *idx;   /* layout position -> model token */
  int64_t S, t0, text, tlen;
} truth;

static int pad(const truth *t, int64_t tok) { return t->text && tok >= t->t0 + t->tlen && tok < t->t0 + t->text; }

static int allowed(const truth *t, int64_t q, int64_t k) {
  if (q >= t->S || k >= t->S) return 0;
  int64_t a = t->idx[q], b = t->idx[k];
  return t->m[a * t->S + b] && !pad(t, a) && !pad(t, b);
}

static int failures;

static void mismatch(const char *what, const cg_attn_config *c, int h, int64_t q, int64_t k, int got) {
  if (failures++ < 8)
    print_error("%s: cfg %d/%d/%d head %d query %lld key %lld: kernel %d, mask %d\n", what, c->block_m,
                c->block_n, c->warps, h, (long long)q, (long long)k, got, !got);
}

/* One head's table walked as the kernel walks it (cg_attn.c: setup,
** key_block, mask_prepare_bits, bits_words). */
static void walk_head(const cg_tableset *ts, const cg_table *t, const int32_t *tab, size_t ntab, const cg_bits_geom *g,
                      const kcase *kc, const truth *tr, int h) {
  const cg_attn_config *c = &kc->cfg;
  int mw = mma_warps(c), sub = g->bk / g->bn;
  const int32_t *rowptr = tab, *nfull = rowptr + t->nq + 1, *ent = nfull + t->nq;
  int64_t S = ts->seq;
  for (int64_t qblk = 0; qblk * c->block_m < S; qblk++) {
    int64_t q0 = qblk * c->block_m, tq = qblk / (g->bq / c->block_m);
    int64_t start = rowptr[tq], nblk = (rowptr[tq + 1] - start) * sub;
    for (int64_t j = 0; j < nblk; j++) {
      int64_t jt = j / sub, e = start + jt;
      int64_t kb = (int64_t)ent[2 * e] * sub + j % sub, k0 = kb * g->bn;
      int partial = jt >= nfull[tq];
      LLVMValueRef pv = LLVMConstInt(em.t_i1, (unsigned long long)partial, 0);
      if (!folded(cg_bits_need(&em, g, pv, c32(q0), c32(k0)))) {
        for (int64_t q = q0; q < q0 + c->block_m && q < S; q++)
          for (int64_t k = k0; k < k0 + g->bn; k++)
            if (!allowed(tr, q, k)) mismatch("unmasked step has a false pair", c, h, q, k, 1);
        continue;
      }
      int64_t bidx = partial ? ent[2 * e + 1] : -1;
      if (partial && bidx < 0) fail_msg("a partial block of a bitmask class has no bitmask");
      for (int w = 0; w < mw; w++) {
        int64_t row0 = q0 + (int64_t)w * g->rw;
        for (int lane = 0; lane < 32; lane++) {
          int64_t lr = folded(cg_bits_lane_row(&em, g, c32(lane)));
          int64_t qpos = row0 + lr, at = bidx >= 0 ? folded(cg_bits_word_at(&em, g, c32(bidx), c32(row0), c32(lr), c32(j))) : 0;
          if (lane < g->rw && lr != lane) fail_msg("lane %d loads row %lld; the shuffles read row l from lane l", lane, (long long)lr);
          if (qpos >= S) continue;
          for (int wi = 0; wi < g->bn / 32; wi++) {
            int64_t word = -1;
            if (bidx >= 0) {
              if (at + wi < 0 || (size_t)(at + wi) >= ntab) fail_msg("bitmask word %lld outside the table", (long long)(at + wi));
              word = tab[at + wi];
            }
            uint32_t bits = (uint32_t)folded(cg_bits_clear(&em, g, c32(word), wi, c32(qpos), c32(k0), c32(kc->tlen)));
            for (int b = 0; b < 32; b++) {
              int64_t k = k0 + 32 * wi + b;
              int got = (int)(bits >> b & 1);
              if (got != allowed(tr, qpos, k)) mismatch("bit", c, h, qpos, k, got);
            }
          }
        }
      }
    }
  }
}

static void check_case(cg_pattern *p, const sieve_shape *s, const kcase *kc) {
  cg_attn_spec spec = {p, *s, CG_BF16, cg_attn_config_ws(&kc->cfg) ? CG_SM90A : CG_SM80, kc->cfg, 3};
  cg_err e = {0};
  failures = 0;
  if (cg_attn_check(&spec, &e)) fail_msg("config %d/%d/%d: %s", kc->cfg.block_m, kc->cfg.block_n, kc->cfg.warps, e.msg);
  cg_tableset *ts;
  if (cg_tables_build_bits(p, s, 0, 0, 0, 3, &ts, &e)) fail_msg("tables: %s", e.msg);
  int32_t *buf, *off = malloc(sizeof(int32_t) * (size_t)s->heads);
  size_t n;
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_OK);
  sieve_shape sh;
  cg_shape_for(p, s, &sh);
  cg_bits_geom g = {&sh, ts->block_q, ts->block_k, kc->cfg.block_m, kc->cfg.block_n, kc->cfg.block_m / mma_warps(&kc->cfg), ts->seq};
  int64_t S = ts->seq;
  uint8_t *m = malloc((size_t)(S * S));
  for (int h = 0; h < s->heads; h++) {
    const cg_table *t = &ts->tables[ts->head_table[h]];
    if (cg_ref_mask(p, s, h, 0, 0, m, NULL, &e)) fail_msg("reference: %s", e.msg);
    cg_coords c;
    assert_int_equal(cg_layout_enum(&p->classes[t->cls].layout, &ts->shape, &c), 0);
    truth tr = {m, c.idx, S, sh.text_after ? (int64_t)sh.frames * sh.height * sh.width : 0, sh.text, kc->tlen};
    walk_head(ts, t, buf + off[h], n - (size_t)off[h], &g, kc, &tr, h);
    cg_coords_free(&c);
  }
  free(m);
  free(buf);
  free(off);
  cg_tables_free(ts);
  if (failures) fail_msg("%d wrong bits (T%dY%dX%d+%d%s, blocks %d/%d, tlen %d; SIEVE_SEED=%llu)", failures, s->frames,
                         s->height, s->width, s->text, s->text_after ? "a" : "", p->block_q, p->block_k, kc->tlen,
                         (unsigned long long)seed);
}

static int em_setup(void **st) {
  setup_seed(st);
  if (cg_em_init(&em, "bits")) return -1;
  cg_em_kernel(&em, "bits", NULL, NULL, 0, 128, 0);
  return 0;
}

static int em_teardown(void **st) {
  cg_em_dispose(&em);
  return 0;
}

/*
** The shape of the H200 failures (bench/RESULTS.md, 2026-12-03): 1240
** tokens with 40 text tokens after the video, 64-token blocks read in
** 32-key steps and 128-token ones in 32- and 64-key steps. The table's
** last key block holds the sequence's end in its first step; the next
** step starts past it, and a full block's all-ones bits must still lose
** every key there.
*/
static void failing_shape(void **st) {
  sieve_shape s = {1, 2, 128, 5, 12, 20, 40, 1};
  static const struct { int blk; kcase k; } cases[] = {
    {64, {{64, 32, 4, 2}, 40}}, {64, {{64, 32, 4, 2}, 17}}, {128, {{128, 64, 4, 2}, 40}}, {128, {{128, 32, 4, 2}, 40}},
    {128, {{128, 64, CG_WS_WARPS, 2}, 40}}, {64, {{64, 64, 4, 2}, 40}}, {128, {{128, 128, 8, 2}, 3}},
    {64, {{64, 64, CG_WS1_WARPS, 2}, 40}}, {128, {{64, 128, CG_WS1_WARPS, 2}, 17}},
    /* 384-token blocks in the wide configs' steps: the end 88 keys into
    ** the last block, whole steps past it */
    {384, {{192, 128, CG_WS3_WARPS, 2}, 40}}, {384, {{128, 192, CG_WS_WARPS, 2}, 17}}, {384, {{192, 64, CG_WS3_WARPS, 2}, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    cg_pattern *p = make_pattern(cases[i].blk, cases[i].blk, !cg_attn_config_ws(&cases[i].k.cfg));
    s.head_dim = cases[i].blk == 384 ? 64 : 128;  /* three warpgroups hold 128-key steps at D64 only */
    check_case(p, &s, &cases[i].k);
    cg_pattern_free(p);
  }
}

/* Random shapes, blocks, configs and text lengths. */
static void random_cases(void **st) {
  static const cg_attn_config cfgs[] = {
    {64, 32, 4, 2}, {64, 64, 4, 2}, {64, 128, 4, 2}, {128, 32, 4, 2}, {128, 64, 4, 2}, {128, 32, 8, 2},
    {128, 64, 8, 2}, {128, 128, 8, 2}, {128, 64, CG_WS_WARPS, 2}, {128, 128, CG_WS_WARPS, 2},
    {192, 128, CG_WS3_WARPS, 2}, {192, 64, CG_WS3_WARPS, 2}, {128, 192, CG_WS_WARPS, 2},
    {64, 64, CG_WS1_WARPS, 2}, {64, 128, CG_WS1_WARPS, 2}, {64, 192, CG_WS1_WARPS, 2},
  };
  static const int blocks[] = {64, 128, 192, 384};
  for (int round = 0; round < 40; round++) {
    int bq = blocks[rnd() % 4], bk = blocks[rnd() % 4];
    kcase k;
    do k.cfg = cfgs[rnd() % (sizeof cfgs / sizeof *cfgs)];
    while (bq % k.cfg.block_m || bk % k.cfg.block_n);
    sieve_shape s = {1, 2, 64, (int)rint_in(1, 4), (int)rint_in(2, 9), (int)rint_in(2, 11), (int)rint_in(0, 1) * (int)rint_in(1, 70),
                     (int)rint_in(0, 1)};
    k.tlen = (int)rint_in(0, s.text);
    cg_pattern *p = make_pattern(bq, bk, !cg_attn_config_ws(&k.cfg));
    check_case(p, &s, &k);
    cg_pattern_free(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(failing_shape),
    cmocka_unit_test(random_cases),
  };
  return cmocka_run_group_tests(tests, em_setup, em_teardown);
}
