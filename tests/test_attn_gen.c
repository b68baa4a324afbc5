/*
** The attention generator on the CPU: config checks, kernels for a grid of
** configs x dtypes x head dims x targets for a dense pattern, a masked one
** and one with a transposed layout (the PTX names the entry and holds the
** tensor-core, ldmatrix and cp.async instructions), and the expression
** lowering against the IR's scalar evaluator.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_attn.h"
#include "cg_lower.h"
#include "test_rand.h"

/* ------------------------------------------------------------ patterns */

enum { PAT_DENSE, PAT_WINDOW, PAT_SVG, NPAT };

static cg_ref var(cg_pattern *p, cg_var v) { return cg_var_ref(p->g, v); }
static cg_ref bin(cg_pattern *p, cg_op op, cg_ref a, cg_ref b) { return cg_bin(p->g, op, a, b); }

/* dense; a +-1 frame window with text rows and columns; SVG's two head
** classes: spatial (same frame, model order) and temporal (same y, x,
** transposed layout). */
static cg_pattern *make_pattern(int kind) {
  static const char *names[] = {"dense", "window", "svg"};
  cg_pattern *p = cg_pattern_new();
  p->name = names[kind];
  p->block_q = p->block_k = 128;
  p->nclasses = p->period = kind == PAT_SVG ? 2 : 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class) * 2);
  p->head_class = cg_alloc(p->arena, sizeof(int) * 2);
  p->head_class[1] = 1;
  p->sel.kind = CG_SELECT_STATIC;
  cg_ref text = bin(p, CG_OR, var(p, CG_V_QTEXT), var(p, CG_V_KTEXT));
  cg_layout ident = {CG_LAYOUT_IDENTITY, {0, 0, 0}}, trans = {CG_LAYOUT_TRANSPOSE, {0, 0, 0}};
  if (kind == PAT_DENSE) {
    p->classes[0] = (cg_class){"dense", ident, cg_bool(p->g, 1)};
  } else if (kind == PAT_WINDOW) {
    cg_ref dt = cg_un(p->g, CG_ABS, bin(p, CG_SUB, var(p, CG_V_QT), var(p, CG_V_KT)));
    p->classes[0] = (cg_class){"window", ident, bin(p, CG_OR, text, bin(p, CG_LE, dt, cg_const(p->g, 1)))};
  } else {
    cg_ref same_t = bin(p, CG_EQ, var(p, CG_V_QT), var(p, CG_V_KT));
    cg_ref same_yx = bin(p, CG_AND, bin(p, CG_EQ, var(p, CG_V_QY), var(p, CG_V_KY)),
                         bin(p, CG_EQ, var(p, CG_V_QX), var(p, CG_V_KX)));
    p->classes[0] = (cg_class){"spatial", ident, bin(p, CG_OR, text, same_t)};
    p->classes[1] = (cg_class){"temporal", trans, bin(p, CG_OR, text, same_yx)};
  }
  cg_err e = {0};
  if (cg_pattern_finish(p, &e)) fail_msg("%s", e.msg);
  return p;
}

static cg_attn_spec spec_for(cg_pattern *p, int d) {
  cg_attn_spec s = {0};
  s.pattern = p;
  /* 7 text tokens + 5 x 9 x 15: ragged against every block size */
  s.shape = (sieve_shape){1, 4, d, 5, 9, 15, 7, 0};
  s.dtype = CG_BF16;
  s.arch = CG_SM80;
  s.cfg = cg_attn_default_config(&s);
  return s;
}

/* --------------------------------------------------------------- checks */

static void expect_reject(cg_attn_spec s, cg_attn_config c, const char *words) {
  cg_err e = {0};
  s.cfg = c;
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_ERR_ARG);
  if (!strstr(e.msg, words)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, words);
}

static void config_checks(void **st) {
  cg_pattern *p = make_pattern(PAT_DENSE);
  cg_attn_spec s = spec_for(p, 128);
  cg_err e = {0};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  assert_int_equal(s.cfg.block_m % (16 * s.cfg.warps), 0);
  /* 8 warps over 64 rows: a producer and one consumer warpgroup */
  expect_reject(s, (cg_attn_config){64, 64, 8, 2}, "need sm_90a");
  expect_reject(s, (cg_attn_config){96, 64, 4, 2}, "block_m");
  expect_reject(s, (cg_attn_config){128, 48, 4, 2}, "block_n");
  expect_reject(s, (cg_attn_config){128, 64, 2, 2}, "warps");
  expect_reject(s, (cg_attn_config){128, 64, 4, 4}, "stages");
  expect_reject(s, (cg_attn_config){128, 128, 4, 2}, "registers");
  expect_reject(s, (cg_attn_config){128, 128, 12, 2}, "need sm_90a");
  /* 128 + 3 x 2 x 128 rows of 256 bytes is 224 KiB: the largest that fits */
  s.cfg = (cg_attn_config){128, 128, 8, 3};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  assert_int_equal(cg_attn_smem_bytes(&s), 229376);
  p->block_q = 64;
  expect_reject(s, (cg_attn_config){128, 64, 4, 2}, "divide");
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 64);
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  cg_pattern_free(p);
}

