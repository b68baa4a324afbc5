/*
** The device half of the correctness check: inputs uploaded once, outputs
** poisoned before every run, read back and compared with the reference
** rows rt_check_new computed.
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include "rt_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BUF_Q, BUF_K, BUF_V, BUF_O, BUF_LSE, NBUF };

struct rt_check {
  const rt_cuda *cu;
  cg_pattern *pattern;
  sieve_shape shape;       /* resolved: the pattern's text geometry applied */
  cg_dtype dtype;
  rt_check_opts opts;
  int *tlen;               /* a copy of opts.text_valid, or NULL */
  int64_t st[3];           /* element strides of Q, K, V and O */
  size_t n, nrows_all;     /* elements per tensor; rows B*H*S */
  uint16_t *in[3];         /* Q, K, V bits in the device layout */
  uint16_t *o;             /* read back */
  float *lse;
  CUdeviceptr d[NBUF];
  int nrows;               /* sampled rows per (batch, head) */
  int64_t *rows;           /* [B*H][nrows] */
  double *ref_o, *ref_lse;
  double setup_ms;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static size_t buf_bytes(const rt_check *c, int i) {
  return i == BUF_LSE ? sizeof(float) * c->nrows_all : 2 * c->n;
}

/* ------------------------------------------------------------- setup */

static sieve_status host_alloc(rt_check *c, cg_err *e) {
  const sieve_shape *s = &c->shape;
  int64_t S = sieve_shape_tokens(s), BH = (int64_t)s->batch * s->heads;
  c->nrows_all = (size_t)(BH * S);
  c->n = c->nrows_all * (size_t)s->head_dim;
  c->nrows = c->opts.rows > 0 && c->opts.rows < S ? c->opts.rows : (int)S;
  size_t sampled = (size_t)BH * (size_t)c->nrows;
  for (int i = 0; i < 3; i++) c->in[i] = malloc(2 * c->n);
  c->o = malloc(2 * c->n);
  c->lse = malloc(sizeof(float) * c->nrows_all);
  c->rows = malloc(sizeof(int64_t) * sampled);
  c->ref_o = malloc(sizeof(double) * sampled * (size_t)s->head_dim);
  c->ref_lse = malloc(sizeof(double) * sampled);
  if (!c->in[0] || !c->in[1] || !c->in[2] || !c->o || !c->lse || !c->rows || !c->ref_o ||
      !c->ref_lse)
    return cg_fail(e, SIEVE_ERR_NOMEM, "no host memory for the check (%zu elements per tensor)",
                   c->n);
  return SIEVE_OK;
}

/* Inputs and sampled rows: the same seed gives the same numbers, so a
** failure can be reproduced. */
static void fill(rt_check *c) {
  uint64_t rng = c->opts.seed ? c->opts.seed : 1;
  for (int i = 0; i < 3; i++) rt_rand_half(c->in[i], c->n, c->dtype, &rng);
  int64_t S = sieve_shape_tokens(&c->shape), BH = (int64_t)c->shape.batch * c->shape.heads;
  for (int64_t bh = 0; bh < BH; bh++) rt_check_sample(S, c->opts.rows, &rng, c->rows + bh * c->nrows);
}

static sieve_status upload(rt_check *c, cg_err *e) {
  const rt_cuda *cu = c->cu;
  sieve_status st = SIEVE_OK;
  for (int i = 0; i < NBUF && !st; i++) st = RT_CU(cu, e, cuMemAlloc, &c->d[i], buf_bytes(c, i));
  for (int i = 0; i < 3 && !st; i++) st = RT_CU(cu, e, cuMemcpyHtoD, c->d[i], c->in[i], 2 * c->n);
  return st;
}

sieve_status rt_check_new(cg_pattern *pattern, const sieve_shape *shape, cg_dtype dtype,
                          const rt_check_opts *o, rt_check **out, cg_err *e) {
  *out = NULL;
  double t0 = now_ms();
  rt_check *c = calloc(1, sizeof *c);
  if (!c) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a check");
  c->pattern = pattern;
  c->dtype = dtype;
  if (o) c->opts = *o;
  cg_shape_for(pattern, shape, &c->shape);
  sieve_status st = cg_shape_check(&c->shape, e);
  if (!st && c->opts.text_valid) {
    if (!(c->tlen = malloc(sizeof(int) * (size_t)c->shape.batch))) st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a check");
    else memcpy(c->tlen, c->opts.text_valid, sizeof(int) * (size_t)c->shape.batch);
  }
  c->opts.text_valid = c->tlen;
  if (!st) st = rt_cuda_get(&c->cu, e);
  if (!st) st = host_alloc(c, e);
  if (!st) {
    rt_check_strides(&c->shape, c->opts.bshd, c->st);
    fill(c);
    st = upload(c, e);
  }
  if (!st) {
    rt_ref_input in = {c->in[0], c->in[1], c->in[2], {c->st[0], c->st[1], c->st[2]}, dtype, c->tlen};
    st = rt_ref_rows(pattern, &c->shape, c->opts.step, c->opts.layer, &in, c->rows, c->nrows,
                     c->opts.threads, c->ref_o, c->ref_lse, e);
  }
  if (st) {
    rt_check_free(c);
    return st;
  }
  c->setup_ms = now_ms() - t0;
  *out = c;
  return SIEVE_OK;
}

