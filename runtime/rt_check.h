/*
** Correctness of a plan's kernel against a float64 CPU reference, the one
** check behind tests/gpu, `sieve check` and the autotuner.
**
** Inputs are random, rounded to the plan's dtype (the reference sees the
** rounded values, so only the kernel's arithmetic is measured). Outputs are
** poisoned with 0xFF bytes (NaN in bf16, fp16 and fp32) before the run, so an
** element the kernel never wrote shows up as non-finite. The reference is
** computed for sampled query rows of every (batch, head), which keeps large
** shapes checkable: per row it evaluates the pattern's mask against every
** key, as the kernel should.
**
** A prepared check (rt_check_new) holds inputs on the device and the
** reference rows, so several plans for one pattern, shape and dtype (the
** tuner's candidates) are checked against the same numbers.
**
** Everything on the device runs in the calling thread's current CUDA
** context, which must be the plan's.
*/
#ifndef RT_CHECK_H
#define RT_CHECK_H

#include <stdint.h>

#include "rt_plan.h"

typedef struct rt_check_opts {
  int bshd;              /* tensors laid out [B, S, H, D] instead of [B, H, S, D] */
  int rows;              /* query rows sampled per (batch, head); 0: every row */
  int step, layer;       /* the denoising step and layer the plan is moved to */
  uint64_t seed;         /* inputs and sampled rows; 0 is taken as 1 */
  double tol_o, tol_lse; /* relative errors allowed; <= 0: rt_check_tolerance */
  int threads;           /* reference threads; 0: the online CPUs */
  const int *text_valid; /* [B] valid text tokens per batch element; NULL: all */
} rt_check_opts;

typedef struct rt_check_result {
  double err_o, err_lse;     /* relative L2 error over the sampled rows */
  double tol_o, tol_lse;
  int64_t rows;              /* rows compared */
  int64_t empty_rows;        /* of those, rows with no allowed key (LSE -inf) */
  int64_t lse_inf_mismatch;  /* rows where only one side has LSE -inf */
  int64_t bad_o, bad_lse;    /* output elements not finite: unwritten or overflowed */
  int64_t first_bad;         /* flat row index (b*H + h)*S + s of one, -1 if none */
  double density;            /* of the plan */
  double ref_ms;             /* building inputs and reference */
  int pass;
} rt_check_result;

typedef struct rt_check rt_check;

/* ----------------------------------------------------------- the check */

/*
** Prepares a check for `pattern` (read, and its graph left alone: the
** reference compiles private evaluators) on `shape` (the pattern's fixed
** text geometry is applied) and `dtype`: random inputs on the host and the
** device, output buffers, and the reference for the sampled rows.
*/
sieve_status rt_check_new(cg_pattern *pattern, const sieve_shape *shape, cg_dtype dtype,
                          const rt_check_opts *o, rt_check **out, cg_err *e);
/*
** Runs plan p (same pattern, shape and dtype) on the prepared inputs and
** compares. A kernel that is wrong is SIEVE_OK with r->pass 0; a status is
** returned only when the check could not be made (driver failure, a plan
** for another shape, no memory).
*/
sieve_status rt_check_run(rt_check *c, rt_plan *p, rt_check_result *r, cg_err *e);
/* Frees host and device memory (in the current context). */
void rt_check_free(rt_check *c);
/* Milliseconds rt_check_new spent on inputs and reference. */
double rt_check_setup_ms(const rt_check *c);

/* rt_check_new, rt_check_run and rt_check_free for one plan. */
sieve_status rt_check_plan(rt_plan *p, const rt_check_opts *o, rt_check_result *r, cg_err *e);

/* ----------------------------------------- host parts (rt_check_host.c) */

/* bf16 within 1e-2, fp16 within 2e-3 for O; LSE within 1e-3 for both. */
void rt_check_tolerance(cg_dtype dt, double *tol_o, double *tol_lse);

/* x rounded to the nearest dtype value (ties to even); its bits in *bits. */
float rt_half_round(float x, cg_dtype dt, uint16_t *bits);
/* IEEE half <-> float, round to nearest even, without _Float16. */
uint16_t rt_f32_to_f16(float x);
float rt_f16_to_f32(uint16_t b);
float rt_half_float(uint16_t bits, cg_dtype dt);

/* xorshift64: the generator every random input comes from. */
uint64_t rt_rand(uint64_t *state);
/*
** n values of mean 0 and variance 1 (a sum of four uniforms: cheap, smooth
** and bounded, so scores stay finite), rounded to dt, as bits.
*/
void rt_rand_half(uint16_t *bits, size_t n, cg_dtype dt, uint64_t *state);

/* Element strides (b, h, s) of a [B, H, S, D] tensor stored BHSD or BSHD. */
void rt_check_strides(const sieve_shape *s, int bshd, int64_t st[3]);

/*
** Sampled rows of one (batch, head): every row when want is 0 or at least
** S; else the last row (the ragged block), the first, and random others.
** Returns how many were written to rows.
*/
int rt_check_sample(int64_t S, int want, uint64_t *state, int64_t *rows);

/*
** Counts output elements that are not finite into r->bad_o (O, any non
** finite value) and r->bad_lse (LSE NaN or +inf; -inf is a row with no key),
** setting r->first_bad. o uses strides st; lse is [B, H, S] contiguous.
*/
void rt_check_scan(const sieve_shape *s, cg_dtype dt, const int64_t st[3], const uint16_t *o,
                   const float *lse, rt_check_result *r);

/* Sums of squares for the relative errors, row by row. */
typedef struct rt_check_acc {
  double o_num, o_den, l_num, l_den;
  int64_t rows, empty, inf_mismatch;
} rt_check_acc;

/* Adds one row: D kernel outputs (dtype bits) and its LSE against the
** reference row ref_o[D] and ref_lse. */
void rt_check_acc_row(rt_check_acc *a, const uint16_t *o, cg_dtype dt, int D, float lse,
                      const double *ref_o, double ref_lse);
/* Errors, tolerances and the verdict into r (bad_* must be filled). */
void rt_check_finish(const rt_check_acc *a, cg_dtype dt, const rt_check_opts *o,
                     rt_check_result *r);

/* ------------------------------------------ the reference (rt_check_ref.c) */

/* Q, K, V of a whole [B, H, S, D] problem as dtype bits with strides st. */
typedef struct rt_ref_input {
  const uint16_t *q, *k, *v;
  int64_t st[3];
  cg_dtype dtype;
  const int *tlen;       /* [B] valid text tokens, or NULL: the whole text */
} rt_ref_input;

/*
** Reference O (o[(bh * nrows + r) * D + d]) and LSE (lse[bh * nrows + r])
** for rows[bh * nrows + r] of every (batch, head) bh = b * H + h, with scale
** 1/sqrt(D), at (step, layer), on `threads` threads (0: the online CPUs).
** s is the resolved shape (cg_shape_for). A row with no allowed key gets
** O = 0 and LSE = -inf.
*/
sieve_status rt_ref_rows(const cg_pattern *p, const sieve_shape *s, int step, int layer,
                         const rt_ref_input *in, const int64_t *rows, int nrows, int threads,
                         double *o, double *lse, cg_err *e);

#endif
