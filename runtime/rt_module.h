/*
** Modules: PTX compiled by the driver's JIT, kernel images loaded into the
** current context, kernels looked up and launched. All of it runs in the
** calling thread's current context (rt_device_bind).
*/
#ifndef RT_MODULE_H
#define RT_MODULE_H

#include "rt_cuda.h"

/*
** Compiles `ptx` (NUL-terminated) for the current context's device at
** optimisation level 4, as one whole program, and gives back the image to
** load and cache: the PTX itself (*cubin, malloc'd, *n bytes with the NUL),
** which rt_module_load compiles again (the driver keeps its own cache of
** such compiles). Not cuLink: it compiles PTX as relocatable code, in which
** ptxas ignores setmaxnreg and waits for each wgmma before the next
** (C7504, C7509), so the warp-specialised kernels spilled and ran their
** products one at a time. On failure the message ends with the JIT's
** error log. `name` is unused (the JIT log names no input).
*/
sieve_status rt_ptx_link(const rt_cuda *cu, const char *ptx, const char *name,
                         void **cubin, size_t *n, cg_err *e);

/* Loads a cubin (no linking) or PTX image; the JIT error log ends the
** message on failure. */
sieve_status rt_module_load(const rt_cuda *cu, const void *image, CUmodule *out,
                            cg_err *e);
sieve_status rt_module_unload(const rt_cuda *cu, CUmodule m, cg_err *e);

/* Looks up kernel `name` and lets it use `smem` bytes of dynamic shared
** memory; above the default 48 KB a kernel must opt in. */
sieve_status rt_kernel_get(const rt_cuda *cu, CUmodule m, const char *name,
                           size_t smem, CUfunction *out, cg_err *e);

typedef struct rt_dims {
  unsigned grid[3];
  unsigned block[3];
  unsigned smem;        /* dynamic shared memory, bytes */
} rt_dims;

/* Enqueues f on stream s (NULL: the legacy default stream); params as for
** cuLaunchKernel: one pointer per kernel parameter. */
sieve_status rt_launch(const rt_cuda *cu, CUfunction f, const rt_dims *d,
                       CUstream s, void **params, cg_err *e);

#endif
