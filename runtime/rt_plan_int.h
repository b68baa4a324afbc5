/*
** Private to the plan's files: the plan itself and what its parts share.
**   rt_plan.c         creation, the layout permute's set-up, freeing
**   rt_plan_tables.c  block tables on the host or the GPU, step changes
**   rt_plan_kernel.c  the kernel: cache key, cache, code generation, and
**                     the 8-warp stand-in of a TMA kernel
**   rt_plan_run.c     launches: parameters, tensor maps, the permute,
**                     persistent grids, runs over some heads, text lengths
*/
#ifndef RT_PLAN_INT_H
#define RT_PLAN_INT_H

#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include "rt_plan.h"

#include <time.h>

#include "rt_dyn.h"
#include "rt_module.h"

#define NPARAMS 23  /* the kernel ABI of cg_attn.h */
#define NTMAPS 3    /* ... and the tensor maps of Q, K, V after them (cg_attn_uses_tma) */
#define NSCHED 4    /* ... and a persistent kernel's tile order after those (cg_attn_sched.h) */
#define NSEGS 1     /* ... and a segments kernel's output after those (cg_attn_spec.segs) */

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
    CUdeviceptr segs;
  } arg;
  void *params[NPARAMS + NTMAPS + NSCHED + NSEGS];
  int segs_written;      /* the last run was the segments kernel's, not its stand-in's */
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

static inline double rt_plan_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* --- rt_plan_tables.c */

/* Tables for one (step, layer) on the host: the packed tables, then
** head_off[H], in one block that one copy uploads. */
typedef struct host_tables {
  int32_t *buf;
  size_t bytes;
  size_t head_off_at;    /* byte offset of head_off[] in buf */
  size_t order_at;       /* ... of a persistent kernel's orders and counter (0: none) */
  double density;
} host_tables;

/* The pattern the tables are built from (its view with the kernel's blocks). */
cg_pattern *rt_plan_tab_pattern(const rt_plan *p);
/* The tables of (step, layer) in h (h->buf malloc'd, also on failure). */
sieve_status rt_plan_build_tables(const rt_plan *p, int step, int layer, host_tables *h, cg_err *e);
sieve_status rt_plan_place_tables(rt_plan *p, const host_tables *h, cg_err *e);
/* rt_plan_tabcache.c: static tables from the disk cache into h (1), or 0
** with h empty (a note in p->stats where an entry was of no use); and the
** tables just built into it, where their build (build_ms) took longer
** than reading them back would. */
int rt_plan_tables_from_cache(rt_plan *p, rt_cache *cache, host_tables *h);
void rt_plan_tables_to_cache(rt_plan *p, rt_cache *cache, const host_tables *h, double build_ms);
int rt_plan_mask_reads_step(const cg_pattern *pt);
int rt_plan_gpu_tables(const rt_plan *p);
sieve_status rt_plan_use_gpu_tables(rt_plan *p, const rt_device *dev, rt_cache *cache, cg_err *e);
sieve_status rt_plan_identity_order(rt_plan *p, cg_err *e);

/* --- rt_plan_kernel.c */

/* The cached kernel under key loaded into p; 0 (with a note in p->stats)
** when there is none or it is of no use. */
int rt_plan_from_cache(rt_plan *p, rt_cache *cache, const char *key);
sieve_status rt_plan_compile_kernel(rt_plan *p, char **name, void **cubin, size_t *n, cg_err *e);
void rt_plan_store_kernel(rt_plan_stats *s, rt_cache *cache, const char *key, const char *name,
                          const void *cubin, size_t n);
/* Compiled, loaded, and stored where there is a cache. */
sieve_status rt_plan_build_kernel(rt_plan *p, rt_cache *cache, const char *key, cg_err *e);
sieve_status rt_plan_build_fallback(rt_plan *p, cg_err *e);

#endif
