/*
** The correctness check and the timer without a GPU: input rounding and
** values, row sampling, the scan for unwritten outputs, the error metrics,
** the row reference against cg_ref, and then the whole of rt_check and
** rt_bench against a stand-in driver whose "kernel" is the CPU reference
** (tests/fake_cuda.h): correct kernels pass, a kernel that skips a row or
** is off by a little fails, and timings come out of a fake clock.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_cuda.h"
#include "lp.h"
#include "rt_bench.h"
#include "rt_check.h"
#include "test_main.h"

/* ------------------------------------------------------------- values */

static void bf16_rounds_to_nearest_even(void **st) {
  uint16_t b;
  assert_true(rt_half_round(1.0f, CG_BF16, &b) == 1.0f);
  assert_int_equal(b, 0x3f80);
  /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even 1. */
  assert_true(rt_half_round(1.00390625f, CG_BF16, &b) == 1.0f);
  /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to the even one. */
  assert_true(rt_half_round(1.01171875f, CG_BF16, &b) == 1.015625f);
  assert_true(rt_half_round(-2.5f, CG_BF16, &b) == -2.5f);
  assert_int_equal(b, 0xc020);
}

static void fp16_rounds_and_round_trips(void **st) {
  uint16_t b;
  assert_true(rt_half_round(1.0f / 3.0f, CG_FP16, &b) == rt_half_float(b, CG_FP16));
  assert_true(fabsf(rt_half_float(b, CG_FP16) - 1.0f / 3.0f) < 1e-3f);
  assert_true(rt_half_round(65504.0f, CG_FP16, &b) == 65504.0f);
  /* Every finite value of both types survives float and back. */
  for (int dt = 0; dt < 2; dt++)
    for (uint32_t x = 0; x < 65536; x++) {
      float f = rt_half_float((uint16_t)x, (cg_dtype)dt);
      if (!isfinite(f)) continue;
      rt_half_round(f, (cg_dtype)dt, &b);
      if (f != 0.0f) assert_int_equal(b, x);
    }
}

static void poison_is_nan_in_every_type(void **st) {
  assert_true(isnan(rt_half_float(0xffff, CG_BF16)));
  assert_true(isnan(rt_half_float(0xffff, CG_FP16)));
  uint32_t u = 0xffffffffu;
  float f;
  memcpy(&f, &u, 4);
  assert_true(isnan(f));
}

static void random_inputs_are_unit_and_representable(void **st) {
  enum { N = 1 << 18 };
  uint16_t *b = malloc(2 * N);
  uint64_t rng = 42;
  for (int dt = 0; dt < 2; dt++) {
    rt_rand_half(b, N, (cg_dtype)dt, &rng);
    double sum = 0, sq = 0;
    int zeros = 0;
    for (int i = 0; i < N; i++) {
      float x = rt_half_float(b[i], (cg_dtype)dt);
      assert_true(isfinite(x) && fabsf(x) < 3.5f);
      zeros += x == 0;
      sum += x;
      sq += (double)x * x;
    }
    assert_true(fabs(sum / N) < 0.01);
    assert_true(fabs(sq / N - 1) < 0.02);
    assert_true(zeros < N / 100);
  }
  /* Same seed, same numbers. */
  uint16_t c[8], d[8];
  uint64_t r1 = 7, r2 = 7;
  rt_rand_half(c, 8, CG_BF16, &r1);
  rt_rand_half(d, 8, CG_BF16, &r2);
  assert_memory_equal(c, d, sizeof c);
  free(b);
}

static void rows_are_sampled_with_both_ends(void **st) {
  int64_t rows[300];
  uint64_t rng = 3;
  assert_int_equal(rt_check_sample(200, 0, &rng, rows), 200);
  assert_int_equal(rows[199], 199);
  assert_int_equal(rt_check_sample(200, 500, &rng, rows), 200);
  assert_int_equal(rt_check_sample(200, 10, &rng, rows), 10);
  assert_int_equal(rows[0], 199);
  assert_int_equal(rows[1], 0);
  for (int i = 0; i < 10; i++) assert_true(rows[i] >= 0 && rows[i] < 200);
}

