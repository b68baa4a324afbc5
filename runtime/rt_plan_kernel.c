/*
** A plan's kernel: its cache key, the disk cache, code generation and the
** driver's link; and a TMA kernel's 8-warp stand-in.
*/
#include "rt_plan_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_attn_tables.h"
#include "rt_sha256.h"

/* The pattern's own table blocks (the builder's 128 where it declares none). */
static void own_blocks(const cg_pattern *p, int *bq, int *bk) {
  *bq = cg_pattern_block_q(p);
  *bk = cg_pattern_block_k(p);
}

int rt_plan_key(const cg_attn_spec *s, const rt_device *dev, char *out, size_t n) {
  const cg_pattern *pt = s->pattern;
  char ir[RT_SHA256_HEX], lay[512];
  if (rt_sha256_hex(pt->ir_text, strlen(pt->ir_text), ir)) return (int)n; /* no key */
  if (rt_key_layouts(pt, lay, sizeof lay) >= (int)sizeof lay) return (int)n;  /* too long: no key */
  const sieve_shape *sh = &s->shape;
  char bits[256] = "";
  int used = 0;
  if (s->bits) used = snprintf(bits, sizeof bits, "bitmasks %x\n", (unsigned)s->bits);
  if (s->bits && !cg_attn_bits_ahead(s)) used += snprintf(bits + used, sizeof bits - (size_t)used, "bits at the step\n");
  if (s->cfg.sched) used += snprintf(bits + used, sizeof bits - (size_t)used, "sched %s\n", cg_sched_name(s->cfg.sched));
  if (s->segs) used += snprintf(bits + used, sizeof bits - (size_t)used, "segments\n");
  if (cg_attn_rescale_moved(s))
    used += snprintf(bits + used, sizeof bits - (size_t)used, "rescale %s\n", cg_attn_rescale_under_s(s) ? "under S" : "after P V");
  int bq, bk, oq, ok;
  cg_attn_table_blocks(s, &bq, &bk);
  own_blocks(pt, &oq, &ok);
  /* Keys of kernels on the pattern's own blocks stay as they were. */
  if (bq != oq || bk != ok) snprintf(bits + used, sizeof bits - (size_t)used, "tables q=%d k=%d\n", bq, bk);
  return snprintf(out, n,
                  "sieve kernel cache key 1\n"
                  "kernel attention-forward\n"
                  "pattern %s\n"
                  "%s"
                  "shape heads=%d head_dim=%d frames=%d height=%d width=%d text=%d text_after=%d\n"
                  "dtype %s\n"
                  "config block_m=%d block_n=%d warps=%d stages=%d\n"
                  "arch %s\n"
                  "device sm_%d%d\n"
                  "llvm %s\n"
                  "sieve %s source %s\n"
                  "driver %d\n"
                  "%s",
                  ir, lay, sh->heads, sh->head_dim, sh->frames, sh->height, sh->width,
                  sh->text, sh->text_after, s->dtype == CG_FP16 ? "fp16" : "bf16",
                  s->cfg.block_m, s->cfg.block_n, s->cfg.warps, s->cfg.stages,
                  cg_arch_name(s->arch), dev->sm_major, dev->sm_minor,
                  SIEVE_LLVM_VERSION, SIEVE_VERSION, rt_source_id, dev->driver_version, bits);
}

static sieve_status load_cubin(rt_plan *p, const void *cubin, const char *name,
                               cg_err *e) {
  if (strlen(name) >= sizeof p->kernel)
    return cg_fail(e, SIEVE_ERR_CODEGEN, "kernel name of %zu bytes", strlen(name));
  sieve_status st = rt_module_load(p->cu, cubin, &p->mod, e);
  if (st) return st;
  strcpy(p->kernel, name);
  st = rt_kernel_get(p->cu, p->mod, p->kernel, p->dims.smem, &p->fn, e);
  if (st) {
    rt_module_unload(p->cu, p->mod, NULL);  /* the first error is the one kept */
    p->mod = NULL;
  }
  return st;
}

/*
** A cache payload is the kernel's name, a NUL, then the cubin: a hit needs
** no code generation to know the name. Anything that goes wrong on the way
** is a note and a rebuild, never a failure.
*/
int rt_plan_from_cache(rt_plan *p, rt_cache *cache, const char *key) {
  rt_plan_stats *s = &p->stats;
  void *blob = NULL;
  size_t n = 0;
  cg_err ce = {0};
  if (rt_cache_load(cache, key, &blob, &n, &ce)) {
    snprintf(s->cache_note, sizeof s->cache_note, "%s", ce.msg);
    return 0;
  }
  if (!blob) return 0;
  const char *nul = memchr(blob, 0, n < 256 ? n : 256);
  int ok = 0;
  if (!nul || nul == blob || (size_t)(nul - (char *)blob) + 1 == n) {
    snprintf(s->cache_note, sizeof s->cache_note, "cache entry holds no kernel name; rebuilt");
  } else if (load_cubin(p, nul + 1, blob, &ce)) {
    /* A cubin that passed its checksum but will not load (a driver change
    ** the key missed): build it again. */
    snprintf(s->cache_note, sizeof s->cache_note, "cached kernel did not load: %s", ce.msg);
  } else {
    ok = 1;
  }
  free(blob);
  return ok;
}