/*
** 64-token query blocks on sm_90a: the default merges three into the
** warp-specialised kernel's 192 rows (tables at 192-token query blocks,
** cg_attn_table_q); an explicit 12- or 16-warp config on them merges too,
** one of 4 or 8 warps does not, nor a pattern whose blocks a search picks:
** those take one consumer warpgroup of 64 rows, as do the blocks under
** SIEVE_MERGE_ROWS=0; SIEVE_WS1=0 keeps the 4-warp kernel.
*/
static void merged_rows(void **st) {
  cg_pattern *p = make_pattern(PAT_WINDOW);
  p->block_q = p->block_k = 64;
  cg_attn_spec s = spec_for(p, 128);
  cg_err e = {0};
  assert_int_equal(cg_attn_table_q(&s), 64);
  s.arch = CG_SM90A;
  /* A frame window keeps its predicate by cost: two blocks merged, 12 warps */
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 128);
  assert_int_equal(s.cfg.warps, CG_WS_WARPS);
  /* with bitmasks three, in three consumer warpgroups */
  setenv("SIEVE_PARTIAL", "bitmask", 1);
  s.cfg = cg_attn_default_config(&s);
  unsetenv("SIEVE_PARTIAL");
  assert_int_equal(s.cfg.block_m, 192);
  assert_int_equal(s.cfg.block_n, 64);
  assert_int_equal(s.cfg.warps, CG_WS3_WARPS);
  assert_int_equal(cg_attn_table_q(&s), 192);
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  s.cfg = (cg_attn_config){128, 64, CG_WS_WARPS, 2};
  assert_int_equal(cg_attn_table_q(&s), 128);
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  /* 128-token key blocks keep 64-key steps: 128 would not fit 16 warps' registers at D = 128 */
  p->block_k = 128;
  setenv("SIEVE_PARTIAL", "bitmask", 1);
  s.cfg = cg_attn_default_config(&s);
  unsetenv("SIEVE_PARTIAL");
  assert_int_equal(s.cfg.warps, CG_WS3_WARPS);
  assert_int_equal(s.cfg.block_n, 64);
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  p->block_k = 64;
  expect_reject(s, (cg_attn_config){128, 64, 8, 2}, "divide");
  s.arch = CG_SM80;
  expect_reject(s, (cg_attn_config){128, 64, 12, 2}, "sm_90a");
  s.arch = CG_SM90A;
  setenv("SIEVE_MERGE_ROWS", "0", 1);
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 64);
  assert_int_equal(s.cfg.warps, CG_WS1_WARPS);
  assert_int_equal(cg_attn_table_q(&s), 64);
  setenv("SIEVE_WS1", "0", 1);
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.warps, 4);
  unsetenv("SIEVE_WS1");
  unsetenv("SIEVE_MERGE_ROWS");
  p->sel.kind = CG_SELECT_LSE_SEARCH;
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 64);
  assert_int_equal(s.cfg.warps, CG_WS1_WARPS);
  s.cfg = (cg_attn_config){128, 64, CG_WS_WARPS, 2};
  assert_int_equal(cg_attn_table_q(&s), 64);
  expect_reject(s, s.cfg, "divide");
  p->sel.kind = CG_SELECT_STATIC;
  /* The kernel reads the merged tables: it builds, and a bitmask kernel
  ** reads its table entries a step ahead unless told not to. */
  s.cfg = (cg_attn_config){128, 64, CG_WS_WARPS, 2};
  s.bits = 1;
  assert_true(cg_attn_bits_ahead(&s));
  char *ptx = NULL, *name = NULL;
  assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
  assert_null(strstr(name, "_nb"));
  free(ptx);
  free(name);
  setenv("SIEVE_BITS_AHEAD", "0", 1);
  assert_false(cg_attn_bits_ahead(&s));
  assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
  assert_non_null(strstr(name, "_nb"));
  free(ptx);
  free(name);
  unsetenv("SIEVE_BITS_AHEAD");
  cg_pattern_free(p);
}

/* The most f32 multiplies between the commit of S (N = the key step n)
** and the fence of P V (N = head_dim d) issued right after it: O's
** rescale when it runs under S's product. */
static int muls_under_s(const char *ptx, int n, int d) {
  char s_shape[32], pv_shape[32];
  snprintf(s_shape, sizeof s_shape, ".m64n%dk16.", n);
  snprintf(pv_shape, sizeof pv_shape, ".m64n%dk16.", d);
  int most = 0;
  for (const char *q = ptx; (q = strstr(q, "wgmma.mma_async")); q++) {
    const char *eol = strchr(q, '\n'), *shape = strstr(q, s_shape);
    const char *commit = strstr(q, "wgmma.commit_group"), *fence = commit ? strstr(commit, "wgmma.fence") : NULL;
    const char *next = fence ? strstr(fence, "wgmma.mma_async") : NULL;
    if (!eol || !shape || shape > eol || !next) continue;
    const char *later = strstr(q + 1, "wgmma.mma_async");
    if (later != next) continue;  /* not S's last slice */
    shape = strstr(next, pv_shape);
    if (!shape || shape > strchr(next, '\n')) continue;
    int k = 0;
    for (const char *m = commit; (m = strstr(m, "mul.rn.f32")) && m < fence; m++) k++;
    if (k > most) most = k;
  }
  return most;
}

/* A kernel of the config on p at blocks bq x bk and head dim d: its
** rescale is under S's product (O's head_dim / 2 multiplies a thread
** between S's commit and P V's fence) or not (none there), as `under`
** says, and its name says so where the switch moved it. */
static void rescale_case(cg_pattern *p, int bq, int bk, int d, cg_attn_config cfg, int under, int moved) {
  cg_err e = {0};
  char *ptx, *name;
  p->block_q = bq;
  p->block_k = bk;
  cg_attn_spec s = spec_for(p, d);
  s.arch = CG_SM90A;
  s.cfg = cfg;
  assert_int_equal(cg_attn_rescale_under_s(&s), under);
  assert_int_equal(cg_attn_rescale_moved(&s), moved);
  assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
  if (under) assert_true(muls_under_s(ptx, cfg.block_n, d) >= d / 2);
  else assert_int_equal(muls_under_s(ptx, cfg.block_n, d), 0);
  assert_int_equal(strstr(name, "_rs") != NULL, moved && under);
  assert_int_equal(strstr(name, "_rv") != NULL, moved && !under);
  free(ptx);
  free(name);
}