static void strides_for_both_layouts(void **st) {
  sieve_shape s = {.batch = 2, .heads = 3, .head_dim = 64, .frames = 2, .height = 2, .width = 5};
  int64_t a[3], b[3];
  rt_check_strides(&s, 0, a);
  rt_check_strides(&s, 1, b);
  assert_int_equal(a[0], 3 * 20 * 64);
  assert_int_equal(a[1], 20 * 64);
  assert_int_equal(a[2], 64);
  assert_int_equal(b[0], 3 * 20 * 64);
  assert_int_equal(b[1], 64);
  assert_int_equal(b[2], 3 * 64);
}

/* ------------------------------------------------------ scans, metrics */

static void scan_finds_poison_left_behind(void **st) {
  sieve_shape s = {.batch = 2, .heads = 2, .head_dim = 64, .frames = 1, .height = 2, .width = 4};
  int64_t S = 8, rows = 2 * 2 * S, n = rows * 64, strides[3];
  uint16_t *o = malloc(2 * (size_t)n);
  float *lse = malloc(sizeof(float) * (size_t)rows);
  rt_check_result r;
  rt_check_strides(&s, 1, strides);
  memset(o, 0xff, 2 * (size_t)n);
  memset(lse, 0xff, sizeof(float) * (size_t)rows);
  rt_check_scan(&s, CG_BF16, strides, o, lse, &r);
  assert_int_equal(r.bad_o, n);
  assert_int_equal(r.bad_lse, rows);
  assert_int_equal(r.first_bad, 0);

  uint16_t one;
  rt_half_round(0.5f, CG_BF16, &one);
  for (int64_t i = 0; i < n; i++) o[i] = one;
  for (int64_t i = 0; i < rows; i++) lse[i] = i == 3 ? -INFINITY : 1.0f;  /* -inf: a row with no key */
  rt_check_scan(&s, CG_BF16, strides, o, lse, &r);
  assert_int_equal(r.bad_o + r.bad_lse, 0);
  assert_int_equal(r.first_bad, -1);

  /* Batch 1, head 0, row 5 missed by the kernel: found at its BSHD address. */
  int64_t b = 1, h = 0, t = 5, flat = (b * 2 + h) * S + t;
  o[b * strides[0] + h * strides[1] + t * strides[2] + 7] = 0xffff;
  lse[flat + 1] = INFINITY;
  rt_check_scan(&s, CG_BF16, strides, o, lse, &r);
  assert_int_equal(r.bad_o, 1);
  assert_int_equal(r.bad_lse, 1);
  assert_int_equal(r.first_bad, flat);
  free(o);
  free(lse);
}

static void metrics_are_relative_l2(void **st) {
  uint16_t o[4];
  double ref[4] = {1, 2, 3, 4};
  for (int i = 0; i < 4; i++) rt_half_round((float)ref[i], CG_FP16, &o[i]);
  rt_check_acc a = {0};
  rt_check_result r = {0};
  rt_check_acc_row(&a, o, CG_FP16, 4, 2.0f, ref, 2.0);
  rt_check_finish(&a, CG_FP16, NULL, &r);
  assert_true(r.err_o == 0 && r.err_lse == 0 && r.pass);
  assert_true(r.tol_o == 2e-3 && r.tol_lse == 1e-3);

  /* O off by 0.03 in one element of norm sqrt(30): 0.03/sqrt(30) = 5.5e-3 > 2e-3. */
  rt_half_round(4.03125f, CG_FP16, &o[3]);
  rt_check_acc b = {0};
  rt_check_acc_row(&b, o, CG_FP16, 4, 2.0f, ref, 2.0);
  rt_check_finish(&b, CG_FP16, NULL, &r);
  assert_true(fabs(r.err_o - 0.03125 / sqrt(30)) < 1e-9);
  assert_false(r.pass);
  rt_check_opts loose = {.tol_o = 1e-2};
  rt_check_finish(&b, CG_FP16, &loose, &r);
  assert_true(r.pass);
}

static void empty_rows_must_agree_on_minus_inf(void **st) {
  uint16_t z[2] = {0, 0};
  double ref0[2] = {0, 0};
  rt_check_acc a = {0};
  rt_check_result r = {0};
  rt_check_acc_row(&a, z, CG_BF16, 2, -INFINITY, ref0, -INFINITY);
  rt_check_finish(&a, CG_BF16, NULL, &r);
  assert_true(r.pass);
  assert_int_equal(r.empty_rows, 1);
  assert_int_equal(r.lse_inf_mismatch, 0);
  rt_check_acc_row(&a, z, CG_BF16, 2, 0.5f, ref0, -INFINITY);  /* kernel saw a key */
  rt_check_acc_row(&a, z, CG_BF16, 2, -INFINITY, ref0, 0.5);   /* kernel saw none */
  rt_check_finish(&a, CG_BF16, NULL, &r);
  assert_int_equal(r.lse_inf_mismatch, 2);
  assert_false(r.pass);
  /* Outputs never scanned as written cannot pass either. */
  rt_check_acc c = {0};
  rt_check_acc_row(&c, z, CG_BF16, 2, -INFINITY, ref0, -INFINITY);
  r.bad_o = 1;
  rt_check_finish(&c, CG_BF16, NULL, &r);
  assert_false(r.pass);
}

