#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include "rt_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cg_attn_tables.h"
#include "cg_permute.h"
#include "rt_dyn.h"
#include "rt_module.h"
#include "rt_sched.h"
#include "rt_sha256.h"

#define NPARAMS 23  /* the kernel ABI of cg_attn.h */
#define NTMAPS 3    /* ... and the tensor maps of Q, K, V after them (cg_attn_uses_tma) */
#define NSCHED 4    /* ... and a persistent kernel's tile order after those (cg_attn_sched.h) */

struct rt_plan {
  const rt_cuda *cu;
  CUcontext ctx;
  cg_attn_spec spec;
  /* The pattern with the table blocks the kernel reads (cg_attn_table_blocks)
  ** where they are not its own: a view of spec.pattern, which the tables
  ** are built from; NULL where the pattern's own blocks serve. */
  cg_pattern *tab_pat;
  int dynamic;             /* the mask reads step or layer: tables follow them */
  double density;          /* NAN until known: plans on GPU-built tables count it on demand */
  int step0, layer0;       /* the step the plan was made for, whose density it reports */
  CUmodule mod;
  CUfunction fn;
  char kernel[256];
  rt_dims dims;
  /* Device tables: the packed tables, then head_off[H] (int32s). */
  CUdeviceptr dmem;
  size_t dmem_bytes;
  /* A persistent kernel (cfg.sched): after head_off in dmem, its tile order,
  ** the identity order (runs over some heads: rt_plan_run_part) and the
  ** counter; launches of `ctas` CTAs. */
  CUdeviceptr order, ident;
  CUdeviceptr sched_mem;   /* ... or, on GPU-built tables, their own memory */
  int ctas, part;
  int32_t *pending;        /* rebuilt tables the next run uploads */
  size_t pending_bytes;
  rt_dyn_tables *gt;       /* step-dependent masks: tables built on the GPU */
  int gt_pending;          /* the next run builds them first */
  int borrowed;            /* running on tables lent by rt_plan_use_tables */
  /* The schedule's warm-up (the pattern's dense_steps, dense_layers): a
  ** plan of the dense pattern, run instead while (step, layer) is in it;
  ** the sparse tables are left alone until the warm-up ends. */
  rt_plan *dense;
  cg_pattern *dense_pat;
  /* The mask folds to true at this shape (cg_attn_folds_dense): the dense
  ** plan runs at every step, and the plan has no tables or kernel of its own. */
  int folded;
  /* The pattern at the kernel's query rows (cg_attn_merge_rows); NULL: the caller's. */
  cg_pattern *rows_pat;
  int warm;
  CUdeviceptr own_tabs, own_head_off;
  /* Parameter values in ABI order, and the pointers cuLaunchKernel reads:
  ** set up once, so a run only stores values. */
  struct {
    CUdeviceptr q, k, v, o, lse;
    int64_t stride[12];
    CUdeviceptr tabs, head_off;
    int32_t step, layer;
    float scale;
    CUdeviceptr tlen;
    CUtensorMap tmap[NTMAPS];
    CUdeviceptr sched;
    int32_t ntiles, nitems;
    CUdeviceptr ctr;
  } arg;
  void *params[NPARAMS + NTMAPS + NSCHED];
  /* Valid text tokens per batch element (rt_plan_set_text): a device copy
  ** the kernel reads, and the host values the next run uploads. */
  CUdeviceptr tlen_dev;
  int32_t *tlen_host;
  int tlen_pending;
  /* A TMA kernel's stand-in for tensors the driver will not map: the
  ** 8-warp kernel of the same spec (same parameters up to tlen), built
  ** at the first run that needs it. */
  CUmodule fb_mod;
  CUfunction fb_fn;
  rt_dims fb_dims;
  unsigned fb_grid0;     /* the stand-in's query blocks */
  int no_tma;              /* $SIEVE_TMA=0: every run takes the stand-in */
  /* A TMA kernel over head classes in other layouts (cg_attn_permutes):
  ** the permute kernel and its outputs, Q, K, V in layout order, [B, H, S,
  ** D] contiguous each, one after the other in `scratch`. */
  CUmodule pm_mod;
  CUfunction pm_fn;
  CUdeviceptr scratch;
  size_t scratch_bytes;
  struct {
    CUdeviceptr q, k, v;
    int64_t stride[9];
    CUdeviceptr qp, kp, vp;
  } pm_arg;
  void *pm_params[15];
  rt_plan_stats stats;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void bind_params(rt_plan *p) {
  void **v = p->params;
  *v++ = &p->arg.q;
  *v++ = &p->arg.k;
  *v++ = &p->arg.v;
  *v++ = &p->arg.o;
  *v++ = &p->arg.lse;
  for (int i = 0; i < 12; i++) *v++ = &p->arg.stride[i];
  *v++ = &p->arg.tabs;
  *v++ = &p->arg.head_off;
  *v++ = &p->arg.step;
  *v++ = &p->arg.layer;
  *v++ = &p->arg.scale;
  *v++ = &p->arg.tlen;
  for (int i = 0; i < NTMAPS; i++) *v++ = &p->arg.tmap[i];
  *v++ = &p->arg.sched;
  *v++ = &p->arg.ntiles;
  *v++ = &p->arg.nitems;
  *v++ = &p->arg.ctr;
  v = p->pm_params;
  *v++ = &p->pm_arg.q;
  *v++ = &p->pm_arg.k;
  *v++ = &p->pm_arg.v;
  for (int i = 0; i < 9; i++) *v++ = &p->pm_arg.stride[i];
  *v++ = &p->pm_arg.qp;
  *v++ = &p->pm_arg.kp;
  *v++ = &p->pm_arg.vp;
}

/* ------------------------------------------------------------ cache key */

/* The pattern's own table blocks (the builder's 128 where it declares none). */
static void own_blocks(const cg_pattern *p, int *bq, int *bk) {
  *bq = cg_pattern_block_q(p);
  *bk = cg_pattern_block_k(p);
}

int rt_plan_key(const cg_attn_spec *s, const rt_device *dev, char *out, size_t n) {
  const cg_pattern *pt = s->pattern;
  char ir[RT_SHA256_HEX];
  rt_sha256_hex(pt->ir_text, strlen(pt->ir_text), ir);
  const sieve_shape *sh = &s->shape;
  char bits[128] = "";
  int used = 0;
  if (s->bits) used = snprintf(bits, sizeof bits, "bitmasks %x\n", (unsigned)s->bits);
  if (s->bits && !cg_attn_bits_ahead(s)) used += snprintf(bits + used, sizeof bits - (size_t)used, "bits at the step\n");
  if (s->cfg.sched) used += snprintf(bits + used, sizeof bits - (size_t)used, "sched %s\n", cg_sched_name(s->cfg.sched));
  int bq, bk, oq, ok;
  cg_attn_table_blocks(s, &bq, &bk);
  own_blocks(pt, &oq, &ok);
  /* Keys of kernels on the pattern's own blocks stay as they were. */
  if (bq != oq || bk != ok) snprintf(bits + used, sizeof bits - (size_t)used, "tables q=%d k=%d\n", bq, bk);
  return snprintf(out, n,
                  "sieve kernel cache key 1\n"
                  "kernel attention-forward\n"
                  "pattern %s\n"
                  "shape heads=%d head_dim=%d frames=%d height=%d width=%d text=%d text_after=%d\n"
                  "dtype %s\n"
                  "config block_m=%d block_n=%d warps=%d stages=%d\n"
                  "arch %s\n"
                  "device sm_%d%d\n"
                  "llvm %s\n"
                  "sieve %s\n"
                  "driver %d\n"
                  "%s",
                  ir, sh->heads, sh->head_dim, sh->frames, sh->height, sh->width,
                  sh->text, sh->text_after, s->dtype == CG_FP16 ? "fp16" : "bf16",
                  s->cfg.block_m, s->cfg.block_n, s->cfg.warps, s->cfg.stages,
                  cg_arch_name(s->arch), dev->sm_major, dev->sm_minor,
                  SIEVE_LLVM_VERSION, SIEVE_VERSION, dev->driver_version, bits);
}

/* ----------------------------------------------------------------- tables */

static cg_pattern *tables_pattern(const rt_plan *p) { return p->tab_pat ? p->tab_pat : p->spec.pattern; }

/* Tables for one (step, layer) on the host: the packed tables, then
** head_off[H], in one block that one copy uploads. */
typedef struct host_tables {
  int32_t *buf;
  size_t bytes;
  size_t head_off_at;    /* byte offset of head_off[] in buf */
  size_t order_at;       /* ... of a persistent kernel's orders and counter (0: none) */
  double density;
} host_tables;

static sieve_status build_tables(const rt_plan *p, int step, int layer,
                                 host_tables *h, cg_err *e) {
  const sieve_shape *sh = &p->spec.shape;
  size_t heads = (size_t)sh->heads, n = 0;
  cg_tableset *t = NULL;
  int32_t *packed = NULL, *head_off = NULL;
  memset(h, 0, sizeof *h);
  const cg_attn_config *c = &p->spec.cfg;
  int nqk = (int)((sieve_shape_tokens(sh) + c->block_m - 1) / c->block_m);
  size_t tiles = c->sched ? heads * (size_t)nqk : 0, extra = tiles ? 2 * tiles + 2 : 0;
  sieve_status st = cg_tables_build_bits(tables_pattern(p), sh, step, layer, 0, p->spec.bits, &t, e);
  if (st) return st;
  if (!(head_off = malloc(heads * sizeof *head_off)))
    st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for block tables");
  if (!st) st = cg_tables_pack(t, &packed, &n, head_off, e);
  if (!st && !(h->buf = malloc((n + heads + extra) * sizeof *h->buf)))
    st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for block tables");
  if (!st) {
    memcpy(h->buf, packed, n * sizeof *h->buf);
    memcpy(h->buf + n, head_off, heads * sizeof *h->buf);
    h->bytes = (n + heads + extra) * sizeof *h->buf;
    h->head_off_at = n * sizeof *h->buf;
    if (tiles) {
      int32_t *order = h->buf + n + heads;
      if (rt_sched_order(packed, head_off, (int)heads, nqk, c->block_m, t->nq, t->block_q, order))
        st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the tile order");
      for (size_t i = 0; i < tiles; i++) order[tiles + i] = (int32_t)i;
      order[2 * tiles] = order[2 * tiles + 1] = 0;  /* the counter starts at zero */
      h->order_at = (n + heads) * sizeof *h->buf;
    }
    double pairs = 0, seq = (double)t->seq;
    for (size_t i = 0; i < heads; i++) pairs += (double)t->tables[t->head_table[i]].allowed_pairs;
    h->density = pairs / ((double)heads * seq * seq);
  }
  free(packed);
  free(head_off);
  cg_tables_free(t);
  return st;
}

/* Makes room for h on the device and points the kernel's arguments at it;
** the bytes themselves are copied by the caller. */
static sieve_status place_tables(rt_plan *p, const host_tables *h, cg_err *e) {
  const rt_cuda *cu = p->cu;
  sieve_status st;
  if (h->bytes > p->dmem_bytes) {
    if (p->dmem) {
      /* Launches already enqueued may still read the old buffer. */
      if ((st = RT_CU(cu, e, cuCtxSynchronize))) return st;
      if ((st = RT_CU(cu, e, cuMemFree, p->dmem))) return st;
      p->dmem = p->arg.tabs = p->arg.head_off = 0;  /* runs refuse until replaced */
      p->dmem_bytes = 0;
    }
    size_t want = h->bytes + h->bytes / 4;  /* later steps may need a little more */
    if ((st = RT_CU(cu, e, cuMemAlloc, &p->dmem, want))) return st;
    p->dmem_bytes = want;
  }
  p->arg.tabs = p->dmem;
  p->arg.head_off = p->dmem + h->head_off_at;
  if (h->order_at) {
    size_t tiles = (h->bytes - h->order_at) / sizeof(int32_t) / 2 - 1;
    p->order = p->dmem + h->order_at;
    p->ident = p->order + 4 * tiles;
    p->arg.ctr = p->ident + 4 * tiles;
  }
  p->density = h->density;
  return SIEVE_OK;
}

static int mask_reads_step(const cg_pattern *pt) {
  uint32_t vars = 0;
  for (int i = 0; i < pt->nclasses; i++) vars |= cg_vars_used(pt->g, pt->classes[i].mask);
  return (vars & (1u << CG_V_STEP | 1u << CG_V_LAYER)) != 0;
}

/*
** A mask that follows the step or layer gets its tables from the generated
** GPU builder (rt_dyn.h) on the run's stream, instead of a host rebuild and
** an upload per step; so does any mask under SIEVE_TABLES=gpu. The host
** builds nothing then: the density, which needs every partial block's
** count, is counted on the host when first asked for (rt_plan_density).
*/
static int gpu_tables(const rt_plan *p) {
  return (p->dynamic || rt_dyn_tables_always()) && rt_dyn_tables_enabled(p->cu);
}

static sieve_status use_gpu_tables(rt_plan *p, const rt_device *dev, rt_cache *cache, cg_err *e) {
  sieve_status st = rt_dyn_tables_create(tables_pattern(p), &p->spec.shape, p->spec.arch, dev, cache,
                                         p->spec.bits, &p->gt, e);
  if (st) return st;
  rt_dyn_tables_ptrs(p->gt, &p->arg.tabs, &p->arg.head_off);
  p->gt_pending = 1;
  return SIEVE_OK;
}

/*
** Tables the GPU builds are never on the host, so a persistent kernel on
** them walks its tiles in the grid's order (head-major), from memory of
** its own: the order, which is also the identity, and the counter.
*/
static sieve_status identity_order(rt_plan *p, cg_err *e) {
  int64_t nqk = (sieve_shape_tokens(&p->spec.shape) + p->spec.cfg.block_m - 1) / p->spec.cfg.block_m;
  size_t tiles = (size_t)nqk * (size_t)p->spec.shape.heads, bytes = (tiles + 2) * sizeof(int32_t);
  int32_t *h = malloc(bytes);
  if (!h) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the tile order");
  for (size_t i = 0; i < tiles; i++) h[i] = (int32_t)i;
  h[tiles] = h[tiles + 1] = 0;
  sieve_status st = RT_CU(p->cu, e, cuMemAlloc, &p->sched_mem, bytes);
  if (!st) st = RT_CU(p->cu, e, cuMemcpyHtoD, p->sched_mem, h, bytes);
  free(h);
  if (st) return st;
  p->order = p->ident = p->sched_mem;
  p->arg.ctr = p->sched_mem + 4 * tiles;
  return SIEVE_OK;
}

/* ---------------------------------------------------------------- permute */

static sieve_status gen_permute(void *ud, char **ptx, cg_err *e) {
  rt_plan *p = ud;
  return cg_permute_build(p->spec.pattern, &p->spec.shape, p->spec.arch, ptx, e);
}

/*
** The permute kernel and its scratch: 3 B H S D 16-bit elements (2.2 GB at
** hunyuan-720p, 0.3 GB at wan-1.3b-480p), allocated once here so a run
** allocates nothing; a device that has no room refuses the plan.
*/
static sieve_status use_permute(rt_plan *p, const rt_plan_spec *s, const rt_device *dev, rt_cache *cache, cg_err *e) {
  const sieve_shape *sh = &p->spec.shape;
  char key[2048];
  if (rt_dyn_key(key, sizeof key, "layout-permute", p->spec.pattern, sh, p->spec.arch, dev, "permute 1") >= (int)sizeof key)
    cache = NULL;
  sieve_status st = rt_dyn_module(p->cu, cache, key, gen_permute, p, &p->pm_mod, NULL, e);
  if (!st) st = rt_kernel_get(p->cu, p->pm_mod, CG_PERMUTE_KERNEL, 0, &p->pm_fn, e);
  if (st) return st;
  size_t one = 2 * (size_t)sh->batch * (size_t)sh->heads * (size_t)sieve_shape_tokens(sh) * (size_t)sh->head_dim;
  CUdeviceptr base = 0;
  const rt_plan *o = s->share;
  if (o && o->ctx == p->ctx && o->scratch_bytes >= 3 * one) {
    base = o->pm_arg.qp;  /* the owner's buffer, not freed here */
  } else {
    CUresult r = p->cu->cuMemAlloc(&p->scratch, 3 * one);
    if (r != CUDA_SUCCESS) {
      p->scratch = 0;
      return cg_fail(e, SIEVE_ERR_LIMIT, "the layout permute needs %zu MiB of device memory for Q, K and V in layout "
                     "order, and the device has no room for it (CUDA error %d); SIEVE_PERMUTE=0 or a config with "
                     "8 warps keeps the address-arithmetic kernel", 3 * one >> 20, (int)r);
    }
    p->scratch_bytes = 3 * one;
    base = p->scratch;
  }
  p->stats.permute_bytes = 3 * one;
  p->pm_arg.qp = base;
  p->pm_arg.kp = base + one;
  p->pm_arg.vp = base + 2 * one;
  return SIEVE_OK;
}

/* Rows TMA and the permute's 16-byte copies can read: base and row stride
** on 16 bytes (the other strides only move whole rows). */
static int rows16(const rt_plan *p, const sieve_tensor *t) {
  return t->ptr % 16 == 0 && t->stride_s % 8 == 0 && (p->dims.grid[1] == 1 || t->stride_h % 8 == 0) &&
         (p->dims.grid[2] == 1 || t->stride_b % 8 == 0);
}

/* The permuted tensor i (0 Q, 1 K, 2 V) as the attention kernel sees it. */
static sieve_tensor permuted(const rt_plan *p, int i) {
  const sieve_shape *sh = &p->spec.shape;
  int64_t S = sieve_shape_tokens(sh), D = sh->head_dim;
  CUdeviceptr base = i == 0 ? p->pm_arg.qp : i == 1 ? p->pm_arg.kp : p->pm_arg.vp;
  sieve_tensor t = {.ptr = base, .stride_b = (int64_t)sh->heads * S * D, .stride_h = S * D, .stride_s = D};
  return t;
}

/* ----------------------------------------------------------------- kernel */

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
static int from_cache(rt_plan *p, rt_cache *cache, const char *key) {
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
static sieve_status compile_kernel(rt_plan *p, char **name, void **cubin, size_t *n, cg_err *e) {
  rt_plan_stats *s = &p->stats;
  char *ptx = NULL;
  *name = NULL;
  *cubin = NULL;
  double t0 = now_ms();
  sieve_status st = cg_attn_build(&p->spec, &ptx, name, NULL, e);
  double t1 = now_ms();
  s->codegen_ms = t1 - t0;
  if (!st) st = rt_ptx_link(p->cu, ptx, *name, cubin, n, e);
  s->link_ms = now_ms() - t1;
  free(ptx);
  return st;
}

static void store_kernel(rt_plan_stats *s, rt_cache *cache, const char *key, const char *name,
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

static sieve_status build_kernel(rt_plan *p, rt_cache *cache, const char *key, cg_err *e) {
  char *name = NULL;
  void *cubin = NULL;
  size_t n = 0;
  sieve_status st = compile_kernel(p, &name, &cubin, &n, e);
  if (!st) st = load_cubin(p, cubin, name, e);
  if (!st && cache) store_kernel(&p->stats, cache, key, name, cubin, n);
  free(cubin);
  free(name);
  return st;
}

/* ----------------------------------------------------------------- create */

static sieve_status check_target(const rt_plan *p, const rt_device *dev, cg_err *e) {
  int sm = dev->sm_major * 10 + dev->sm_minor;
  if (sm < 80)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "%s is sm_%d; sieve's kernels need sm_80 or newer",
                   dev->name, sm);
  if (p->spec.arch == CG_SM90A && sm != 90)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "sm_90a kernels run on sm_90 only; %s is sm_%d",
                   dev->name, sm);
  if (p->dims.smem > (unsigned)dev->smem_optin)
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED,
                   "config block_m=%d block_n=%d warps=%d stages=%d needs %u bytes of shared "
                   "memory per block; %s allows %d",
                   p->spec.cfg.block_m, p->spec.cfg.block_n, p->spec.cfg.warps,
                   p->spec.cfg.stages, p->dims.smem, dev->name, dev->smem_optin);
  return SIEVE_OK;
}

