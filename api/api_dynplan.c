/*
** The public sieve_dynplan_* API over rt_dyn_search and rt_dyn_profile.
*/
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "lp.h"
#include "rt_dyn.h"

struct sieve_dynplan {
  sieve_ctx *ctx;
  rt_dyn_search *search;
  rt_dyn_profile *profile;
};

sieve_status sieve_dynplan_create(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *shape,
                                  sieve_dtype dtype, sieve_dynplan **out) {
  cg_err e = {0};
  if (!ctx || !out) return api_arg(ctx, "sieve_dynplan_create", "out is NULL");
  *out = NULL;
  cg_pattern *cp = p ? lp_pattern_ir(p) : NULL;
  if (!cp || !shape || (dtype != SIEVE_BF16 && dtype != SIEVE_FP16)) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_dynplan_create: pattern, shape and a dtype are required");
    return api_ret(ctx, &e);
  }
  if (cp->sel.kind == CG_SELECT_STATIC) {
    cg_fail(&e, SIEVE_ERR_ARG, "pattern %s chooses no blocks at run time (sieve.search or sieve.profile); use sieve_plan_create",
            cp->name);
    return api_ret(ctx, &e);
  }
  rt_plan_spec s = {.pattern = cp, .shape = *shape, .dtype = dtype == SIEVE_FP16 ? CG_FP16 : CG_BF16, .arch = CG_SM80};
  if (rt_plan_precheck(&s, 0, &e)) return api_ret(ctx, &e);  /* input before hardware */
  if (cp->sel.kind == CG_SELECT_PROFILE && cp->sel.mode == CG_PROFILE_FILE) {
    rt_strategy *strat;  /* the mask-search file too: missing, damaged or foreign is refused here */
    if (rt_strategy_load(cp->sel.file, cp, shape, &strat, &e)) return api_ret(ctx, &e);
    rt_strategy_free(strat);
  }
  sieve_dynplan *d = calloc(1, sizeof *d);
  rt_device dev;
  rt_cache *cache = NULL;
  if (!d) cg_fail(&e, SIEVE_ERR_NOMEM, "no memory for a plan");
  else if (!api_target(ctx, &dev, &s.arch, &cache, &e)) {
    if (cp->sel.kind == CG_SELECT_LSE_SEARCH) rt_dyn_search_create(&s, &dev, cache, &d->search, &e);
    else rt_dyn_profile_create(&s, &dev, cache, &d->profile, &e);
  }
  if (e.status) {
    free(d);
    return api_ret(ctx, &e);
  }
  d->ctx = ctx;
  *out = d;
  return api_ret(ctx, &e);
}

sieve_status sieve_dynplan_step(sieve_dynplan *d, int step, int layer, const sieve_tensor *q,
                                const sieve_tensor *k, const sieve_tensor *v, const sieve_tensor *o,
                                uint64_t lse, float scale, void *stream, int *chose) {
  cg_err e = {0};
  if (!d) return SIEVE_ERR_ARG;
  if (!q || !k || !v || !o || !lse) return api_arg(d->ctx, "sieve_dynplan_step", "q, k, v, o and lse are required");
  if (d->search) rt_dyn_search_step(d->search, step, layer, q, k, v, o, lse, scale, (CUstream)stream, chose, &e);
  else rt_dyn_profile_step(d->profile, step, layer, q, k, v, o, lse, scale, (CUstream)stream, chose, &e);
  return api_ret(d->ctx, &e);
}

sieve_status sieve_dynplan_set_text_len(sieve_dynplan *d, const int *valid, int n) {
  cg_err e = {0};
  if (!d) return SIEVE_ERR_ARG;
  if (d->search) rt_dyn_search_set_text(d->search, valid, n, &e);
  else
    for (int c = 0; !e.status && rt_dyn_profile_plan(d->profile, c); c++)
      rt_plan_set_text(rt_dyn_profile_plan(d->profile, c), valid, n, &e);
  return api_ret(d->ctx, &e);
}

sieve_status sieve_dynplan_density(sieve_dynplan *d, double *out) {
  cg_err e = {0};
  if (!d) return SIEVE_ERR_ARG;
  if (!out) return api_arg(d->ctx, "sieve_dynplan_density", "out is NULL");
  if (d->search) rt_dyn_search_density(d->search, out, &e);
  else *out = rt_dyn_profile_density(d->profile);
  return api_ret(d->ctx, &e);
}

