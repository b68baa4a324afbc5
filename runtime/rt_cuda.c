#include "rt_cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
** Symbol names as cuda.h (CUDA 12/13) maps the API names, so calls have the
** ABI of a toolkit build: size_t sizes and 64-bit device pointers (_v2),
** and the per-thread-default-stream variants are not used. cuEventElapsedTime
** stays at v1: _v2 only exists from 12.8 on and has the same signature.
*/
#define SYM(field, sym) {sym, offsetof(rt_cuda, field)}
static const struct {
  const char *sym;
  size_t off;
} syms[] = {
  SYM(cuInit, "cuInit"),
  SYM(cuDriverGetVersion, "cuDriverGetVersion"),
  SYM(cuGetErrorName, "cuGetErrorName"),
  SYM(cuGetErrorString, "cuGetErrorString"),
  SYM(cuDeviceGet, "cuDeviceGet"),
  SYM(cuDeviceGetCount, "cuDeviceGetCount"),
  SYM(cuDeviceGetAttribute, "cuDeviceGetAttribute"),
  SYM(cuDeviceGetName, "cuDeviceGetName"),
  SYM(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
  SYM(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
  SYM(cuDevicePrimaryCtxGetState, "cuDevicePrimaryCtxGetState"),
  SYM(cuCtxSetCurrent, "cuCtxSetCurrent"),
  SYM(cuCtxGetCurrent, "cuCtxGetCurrent"),
  SYM(cuCtxGetDevice, "cuCtxGetDevice"),
  SYM(cuCtxSynchronize, "cuCtxSynchronize"),
  SYM(cuModuleLoadDataEx, "cuModuleLoadDataEx"),
  SYM(cuModuleUnload, "cuModuleUnload"),
  SYM(cuModuleGetFunction, "cuModuleGetFunction"),
  SYM(cuModuleGetGlobal, "cuModuleGetGlobal_v2"),
  SYM(cuFuncSetAttribute, "cuFuncSetAttribute"),
  SYM(cuFuncGetAttribute, "cuFuncGetAttribute"),
  SYM(cuLaunchKernel, "cuLaunchKernel"),
  SYM(cuLinkCreate, "cuLinkCreate_v2"),
  SYM(cuLinkAddData, "cuLinkAddData_v2"),
  SYM(cuLinkComplete, "cuLinkComplete"),
  SYM(cuLinkDestroy, "cuLinkDestroy"),
  SYM(cuMemAlloc, "cuMemAlloc_v2"),
  SYM(cuMemFree, "cuMemFree_v2"),
  SYM(cuMemcpyHtoD, "cuMemcpyHtoD_v2"),
  SYM(cuMemcpyDtoH, "cuMemcpyDtoH_v2"),
  SYM(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
  SYM(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
  SYM(cuMemsetD8, "cuMemsetD8_v2"),
  SYM(cuMemsetD32, "cuMemsetD32_v2"),
  SYM(cuStreamCreate, "cuStreamCreate"),
  SYM(cuStreamDestroy, "cuStreamDestroy_v2"),
  SYM(cuStreamSynchronize, "cuStreamSynchronize"),
  SYM(cuEventCreate, "cuEventCreate"),
  SYM(cuEventRecord, "cuEventRecord"),
  SYM(cuEventSynchronize, "cuEventSynchronize"),
  SYM(cuEventElapsedTime, "cuEventElapsedTime"),
  SYM(cuEventDestroy, "cuEventDestroy_v2"),
};
#undef SYM

sieve_status rt_cuda_open(const char *path, rt_cuda *out, cg_err *e) {
  memset(out, 0, sizeof *out);
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    return cg_fail(e, SIEVE_ERR_NO_DRIVER,
                   "cannot load the CUDA driver %s: %s (is the NVIDIA driver "
                   "installed? SIEVE_LIBCUDA names another library)",
                   path, why ? why : "unknown error");
  }
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    void *p = dlsym(lib, syms[i].sym);
    if (!p) {
      dlclose(lib);
      return cg_fail(e, SIEVE_ERR_NO_DRIVER,
                     "the CUDA driver %s lacks %s: not a CUDA driver, or one too old",
                     path, syms[i].sym);
    }
    /* POSIX guarantees a dlsym result converts to a function pointer. */
    memcpy((char *)out + syms[i].off, &p, sizeof p);
  }
  void *tm = dlsym(lib, "cuTensorMapEncodeTiled");
  memcpy(&out->cuTensorMapEncodeTiled, &tm, sizeof tm);
  out->lib = lib;
  out->path = path;
  return SIEVE_OK;
}

/* ------------------------------------------------ the process's driver */

static struct {
  pthread_once_t once;
  rt_cuda cu;
  cg_err err;
  char path[1024];
} drv = {.once = PTHREAD_ONCE_INIT};

static const rt_cuda *fake;

static void load_once(void) {
  const char *env = getenv("SIEVE_LIBCUDA");
  snprintf(drv.path, sizeof drv.path, "%s", env && *env ? env : "libcuda.so.1");
  if (rt_cuda_open(drv.path, &drv.cu, &drv.err)) return;
  rt_cuda *cu = &drv.cu;
  if (RT_CU(cu, &drv.err, cuInit, 0)) return;
  RT_CU(cu, &drv.err, cuDriverGetVersion, &cu->version);
}

sieve_status rt_cuda_get(const rt_cuda **out, cg_err *e) {
  *out = NULL;
  if (fake) {
    *out = fake;
    return SIEVE_OK;
  }
  pthread_once(&drv.once, load_once);
  if (drv.err.status != SIEVE_OK) {
    if (e) *e = drv.err;
    return drv.err.status;
  }
  *out = &drv.cu;
  return SIEVE_OK;
}

void rt_cuda_set_fake(const rt_cuda *f) { fake = f; }

/* ------------------------------------------------------ checking results */

sieve_status rt_cu_fail(const rt_cuda *cu, CUresult r, const char *fn,
                        const char *file, int line, cg_err *e) {
  const char *name = NULL, *desc = NULL;
  if (cu->cuGetErrorName && cu->cuGetErrorName(r, &name) != CUDA_SUCCESS) name = NULL;
  if (cu->cuGetErrorString && cu->cuGetErrorString(r, &desc) != CUDA_SUCCESS) desc = NULL;
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  char code[32];
  if (!name) {
    snprintf(code, sizeof code, "CUresult %d", (int)r);
    name = code;
  }
  /* A driver that answers "no device" means no usable GPU, not a bug. */
  sieve_status st = r == CUDA_ERROR_NO_DEVICE ? SIEVE_ERR_NO_GPU : SIEVE_ERR_CUDA;
  return cg_fail(e, st, "%s failed: %s (%s) at %s:%d", fn, name,
                 desc ? desc : "no description", base, line);
}

/* ---------------------------------------------------------------- devices */

sieve_status rt_device_count(int *n, cg_err *e) {
  const rt_cuda *cu;
  *n = 0;
  sieve_status st = rt_cuda_get(&cu, e);
  if (st) return st;
  return RT_CU(cu, e, cuDeviceGetCount, n);
}

static sieve_status device_attrs(const rt_cuda *cu, rt_device *d, cg_err *e) {
  static const struct {
    CUdevice_attribute a;
    size_t off;
  } attrs[] = {
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, offsetof(rt_device, sm_major)},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, offsetof(rt_device, sm_minor)},
    {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, offsetof(rt_device, sm_count)},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, offsetof(rt_device, smem_optin)},
  };
  sieve_status st;
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
    if ((st = RT_CU(cu, e, cuDeviceGetAttribute,
                    (int *)((char *)d + attrs[i].off), attrs[i].a, d->dev)))
      return st;
  if ((st = RT_CU(cu, e, cuDeviceGetName, d->name, (int)sizeof d->name, d->dev)))
    return st;
  d->name[sizeof d->name - 1] = 0;
  return SIEVE_OK;
}