static sieve_status resolve(rt_plan *p, const rt_plan_spec *s, cg_err *e) {
  cg_attn_spec *sp = &p->spec;
  sp->pattern = s->pattern;
  cg_shape_for(s->pattern, &s->shape, &sp->shape);
  sieve_status st = cg_shape_check(&sp->shape, e);
  if (st) return st;
  sp->dtype = s->dtype;
  sp->arch = s->arch;
  sp->cfg = s->cfg;
  if (!sp->cfg.block_m && !sp->cfg.block_n && !sp->cfg.warps && !sp->cfg.stages) {
    sp->cfg = cg_attn_default_config(sp);
    if (s->cfg.sched) sp->cfg.sched = s->cfg.sched;
  }
  /* The caller's pattern keeps the script's blocks; the kernel, its
  ** tables, its bitmasks and its cache key see the merged rows. */
  if ((st = cg_attn_merge_rows(sp, &p->rows_pat, e))) return st;
  /* Partial blocks by bitmask or predicate (cg_attn_bits): the tables and
  ** the kernel are made for the same classes. */
  sp->bits = cg_attn_bits(sp);
  if ((st = cg_attn_check(sp, e))) return st;
  if ((st = cg_attn_tables_view(sp, &p->tab_pat, e))) return st;
  int64_t seq = sieve_shape_tokens(&sp->shape);
  int64_t qblocks = (seq + sp->cfg.block_m - 1) / sp->cfg.block_m;
  if (qblocks > INT32_MAX || sp->shape.heads > 65535 || sp->shape.batch > 65535)
    return cg_fail(e, SIEVE_ERR_SHAPE, "grid (%lld, %d, %d) is past the GPU's limits",
                   (long long)qblocks, sp->shape.heads, sp->shape.batch);
  size_t smem = cg_attn_smem_bytes(sp);
  p->dims = (rt_dims){{(unsigned)qblocks, (unsigned)sp->shape.heads, (unsigned)sp->shape.batch},
                      {32u * (unsigned)sp->cfg.warps, 1, 1},
                      (unsigned)smem};
  p->dynamic = mask_reads_step(s->pattern);
  p->arg.step = s->step;
  p->arg.layer = s->layer;
  return SIEVE_OK;
}

