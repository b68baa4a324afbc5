/*
** AdaSpa at run time: the allowed-set plan, the search module (masses,
** selection, packing) and its buffers, and the schedule of search steps.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_search.h"
#include "cg_shape.h"
#include "rt_dyn.h"
#include "rt_module.h"
#include "rt_tmap.h"

struct rt_dyn_search {
  const rt_cuda *cu;
  rt_plan *plan;
  cg_search_spec spec;
  int nq, nk;
  int64_t table_ints;
  CUmodule mod;
  CUfunction mass, mass_tma, select, scan, fill;  /* mass_tma: NULL where the module has none */
  CUfunction seg_mass;
  rt_plan *seg_plan;       /* the first search's dense pass with segments (NULL: none) */
  unsigned mass_smem, select_smem;
  CUdeviceptr mem;
  int have_sel;
  int last_sparse;         /* the last step ran on the selection */
  int last_cached;         /* the last search took its masses from the cached LSE */
  int last_segs;           /* ... from its dense pass's segments */
  /* AdaSpa's head-adaptive tiers (§4.2): top-k per (batch, head), measured
  ** at the first search of a run; the LSE that search's attention pass
  ** wrote, for the later searches (§4.2 LSE-Cached Online Search). */
  int base_topk, tiered, dev_tiered, lse_cached;
  int32_t *topk;           /* [B][H] */
  double *recall;          /* [B][H]: each head's recall at the first search */
  float *rowmass;          /* [B][H][nq][2], read back for the recall */
  CUdeviceptr lse_cache;
  struct {
    CUdeviceptr q, k, lse;
    int64_t qs[3], ks[3];
    CUdeviceptr tabs, head_off, mass, rows, counts, sel_tabs, sel_head_off, topk, rowmass;
    int32_t step, layer;
    float scale, recall;
    CUdeviceptr tlen;
    CUtensorMap tmap_k;
  } a;
  struct {
    CUdeviceptr segs, lse, head_off, mass;
  } g;                     /* sieve_search_seg_mass's, per chunk of heads */
  void *pm[17], *ps[9], *pp[2], *pf[3], *pg[5];
};

static void bind(rt_dyn_search *d) {
  void *pm[17] = {&d->a.q, &d->a.k, &d->a.lse, &d->a.qs[0], &d->a.qs[1], &d->a.qs[2], &d->a.ks[0],
                  &d->a.ks[1], &d->a.ks[2], &d->a.tabs, &d->a.head_off, &d->a.mass, &d->a.step,
                  &d->a.layer, &d->a.scale, &d->a.tlen, &d->a.tmap_k};
  void *ps[9] = {&d->a.mass, &d->a.tabs, &d->a.head_off, &d->a.rows, &d->a.counts, &d->a.recall,
                 &d->a.topk, &d->a.tlen, &d->a.rowmass};
  void *pp[2] = {&d->a.counts, &d->a.sel_tabs}, *pf[3] = {&d->a.rows, &d->a.counts, &d->a.sel_tabs};
  void *pg[5] = {&d->g.segs, &d->g.lse, &d->a.tabs, &d->g.head_off, &d->g.mass};
  memcpy(d->pg, pg, sizeof pg);
  memcpy(d->pm, pm, sizeof pm);
  memcpy(d->ps, ps, sizeof ps);
  memcpy(d->pp, pp, sizeof pp);
  memcpy(d->pf, pf, sizeof pf);
}

static sieve_status gen_ptx(void *ud, char **ptx, cg_err *e) {
  return cg_search_build(&((rt_dyn_search *)ud)->spec, ptx, e);
}

