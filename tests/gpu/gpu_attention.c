/*
** One attention case: random inputs, poisoned outputs, the generated kernel
** through the public plan API, and the float64 reference on sampled rows.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "lp.h"

uint64_t gpu_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

float gpu_randn(uint64_t *s) {
  double u = ((gpu_rand(s) >> 11) + 0.5) / 9007199254740992.0;
  double v = ((gpu_rand(s) >> 11) + 0.5) / 9007199254740992.0;
  return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

/* Rounds x to the input dtype; returns the rounded value and its bits. */
static float to_half(float x, sieve_dtype dt, uint16_t *bits) {
  if (dt == SIEVE_FP16) {
    _Float16 h = (_Float16)x;
    memcpy(bits, &h, 2);
    return (float)h;
  }
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7fff + ((u >> 16) & 1);
  *bits = (uint16_t)(u >> 16);
  u &= 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

static float from_half(uint16_t b, sieve_dtype dt) {
  if (dt == SIEVE_FP16) {
    _Float16 h;
    memcpy(&h, &b, 2);
    return (float)h;
  }
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

typedef struct bufs {
  CUdeviceptr q, k, v, o, lse;
} bufs;

static void strides(const sieve_shape *s, int bshd, int64_t st[3]) {
  int64_t S = sieve_shape_tokens(s), H = s->heads, D = s->head_dim;
  st[0] = H * S * D;
  st[1] = bshd ? D : S * D;
  st[2] = bshd ? H * D : D;
}

/* Device offset of element (b, h, s, 0). */
static int64_t at(const int64_t st[3], int64_t b, int64_t h, int64_t s) {
  return b * st[0] + h * st[1] + s * st[2];
}

static void fail(gpu_env *env, const char *label, const char *why) {
  printf("FAIL %s: %s\n", label, why);
  env->failed++;
}

typedef struct host {
  float *f[3];       /* rounded Q, K, V, contiguous [B, H, S, D] for the reference */
  uint16_t *dev[3];  /* their bits in the device layout */
  uint16_t *o;
  float *lse;
} host;

static void host_free(host *h) {
  for (int i = 0; i < 3; i++) {
    free(h->f[i]);
    free(h->dev[i]);
  }
  free(h->o);
  free(h->lse);
}

static int host_fill(host *h, const gpu_case *c, const int64_t st[3], uint64_t *rng) {
  const sieve_shape *s = &c->shape;
  int64_t S = sieve_shape_tokens(s), D = s->head_dim, n = (int64_t)s->batch * s->heads * S * D;
  for (int i = 0; i < 3; i++) {
    h->f[i] = malloc(sizeof(float) * (size_t)n);
    h->dev[i] = malloc(2 * (size_t)n);
    if (!h->f[i] || !h->dev[i]) return -1;
    for (int64_t b = 0; b < s->batch; b++)
      for (int64_t hd = 0; hd < s->heads; hd++)
        for (int64_t t = 0; t < S; t++)
          for (int64_t d = 0; d < D; d++) {
            int64_t ref = ((b * s->heads + hd) * S + t) * D + d;
            h->f[i][ref] = to_half(gpu_randn(rng), c->dtype, &h->dev[i][at(st, b, hd, t) + d]);
          }
  }
  h->o = malloc(2 * (size_t)n);
  h->lse = malloc(sizeof(float) * (size_t)(n / D));
  return h->o && h->lse ? 0 : -1;
}

/* Runs the kernel; returns NULL or the reason it could not run. */
static const char *run(gpu_env *env, const gpu_case *c, sieve_plan *plan, const host *h,
                       const int64_t st[3], bufs *bf, char *why, size_t nwhy) {
  const rt_cuda *cu = env->cu;
  const sieve_shape *s = &c->shape;
  int64_t S = sieve_shape_tokens(s), n = (int64_t)s->batch * s->heads * S * s->head_dim;
  CUdeviceptr *p[5] = {&bf->q, &bf->k, &bf->v, &bf->o, &bf->lse};
  size_t bytes[5] = {2 * (size_t)n, 2 * (size_t)n, 2 * (size_t)n, 2 * (size_t)n,
                     4 * (size_t)(n / s->head_dim)};
  for (int i = 0; i < 5; i++)
    if (cu->cuMemAlloc(p[i], bytes[i])) return "cuMemAlloc failed";
  for (int i = 0; i < 3; i++)
    if (cu->cuMemcpyHtoD(*p[i], h->dev[i], bytes[i])) return "cuMemcpyHtoD failed";
  /* Poison: 0xffff is NaN in bf16 and fp16, 0xffffffff NaN in fp32. */
  if (cu->cuMemsetD8(bf->o, 0xff, bytes[3]) || cu->cuMemsetD8(bf->lse, 0xff, bytes[4]))
    return "cuMemsetD8 failed";
  sieve_tensor t[4];
  for (int i = 0; i < 4; i++) t[i] = (sieve_tensor){*p[i], st[0], st[1], st[2]};
  if ((c->step || c->layer) && sieve_plan_set_step(plan, c->step, c->layer)) {
    snprintf(why, nwhy, "set_step: %s", sieve_errmsg(env->ctx));
    return why;
  }
  if (sieve_attention(plan, &t[0], &t[1], &t[2], &t[3], bf->lse, 0.0f, NULL)) {
    snprintf(why, nwhy, "attention: %s", sieve_errmsg(env->ctx));
    return why;
  }
  CUresult r = cu->cuCtxSynchronize();
  if (r) {
    const char *name = "?";
    cu->cuGetErrorName(r, &name);
    snprintf(why, nwhy, "kernel failed: %s", name);
    return why;
  }
  if (cu->cuMemcpyDtoH(h->o, bf->o, bytes[3]) || cu->cuMemcpyDtoH(h->lse, bf->lse, bytes[4]))
    return "cuMemcpyDtoH failed";
  return NULL;
}

/* Every output written and finite (LSE may be -inf for rows with no key). */
static const char *check_written(const gpu_case *c, const host *h) {
  const sieve_shape *s = &c->shape;
  int64_t S = sieve_shape_tokens(s), rows = (int64_t)s->batch * s->heads * S;
  for (int64_t i = 0; i < rows * s->head_dim; i++)
    if (!isfinite(from_half(h->o[i], c->dtype))) return "O has NaN/inf (unwritten or overflow)";
  for (int64_t i = 0; i < rows; i++)
    if (isnan(h->lse[i]) || h->lse[i] == INFINITY) return "LSE has NaN/+inf (unwritten)";
  return NULL;
}

typedef struct errs {
  double o_num, o_den, l_num, l_den;
  int lse_inf_mismatch;
  int64_t rows;
} errs;

static int compare(const gpu_case *c, const cg_pattern *p, const host *h, const int64_t st[3],
                   uint64_t *rng, errs *er) {
  const sieve_shape *s = &c->shape;
  int64_t S = sieve_shape_tokens(s), D = s->head_dim;
  int nr = c->sample_rows && c->sample_rows < S ? c->sample_rows : (int)S;
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)nr);
  double *o = malloc(sizeof(double) * (size_t)(nr * D)), *lse = malloc(sizeof(double) * (size_t)nr);
  int rc = rows && o && lse ? 0 : -1;
  for (int64_t b = 0; !rc && b < s->batch; b++)
    for (int hd = 0; !rc && hd < s->heads; hd++) {
      for (int r = 0; r < nr; r++)
        rows[r] = nr == S ? r : r == 0 ? S - 1 : (int64_t)(gpu_rand(rng) % (uint64_t)S);
      int64_t base = (b * s->heads + hd) * S * D;
      rc = gpu_ref_rows(p, s, hd, c->step, c->layer, h->f[0] + base, h->f[1] + base,
                        h->f[2] + base, D, 1.0 / sqrt((double)D), rows, nr, o, lse);
      for (int r = 0; !rc && r < nr; r++) {
        int64_t dev = at(st, b, hd, rows[r]);
        for (int d = 0; d < D; d++) {
          double g = from_half(h->o[dev + d], c->dtype), x = o[r * D + d];
          er->o_num += (g - x) * (g - x);
          er->o_den += x * x;
        }
        double gl = h->lse[(b * s->heads + hd) * S + rows[r]];
        if (isinf(lse[r]) || isinf(gl)) {
          er->lse_inf_mismatch += !(isinf(lse[r]) && isinf(gl));
        } else {
          er->l_num += (gl - lse[r]) * (gl - lse[r]);
          er->l_den += lse[r] * lse[r];
        }
        er->rows++;
      }
    }
  free(rows);
  free(o);
  free(lse);
  return rc;
}