/* The dense plan a schedule's warm-up or a folded mask runs: the default
** config, which suits dense attention. */
static sieve_status dense_plan(rt_plan *p, const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                               cg_err *e) {
  if (!(p->dense_pat = cg_pattern_dense_of(p->spec.pattern, e))) return e->status;
  rt_plan_spec ds = {.pattern = p->dense_pat, .shape = s->shape, .dtype = s->dtype, .arch = s->arch,
                     .step = s->step, .layer = s->layer};
  return rt_plan_create(&ds, dev, cache, &p->dense, e);
}

/* A folded plan is its dense plan under the pattern's name: it reports
** the kernel and config that run, and density 1. */
static sieve_status fold(rt_plan *p, const rt_plan_spec *s, const rt_device *dev, rt_cache *cache, cg_err *e) {
  sieve_status st = dense_plan(p, s, dev, cache, e);
  if (st) return st;
  p->folded = p->warm = 1;
  p->density = 1.0;
  p->spec.cfg = p->dense->spec.cfg;
  p->stats = p->dense->stats;
  snprintf(p->kernel, sizeof p->kernel, "%s", p->dense->kernel);
  return SIEVE_OK;
}

static int default_config(const cg_attn_config *c) { return !c->block_m && !c->block_n && !c->warps && !c->stages; }