static sieve_status kernels(rt_dyn_search *d, const rt_device *dev, rt_cache *cache, cg_err *e) {
  char key[2048], extra[128];
  snprintf(extra, sizeof extra, "dtype %s cap %lld sink", d->spec.dtype == CG_FP16 ? "fp16" : "bf16",
           (long long)d->spec.cap);
  if (rt_dyn_key(key, sizeof key, "search 4", d->spec.pattern, &d->spec.shape, d->spec.arch, dev, extra) >=
      (int)sizeof key)
    cache = NULL;
  sieve_status st = rt_dyn_module(d->cu, cache, key, gen_ptx, d, &d->mod, NULL, e);
  d->mass_smem = (unsigned)cg_search_mass_smem(&d->spec);
  d->select_smem = (unsigned)cg_search_select_smem(&d->spec);
  if (!st) st = rt_kernel_get(d->cu, d->mod, "sieve_search_mass", d->mass_smem, &d->mass, e);
  if (!st && cg_search_mass_tma(&d->spec))
    st = rt_kernel_get(d->cu, d->mod, CG_SEARCH_MASS_TMA, d->mass_smem, &d->mass_tma, e);
  if (!st) st = rt_kernel_get(d->cu, d->mod, "sieve_search_select", d->select_smem, &d->select, e);
  if (!st) st = rt_kernel_get(d->cu, d->mod, CG_SEARCH_SEG_MASS, 0, &d->seg_mass, e);
  if (!st) st = rt_kernel_get(d->cu, d->mod, "sieve_tbl_scan", 0, &d->scan, e);
  if (!st) st = rt_kernel_get(d->cu, d->mod, "sieve_tbl_fill", 0, &d->fill, e);
  return st;
}

static size_t up256(size_t n) { return (n + 255) & ~(size_t)255; }

/* Tables per (batch, head): heads below counts both. */
static sieve_status place(rt_dyn_search *d, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  size_t heads = (size_t)s->batch * (size_t)s->heads;
  size_t mass = up256(4 * heads * (size_t)d->spec.cap);
  size_t rows = up256(4 * heads * (size_t)d->nq * (size_t)d->nk), counts = up256(8 * heads * (size_t)d->nq);
  size_t tabs = up256(4 * heads * (size_t)d->table_ints), ho_n = up256(4 * heads), topk = up256(4 * heads);
  size_t rowmass = up256(8 * heads * (size_t)d->nq);
  size_t lse = d->spec.pattern->sel.cache_lse ? up256(4 * heads * (size_t)sieve_shape_tokens(s)) : 0;
  if ((int64_t)heads * d->table_ints > INT32_MAX)
    return cg_fail(e, SIEVE_ERR_SHAPE, "selected tables of %zu (batch, head) pairs exceed 32-bit offsets", heads);
  d->topk = malloc(4 * heads);
  d->recall = calloc(heads, sizeof(double));
  d->rowmass = malloc(8 * heads * (size_t)d->nq);
  if (!d->topk || !d->recall || !d->rowmass) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  sieve_status st = RT_CU(d->cu, e, cuMemAlloc, &d->mem, mass + rows + counts + tabs + ho_n + topk + rowmass + lse);
  if (st) return st;
  d->a.mass = d->mem;
  d->a.rows = d->a.mass + mass;
  d->a.counts = d->a.rows + rows;
  d->a.sel_tabs = d->a.counts + counts;
  d->a.sel_head_off = d->a.sel_tabs + tabs;
  d->a.topk = d->a.sel_head_off + ho_n;
  d->a.rowmass = d->a.topk + topk;
  d->lse_cache = lse ? d->a.rowmass + rowmass : 0;
  int32_t *ho = malloc(4 * heads);
  if (!ho) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (size_t h = 0; h < heads; h++) ho[h] = (int32_t)((int64_t)h * d->table_ints);
  st = RT_CU(d->cu, e, cuMemcpyHtoD, d->a.sel_head_off, ho, 4 * heads);
  free(ho);
  for (size_t h = 0; h < heads; h++) d->topk[h] = d->base_topk;
  if (!st) st = RT_CU(d->cu, e, cuMemcpyHtoD, d->a.topk, d->topk, 4 * heads);
  return st;
}

/* $SIEVE_SEARCH_SEGS_MB: device memory the first search's segments may
** take (a chunk of heads at a time); 0 takes its masses from the mass
** kernel instead. */
static size_t seg_budget(void) {
  const char *v = getenv("SIEVE_SEARCH_SEGS_MB");
  long long mb = v && *v ? atoll(v) : 4096;
  return mb > 0 ? (size_t)mb << 20 : 0;
}