sieve_status sieve_dynplan_save_search(sieve_dynplan *d, const char *path) {
  cg_err e = {0};
  if (!d) return SIEVE_ERR_ARG;
  if (!path || !*path) return api_arg(d->ctx, "sieve_dynplan_save_search", "path is NULL or empty");
  if (!d->profile) cg_fail(&e, SIEVE_ERR_ARG, "sieve_dynplan_save_search: the pattern searches blocks (sieve.search), not a mask");
  else rt_dyn_profile_save(d->profile, path, &e);
  return api_ret(d->ctx, &e);
}

void sieve_dynplan_free(sieve_dynplan *d) {
  if (!d) return;
  rt_dyn_search_free(d->search);
  rt_dyn_profile_free(d->profile);
  free(d);
}

/* ------------------------------------------------------ the choice */

sieve_status sieve_dynplan_info_get(sieve_dynplan *d, sieve_dynplan_info *out) {
  if (!d) return SIEVE_ERR_ARG;
  if (!out) return api_arg(d->ctx, "sieve_dynplan_info_get", "out is NULL");
  *out = (sieve_dynplan_info){0};
  if (d->search) {
    rt_dyn_search_bufs b;
    rt_dyn_search_buffers(d->search, &b);
    const cg_attn_spec *as = rt_plan_spec_of(rt_dyn_search_plan(d->search));
    const cg_pattern *p = as->pattern;
    *out = (sieve_dynplan_info){.kind = SIEVE_DYNPLAN_SEARCH, .batch = as->shape.batch, .heads = as->shape.heads,
                                .q_blocks = b.nq, .k_blocks = b.nk,
                                .block_q = cg_pattern_block_q(p),
                                .block_k = cg_pattern_block_k(p),
                                .chosen = rt_dyn_search_has(d->search)};
  } else {
    const cg_attn_spec *as = rt_plan_spec_of(rt_dyn_profile_plan(d->profile, 0));
    int nc = 0;
    while (rt_dyn_profile_plan(d->profile, nc)) nc++;
    *out = (sieve_dynplan_info){.kind = SIEVE_DYNPLAN_PROFILE, .batch = rt_dyn_profile_batch(d->profile), .heads = as->shape.heads,
                                .classes = nc, .samples = rt_dyn_profile_samples(d->profile),
                                .chosen = rt_dyn_profile_ran(d->profile)};
  }
  return api_ret(d->ctx, &(cg_err){0});
}

sieve_status sieve_dynplan_blocks(sieve_dynplan *d, uint8_t *blocks, int32_t *topk, double *recall) {
  cg_err e = {0};
  if (!d) return SIEVE_ERR_ARG;
  if (!d->search) return api_arg(d->ctx, "sieve_dynplan_blocks", "the pattern profiles head classes (sieve.profile): use sieve_dynplan_classes");
  sieve_dynplan_info in;
  sieve_dynplan_info_get(d, &in);
  size_t n = (size_t)in.batch * (size_t)in.heads;
  if (blocks) rt_dyn_search_read(d->search, blocks, &e);
  if (topk) memcpy(topk, rt_dyn_search_topk(d->search), 4 * n);
  const double *r = rt_dyn_search_recall(d->search);
  for (size_t i = 0; recall && i < n; i++) recall[i] = r ? r[i] : -1;
  return api_ret(d->ctx, &e);
}

sieve_status sieve_dynplan_classes(sieve_dynplan *d, int32_t *klass, double *err, int32_t *rows) {
  if (!d) return SIEVE_ERR_ARG;
  if (!d->profile) return api_arg(d->ctx, "sieve_dynplan_classes", "the pattern searches blocks (sieve.search): use sieve_dynplan_blocks");
  sieve_dynplan_info in;
  sieve_dynplan_info_get(d, &in);
  size_t n = (size_t)in.batch * (size_t)in.heads;
  const int *k = rt_dyn_profile_classes(d->profile);
  for (size_t i = 0; klass && i < n; i++) klass[i] = k[i];
  if (err) memcpy(err, rt_dyn_profile_errors(d->profile), sizeof(double) * n * (size_t)in.classes);
  int ns;
  const int32_t *r = rt_dyn_profile_rows(d->profile, &ns);
  if (rows) memcpy(rows, r, 4 * (size_t)in.samples);
  return api_ret(d->ctx, &(cg_err){0});
}

const char *sieve_dynplan_class_name(const sieve_dynplan *d, int c) {
  if (!d || !d->profile || c < 0) return NULL;
  const rt_plan *pl = rt_dyn_profile_plan(d->profile, c);
  return pl ? rt_plan_spec_of(pl)->pattern->classes[c].name : NULL;
}
