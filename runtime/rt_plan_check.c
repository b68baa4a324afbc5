/*
** What making a plan can check before it touches the driver, so bad input
** is reported as bad input (SIEVE_ERR_SHAPE, SIEVE_ERR_ARG) on a machine
** with no GPU too, instead of "no driver".
*/
#include "rt_plan.h"

/* Config fields left 0 take the target's default. */
static cg_attn_config completed(const cg_attn_spec *sp, cg_attn_config c) {
  cg_attn_config d = cg_attn_default_config(sp);
  return (cg_attn_config){c.block_m ? c.block_m : d.block_m, c.block_n ? c.block_n : d.block_n,
                          c.warps ? c.warps : d.warps, c.stages ? c.stages : d.stages,
                          c.sched ? c.sched : d.sched};
}

static sieve_status check_for(const rt_plan_spec *s, cg_arch arch, int complete, cg_err *e) {
  cg_attn_spec sp = {s->pattern, s->shape, s->dtype, arch, s->cfg, 0};
  cg_shape_for(s->pattern, &s->shape, &sp.shape);
  sieve_status st = cg_shape_check(&sp.shape, e);
  if (st) return st;
  const cg_pattern *p = s->pattern;
  int64_t seq = sieve_shape_tokens(&sp.shape);
  int64_t bq = cg_pattern_block_q(p), bk = cg_pattern_block_k(p);
  int64_t nq = (seq + bq - 1) / bq, nk = (seq + bk - 1) / bk;
  if (nq * nk > INT32_MAX)
    return cg_fail(e, SIEVE_ERR_SHAPE, "%lld x %lld block pairs: too many for 32-bit tables (larger blocks?)",
                   (long long)nq, (long long)nk);
  int zero = !sp.cfg.block_m && !sp.cfg.block_n && !sp.cfg.warps && !sp.cfg.stages;
  if (zero || complete) sp.cfg = completed(&sp, sp.cfg);
  return cg_attn_check(&sp, e);
}

sieve_status rt_plan_precheck(const rt_plan_spec *s, int complete, cg_err *e) {
  if (!s->pattern) return cg_fail(e, SIEVE_ERR_ARG, "no pattern");
  if (s->dtype != CG_BF16 && s->dtype != CG_FP16) return cg_fail(e, SIEVE_ERR_ARG, "unknown dtype");
  /* The device picks the target; a config some target takes may be the
  ** right one, and is checked again for the device's target. */
  sieve_status st = check_for(s, CG_SM80, complete, e);
  if (st) {
    cg_err e90 = {0};
    const cg_attn_config *c = &s->cfg;
    if (!check_for(s, CG_SM90A, complete, &e90)) st = SIEVE_OK;
    else if (e && (cg_attn_config_ws(c) || c->block_m > 128 || c->block_n > 128 || c->stages > 3))
      *e = e90;  /* a config only sm_90a runs: its reason there says more */
  }
  if (!st) cg_err_clear(e);
  return st;
}
