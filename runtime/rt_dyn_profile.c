/*
** Sparse VideoGen at run time: a plan per head class, the profiling module,
** the sampled rows, and the classes of each batch element's heads.
**
** A class's plan is made for the pattern with every head in that class (a
** copy of the pattern IR sharing its graph, with one class and no dynamic
** selection), so its kernel carries that class's mask and layout. A step
** then launches it over each run of consecutive heads profiling gave the
** class (rt_plan_run_part). Temporal heads run in their transposed layout
** this way with no permute kernels: the kernel reads Q, K, V and writes O
** through the layout's position -> row map.
**
** Classes are per (batch element, head): the inputs of a batch (other
** prompts, other guidance branches) need not agree on which heads are
** spatial. Every element is profiled on the same sampled rows: they are
** positions, and a position is as good a sample in one input as in another.
**
** The selection's mode (cg_profile_mode) says what a profiling step
** decides: ONLINE moves each head to its class of least error (SVG);
** SEARCH adds the errors (mean squared, as STA's L2 loss) to a mask-search
** strategy and runs full attention, as STA's search does; FILE profiles
** nothing and takes each (step, layer)'s classes from a mask-search file
** (rt_strategy.h), refusing a step the file does not hold.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_profile.h"
#include "rt_check.h"  /* rt_rand */
#include "rt_dyn.h"
#include "rt_module.h"
#include "rt_strategy.h"

struct rt_dyn_profile {
  const rt_cuda *cu;
  cg_pattern *p;
  int nc, heads, batch;
  int want;                /* sampled rows that decide (the kernel runs spec.ns) */
  cg_profile_mode mode;
  rt_strategy *strat;      /* SEARCH: the sums so far; FILE: the file */
  cg_pattern *full_pat;    /* SEARCH: full attention, which its steps run */
  rt_plan *full;
  double *mse;             /* SEARCH: [heads][nc] of the last profiling */
  cg_pattern *cp;          /* [nc]: the pattern with every head in class c */
  int *cls_of;             /* [nc]: head_class of each copy */
  rt_plan **plan;          /* [nc] */
  cg_profile_spec spec;
  CUmodule mod;
  CUfunction part, err;
  unsigned smem;
  CUdeviceptr mem;
  int *klass;              /* [batch][heads] */
  double *errs;            /* [batch][heads][nc] */
  float *raw;              /* err read back */
  int32_t *rows;           /* [ns] */
  uint64_t rng;
  int ran;                 /* a profiling step has run */
  struct {
    CUdeviceptr q, k, v;
    int64_t st[9];
    CUdeviceptr rows, part, err;
    int32_t step, layer;
    float scale;
    CUdeviceptr tlen;
  } a;
  void *pp[18], *pe[2];
};

static void bind(rt_dyn_profile *d) {
  void **v = d->pp;
  *v++ = &d->a.q;
  *v++ = &d->a.k;
  *v++ = &d->a.v;
  for (int i = 0; i < 9; i++) *v++ = &d->a.st[i];
  *v++ = &d->a.rows;
  *v++ = &d->a.part;
  *v++ = &d->a.step;
  *v++ = &d->a.layer;
  *v++ = &d->a.scale;
  *v++ = &d->a.tlen;
  d->pe[0] = &d->a.part;
  d->pe[1] = &d->a.err;
}

/* The pattern with every head in class c. */
static sieve_status class_pattern(rt_dyn_profile *d, int c, cg_err *e) {
  cg_pattern *cp = &d->cp[c];
  *cp = *d->p;
  d->cls_of[c] = c;
  cp->period = 1;
  cp->head_class = &d->cls_of[c];
  cp->sel = (cg_selection){.kind = CG_SELECT_STATIC};
  cp->ir_text = NULL;  /* the copy gets its own canonical text */
  if (cg_vars_used(d->p->g, d->p->classes[c].mask) & (1u << CG_V_HEAD))
    return cg_fail(e, SIEVE_ERR_UNSUPPORTED, "class %s: profiled classes whose mask reads the head are not supported",
                   d->p->classes[c].name);
  return cg_pattern_finish(cp, e);
}

