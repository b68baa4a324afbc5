/*
** One attention case: the plan a host would make (public API), checked by
** rt_check: random inputs, poisoned outputs, every element written and
** finite, sampled rows against the float64 reference, LSE -inf agreement.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gpu.h"
#include "rt_check.h"

static void fail(gpu_env *env, const char *label, const char *why) {
  printf("FAIL %s: %s\n", label, why);
  env->failed++;
}

static void label_of(const gpu_case *c, const sieve_config *cfg, char *out, size_t n) {
  const sieve_shape *s = &c->shape;
  if (c->text_valid) {
    int k = snprintf(out, n, "text valid");
    for (int b = 0; b < s->batch && k > 0 && (size_t)k < n; b++) k += snprintf(out + k, n - (size_t)k, " %d", c->text_valid[b]);
    if (k > 0 && (size_t)k + 2 < n) {
      out[k++] = ':';
      out[k++] = ' ';
      out += k;
      n -= (size_t)k;
    }
  }
  snprintf(out, n, "%s%s%s T%dY%dX%d+%d%s B%d H%d D%d %s %s cfg %d/%d/%d/%d step %d layer %d",
           c->pattern, c->params[0] ? " " : "", c->params[0] ? c->params[0] : "", s->frames,
           s->height, s->width, s->text, s->text_after ? "a" : "", s->batch, s->heads,
           s->head_dim, c->dtype == SIEVE_FP16 ? "fp16" : "bf16", c->bshd ? "BSHD" : "BHSD",
           cfg->block_m, cfg->block_n, cfg->warps, cfg->stages, c->step, c->layer);
  const char *pm = getenv("SIEVE_PARTIAL");
  if (pm && strlen(out) + strlen(pm) + 12 < n) strcat(strcat(out, " partial="), pm);
}

static void verdict(gpu_env *env, const char *label, const rt_check_result *r) {
  char why[512];
  snprintf(why, sizeof why,
           "O rel %.2e (tol %.0e), LSE rel %.2e, %lld rows (%lld empty), density %.3f%s%s",
           r->err_o, r->tol_o, r->err_lse, (long long)r->rows, (long long)r->empty_rows,
           r->density, r->lse_inf_mismatch ? ", LSE -inf mismatch" : "",
           r->bad_o || r->bad_lse ? ", unwritten or non-finite outputs" : "");
  if (!r->pass) {
    fail(env, label, why);
    return;
  }
  printf("pass %s: %s\n", label, why);
  env->passed++;
}

void gpu_attention_case(gpu_env *env, const gpu_case *c) {
  char path[1024], label[512], why[1400];
  snprintf(path, sizeof path, "%s/%s.lua", env->patterns, c->pattern);
  label_of(c, &c->cfg, label, sizeof label);
  const char *ov[5] = {c->params[0], c->params[1], c->params[2], c->params[3], NULL};
  sieve_pattern *pat = NULL;
  sieve_plan *plan = NULL;
  if (sieve_pattern_load(env->ctx, path, ov, &pat)) {
    snprintf(why, sizeof why, "load: %s", sieve_errmsg(env->ctx));
    fail(env, label, why);
    return;
  }
  if (sieve_plan_create(env->ctx, pat, &c->shape, c->dtype, &c->cfg, &plan)) {
    snprintf(why, sizeof why, "plan: %s", sieve_errmsg(env->ctx));
    fail(env, label, why);
    sieve_pattern_free(pat);
    return;
  }
  sieve_config used;
  sieve_plan_config(plan, &used);
  label_of(c, &used, label, sizeof label);
  rt_check_opts o = {.bshd = c->bshd, .rows = c->sample_rows, .step = c->step,
                     .layer = c->layer, .seed = env->seed ^ (cg_hash_bytes(label, strlen(label)) | 1),
                     .text_valid = c->text_valid};
  rt_check_result r;
  cg_err e = {0};
  sieve_status cs = rt_check_plan(api_plan_of(plan), &o, &r, &e);
  /* Which kernel ran: a TMA kernel's 8-warp stand-in says so; and
  ** whether the tables came from the disk cache. */
  const rt_plan_stats *ps = rt_plan_stats_of(api_plan_of(plan));
  if (ps->stand_ins)
    snprintf(label + strlen(label), sizeof label - strlen(label), " (8-warp stand-in)");
  else if (ps->permute_bytes)
    snprintf(label + strlen(label), sizeof label - strlen(label), " (permuted)");
  if (ps->tables_from_cache) snprintf(label + strlen(label), sizeof label - strlen(label), " (tables from the cache)");
  if (!cs && c->cached_tables && !ps->tables_from_cache) {
    fail(env, label, "the block tables were built again, not read from the disk cache");
  } else if (cs) {
    snprintf(why, sizeof why, "check: %s", e.msg);
    fail(env, label, why);
  } else {
    verdict(env, label, &r);
  }
  sieve_plan_free(plan);
  sieve_pattern_free(pat);
  fflush(stdout);
}