/* -------------------------------------------------------- the reference */

static char patterns[4096];

static cg_pattern *load(const char *name, const char *const *ov, sieve_pattern **keep) {
  char path[4200];
  sieve_ctx *ctx;
  snprintf(path, sizeof path, "%s/%s.lua", patterns, name);
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  if (sieve_pattern_load(ctx, path, ov, keep)) fail_msg("%s: %s", path, sieve_errmsg(ctx));
  sieve_close(ctx);
  return lp_pattern_ir(*keep);
}

/* Sampled rows on 3 threads, BSHD, equal cg_ref's whole-matrix reference. */
static void row_reference_matches_cg_ref(void **st) {
  const char *ov[] = {"window=0", NULL};
  sieve_pattern *sp;
  cg_pattern *p = load("lvsa", ov, &sp);
  sieve_shape s = {.batch = 2, .heads = 3, .head_dim = 64, .frames = 4, .height = 2, .width = 3,
                   .text = 5};
  cg_shape_for(p, &s, &s);
  int64_t S = sieve_shape_tokens(&s), BH = 6, n = BH * S * 64, str[3];
  rt_check_strides(&s, 1, str);
  uint16_t *in[3];
  float *f[3];
  uint64_t rng = 9;
  for (int i = 0; i < 3; i++) {
    in[i] = malloc(2 * (size_t)n);
    f[i] = malloc(4 * (size_t)n);
    rt_rand_half(in[i], (size_t)n, CG_BF16, &rng);
    for (int64_t j = 0; j < n; j++) f[i][j] = rt_half_float(in[i][j], CG_BF16);
  }
  int nr = 7;
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)(BH * nr));
  for (int64_t bh = 0; bh < BH; bh++) rt_check_sample(S, nr, &rng, rows + bh * nr);
  double *o = malloc(sizeof(double) * (size_t)(BH * nr * 64)), *lse = malloc(sizeof(double) * (size_t)(BH * nr));
  double *ro = malloc(sizeof(double) * (size_t)n), *rl = malloc(sizeof(double) * (size_t)(BH * S));
  cg_err e = {0};
  rt_ref_input in3 = {in[0], in[1], in[2], {str[0], str[1], str[2]}, CG_BF16, NULL};
  assert_int_equal(rt_ref_rows(p, &s, 3, 1, &in3, rows, nr, 3, o, lse, &e), SIEVE_OK);
  cg_ref_tensor t[3];
  for (int i = 0; i < 3; i++) t[i] = (cg_ref_tensor){f[i], str[0], str[1], str[2]};
  assert_int_equal(cg_ref_attention(p, &s, 3, 1, &t[0], &t[1], &t[2], 1 / 8.0, ro, rl, &e), SIEVE_OK);
  for (int64_t bh = 0; bh < BH; bh++)
    for (int r = 0; r < nr; r++) {
      int64_t k = bh * nr + r, row = rows[k];
      assert_true(fabs(lse[k] - rl[bh * S + row]) < 1e-9);
      for (int d = 0; d < 64; d++) assert_true(fabs(o[k * 64 + d] - ro[(bh * S + row) * 64 + d]) < 1e-9);
    }
  for (int i = 0; i < 3; i++) {
    free(in[i]);
    free(f[i]);
  }
  free(rows);
  free(o);
  free(lse);
  free(ro);
  free(rl);
  sieve_pattern_free(sp);
}

/* ------------------------------------------- end to end, on the fake GPU */

typedef struct rig {
  sieve_pattern *sp;
  rt_device dev;
  rt_plan *plan;
} rig;