sieve_status rt_dyn_search_create(const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                                  rt_dyn_search **out, cg_err *e) {
  *out = NULL;
  if (s->pattern->sel.kind != CG_SELECT_LSE_SEARCH)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s declares no search (sieve.search)", s->pattern->name);
  rt_dyn_search *d = calloc(1, sizeof *d);
  if (!d) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  bind(d);
  sieve_status st = rt_cuda_get(&d->cu, e);
  if (!st) st = rt_plan_create(s, dev, cache, &d->plan, e);
  if (!st) {
    const cg_attn_spec *as = rt_plan_spec_of(d->plan);
    int64_t seq = sieve_shape_tokens(&as->shape);
    int bq = cg_pattern_block_q(s->pattern);
    int bk = cg_pattern_block_k(s->pattern);
    d->nq = (int)((seq + bq - 1) / bq);
    d->nk = (int)((seq + bk - 1) / bk);
    d->spec = (cg_search_spec){s->pattern, as->shape, as->dtype, as->arch, (int64_t)d->nq * d->nk};
    d->table_ints = cg_search_table_ints(&d->spec);
    cg_search_budget(&s->pattern->sel, d->nk, &d->a.recall, &d->base_topk);
    st = cg_search_check(&d->spec, e);
  }
  if (!st) st = kernels(d, dev, cache, e);
  if (!st) st = place(d, e);
  if (!st && seg_budget() > 0) st = rt_plan_segs_create(d->plan, dev, cache, &d->seg_plan, e);
  /* The masses read the segments by the search's token numbers. */
  if (!st && d->seg_plan &&
      sieve_shape_tokens(&rt_plan_spec_of(d->seg_plan)->shape) != sieve_shape_tokens(&rt_plan_spec_of(d->plan)->shape)) {
    rt_plan_free(d->seg_plan, NULL);
    d->seg_plan = NULL;
  }
  if (st) {
    rt_dyn_search_free(d);
    return st;
  }
  *out = d;
  return SIEVE_OK;
}

static sieve_status launch_select(rt_dyn_search *d, CUstream st, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  unsigned nq = (unsigned)d->nq, h = (unsigned)s->heads, b = (unsigned)s->batch;
  unsigned rows = (unsigned)((d->nq + CG_TGEN_WARPS - 1) / CG_TGEN_WARPS);
  sieve_status r = rt_dyn_launch(d->cu, d->select, nq, h, b, 128, d->select_smem, st, d->ps, e);
  if (!r) r = rt_dyn_launch(d->cu, d->scan, b * h, 1, 1, 32, 0, st, d->pp, e);
  if (!r) r = rt_dyn_launch(d->cu, d->fill, rows, b * h, 1, 32 * CG_TGEN_WARPS, 0, st, d->pf, e);
  return r;
}

static sieve_status put_topk(rt_dyn_search *d, CUstream st, cg_err *e) {
  size_t n = (size_t)d->spec.shape.batch * (size_t)d->spec.shape.heads;
  sieve_status r = RT_CU(d->cu, e, cuMemcpyHtoDAsync, d->a.topk, d->topk, 4 * n, st);
  return r ? r : RT_CU(d->cu, e, cuStreamSynchronize, st);  /* d->topk is pageable and may change */
}