static sieve_status gen_ptx(void *ud, char **ptx, cg_err *e) {
  return cg_profile_build(&((rt_dyn_profile *)ud)->spec, ptx, e);
}

/* The part kernel's key chunk: enough CTAs for the GPU (cg_profile.h), or
** SIEVE_PROFILE_CHUNK (tokens, a multiple of 64) where set, for benchmarks. */
static int profile_chunk(const cg_profile_spec *s, int batch) {
  const char *env = getenv("SIEVE_PROFILE_CHUNK");
  if (env && *env) return atoi(env);
  return cg_profile_pick_chunk(s, batch, RT_PROFILE_CTAS);
}

static size_t up256(size_t n) { return (n + 255) & ~(size_t)255; }

static sieve_status module(rt_dyn_profile *d, const rt_device *dev, rt_cache *cache, cg_err *e) {
  char key[2048], extra[96];
  snprintf(extra, sizeof extra, "dtype %s rows %d chunk %d", d->spec.dtype == CG_FP16 ? "fp16" : "bf16", d->spec.ns,
           cg_profile_chunk(&d->spec));
  /* 2: the kernels take the batch; a cached batch-0-only module must miss. */
  if (rt_dyn_key(key, sizeof key, "profile 2", d->p, &d->spec.shape, d->spec.arch, dev, extra) >= (int)sizeof key)
    cache = NULL;
  sieve_status st = rt_dyn_module(d->cu, cache, key, gen_ptx, d, &d->mod, NULL, e);
  d->smem = (unsigned)cg_profile_smem(&d->spec);
  if (!st) st = rt_kernel_get(d->cu, d->mod, "sieve_profile_part", d->smem, &d->part, e);
  if (!st) st = rt_kernel_get(d->cu, d->mod, "sieve_profile_err", 0, &d->err, e);
  size_t rows = up256(4 * (size_t)d->spec.ns), part = up256(4 * cg_profile_part_floats(&d->spec, d->batch));
  if (!st) st = RT_CU(d->cu, e, cuMemAlloc, &d->mem, rows + part + 4 * cg_profile_err_floats(&d->spec, d->batch));
  d->a.rows = d->mem;
  d->a.part = d->mem + rows;
  d->a.err = d->a.part + part;
  return st;
}

static sieve_status host_state(rt_dyn_profile *d, cg_err *e) {
  size_t bh = (size_t)d->batch * (size_t)d->heads;
  d->klass = malloc(sizeof(int) * bh);
  d->errs = calloc(bh * (size_t)d->nc, sizeof(double));
  d->raw = malloc(4 * cg_profile_err_floats(&d->spec, d->batch));
  d->rows = calloc((size_t)d->spec.ns, 4);  /* read back before any profiling: zeros */
  if (!d->klass || !d->errs || !d->raw || !d->rows) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < bh; i++) d->klass[i] = d->p->head_class[(int)(i % (size_t)d->heads) % d->p->period];
  d->rng = 0x5eed5eedull;
  return SIEVE_OK;
}

