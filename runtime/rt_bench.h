/*
** Timing a plan's kernel with CUDA events, the way triton.testing.do_bench
** does (the figures in DESIGN.md were taken that way): a warm-up by time,
** then repeats by time with a floor on their number, each run bracketed by
** its own pair of events, and the median reported.
**
** Inputs are random, never zeros, and come in rotating sets: run i reads
** set i mod sets, and there are enough sets that the others pass through L2
** between two reads of one, so small shapes are not timed out of L2.
**
** A bench (rt_bench_new) owns the buffer sets for one shape and dtype, so
** several plans (a sparse pattern and the dense baseline, the tuner's
** candidates) are timed on the same memory. Device work runs in the calling
** thread's current context, which must be the plans'.
*/
#ifndef RT_BENCH_H
#define RT_BENCH_H

#include <stdint.h>

#include "rt_plan.h"

typedef struct rt_bench_opts {
  double warmup_ms;      /* 0: 25 */
  double rep_ms;         /* 0: 200 */
  int min_runs;          /* 0: 10 */
  int max_runs;          /* 0: 1000 */
  int sets;              /* input sets; 0: at least 2, enough to pass L2 twice */
  uint64_t seed;         /* 0 is taken as 1 */
} rt_bench_opts;

typedef struct rt_bench_result {
  double median_ms, min_ms, max_ms, mean_ms;
  int runs, warmup_runs, sets;
  double set_bytes;      /* Q, K, V, O and LSE of one set */
  double density;        /* the plan's: allowed token pairs over all */
  double flops;          /* per run, on active blocks: 4 B H S^2 D density */
  double tflops;         /* flops / median */
  double permute_ms;     /* of the median, the layout permute's (median of its own runs; 0: none) */
} rt_bench_result;

typedef struct rt_bench rt_bench;

/* Buffer sets for `shape` (resolved, as rt_plan_spec_of gives it) and dtype,
** filled with random values. */
sieve_status rt_bench_new(const sieve_shape *shape, cg_dtype dtype, const rt_bench_opts *o,
                          rt_bench **out, cg_err *e);
/* Times plan p (same shape and dtype) on the sets. */
sieve_status rt_bench_run(rt_bench *b, rt_plan *p, rt_bench_result *r, cg_err *e);
void rt_bench_free(rt_bench *b);
/* Input set `set` (mod the number of sets): Q, K, V, O as tensors, the LSE
** buffer, and the stream the bench runs on; for callers that launch
** themselves (a sequence of denoising steps). */
void rt_bench_set(const rt_bench *b, int set, sieve_tensor t[4], CUdeviceptr *lse, CUstream *s);

/* rt_bench_new, rt_bench_run and rt_bench_free for one plan. */
sieve_status rt_bench_plan(rt_plan *p, const rt_bench_opts *o, rt_bench_result *r, cg_err *e);

/* ---------------------------------------------------- host arithmetic */

/* 4 B H S^2 D density: the multiply-adds of Q K^T and P V on active pairs. */
double rt_bench_flops(const sieve_shape *s, double density);
/* Sets needed so that the other sets exceed twice the L2 (at least 2, at
** most 256, and no more than `mem_cap` bytes in all unless 2 sets exceed it). */
int rt_bench_sets(double set_bytes, double l2_bytes, double mem_cap);
/* Sorts ms[0..n) and fills the median, min, max and mean of r. */
void rt_bench_stats(float *ms, int n, rt_bench_result *r);

#endif
