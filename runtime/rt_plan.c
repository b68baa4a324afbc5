/*
** Making and freeing plans (rt_plan.h): the spec resolved and checked,
** tables, kernel and layout permute set up; rt_plan_int.h names the parts.
*/
#define _GNU_SOURCE /* sched_getaffinity */
#include "rt_plan_int.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg_attn_tables.h"
#include "cg_permute.h"
#include "rt_tmap.h"

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
  *v++ = &p->arg.segs;
  v = p->pm_params;
  *v++ = &p->pm_arg.q;
  *v++ = &p->pm_arg.k;
  *v++ = &p->pm_arg.v;
  for (int i = 0; i < 9; i++) *v++ = &p->pm_arg.stride[i];
  *v++ = &p->pm_arg.qp;
  *v++ = &p->pm_arg.kp;
  *v++ = &p->pm_arg.vp;
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
  sp->segs = s->segs;
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
  p->dynamic = rt_plan_mask_reads_step(s->pattern);
  p->arg.step = s->step;
  p->arg.layer = s->layer;
  return SIEVE_OK;
}

/* The spec of the dense plan a schedule's warm-up or a folded mask runs,
** its pattern made into p->dense_pat: the default config, which suits
** dense attention. */
static sieve_status dense_spec(rt_plan *p, const rt_plan_spec *s, rt_plan_spec *ds, cg_err *e) {
  if (!(p->dense_pat = cg_pattern_dense_of(p->spec.pattern, e))) return e->status;
  *ds = (rt_plan_spec){.pattern = p->dense_pat, .shape = s->shape, .dtype = s->dtype, .arch = s->arch,
                       .step = s->step, .layer = s->layer};
  return SIEVE_OK;
}

static sieve_status dense_plan(rt_plan *p, const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                               cg_err *e) {
  rt_plan_spec ds;
  sieve_status st = dense_spec(p, s, &ds, e);
  return st ? st : rt_plan_create(&ds, dev, cache, &p->dense, e);
}

/*
** A schedule's warm-up plan (dense steps or layers) is made on a thread of
** its own while the plan makes its tables, kernel and permute: its pattern
** is its own (made first, here), so the two share only the device, whose
** context is made current on that thread, and the disk cache, which takes
** several writers (processes, and the tuner's building threads). Cold,
** that plan's kernel was as long again as the plan's own: svg, sta and
** adaspa at hunyuan-720p (bench/RESULTS.md).
*/
typedef struct warm_build {
  rt_plan *p;       /* NULL: the plan has no warm-up */
  rt_plan_spec ds;
  const rt_device *dev;
  rt_cache *cache;
  pthread_t th;
  int on_thread;
  sieve_status st;
  cg_err e;
} warm_build;

static void *warm_run(void *arg) {
  warm_build *w = arg;
  w->st = RT_CU(w->p->cu, &w->e, cuCtxSetCurrent, w->dev->ctx);
  if (!w->st) w->st = rt_plan_create(&w->ds, w->dev, w->cache, &w->p->dense, &w->e);
  return NULL;
}

/* Whether a second thread would have a processor of its own: on one,
** SIEVE_THREADS=1 or a process bound to one core, the warm-up plan is made
** after the plan's own (the two compiles time-sliced on one core took
** 1.1-1.2x as long). */
static int second_core(void) {
  const char *env = getenv("SIEVE_THREADS");
  if (env && strtol(env, NULL, 10) <= 1) return 0;
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) ? sysconf(_SC_NPROCESSORS_ONLN) > 1 : CPU_COUNT(&set) > 1;
}

static sieve_status warm_start(warm_build *w, rt_plan *p, const rt_plan_spec *s, const rt_device *dev,
                               rt_cache *cache, cg_err *e) {
  *w = (warm_build){.dev = dev, .cache = cache};
  sieve_status st = dense_spec(p, s, &w->ds, e);
  if (st) return st;
  w->p = p;
  w->on_thread = second_core() && !pthread_create(&w->th, NULL, warm_run, w);
  return SIEVE_OK;
}

/* The warm-up plan in p->dense, once its thread is done; made here where
** no thread started. Its error goes to e (when given) where it failed. */
static sieve_status warm_finish(warm_build *w, cg_err *e) {
  if (!w->p) return SIEVE_OK;
  if (w->on_thread) pthread_join(w->th, NULL);
  else w->st = rt_plan_create(&w->ds, w->dev, w->cache, &w->p->dense, &w->e);
  if (w->st && e) *e = w->e;
  return w->st;
}