sieve_status rt_dyn_profile_create(const rt_plan_spec *s, const rt_device *dev, rt_cache *cache,
                                   rt_dyn_profile **out, cg_err *e) {
  *out = NULL;
  rt_dyn_profile *d = calloc(1, sizeof *d);
  if (!d) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  bind(d);
  d->p = s->pattern;
  d->nc = s->pattern->nclasses;
  d->cp = calloc((size_t)d->nc, sizeof *d->cp);
  d->cls_of = calloc((size_t)d->nc, sizeof(int));
  d->plan = calloc((size_t)d->nc, sizeof *d->plan);
  sieve_status st = d->cp && d->cls_of && d->plan ? rt_cuda_get(&d->cu, e) : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  /* The classes run one after another on one stream: one layout-permute
  ** buffer serves every class plan that needs it. */
  const rt_plan *owner = NULL;
  for (int c = 0; !st && c < d->nc; c++) {
    rt_plan_spec cs = *s;
    cs.pattern = &d->cp[c];
    cs.share = owner;
    st = class_pattern(d, c, e);
    if (!st) st = rt_plan_create(&cs, dev, cache, &d->plan[c], e);
    if (!st && !owner && rt_plan_stats_of(d->plan[c])->permute_bytes) owner = d->plan[c];
  }
  if (!st) {
    const cg_attn_spec *as = rt_plan_spec_of(d->plan[0]);
    int want = s->pattern->sel.samples > 0 ? s->pattern->sel.samples : 64;
    d->heads = as->shape.heads;
    d->batch = as->shape.batch;
    d->want = want;
    d->spec = (cg_profile_spec){s->pattern, as->shape, as->dtype, as->arch,
                                (want + CG_PROFILE_ROWS - 1) / CG_PROFILE_ROWS * CG_PROFILE_ROWS, 0};
    d->spec.chunk = profile_chunk(&d->spec, d->batch);
    st = cg_profile_check(&d->spec, e);
    /* The part kernel's grid z holds both the row groups and the batch. */
    if (!st && (int64_t)(d->spec.ns / CG_PROFILE_ROWS) * d->batch > 65535)
      st = cg_fail(e, SIEVE_ERR_UNSUPPORTED, "profile: %d row groups x batch %d pass the grid's 65535",
                   d->spec.ns / CG_PROFILE_ROWS, d->batch);
  }
  d->mode = s->pattern->sel.mode;
  if (!st && d->mode == CG_PROFILE_FILE) {
    /* Nothing is profiled: no module; the file must fit the pattern and shape. */
    st = rt_strategy_load(s->pattern->sel.file, s->pattern, &s->shape, &d->strat, e);
  } else if (!st) {
    st = module(d, dev, cache, e);
  }
  if (!st && d->mode == CG_PROFILE_SEARCH) {
    st = rt_strategy_new(s->pattern, &s->shape, &d->strat, e);
    if (!st && !(d->mse = calloc((size_t)d->heads * (size_t)d->nc, sizeof(double))))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    if (!st && !(d->full_pat = cg_pattern_dense_of(s->pattern, e))) st = e->status;
    rt_plan_spec fs = *s;
    fs.pattern = d->full_pat;
    if (!st) st = rt_plan_create(&fs, dev, cache, &d->full, e);
  }
  if (!st) st = host_state(d, e);
  if (st) {
    rt_dyn_profile_free(d);
    return st;
  }
  *out = d;
  return SIEVE_OK;
}

/* Each (batch element, head) to the class of lowest relative error on the
** sample: its first `want` rows (the kernel computes a multiple of 64, the
** rest repeat them). */
static void classify(rt_dyn_profile *d) {
  int ns = d->spec.ns, P = d->nc + 1, want = d->want;
  for (size_t bh = 0; bh < (size_t)d->batch * (size_t)d->heads; bh++) {
    const float *raw = d->raw + bh * (size_t)ns * P;
    double ref = 0, *err = d->errs + bh * (size_t)d->nc;
    for (int r = 0; r < want; r++) ref += raw[(size_t)r * P];
    int best = 0;
    for (int c = 0; c < d->nc; c++) {
      double s = 0;
      for (int r = 0; r < want; r++) s += raw[(size_t)r * P + c + 1];
      err[c] = ref > 0 ? s / ref : 0;
      if (err[c] < err[best]) best = c;
      /* STA's loss: the mean over the batch, rows and columns. */
      if (d->mse)
        d->mse[(bh % (size_t)d->heads) * (size_t)d->nc + (size_t)c] +=
            s / ((double)want * d->spec.shape.head_dim * d->batch);
    }
    d->klass[bh] = best;
  }
}

