/*
** The CUDA driver, opened with dlopen. sieve builds without the CUDA toolkit
** and its CPU parts run without a GPU, so the few driver types it uses are
** declared here (same sizes and values as cuda.h) and every driver function
** is reached through one table resolved at first use. A missing library or
** symbol is an error value, never a crash.
*/
#ifndef RT_CUDA_H
#define RT_CUDA_H

#include <stddef.h>

#include "cg_err.h"

/* ------------------------------------------------------- driver types */

/* When cuda.h came first its own definitions stand (same sizes and values);
** a file that needs both includes cuda.h first. */
#ifndef __cuda_cuda_h__
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUlinkState_st *CUlinkState;
typedef int CUjit_option;
typedef int CUjitInputType;
typedef int CUfunction_attribute;
typedef int CUdevice_attribute;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_NOT_FOUND = 500,
};

enum {
  CU_JIT_WALL_TIME = 2,
  CU_JIT_INFO_LOG_BUFFER = 3,
  CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
  CU_JIT_ERROR_LOG_BUFFER = 5,
  CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
  CU_JIT_OPTIMIZATION_LEVEL = 7,
  CU_JIT_TARGET_FROM_CUCONTEXT = 8,
  CU_JIT_LOG_VERBOSE = 12,
};

enum { CU_JIT_INPUT_CUBIN = 0, CU_JIT_INPUT_PTX = 1 };

enum {
  CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
  CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
  CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
  CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
  CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
};

enum {
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
};

enum { CU_STREAM_DEFAULT = 0, CU_STREAM_NON_BLOCKING = 1 };
enum { CU_EVENT_DEFAULT = 0 };

typedef struct CUtensorMap_st {
  _Alignas(64) unsigned long long opaque[16];
} CUtensorMap;
typedef int CUtensorMapDataType;
enum { CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9 };
enum { CU_TENSOR_MAP_INTERLEAVE_NONE = 0 };
enum { CU_TENSOR_MAP_SWIZZLE_128B = 3 };
enum { CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2, CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3 };
enum { CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0 };
#endif

/* ---------------------------------------------------- the function table */

/*
** Fields carry the API's names without version suffixes; rt_cuda.c binds
** each to the versioned symbol the real cuda.h maps it to (cuMemAlloc to
** cuMemAlloc_v2, ...), so the ABI matches what a toolkit build would use.
*/
typedef struct rt_cuda {
  void *lib;                 /* dlopen handle; NULL for a stand-in table */
  const char *path;          /* the library that was opened */
  int version;               /* cuDriverGetVersion, e.g. 12040 */

  CUresult (*cuInit)(unsigned flags);
  CUresult (*cuDriverGetVersion)(int *v);
  CUresult (*cuGetErrorName)(CUresult r, const char **s);
  CUresult (*cuGetErrorString)(CUresult r, const char **s);

  CUresult (*cuDeviceGet)(CUdevice *d, int ordinal);
  CUresult (*cuDeviceGetCount)(int *n);
  CUresult (*cuDeviceGetAttribute)(int *v, CUdevice_attribute a, CUdevice d);
  CUresult (*cuDeviceGetName)(char *name, int len, CUdevice d);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *c, CUdevice d);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice d);
  CUresult (*cuDevicePrimaryCtxGetState)(CUdevice d, unsigned *flags, int *active);
  CUresult (*cuCtxSetCurrent)(CUcontext c);
  CUresult (*cuCtxGetCurrent)(CUcontext *c);
  CUresult (*cuCtxGetDevice)(CUdevice *d);
  CUresult (*cuCtxSynchronize)(void);

  CUresult (*cuModuleLoadDataEx)(CUmodule *m, const void *image, unsigned n,
                                 CUjit_option *opt, void **val);
  CUresult (*cuModuleUnload)(CUmodule m);
  CUresult (*cuModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
  CUresult (*cuModuleGetGlobal)(CUdeviceptr *p, size_t *bytes, CUmodule m,
                                const char *name);
  CUresult (*cuFuncSetAttribute)(CUfunction f, CUfunction_attribute a, int v);
  CUresult (*cuFuncGetAttribute)(int *v, CUfunction_attribute a, CUfunction f);
  CUresult (*cuLaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                             unsigned bx, unsigned by, unsigned bz,
                             unsigned smem, CUstream s, void **params,
                             void **extra);

  CUresult (*cuLinkCreate)(unsigned n, CUjit_option *opt, void **val,
                           CUlinkState *st);
  CUresult (*cuLinkAddData)(CUlinkState st, CUjitInputType type, void *data,
                            size_t size, const char *name, unsigned n,
                            CUjit_option *opt, void **val);
  CUresult (*cuLinkComplete)(CUlinkState st, void **cubin, size_t *size);
  CUresult (*cuLinkDestroy)(CUlinkState st);

  CUresult (*cuMemAlloc)(CUdeviceptr *p, size_t bytes);
  CUresult (*cuMemFree)(CUdeviceptr p);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes);
  CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t bytes);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes,
                                CUstream s);
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                                CUstream s);
  CUresult (*cuMemsetD8)(CUdeviceptr p, unsigned char v, size_t n);
  CUresult (*cuMemsetD32)(CUdeviceptr p, unsigned v, size_t n);

  CUresult (*cuStreamCreate)(CUstream *s, unsigned flags);
  CUresult (*cuStreamDestroy)(CUstream s);
  CUresult (*cuStreamSynchronize)(CUstream s);
  CUresult (*cuEventCreate)(CUevent *ev, unsigned flags);
  CUresult (*cuEventRecord)(CUevent ev, CUstream s);
  CUresult (*cuEventSynchronize)(CUevent ev);
  CUresult (*cuEventElapsedTime)(float *ms, CUevent a, CUevent b);
  CUresult (*cuEventDestroy)(CUevent ev);

  /* Optional (CUDA 12+ drivers): NULL where the driver lacks it, and
  ** kernels that take tensor maps are not used. */
  CUresult (*cuTensorMapEncodeTiled)(CUtensorMap *map, CUtensorMapDataType type, unsigned rank,
                                     void *addr, const unsigned long long *dims,
                                     const unsigned long long *strides, const unsigned *box,
                                     const unsigned *elem_strides, int interleave, int swizzle,
                                     int l2, int oob);
} rt_cuda;