/* Code generation and the driver's link: *name and *cubin are malloc'd. */
sieve_status rt_plan_compile_kernel(rt_plan *p, char **name, void **cubin, size_t *n, cg_err *e) {
  rt_plan_stats *s = &p->stats;
  char *ptx = NULL;
  *name = NULL;
  *cubin = NULL;
  double t0 = rt_plan_now_ms();
  sieve_status st = cg_attn_build(&p->spec, &ptx, name, NULL, e);
  double t1 = rt_plan_now_ms();
  s->codegen_ms = t1 - t0;
  if (!st) st = rt_ptx_link(p->cu, ptx, *name, cubin, n, e);
  s->link_ms = rt_plan_now_ms() - t1;
  free(ptx);
  return st;
}

void rt_plan_store_kernel(rt_plan_stats *s, rt_cache *cache, const char *key, const char *name,
                         const void *cubin, size_t n) {
  size_t ln = strlen(name) + 1;
  cg_err ce = {0};
  void *blob = malloc(ln + n);
  if (!blob) {
    snprintf(s->cache_note, sizeof s->cache_note, "no memory to store the kernel");
    return;
  }
  memcpy(blob, name, ln);
  memcpy((char *)blob + ln, cubin, n);
  /* The kernel runs either way; a cache that refuses it only costs the
  ** next process a compile. */
  if (rt_cache_store(cache, key, blob, ln + n, &ce))
    snprintf(s->cache_note, sizeof s->cache_note, "%s", ce.msg);
  free(blob);
}

sieve_status rt_plan_build_kernel(rt_plan *p, rt_cache *cache, const char *key, cg_err *e) {
  char *name = NULL;
  void *cubin = NULL;
  size_t n = 0;
  sieve_status st = rt_plan_compile_kernel(p, &name, &cubin, &n, e);
  if (!st) st = load_cubin(p, cubin, name, e);
  if (!st && cache) rt_plan_store_kernel(&p->stats, cache, key, name, cubin, n);
  free(cubin);
  free(name);
  return st;
}

/* The stand-in kernel: the default config's address-arithmetic kernel
** (8 warps) for the same spec; compiled here, once, without the cache.
** It runs at most 128 query rows and 128-key steps (its limits), so a wide
** config's stand-in has a grid of its own; it reads the plan's tables, so
** its tiles divide their blocks (64 rows on 4 warps in 192-row blocks, and
** for one consumer warpgroup's 64). */
sieve_status rt_plan_build_fallback(rt_plan *p, cg_err *e) {
  cg_attn_spec fs = p->spec;
  int bq, bk;
  cg_attn_table_blocks(&p->spec, &bq, &bk);
  fs.pattern = rt_plan_tab_pattern(p);
  fs.cfg.warps = 8;
  fs.segs = 0;  /* the stand-in writes none (rt_plan_segs_written) */
  if (fs.cfg.block_m > 128) fs.cfg.block_m = 128;
  if (bq % fs.cfg.block_m || fs.cfg.block_m == 64) {
    fs.cfg.block_m = 64;
    fs.cfg.warps = 4;
  }
  if (fs.cfg.block_n > 128) fs.cfg.block_n = 128;
  while (bk % fs.cfg.block_n) fs.cfg.block_n /= 2;
  if (fs.cfg.stages > 3) fs.cfg.stages = 3;
  char *ptx = NULL, *name = NULL;
  void *cubin = NULL;
  size_t n = 0;
  sieve_status st = cg_attn_build(&fs, &ptx, &name, NULL, e);
  if (!st) st = rt_ptx_link(p->cu, ptx, name, &cubin, &n, e);
  if (!st) st = rt_module_load(p->cu, cubin, &p->fb_mod, e);
  p->fb_dims = p->dims;
  p->fb_dims.block[0] = 32u * (unsigned)fs.cfg.warps;
  p->fb_grid0 = (unsigned)((sieve_shape_tokens(&fs.shape) + fs.cfg.block_m - 1) / fs.cfg.block_m);
  p->fb_dims.smem = (unsigned)cg_attn_smem_bytes(&fs);
  if (!st && (st = rt_kernel_get(p->cu, p->fb_mod, name, p->fb_dims.smem, &p->fb_fn, e))) {
    rt_module_unload(p->cu, p->fb_mod, NULL);
    p->fb_mod = NULL;
  }
  free(ptx);
  free(name);
  free(cubin);
  return st;
}
