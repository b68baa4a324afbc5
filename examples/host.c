/*
** A host application using sieve end to end: its own CUDA context and
** device memory (CUDA driver API), a pattern loaded from a script with a
** parameter override, a plan for its shape, attention over several
** denoising steps on its own stream, and a check of the result:
**   - the dense pattern against a float64 attention computed here;
**   - the sparse pattern row by row: it attends to a subset of the keys,
**     so its LSE can never exceed the dense LSE, and O must be finite.
** Usage: example_host [PATTERN.lua] (default patterns/lvsa.lua)
*/
#include <cuda.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

#define CU(x) do { CUresult r_ = (x); if (r_) { const char *n_ = "?"; cuGetErrorName(r_, &n_); \
  fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, n_); exit(1); } } while (0)
#define SV(ctx, x) do { if (x) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
  sieve_errmsg(ctx)); exit(1); } } while (0)

enum { T = 4, Y = 8, X = 16, H = 2, D = 64, S = T * Y * X };

static uint16_t bf16(float f, float *rounded) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  u &= 0xffff0000u;
  memcpy(rounded, &u, 4);
  return (uint16_t)(u >> 16);
}

static float unbf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Float64 dense attention of one row, for the check. */
static void dense_row(const float *q, const float *k, const float *v, int row, double *o, double *lse) {
  double sc[S], mx = -INFINITY, sum = 0;
  for (int j = 0; j < S; j++) {
    double d = 0;
    for (int c = 0; c < D; c++) d += (double)q[row * D + c] * k[j * D + c];
    sc[j] = d / sqrt(D);
    if (sc[j] > mx) mx = sc[j];
  }
  for (int c = 0; c < D; c++) o[c] = 0;
  for (int j = 0; j < S; j++) {
    double w = exp(sc[j] - mx);
    sum += w;
    for (int c = 0; c < D; c++) o[c] += w * v[j * D + c];
  }
  for (int c = 0; c < D; c++) o[c] /= sum;
  *lse = mx + log(sum);
}

static void run(sieve_ctx *ctx, sieve_plan *plan, CUdeviceptr dev[5], CUstream st) {
  sieve_tensor t[4];
  for (int i = 0; i < 4; i++) t[i] = (sieve_tensor){dev[i], (int64_t)H * S * D, (int64_t)S * D, D};
  CU(cuMemsetD8(dev[3], 0xff, sizeof(uint16_t) * H * S * D)); /* NaN: unwritten shows */
  SV(ctx, sieve_attention(plan, &t[0], &t[1], &t[2], &t[3], dev[4], 0.0f, st));
  CU(cuStreamSynchronize(st));
}

int main(int argc, char **argv) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  char dense_path[1024], sparse_path[1024];
  snprintf(dense_path, sizeof dense_path, "%s/patterns/dense.lua", src ? src : ".");
  snprintf(sparse_path, sizeof sparse_path, "%s", argc > 1 ? argv[1] : "");
  if (argc <= 1) snprintf(sparse_path, sizeof sparse_path, "%s/patterns/lvsa.lua", src ? src : ".");

  CUdevice cd;
  CUcontext cc;
  if (cuInit(0) != CUDA_SUCCESS) {
    printf("no GPU: example skipped\n");
    return 77;
  }
  CU(cuDeviceGet(&cd, 0));
  CU(cuDevicePrimaryCtxRetain(&cc, cd));
  CU(cuCtxSetCurrent(cc));
  CUstream st;
  CU(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));

  static float f[3][H * S * D];
  static uint16_t b[3][H * S * D], o[H * S * D];
  static float lse_dense[H * S], lse[H * S];
  uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&rng;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < H * S * D; j++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      b[i][j] = bf16((float)((rng >> 11) * 0x1.0p-53 * 4 - 2), &f[i][j]);
    }
  CUdeviceptr dev[5];
  for (int i = 0; i < 4; i++) CU(cuMemAlloc(&dev[i], sizeof(uint16_t) * H * S * D));
  CU(cuMemAlloc(&dev[4], sizeof(float) * H * S));
  for (int i = 0; i < 3; i++) CU(cuMemcpyHtoD(dev[i], b[i], sizeof(uint16_t) * H * S * D));

  sieve_ctx *ctx;
  if (sieve_open(&ctx)) return 1;
  sieve_shape shape = {.batch = 1, .heads = H, .head_dim = D, .frames = T, .height = Y, .width = X};
  sieve_pattern *dense, *sparse;
  const char *ov[] = {"window=1", NULL};
  SV(ctx, sieve_pattern_load(ctx, dense_path, NULL, &dense));
  SV(ctx, sieve_pattern_load(ctx, sparse_path, strstr(sparse_path, "lvsa") ? ov : NULL, &sparse));
  sieve_plan *pd, *ps;
  SV(ctx, sieve_plan_create(ctx, dense, &shape, SIEVE_BF16, NULL, &pd));
  SV(ctx, sieve_plan_create(ctx, sparse, &shape, SIEVE_BF16, NULL, &ps));

  /* Dense against float64. */
  run(ctx, pd, dev, st);
  CU(cuMemcpyDtoH(o, dev[3], sizeof o));
  CU(cuMemcpyDtoH(lse_dense, dev[4], sizeof lse_dense));
  double num = 0, den = 0, ref[D], rl;
  for (int h = 0; h < H; h++)
    for (int r = 0; r < S; r++) {
      int base = h * S * D;
      dense_row(f[0] + base, f[1] + base, f[2] + base, r, ref, &rl);
      for (int c = 0; c < D; c++) {
        double g = unbf16(o[base + r * D + c]);
        num += (g - ref[c]) * (g - ref[c]);
        den += ref[c] * ref[c];
      }
      num += 0 * rl;
    }
  double err = sqrt(num / den);
  printf("dense: O rel. error %.2e vs float64\n", err);
  int bad = !(err < 1e-2);

  /* The sparse pattern over a few denoising steps. */
  for (int step = 0; step < 4; step++) {
    SV(ctx, sieve_plan_set_step(ps, step, 0));
    run(ctx, ps, dev, st);
    CU(cuMemcpyDtoH(o, dev[3], sizeof o));
    CU(cuMemcpyDtoH(lse, dev[4], sizeof lse));
    int over = 0, nonfinite = 0;
    for (int i = 0; i < H * S; i++) over += lse[i] > lse_dense[i] + 1e-3f;
    for (int i = 0; i < H * S * D; i++) nonfinite += !isfinite(unbf16(o[i]));
    printf("%s step %d: density %.3f, rows with LSE above dense %d, non-finite O %d\n",
           sieve_pattern_name(sparse), step, sieve_plan_density(ps), over, nonfinite);
    bad |= over || nonfinite;
  }
  sieve_plan_free(pd);
  sieve_plan_free(ps);
  sieve_pattern_free(dense);
  sieve_pattern_free(sparse);
  sieve_close(ctx);
  for (int i = 0; i < 5; i++) CU(cuMemFree(dev[i]));
  CU(cuStreamDestroy(st));
  CU(cuDevicePrimaryCtxRelease(cd));
  printf("%s\n", bad ? "example: FAILED" : "example: ok");
  return bad;
}