/* With one or two consumer warpgroups, O (64 rows x head_dim a warpgroup)
** is rescaled under S's product, between S's issue and P V's; with three,
** after P V's wait. SIEVE_RESCALE_UNDER_S moves it either way, and names
** the kernel for it. */
static void rescale_under_s(void **st) {
  static const char *env[] = {NULL, "1", "0"};
  cg_pattern *p = make_pattern(PAT_WINDOW);
  for (int i = 0; i < 3; i++) {
    if (env[i]) setenv("SIEVE_RESCALE_UNDER_S", env[i], 1);
    /* two consumer warpgroups, D128, 192-key steps */
    rescale_case(p, 128, 384, 128, (cg_attn_config){128, 192, CG_WS_WARPS, 2}, i != 2, i == 2);
    /* three, D64, 64-token rows merged */
    rescale_case(p, 64, 128, 64, (cg_attn_config){192, 128, CG_WS3_WARPS, 2}, i == 1, i == 1);
    /* not the warp-specialised kernel: no such choice */
    cg_attn_spec s = spec_for(p, 64);
    s.cfg = (cg_attn_config){128, 64, 8, 2};
    assert_false(cg_attn_rescale_under_s(&s));
    assert_false(cg_attn_rescale_moved(&s));
  }
  unsetenv("SIEVE_RESCALE_UNDER_S");
  cg_pattern_free(p);
  (void)st;
}

/* Every warp-specialised kernel (two and three consumer warpgroups, one,
** the persistent grid) prefetches its three tensor maps before its first
** copy reads them. */
static void tensor_maps_prefetched(void **st) {
  static const cg_attn_config cfgs[] = {
    {128, 192, CG_WS_WARPS, 2}, {192, 128, CG_WS3_WARPS, 2}, {64, 128, CG_WS1_WARPS, 2}, {128, 192, CG_WS_WARPS, 2, 1},
  };
  cg_pattern *p = make_pattern(PAT_WINDOW);
  p->block_q = 64;
  p->block_k = 384;
  for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
    cg_attn_spec s = spec_for(p, cfgs[i].warps == CG_WS3_WARPS ? 64 : 128);
    s.arch = CG_SM90A;
    s.cfg = cfgs[i];
    cg_err e = {0};
    char *ptx, *name;
    assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
    const char *first = strstr(ptx, "cp.async.bulk.tensor");
    assert_non_null(first);
    int n = 0;
    for (const char *q = ptx; (q = strstr(q, "prefetch.param.tensormap")) && q < first; q++) n++;
    if (n != 3) fail_msg("config %zu (%s): %d tensor maps prefetched before the first copy", i, name, n);
    free(ptx);
    free(name);
  }
  cg_pattern_free(p);
  (void)st;
}

/*
** The consumers' warpgroup index is lane 0's, broadcast (uniform wgmma
** descriptors), in every warp-specialised kernel but those with bitmasks
** beside text at D = 128 and P in registers (this pattern's 128-token
** blocks: 128/128/12/2), where ptxas spilled; sm_80 kernels have none.
*/
static void warpgroup_index_broadcast(void **st) {
  static const struct { int d, text, bits, arch, want; } cases[] = {
    {128, 0, 1, CG_SM90A, 1}, {128, 7, 0, CG_SM90A, 1}, {64, 7, 1, CG_SM90A, 1},
    {128, 7, 1, CG_SM90A, 0}, {128, 0, 0, CG_SM80, 0},
  };
  cg_pattern *p = make_pattern(PAT_WINDOW);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    cg_attn_spec s = spec_for(p, cases[i].d);
    s.shape.text = cases[i].text;
    s.arch = cases[i].arch;
    s.cfg = cg_attn_default_config(&s);
    setenv("SIEVE_PARTIAL", cases[i].bits ? "bitmask" : "predicate", 1);
    s.bits = cg_attn_bits(&s);
    assert_int_equal(!!s.bits, cases[i].bits);
    cg_err e = {0};
    char *ptx, *name;
    assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
    int lane0 = 0;
    for (const char *q = ptx; (q = strstr(q, "shfl.sync.idx.b32")); q++) {
      const char *eol = strchr(q, '\n'), *at = strstr(q, ", 0, 31, -1;");
      lane0 += at && eol && at < eol;
    }
    if ((lane0 > 0) != cases[i].want)
      fail_msg("case %zu (%s): broadcast %s", i, name, cases[i].want ? "missing" : "where it spills");
    free(ptx);
    free(name);
  }
  unsetenv("SIEVE_PARTIAL");
  cg_pattern_free(p);
  (void)st;
}