/*
** AdaSpa's head-adaptive tiers (§4.2), after the first search's selection
** at the base sparsity: each head's recall (the chosen blocks' share of its
** mass, eq. 9) read back, the tiers per input (cg_search_tiers), and the
** selection made again with each head's own top-k. Waits for st.
*/
static sieve_status tier(rt_dyn_search *d, CUstream st, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  const cg_selection *sel = &d->spec.pattern->sel;
  size_t heads = (size_t)s->batch * (size_t)s->heads;
  sieve_status r = RT_CU(d->cu, e, cuStreamSynchronize, st);
  if (!r) r = RT_CU(d->cu, e, cuMemcpyDtoH, d->rowmass, d->a.rowmass, 8 * heads * (size_t)d->nq);
  if (r) return r;
  double *sp = malloc(sizeof(double) * (size_t)s->heads);
  if (!sp) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (size_t bh = 0; bh < heads; bh++) {
    double kept = 0, all = 0;
    for (int i = 0; i < d->nq; i++) {
      kept += d->rowmass[(bh * (size_t)d->nq + (size_t)i) * 2];
      all += d->rowmass[(bh * (size_t)d->nq + (size_t)i) * 2 + 1];
    }
    d->recall[bh] = all > 0 ? kept / all : 1;
  }
  for (int b = 0; b < s->batch; b++) {
    cg_search_tiers(d->recall + (size_t)b * s->heads, s->heads, sel->sparsity, sel->tiers, sp);
    for (int h = 0; h < s->heads; h++) d->topk[(size_t)b * s->heads + h] = cg_search_topk(sp[h], d->nk);
  }
  free(sp);
  r = put_topk(d, st, e);
  if (!r) r = launch_select(d, st, e);
  if (!r) d->tiered = d->dev_tiered = 1;
  return r;
}

/* The search's arguments and tables, before its masses. */
static sieve_status prepare(rt_dyn_search *d, const sieve_tensor *q, const sieve_tensor *k, CUdeviceptr lse,
                            float scale, CUstream st, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  d->a.q = q->ptr;
  d->a.k = k->ptr;
  d->a.lse = lse;
  int64_t qs[3] = {q->stride_b, q->stride_h, q->stride_s}, ks[3] = {k->stride_b, k->stride_h, k->stride_s};
  memcpy(d->a.qs, qs, sizeof qs);
  memcpy(d->a.ks, ks, sizeof ks);
  d->a.scale = scale > 0 ? scale : 1.0f / sqrtf((float)s->head_dim);
  /* The allowed set's pass may have run on the dense plan (AdaSpa's first
  ** search), which leaves these tables unbuilt. */
  sieve_status r = rt_plan_tables_ready(d->plan, st, e);
  if (r) return r;
  rt_plan_tables(d->plan, &d->a.tabs, &d->a.head_off);
  r = rt_plan_text_sync(d->plan, st, &d->a.tlen, e);
  if (r) return r;
  if (d->spec.pattern->sel.tiers > 0 && !d->tiered && d->dev_tiered) {  /* a new run: the base top-k until its first search */
    size_t n = (size_t)s->batch * (size_t)s->heads;
    for (size_t i = 0; i < n; i++) d->topk[i] = d->base_topk;
    if ((r = put_topk(d, st, e))) return r;
    d->dev_tiered = 0;
  }
  return SIEVE_OK;
}

static sieve_status launch_mass(rt_dyn_search *d, const sieve_tensor *k, CUstream st, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  unsigned nq = (unsigned)d->nq, h = (unsigned)s->heads, b = (unsigned)s->batch;
  unsigned threads = 32 * (unsigned)cg_search_mass_warps(&d->spec);
  sieve_shape ksh;  /* the kernel's tokens, the pattern's text included */
  cg_shape_for(d->spec.pattern, s, &ksh);
  int tma = d->mass_tma && !rt_tmap_off() &&
            rt_tmap_encode(d->cu, &d->a.tmap_k, d->spec.dtype, &ksh, h, b, k, cg_search_mass_box_rows(&d->spec));
  return rt_dyn_launch(d->cu, tma ? d->mass_tma : d->mass, nq, h, b, threads, d->mass_smem, st, d->pm, e);
}

/* The selection from the masses, and at a run's first search the tiers. */
static sieve_status choose(rt_dyn_search *d, CUstream st, cg_err *e) {
  sieve_status r = launch_select(d, st, e);
  if (!r && d->spec.pattern->sel.tiers > 0 && !d->tiered) r = tier(d, st, e);
  if (!r) d->have_sel = 1;
  return r;
}

sieve_status rt_dyn_search_run(rt_dyn_search *d, const sieve_tensor *q, const sieve_tensor *k,
                               CUdeviceptr lse, float scale, CUstream st, cg_err *e) {
  sieve_status r = prepare(d, q, k, lse, scale, st, e);
  d->last_segs = 0;
  if (!r) r = launch_mass(d, k, st, e);
  return r ? r : choose(d, st, e);
}

