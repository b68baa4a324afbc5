/*
** Dynamic patterns on the GPU: everything that decides, per step, layer,
** input and head, which blocks the attention kernel visits.
**
**   GPU block tables (rt_dyn_tables.c)  for masks that read step or layer
**       (LVSA's rotating anchors): the generated builder of cg_tablegen.h,
**       launched on the attention's stream; plans use it by themselves.
**   AdaSpa (rt_dyn_search.c)  dense attention over the allowed set at the
**       first search step, then the LSE-cached block-mass kernel and the
**       top-p / top-k selection (cg_search.h, with the head tiers and the
**       text sink) write tables per (batch, head) that the steps until the
**       next search reuse; later searches take their masses from the
**       first one's cached LSE, with no attention pass.
**   Sparse VideoGen (rt_dyn_profile.c)  at the profiling steps, sampled
**       query rows under each head class's mask and under the full mask
**       (cg_profile.h) give each head of each batch element its class;
**       every head then runs with its class's mask and layout. The
**       attention kernel reads Q, K, V and writes O through the layout's
**       position -> row map (cg_attn.h); on sm_90a the temporal class's
**       plan permutes Q, K, V of its heads first and runs the TMA kernel
**       (rt_plan.h).
**
** Every kernel here is generated from the pattern, linked by the driver and
** kept in the disk cache like the attention kernel. All device buffers are
** allocated when the object is made; a step allocates nothing.
*/
#ifndef RT_DYN_H
#define RT_DYN_H

#include "cg_tablegen.h"
#include "rt_cache.h"
#include "rt_cuda.h"
#include "rt_plan.h"
#include "rt_strategy.h"

/* --------------------------------------------------------- modules */

/* Generates a module's PTX (*ptx malloc'd). */
typedef sieve_status (*rt_dyn_gen)(void *ud, char **ptx, cg_err *e);

/*
** The module under `key`: from `cache` (may be NULL) when there, else
** generated, linked and stored. *from_cache (may be NULL) says which.
*/
sieve_status rt_dyn_module(const rt_cuda *cu, rt_cache *cache, const char *key, rt_dyn_gen gen,
                           void *ud, CUmodule *out, int *from_cache, cg_err *e);

/* A cache key: the module kind, the pattern (SHA-256 of its IR), shape,
** arch, device, versions, and `extra` (what else changes the code). */
int rt_dyn_key(char *out, size_t n, const char *kind, const cg_pattern *p, const sieve_shape *s,
               cg_arch arch, const rt_device *dev, const char *extra);

/*
** The key's line for the layouts sieve.layout.auto chose ("layouts
** 0=tile{4,8,8} 1=transpose\n"), or "" for a pattern with none: the IR says
** only "auto", and the code follows the choice, which a later sieve may
** make differently for the same script and shape. The pattern must be
** resolved for the key's shape (cg_layouts_resolve; a table build does
** it). Returns what snprintf would.
*/
int rt_key_layouts(const cg_pattern *p, char *out, size_t n);

/* Launch helper: grid and block sizes, no dynamic shared memory unless smem. */
sieve_status rt_dyn_launch(const rt_cuda *cu, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                           unsigned threads, unsigned smem, CUstream s, void **params, cg_err *e);

/* ------------------------------------------------ GPU block tables */

typedef struct rt_dyn_tables rt_dyn_tables;

/* Prepares the builder for p on shape (boxes uploaded, buffers allocated)
** in the current context of `dev`. The pattern's graph grows. With bits
** (the classes whose partial blocks take bitmasks: a static mask's), the
** tables are classified once here, synchronously, to size the bitmasks,
** which then stay where they are (SIEVE_ERR_LIMIT past 32-bit offsets). */
sieve_status rt_dyn_tables_create(cg_pattern *p, const sieve_shape *shape, cg_arch arch,
                                  const rt_device *dev, rt_cache *cache, uint32_t bits,
                                  rt_dyn_tables **out, cg_err *e);
/* Enqueues the build of the tables of (step, layer) on stream s. */
sieve_status rt_dyn_tables_build(rt_dyn_tables *t, int step, int layer, CUstream s, cg_err *e);
/* Kernels a build launches: classify, refine, compact, scan, fill, and
** with bitmasks bits. */
int rt_dyn_tables_kernels(const rt_dyn_tables *t);
/* The same, recording ev[0] before the first kernel and ev[i] after the
** i-th (rt_dyn_tables_kernels + 1 events). */
sieve_status rt_dyn_tables_build_timed(rt_dyn_tables *t, int step, int layer, CUstream s, CUevent *ev,
                                       cg_err *e);
