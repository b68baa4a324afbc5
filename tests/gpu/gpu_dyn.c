/*
** The "dyn" group: dynamic patterns on the GPU.
*/
#include <stdio.h>

#include "api.h"
#include "gpu_dyn.h"

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

int gpu_bhsd_alloc(const gpu_env *env, gpu_bhsd *t, int B, int H, int64_t S, int D) {
  *t = (gpu_bhsd){.n = (size_t)B * (size_t)H * (size_t)S * (size_t)D};
  CUdeviceptr *bufs[4] = {&t->q, &t->k, &t->v, &t->o};
  for (int i = 0; i < 4; i++)
    if (RT_CU(env->cu, NULL, cuMemAlloc, bufs[i], 2 * t->n)) return -1;
  if (RT_CU(env->cu, NULL, cuMemAlloc, &t->lse, 4 * (size_t)B * (size_t)H * (size_t)S)) return -1;
  int64_t sb = (int64_t)H * S * D, sh = S * D;
  t->tq = (sieve_tensor){t->q, sb, sh, D};
  t->tk = (sieve_tensor){t->k, sb, sh, D};
  t->tv = (sieve_tensor){t->v, sb, sh, D};
  t->to = (sieve_tensor){t->o, sb, sh, D};
  return 0;
}

int gpu_bhsd_put(const gpu_env *env, gpu_bhsd *t, int which, const uint16_t *bits) {
  CUdeviceptr dst = which == 0 ? t->q : which == 1 ? t->k : t->v;
  return RT_CU(env->cu, NULL, cuMemcpyHtoD, dst, bits, 2 * t->n) ? -1 : 0;
}

void gpu_bhsd_free(const gpu_env *env, gpu_bhsd *t) {
  CUdeviceptr m[5] = {t->q, t->k, t->v, t->o, t->lse};
  for (int i = 0; i < 5; i++)
    if (m[i]) RT_CU(env->cu, NULL, cuMemFree, m[i]);
  *t = (gpu_bhsd){0};
}

void gpu_dyn(gpu_env *env) {
  gpu_dyn_tables(env);
  gpu_dyn_search(env);
  gpu_dyn_profile(env);
}