sieve_status rt_dyn_profile_run(rt_dyn_profile *d, int step, int layer, const sieve_tensor *q,
                                const sieve_tensor *k, const sieve_tensor *v, float scale,
                                CUstream st, cg_err *e) {
  const sieve_shape *s = &d->spec.shape;
  int64_t seq = sieve_shape_tokens(s);
  /* SVG samples its rows from the first video tokens (sample_mse_max_row). */
  int64_t video = seq - s->text, range = d->p->sel.sample_range;
  int64_t from = range > 0 ? (range < video ? range : video) : seq, at = range > 0 && !s->text_after ? s->text : 0;
  for (int i = 0; i < d->spec.ns; i++)
    d->rows[i] = i < d->want ? (int32_t)(at + (int64_t)(rt_rand(&d->rng) % (uint64_t)from)) : d->rows[i % d->want];
  const sieve_tensor *t[3] = {q, k, v};
  d->a.q = q->ptr;
  d->a.k = k->ptr;
  d->a.v = v->ptr;
  for (int i = 0; i < 3; i++) {
    d->a.st[3 * i] = t[i]->stride_b;
    d->a.st[3 * i + 1] = t[i]->stride_h;
    d->a.st[3 * i + 2] = t[i]->stride_s;
  }
  d->a.step = step;
  d->a.layer = layer;
  d->a.scale = scale > 0 ? scale : 1.0f / sqrtf((float)s->head_dim);
  unsigned nch = (unsigned)cg_profile_chunks(&d->spec), h = (unsigned)s->heads, ns = (unsigned)d->spec.ns;
  unsigned b = (unsigned)d->batch;
  sieve_status r = rt_plan_text_sync(d->plan[0], st, &d->a.tlen, e);
  if (!r) r = RT_CU(d->cu, e, cuMemcpyHtoDAsync, d->a.rows, d->rows, 4 * (size_t)ns, st);
  if (!r) r = rt_dyn_launch(d->cu, d->part, nch, h, ns / CG_PROFILE_ROWS * b, 128, d->smem, st, d->pp, e);
  if (!r) r = rt_dyn_launch(d->cu, d->err, ns, h, b, (unsigned)s->head_dim,
                            (unsigned)cg_profile_err_smem(&d->spec), st, d->pe, e);
  if (!r) r = RT_CU(d->cu, e, cuStreamSynchronize, st);
  if (!r) r = RT_CU(d->cu, e, cuMemcpyDtoH, d->raw, d->a.err, 4 * cg_profile_err_floats(&d->spec, d->batch));
  if (!r && d->mse) memset(d->mse, 0, sizeof(double) * (size_t)d->heads * (size_t)d->nc);
  if (!r) classify(d);
  if (!r) d->ran = 1;
  if (!r && d->mode == CG_PROFILE_SEARCH) r = rt_strategy_add(d->strat, step, layer, d->mse, e);
  return r;
}

int rt_dyn_profile_at(const rt_dyn_profile *d, int step) {
  const cg_selection *sel = &d->p->sel;
  if (sel->kind != CG_SELECT_PROFILE) return 0;
  for (int i = 0; i < sel->nsteps; i++)
    if (sel->steps[i] == step) return 1;
  return 0;
}

