/*
** The host half of the correctness check: input values, row sampling, the
** scan for unwritten outputs and the error metrics. No driver needed, so the
** CPU tests cover all of it.
*/
#include <math.h>
#include <string.h>

#include "rt_check.h"

void rt_check_tolerance(cg_dtype dt, double *tol_o, double *tol_lse) {
  /* Half an ulp of the output type, accumulated over the P V products and
  ** the final rounding, stays well inside these; a wrong block does not. */
  *tol_o = dt == CG_FP16 ? 2e-3 : 1e-2;
  *tol_lse = 1e-3;
}

/* ------------------------------------------------------------- values */

/*
** IEEE half conversions in integer arithmetic, rounding to nearest even as
** the hardware does: _Float16 is not available in every compiler sieve
** builds with (Debian 12's clang 14 rejects it on x86-64).
*/
uint16_t rt_f32_to_f16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  uint32_t sign = (u >> 16) & 0x8000u, exp = (u >> 23) & 0xffu, man = u & 0x7fffffu;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  uint32_t h, rem, half;
  if (e <= 0) {  /* a subnormal half, or zero: m * 2^-24 */
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - e;
    h = man >> shift;
    rem = man & ((1u << shift) - 1);
    half = 1u << (shift - 1);
  } else {
    h = ((uint32_t)e << 10) | (man >> 13);
    rem = man & 0x1fffu;
    half = 0x1000u;
  }
  if (rem > half || (rem == half && (h & 1))) h++;  /* a carry moves up the exponent, to inf at most */
  return (uint16_t)(sign | h);
}

float rt_f16_to_f32(uint16_t b) {
  uint32_t sign = (uint32_t)(b & 0x8000u) << 16, exp = (b >> 10) & 0x1fu, man = b & 0x3ffu, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else if (exp) {
    u = sign | ((exp + 112) << 23) | (man << 13);
  } else if (!man) {
    u = sign;
  } else {  /* subnormal: normalise m * 2^-24 */
    uint32_t e = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      e--;
    }
    u = sign | (e << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float rt_half_round(float x, cg_dtype dt, uint16_t *bits) {
  if (dt == CG_FP16) {
    *bits = rt_f32_to_f16(x);
    return rt_f16_to_f32(*bits);
  }
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  /* round to nearest, ties to even */
  *bits = (uint16_t)(u >> 16);
  u &= 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

float rt_half_float(uint16_t b, cg_dtype dt) {
  if (dt == CG_FP16) return rt_f16_to_f32(b);
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint64_t rt_rand(uint64_t *s) {
  uint64_t x = *s ? *s : 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

void rt_rand_half(uint16_t *bits, size_t n, cg_dtype dt, uint64_t *state) {
  /* Four 16-bit uniforms per draw: their sum has variance 4/12, so sqrt(3)
  ** scales it to 1. Box-Muller costs a log and a cosine per value, which
  ** is seconds at a real model's 10^8 elements. */
  const float scale = 1.7320508f / 65536.0f;
  for (size_t i = 0; i < n; i++) {
    uint64_t r = rt_rand(state);
    uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)(r >> 16 & 0xffff) +
                   (uint32_t)(r >> 32 & 0xffff) + (uint32_t)(r >> 48);
    float x = ((float)sum + 2.0f - 2.0f * 65536.0f) * scale;
    rt_half_round(x, dt, &bits[i]);
  }
}

void rt_check_strides(const sieve_shape *s, int bshd, int64_t st[3]) {
  int64_t S = sieve_shape_tokens(s), H = s->heads, D = s->head_dim;
  st[0] = H * S * D;
  st[1] = bshd ? D : S * D;
  st[2] = bshd ? H * D : D;
}

int rt_check_sample(int64_t S, int want, uint64_t *state, int64_t *rows) {
  if (want <= 0 || want >= S) {
    for (int64_t i = 0; i < S; i++) rows[i] = i;
    return (int)S;
  }
  /* The last row sits in the ragged last block, the first in the first:
  ** the two places an off-by-one shows. */
  for (int r = 0; r < want; r++)
    rows[r] = r == 0 ? S - 1 : r == 1 ? 0 : (int64_t)(rt_rand(state) % (uint64_t)S);
  return want;
}

/* ------------------------------------------------------------- results */

void rt_check_scan(const sieve_shape *s, cg_dtype dt, const int64_t st[3], const uint16_t *o,
                   const float *lse, rt_check_result *r) {
  int64_t S = sieve_shape_tokens(s), D = s->head_dim, row = 0;
  r->bad_o = r->bad_lse = 0;
  r->first_bad = -1;
  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t h = 0; h < s->heads; h++)
      for (int64_t t = 0; t < S; t++, row++) {
        const uint16_t *x = o + b * st[0] + h * st[1] + t * st[2];
        int64_t bad = 0;
        for (int64_t d = 0; d < D; d++) bad += !isfinite(rt_half_float(x[d], dt));
        int bad_l = isnan(lse[row]) || lse[row] == INFINITY;
        r->bad_o += bad;
        r->bad_lse += bad_l;
        if ((bad || bad_l) && r->first_bad < 0) r->first_bad = row;
      }
}

void rt_check_acc_row(rt_check_acc *a, const uint16_t *o, cg_dtype dt, int D, float lse,
                      const double *ref_o, double ref_lse) {
  for (int d = 0; d < D; d++) {
    double g = rt_half_float(o[d], dt), x = ref_o[d];
    a->o_num += (g - x) * (g - x);
    a->o_den += x * x;
  }
  int ref_empty = isinf(ref_lse) && ref_lse < 0, got_empty = isinf(lse) && lse < 0;
  a->empty += ref_empty;
  if (ref_empty || got_empty) {
    a->inf_mismatch += ref_empty != got_empty;
  } else {
    a->l_num += (lse - ref_lse) * (lse - ref_lse);
    a->l_den += ref_lse * ref_lse;
  }
  a->rows++;
}

void rt_check_finish(const rt_check_acc *a, cg_dtype dt, const rt_check_opts *o,
                     rt_check_result *r) {
  rt_check_tolerance(dt, &r->tol_o, &r->tol_lse);
  if (o && o->tol_o > 0) r->tol_o = o->tol_o;
  if (o && o->tol_lse > 0) r->tol_lse = o->tol_lse;
  /* All rows empty leaves no denominator: then any nonzero output is an
  ** absolute error, which is what should count. */
  r->err_o = sqrt(a->o_num / (a->o_den > 0 ? a->o_den : 1));
  r->err_lse = sqrt(a->l_num / (a->l_den > 0 ? a->l_den : 1));
  r->rows = a->rows;
  r->empty_rows = a->empty;
  r->lse_inf_mismatch = a->inf_mismatch;
  r->pass = a->rows > 0 && !r->bad_o && !r->bad_lse && !a->inf_mismatch &&
            r->err_o <= r->tol_o && r->err_lse <= r->tol_lse;
}