static void rig_up(rig *r, const char *name, const char *const *ov, sieve_shape s, cg_dtype dt,
                   cg_attn_config cfg) {
  cg_err e = {0};
  fake_gpu_install();
  cg_pattern *p = load(name, ov, &r->sp);
  assert_int_equal(rt_device_open(0, &r->dev, &e), SIEVE_OK);
  rt_plan_spec spec = {p, s, dt, CG_SM80, cfg, 0, 0, NULL};
  if (rt_plan_create(&spec, &r->dev, NULL, &r->plan, &e)) fail_msg("plan: %s", e.msg);
  fg.pattern = p;
  fg.shape = rt_plan_spec_of(r->plan)->shape;
  fg.dtype = dt;
}

static void rig_down(rig *r) {
  assert_int_equal(rt_plan_free(r->plan, NULL), SIEVE_OK);
  assert_int_equal(fg.live_bytes, 0);  /* check and bench gave back what they took */
  rt_device_close(&r->dev, NULL);
  sieve_pattern_free(r->sp);
  fake_gpu_remove();
}

static sieve_shape small(int batch, int heads, int d) {
  return (sieve_shape){.batch = batch, .heads = heads, .head_dim = d, .frames = 3, .height = 4,
                       .width = 6, .text = 7};
}

static void correct_kernels_pass(void **st) {
  const char *ov[] = {"window=1", NULL};
  for (int bshd = 0; bshd < 2; bshd++) {
    rig r;
    rig_up(&r, "frame_window", ov, small(2, 2, 64), bshd ? CG_FP16 : CG_BF16, (cg_attn_config){0});
    rt_check_opts o = {.bshd = bshd, .rows = bshd ? 0 : 5, .seed = 11};
    rt_check_result res;
    cg_err e = {0};
    assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
    if (!res.pass) fail_msg("err_o %g err_lse %g bad %lld/%lld", res.err_o, res.err_lse,
                            (long long)res.bad_o, (long long)res.bad_lse);
    assert_int_equal(res.rows, bshd ? 2 * 2 * 79 : 2 * 2 * 5);
    assert_true(res.err_o < 5e-3 && res.err_lse < 1e-6);
    assert_int_equal(fg.launches, 1);
    rig_down(&r);
  }
}

static void an_unwritten_row_fails(void **st) {
  rig r;
  rig_up(&r, "dense", NULL, small(1, 2, 64), CG_BF16, (cg_attn_config){0});
  fg.skip_row = 79 + 30;  /* head 1, row 30 */
  rt_check_opts o = {.rows = 3, .seed = 5};
  rt_check_result res;
  cg_err e = {0};
  assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
  assert_false(res.pass);
  assert_int_equal(res.bad_o, 64);
  assert_int_equal(res.bad_lse, 1);
  assert_int_equal(res.first_bad, 79 + 30);
  rig_down(&r);
}

static int always(unsigned warps, unsigned smem) { return 1; }

static void a_slightly_wrong_kernel_fails(void **st) {
  rig r;
  rig_up(&r, "dense", NULL, small(1, 1, 64), CG_FP16, (cg_attn_config){0});
  fg.wrong = always;
  fg.bump = 0.01;
  rt_check_opts o = {.rows = 0, .seed = 5};
  rt_check_result res;
  cg_err e = {0};
  assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
  assert_false(res.pass);
  assert_true(res.err_o > res.tol_o);
  assert_int_equal(res.bad_o, 0);
  rig_down(&r);
}

/* A schedule's warm-up runs the dense kernel (the sparse tables wait), the
** first step after it the pattern's own; the reference follows both. */
static void schedule_runs_dense_then_sparse(void **st) {
  const char *ov[] = {"tile_t=1", "tile_y=2", "tile_x=2", "dense_steps=3", NULL};
  rig r;
  rig_up(&r, "sta", ov, small(1, 2, 64), CG_BF16, (cg_attn_config){0});
  for (int step = 2; step <= 3; step++) {
    rt_check_opts o = {.rows = 0, .step = step, .seed = 9};
    rt_check_result res;
    cg_err e = {0};
    assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
    assert_int_equal(rt_plan_warm(r.plan), step < 3);
    if (!res.pass) fail_msg("step %d: err_o %g err_lse %g", step, res.err_o, res.err_lse);
  }
  rig_down(&r);
}

