/*
** The public sieve_plan_* API and sieve_attention over rt_plan.
*/
#include <stdlib.h>

#include "api.h"
#include "lp.h"
#include "rt_tunedb.h"

struct sieve_plan {
  sieve_ctx *ctx;        /* where messages go; outlives the plan */
  rt_plan *rp;
};

rt_plan *api_plan_of(const sieve_plan *plan) { return plan ? plan->rp : NULL; }

/*
** The device a new plan runs on: the context's (sieve_device_open), else
** the calling thread's current CUDA context (a host such as PyTorch has
** made one), else device 0, which the context then keeps open.
*/
static sieve_status plan_device(sieve_ctx *ctx, rt_device *d, cg_err *e) {
  const rt_cuda *cu;
  sieve_status st;
  if (ctx->dev) {
    *d = *ctx->dev;
    return rt_device_bind(d, e);
  }
  if ((st = rt_cuda_get(&cu, e))) return st;
  CUcontext cur = NULL;
  if ((st = RT_CU(cu, e, cuCtxGetCurrent, &cur))) return st;
  if (cur) {
    CUdevice dev;
    /* A CUdevice is its ordinal (cuDeviceGet(&d, i) gives i). */
    if ((st = RT_CU(cu, e, cuCtxGetDevice, &dev)) || (st = rt_device_query((int)dev, d, e)))
      return st;
    d->ctx = cur;
    return SIEVE_OK;
  }
  rt_device *nd = malloc(sizeof *nd);
  if (!nd) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a device");
  if ((st = rt_device_open(0, nd, e))) {
    free(nd);
    return st;
  }
  ctx->dev = nd;
  *d = *nd;
  return SIEVE_OK;
}

sieve_status api_device(sieve_ctx *ctx, rt_device *d, cg_err *e) { return plan_device(ctx, d, e); }

sieve_status api_target(sieve_ctx *ctx, rt_device *dev, cg_arch *arch, rt_cache **cache, cg_err *e) {
  sieve_status st = plan_device(ctx, dev, e);
  if (st) return st;
  cg_err ce = {0};
  *arch = rt_plan_arch_for(dev);
  /* No usable cache directory means compiling every time, not failing. */
  if (api_cache(ctx, cache, &ce)) *cache = NULL;
  return SIEVE_OK;
}

sieve_status sieve_plan_create(sieve_ctx *ctx, const sieve_pattern *p,
                               const sieve_shape *shape, sieve_dtype dtype,
                               const sieve_config *cfg, sieve_plan **out) {
  cg_err e = {0};
  if (!ctx || !out) return api_arg(ctx, "sieve_plan_create", !ctx ? "no context" : "out is NULL");
  *out = NULL;
  if (!p || !shape || (dtype != SIEVE_BF16 && dtype != SIEVE_FP16)) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_plan_create: %s", !p ? "no pattern" : !shape ? "no shape" : "unknown dtype");
    return api_ret(ctx, &e);
  }
  rt_plan_spec s = {
    .pattern = lp_pattern_ir(p),
    .shape = *shape,
    .dtype = dtype == SIEVE_FP16 ? CG_FP16 : CG_BF16,
  };
  if (cfg) s.cfg = (cg_attn_config){cfg->block_m, cfg->block_n, cfg->warps, cfg->stages, cfg->sched};
  if (rt_plan_precheck(&s, 0, &e)) return api_ret(ctx, &e);  /* input before hardware */
  rt_device dev;
  rt_cache *cache = NULL;
  sieve_plan *plan = calloc(1, sizeof *plan);
  if (!plan) cg_fail(&e, SIEVE_ERR_NOMEM, "no memory for a plan");
  else if (!api_target(ctx, &dev, &s.arch, &cache, &e)) {
    /* A tuned config for this pattern, shape, dtype and GPU beats the
    ** default; a config naming only the schedule asks for the default's
    ** kernel on that schedule (rt_plan_create), not for the tuned one. */
    int zero = !s.cfg.block_m && !s.cfg.block_n && !s.cfg.warps && !s.cfg.stages && !s.cfg.sched;
    int tuned = zero && cache && rt_tunedb_config(cache->dir, &s, &dev, &s.cfg);
    if (!rt_plan_create(&s, &dev, cache, &plan->rp, &e)) rt_plan_set_tuned(plan->rp, tuned);
  }
  if (e.status) {
    free(plan);
    return api_ret(ctx, &e);
  }
  plan->ctx = ctx;
  *out = plan;
  return api_ret(ctx, &e);
}

sieve_status sieve_plan_set_step(sieve_plan *plan, int step, int layer) {
  cg_err e = {0};
  if (!plan) return SIEVE_ERR_ARG;
  rt_plan_set_step(plan->rp, step, layer, &e);
  return api_ret(plan->ctx, &e);
}

sieve_status sieve_plan_set_text_len(sieve_plan *plan, const int *valid, int n) {
  cg_err e = {0};
  if (!plan) return SIEVE_ERR_ARG;
  rt_plan_set_text(plan->rp, valid, n, &e);
  return api_ret(plan->ctx, &e);
}

void sieve_plan_config(const sieve_plan *plan, sieve_config *out) {
  if (!out) return;
  if (!plan) {
    *out = (sieve_config){0};
    return;
  }
  const cg_attn_config *c = &rt_plan_spec_of(plan->rp)->cfg;
  *out = (sieve_config){c->block_m, c->block_n, c->warps, c->stages, c->sched};
}

double sieve_plan_density(const sieve_plan *plan) { return plan ? rt_plan_density(plan->rp) : 0.0; }

/* The kernel reads rows with 16-byte copies: misaligned rows would fault
** and take the host's CUDA context down with them, so they are refused. */
static const char *bad_tensor(const sieve_tensor *t) {
  if (!t) return "missing";
  if (!t->ptr) return "a null pointer";
  if (t->ptr % 16 || t->stride_b % 8 || t->stride_h % 8 || t->stride_s % 8)
    return "not 16-byte aligned (pointer and strides must be multiples of 8 elements)";
  return NULL;
}

sieve_status sieve_attention(sieve_plan *plan, const sieve_tensor *q,
                             const sieve_tensor *k, const sieve_tensor *v,
                             const sieve_tensor *o, uint64_t lse, float scale,
                             void *stream) {
  cg_err e = {0};
  if (!plan) return SIEVE_ERR_ARG;
  const sieve_tensor *t[4] = {q, k, v, o};
  const char *why;
  for (int i = 0; i < 4; i++)
    if ((why = bad_tensor(t[i]))) {
      cg_fail(&e, SIEVE_ERR_ARG, "sieve_attention: %c is %s", "qkvo"[i], why);
      return api_ret(plan->ctx, &e);
    }
  if (!lse || lse % 4) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_attention: lse is %s", lse ? "misaligned" : "a null pointer");
    return api_ret(plan->ctx, &e);
  }
  rt_plan_run(plan->rp, q, k, v, o, lse, scale, (CUstream)stream, &e);
  return api_ret(plan->ctx, &e);
}

void sieve_plan_free(sieve_plan *plan) {
  if (!plan) return;
  rt_plan_free(plan->rp, NULL);  /* nowhere to report a failure to */
  free(plan);
}