void rt_check_free(rt_check *c) {
  if (!c) return;
  for (int i = 0; i < NBUF; i++)
    if (c->d[i]) RT_CU(c->cu, NULL, cuMemFree, c->d[i]);  /* nothing to report to */
  for (int i = 0; i < 3; i++) free(c->in[i]);
  free(c->o);
  free(c->lse);
  free(c->rows);
  free(c->ref_o);
  free(c->ref_lse);
  free(c->tlen);
  free(c);
}

double rt_check_setup_ms(const rt_check *c) { return c->setup_ms; }

/* ------------------------------------------------------------- running */

static sieve_status same_problem(const rt_check *c, const cg_attn_spec *ps, cg_err *e) {
  const sieve_shape *a = &c->shape, *b = &ps->shape;
  if (ps->pattern->ir_hash != c->pattern->ir_hash)
    return cg_fail(e, SIEVE_ERR_ARG, "check: the plan is for another pattern");
  if (a->batch != b->batch || a->heads != b->heads || a->head_dim != b->head_dim ||
      sieve_shape_tokens(a) != sieve_shape_tokens(b) || ps->dtype != c->dtype)
    return cg_fail(e, SIEVE_ERR_ARG, "check: the plan is for another shape or dtype");
  return SIEVE_OK;
}

/* A fault inside the kernel surfaces at the synchronisation, not the launch. */
static sieve_status launch(rt_check *c, rt_plan *p, cg_err *e) {
  const rt_cuda *cu = c->cu;
  sieve_tensor t[4];
  for (int i = 0; i < 4; i++) t[i] = (sieve_tensor){c->d[i], c->st[0], c->st[1], c->st[2]};
  /* 0xFF bytes: NaN in bf16, fp16 and fp32 alike. */
  sieve_status st = RT_CU(cu, e, cuMemsetD8, c->d[BUF_O], 0xff, buf_bytes(c, BUF_O));
  if (!st) st = RT_CU(cu, e, cuMemsetD8, c->d[BUF_LSE], 0xff, buf_bytes(c, BUF_LSE));
  if (!st) st = rt_plan_set_step(p, c->opts.step, c->opts.layer, e);
  if (!st) st = rt_plan_set_text(p, c->tlen, c->shape.batch, e);
  if (!st) st = rt_plan_run(p, &t[0], &t[1], &t[2], &t[3], c->d[BUF_LSE], 0.0f, NULL, e);
  if (!st) st = RT_CU(cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(cu, e, cuMemcpyDtoH, c->o, c->d[BUF_O], buf_bytes(c, BUF_O));
  if (!st) st = RT_CU(cu, e, cuMemcpyDtoH, c->lse, c->d[BUF_LSE], buf_bytes(c, BUF_LSE));
  return st;
}

static void compare(const rt_check *c, rt_check_result *r) {
  const sieve_shape *s = &c->shape;
  int64_t S = sieve_shape_tokens(s), BH = (int64_t)s->batch * s->heads;
  int D = s->head_dim;
  rt_check_acc acc = {0};
  for (int64_t bh = 0; bh < BH; bh++) {
    int64_t b = bh / s->heads, h = bh % s->heads;
    for (int i = 0; i < c->nrows; i++) {
      int64_t k = bh * c->nrows + i, row = c->rows[k];
      const uint16_t *o = c->o + b * c->st[0] + h * c->st[1] + row * c->st[2];
      rt_check_acc_row(&acc, o, c->dtype, D, c->lse[bh * S + row], c->ref_o + k * D,
                       c->ref_lse[k]);
    }
  }
  rt_check_finish(&acc, c->dtype, &c->opts, r);
}

sieve_status rt_check_run(rt_check *c, rt_plan *p, rt_check_result *r, cg_err *e) {
  memset(r, 0, sizeof *r);
  r->first_bad = -1;
  sieve_status st = same_problem(c, rt_plan_spec_of(p), e);
  if (!st) st = launch(c, p, e);
  if (st) return st;
  rt_check_scan(&c->shape, c->dtype, c->st, c->o, c->lse, r);
  compare(c, r);
  r->density = rt_plan_density(p);
  r->ref_ms = c->setup_ms;
  return SIEVE_OK;
}

sieve_status rt_check_plan(rt_plan *p, const rt_check_opts *o, rt_check_result *r, cg_err *e) {
  const cg_attn_spec *ps = rt_plan_spec_of(p);
  rt_check *c;
  sieve_status st = rt_check_new(ps->pattern, &ps->shape, ps->dtype, o, &c, e);
  if (st) return st;
  st = rt_check_run(c, p, r, e);
  rt_check_free(c);
  return st;
}