/* The packed tables and head_off[H], where the attention kernel reads them. */
void rt_dyn_tables_ptrs(const rt_dyn_tables *t, CUdeviceptr *tabs, CUdeviceptr *head_off);
const cg_tgen *rt_dyn_tables_gen(const rt_dyn_tables *t);
int rt_dyn_tables_from_cache(const rt_dyn_tables *t);
/* Bytes at the packed tables' pointer: the slots, then any bitmasks. */
size_t rt_dyn_tables_bytes(const rt_dyn_tables *t);
void rt_dyn_tables_free(rt_dyn_tables *t);

/* Whether plans build step-dependent tables on the GPU: with a real driver,
** unless SIEVE_TABLES=cpu (plans then rebuild on the host and upload). */
int rt_dyn_tables_enabled(const rt_cuda *cu);
/* SIEVE_TABLES=gpu: static masks' plans run on GPU-built tables too. */
int rt_dyn_tables_always(void);

/* ------------------------------------------------------------ AdaSpa */

typedef struct rt_dyn_search rt_dyn_search;

/*
** AdaSpa across steps for a pattern with a search selection: an attention
** plan over the allowed set (rt_plan_create(s)), the search module, and its
** buffers. One object keeps one selection: make one per layer.
*/
sieve_status rt_dyn_search_create(const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                                  rt_dyn_search **out, cg_err *e);
/*
** One denoising step of attention on stream st. At a search step of the
** pattern (and at the first step past one while no selection exists):
** attention over the allowed set, then the search from its LSE (where
** that pass is dense on sm_90a, the masses come from the pass itself, a
** chunk of heads at a time: rt_dyn_search_segs); with sel.tiers the first
** search of a run then measures each head's recall and selects again with
** the heads' tiers (this waits for st). With
** sel.cache_lse the first search keeps its LSE, and later searches of the
** run take their masses from it, with no attention pass, and run that
** step on their new selection. Before the first search step: the allowed
** set (a new pass through the schedule starts dense again, and measures
** its own tiers and LSE). Otherwise: the selected tables.
** *searched (may be NULL) says whether this step searched.
*/
sieve_status rt_dyn_search_step(rt_dyn_search *d, int step, int layer, const sieve_tensor *q,
                                const sieve_tensor *k, const sieve_tensor *v,
                                const sieve_tensor *o, CUdeviceptr lse, float scale,
                                CUstream st, int *searched, cg_err *e);
/* The search alone, from q, k and the LSE of an allowed-set pass: masses,
** selection and packing, enqueued on st. */
sieve_status rt_dyn_search_run(rt_dyn_search *d, const sieve_tensor *q, const sieve_tensor *k,
                               CUdeviceptr lse, float scale, CUstream st, cg_err *e);
/* Attention on the selected tables, one launch per input of the batch
** (each has its own tables); the plan keeps its own tables after. */
sieve_status rt_dyn_search_run_selected(rt_dyn_search *d, const sieve_tensor *q, const sieve_tensor *k,
                                        const sieve_tensor *v, const sieve_tensor *o, CUdeviceptr lse,
                                        float scale, CUstream st, cg_err *e);
/* Whether the pattern searches at this step. */
int rt_dyn_search_at(const rt_dyn_search *d, int step);

typedef struct rt_dyn_search_bufs {
  CUdeviceptr mass;      /* [B][H][cap] f32, entries of the allowed tables */
  CUdeviceptr counts;    /* [B][H][nq][2] full, partial chosen per row */
  CUdeviceptr tabs, head_off;  /* the selected tables, packed, table b H + h */
  int64_t cap, table_ints;
  int nq, nk;
  CUdeviceptr rowmass;   /* [B][H][nq][2] f32: chosen mass, the row's mass */
  CUdeviceptr lse;       /* [B][H][S] f32: the LSE cached at the first search (0: no cache_lse) */
} rt_dyn_search_bufs;
void rt_dyn_search_buffers(const rt_dyn_search *d, rt_dyn_search_bufs *out);
/* [B][H]: the top-k each (input, head) selects with: the base one, or its
** tier's once the first search has measured the recalls (sel.tiers). */
const int32_t *rt_dyn_search_topk(const rt_dyn_search *d);
/* [B][H]: each head's recall at the base sparsity, measured at the first
** search of the run; NULL before it or without tiers. */
const double *rt_dyn_search_recall(const rt_dyn_search *d);
/* The selection as blocks[((b H + h) nq + qb) nk + kb] = 1 or 0, from the
** rows and counts the select kernel wrote (synchronises the context). */
sieve_status rt_dyn_search_read(rt_dyn_search *d, uint8_t *blocks, cg_err *e);
/* Whether a search has run, so a selection exists. */
int rt_dyn_search_has(const rt_dyn_search *d);
/* Whether the last step searched from the cached LSE (no attention pass). */
int rt_dyn_search_cached(const rt_dyn_search *d);
/* Whether the last search took its masses from its dense pass's segments
** (AdaSpa's first search on sm_90a: rt_plan_segs_create, cg_search_seg.c;
** $SIEVE_SEARCH_SEGS_MB=0 turns it off) rather than the mass kernel. */
int rt_dyn_search_segs(const rt_dyn_search *d);
rt_plan *rt_dyn_search_plan(const rt_dyn_search *d);
/* rt_plan_set_text on every plan the search runs. */
sieve_status rt_dyn_search_set_text(rt_dyn_search *d, const int *valid, int n, cg_err *e);
/* Blocks the selection keeps over all blocks, averaged over batch and
** heads (reads the counts back: synchronises the context). */
sieve_status rt_dyn_search_selected(rt_dyn_search *d, double *density, cg_err *e);
/* What the last step computed: the selection's block density after a
** sparse step, else the allowed set's density. */
sieve_status rt_dyn_search_density(rt_dyn_search *d, double *density, cg_err *e);
void rt_dyn_search_free(rt_dyn_search *d);

