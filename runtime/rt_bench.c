/*
** Kernel timing with CUDA events over rotating input sets (see rt_bench.h).
*/
#include "rt_bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_check.h"  /* rt_rand_half, rt_check_strides */

#define ATTR_L2_CACHE_SIZE 38  /* CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE */
#define POOL_ELEMS ((size_t)1 << 22)
#define MEM_CAP ((double)(1u << 30))
#define ESTIMATE_RUNS 5

struct rt_bench {
  const rt_cuda *cu;
  sieve_shape shape;
  cg_dtype dtype;
  rt_bench_opts o;
  int sets;
  size_t elems, rows;      /* per tensor: B*H*S*D elements; B*H*S LSE rows */
  size_t set_bytes;
  int64_t st[3];
  CUdeviceptr *mem;        /* one block per set: Q, K, V, O, then LSE */
  CUstream stream;
  CUevent *ev;
  int nev;
};

/* ------------------------------------------------------- arithmetic */

double rt_bench_flops(const sieve_shape *s, double density) {
  double S = (double)sieve_shape_tokens(s);
  return 4.0 * s->batch * s->heads * S * S * s->head_dim * density;
}

int rt_bench_sets(double set_bytes, double l2_bytes, double mem_cap) {
  if (set_bytes <= 0) return 2;
  double want = 1 + ceil(2 * l2_bytes / set_bytes);
  double cap = floor(mem_cap / set_bytes);
  if (want > cap) want = cap;
  if (want > 256) want = 256;
  return want < 2 ? 2 : (int)want;
}

