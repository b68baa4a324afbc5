/*
** The "dyn" group: dynamic patterns on the GPU.
*/
#include <stdio.h>

#include "gpu_dyn.h"
#include "rt_ctx.h"

void gpu_dyn_verdict(gpu_env *env, int ok, const char *label, const char *why) {
  printf("%s %s: %s\n", ok ? "pass" : "FAIL", label, why);
  if (ok) env->passed++;
  else env->failed++;
  fflush(stdout);
}

sieve_pattern *gpu_dyn_load(gpu_env *env, const char *name, const char *const *ov, char *why, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.lua", env->patterns, name);
  sieve_pattern *p = NULL;
  if (sieve_pattern_load(env->ctx, path, ov, &p)) snprintf(why, n, "load: %s", sieve_errmsg(env->ctx));
  return p;
}

const rt_device *gpu_dyn_device(gpu_env *env) { return env->ctx->dev; }

void gpu_dyn(gpu_env *env) {
  gpu_dyn_tables(env);
  gpu_dyn_search(env);
  gpu_dyn_profile(env);
}