/*
** Tables at the kernel's tile: a static pattern in identity layouts that
** declares no blocks reads tables of the config's tile (the smallest
** multiple of block_m, block_n of at least 128), so every config is valid
** for it and its sm_90a default is the wide config, 192/128/16/2 at either
** head dim, with bitmasks; declared blocks, other layouts and dynamic
** selections keep theirs (or 128); sm_80 keeps 128-token tables.
*/
static void tables_at_the_tile(void **st) {
  cg_pattern *p = make_pattern(PAT_WINDOW);
  p->block_q = p->block_k = 0;
  cg_attn_spec s = spec_for(p, 64);
  cg_err e = {0};
  int bq, bk;
  s.arch = CG_SM90A;
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 192);
  assert_int_equal(s.cfg.block_n, 128);
  assert_int_equal(s.cfg.warps, CG_WS3_WARPS);
  assert_int_equal(cg_attn_bits(&s), 1);
  cg_attn_table_blocks(&s, &bq, &bk);
  assert_int_equal(bq, 192);
  assert_int_equal(bk, 128);
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  s = spec_for(p, 128);
  s.arch = CG_SM90A;
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 192);
  assert_int_equal(s.cfg.block_n, 128);
  assert_int_equal(cg_attn_bits(&s), 1);
  cg_attn_table_blocks(&s, &bq, &bk);
  assert_int_equal(bq, 192);
  assert_int_equal(bk, 128);
  /* smaller tiles keep 128-token tables; 64 rows on 4 warps too */
  static const struct { cg_attn_config c; int bq, bk; } tiles[] = {
    {{64, 32, 4, 2}, 128, 128}, {{128, 64, 12, 2}, 128, 128}, {{192, 64, 16, 3}, 192, 128}, {{128, 192, 12, 3}, 128, 192},
  };
  for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
    s.cfg = tiles[i].c;
    cg_attn_table_blocks(&s, &bq, &bk);
    assert_int_equal(bq, tiles[i].bq);
    assert_int_equal(bk, tiles[i].bk);
  }
  /* sm_80: the defaults and their tables as before */
  s.arch = CG_SM80;
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.warps, 4);
  cg_attn_table_blocks(&s, &bq, &bk);
  assert_int_equal(bq, 128);
  assert_int_equal(bk, 128);
  /* declared blocks are the pattern's: 192 rows do not divide 128 */
  p->block_q = p->block_k = 128;
  s.arch = CG_SM90A;
  s.cfg = (cg_attn_config){192, 128, CG_WS3_WARPS, 2};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_ERR_ARG);
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.block_m, 128);
  assert_int_equal(s.cfg.block_n, 128);
  /* a dynamic selection's tables are the search's: 128 */
  p->block_q = p->block_k = 0;
  p->sel.kind = CG_SELECT_LSE_SEARCH;
  s.cfg = (cg_attn_config){192, 128, CG_WS3_WARPS, 2};
  cg_attn_table_blocks(&s, &bq, &bk);
  assert_int_equal(bq, 128);
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_ERR_ARG);
  cg_pattern_free(p);
  /* other layouts: 128 */
  p = make_pattern(PAT_SVG);
  p->block_q = p->block_k = 0;
  s = spec_for(p, 64);
  s.arch = CG_SM90A;
  s.cfg = (cg_attn_config){128, 192, CG_WS_WARPS, 2};
  cg_attn_table_blocks(&s, &bq, &bk);
  assert_int_equal(bk, 128);
  cg_pattern_free(p);
  /* dense attention keeps its kernel: no bitmasks on the wide configs */
  p = make_pattern(PAT_DENSE);
  p->block_q = p->block_k = 384;
  s = spec_for(p, 64);
  s.arch = CG_SM90A;
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(s.cfg.warps, CG_WS3_WARPS);
  assert_int_equal(cg_attn_bits(&s), 0);
  cg_pattern_free(p);
}

/* A view of a pattern at other table blocks: its own IR text names them. */
static void blocks_view(void **st) {
  cg_pattern *p = make_pattern(PAT_WINDOW);
  p->block_q = p->block_k = 0;
  cg_err e = {0};
  assert_int_equal(cg_pattern_finish(p, &e), SIEVE_OK);
  cg_pattern *v = cg_pattern_with_blocks(p, 192, 128, &e);
  assert_non_null(v);
  assert_int_equal(v->block_q, 192);
  assert_int_equal(v->block_k, 128);
  assert_ptr_equal(v->g, p->g);
  assert_non_null(strstr(v->ir_text, "block q=192 k=128"));
  assert_non_null(strstr(p->ir_text, "block q=0 k=0"));
  assert_true(v->ir_hash != p->ir_hash);
  cg_pattern_view_free(v);
  cg_pattern_free(p);
}

/* Bitmasks in every kernel, mma.sync and wgmma alike: SIEVE_PARTIAL=bitmask
** gives every class one, =auto the cost's choice, the same on both targets. */
static void bits_in_every_kernel(void **st) {
  cg_pattern *p = make_pattern(PAT_WINDOW);
  cg_attn_spec s = spec_for(p, 128);
  cg_err e = {0};
  setenv("SIEVE_PARTIAL", "bitmask", 1);
  s.bits = cg_attn_bits(&s);
  assert_int_equal(s.bits, 1);
  static const cg_attn_config sm80[] = {{128, 32, 4, 2}, {64, 32, 4, 2}, {128, 64, 4, 2}, {128, 64, 8, 2}};
  for (size_t i = 0; i < sizeof sm80 / sizeof *sm80; i++) {
    s.cfg = sm80[i];
    assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  }
  s.arch = CG_SM90A;
  s.cfg = (cg_attn_config){128, 64, 4, 2};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  s.cfg = (cg_attn_config){128, 128, 12, 2};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  setenv("SIEVE_PARTIAL", "auto", 1);
  uint32_t cost = cg_attn_bits(&s);
  s.arch = CG_SM80;
  s.cfg = cg_attn_default_config(&s);
  assert_int_equal(cg_attn_bits(&s), cost);
  /* auto is the default; =predicate keeps every class on its predicate */
  assert_int_equal(cg_bits_mode_env(), CG_BITS_COST);
  unsetenv("SIEVE_PARTIAL");
  assert_int_equal(cg_bits_mode_env(), CG_BITS_COST);
  assert_int_equal(cg_attn_bits(&s), cost);
  setenv("SIEVE_PARTIAL", "predicate", 1);
  assert_int_equal(cg_bits_mode_env(), CG_BITS_NEVER);
  assert_int_equal(cg_attn_bits(&s), 0);
  setenv("SIEVE_PARTIAL", "bitmask:1", 1);
  assert_int_equal(cg_bits_mode_env(), CG_BITS_ALWAYS);
  unsetenv("SIEVE_PARTIAL");
  cg_pattern_free(p);
}

/* ---------------------------------------------------------------- grid */

static void expect_in(const char *ptx, const char *what) {
  if (!strstr(ptx, what)) fail_msg("PTX lacks \"%s\"", what);
}

