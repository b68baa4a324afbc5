#define _POSIX_C_SOURCE 200809L  /* strnlen */
#include "rt_module.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_LOG_BYTES 16384
#define RT_SMEM_DEFAULT (48 * 1024)

/*
** The JIT's options. The size entries are in/out (the driver writes back
** how much it logged), so they live in a struct owned by the caller.
*/
typedef struct jit_opts {
  CUjit_option opt[6];
  void *val[6];
  unsigned n;
  char err[RT_LOG_BYTES];
  char info[RT_LOG_BYTES];
} jit_opts;

static void jit_opt(jit_opts *j, CUjit_option o, void *v) {
  j->opt[j->n] = o;
  j->val[j->n++] = v;
}

static void jit_opts_init(jit_opts *j, int link) {
  j->err[0] = j->info[0] = 0;
  j->n = 0;
  jit_opt(j, CU_JIT_ERROR_LOG_BUFFER, j->err);
  jit_opt(j, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, (void *)(uintptr_t)sizeof j->err);
  jit_opt(j, CU_JIT_INFO_LOG_BUFFER, j->info);
  jit_opt(j, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, (void *)(uintptr_t)sizeof j->info);
  if (!link) return;
  /* The code is for the device of the current context, whatever .target
  ** the PTX names: the cache key carries that device's sm for this reason. */
  jit_opt(j, CU_JIT_TARGET_FROM_CUCONTEXT, NULL);
  jit_opt(j, CU_JIT_OPTIMIZATION_LEVEL, (void *)(uintptr_t)4);
}

static void msg_append(cg_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void msg_append(cg_err *e, const char *fmt, ...) {
  if (!e) return;
  size_t used = strlen(e->msg);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg + used, sizeof e->msg - used, fmt, ap);
  va_end(ap);
}

/* The JIT's error log, not the CUresult, says which PTX line is wrong, so
** it ends the failure's message. */
static void with_log(cg_err *e, const jit_opts *j) {
  if (j->err[0])
    msg_append(e, "; JIT log: %.*s", (int)strnlen(j->err, sizeof j->err), j->err);
}

sieve_status rt_ptx_link(const rt_cuda *cu, const char *ptx, const char *name,
                         void **cubin, size_t *n, cg_err *e) {
  (void)name;
  *cubin = NULL;
  *n = 0;
  jit_opts *j = malloc(sizeof *j);
  if (!j) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the JIT logs");
  jit_opts_init(j, 1);
  CUmodule m = NULL;
  sieve_status st = RT_CU(cu, e, cuModuleLoadDataEx, &m, ptx, j->n, j->opt, j->val);
  if (st) {
    with_log(e, j);
  } else {
    rt_module_unload(cu, m, NULL);
    size_t len = strlen(ptx) + 1;
    if (!(*cubin = malloc(len))) {
      st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for a %zu-byte kernel image", len);
    } else {
      memcpy(*cubin, ptx, len);
      *n = len;
    }
  }
  free(j);
  return st;
}

sieve_status rt_module_load(const rt_cuda *cu, const void *image, CUmodule *out,
                            cg_err *e) {
  *out = NULL;
  jit_opts *j = malloc(sizeof *j);
  if (!j) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the JIT logs");
  jit_opts_init(j, 0);
  sieve_status st = RT_CU(cu, e, cuModuleLoadDataEx, out, image, j->n, j->opt, j->val);
  if (st) {
    *out = NULL;
    with_log(e, j);
  }
  free(j);
  return st;
}

sieve_status rt_module_unload(const rt_cuda *cu, CUmodule m, cg_err *e) {
  return m ? RT_CU(cu, e, cuModuleUnload, m) : SIEVE_OK;
}

sieve_status rt_kernel_get(const rt_cuda *cu, CUmodule m, const char *name,
                           size_t smem, CUfunction *out, cg_err *e) {
  *out = NULL;
  CUfunction f;
  sieve_status st = RT_CU(cu, e, cuModuleGetFunction, &f, m, name);
  if (st) {
    msg_append(e, " (kernel %s)", name);
    return st;
  }
  if (smem > RT_SMEM_DEFAULT) {
    if (smem > INT32_MAX)
      return cg_fail(e, SIEVE_ERR_ARG, "kernel %s: %zu bytes of shared memory", name, smem);
    if ((st = RT_CU(cu, e, cuFuncSetAttribute, f,
                    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)smem)))
      return st;
  }
  *out = f;
  return SIEVE_OK;
}

sieve_status rt_launch(const rt_cuda *cu, CUfunction f, const rt_dims *d,
                       CUstream s, void **params, cg_err *e) {
  return RT_CU(cu, e, cuLaunchKernel, f, d->grid[0], d->grid[1], d->grid[2],
               d->block[0], d->block[1], d->block[2], d->smem, s, params, NULL);
}
