/*
** A stand-in CUDA driver that runs the attention "kernel" on the host, for
** testing the check, timing and tuning code end to end without a GPU.
**
** Device memory is host memory (a CUdeviceptr is a pointer). cuLaunchKernel
** decodes the attention kernel's parameters (cg_attn.h's ABI), computes the
** result with the float64 CPU reference (cg_ref_attention) on the pattern
** the test names, and writes O and LSE through the kernel's strides; hooks
** can leave a row unwritten or make chosen configs wrong. Time is a fake
** clock that each launch advances by a function of its config, and events
** read it, so rankings are known in advance.
**
** Thread-safe where the tuner's build threads call it (linking, module
** load); everything else runs on the test's thread.
*/
#ifndef FAKE_CUDA_H
#define FAKE_CUDA_H

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_ref.h"
#include "rt_check.h"
#include "rt_cuda.h"

typedef struct fake_gpu {
  cg_pattern *pattern;     /* what launches compute */
  sieve_shape shape;       /* resolved; batch as the tensors have it */
  cg_dtype dtype;
  int smem_optin, l2_bytes;
  int skip_row;            /* flat row (b*H + h)*S + s left unwritten; -1: none */
  int step_offset;         /* computes as if at step + this: a kernel that ignores the step */
  double bump;             /* added to every O value of launches where wrong() says so */
  int (*wrong)(unsigned warps, unsigned smem);
  double (*ms)(unsigned warps, unsigned smem, unsigned grid_x);
  double clock;            /* fake GPU milliseconds */
  int launches, links, loads, allocs, frees;
  int64_t live_bytes;
  pthread_mutex_t mu;
} fake_gpu;

static fake_gpu fg;
static cg_pattern *fg_dense_pat;  /* what the schedule's dense kernel computes */
static _Thread_local CUcontext fg_current;

#define FG_CTX ((CUcontext)(uintptr_t)0x1000)

/* ------------------------------------------------------------- device */

static CUresult fg_err_name(CUresult r, const char **s) { return *s = "CUDA_ERROR_FAKE", CUDA_SUCCESS; }
static CUresult fg_err_string(CUresult r, const char **s) { return *s = "fake failure", CUDA_SUCCESS; }
static CUresult fg_count(int *n) { return *n = 1, CUDA_SUCCESS; }
static CUresult fg_device_get(CUdevice *d, int i) { return *d = i, CUDA_SUCCESS; }
static CUresult fg_attr(int *v, CUdevice_attribute a, CUdevice d) {
  switch (a) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = fg.smem_optin; return CUDA_SUCCESS;
  case 38: *v = fg.l2_bytes; return CUDA_SUCCESS;  /* L2 cache size */
  }
  return CUDA_ERROR_INVALID_VALUE;
}
static CUresult fg_name(char *s, int n, CUdevice d) {
  snprintf(s, (size_t)n, "Fake GPU %d", d);
  return CUDA_SUCCESS;
}
static CUresult fg_retain(CUcontext *c, CUdevice d) { return *c = FG_CTX, CUDA_SUCCESS; }
static CUresult fg_release(CUdevice d) { return CUDA_SUCCESS; }
static CUresult fg_state(CUdevice d, unsigned *flags, int *active) {
  *flags = 0;
  *active = 1;
  return CUDA_SUCCESS;
}
static CUresult fg_set_current(CUcontext c) { return fg_current = c, CUDA_SUCCESS; }
static CUresult fg_get_current(CUcontext *c) { return *c = fg_current, CUDA_SUCCESS; }
static CUresult fg_get_device(CUdevice *d) {
  return fg_current ? (*d = 0, CUDA_SUCCESS) : CUDA_ERROR_INVALID_VALUE;
}
static CUresult fg_sync(void) { return CUDA_SUCCESS; }

/* ------------------------------------------------------------- memory */