/*
** Segments of chunk heads at a time, within the budget: as many heads as
** fit, in chunks of equal size. Halves the chunk while the device has no
** room; 0 heads where it has none for one.
*/
static int seg_alloc(rt_dyn_search *d, size_t per_head, CUdeviceptr *mem) {
  int heads = d->spec.shape.heads;
  size_t fit = seg_budget() / per_head;
  int nh = fit < (size_t)heads ? (int)fit : heads;
  if (nh < 1) return 0;
  int chunks = (heads + nh - 1) / nh;
  nh = (heads + chunks - 1) / chunks;
  const char *v = getenv("SIEVE_SEARCH_SEGS_HEADS");  /* for tests: chunks of at most this many */
  if (v && atoi(v) > 0 && atoi(v) < nh) nh = atoi(v);
  for (; nh > 0; nh /= 2)
    if (d->cu->cuMemAlloc(mem, (size_t)nh * per_head) == CUDA_SUCCESS) return nh;
  return 0;
}

/*
** AdaSpa's first search from its dense pass (cg_search_seg.c): the pass
** runs a chunk of heads at a time on the segments plan, and each chunk's
** masses come from its segments. Where the tensors take the TMA kernel's
** stand-in (no segments), the passes still give O and the LSE, and the
** masses come from the mass kernel. *done is 0 where the segments did not
** fit: nothing has run.
*/
static sieve_status seg_search(rt_dyn_search *d, const sieve_tensor *q, const sieve_tensor *k,
                               const sieve_tensor *v, const sieve_tensor *o, CUdeviceptr lse, float scale,
                               CUstream st, int *done, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  int64_t seq = (int64_t)sieve_shape_tokens(&rt_plan_spec_of(d->plan)->shape), nseg = (seq + 63) / 64;
  size_t per_head = 4 * (size_t)nseg * (size_t)seq;
  CUdeviceptr mem = 0;
  int nh = seg_alloc(d, per_head, &mem);
  *done = nh > 0;
  if (!nh) return SIEVE_OK;
  sieve_status r = prepare(d, q, k, lse, scale, st, e);
  int all = 1;
  rt_plan_set_segs(d->seg_plan, mem);
  d->g.segs = mem;
  for (int b = 0; !r && b < s->batch; b++)
    for (int h0 = 0; !r && h0 < s->heads; h0 += nh) {
      int n = s->heads - h0 < nh ? s->heads - h0 : nh;
      r = rt_plan_run_part(d->seg_plan, b, h0, n, q, k, v, o, lse, scale, st, e);
      all = all && rt_plan_segs_written(d->seg_plan);
      if (r || !all) continue;
      CUdeviceptr bh = (CUdeviceptr)b * (CUdeviceptr)s->heads + (CUdeviceptr)h0;
      d->g.lse = lse + 4 * bh * (CUdeviceptr)seq;
      d->g.head_off = d->a.head_off + 4 * (CUdeviceptr)h0;
      d->g.mass = d->a.mass + 4 * bh * (CUdeviceptr)d->spec.cap;
      r = rt_dyn_launch(d->cu, d->seg_mass, (unsigned)d->nq, (unsigned)n, 1, 128, 0, st, d->pg, e);
    }
  /* The next chunk's pass overwrites the segments the last masses read:
  ** the stream orders them; the memory goes back once they are done. */
  sieve_status f = RT_CU(d->cu, r ? NULL : e, cuStreamSynchronize, st);
  if (!r) r = f;
  f = RT_CU(d->cu, r ? NULL : e, cuMemFree, mem);
  if (!r) r = f;
  if (!r && !all) r = launch_mass(d, k, st, e);
  d->last_segs = all;
  return r ? r : choose(d, st, e);
}

int rt_dyn_search_at(const rt_dyn_search *d, int step) {
  const cg_selection *sel = &d->spec.pattern->sel;
  for (int i = 0; i < sel->nsteps; i++)
    if (sel->steps[i] == step) return 1;
  return 0;
}