/* --------------------------------------------------- Sparse VideoGen */

typedef struct rt_dyn_profile rt_dyn_profile;

/* The profiling kernel's key chunk is halved until it has this many CTAs
** (about four per SM of an H100 or H200; cg_profile_pick_chunk). */
#define RT_PROFILE_CTAS 512

/*
** SVG across steps for a pattern of several head classes: one attention
** plan per class (the pattern with every head in that class), the
** profiling module, and its buffers. Heads start in the pattern's static
** split; each profiling step of the pattern (sieve.profile's steps) moves
** every head of every batch element to the class whose output on the
** sampled rows (the same rows for each element) is closest to full
** attention in that element, so the elements of a batch may disagree.
** Class masks must not read the head (each class's plan runs over an
** arbitrary subset of heads).
*/
sieve_status rt_dyn_profile_create(const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                                   rt_dyn_profile **out, cg_err *e);
/*
** One denoising step on stream st: profiling first at a profiling step
** (which waits for st: the classes decide the launches), then each maximal
** run of consecutive heads of one class as one launch of that class's plan:
** over the whole batch when its elements have the same classes, else per
** element.
*/
sieve_status rt_dyn_profile_step(rt_dyn_profile *d, int step, int layer, const sieve_tensor *q,
                                 const sieve_tensor *k, const sieve_tensor *v,
                                 const sieve_tensor *o, CUdeviceptr lse, float scale,
                                 CUstream st, int *profiled, cg_err *e);
/* Profiling alone: fresh sampled rows, the kernels over the whole batch,
** the errors read back, every (batch element, head)'s class chosen. */
sieve_status rt_dyn_profile_run(rt_dyn_profile *d, int step, int layer, const sieve_tensor *q,
                                const sieve_tensor *k, const sieve_tensor *v, float scale,
                                CUstream st, cg_err *e);
int rt_dyn_profile_at(const rt_dyn_profile *d, int step);
/* [B][H]: the class of each batch element's heads. */
const int *rt_dyn_profile_classes(const rt_dyn_profile *d);
/* Whether a profiling step has run (the classes are no longer the static split). */
int rt_dyn_profile_ran(const rt_dyn_profile *d);
/* The decisive sampled rows: the pattern's samples (the first of rt_dyn_profile_rows). */
int rt_dyn_profile_samples(const rt_dyn_profile *d);
/* B: the batch of the shape the object was made for. */
int rt_dyn_profile_batch(const rt_dyn_profile *d);
/* [B][H][classes]: sum over sampled rows of |O_c - O_full|^2 / |O_full|^2. */
const double *rt_dyn_profile_errors(const rt_dyn_profile *d);
/* The rows the kernel ran (*ns, a multiple of 64); the first `samples`
** of the pattern decide, the rest repeat them. */
const int32_t *rt_dyn_profile_rows(const rt_dyn_profile *d, int *ns);
/* Reseeds the row sampler (tests reproduce a sample this way). */
void rt_dyn_profile_seed(rt_dyn_profile *d, uint64_t seed);
/* The plan of class cls, or NULL past the last class. */
rt_plan *rt_dyn_profile_plan(const rt_dyn_profile *d, int cls);
/* The classes' densities averaged over (batch element, head); 1 in SEARCH
** mode, whose steps run full attention. */
double rt_dyn_profile_density(const rt_dyn_profile *d);
/* The mask-search strategy: SEARCH's sums, FILE's file; NULL when ONLINE. */
const rt_strategy *rt_dyn_profile_strategy(const rt_dyn_profile *d);
/* SEARCH: writes the mask-search file of the searches so far (rt_strategy.h). */
sieve_status rt_dyn_profile_save(const rt_dyn_profile *d, const char *path, cg_err *e);
void rt_dyn_profile_free(rt_dyn_profile *d);

#endif