/* A block remembers its size, so frees can be counted in bytes. */
static CUresult fg_alloc(CUdeviceptr *p, size_t n) {
  int64_t *b = malloc(n + 16);
  if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
  b[0] = (int64_t)n;
  pthread_mutex_lock(&fg.mu); /* a plan's warm-up plan allocates on a thread of its own */
  fg.allocs++;
  fg.live_bytes += (int64_t)n;
  pthread_mutex_unlock(&fg.mu);
  *p = (CUdeviceptr)(uintptr_t)(b + 2);
  return CUDA_SUCCESS;
}
static CUresult fg_free(CUdeviceptr p) {
  int64_t *b = (int64_t *)(uintptr_t)p - 2;
  pthread_mutex_lock(&fg.mu);
  fg.frees++;
  fg.live_bytes -= b[0];
  pthread_mutex_unlock(&fg.mu);
  free(b);
  return CUDA_SUCCESS;
}
static CUresult fg_htod(CUdeviceptr d, const void *s, size_t n) {
  memcpy((void *)(uintptr_t)d, s, n);
  return CUDA_SUCCESS;
}
static CUresult fg_dtoh(void *d, CUdeviceptr s, size_t n) {
  memcpy(d, (const void *)(uintptr_t)s, n);
  return CUDA_SUCCESS;
}
static CUresult fg_htod_async(CUdeviceptr d, const void *s, size_t n, CUstream st) {
  return fg_htod(d, s, n);
}
static CUresult fg_dtod_async(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  (void)st;
  memcpy((void *)(uintptr_t)d, (const void *)(uintptr_t)s, n);
  return CUDA_SUCCESS;
}
static CUresult fg_memset8(CUdeviceptr p, unsigned char v, size_t n) {
  memset((void *)(uintptr_t)p, v, n);
  return CUDA_SUCCESS;
}

/* ------------------------------------------------------ modules, links */

typedef struct fg_link {
  char cubin[64];
} fg_link;

static CUresult fg_link_create(unsigned n, CUjit_option *o, void **v, CUlinkState *st) {
  fg_link *l = calloc(1, sizeof *l);
  if (!l) return CUDA_ERROR_OUT_OF_MEMORY;
  *st = (CUlinkState)l;
  return CUDA_SUCCESS;
}
static CUresult fg_link_add(CUlinkState st, CUjitInputType t, void *data, size_t size,
                            const char *name, unsigned n, CUjit_option *o, void **v) {
  fg_link *l = (fg_link *)st;
  snprintf(l->cubin, sizeof l->cubin, "\177ELF fake %016llx",
           (unsigned long long)cg_hash_bytes(data, size));
  return CUDA_SUCCESS;
}
static CUresult fg_link_complete(CUlinkState st, void **cubin, size_t *size) {
  pthread_mutex_lock(&fg.mu);
  fg.links++;
  pthread_mutex_unlock(&fg.mu);
  *cubin = ((fg_link *)st)->cubin;
  *size = sizeof ((fg_link *)st)->cubin;
  return CUDA_SUCCESS;
}
static CUresult fg_link_destroy(CUlinkState st) {
  free(st);
  return CUDA_SUCCESS;
}
/* A load that sets an optimisation level is rt_ptx_link compiling PTX:
** counted in `links` (compiles), as cuLink's were. */
static CUresult fg_load(CUmodule *m, const void *image, unsigned n, CUjit_option *o, void **v) {
  int compile = 0;
  for (unsigned i = 0; i < n; i++) compile |= o[i] == CU_JIT_OPTIMIZATION_LEVEL;
  pthread_mutex_lock(&fg.mu);
  fg.loads++;
  fg.links += compile;
  pthread_mutex_unlock(&fg.mu);
  *m = (CUmodule)(uintptr_t)0x3000;
  return CUDA_SUCCESS;
}
static CUresult fg_unload(CUmodule m) { return CUDA_SUCCESS; }
/* The dense pattern's kernel (a schedule's warm-up) is told apart by name. */
static CUresult fg_get_function(CUfunction *f, CUmodule m, const char *name) {
  *f = (CUfunction)(uintptr_t)(strncmp(name, "sieve_attn_dense_", 17) ? 0x4000 : 0x4001);
  return CUDA_SUCCESS;
}
static CUresult fg_set_attr(CUfunction f, CUfunction_attribute a, int v) { return CUDA_SUCCESS; }