static int first_search(const rt_dyn_search *d) {
  const cg_selection *sel = &d->spec.pattern->sel;
  int f = sel->nsteps ? sel->steps[0] : 0;
  for (int i = 1; i < sel->nsteps; i++) f = sel->steps[i] < f ? sel->steps[i] : f;
  return f;
}

sieve_status rt_dyn_search_step(rt_dyn_search *d, int step, int layer, const sieve_tensor *q,
                                const sieve_tensor *k, const sieve_tensor *v,
                                const sieve_tensor *o, CUdeviceptr lse, float scale,
                                CUstream st, int *searched, cg_err *e) {
  int first = first_search(d);
  const cg_selection *sel = &d->spec.pattern->sel;
  if (step < first) d->tiered = d->lse_cached = 0;  /* a new run measures its own */
  int search = rt_dyn_search_at(d, step) || (!d->have_sel && step >= first);
  if (searched) *searched = search;
  d->a.step = step;
  d->a.layer = layer;
  sieve_status r = rt_plan_set_step(d->plan, step, layer, e);
  if (r) return r;
  /*
  ** A later search of a run with a cached LSE (§4.2 LSE-Cached Online
  ** Search, Fig. 7): the masses of every allowed block from Q, K and the
  ** first search's LSE, the selection, and this step's attention on it.
  */
  d->last_cached = search && sel->cache_lse && d->lse_cached;
  if (d->last_cached) {
    d->last_sparse = 1;
    r = rt_dyn_search_run(d, q, k, d->lse_cache, scale, st, e);
    return r ? r : rt_dyn_search_run_selected(d, q, k, v, o, lse, scale, st, e);
  }
  /* Steps before the first search run dense over the allowed set, also when
  ** a selection is left from an earlier pass through the schedule. */
  int sparse = d->have_sel && !search && step >= first;
  d->last_sparse = sparse;
  int done = 0;
  if (sparse) {
    r = rt_dyn_search_run_selected(d, q, k, v, o, lse, scale, st, e);
  } else {
    rt_plan_use_tables(d->plan, 0, 0);
    if (search && d->seg_plan) r = seg_search(d, q, k, v, o, lse, scale, st, &done, e);
    if (!r && !done) r = rt_plan_run_allowed(d->plan, q, k, v, o, lse, scale, st, e);
  }
  if (!r && search && !done) r = rt_dyn_search_run(d, q, k, lse, scale, st, e);
  if (!r && search && sel->cache_lse) {
    size_t n = 4 * (size_t)d->spec.shape.batch * (size_t)d->spec.shape.heads * (size_t)sieve_shape_tokens(&d->spec.shape);
    r = RT_CU(d->cu, e, cuMemcpyDtoDAsync, d->lse_cache, lse, n, st);
    d->lse_cached = !r;
  }
  return r;
}

sieve_status rt_dyn_search_run_selected(rt_dyn_search *d, const sieve_tensor *q, const sieve_tensor *k,
                                        const sieve_tensor *v, const sieve_tensor *o, CUdeviceptr lse,
                                        float scale, CUstream st, cg_err *e) {
  if (!d->have_sel) return cg_fail(e, SIEVE_ERR_ARG, "no selection yet: no search has run");
  const sieve_shape *s = &d->spec.shape;
  sieve_status r = SIEVE_OK;
  for (int b = 0; !r && b < s->batch; b++) {
    rt_plan_use_tables(d->plan, d->a.sel_tabs, d->a.sel_head_off + 4 * (CUdeviceptr)b * (CUdeviceptr)s->heads);
    r = rt_plan_run_part(d->plan, s->batch > 1 ? b : -1, 0, s->heads, q, k, v, o, lse, scale, st, e);
  }
  rt_plan_use_tables(d->plan, 0, 0);
  return r;
}

void rt_dyn_search_buffers(const rt_dyn_search *d, rt_dyn_search_bufs *out) {
  *out = (rt_dyn_search_bufs){d->a.mass, d->a.counts, d->a.sel_tabs, d->a.sel_head_off,
                              d->spec.cap, d->table_ints, d->nq, d->nk, d->a.rowmass, d->lse_cache};
}