/*
** The process's driver: libcuda.so.1 (or $SIEVE_LIBCUDA) opened, resolved
** and initialised (cuInit) once, whichever thread asks first; later calls
** return the same table, or the same failure: SIEVE_ERR_NO_DRIVER naming
** the library or symbol, SIEVE_ERR_NO_GPU when cuInit finds no device.
*/
sieve_status rt_cuda_get(const rt_cuda **out, cg_err *e);

/* Opens `path` and resolves the table into *out, without cuInit and without
** touching the process's table. The library stays open on success. */
sieve_status rt_cuda_open(const char *path, rt_cuda *out, cg_err *e);

/*
** For tests: every later rt_cuda_get answers with `fake` (its functions
** stand in for the driver), so module, launch and plan logic run with no
** GPU. NULL goes back to the real driver. Call it while no other thread is
** inside the runtime.
*/
void rt_cuda_set_fake(const rt_cuda *fake);

/* ------------------------------------------------------ checking results */

/* Fills e with "cuXxx failed: CUDA_ERROR_NAME (description) at file:line"
** and returns SIEVE_ERR_CUDA (SIEVE_ERR_NO_GPU for CUDA_ERROR_NO_DEVICE). */
sieve_status rt_cu_fail(const rt_cuda *cu, CUresult r, const char *fn,
                        const char *file, int line, cg_err *e);

static inline sieve_status rt_cu_check(const rt_cuda *cu, CUresult r,
                                       const char *fn, const char *file,
                                       int line, cg_err *e) {
  return r == CUDA_SUCCESS ? SIEVE_OK : rt_cu_fail(cu, r, fn, file, line, e);
}

/* RT_CU(cu, e, cuMemAlloc, &p, n): calls cu->cuMemAlloc(&p, n) and turns a
** failure into a status and message that name the call and its site. */
#define RT_CU(cu, e, fn, ...) \
  rt_cu_check((cu), (cu)->fn(__VA_ARGS__), #fn, __FILE__, __LINE__, (e))

/* ---------------------------------------------------------------- devices */

typedef struct rt_device {
  int ordinal;
  CUdevice dev;
  CUcontext ctx;        /* the device's primary context, retained */
  char name[256];
  int sm_major, sm_minor;
  int sm_count;
  int smem_optin;       /* max shared memory per block with opt-in, bytes */
  int driver_version;
} rt_device;

/* Devices the driver sees (0 is not an error here). */
sieve_status rt_device_count(int *n, cg_err *e);
/* Fills *d (no context: d->ctx stays NULL) for device `ordinal`. */
sieve_status rt_device_query(int ordinal, rt_device *d, cg_err *e);
/* Retains device `ordinal`'s primary context, makes it current on the
** calling thread and fills *d. */
sieve_status rt_device_open(int ordinal, rt_device *d, cg_err *e);
/* Makes d's context current on the calling thread. */
sieve_status rt_device_bind(const rt_device *d, cg_err *e);
/* Releases the primary context; d is zeroed. */
sieve_status rt_device_close(rt_device *d, cg_err *e);

#endif