/* A script mask with shape-dependent terms that hold everywhere at one
** shape and not at another; step-dependent ones fold only where every step
** agrees. */
static void masks_fold_to_dense_by_shape(void **st) {
  static const char *const src[] = {
    /* 0: true while frames <= 4 */
    "return sieve.pattern{name='short', mask=sieve.mask(function(q, k)\n"
    "  return q.text | k.text | sieve.shape.frames:le(4) | q.t:eq(k.t) end)}\n",
    /* 1: the same pairs at even steps only */
    "return sieve.pattern{name='stepped', mask=sieve.mask(function(q, k)\n"
    "  return (sieve.step % 2):eq(0) | q.text | k.text | q.t:eq(k.t) end)}\n",
    /* 2: every step while frames <= 4 (step % 1 is 0), even steps past it */
    "return sieve.pattern{name='every', mask=sieve.mask(function(q, k)\n"
    "  return (sieve.step % sieve.choose(sieve.shape.frames:le(4), 1, 2)):eq(0) | q.text | k.text | q.t:eq(k.t) end)}\n",
  };
  sieve_shape at4 = small(1, 2, 64), at5 = at4;
  at4.frames = 4;
  at5.frames = 5;
  const int want4[] = {1, 0, 1}, want5[] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    sieve_ctx *ctx;
    sieve_pattern *sp = NULL;
    assert_int_equal(sieve_open(&ctx), SIEVE_OK);
    if (sieve_pattern_load_string(ctx, "t.lua", src[i], NULL, &sp)) fail_msg("%d: %s", i, sieve_errmsg(ctx));
    sieve_close(ctx);
    cg_pattern *p = lp_pattern_ir(sp);
    int f4 = cg_attn_folds_dense(p, &at4), f5 = cg_attn_folds_dense(p, &at5);
    if (f4 != want4[i] || f5 != want5[i]) fail_msg("mask %d folds %d, %d at 4, 5 frames", i, f4, f5);
    setenv("SIEVE_FOLD", "0", 1);
    assert_false(cg_attn_folds_dense(p, &at4));
    unsetenv("SIEVE_FOLD");
    sieve_pattern_free(sp);
  }
  /* Nothing to fold where the mask is the constant true, or a window. */
  const char *const shipped[] = {"dense", "frame_window", "lvsa"};
  for (int i = 0; i < 3; i++) {
    sieve_pattern *sp;
    assert_false(cg_attn_folds_dense(load(shipped[i], NULL, &sp), &at4));
    sieve_pattern_free(sp);
  }
}

/* lvsa at or below its training length holds every frame as an anchor
** (its own rule: dense there): the plan runs the dense kernel at every
** step, rotation or not, and the reference of lvsa's mask agrees; past the
** training length, or with SIEVE_FOLD=0, the plan runs lvsa's kernel. */
static void a_mask_true_at_the_shape_runs_dense(void **st) {
  /* +-1 frames of 5: the anchors, not the window, cover every frame. */
  const char *at[] = {"train_frames=5", "rotate=true", "window=1", NULL},
             *past[] = {"train_frames=4", "rotate=true", "window=1", NULL};
  sieve_shape s = small(2, 2, 64);
  s.frames = 5;
  for (int c = 0; c < 3; c++) {
    if (c == 2) setenv("SIEVE_FOLD", "0", 1);
    rig r;
    rig_up(&r, "lvsa", c == 1 ? past : at, s, CG_BF16, (cg_attn_config){0});
    unsetenv("SIEVE_FOLD");
    int folds = c == 0;
    assert_int_equal(rt_plan_folded(r.plan), folds);
    assert_non_null(strstr(rt_plan_kernel(r.plan), folds ? "sieve_attn_dense_" : "sieve_attn_lvsa_"));
    for (int step = 0; step < 6; step += 5) {
      rt_check_opts o = {.rows = 0, .step = step, .seed = 11};
      rt_check_result res;
      cg_err e = {0};
      assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
      assert_int_equal(rt_plan_warm(r.plan), folds);
      if (!res.pass) fail_msg("case %d step %d: err_o %g err_lse %g", c, step, res.err_o, res.err_lse);
      if (folds) assert_true(res.density == 1.0);
    }
    rig_down(&r);
  }
}