static void build_one(cg_pattern *p, int d, cg_dtype dt, cg_arch arch, cg_attn_config c) {
  cg_attn_spec s = spec_for(p, d);
  s.dtype = dt;
  s.arch = arch;
  if (c.block_m) s.cfg = c;
  char *ptx = NULL, *name = NULL;
  cg_err e = {0};
  if (cg_attn_build(&s, &ptx, &name, NULL, &e))
    fail_msg("%s d%d %s %s m%dn%dw%ds%d: %s", p->name, d, dt == CG_FP16 ? "fp16" : "bf16", cg_arch_name(arch),
             s.cfg.block_m, s.cfg.block_n, s.cfg.warps, s.cfg.stages, e.msg);
  char entry[256], target[64];
  snprintf(entry, sizeof entry, ".entry %s(", name);
  snprintf(target, sizeof target, ".target %s", cg_arch_name(arch));
  expect_in(ptx, entry);
  expect_in(ptx, target);
  if (arch == CG_SM90A && s.cfg.block_m / s.cfg.warps == 16) {
    /* wgmma for both products: S from shared Q, K; O from P in registers. */
    expect_in(ptx, dt == CG_FP16 ? "wgmma.mma_async.sync.aligned.m64n" : "wgmma.mma_async.sync.aligned.m64n");
    expect_in(ptx, dt == CG_FP16 ? "k16.f32.f16.f16" : "k16.f32.bf16.bf16");
    expect_in(ptx, "wgmma.wait_group.sync.aligned 0");
    expect_in(ptx, "fence.proxy.async.shared::cta");
    if (strstr(ptx, "mma.sync.aligned") || strstr(ptx, "ldmatrix")) fail_msg("%s: mma.sync left in a wgmma kernel", name);
  } else {
    expect_in(ptx, dt == CG_FP16 ? "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"
                                 : "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
    expect_in(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16");
    expect_in(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16");
  }
  expect_in(ptx, "cp.async.cg.shared.global");
  expect_in(ptx, "cp.async.wait_group");
  expect_in(ptx, "ex2.approx");
  if (strstr(ptx, ".local")) fail_msg("%s: the kernel uses local memory before ptxas", name);
  free(ptx);
  free(name);
}

/*
** One consumer warpgroup (8 warps over 64 rows, sm_90a): the TMA kernel
** compiled for two CTAs a multiprocessor with 24 + 232 registers after
** the split at D = 128, three with 24 + 136 at D = 64 (64-key steps), and
** no turns to take (no named barrier but the CTA's); on 64-token query
** blocks a search picks. It runs a CTA per tile only.
*/
static void one_consumer(void **st) {
  cg_pattern *p = make_pattern(PAT_WINDOW);
  p->block_q = p->block_k = 64;
  p->sel.kind = CG_SELECT_LSE_SEARCH;
  for (int d = 64; d <= 128; d *= 2) {
    cg_attn_spec s = spec_for(p, d);
    s.arch = CG_SM90A;
    s.cfg = (cg_attn_config){64, 64, CG_WS1_WARPS, 2};
    cg_err e = {0};
    assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
    assert_true(cg_attn_uses_tma(&s));
    assert_int_equal(cg_attn_table_q(&s), 64);
    char *ptx = NULL, *name = NULL;
    if (cg_attn_build(&s, &ptx, &name, NULL, &e)) fail_msg("d%d: %s", d, e.msg);
    expect_in(ptx, ".maxntid 256");
    expect_in(ptx, d == 64 ? ".minnctapersm 3" : ".minnctapersm 2");
    expect_in(ptx, "setmaxnreg.dec.sync.aligned.u32 \t24");
    expect_in(ptx, d == 64 ? "setmaxnreg.inc.sync.aligned.u32 \t136" : "setmaxnreg.inc.sync.aligned.u32 \t232");
    if (strstr(ptx, "bar.arrive") || strstr(ptx, "bar.sync \t1") || strstr(ptx, "bar.sync \t2"))
      fail_msg("d%d: a named barrier in a kernel of one consumer warpgroup", d);
    free(ptx);
    free(name);
    expect_reject(s, (cg_attn_config){64, 64, CG_WS1_WARPS, 2, CG_SCHED_STATIC}, "12 or 16 warps");
  }
  cg_pattern_free(p);
}

/*
** Where S, P and O outgrow the consumers' registers but S and O fit, P
** goes through shared memory (ws_p_shared): three consumer warpgroups
** with 192-key steps at D = 64 store it by stmatrix, meet a warp at a
** time, and read it by descriptor (no A registers in
** the P V product); shared memory counts its three 64 x 192 tiles. The
** configs whose P fits keep it in registers, and 192-key steps at D = 128
** on three warpgroups still do not fit (S and O alone are 160 registers).
*/
static void p_through_shared(void **st) {
  cg_pattern *p = make_pattern(PAT_DENSE);
  p->block_q = p->block_k = 384;  /* dense's own blocks: a multiple of every tile */
  cg_attn_spec s = spec_for(p, 64);
  s.arch = CG_SM90A;
  s.cfg = (cg_attn_config){192, 192, CG_WS3_WARPS, 2};
  cg_err e = {0};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  assert_int_equal(cg_attn_smem_bytes(&s), 192 * 64 * 2 + 2 * 2 * 192 * 64 * 2 + 256 + 3 * 64 * 192 * 2);
  char *ptx = NULL, *name = NULL;
  if (cg_attn_build(&s, &ptx, &name, NULL, &e)) fail_msg("%s", e.msg);
  expect_in(ptx, "stmatrix.sync.aligned.m8n8.x4.shared.b16");
  expect_in(ptx, "bar.warp.sync");
  /* the P V product: both operands by descriptor, B transposed */
  expect_in(ptx, "p, 1, 1, 0, 1;");
  free(ptx);
  free(name);
  s.cfg = (cg_attn_config){192, 128, CG_WS3_WARPS, 2};
  if (cg_attn_build(&s, &ptx, &name, NULL, &e)) fail_msg("%s", e.msg);
  if (strstr(ptx, "stmatrix")) fail_msg("%s: P in shared memory where it fits registers", name);
  free(ptx);
  free(name);
  s.shape.head_dim = 128;
  expect_reject(s, (cg_attn_config){192, 192, CG_WS3_WARPS, 2}, "S and O");
  cg_pattern_free(p);
}

static void kernel_grid(void **st) {
  static const cg_attn_config cfgs[] = {
    {0, 0, 0, 0}, {128, 32, 4, 2}, {128, 64, 8, 2}, {64, 64, 4, 1}, {128, 128, 8, 3},
  };
  int n = 0;
  for (int k = 0; k < NPAT; k++) {
    cg_pattern *p = make_pattern(k);
    for (int d = 64; d <= 128; d *= 2)
      for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++, n++)
        build_one(p, d, n % 2 ? CG_FP16 : CG_BF16, (n / 2) % 2 ? CG_SM90A : CG_SM80, cfgs[c]);
    /* every dtype x target pairing at the default config */
    for (int v = 0; v < 4; v++) build_one(p, 128, v & 1 ? CG_FP16 : CG_BF16, v & 2 ? CG_SM90A : CG_SM80, cfgs[0]);
    cg_pattern_free(p);
  }
}

/*
** Segments (cg_attn_spec.segs): only the warp-specialised kernel of a
** pattern that allows every pair in the identity layout writes them, each
** refusal names why; the kernel takes one more parameter, `segs`, after
** the persistent grid's, stores each step's segments with a predicated
** store and takes their logarithms; its name says so, and a sequence
** whose segments pass 32-bit offsets is refused.
*/
static void segments(void **st) {
  cg_pattern *d = make_pattern(PAT_DENSE), *w = make_pattern(PAT_WINDOW), *v = make_pattern(PAT_SVG);
  cg_attn_spec s = spec_for(d, 128);
  s.arch = CG_SM90A;
  s.cfg = cg_attn_default_config(&s);
  s.segs = 1;
  cg_err e = {0};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_OK);
  expect_reject(s, (cg_attn_config){128, 64, 8, 2}, "warp-specialised");
  cg_attn_spec m = s;
  m.pattern = w;
  expect_reject(m, s.cfg, "every pair");
  m.pattern = v;
  expect_reject(m, s.cfg, "every pair");
  char *ptx = NULL, *name = NULL;
  assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
  assert_non_null(strstr(name, "_seg"));
  expect_in(ptx, "_param_30");  /* q .. ctr are 0 .. 29 */
  assert_null(strstr(ptx, "_param_31"));
  expect_in(ptx, "@p st.global.f32");
  expect_in(ptx, "lg2.approx");
  free(ptx);
  free(name);
  s.segs = 0;
  assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_OK);
  assert_null(strstr(name, "_seg"));
  assert_null(strstr(ptx, "@p st.global.f32"));
  free(ptx);
  free(name);
  /* ceil(S / 64) S past 2^32 - 1: 524,288 tokens */
  s.segs = 1;
  s.shape = (sieve_shape){1, 4, 128, 64, 64, 128, 0, 0};
  assert_int_equal(cg_attn_check(&s, &e), SIEVE_ERR_SHAPE);
  if (!strstr(e.msg, "32-bit")) fail_msg("message \"%s\" lacks \"32-bit\"", e.msg);
  cg_pattern_free(d);
  cg_pattern_free(w);
  cg_pattern_free(v);
}