static void label_of(const gpu_case *c, const sieve_config *cfg, char *out, size_t n) {
  const sieve_shape *s = &c->shape;
  snprintf(out, n, "%s%s%s T%dY%dX%d+%d%s H%d D%d %s %s cfg %d/%d/%d/%d step %d layer %d",
           c->pattern, c->params[0] ? " " : "", c->params[0] ? c->params[0] : "", s->frames,
           s->height, s->width, s->text, s->text_after ? "a" : "", s->heads, s->head_dim,
           c->dtype == SIEVE_FP16 ? "fp16" : "bf16", c->bshd ? "BSHD" : "BHSD", cfg->block_m,
           cfg->block_n, cfg->warps, cfg->stages, c->step, c->layer);
}

void gpu_attention_case(gpu_env *env, const gpu_case *c) {
  char path[1024], label[512], why[1400];
  snprintf(path, sizeof path, "%s/%s.lua", env->patterns, c->pattern);
  label_of(c, &c->cfg, label, sizeof label);
  const char *ov[5] = {c->params[0], c->params[1], c->params[2], c->params[3], NULL};
  sieve_pattern *pat = NULL;
  sieve_plan *plan = NULL;
  host h = {0};
  bufs bf = {0};
  int64_t st[3];
  strides(&c->shape, c->bshd, st);
  uint64_t rng = env->seed ^ (cg_hash_bytes(label, strlen(label)) | 1);
  if (sieve_pattern_load(env->ctx, path, ov, &pat)) {
    snprintf(why, sizeof why, "load: %s", sieve_errmsg(env->ctx));
    fail(env, label, why);
    return;
  }
  if (sieve_plan_create(env->ctx, pat, &c->shape, c->dtype, &c->cfg, &plan)) {
    snprintf(why, sizeof why, "plan: %s", sieve_errmsg(env->ctx));
    fail(env, label, why);
    sieve_pattern_free(pat);
    return;
  }
  sieve_config used;
  sieve_plan_config(plan, &used);
  label_of(c, &used, label, sizeof label);
  const char *bad = NULL;
  errs er = {0};
  if (host_fill(&h, c, st, &rng)) bad = "out of host memory";
  if (!bad) bad = run(env, c, plan, &h, st, &bf, why, sizeof why);
  if (!bad) bad = check_written(c, &h);
  if (!bad && compare(c, lp_pattern_ir(pat), &h, st, &rng, &er)) bad = "reference failed";
  if (!bad) {
    double eo = sqrt(er.o_num / (er.o_den > 0 ? er.o_den : 1));
    double el = sqrt(er.l_num / (er.l_den > 0 ? er.l_den : 1));
    double tol = c->dtype == SIEVE_FP16 ? 2e-3 : 1e-2;
    snprintf(why, sizeof why, "O rel %.2e (tol %.0e), LSE rel %.2e, %lld rows, density %.3f%s",
             eo, tol, el, (long long)er.rows, sieve_plan_density(plan),
             er.lse_inf_mismatch ? ", LSE -inf mismatch" : "");
    if (eo <= tol && el <= 1e-3 && !er.lse_inf_mismatch) {
      printf("pass %s: %s\n", label, why);
      env->passed++;
    } else {
      fail(env, label, why);
    }
  } else {
    fail(env, label, bad);
  }
  CUdeviceptr *p[5] = {&bf.q, &bf.k, &bf.v, &bf.o, &bf.lse};
  for (int i = 0; i < 5; i++)
    if (*p[i]) env->cu->cuMemFree(*p[i]);
  host_free(&h);
  sieve_plan_free(plan);
  sieve_pattern_free(pat);
  fflush(stdout);
}