static int by_value(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void rt_bench_stats(float *ms, int n, rt_bench_result *r) {
  qsort(ms, (size_t)n, sizeof *ms, by_value);
  double sum = 0;
  for (int i = 0; i < n; i++) sum += ms[i];
  r->runs = n;
  r->min_ms = n ? ms[0] : 0;
  r->max_ms = n ? ms[n - 1] : 0;
  r->mean_ms = n ? sum / n : 0;
  r->median_ms = !n ? 0 : n % 2 ? ms[n / 2] : 0.5 * ((double)ms[n / 2 - 1] + ms[n / 2]);
}

/* ------------------------------------------------------------ sets */

static CUdeviceptr tensor_at(const rt_bench *b, int set, int i) {
  return b->mem[set] + (CUdeviceptr)(2 * b->elems * (size_t)i);
}

/*
** Every Q, K and V is cut from one pool of random values, each starting at
** its own offset: rows differ, and filling gigabytes costs one pool's worth
** of random numbers. Values repeating far apart change nothing the clock
** sees.
*/
static sieve_status fill(rt_bench *b, cg_err *e) {
  size_t pool_n = b->elems < POOL_ELEMS ? b->elems : POOL_ELEMS;
  uint16_t *pool = malloc(2 * pool_n);
  if (!pool) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for benchmark inputs");
  uint64_t rng = b->o.seed ? b->o.seed : 1;
  rt_rand_half(pool, pool_n, b->dtype, &rng);
  sieve_status st = SIEVE_OK;
  for (int s = 0; s < b->sets && !st; s++)
    for (int t = 0; t < 3 && !st; t++) {
      size_t at = (size_t)(rt_rand(&rng) % pool_n), done = 0;
      while (done < b->elems && !st) {
        size_t n = pool_n - at < b->elems - done ? pool_n - at : b->elems - done;
        st = RT_CU(b->cu, e, cuMemcpyHtoD, tensor_at(b, s, t) + 2 * done, pool + at, 2 * n);
        done += n;
        at = 0;
      }
    }
  free(pool);
  return st;
}

static sieve_status l2_bytes(const rt_cuda *cu, int *l2, cg_err *e) {
  CUdevice dev;
  sieve_status st = RT_CU(cu, e, cuCtxGetDevice, &dev);
  if (!st) st = RT_CU(cu, e, cuDeviceGetAttribute, l2, ATTR_L2_CACHE_SIZE, dev);
  return st;
}

sieve_status rt_bench_new(const sieve_shape *shape, cg_dtype dtype, const rt_bench_opts *o,
                          rt_bench **out, cg_err *e) {
  *out = NULL;
  rt_bench *b = calloc(1, sizeof *b);
  if (!b) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a benchmark");
  b->shape = *shape;
  b->dtype = dtype;
  if (o) b->o = *o;
  b->rows = (size_t)shape->batch * (size_t)shape->heads * (size_t)sieve_shape_tokens(shape);
  b->elems = b->rows * (size_t)shape->head_dim;
  b->set_bytes = 4 * 2 * b->elems + sizeof(float) * b->rows;
  rt_check_strides(shape, 0, b->st);
  int l2 = 0;
  sieve_status st = rt_cuda_get(&b->cu, e);
  if (!st) st = l2_bytes(b->cu, &l2, e);
  if (!st) {
    b->sets = b->o.sets > 0 ? b->o.sets : rt_bench_sets((double)b->set_bytes, l2, MEM_CAP);
    if (!(b->mem = calloc((size_t)b->sets, sizeof *b->mem)))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a benchmark");
  }
  for (int s = 0; !st && s < b->sets; s++)
    st = RT_CU(b->cu, e, cuMemAlloc, &b->mem[s], b->set_bytes);
  if (!st) st = RT_CU(b->cu, e, cuStreamCreate, &b->stream, CU_STREAM_NON_BLOCKING);
  if (!st) st = fill(b, e);
  if (st) {
    rt_bench_free(b);
    return st;
  }
  *out = b;
  return SIEVE_OK;
}

void rt_bench_free(rt_bench *b) {
  if (!b) return;
  /* Failures while tearing down have no one to go to. */
  for (int i = 0; i < b->nev; i++) RT_CU(b->cu, NULL, cuEventDestroy, b->ev[i]);
  if (b->stream) RT_CU(b->cu, NULL, cuStreamDestroy, b->stream);
  for (int s = 0; b->mem && s < b->sets; s++)
    if (b->mem[s]) RT_CU(b->cu, NULL, cuMemFree, b->mem[s]);
  free(b->ev);
  free(b->mem);
  free(b);
}

/* ------------------------------------------------------------ timing */

static sieve_status events(rt_bench *b, int n, cg_err *e) {
  if (n <= b->nev) return SIEVE_OK;
  CUevent *ev = realloc(b->ev, sizeof *ev * (size_t)n);
  if (!ev) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for events");
  b->ev = ev;
  for (; b->nev < n; b->nev++) {
    sieve_status st = RT_CU(b->cu, e, cuEventCreate, &b->ev[b->nev], CU_EVENT_DEFAULT);
    if (st) return st;
  }
  return SIEVE_OK;
}

void rt_bench_set(const rt_bench *b, int set, sieve_tensor t[4], CUdeviceptr *lse, CUstream *s) {
  set %= b->sets;
  for (int i = 0; i < 4; i++) t[i] = (sieve_tensor){tensor_at(b, set, i), b->st[0], b->st[1], b->st[2]};
  *lse = tensor_at(b, set, 4);
  *s = b->stream;
}

static sieve_status run_set(rt_bench *b, rt_plan *p, int set, cg_err *e) {
  sieve_tensor t[4];
  CUdeviceptr lse;
  CUstream s;
  rt_bench_set(b, set, t, &lse, &s);
  return rt_plan_run(p, &t[0], &t[1], &t[2], &t[3], lse, 0.0f, s, e);
}

/* Milliseconds between events a and b once b has happened. */
static sieve_status elapsed(rt_bench *b, CUevent x, CUevent y, float *ms, cg_err *e) {
  sieve_status st = RT_CU(b->cu, e, cuEventSynchronize, y);
  if (!st) st = RT_CU(b->cu, e, cuEventElapsedTime, ms, x, y);
  return st;
}

/* A first run (lazy loading, table upload), then a few to size the rest. */
static sieve_status estimate(rt_bench *b, rt_plan *p, double *per_run, cg_err *e) {
  float ms = 0;
  sieve_status st = events(b, 2, e);
  if (!st) st = run_set(b, p, 0, e);
  if (!st) st = RT_CU(b->cu, e, cuStreamSynchronize, b->stream);
  if (!st) st = RT_CU(b->cu, e, cuEventRecord, b->ev[0], b->stream);
  for (int i = 0; i < ESTIMATE_RUNS && !st; i++) st = run_set(b, p, i + 1, e);
  if (!st) st = RT_CU(b->cu, e, cuEventRecord, b->ev[1], b->stream);
  if (!st) st = elapsed(b, b->ev[0], b->ev[1], &ms, e);
  *per_run = ms / ESTIMATE_RUNS > 1e-4 ? ms / ESTIMATE_RUNS : 1e-4;
  return st;
}

static int clamp_runs(double want, int lo, int hi) {
  if (want > hi) return hi;
  if (want < lo) return lo;
  return (int)want;
}

/* A plan that permutes Q, K, V first: that kernel's share, timed alone
** over n runs on the rotating sets (median). */
static sieve_status time_permute(rt_bench *b, rt_plan *p, int n, int set, rt_bench_result *r, cg_err *e) {
  float ms[64];
  if (n > 64) n = 64;
  sieve_status st = events(b, 2 * n, e);
  for (int i = 0; i < n && !st; i++, set++) {
    sieve_tensor t[4];
    CUdeviceptr lse;
    CUstream s;
    rt_bench_set(b, set, t, &lse, &s);
    st = RT_CU(b->cu, e, cuEventRecord, b->ev[2 * i], s);
    if (!st) st = rt_plan_permute(p, &t[0], &t[1], &t[2], s, e);
    if (!st) st = RT_CU(b->cu, e, cuEventRecord, b->ev[2 * i + 1], s);
  }
  for (int i = 0; i < n && !st; i++) st = elapsed(b, b->ev[2 * i], b->ev[2 * i + 1], &ms[i], e);
  if (!st) {
    rt_bench_result pr;
    rt_bench_stats(ms, n, &pr);
    r->permute_ms = pr.median_ms;
  }
  return st;
}

sieve_status rt_bench_run(rt_bench *b, rt_plan *p, rt_bench_result *r, cg_err *e) {
  const cg_attn_spec *ps = rt_plan_spec_of(p);
  const sieve_shape *s = &ps->shape;
  memset(r, 0, sizeof *r);
  if (s->batch != b->shape.batch || s->heads != b->shape.heads ||
      s->head_dim != b->shape.head_dim || sieve_shape_tokens(s) != sieve_shape_tokens(&b->shape) ||
      ps->dtype != b->dtype)
    return cg_fail(e, SIEVE_ERR_ARG, "bench: the plan is for another shape or dtype");
  double warm = b->o.warmup_ms > 0 ? b->o.warmup_ms : 25, rep = b->o.rep_ms > 0 ? b->o.rep_ms : 200;
  int lo = b->o.min_runs > 0 ? b->o.min_runs : 10, hi = b->o.max_runs > 0 ? b->o.max_runs : 1000;
  if (hi < lo) hi = lo;
  double per = 0;
  sieve_status st = estimate(b, p, &per, e);
  int nw = clamp_runs(ceil(warm / per), 1, hi), n = clamp_runs(ceil(rep / per), lo, hi);
  int set = ESTIMATE_RUNS + 1;
  for (int i = 0; i < nw && !st; i++) st = run_set(b, p, set++, e);
  if (!st) st = events(b, 2 * n, e);
  for (int i = 0; i < n && !st; i++) {
    st = RT_CU(b->cu, e, cuEventRecord, b->ev[2 * i], b->stream);
    if (!st) st = run_set(b, p, set++, e);
    if (!st) st = RT_CU(b->cu, e, cuEventRecord, b->ev[2 * i + 1], b->stream);
  }
  float *ms = st ? NULL : malloc(sizeof *ms * (size_t)n);
  if (!st && !ms) st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for timings");
  for (int i = 0; i < n && !st; i++) st = elapsed(b, b->ev[2 * i], b->ev[2 * i + 1], &ms[i], e);
  if (!st) {
    rt_bench_stats(ms, n, r);
    r->warmup_runs = nw;
    r->sets = b->sets;
    r->set_bytes = (double)b->set_bytes;
    r->density = rt_plan_density(p);
    r->flops = rt_bench_flops(s, r->density);
    r->tflops = r->median_ms > 0 ? r->flops / (r->median_ms * 1e-3) / 1e12 : 0;
  }
  free(ms);
  if (!st && rt_plan_stats_of(p)->permute_bytes) st = time_permute(b, p, lo, set, r, e);
  return st;
}

sieve_status rt_bench_plan(rt_plan *p, const rt_bench_opts *o, rt_bench_result *r, cg_err *e) {
  rt_bench *b;
  const cg_attn_spec *ps = rt_plan_spec_of(p);
  sieve_status st = rt_bench_new(&ps->shape, ps->dtype, o, &b, e);
  if (st) return st;
  st = rt_bench_run(b, p, r, e);
  rt_bench_free(b);
  return st;
}