/* The dense identity kernel carries no layout or mask arithmetic: no
** signed division (floor fixups) anywhere in it. */
static void dense_is_plain(void **st) {
  cg_pattern *p = make_pattern(PAT_DENSE);
  cg_attn_spec s = spec_for(p, 128);
  char *ptx, *name, *ir;
  cg_err e = {0};
  assert_int_equal(cg_attn_build(&s, &ptx, &name, &ir, &e), SIEVE_OK);
  assert_null(strstr(ir, "sdiv"));
  assert_null(strstr(ir, "srem"));
  free(ptx);
  free(name);
  free(ir);
  cg_pattern_free(p);
}

/* A union of 1,350 distinct per-element terms, within the graph limits,
** took 130 s to compile; the mask budget refuses it before LLVM runs,
** while the window (a few nodes a pair) compiles. */
static void mask_budget(void **st) {
  cg_pattern *p = cg_pattern_new();
  p->name = "wide";
  p->block_q = p->block_k = 128;
  p->nclasses = p->period = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  p->head_class = cg_alloc(p->arena, sizeof(int));
  p->sel.kind = CG_SELECT_STATIC;
  cg_ref t[1350];
  int n = 1350;
  for (int i = 0; i < n; i++) {
    cg_ref a = bin(p, CG_ADD, bin(p, CG_MUL, var(p, CG_V_QX), cg_const(p->g, i + 1)), var(p, CG_V_KY));
    t[i] = bin(p, CG_LT, bin(p, CG_MOD, a, cg_const(p->g, 97)), bin(p, CG_ADD, var(p, CG_V_KX), cg_const(p->g, i % 13)));
  }
  for (; n > 1; n = (n + 1) / 2)
    for (int i = 0; i < n; i += 2) t[i / 2] = i + 1 < n ? bin(p, CG_OR, t[i], t[i + 1]) : t[i];
  cg_layout ident = {CG_LAYOUT_IDENTITY, {0, 0, 0}};
  p->classes[0] = (cg_class){"wide", ident, t[0]};
  cg_err e = {0};
  if (cg_pattern_finish(p, &e)) fail_msg("%s", e.msg);
  char *ptx = NULL, *name = NULL;
  for (int arch = CG_SM80; arch <= CG_SM90A; arch++) {
    cg_attn_spec s = spec_for(p, 128);
    s.arch = (cg_arch)arch;
    s.cfg = cg_attn_default_config(&s);
    e = (cg_err){0};
    assert_int_equal(cg_attn_build(&s, &ptx, &name, NULL, &e), SIEVE_ERR_LIMIT);
    if (!strstr(e.msg, "too large to compile")) fail_msg("message \"%s\"", e.msg);
  }
  cg_pattern_free(p);
}

/* ------------------------------------------------------------- lowering */

/* Constants rexpr draws: small ones, or (big_consts) up to 32 bits. */
static int big_consts;

static int64_t rconst(void) {
  if (!big_consts || rnd() % 2) return (int64_t)(rnd() % 41) - 20;
  static const int64_t edge[] = {INT32_MAX, INT32_MIN, 65536, -65536, 2147483, 46341, 1 << 20};
  return rnd() % 2 ? edge[rnd() % 7] : (int64_t)(int32_t)rnd();
}

