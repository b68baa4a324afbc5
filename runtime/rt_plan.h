/*
** Plans: everything one attention call needs on one device, made once per
** pattern x shape x dtype x config. Making a plan builds the block tables
** and uploads them, and gets the kernel: from the disk cache, or generated
** (cg_attn_build), linked by the driver and stored. Running a plan fills
** the kernel's parameters in place and launches it: no compilation and no
** host allocation.
**
** A plan belongs to one thread at a time, and runs in the CUDA context that
** was current when it was made.
**
** A plan whose kernel is the sm_90a TMA kernel and whose pattern has a head
** class in another layout (transpose, tiles: cg_attn_permutes) also holds
** the layout permute (cg_permute.h) and device memory for Q, K, V in layout
** order (3 B H S D 16-bit elements); a run permutes into it, then runs the
** attention, which writes O and the LSE in token order, both on the run's
** stream. Tensors the permute or TMA cannot read (rows not on 16 bytes,
** $SIEVE_TMA=0) take the 8-warp address-arithmetic kernel instead.
**
** Patterns with a dynamic selection (search, profile) run on every block
** their mask allows; rt_dyn.h drives them across steps. Masks that read the
** step or layer have their tables rebuilt on the GPU by a generated kernel
** (SIEVE_TABLES=cpu: on the host; =gpu: static masks' tables too, bitmasks
** included), with no host build; the density stays the one of the step the
** plan was made for, counted on the host when first asked for.
*/
#ifndef RT_PLAN_H
#define RT_PLAN_H

#include "cg_attn.h"
#include "rt_cache.h"
#include "rt_cuda.h"

typedef struct rt_plan_spec {
  cg_pattern *pattern;   /* not owned; table building adds to its graph */
  sieve_shape shape;     /* the pattern's fixed text geometry is applied */
  cg_dtype dtype;
  cg_arch arch;
  cg_attn_config cfg;    /* all zeros: cg_attn_default_config */
  int step, layer;
  /* A plan (same context, same shape) whose layout-permute memory this
  ** plan may use instead of its own, when runs of the two never overlap
  ** (one stream): the head-class plans of a dynamic pattern. It must
  ** outlive this plan's runs. NULL: its own. */
  const struct rt_plan *share;
  int segs;              /* the kernel writes segments (cg_attn_spec.segs; rt_plan_segs_create) */
} rt_plan_spec;

typedef struct rt_plan_stats {
  int from_cache;        /* the cubin came from the disk cache */
  int tables_from_cache; /* so did the block tables (static ones, built on the host) */
  double tables_ms;      /* build (or read), pack and upload the block tables */
  double codegen_ms;     /* cg_attn_build: pattern to PTX */
  double link_ms;        /* the driver: PTX to cubin */
  double load_ms;        /* cache lookup, module load, kernel lookup */
  char cache_note[1088]; /* why the cache was not used, or "" */
  int tuned;             /* the config came from the tuning database */
  int stand_ins;         /* runs of a TMA kernel's 8-warp stand-in (tensors TMA
                         ** cannot map, or $SIEVE_TMA=0 at plan creation) */
  size_t permute_bytes;  /* device memory for Q, K, V in layout order (cg_attn_permutes) */
} rt_plan_stats;

typedef struct rt_plan rt_plan;

/*
** Makes a plan on `dev` (its context current on the calling thread), with
** `cache` (NULL: always generate). A cache that cannot be read or written,
** or a damaged entry, costs a rebuild, not a failure; stats say why.
*/
sieve_status rt_plan_create(const rt_plan_spec *s, const rt_device *dev,
                            rt_cache *cache, rt_plan **out, cg_err *e);

/*
** The checks of rt_plan_create that need no device: the shape the pattern
** runs on, its block tables' size, and s->cfg (all zeros: the default; with
** `complete`, fields left 0 take the default) on at least one target. Every
** entry point that makes a plan calls it before opening the driver.
** Defined in rt_plan_check.c.
*/
sieve_status rt_plan_precheck(const rt_plan_spec *s, int complete, cg_err *e);

/*
** Moves the plan to another denoising step and layer. Tables are rebuilt
** only when the pattern's mask depends on them; launches enqueued after this
** call see the new tables (the upload rides on the next run's stream).
*/
sieve_status rt_plan_set_step(rt_plan *p, int step, int layer, cg_err *e);

/*
** Valid text tokens of each of the n (= batch) elements, 0 .. text; the
** rest of the text is padding, masked by the kernel (no recompile). NULL:
** the whole text is valid, as at creation. Like set_step, the upload rides
** on the next run's stream.
*/
sieve_status rt_plan_set_text(rt_plan *p, const int *valid, int n, cg_err *e);
/* The plan's (step, layer) is in its pattern's dense warm-up (the schedule),
** or its mask folds to true (rt_plan_folded): runs use the dense kernel, and
** the sparse tables wait. */
int rt_plan_warm(const rt_plan *p);
/* The pattern's mask is true on every pair at the plan's shape, at every
** step (cg_attn_folds_dense): the plan is the dense kernel's, always. */
int rt_plan_folded(const rt_plan *p);
/* Uploads text lengths set since the last run on stream s, and gives the
** device pointer the kernels take (0: the whole text), for generated
** kernels that run beside the plan's (search, profiling). */
sieve_status rt_plan_text_sync(rt_plan *p, CUstream s, CUdeviceptr *ptr, cg_err *e);