sieve_status rt_plan_create(const rt_plan_spec *s, const rt_device *dev,
                            rt_cache *cache, rt_plan **out, cg_err *e) {
  *out = NULL;
  rt_plan *p = calloc(1, sizeof *p);
  if (!p) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a plan");
  bind_params(p);
  const char *tma = getenv("SIEVE_TMA");
  p->no_tma = tma && !strcmp(tma, "0");
  p->ctx = dev->ctx;
  sieve_status st = rt_cuda_get(&p->cu, e);
  if (!st) st = resolve(p, s, e);
  if (!st) st = check_target(p, dev, e);
  /* The warp-specialised kernels hold a multiprocessor each (their
  ** register cap at entry): one CTA per multiprocessor. */
  p->ctas = dev->sm_count > 0 ? dev->sm_count : 1;
  /* $SIEVE_SCHED_CTAS=n launches n instead, for tests (many tiles a CTA on
  ** small shapes) and measurement. */
  const char *nc = getenv("SIEVE_SCHED_CTAS");
  if (nc && atoi(nc) > 0) p->ctas = atoi(nc);

  host_tables h = {0};
  double t0 = now_ms();
  p->density = NAN;
  p->step0 = s->step;
  p->layer0 = s->layer;
  /* A config the caller chose is what it asked to run (the tuner's). */
  if (!st && default_config(&s->cfg) && cg_attn_folds_dense(p->spec.pattern, &p->spec.shape)) {
    if ((st = fold(p, s, dev, cache, e))) rt_plan_free(p, NULL);
    else *out = p;
    return st;
  }
  if (!st && gpu_tables(p)) {
    st = use_gpu_tables(p, dev, cache, e);
    if (!st && p->spec.cfg.sched) st = identity_order(p, e);
  } else {
    if (!st) st = build_tables(p, s->step, s->layer, &h, e);
    if (!st) st = place_tables(p, &h, e);
    if (!st) st = RT_CU(p->cu, e, cuMemcpyHtoD, p->dmem, h.buf, h.bytes);
    free(h.buf);
  }
  p->stats.tables_ms = now_ms() - t0;

  if (!st) {
    char key[2048];
    double t1 = now_ms();
    if (rt_plan_key(&p->spec, dev, key, sizeof key) >= (int)sizeof key) cache = NULL;
    p->stats.from_cache = cache && from_cache(p, cache, key);
    p->stats.load_ms = now_ms() - t1;
    if (!p->stats.from_cache) st = build_kernel(p, cache, key, e);
  }
  if (!st && cg_attn_permutes(&p->spec)) st = use_permute(p, s, dev, cache, e);
  if (!st && (p->spec.pattern->dense_steps || p->spec.pattern->dense_layers)) {
    st = dense_plan(p, s, dev, cache, e);
    if (!st) p->warm = cg_pattern_dense_at(p->spec.pattern, s->step, s->layer);
  }
  if (st) {
    rt_plan_free(p, NULL);  /* already failing: its own errors add nothing */
    return st;
  }
  *out = p;
  return SIEVE_OK;
}