sieve_status rt_device_query(int ordinal, rt_device *d, cg_err *e) {
  const rt_cuda *cu;
  int n;
  memset(d, 0, sizeof *d);
  sieve_status st = rt_device_count(&n, e);
  if (st) return st;
  if (n == 0) return cg_fail(e, SIEVE_ERR_NO_GPU, "the CUDA driver found no GPU");
  if (ordinal < 0 || ordinal >= n)
    return cg_fail(e, SIEVE_ERR_ARG, "no GPU %d: the driver sees %d (0..%d)",
                   ordinal, n, n - 1);
  if ((st = rt_cuda_get(&cu, e))) return st;
  d->ordinal = ordinal;
  d->driver_version = cu->version;
  if ((st = RT_CU(cu, e, cuDeviceGet, &d->dev, ordinal))) return st;
  return device_attrs(cu, d, e);
}

sieve_status rt_device_open(int ordinal, rt_device *d, cg_err *e) {
  const rt_cuda *cu;
  sieve_status st = rt_device_query(ordinal, d, e);
  if (st || (st = rt_cuda_get(&cu, e))) return st;
  if ((st = RT_CU(cu, e, cuDevicePrimaryCtxRetain, &d->ctx, d->dev))) {
    d->ctx = NULL;
    return st;
  }
  if ((st = RT_CU(cu, e, cuCtxSetCurrent, d->ctx))) {
    RT_CU(cu, NULL, cuDevicePrimaryCtxRelease, d->dev);  /* the first error is kept */
    d->ctx = NULL;
  }
  return st;
}

sieve_status rt_device_bind(const rt_device *d, cg_err *e) {
  const rt_cuda *cu;
  sieve_status st = rt_cuda_get(&cu, e);
  if (st) return st;
  return RT_CU(cu, e, cuCtxSetCurrent, d->ctx);
}

sieve_status rt_device_close(rt_device *d, cg_err *e) {
  const rt_cuda *cu;
  sieve_status st = SIEVE_OK;
  if (d->ctx && !(st = rt_cuda_get(&cu, e))) {
    /*
    ** The primary context is shared by all its holders in the process (the
    ** host, other sieve contexts, other devices opened on it): detaching it
    ** from this thread while they still use it would break their next call.
    ** Only a thread left holding a context the last release destroyed
    ** would fail obscurely, so only then is it detached.
    */
    CUcontext cur = NULL;
    unsigned flags = 0;
    int active = 1;
    st = RT_CU(cu, e, cuCtxGetCurrent, &cur);
    /* Released whatever happened above; the first error is the one kept. */
    sieve_status rel = RT_CU(cu, st ? NULL : e, cuDevicePrimaryCtxRelease, d->dev);
    if (!st) st = rel;
    if (!st && cur == d->ctx)
      st = RT_CU(cu, e, cuDevicePrimaryCtxGetState, d->dev, &flags, &active);
    if (!st && cur == d->ctx && !active) st = RT_CU(cu, e, cuCtxSetCurrent, NULL);
  }
  memset(d, 0, sizeof *d);
  return st;
}