/* A random integer expression over q.pos, k.pos and head. */
static cg_ref rexpr(cg_graph *g, int depth) {
  if (depth == 0 || rnd() % 4 == 0) {
    switch (rnd() % 4) {
    case 0: return cg_var_ref(g, CG_V_QPOS);
    case 1: return cg_var_ref(g, CG_V_KPOS);
    case 2: return cg_var_ref(g, CG_V_HEAD);
    default: return cg_const(g, rconst());
    }
  }
  static const cg_op ops[] = {CG_ADD, CG_SUB, CG_MUL, CG_DIV, CG_MOD, CG_MIN, CG_MAX,
                              CG_EQ, CG_LT, CG_LE, CG_AND, CG_OR};
  cg_op op = ops[rnd() % (sizeof ops / sizeof ops[0])];
  cg_ref a = rexpr(g, depth - 1), b = rexpr(g, depth - 1);
  switch (rnd() % 8) {
  case 0: return cg_un(g, CG_NEG, a);
  case 1: return cg_un(g, CG_ABS, a);
  case 2: return cg_select(g, cg_bin(g, CG_LT, a, b), a, rexpr(g, depth - 1));
  default: return cg_bin(g, op, a, b);
  }
}

/* Whether every node under r fits in 32 bits for these vars, as the IR
** promises for the values kernels compute. */
static int fits32(const cg_graph *g, cg_ref r, const int64_t *vals) {
  const cg_node *n = cg_node_at(g, r);
  int64_t v = cg_eval1(g, r, vals);
  if (v != (int32_t)v) return 0;
  return (n->a == CG_NONE || fits32(g, n->a, vals)) && (n->b == CG_NONE || fits32(g, n->b, vals)) &&
         (n->c == CG_NONE || fits32(g, n->c, vals));
}

/* The builder folds instructions on constant operands, so lowering with
** constant vars evaluates the lowered code: it must agree with cg_eval1,
** floor division, x / 0 = 0 and all. */
static void lowering_matches_eval(void **st) {
  setup_seed(st);
  cg_em em;
  assert_int_equal(cg_em_init(&em, "t"), 0);
  LLVMTypeRef none = NULL;
  cg_em_kernel(&em, "k", &none, NULL, 0, 32, 0);
  cg_graph *g = cg_graph_new();
  for (int it = 0; it < 400; it++) {
    cg_ref r = rexpr(g, 4);
    cg_range rg[CG_NVARS];
    for (int i = 0; i < CG_NVARS; i++) rg[i] = cg_range_none();
    int64_t lo = it % 2 ? 0 : -50;  /* half the cases know their vars are non-negative */
    rg[CG_V_QPOS] = rg[CG_V_KPOS] = (cg_range){lo, 200};
    rg[CG_V_HEAD] = (cg_range){0, 7};
    cg_err e = {0};
    cg_lower *l = cg_lower_new(g, r, rg, &e);
    if (!l && e.status == SIEVE_ERR_UNSUPPORTED) continue;  /* intervals past +-2^62 */
    assert_non_null(l);
    for (int k = 0; k < 8; k++) {
      int64_t vals[CG_NVARS] = {0};
      vals[CG_V_QPOS] = lo + (int64_t)(rnd() % (uint64_t)(201 - lo));
      vals[CG_V_KPOS] = lo + (int64_t)(rnd() % (uint64_t)(201 - lo));
      vals[CG_V_HEAD] = (int64_t)(rnd() % 8);
      LLVMValueRef v[CG_NVARS] = {0};
      for (int i = 0; i < CG_NVARS; i++) v[i] = cg_i32(&em, vals[i]);
      LLVMValueRef out = cg_lower_emit(l, &em, v);
      if (!LLVMIsAConstantInt(out)) fail_msg("seed %llu: lowering did not fold on constants", (unsigned long long)seed);
      int64_t got = LLVMConstIntGetSExtValue(out), want = cg_eval1(g, r, vals);
      if (cg_type_of(g, r) == CG_BOOL) got &= 1;
      if (!fits32(g, r, vals)) continue;
      if (got != want)
        fail_msg("seed %llu, ref %d: q.pos=%lld k.pos=%lld head=%lld: lowered %lld, evaluated %lld",
                 (unsigned long long)seed, r, (long long)vals[CG_V_QPOS], (long long)vals[CG_V_KPOS],
                 (long long)vals[CG_V_HEAD], (long long)got, (long long)want);
      cg_range rr = cg_lower_range(l);
      if (want < rr.lo || want > rr.hi)
        fail_msg("seed %llu: value %lld outside its interval [%lld, %lld]", (unsigned long long)seed,
                 (long long)want, (long long)rr.lo, (long long)rr.hi);
    }
    cg_lower_free(l);
  }
  cg_graph_free(g);
  cg_em_dispose(&em);
}