/* The tuner's parallel build: rt_plan_create's kernel path up to the cache
** store, with no module loaded and nothing kept. */
sieve_status rt_plan_prebuild(const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                              rt_plan_stats *stats, cg_err *e) {
  rt_plan *p = calloc(1, sizeof *p);
  if (!p) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a plan");
  char key[2048], *name = NULL;
  void *cubin = NULL, *hit = NULL;
  size_t n = 0;
  sieve_status st = rt_cuda_get(&p->cu, e);
  if (!st) st = resolve(p, s, e);
  if (!st) st = check_target(p, dev, e);
  if (!st && !cache) st = cg_fail(e, SIEVE_ERR_ARG, "prebuilding a kernel needs a cache");
  if (!st && rt_plan_key(&p->spec, dev, key, sizeof key) >= (int)sizeof key)
    st = cg_fail(e, SIEVE_ERR_ARG, "kernel cache key too long");
  if (!st) {
    cg_err ce = {0};
    /* A damaged entry was removed by the load: building anew replaces it. */
    p->stats.from_cache = !rt_cache_load(cache, key, &hit, &n, &ce) && hit;
  }
  if (!st && !p->stats.from_cache) {
    st = compile_kernel(p, &name, &cubin, &n, e);
    if (!st) store_kernel(&p->stats, cache, key, name, cubin, n);
  }
  if (stats) *stats = p->stats;
  cg_pattern_view_free(p->tab_pat);
  cg_pattern_free(p->rows_pat);
  free(hit);
  free(cubin);
  free(name);
  free(p);
  return st;
}

/* ------------------------------------------------------------------- run */

