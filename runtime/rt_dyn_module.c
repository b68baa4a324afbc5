/*
** Modules of the dynamic-pattern kernels: one cache entry per module, its
** payload the cubin alone (the kernels' names are fixed by their
** generators), and the cache key shaped like the attention kernel's.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_dyn.h"
#include "rt_module.h"
#include "rt_sha256.h"

int rt_key_layouts(const cg_pattern *p, char *out, size_t n) {
  int len = 0;
  if (n) out[0] = 0;
  for (int c = 0; c < p->nclasses; c++) {
    if (!p->auto_layout || !p->auto_layout[c]) continue;
    char name[64];
    cg_layout_text(&p->classes[c].layout, name, sizeof name);
    size_t at = (size_t)len < n ? (size_t)len : n;
    len += snprintf(out + at, n - at, "%s%d=%s", len ? " " : "layouts ", c, name);
  }
  size_t at = (size_t)len < n ? (size_t)len : n;
  if (len) len += snprintf(out + at, n - at, "\n");
  return len;
}

int rt_dyn_key(char *out, size_t n, const char *kind, const cg_pattern *p, const sieve_shape *s,
               cg_arch arch, const rt_device *dev, const char *extra) {
  char ir[RT_SHA256_HEX], lay[512];
  if (rt_sha256_hex(p->ir_text, strlen(p->ir_text), ir)) return (int)n; /* no key */
  if (rt_key_layouts(p, lay, sizeof lay) >= (int)sizeof lay) return (int)n;  /* too long: no key */
  return snprintf(out, n,
                  "sieve kernel cache key 1\n"
                  "kernel %s\n"
                  "pattern %s\n"
                  "%s"
                  "shape heads=%d head_dim=%d frames=%d height=%d width=%d text=%d text_after=%d\n"
                  "%s\n"
                  "arch %s\n"
                  "device sm_%d%d\n"
                  "llvm %s\n"
                  "sieve %s source %s\n"
                  "driver %d\n",
                  kind, ir, lay, s->heads, s->head_dim, s->frames, s->height, s->width, s->text,
                  s->text_after, extra ? extra : "", cg_arch_name(arch), dev->sm_major,
                  dev->sm_minor, SIEVE_LLVM_VERSION, SIEVE_VERSION, rt_source_id, dev->driver_version);
}

/* A cached cubin that loads; anything else is a miss (and a rebuild). */
static int cached(const rt_cuda *cu, rt_cache *cache, const char *key, CUmodule *out) {
  void *blob = NULL;
  size_t n = 0;
  cg_err ce = {0};
  if (!cache || rt_cache_load(cache, key, &blob, &n, &ce) || !blob) return 0;
  int ok = !rt_module_load(cu, blob, out, &ce);
  free(blob);
  return ok;
}

sieve_status rt_dyn_module(const rt_cuda *cu, rt_cache *cache, const char *key, rt_dyn_gen gen,
                           void *ud, CUmodule *out, int *from_cache, cg_err *e) {
  *out = NULL;
  if (from_cache) *from_cache = 0;
  if (cached(cu, cache, key, out)) {
    if (from_cache) *from_cache = 1;
    return SIEVE_OK;
  }
  char *ptx = NULL;
  void *cubin = NULL;
  size_t n = 0;
  sieve_status st = gen(ud, &ptx, e);
  if (!st) st = rt_ptx_link(cu, ptx, "sieve_dyn", &cubin, &n, e);
  if (!st) st = rt_module_load(cu, cubin, out, e);
  if (!st && cache) {
    cg_err ce = {0};
    /* A cache that refuses the entry costs the next process a compile only. */
    rt_cache_store(cache, key, cubin, n, &ce);
  }
  free(ptx);
  free(cubin);
  return st;
}

sieve_status rt_dyn_launch(const rt_cuda *cu, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                           unsigned threads, unsigned smem, CUstream s, void **params, cg_err *e) {
  rt_dims d = {{gx, gy, gz}, {threads, 1, 1}, smem};
  return rt_launch(cu, f, &d, s, params, e);
}