/* O and LSE for q, k, v (strides in elements) on stream s; scale <= 0 means
** 1/sqrt(head_dim). */
sieve_status rt_plan_run(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                         const sieve_tensor *v, const sieve_tensor *o,
                         CUdeviceptr lse, float scale, CUstream s, cg_err *e);
/* The plan's own tables on the device (a pending upload or GPU build done
** on s): rt_plan_run does it, and a search that reads them (rt_plan_tables)
** without running the plan calls it first. */
sieve_status rt_plan_tables_ready(rt_plan *p, CUstream s, cg_err *e);
/*
** rt_plan_run over the pattern's whole allowed set, outside any warm-up, on
** the dense plan the schedule holds where the mask allows every pair
** (cg_attn_mask_free: a search's allowed set, AdaSpa's): the same O and
** LSE, from the dense kernel's config rather than the search's blocks.
*/
sieve_status rt_plan_run_allowed(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                                 const sieve_tensor *v, const sieve_tensor *o,
                                 CUdeviceptr lse, float scale, CUstream s, cg_err *e);

/*
** For AdaSpa's first search: a plan like the dense one rt_plan_run_allowed
** runs for p, whose kernel also writes segments (cg_attn_spec.segs) to
** the pointer rt_plan_set_segs gives, for the heads and batch element of
** each run (rt_plan_run_part: the first of them numbered 0). *out is NULL
** where p's allowed set does not run on such a kernel (sm_80, a mask, a
** shape too long for the segments' offsets).
*/
sieve_status rt_plan_segs_create(const rt_plan *p, const rt_device *dev, rt_cache *cache, rt_plan **out,
                                 cg_err *e);
void rt_plan_set_segs(rt_plan *p, CUdeviceptr segs);
/* The last run wrote segments: not where the tensors took the TMA kernel's
** stand-in, which writes none (the O and LSE are right either way). */
int rt_plan_segs_written(const rt_plan *p);

/*
** A plan whose kernel reads Q, K, V in layout order (cg_attn_permutes) runs
** the permute kernel (cg_permute.h) into its own device memory first, on
** the same stream; this launches that permute alone, over the plan's grid
** (for timing it). SIEVE_ERR_ARG for a plan that does not permute.
*/
sieve_status rt_plan_permute(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                             const sieve_tensor *v, CUstream s, cg_err *e);

/*
** Generates and links the kernel rt_plan_create would make for s on dev and
** stores it in `cache` (required) without loading it; a kernel already
** there is left alone (stats->from_cache). Thread-safe when each thread has
** its own s->pattern and dev's context current: the tuner builds its
** candidates this way in parallel. stats may be NULL.
*/
sieve_status rt_plan_prebuild(const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                              rt_plan_stats *stats, cg_err *e);

/*
** rt_plan_run over batch element b (every one when b < 0) and heads h0 ..
** h0 + nh only: the kernel sees head h0 + i as head i, for patterns whose
** mask and layout do not read the head.
*/
sieve_status rt_plan_run_part(rt_plan *p, int b, int h0, int nh, const sieve_tensor *q,
                              const sieve_tensor *k, const sieve_tensor *v,
                              const sieve_tensor *o, CUdeviceptr lse, float scale, CUstream s,
                              cg_err *e);

/* The plan's own device tables: packed (cg_tables_pack's format) and
** head_off[H]. Step-dependent masks have them built on the GPU (rt_dyn.h). */
void rt_plan_tables(const rt_plan *p, CUdeviceptr *tabs, CUdeviceptr *head_off);
/* Runs from now on read other tables of the same format (AdaSpa's
** selection); tabs 0 goes back to the plan's own. */
void rt_plan_use_tables(rt_plan *p, CUdeviceptr tabs, CUdeviceptr head_off);

/* Unloads the module and frees device memory (in the plan's context). */
sieve_status rt_plan_free(rt_plan *p, cg_err *e);

const cg_attn_spec *rt_plan_spec_of(const rt_plan *p);  /* config resolved */
double rt_plan_density(const rt_plan *p);
const rt_plan_stats *rt_plan_stats_of(const rt_plan *p);
/* Records that the plan's config came from the tuning database. */
void rt_plan_set_tuned(rt_plan *p, int tuned);
const char *rt_plan_kernel(const rt_plan *p);
/* The target plans get on a device: sm_90a (wgmma) on sm_90, where its
** kernels run only; sm_80 (mma.sync) elsewhere from sm_80 on. */
cg_arch rt_plan_arch_for(const rt_device *d);

/*
** The cache key of a plan's cubin: every input that changes the code, as
** text (the pattern by the SHA-256 of its canonical IR). The cubin is built
** for the device, whatever .target the PTX names, so the device's compute
** capability and the driver's version are part of it.
*/
int rt_plan_key(const cg_attn_spec *s, const rt_device *dev, char *out, size_t n);

#endif