/* The valid text count is a launch argument: padding rows come back with
** LSE -inf, and the reference that leaves the padding out agrees. */
static void text_length_is_an_argument(void **st) {
  rig r;
  rig_up(&r, "frame_window", NULL, small(2, 2, 64), CG_BF16, (cg_attn_config){0});
  int loads = fg.loads;
  static const int valid[][2] = {{3, 7}, {0, 1}};
  for (int i = 0; i < 2; i++) {
    rt_check_opts o = {.rows = 0, .seed = 4, .text_valid = valid[i]};
    rt_check_result res;
    cg_err e = {0};
    assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
    if (!res.pass) fail_msg("valid %d,%d: err_o %g err_lse %g mismatch %lld", valid[i][0], valid[i][1], res.err_o,
                            res.err_lse, (long long)res.lse_inf_mismatch);
    assert_true(res.empty_rows >= 2 * (7 - valid[i][0]) + 2 * (7 - valid[i][1]));  /* padding rows, 2 heads */
  }
  assert_int_equal(fg.loads, loads);  /* no new kernel */
  cg_err e = {0};
  assert_int_equal(rt_plan_set_text(r.plan, (const int[]){8, 1}, 2, &e), SIEVE_ERR_ARG);
  assert_int_equal(rt_plan_set_text(r.plan, (const int[]){1}, 1, &e), SIEVE_ERR_ARG);
  rig_down(&r);
}

/* lvsa's anchors rotate with the step: the reference must see the step
** the plan was moved to, and rows with no key stay -inf. */
static void step_and_layer_reach_both_sides(void **st) {
  const char *ov[] = {"window=0", "interval=2", "text=false", "rotate_fixed=true", NULL};
  rig r;
  rig_up(&r, "lvsa", ov, small(1, 2, 64), CG_BF16, (cg_attn_config){0});
  rt_check_opts o = {.rows = 0, .step = 3, .layer = 2, .seed = 8};
  rt_check_result res;
  cg_err e = {0};
  assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
  if (!res.pass) fail_msg("err_o %g err_lse %g mismatch %lld", res.err_o, res.err_lse,
                          (long long)res.lse_inf_mismatch);
  fg.step_offset = 1;  /* a kernel that computes another step's mask is caught */
  assert_int_equal(rt_check_plan(r.plan, &o, &res, &e), SIEVE_OK);
  assert_false(res.pass);
  rig_down(&r);
}

static void a_plan_for_another_shape_is_refused(void **st) {
  rig r;
  rig_up(&r, "dense", NULL, small(1, 2, 64), CG_BF16, (cg_attn_config){0});
  rt_check *c;
  rt_check_result res;
  cg_err e = {0};
  sieve_shape other = small(1, 3, 64);
  assert_int_equal(rt_check_new(lp_pattern_ir(r.sp), &other, CG_BF16, NULL, &c, &e), SIEVE_OK);
  assert_int_equal(rt_check_run(c, r.plan, &res, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "another shape"));
  rt_check_free(c);
  rig_down(&r);
}

/* ------------------------------------------------------------ timing */

static void timing_arithmetic(void **st) {
  sieve_shape s = {.batch = 2, .heads = 3, .head_dim = 64, .frames = 1, .height = 1, .width = 100};
  assert_true(rt_bench_flops(&s, 0.5) == 4.0 * 2 * 3 * 100 * 100 * 64 * 0.5);
  assert_int_equal(rt_bench_sets(1 << 30, 50 << 20, 1 << 30), 2);     /* big: two */
  assert_int_equal(rt_bench_sets(10 << 20, 50 << 20, 1 << 30), 11);   /* 10 others pass 2x L2 */
  assert_int_equal(rt_bench_sets(1024, 50 << 20, 1 << 30), 256);      /* capped */
  assert_int_equal(rt_bench_sets(600 << 20, 50 << 20, 1 << 30), 2);
  float ms[] = {5, 1, 3, 2};
  rt_bench_result r;
  rt_bench_stats(ms, 4, &r);
  assert_true(r.median_ms == 2.5 && r.min_ms == 1 && r.max_ms == 5 && r.mean_ms == 2.75);
  float odd[] = {9, 1, 4};
  rt_bench_stats(odd, 3, &r);
  assert_true(r.median_ms == 4);
}

static double two_ms(unsigned warps, unsigned smem, unsigned gx) { return 2.0; }