sieve_status rt_dyn_search_read(rt_dyn_search *d, uint8_t *blocks, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  if (!d->have_sel) return cg_fail(e, SIEVE_ERR_ARG, "no selection yet: no search has run");
  size_t rows = (size_t)s->batch * (size_t)s->heads * (size_t)d->nq, nk = (size_t)d->nk;
  int32_t *r = malloc(4 * rows * nk), *c = malloc(8 * rows);
  if (!r || !c) {
    free(r);
    free(c);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  sieve_status st = RT_CU(d->cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(d->cu, e, cuMemcpyDtoH, r, d->a.rows, 4 * rows * nk);
  if (!st) st = RT_CU(d->cu, e, cuMemcpyDtoH, c, d->a.counts, 8 * rows);
  if (!st) memset(blocks, 0, rows * nk);
  /* A row holds its full blocks from the front and its partial ones from
  ** the back (cg_tablegen.h); anything else left there is stale. */
  for (size_t i = 0; !st && i < rows; i++) {
    const int32_t *row = r + i * nk;
    int nf = c[2 * i], np = c[2 * i + 1];
    if (nf < 0 || np < 0 || nf + np > d->nk) {
      st = cg_fail(e, SIEVE_ERR_CUDA, "search selection: row %zu counts %d full and %d partial of %d key blocks", i, nf, np, d->nk);
      break;
    }
    for (int j = 0; j < nf + np; j++) {
      int32_t kb = j < nf ? row[j] : row[nk - 1 - (size_t)(j - nf)];
      if (kb < 0 || kb >= d->nk) {
        st = cg_fail(e, SIEVE_ERR_CUDA, "search selection: row %zu holds key block %d of %d", i, kb, d->nk);
        break;
      }
      blocks[i * nk + (size_t)kb] = 1;
    }
  }
  free(r);
  free(c);
  return st;
}

int rt_dyn_search_has(const rt_dyn_search *d) { return d->have_sel; }

const int32_t *rt_dyn_search_topk(const rt_dyn_search *d) { return d->topk; }
const double *rt_dyn_search_recall(const rt_dyn_search *d) { return d->tiered ? d->recall : NULL; }
int rt_dyn_search_cached(const rt_dyn_search *d) { return d->last_cached; }
int rt_dyn_search_segs(const rt_dyn_search *d) { return d->last_segs; }

rt_plan *rt_dyn_search_plan(const rt_dyn_search *d) { return d->plan; }

sieve_status rt_dyn_search_set_text(rt_dyn_search *d, const int *valid, int n, cg_err *e) {
  sieve_status st = rt_plan_set_text(d->plan, valid, n, e);
  return st || !d->seg_plan ? st : rt_plan_set_text(d->seg_plan, valid, n, e);
}

sieve_status rt_dyn_search_selected(rt_dyn_search *d, double *density, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  if (!d->have_sel) return cg_fail(e, SIEVE_ERR_ARG, "no selection yet: no search has run");
  size_t n = 2 * (size_t)s->batch * (size_t)s->heads * (size_t)d->nq;
  int32_t *c = malloc(4 * n);
  if (!c) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  sieve_status st = RT_CU(d->cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(d->cu, e, cuMemcpyDtoH, c, d->a.counts, 4 * n);
  double kept = 0;
  for (size_t i = 0; !st && i < n; i++) kept += c[i];
  *density = kept / ((double)s->batch * s->heads * d->nq * d->nk);
  free(c);
  return st;
}

sieve_status rt_dyn_search_density(rt_dyn_search *d, double *density, cg_err *e) {
  if (d->last_sparse) return rt_dyn_search_selected(d, density, e);
  *density = rt_plan_density(d->plan);
  return SIEVE_OK;
}

void rt_dyn_search_free(rt_dyn_search *d) {
  if (!d) return;
  if (d->cu) {
    rt_module_unload(d->cu, d->mod, NULL);
    if (d->mem) RT_CU(d->cu, NULL, cuMemFree, d->mem);
  }
  rt_plan_free(d->plan, NULL);
  rt_plan_free(d->seg_plan, NULL);
  free(d->topk);
  free(d->recall);
  free(d->rowmass);
  free(d);
}