sieve_status rt_dyn_profile_step(rt_dyn_profile *d, int step, int layer, const sieve_tensor *q,
                                 const sieve_tensor *k, const sieve_tensor *v,
                                 const sieve_tensor *o, CUdeviceptr lse, float scale,
                                 CUstream st, int *profiled, cg_err *e) {
  if (cg_pattern_dense_at(d->p, step, layer)) {
    /* The warm-up: no profiling, one dense launch for every head. */
    if (profiled) *profiled = 0;
    sieve_status r = SIEVE_OK;
    for (int c = 0; !r && c < d->nc; c++) r = rt_plan_set_step(d->plan[c], step, layer, e);
    return r ? r : rt_plan_run(d->plan[0], q, k, v, o, lse, scale, st, e);
  }
  if (d->mode == CG_PROFILE_FILE) {
    const int *cls = rt_strategy_at(d->strat, step, layer);
    if (!cls)
      return cg_fail(e, SIEVE_ERR_ARG, "mask search file %s holds no choice for step %d layer %d (sparse there)",
                     d->p->sel.file, step, layer);
    for (int i = 0; i < d->batch * d->heads; i++) d->klass[i] = cls[i % d->heads];
  }
  int prof = d->mode != CG_PROFILE_FILE && rt_dyn_profile_at(d, step);
  if (profiled) *profiled = prof;
  sieve_status r = prof ? rt_dyn_profile_run(d, step, layer, q, k, v, scale, st, e) : SIEVE_OK;
  if (d->mode == CG_PROFILE_SEARCH) {
    /* STA's search runs the model on full attention while it measures. */
    if (!r) r = rt_plan_set_step(d->full, step, layer, e);
    return r ? r : rt_plan_run(d->full, q, k, v, o, lse, scale, st, e);
  }
  for (int c = 0; !r && c < d->nc; c++) r = rt_plan_set_step(d->plan[c], step, layer, e);
  /* When every element has the same classes, one launch per run covers the
  ** batch (b < 0), so B = 1 and agreeing batches launch no more than one
  ** class per head did; otherwise each element launches its own runs. */
  int same = 1;
  for (int i = d->heads; same && i < d->batch * d->heads; i++) same = d->klass[i] == d->klass[i % d->heads];
  for (int b = 0; !r && b < (same ? 1 : d->batch); b++) {
    const int *kl = d->klass + (size_t)b * d->heads;
    for (int h0 = 0; !r && h0 < d->heads;) {
      int n = 1;
      while (h0 + n < d->heads && kl[h0 + n] == kl[h0]) n++;
      r = rt_plan_run_part(d->plan[kl[h0]], same ? -1 : b, h0, n, q, k, v, o, lse, scale, st, e);
      h0 += n;
    }
  }
  return r;
}

const int *rt_dyn_profile_classes(const rt_dyn_profile *d) { return d->klass; }
int rt_dyn_profile_batch(const rt_dyn_profile *d) { return d->batch; }
int rt_dyn_profile_ran(const rt_dyn_profile *d) { return d->ran; }
int rt_dyn_profile_samples(const rt_dyn_profile *d) { return d->want; }
const double *rt_dyn_profile_errors(const rt_dyn_profile *d) { return d->errs; }
const int32_t *rt_dyn_profile_rows(const rt_dyn_profile *d, int *ns) {
  *ns = d->spec.ns;
  return d->rows;
}
void rt_dyn_profile_seed(rt_dyn_profile *d, uint64_t seed) { d->rng = seed ? seed : 1; }
rt_plan *rt_dyn_profile_plan(const rt_dyn_profile *d, int cls) { return cls >= 0 && cls < d->nc ? d->plan[cls] : NULL; }

const rt_strategy *rt_dyn_profile_strategy(const rt_dyn_profile *d) { return d->strat; }

sieve_status rt_dyn_profile_save(const rt_dyn_profile *d, const char *path, cg_err *e) {
  if (d->mode != CG_PROFILE_SEARCH)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s does not search (its sieve.profile has no mode = \"search\")",
                   d->p->name);
  if (!rt_strategy_count(d->strat))
    return cg_fail(e, SIEVE_ERR_ARG, "mask search: nothing searched yet (no sparse step has run)");
  return rt_strategy_save(d->strat, path, e);
}

double rt_dyn_profile_density(const rt_dyn_profile *d) {
  if (d->mode == CG_PROFILE_SEARCH) return 1;  /* its steps run full attention */
  double s = 0;
  int n = d->batch * d->heads;
  for (int i = 0; i < n; i++) s += rt_plan_density(d->plan[d->klass[i]]);
  return s / n;
}

void rt_dyn_profile_free(rt_dyn_profile *d) {
  if (!d) return;
  if (d->cu) {
    rt_module_unload(d->cu, d->mod, NULL);
    if (d->mem) RT_CU(d->cu, NULL, cuMemFree, d->mem);
  }
  for (int c = 0; d->plan && c < d->nc; c++) rt_plan_free(d->plan[c], NULL);
  rt_plan_free(d->full, NULL);
  cg_pattern_free(d->full_pat);
  rt_strategy_free(d->strat);
  free(d->mse);
  for (int c = 0; d->cp && c < d->nc; c++) free(d->cp[c].ir_text);
  free(d->cp);
  free(d->cls_of);
  free(d->plan);
  free(d->klass);
  free(d->errs);
  free(d->raw);
  free(d->rows);
  free(d);
}