/* ------------------------------------------------------------- kernel */

static void fg_gather(const uint16_t *src, const int64_t st[3], const sieve_shape *s, float *dst) {
  int64_t S = sieve_shape_tokens(s), D = s->head_dim, i = 0;
  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t h = 0; h < s->heads; h++)
      for (int64_t t = 0; t < S; t++)
        for (int64_t d = 0; d < D; d++)
          dst[i++] = rt_half_float(src[b * st[0] + h * st[1] + t * st[2] + d], fg.dtype);
}

/* The attention the kernel would compute, through its ABI's parameters. */
static void fg_attention(void **params, int bad, const cg_pattern *pat) {
  const sieve_shape *s = &fg.shape;
  int64_t S = sieve_shape_tokens(s), D = s->head_dim, n = (int64_t)s->batch * s->heads * S * D;
  float *f[3];
  double *o = malloc(sizeof(double) * (size_t)n), *lse = malloc(sizeof(double) * (size_t)(n / D));
  cg_ref_tensor t[3];
  for (int i = 0; i < 3; i++) {
    int64_t s3[3] = {*(int64_t *)params[5 + 3 * i], *(int64_t *)params[6 + 3 * i],
                     *(int64_t *)params[7 + 3 * i]};
    f[i] = malloc(sizeof(float) * (size_t)n);
    fg_gather((const uint16_t *)(uintptr_t) * (CUdeviceptr *)params[i], s3, s, f[i]);
    t[i] = (cg_ref_tensor){f[i], S * D * s->heads, S * D, D};
  }
  cg_err e = {0};
  int step = *(int32_t *)params[19] + fg.step_offset, layer = *(int32_t *)params[20];
  /* The valid text counts, when the plan has them (host memory here). */
  const int32_t *tl = (const int32_t *)(uintptr_t) * (CUdeviceptr *)params[22];
  int tlen[64];
  for (int b = 0; tl && b < s->batch && b < 64; b++) tlen[b] = tl[b];
  cg_ref_attention_text(pat, s, step, layer, tl ? tlen : NULL, &t[0], &t[1], &t[2], 1.0 / sqrt((double)D), o,
                        lse, &e);
  uint16_t *ob = (uint16_t *)(uintptr_t) * (CUdeviceptr *)params[3];
  float *lb = (float *)(uintptr_t) * (CUdeviceptr *)params[4];
  int64_t os[3] = {*(int64_t *)params[14], *(int64_t *)params[15], *(int64_t *)params[16]};
  for (int64_t r = 0; r < n / D; r++) {
    if (r == fg.skip_row) continue;
    int64_t b = r / (s->heads * S), h = r / S % s->heads, q = r % S;
    for (int64_t d = 0; d < D; d++)
      rt_half_round((float)(o[r * D + d] + (bad ? fg.bump : 0)), fg.dtype,
                    &ob[b * os[0] + h * os[1] + q * os[2] + d]);
    lb[r] = (float)lse[r];
  }
  for (int i = 0; i < 3; i++) free(f[i]);
  free(o);
  free(lse);
}