/*
** One integer semantics (cg_expr.h): with 32-bit constants and positions up
** to 2^20, products pass 32 bits; the lowered code computes such nodes in
** i64 and must still agree with the CPU's evaluation on every case it
** accepts (it refuses only intervals that may leave +-2^62). Before, the
** kernel multiplied in i32 and silently disagreed.
*/
static void wide_lowering_matches_eval(void **st) {
  setup_seed(st);
  cg_em em;
  assert_int_equal(cg_em_init(&em, "t"), 0);
  LLVMTypeRef none = NULL;
  cg_em_kernel(&em, "k", &none, NULL, 0, 32, 0);
  cg_graph *g = cg_graph_new();
  big_consts = 1;
  int accepted = 0;
  for (int it = 0; it < 500; it++) {
    cg_ref r = rexpr(g, 5);
    if (cg_type_of(g, r) == CG_INT) r = cg_bin(g, CG_LT, r, cg_const(g, rconst()));
    cg_range rg[CG_NVARS];
    for (int i = 0; i < CG_NVARS; i++) rg[i] = cg_range_none();
    int64_t lo = it % 2 ? 0 : -(1 << 20), hi = 1 << 20;
    rg[CG_V_QPOS] = rg[CG_V_KPOS] = (cg_range){lo, hi};
    rg[CG_V_HEAD] = (cg_range){0, 7};
    cg_err e = {0};
    cg_lower *l = cg_lower_new(g, r, rg, &e);
    if (!l) {
      if (e.status != SIEVE_ERR_UNSUPPORTED) fail_msg("seed %llu: %s", (unsigned long long)seed, e.msg);
      continue;
    }
    accepted++;
    for (int k = 0; k < 6; k++) {
      int64_t vals[CG_NVARS] = {0};
      static const int64_t corner[] = {0, 1, -1, 1 << 20, -(1 << 20), 46341, 65536};
      for (int v = CG_V_QPOS; v <= CG_V_KPOS; v++) {
        int64_t x = k < 2 ? corner[rnd() % 7] : lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
        vals[v] = x < lo ? lo : x > hi ? hi : x;
      }
      vals[CG_V_HEAD] = (int64_t)(rnd() % 8);
      LLVMValueRef v[CG_NVARS] = {0};
      for (int i = 0; i < CG_NVARS; i++) v[i] = cg_i32(&em, vals[i]);
      LLVMValueRef out = cg_lower_emit(l, &em, v);
      if (!LLVMIsAConstantInt(out)) fail_msg("seed %llu: lowering did not fold on constants", (unsigned long long)seed);
      int64_t got = LLVMConstIntGetZExtValue(out) & 1, want = cg_eval1(g, r, vals);
      if (got != want)
        fail_msg("seed %llu, ref %d: q.pos=%lld k.pos=%lld head=%lld: lowered %lld, evaluated %lld",
                 (unsigned long long)seed, r, (long long)vals[CG_V_QPOS], (long long)vals[CG_V_KPOS],
                 (long long)vals[CG_V_HEAD], (long long)got, (long long)want);
    }
    cg_lower_free(l);
  }
  big_consts = 0;
  assert_true(accepted > 250);
  cg_graph_free(g);
  cg_em_dispose(&em);
}

/* The example: q.idx * k.idx > 2^31 - 1 over 65,536 tokens is
** true for late pairs; computed in i32 it wrapped and was never true. */
static void products_past_32_bits(void **st) {
  cg_em em;
  assert_int_equal(cg_em_init(&em, "t"), 0);
  LLVMTypeRef none = NULL;
  cg_em_kernel(&em, "k", &none, NULL, 0, 32, 0);
  cg_graph *g = cg_graph_new();
  cg_ref r = cg_bin(g, CG_LT, cg_const(g, INT32_MAX),
                    cg_bin(g, CG_MUL, cg_var_ref(g, CG_V_QPOS), cg_var_ref(g, CG_V_KPOS)));
  cg_range rg[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) rg[i] = cg_range_none();
  rg[CG_V_QPOS] = rg[CG_V_KPOS] = (cg_range){0, 65535};
  rg[CG_V_HEAD] = (cg_range){0, 0};
  cg_err e = {0};
  cg_lower *l = cg_lower_new(g, r, rg, &e);
  assert_non_null(l);
  static const int64_t q[] = {65535, 40000, 46341, 46340, 3}, want[] = {1, 0, 0, 0, 0};
  for (int i = 0; i < 5; i++) {
    LLVMValueRef v[CG_NVARS] = {0};
    for (int j = 0; j < CG_NVARS; j++) v[j] = cg_i32(&em, 0);
    v[CG_V_QPOS] = cg_i32(&em, q[i]);
    v[CG_V_KPOS] = cg_i32(&em, q[i] == 40000 ? 53687 : q[i]);
    LLVMValueRef out = cg_lower_emit(l, &em, v);
    assert_true(LLVMIsAConstantInt(out));
    int64_t w = q[i] == 46341 ? 1 : want[i];  /* 46341^2 = 2147488281 > 2^31 - 1 */
    assert_int_equal((int64_t)(LLVMConstIntGetZExtValue(out) & 1), w);
  }
  cg_lower_free(l);
  /* A product that may leave +-2^62 is refused, not wrapped. */
  cg_ref big = cg_var_ref(g, CG_V_QPOS);
  for (int i = 0; i < 5; i++) big = cg_bin(g, CG_MUL, big, cg_var_ref(g, CG_V_QPOS));
  r = cg_bin(g, CG_LT, big, cg_const(g, 0));
  assert_null(cg_lower_new(g, r, rg, &e));
  assert_int_equal(e.status, SIEVE_ERR_UNSUPPORTED);
  assert_non_null(strstr(e.msg, "63-bit"));
  cg_graph_free(g);
  cg_em_dispose(&em);
}

static void lowering_rejects_model_vars(void **st) {
  cg_graph *g = cg_graph_new();
  cg_ref r = cg_bin(g, CG_LT, cg_var_ref(g, CG_V_QT), cg_var_ref(g, CG_V_KPOS));
  cg_range rg[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) rg[i] = cg_range_none();
  rg[CG_V_KPOS] = (cg_range){0, 10};
  cg_err e = {0};
  assert_null(cg_lower_new(g, r, rg, &e));
  assert_non_null(strstr(e.msg, "q.t"));
  cg_graph_free(g);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(config_checks),
    cmocka_unit_test(merged_rows),
    cmocka_unit_test(one_consumer),
    cmocka_unit_test(p_through_shared),
    cmocka_unit_test(bits_in_every_kernel),
    cmocka_unit_test(rescale_under_s),
    cmocka_unit_test(tensor_maps_prefetched),
    cmocka_unit_test(warpgroup_index_broadcast),
    cmocka_unit_test(tables_at_the_tile),
    cmocka_unit_test(blocks_view),
    cmocka_unit_test(lowering_matches_eval),
    cmocka_unit_test(wide_lowering_matches_eval),
    cmocka_unit_test(products_past_32_bits),
    cmocka_unit_test(lowering_rejects_model_vars),
    cmocka_unit_test(dense_is_plain),
    cmocka_unit_test(segments),
    cmocka_unit_test(mask_budget),
    cmocka_unit_test(kernel_grid),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