sieve_status rt_plan_set_step(rt_plan *p, int step, int layer, cg_err *e) {
  if (p->dense) {
    p->warm = p->folded || cg_pattern_dense_at(p->spec.pattern, step, layer);
    if (p->warm) return SIEVE_OK;  /* no table work for the steps the dense kernel runs */
  }
  if (step == p->arg.step && layer == p->arg.layer) return SIEVE_OK;
  if (p->gt) {
    p->gt_pending |= p->dynamic;  /* a static mask's tables hold at every step */
  } else if (p->dynamic) {
    host_tables h;
    sieve_status st = build_tables(p, step, layer, &h, e);
    if (!st) st = place_tables(p, &h, e);
    if (st) {
      free(h.buf);
      return st;
    }
    free(p->pending);
    p->pending = h.buf;
    p->pending_bytes = h.bytes;
  }
  p->arg.step = step;
  p->arg.layer = layer;
  return SIEVE_OK;
}

/*
** The tensor map of a [B, H, S, D] view for the grid the launch covers:
** (D, S, H, B) with byte strides (ss, sh, sb), a 64 x rows box in the
** 128-byte swizzle the wgmma tiles use. 0 when the driver will not map it
** (TMA wants 16-byte aligned bases and strides below 2^40, among others).
*/
static int encode_tmap(const rt_plan *p, CUtensorMap *m, const sieve_tensor *t, int rows) {
  if (!p->cu->cuTensorMapEncodeTiled || p->no_tma) return 0;
  unsigned long long dims[4] = {(unsigned long long)p->spec.shape.head_dim,
                                (unsigned long long)sieve_shape_tokens(&p->spec.shape), p->dims.grid[1],
                                p->dims.grid[2]};
  int64_t st[3] = {t->stride_s, t->stride_h, t->stride_b};
  unsigned long long strides[3];
  for (int i = 0; i < 3; i++) {
    /* A dimension of one element has no step; any valid one will do. */
    if (dims[i + 1] == 1) st[i] = 8;
    if (st[i] <= 0) return 0;
    strides[i] = 2ull * (unsigned long long)st[i];
  }
  unsigned box[4] = {64, (unsigned)rows, 1, 1}, one[4] = {1, 1, 1, 1};
  int type = p->spec.dtype == CG_FP16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return p->cu->cuTensorMapEncodeTiled(m, type, 4, (void *)(uintptr_t)t->ptr, dims, strides, box, one,
                                       CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                       CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/* The stand-in kernel: the default config's address-arithmetic kernel
** (8 warps) for the same spec; compiled here, once, without the cache.
** It runs at most 128 query rows and 128-key steps (its limits), so a wide
** config's stand-in has a grid of its own; it reads the plan's tables, so
** its tiles divide their blocks (64 rows on 4 warps in 192-row blocks). */
static sieve_status build_fallback(rt_plan *p, cg_err *e) {
  cg_attn_spec fs = p->spec;
  int bq, bk;
  cg_attn_table_blocks(&p->spec, &bq, &bk);
  fs.pattern = tables_pattern(p);
  fs.cfg.warps = 8;
  if (fs.cfg.block_m > 128) fs.cfg.block_m = 128;
  if (bq % fs.cfg.block_m) {
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

static void put_strides(int64_t *out, const sieve_tensor *t) {
  out[0] = t->stride_b;
  out[1] = t->stride_h;
  out[2] = t->stride_s;
}

sieve_status rt_plan_permute(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                             const sieve_tensor *v, CUstream s, cg_err *e) {
  if (!p->pm_fn) return cg_fail(e, SIEVE_ERR_ARG, "plan %s does not permute", p->kernel);
  const sieve_tensor *t[3] = {q, k, v};
  for (int i = 0; i < 3; i++) put_strides(p->pm_arg.stride + 3 * i, t[i]);
  p->pm_arg.q = q->ptr;
  p->pm_arg.k = k->ptr;
  p->pm_arg.v = v->ptr;
  return rt_dyn_launch(p->cu, p->pm_fn, (unsigned)cg_permute_blocks(&p->spec.shape), p->dims.grid[1],
                       p->dims.grid[2], CG_PERMUTE_THREADS, 0, s, p->pm_params, e);
}

/* A persistent kernel over the grid's heads and batch elements: the
** table's order for whole runs, the identity over a run's first heads. */
static sieve_status launch_tiles(rt_plan *p, CUstream s, cg_err *e) {
  int64_t nqk = (sieve_shape_tokens(&p->spec.shape) + p->spec.cfg.block_m - 1) / p->spec.cfg.block_m;
  int64_t tiles = nqk * p->dims.grid[1], items = tiles * p->dims.grid[2];
  if (items > INT32_MAX) return cg_fail(e, SIEVE_ERR_SHAPE, "%lld query tiles: past a persistent kernel's 32-bit count", (long long)items);
  p->arg.sched = p->part ? p->ident : p->order;
  p->arg.ntiles = (int32_t)tiles;
  p->arg.nitems = (int32_t)items;
  rt_dims d = p->dims;
  d.grid[0] = (unsigned)(items < p->ctas ? items : p->ctas);
  d.grid[1] = d.grid[2] = 1;
  return rt_launch(p->cu, p->fn, &d, s, p->params, e);
}

sieve_status rt_plan_run(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                         const sieve_tensor *v, const sieve_tensor *o,
                         CUdeviceptr lse, float scale, CUstream s, cg_err *e) {
  sieve_status st;
  /* Lent tables (a search's selection) are run as lent, warm-up or not. */
  if (p->warm && !p->borrowed) return rt_plan_run(p->dense, q, k, v, o, lse, scale, s, e);
  if (!p->dmem && !p->gt)
    return cg_fail(e, SIEVE_ERR_ARG, "plan has no block tables: its last set_step failed");
  if (p->pending) {
    /* Ordered on s behind the launches that read the old tables; a pageable
    ** source is staged before the call returns, so it can go at once. */
    if ((st = RT_CU(p->cu, e, cuMemcpyHtoDAsync, p->dmem, p->pending, p->pending_bytes, s)))
      return st;
    free(p->pending);
    p->pending = NULL;
  }
  if (p->gt_pending) {
    if ((st = rt_dyn_tables_build(p->gt, p->arg.step, p->arg.layer, s, e))) return st;
    p->gt_pending = 0;
  }
  if ((st = rt_plan_text_sync(p, s, NULL, e))) return st;
  p->arg.q = q->ptr;
  p->arg.k = k->ptr;
  p->arg.v = v->ptr;
  p->arg.o = o->ptr;
  p->arg.lse = lse;
  put_strides(p->arg.stride + 0, q);
  put_strides(p->arg.stride + 3, k);
  put_strides(p->arg.stride + 6, v);
  put_strides(p->arg.stride + 9, o);
  p->arg.scale = scale > 0 ? scale : 1.0f / sqrtf((float)p->spec.shape.head_dim);
  if (cg_attn_uses_tma(&p->spec)) {
    const sieve_tensor *t[NTMAPS] = {q, k, v};
    sieve_tensor pt[NTMAPS];
    int perm = p->pm_fn != NULL, ok = !perm || (rows16(p, q) && rows16(p, k) && rows16(p, v));
    for (int i = 0; perm && i < NTMAPS; i++) {
      pt[i] = permuted(p, i);
      t[i] = &pt[i];
    }
    for (int i = 0; i < NTMAPS && ok; i++) ok = encode_tmap(p, &p->arg.tmap[i], t[i], i ? p->spec.cfg.block_n : p->spec.cfg.block_m);
    if (ok && perm) {
      /* Q, K, V into layout order on the same stream, then the attention
      ** reads them there; O and the LSE go straight to token order. */
      if ((st = rt_plan_permute(p, q, k, v, s, e))) return st;
      for (int i = 0; i < NTMAPS; i++) put_strides(p->arg.stride + 3 * i, t[i]);
      p->arg.q = t[0]->ptr;
      p->arg.k = t[1]->ptr;
      p->arg.v = t[2]->ptr;
    }
    if (!ok) {
      if (!p->fb_fn && (st = build_fallback(p, e))) return st;
      p->stats.stand_ins++;
      p->fb_dims.grid[0] = p->fb_grid0;
      p->fb_dims.grid[1] = p->dims.grid[1];
      p->fb_dims.grid[2] = p->dims.grid[2];
      return rt_launch(p->cu, p->fb_fn, &p->fb_dims, s, p->params, e);
    }
  }
  if (p->spec.cfg.sched) return launch_tiles(p, s, e);
  return rt_launch(p->cu, p->fn, &p->dims, s, p->params, e);
}

/*
** Batch element b only (all of them when b < 0) and heads h0 .. h0 + nh:
** the grid covers them, and Q, K, V, O, LSE and head_off start at (b, h0),
** so the kernel sees them as batch 0 (or b) and head i. Right for patterns
** whose mask and layout do not read the head, or with tables per (batch,
** head): SVG's plans of one class each, run over the heads profiling gave
** that class in one input; AdaSpa's tables selected for one input.
*/
sieve_status rt_plan_run_part(rt_plan *p, int b, int h0, int nh, const sieve_tensor *q,
                              const sieve_tensor *k, const sieve_tensor *v,
                              const sieve_tensor *o, CUdeviceptr lse, float scale, CUstream s,
                              cg_err *e) {
  if (p->warm && !p->borrowed) return rt_plan_run_part(p->dense, b, h0, nh, q, k, v, o, lse, scale, s, e);
  int heads = p->spec.shape.heads;
  if (h0 < 0 || nh < 1 || h0 + nh > heads)
    return cg_fail(e, SIEVE_ERR_ARG, "heads %d..%d of %d", h0, h0 + nh, heads);
  if (b >= (int)p->dims.grid[2])
    return cg_fail(e, SIEVE_ERR_ARG, "batch element %d of %u", b, p->dims.grid[2]);
  int64_t bb = b < 0 ? 0 : b, tokens = sieve_shape_tokens(&p->spec.shape);
  sieve_tensor t[4] = {*q, *k, *v, *o};
  for (int i = 0; i < 4; i++) t[i].ptr += (uint64_t)(2 * (bb * t[i].stride_b + (int64_t)h0 * t[i].stride_h));
  lse += (CUdeviceptr)(4 * (bb * heads + h0) * tokens);
  CUdeviceptr ho = p->arg.head_off, tl = p->arg.tlen;
  unsigned gy = p->dims.grid[1], gz = p->dims.grid[2];
  p->arg.head_off += 4 * (CUdeviceptr)h0;
  if (tl) p->arg.tlen += 4 * (CUdeviceptr)bb;
  p->dims.grid[1] = (unsigned)nh;
  if (b >= 0) p->dims.grid[2] = 1;
  p->part = 1;
  sieve_status st = rt_plan_run(p, &t[0], &t[1], &t[2], &t[3], lse, scale, s, e);
  p->part = 0;
  p->arg.head_off = ho;  /* the launch copied its parameters */
  p->arg.tlen = tl;
  p->dims.grid[1] = gy;
  p->dims.grid[2] = gz;
  return st;
}

void rt_plan_tables(const rt_plan *p, CUdeviceptr *tabs, CUdeviceptr *head_off) {
  *tabs = p->borrowed ? p->own_tabs : p->arg.tabs;
  *head_off = p->borrowed ? p->own_head_off : p->arg.head_off;
}

void rt_plan_use_tables(rt_plan *p, CUdeviceptr tabs, CUdeviceptr head_off) {
  if (tabs && !p->borrowed) {
    p->own_tabs = p->arg.tabs;
    p->own_head_off = p->arg.head_off;
    p->borrowed = 1;
  }
  if (!tabs && p->borrowed) {
    tabs = p->own_tabs;
    head_off = p->own_head_off;
    p->borrowed = 0;
  }
  if (tabs) {
    p->arg.tabs = tabs;
    p->arg.head_off = head_off;
  }
}

/* ------------------------------------------------------------------ free */

sieve_status rt_plan_free(rt_plan *p, cg_err *e) {
  if (!p) return SIEVE_OK;
  const rt_cuda *cu = p->cu;
  sieve_status st = SIEVE_OK;
  if (cu && (p->mod || p->dmem || p->pm_mod || p->scratch || p->sched_mem || p->tlen_dev)) {
    /* The module and memory belong to the plan's context; the caller's
    ** thread may have another one current. */
    CUcontext prev = NULL;
    st = RT_CU(cu, e, cuCtxGetCurrent, &prev);
    int switched = !st && prev != p->ctx;
    if (switched) st = RT_CU(cu, e, cuCtxSetCurrent, p->ctx);
    rt_dyn_tables_free(p->gt);
    p->gt = NULL;
    if (!st) {
      if (p->fb_mod) rt_module_unload(cu, p->fb_mod, NULL);
      if (p->pm_mod) rt_module_unload(cu, p->pm_mod, NULL);
      if (p->scratch) RT_CU(cu, NULL, cuMemFree, p->scratch);
      if (p->sched_mem) RT_CU(cu, NULL, cuMemFree, p->sched_mem);
      sieve_status a = rt_module_unload(cu, p->mod, e);
      sieve_status b = p->dmem ? RT_CU(cu, a ? NULL : e, cuMemFree, p->dmem) : SIEVE_OK;
      if (p->tlen_dev) RT_CU(cu, NULL, cuMemFree, p->tlen_dev);
      st = a ? a : b;
    }
    if (switched) {
      sieve_status c = RT_CU(cu, st ? NULL : e, cuCtxSetCurrent, prev);
      if (!st) st = c;
    }
  }
  free(p->pending);
  free(p->tlen_host);
  sieve_status d = rt_plan_free(p->dense, st ? NULL : e);
  cg_pattern_free(p->dense_pat);
  cg_pattern_free(p->rows_pat);
  cg_pattern_view_free(p->tab_pat);
  free(p);
  return st ? st : d;
}

sieve_status rt_plan_text_sync(rt_plan *p, CUstream s, CUdeviceptr *ptr, cg_err *e) {
  if (p->tlen_pending) {
    size_t n = sizeof(int32_t) * (size_t)p->spec.shape.batch;
    sieve_status st = RT_CU(p->cu, e, cuMemcpyHtoDAsync, p->tlen_dev, p->tlen_host, n, s);
    if (st) return st;
    p->tlen_pending = 0;
  }
  if (ptr) *ptr = p->arg.tlen;
  return SIEVE_OK;
}

int rt_plan_warm(const rt_plan *p) { return p->warm; }
int rt_plan_folded(const rt_plan *p) { return p->folded; }

sieve_status rt_plan_set_text(rt_plan *p, const int *valid, int n, cg_err *e) {
  if (p->dense) {
    sieve_status st = rt_plan_set_text(p->dense, valid, n, e);
    if (st) return st;
  }
  sieve_shape resolved, *sh = &resolved;
  cg_shape_for(p->spec.pattern, &p->spec.shape, sh);
  if (!valid) {
    p->arg.tlen = 0;
    p->tlen_pending = 0;
    return SIEVE_OK;
  }
  if (n != sh->batch) return cg_fail(e, SIEVE_ERR_ARG, "text lengths: %d given for a batch of %d", n, sh->batch);
  for (int b = 0; b < n; b++)
    if (valid[b] < 0 || valid[b] > sh->text)
      return cg_fail(e, SIEVE_ERR_ARG, "text length %d of batch element %d: the shape has %d text tokens",
                     valid[b], b, sh->text);
  size_t bytes = sizeof(int32_t) * (size_t)n;
  if (!p->tlen_host && !(p->tlen_host = malloc(bytes))) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for text lengths");
  if (!p->tlen_dev) {
    sieve_status st = RT_CU(p->cu, e, cuMemAlloc, &p->tlen_dev, bytes);
    if (st) return st;
  }
  for (int b = 0; b < n; b++) p->tlen_host[b] = valid[b];
  p->tlen_pending = 1;
  p->arg.tlen = p->tlen_dev;
  return SIEVE_OK;
}

/* ------------------------------------------------------------- accessors */

const cg_attn_spec *rt_plan_spec_of(const rt_plan *p) { return &p->spec; }
/* Counted on the host the first time for plans on GPU-built tables (NAN
** when that fails). */
double rt_plan_density(const rt_plan *p) {
  if (!isnan(p->density)) return p->density;
  host_tables h;
  cg_err e = {0};
  rt_plan *m = (rt_plan *)p;  /* a cache of a value the plan fixes at creation */
  if (!build_tables(p, p->step0, p->layer0, &h, &e)) m->density = h.density;
  free(h.buf);
  return m->density;
}
const rt_plan_stats *rt_plan_stats_of(const rt_plan *p) { return &p->stats; }
void rt_plan_set_tuned(rt_plan *p, int tuned) { p->stats.tuned = tuned; }
const char *rt_plan_kernel(const rt_plan *p) { return p->kernel; }
/* $SIEVE_ARCH=sm_80 keeps a Hopper GPU on the mma.sync kernels: the
** fallback path checked and timed on the same machine. */
cg_arch rt_plan_arch_for(const rt_device *d) {
  const char *force = getenv("SIEVE_ARCH");
  cg_arch a;
  if (force && *force && !cg_arch_parse(force, &a) && (a == CG_SM80 || d->sm_major == 9)) return a;
  return d->sm_major == 9 ? CG_SM90A : CG_SM80;
}