sieve_status rt_plan_segs_create(const rt_plan *p, const rt_device *dev, rt_cache *cache, rt_plan **out,
                                 cg_err *e) {
  *out = NULL;
  if (!p->dense || p->folded || !cg_attn_mask_free(p->spec.pattern) || !cg_attn_uses_tma(&p->dense->spec))
    return SIEVE_OK;
  /* A CTA per tile: its segments kernel keeps the dense kernel's registers
  ** where the persistent one spills (tests/test_ptxas.c). */
  cg_attn_config c = p->dense->spec.cfg;
  c.sched = CG_SCHED_GRID;
  rt_plan_spec ds = {.pattern = p->dense_pat, .shape = p->spec.shape, .dtype = p->spec.dtype, .arch = p->spec.arch,
                     .cfg = c, .step = p->step0, .layer = p->layer0, .segs = 1};
  cg_attn_spec cs = p->dense->spec;
  cs.cfg = c;
  cs.segs = 1;
  if (cg_attn_check(&cs, NULL)) return SIEVE_OK;  /* a shape past the segments' offsets */
  return rt_plan_create(&ds, dev, cache, out, e);
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
  p->no_tma = rt_tmap_off();
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
  warm_build warm = {0};
  double t0 = rt_plan_now_ms();
  p->density = NAN;
  p->step0 = s->step;
  p->layer0 = s->layer;
  /* A config the caller chose is what it asked to run (the tuner's). */
  if (!st && default_config(&s->cfg) && cg_attn_folds_dense(p->spec.pattern, &p->spec.shape)) {
    if ((st = fold(p, s, dev, cache, e))) rt_plan_free(p, NULL);
    else *out = p;
    return st;
  }
  if (!st && (p->spec.pattern->dense_steps || p->spec.pattern->dense_layers))
    st = warm_start(&warm, p, s, dev, cache, e);
  if (!st && rt_plan_gpu_tables(p)) {
    st = rt_plan_use_gpu_tables(p, dev, cache, e);
    if (!st && p->spec.cfg.sched) st = rt_plan_identity_order(p, e);
  } else {
    p->stats.tables_from_cache = !st && rt_plan_tables_from_cache(p, cache, &h);
    if (!st && !p->stats.tables_from_cache) {
      double b0 = rt_plan_now_ms();
      st = rt_plan_build_tables(p, s->step, s->layer, &h, e);
      if (!st) rt_plan_tables_to_cache(p, cache, &h, rt_plan_now_ms() - b0);
    }
    if (!st) st = rt_plan_place_tables(p, &h, e);
    if (!st) st = RT_CU(p->cu, e, cuMemcpyHtoD, p->dmem, h.buf, h.bytes);
    free(h.buf);
  }
  p->stats.tables_ms = rt_plan_now_ms() - t0;

  if (!st) {
    char key[2048];
    double t1 = rt_plan_now_ms();
    if (rt_plan_key(&p->spec, dev, key, sizeof key) >= (int)sizeof key) cache = NULL;
    p->stats.from_cache = cache && rt_plan_from_cache(p, cache, key);
    p->stats.load_ms = rt_plan_now_ms() - t1;
    if (!p->stats.from_cache) st = rt_plan_build_kernel(p, cache, key, e);
  }
  if (!st && cg_attn_permutes(&p->spec)) st = use_permute(p, s, dev, cache, e);
  sieve_status ws = warm_finish(&warm, st ? NULL : e);
  if (!st) st = ws;
  if (!st && warm.p) p->warm = cg_pattern_dense_at(p->spec.pattern, s->step, s->layer);
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
  /* The key names the layouts sieve.layout.auto chooses, as a plan's table
  ** build would have them by now. */
  if (!st) st = cg_layouts_resolve(p->spec.pattern, &p->spec.shape, e);
  if (!st && rt_plan_key(&p->spec, dev, key, sizeof key) >= (int)sizeof key)
    st = cg_fail(e, SIEVE_ERR_ARG, "kernel cache key too long");
  if (!st) {
    cg_err ce = {0};
    /* A damaged entry was removed by the load: building anew replaces it. */
    p->stats.from_cache = !rt_cache_load(cache, key, &hit, &n, &ce) && hit;
  }
  if (!st && !p->stats.from_cache) {
    st = rt_plan_compile_kernel(p, &name, &cubin, &n, e);
    if (!st) rt_plan_store_kernel(&p->stats, cache, key, name, cubin, n);
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

/* ------------------------------------------------------------- accessors */

int rt_plan_warm(const rt_plan *p) { return p->warm; }
int rt_plan_folded(const rt_plan *p) { return p->folded; }
const cg_attn_spec *rt_plan_spec_of(const rt_plan *p) { return &p->spec; }
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