static void bench_times_with_events(void **st) {
  rig r;
  rig_up(&r, "dense", NULL, small(1, 2, 64), CG_BF16, (cg_attn_config){0});
  fg.pattern = NULL;  /* timing only: skip the host attention */
  fg.ms = two_ms;
  rt_bench_opts o = {.rep_ms = 50, .warmup_ms = 10};
  rt_bench_result res;
  cg_err e = {0};
  assert_int_equal(rt_bench_plan(r.plan, &o, &res, &e), SIEVE_OK);
  assert_true(res.median_ms == 2.0 && res.min_ms == 2.0 && res.max_ms == 2.0);
  assert_int_equal(res.runs, 25);         /* 50 ms of 2 ms runs */
  assert_int_equal(res.warmup_runs, 5);
  assert_true(res.sets >= 2);
  assert_true(fabs(res.tflops - res.flops / 2e-3 / 1e12) < 1e-9);
  assert_true(res.density > 0.999);
  o = (rt_bench_opts){.rep_ms = 1, .min_runs = 10};
  assert_int_equal(rt_bench_plan(r.plan, &o, &res, &e), SIEVE_OK);
  assert_int_equal(res.runs, 10);         /* the floor */
  rig_down(&r);
}

/* The integer half conversions agree bit for bit with the compiler's
** _Float16, where it has one: every half, and floats across the range
** (rounding ties, subnormals, overflow to inf). */
static void half_conversions_match_float16(void **st) {
#ifdef __FLT16_MAX__
  for (uint32_t b = 0; b < 65536; b++) {
    _Float16 h;
    uint16_t b16 = (uint16_t)b;
    memcpy(&h, &b16, 2);
    float want = (float)h, got = rt_f16_to_f32(b16);
    if (memcmp(&want, &got, 4) && !(want != want && got != got))
      fail_msg("half %04x: %a, want %a", b, (double)got, (double)want);
  }
  for (uint64_t u = 0; u < (1ull << 32); u += 4093) {
    uint32_t v = (uint32_t)u;
    float f;
    memcpy(&f, &v, 4);
    if (f != f) continue;
    _Float16 h = (_Float16)f;
    uint16_t want;
    memcpy(&want, &h, 2);
    if (rt_f32_to_f16(f) != want) fail_msg("float %08x: %04x, want %04x", v, rt_f32_to_f16(f), want);
  }
#else
  skip();
#endif
  /* Fixed points any compiler can check: ties to even, the subnormal edge, overflow. */
  assert_int_equal(rt_f32_to_f16(1.0f), 0x3c00);
  assert_int_equal(rt_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
  assert_int_equal(rt_f32_to_f16(1.0f + 0x3p-11f), 0x3c02);
  assert_int_equal(rt_f32_to_f16(0x1p-24f), 0x0001);
  assert_int_equal(rt_f32_to_f16(0x1p-25f), 0x0000);
  assert_int_equal(rt_f32_to_f16(65520.0f), 0x7c00);
  assert_int_equal(rt_f32_to_f16(-65504.0f), 0xfbff);
  assert_true(rt_f16_to_f32(0x0001) == 0x1p-24f);
}

int main(void) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(patterns, sizeof patterns, "%s/patterns", src ? src : ".");
  const struct CMUnitTest t[] = {
    cmocka_unit_test(half_conversions_match_float16),
    cmocka_unit_test(bf16_rounds_to_nearest_even),
    cmocka_unit_test(fp16_rounds_and_round_trips),
    cmocka_unit_test(poison_is_nan_in_every_type),
    cmocka_unit_test(random_inputs_are_unit_and_representable),
    cmocka_unit_test(rows_are_sampled_with_both_ends),
    cmocka_unit_test(strides_for_both_layouts),
    cmocka_unit_test(scan_finds_poison_left_behind),
    cmocka_unit_test(metrics_are_relative_l2),
    cmocka_unit_test(empty_rows_must_agree_on_minus_inf),
    cmocka_unit_test(row_reference_matches_cg_ref),
    cmocka_unit_test(correct_kernels_pass),
    cmocka_unit_test(an_unwritten_row_fails),
    cmocka_unit_test(a_slightly_wrong_kernel_fails),
    cmocka_unit_test(step_and_layer_reach_both_sides),
    cmocka_unit_test(schedule_runs_dense_then_sparse),
    cmocka_unit_test(masks_fold_to_dense_by_shape),
    cmocka_unit_test(a_mask_true_at_the_shape_runs_dense),
    cmocka_unit_test(text_length_is_an_argument),
    cmocka_unit_test(a_plan_for_another_shape_is_refused),
    cmocka_unit_test(timing_arithmetic),
    cmocka_unit_test(bench_times_with_events),
  };
  return sieve_run_tests(t, NULL, NULL);
}