static CUresult fg_launch(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                          unsigned by, unsigned bz, unsigned smem, CUstream s, void **params,
                          void **extra) {
  fg.launches++;
  if (gy != (unsigned)fg.shape.heads || gz != (unsigned)fg.shape.batch) return CUDA_ERROR_INVALID_VALUE;
  if (fg.pattern && (uintptr_t)fn == 0x4001 && !fg_dense_pat) {
    cg_err e = {0};
    if (!(fg_dense_pat = cg_pattern_dense_of(fg.pattern, &e))) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (fg.pattern)
    fg_attention(params, fg.wrong && fg.wrong(bx / 32, smem), (uintptr_t)fn == 0x4001 ? fg_dense_pat : fg.pattern);
  fg.clock += fg.ms ? fg.ms(bx / 32, smem, gx) : 1.0;
  return CUDA_SUCCESS;
}

/* ------------------------------------------------------ streams, events */

static CUresult fg_stream_create(CUstream *s, unsigned flags) {
  *s = (CUstream)(uintptr_t)0x5000;
  return CUDA_SUCCESS;
}
static CUresult fg_stream_destroy(CUstream s) { return CUDA_SUCCESS; }
static CUresult fg_stream_sync(CUstream s) { return CUDA_SUCCESS; }
static CUresult fg_event_create(CUevent *ev, unsigned flags) {
  double *t = calloc(1, sizeof *t);
  if (!t) return CUDA_ERROR_OUT_OF_MEMORY;
  *ev = (CUevent)t;
  return CUDA_SUCCESS;
}
static CUresult fg_event_record(CUevent ev, CUstream s) {
  *(double *)ev = fg.clock;
  return CUDA_SUCCESS;
}
static CUresult fg_event_sync(CUevent ev) { return CUDA_SUCCESS; }
static CUresult fg_event_elapsed(float *ms, CUevent a, CUevent b) {
  *ms = (float)(*(double *)b - *(double *)a);
  return CUDA_SUCCESS;
}
static CUresult fg_event_destroy(CUevent ev) {
  free(ev);
  return CUDA_SUCCESS;
}

/* ------------------------------------------------------------- setup */

static rt_cuda fg_table;

/* Installs the fake (rt_cuda_set_fake) with a clean state; the caller then
** sets pattern, shape and dtype. */
static void fake_gpu_install(void) {
  memset(&fg, 0, sizeof fg);
  pthread_mutex_init(&fg.mu, NULL);
  fg.smem_optin = 232448;
  fg.l2_bytes = 50 << 20;
  fg.skip_row = -1;
  fg_current = NULL;
  rt_cuda *c = &fg_table;
  memset(c, 0, sizeof *c);
  c->version = 12040;
  c->cuGetErrorName = fg_err_name;
  c->cuGetErrorString = fg_err_string;
  c->cuDeviceGetCount = fg_count;
  c->cuDeviceGet = fg_device_get;
  c->cuDeviceGetAttribute = fg_attr;
  c->cuDeviceGetName = fg_name;
  c->cuDevicePrimaryCtxRetain = fg_retain;
  c->cuDevicePrimaryCtxRelease = fg_release;
  c->cuDevicePrimaryCtxGetState = fg_state;
  c->cuCtxSetCurrent = fg_set_current;
  c->cuCtxGetCurrent = fg_get_current;
  c->cuCtxGetDevice = fg_get_device;
  c->cuCtxSynchronize = fg_sync;
  c->cuMemAlloc = fg_alloc;
  c->cuMemFree = fg_free;
  c->cuMemcpyHtoD = fg_htod;
  c->cuMemcpyDtoH = fg_dtoh;
  c->cuMemcpyHtoDAsync = fg_htod_async;
  c->cuMemcpyDtoDAsync = fg_dtod_async;
  c->cuMemsetD8 = fg_memset8;
  c->cuLinkCreate = fg_link_create;
  c->cuLinkAddData = fg_link_add;
  c->cuLinkComplete = fg_link_complete;
  c->cuLinkDestroy = fg_link_destroy;
  c->cuModuleLoadDataEx = fg_load;
  c->cuModuleUnload = fg_unload;
  c->cuModuleGetFunction = fg_get_function;
  c->cuFuncSetAttribute = fg_set_attr;
  c->cuLaunchKernel = fg_launch;
  c->cuStreamCreate = fg_stream_create;
  c->cuStreamDestroy = fg_stream_destroy;
  c->cuStreamSynchronize = fg_stream_sync;
  c->cuEventCreate = fg_event_create;
  c->cuEventRecord = fg_event_record;
  c->cuEventSynchronize = fg_event_sync;
  c->cuEventElapsedTime = fg_event_elapsed;
  c->cuEventDestroy = fg_event_destroy;
  rt_cuda_set_fake(c);
}

static void fake_gpu_remove(void) {
  rt_cuda_set_fake(NULL);
  cg_pattern_free(fg_dense_pat);
  fg_dense_pat = NULL;
  pthread_mutex_destroy(&fg.mu);
}

#endif
