#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "rt_cuda.h"
#include "lp.h"
#include "rt_module.h"
#include "sieve.h"

/* ---------------------------------------------------- the real driver */

static void missing_library(void **st) {
  rt_cuda cu;
  cg_err e = {0};
  assert_int_equal(rt_cuda_open("/nonexistent/libcuda.so.1", &cu, &e), SIEVE_ERR_NO_DRIVER);
  assert_non_null(strstr(e.msg, "/nonexistent/libcuda.so.1"));
  assert_null(cu.lib);
}

static void library_without_the_symbols(void **st) {
  rt_cuda cu;
  cg_err e = {0};
  assert_int_equal(rt_cuda_open("libm.so.6", &cu, &e), SIEVE_ERR_NO_DRIVER);
  assert_non_null(strstr(e.msg, "libm.so.6"));
  assert_non_null(strstr(e.msg, "lacks cuInit"));
  assert_null(cu.lib);
}

/*
** The process's driver is loaded once, so each way of loading it runs in a
** child of its own. Exit codes: 0 as expected, else the failed check.
*/
static int child_env_path(void) {
  setenv("SIEVE_LIBCUDA", "/nonexistent/libcuda-test.so", 1);
  const rt_cuda *cu = (const rt_cuda *)1;
  cg_err e = {0};
  if (rt_cuda_get(&cu, &e) != SIEVE_ERR_NO_DRIVER || cu) return 1;
  if (!strstr(e.msg, "/nonexistent/libcuda-test.so")) return 2;
  /* The same answer the second time, and through the public API. */
  cg_err e2 = {0};
  if (rt_cuda_get(&cu, &e2) != SIEVE_ERR_NO_DRIVER || strcmp(e.msg, e2.msg)) return 3;
  sieve_ctx *ctx;
  int n = -1;
  if (sieve_open(&ctx)) return 4;
  if (sieve_device_count(ctx, &n) != SIEVE_ERR_NO_DRIVER || n != 0) return 5;
  if (!strstr(sieve_errmsg(ctx), "/nonexistent/libcuda-test.so")) return 6;
  sieve_device_info info;
  if (sieve_device_query(ctx, 0, &info) != SIEVE_ERR_NO_DRIVER) return 7;
  if (sieve_device_open(ctx, 0) != SIEVE_ERR_NO_DRIVER) return 8;
  sieve_close(ctx);
  return 0;
}

/* Without SIEVE_LIBCUDA: no driver here (a clean NO_DRIVER naming
** libcuda.so.1); on a GPU machine, a driver that answers. */
static int child_default_path(void) {
  unsetenv("SIEVE_LIBCUDA");
  const rt_cuda *cu;
  cg_err e = {0};
  sieve_status st = rt_cuda_get(&cu, &e);
  if (st == SIEVE_ERR_NO_DRIVER) return strstr(e.msg, "libcuda.so.1") && !cu ? 0 : 1;
  if (st == SIEVE_ERR_NO_GPU) return 0;
  if (st != SIEVE_OK || !cu || cu->version <= 0) return 2;
  int n;
  return rt_device_count(&n, &e) == SIEVE_OK ? 0 : 3;
}

static void run_child(int (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(fn());
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));  /* no crash */
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void env_overrides_path(void **st) { run_child(child_env_path); }
static void default_load_is_clean(void **st) { run_child(child_default_path); }

/* ------------------------------------------------------- a stand-in driver */

/*
** Module, launch and device logic run against these functions: they record
** what they were asked and answer as the test sets them to.
*/
static struct {
  CUresult link_complete, load, get_function, set_attr, launch;
  int devices;
  const char *jit_error;           /* written into the error log on failure */
  int links, adds, completes, destroys, loads, set_attrs, launches;
  int retains, releases, set_current;
  int smem_optin;
  int allocs, frees, htod, htod_async, syncs;
  size_t htod_bytes;
  uint64_t htod_sum;               /* FNV-1a of the last upload's bytes */
  size_t alloc_limit;              /* allocations above it fail (0: none) */
  unsigned grids[8][4];            /* grid x, y, z and block x of the first launches */
  CUdeviceptr next_ptr;
  CUcontext current;
  CUjit_option opts[16];
  void *vals[16];
  unsigned nopts;
  const void *added;
  size_t added_size;
  CUjitInputType added_type;
  const void *loaded;
  char cubin[64];
  int attr, attr_value;
  unsigned dims[7];
  void **params;
} fk;

/* Each device's primary context is its own, as with the real driver. */
#define FAKE_CTX(dev) ((CUcontext)(uintptr_t)(0x1000 + (dev)))

static CUresult f_err_name(CUresult r, const char **s) {
  *s = r == CUDA_ERROR_INVALID_PTX ? "CUDA_ERROR_INVALID_PTX"
       : r == CUDA_ERROR_NOT_FOUND ? "CUDA_ERROR_NOT_FOUND" : "CUDA_ERROR_UNKNOWN";
  return CUDA_SUCCESS;
}
static CUresult f_err_string(CUresult r, const char **s) {
  *s = r == CUDA_ERROR_INVALID_PTX ? "a PTX JIT compilation failed" : "something failed";
  return CUDA_SUCCESS;
}
static CUresult f_count(int *n) { return *n = fk.devices, CUDA_SUCCESS; }
static CUresult f_device_get(CUdevice *d, int i) { return *d = 100 + i, CUDA_SUCCESS; }
static CUresult f_attr(int *v, CUdevice_attribute a, CUdevice d) {
  switch (a) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = fk.smem_optin; break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}
static CUresult f_name(char *s, int n, CUdevice d) {
  snprintf(s, (size_t)n, "Fake H100 %d", d);
  return CUDA_SUCCESS;
}
static CUresult f_retain(CUcontext *c, CUdevice d) {
  fk.retains++;
  *c = FAKE_CTX(d);
  return CUDA_SUCCESS;
}
static CUresult f_release(CUdevice d) { return fk.releases++, CUDA_SUCCESS; }
static CUresult f_state(CUdevice d, unsigned *flags, int *active) {
  *flags = 0;
  *active = fk.retains > fk.releases;
  return CUDA_SUCCESS;
}
static CUresult f_set_current(CUcontext c) {
  fk.set_current++;
  fk.current = c;
  return CUDA_SUCCESS;
}
static CUresult f_get_current(CUcontext *c) { return *c = fk.current, CUDA_SUCCESS; }

static void jit_fail_log(unsigned n, CUjit_option *opt, void **val) {
  for (unsigned i = 0; i < n; i++)
    if (opt[i] == CU_JIT_ERROR_LOG_BUFFER && fk.jit_error)
      snprintf(val[i], 64, "%s", fk.jit_error);
}

static CUresult f_link_create(unsigned n, CUjit_option *opt, void **val, CUlinkState *st) {
  fk.links++;
  fk.nopts = n;
  memcpy(fk.opts, opt, n * sizeof *opt);
  memcpy(fk.vals, val, n * sizeof *val);
  *st = (CUlinkState)0x2000;
  return CUDA_SUCCESS;
}
static CUresult f_link_add(CUlinkState st, CUjitInputType type, void *data, size_t size,
                           const char *name, unsigned n, CUjit_option *o, void **v) {
  fk.adds++;
  fk.added = data;
  fk.added_size = size;
  fk.added_type = type;
  return CUDA_SUCCESS;
}
static CUresult f_link_complete(CUlinkState st, void **cubin, size_t *size) {
  fk.completes++;
  if (fk.link_complete) {
    /* Logs go where cuLinkCreate was told. */
    jit_fail_log(fk.nopts, fk.opts, fk.vals);
    return fk.link_complete;
  }
  snprintf(fk.cubin, sizeof fk.cubin, "\177ELF fake cubin");
  *cubin = fk.cubin;
  *size = sizeof fk.cubin;
  return CUDA_SUCCESS;
}
static CUresult f_link_destroy(CUlinkState st) {
  fk.destroys++;
  memset(fk.cubin, 0xdd, sizeof fk.cubin);  /* the linker's copy dies here */
  return CUDA_SUCCESS;
}
/* A load that sets an optimisation level is rt_ptx_link compiling PTX. */
static int compiles(unsigned n, const CUjit_option *o) {
  for (unsigned i = 0; i < n; i++)
    if (o[i] == CU_JIT_OPTIMIZATION_LEVEL) return 1;
  return 0;
}
static CUresult f_load(CUmodule *m, const void *image, unsigned n, CUjit_option *o, void **v) {
  fk.loads++;
  fk.loaded = image;
  if (compiles(n, o)) {
    fk.links++;
    fk.nopts = n;
    memcpy(fk.opts, o, n * sizeof *o);
    memcpy(fk.vals, v, n * sizeof *v);
    if (fk.link_complete) {
      jit_fail_log(n, o, v);
      return fk.link_complete;
    }
  }
  if (fk.load) {
    jit_fail_log(n, o, v);
    return fk.load;
  }
  *m = (CUmodule)0x3000;
  return CUDA_SUCCESS;
}
static CUresult f_unload(CUmodule m) { return CUDA_SUCCESS; }
static CUresult f_get_function(CUfunction *f, CUmodule m, const char *name) {
  if (fk.get_function) return fk.get_function;
  *f = (CUfunction)0x4000;
  return CUDA_SUCCESS;
}
static CUresult f_set_attr(CUfunction f, CUfunction_attribute a, int v) {
  fk.set_attrs++;
  fk.attr = a;
  fk.attr_value = v;
  return fk.set_attr;
}
static CUresult f_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                         unsigned by, unsigned bz, unsigned smem, CUstream s, void **params,
                         void **extra) {
  if (fk.launches < 8) {
    unsigned g[4] = {gx, gy, gz, bx};
    memcpy(fk.grids[fk.launches], g, sizeof g);
  }
  fk.launches++;
  unsigned d[7] = {gx, gy, gz, bx, by, bz, smem};
  memcpy(fk.dims, d, sizeof d);
  fk.params = params;
  return fk.launch;
}

static CUresult f_get_device(CUdevice *d) {
  if (!fk.current) return CUDA_ERROR_INVALID_VALUE;
  *d = (CUdevice)((uintptr_t)fk.current - 0x1000 - 100);
  return CUDA_SUCCESS;
}
static CUresult f_sync(void) { return fk.syncs++, CUDA_SUCCESS; }
static CUresult f_alloc(CUdeviceptr *p, size_t n) {
  if (fk.alloc_limit && n > fk.alloc_limit) return CUDA_ERROR_OUT_OF_MEMORY;
  fk.allocs++;
  fk.next_ptr += 1 << 20;
  *p = fk.next_ptr;
  return CUDA_SUCCESS;
}
static CUresult f_free(CUdeviceptr p) { return fk.frees++, CUDA_SUCCESS; }
static uint64_t fnv(const void *src, size_t n) {
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)src)[i]) * 1099511628211u;
  return h;
}
static CUresult f_htod(CUdeviceptr p, const void *src, size_t n) {
  fk.htod++;
  fk.htod_bytes = n;
  fk.htod_sum = fnv(src, n);
  return CUDA_SUCCESS;
}
static CUresult f_htod_async(CUdeviceptr p, const void *src, size_t n, CUstream s) {
  fk.htod_async++;
  fk.htod_bytes = n;
  return CUDA_SUCCESS;
}

static rt_cuda fake_driver(void) {
  rt_cuda cu = {0};
  cu.version = 12040;
  cu.cuGetErrorName = f_err_name;
  cu.cuGetErrorString = f_err_string;
  cu.cuDeviceGetCount = f_count;
  cu.cuDeviceGet = f_device_get;
  cu.cuDeviceGetAttribute = f_attr;
  cu.cuDeviceGetName = f_name;
  cu.cuDevicePrimaryCtxRetain = f_retain;
  cu.cuDevicePrimaryCtxRelease = f_release;
  cu.cuDevicePrimaryCtxGetState = f_state;
  cu.cuCtxSetCurrent = f_set_current;
  cu.cuCtxGetCurrent = f_get_current;
  cu.cuCtxGetDevice = f_get_device;
  cu.cuCtxSynchronize = f_sync;
  cu.cuMemAlloc = f_alloc;
  cu.cuMemFree = f_free;
  cu.cuMemcpyHtoD = f_htod;
  cu.cuMemcpyHtoDAsync = f_htod_async;
  cu.cuLinkCreate = f_link_create;
  cu.cuLinkAddData = f_link_add;
  cu.cuLinkComplete = f_link_complete;
  cu.cuLinkDestroy = f_link_destroy;
  cu.cuModuleLoadDataEx = f_load;
  cu.cuModuleUnload = f_unload;
  cu.cuModuleGetFunction = f_get_function;
  cu.cuFuncSetAttribute = f_set_attr;
  cu.cuLaunchKernel = f_launch;
  return cu;
}

static rt_cuda fake;

static int with_fake(void **st) {
  memset(&fk, 0, sizeof fk);
  fk.devices = 1;
  fk.smem_optin = 232448;
  fake = fake_driver();
  rt_cuda_set_fake(&fake);
  return 0;
}

static int without_fake(void **st) {
  rt_cuda_set_fake(NULL);
  return 0;
}

static const char *ptx = ".version 8.0\n.target sm_80\n.address_size 64\n";

static int has_opt(CUjit_option o, void **val) {
  for (unsigned i = 0; i < fk.nopts; i++)
    if (fk.opts[i] == o) {
      if (val) *val = fk.vals[i];
      return 1;
    }
  return 0;
}

static void link_compiles_and_keeps_the_ptx(void **st) {
  void *img;
  size_t n;
  cg_err e = {0};
  assert_int_equal(rt_ptx_link(&fake, ptx, "k", &img, &n, &e), SIEVE_OK);
  /* One whole-program compile through the module loader, not cuLink (its
  ** relocatable code drops setmaxnreg and serialises wgmma). */
  assert_int_equal(fk.links, 1);
  assert_int_equal(fk.adds + fk.completes, 0);
  assert_ptr_equal(fk.loaded, ptx);
  assert_int_equal(n, strlen(ptx) + 1);
  assert_memory_equal(img, ptx, n);  /* the image to load and cache is the PTX */
  assert_ptr_not_equal(img, ptx);
  void *v;
  assert_true(has_opt(CU_JIT_OPTIMIZATION_LEVEL, &v));
  assert_int_equal((uintptr_t)v, 4);
  assert_true(has_opt(CU_JIT_TARGET_FROM_CUCONTEXT, NULL));
  assert_true(has_opt(CU_JIT_ERROR_LOG_BUFFER, NULL));
  assert_true(has_opt(CU_JIT_INFO_LOG_BUFFER, NULL));
  free(img);
}

static void link_failure_keeps_the_log(void **st) {
  fk.link_complete = CUDA_ERROR_INVALID_PTX;
  fk.jit_error = "ptxas error: line 3; bad operand";
  void *img = (void *)1;
  size_t n = 1;
  cg_err e = {0};
  assert_int_equal(rt_ptx_link(&fake, ptx, "k", &img, &n, &e), SIEVE_ERR_CUDA);
  assert_null(img);
  assert_int_equal(n, 0);
  assert_non_null(strstr(e.msg, "cuModuleLoadDataEx failed: CUDA_ERROR_INVALID_PTX "
                                "(a PTX JIT compilation failed) at rt_module.c:"));
  assert_non_null(strstr(e.msg, "line 3; bad operand"));
}

static void loading_a_cubin_skips_linking(void **st) {
  CUmodule m;
  cg_err e = {0};
  const char cubin[] = "\177ELF cached";
  assert_int_equal(rt_module_load(&fake, cubin, &m, &e), SIEVE_OK);
  assert_non_null(m);
  assert_ptr_equal(fk.loaded, cubin);
  assert_int_equal(fk.links + fk.adds + fk.completes, 0);
  assert_int_equal(rt_module_unload(&fake, m, &e), SIEVE_OK);

  fk.load = CUDA_ERROR_INVALID_PTX;
  fk.jit_error = "no kernel image for this device";
  assert_int_equal(rt_module_load(&fake, cubin, &m, &e), SIEVE_ERR_CUDA);
  assert_null(m);
  assert_non_null(strstr(e.msg, "cuModuleLoadDataEx failed"));
  assert_non_null(strstr(e.msg, "no kernel image for this device"));
}

static void kernels_opt_into_shared_memory(void **st) {
  CUfunction f;
  cg_err e = {0};
  assert_int_equal(rt_kernel_get(&fake, (CUmodule)0x3000, "attn", 48 * 1024, &f, &e), SIEVE_OK);
  assert_non_null(f);
  assert_int_equal(fk.set_attrs, 0);  /* the default allowance suffices */
  assert_int_equal(rt_kernel_get(&fake, (CUmodule)0x3000, "attn", 100000, &f, &e), SIEVE_OK);
  assert_int_equal(fk.set_attrs, 1);
  assert_int_equal(fk.attr, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
  assert_int_equal(fk.attr_value, 100000);

  fk.set_attr = CUDA_ERROR_INVALID_VALUE;
  assert_int_equal(rt_kernel_get(&fake, (CUmodule)0x3000, "attn", 300000, &f, &e), SIEVE_ERR_CUDA);
  assert_null(f);
  assert_non_null(strstr(e.msg, "cuFuncSetAttribute failed"));

  fk.get_function = CUDA_ERROR_NOT_FOUND;
  assert_int_equal(rt_kernel_get(&fake, (CUmodule)0x3000, "nope", 0, &f, &e), SIEVE_ERR_CUDA);
  assert_non_null(strstr(e.msg, "cuModuleGetFunction failed: CUDA_ERROR_NOT_FOUND"));
  assert_non_null(strstr(e.msg, "nope"));
}

static void launches_are_checked(void **st) {
  int a = 1;
  void *params[] = {&a};
  rt_dims d = {{3, 4, 5}, {128, 1, 1}, 65536};
  cg_err e = {0};
  assert_int_equal(rt_launch(&fake, (CUfunction)0x4000, &d, NULL, params, &e), SIEVE_OK);
  const unsigned want[7] = {3, 4, 5, 128, 1, 1, 65536};
  assert_memory_equal(fk.dims, want, sizeof want);
  assert_ptr_equal(fk.params, params);
  fk.launch = 719;  /* CUDA_ERROR_LAUNCH_FAILED, unknown to the stand-in */
  assert_int_equal(rt_launch(&fake, (CUfunction)0x4000, &d, NULL, params, &e), SIEVE_ERR_CUDA);
  assert_non_null(strstr(e.msg, "cuLaunchKernel failed: CUDA_ERROR_UNKNOWN"));
  assert_non_null(strstr(e.msg, "rt_module.c:"));
}

static void error_names_without_the_driver_strings(void **st) {
  rt_cuda bare = {0};
  cg_err e = {0};
  assert_int_equal(rt_cu_fail(&bare, 2, "cuMemAlloc", "/x/y/z.c", 7, &e), SIEVE_ERR_CUDA);
  assert_string_equal(e.msg, "cuMemAlloc failed: CUresult 2 (no description) at z.c:7");
  assert_int_equal(rt_cu_fail(&bare, CUDA_ERROR_NO_DEVICE, "cuInit", "a.c", 1, &e),
                   SIEVE_ERR_NO_GPU);
}

static void devices(void **st) {
  rt_device d;
  cg_err e = {0};
  assert_int_equal(rt_device_open(0, &d, &e), SIEVE_OK);
  assert_string_equal(d.name, "Fake H100 100");
  assert_int_equal(d.sm_major, 9);
  assert_int_equal(d.sm_minor, 0);
  assert_int_equal(d.sm_count, 132);
  assert_int_equal(d.smem_optin, 232448);
  assert_int_equal(d.driver_version, 12040);
  assert_ptr_equal(d.ctx, FAKE_CTX(100));
  assert_ptr_equal(fk.current, FAKE_CTX(100));
  rt_device d2;
  assert_int_equal(rt_device_open(0, &d2, &e), SIEVE_OK);
  assert_int_equal(rt_device_close(&d2, &e), SIEVE_OK);
  assert_ptr_equal(fk.current, FAKE_CTX(100));  /* d still holds it: stays current */
  assert_int_equal(rt_device_close(&d, &e), SIEVE_OK);
  assert_int_equal(fk.retains, fk.releases);
  assert_null(fk.current);  /* not left current once the last holder released it */

  assert_int_equal(rt_device_open(3, &d, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "no GPU 3"));
  fk.devices = 0;
  assert_int_equal(rt_device_open(0, &d, &e), SIEVE_ERR_NO_GPU);
  assert_int_equal(fk.retains, 2);  /* the two opens above; none for a missing GPU */
}

static void public_device_api(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  fk.devices = 2;
  int n;
  assert_int_equal(sieve_device_count(ctx, &n), SIEVE_OK);
  assert_int_equal(n, 2);
  sieve_device_info info;
  assert_int_equal(sieve_device_query(ctx, 1, &info), SIEVE_OK);
  assert_string_equal(info.name, "Fake H100 101");
  assert_int_equal(info.ordinal, 1);
  assert_int_equal(fk.retains, 0);  /* a query makes no context */
  assert_int_equal(sieve_device_open(ctx, 1), SIEVE_OK);
  assert_int_equal(sieve_device_open(ctx, 1), SIEVE_OK);  /* again: the same one */
  assert_int_equal(sieve_device_open(ctx, 0), SIEVE_OK);
  assert_ptr_equal(fk.current, FAKE_CTX(100));  /* the new one stays current */
  assert_int_equal(sieve_device_open(ctx, 7), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "no GPU 7"));
  sieve_close(ctx);
  assert_int_equal(fk.retains, 2);
  assert_int_equal(fk.releases, 2);
}

/* ------------------------------------------------------------------ plans */

#include <dirent.h>
#include <sys/stat.h>

#include "rt_cache.h"
#include "cg_blocks.h"
#include "cg_permute.h"
#include "rt_plan.h"
#include "rt_dyn.h"

/* A fresh cache directory per test. */
static char plan_dir[256];

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[512];
  while (d && (de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      unlink(p);
    }
  if (d) closedir(d);
  rmdir(dir);
}

/* Whether a plan keeps its tables follows their build time, which a
** sanitizer's build stretches: tests that count entries or notes keep none,
** and the tests of the table cache ask for all of them. */
static int with_fake_and_cache(void **st) {
  with_fake(st);
  setenv("SIEVE_TABLE_CACHE", "0", 1);
  const char *tmp = getenv("TMPDIR");
  snprintf(plan_dir, sizeof plan_dir, "%s/sieve-plan-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  return mkdtemp(plan_dir) ? 0 : -1;
}

static int without_fake_and_cache(void **st) {
  unsetenv("SIEVE_TABLE_CACHE");
  rm_dir(plan_dir);
  return without_fake(st);
}

/* Real patterns and real code generation; only the driver is a stand-in. */
static const char *frame_window =
  "return sieve.pattern { name = 'fw', block = {q = 128, k = 128},\n"
  "  mask = sieve.frame_window(1) }\n";
static const char *follows_step =
  "return sieve.pattern { name = 'stepwise', block = {q = 128, k = 128},\n"
  "  mask = sieve.union(sieve.frame_window(0),\n"
  "    sieve.keys(function(k) return ((k.t + sieve.step) % 3):eq(0) end)) }\n";

static const sieve_shape small = {1, 2, 64, 4, 8, 8, 0, 0};  /* 256 tokens */

typedef struct plan_env {
  sieve_ctx *ctx;
  sieve_pattern *pat;
  rt_cache cache;
  rt_device dev;
  rt_plan_spec spec;
} plan_env;

static void plan_env_open(plan_env *pe, const char *script) {
  cg_err e = {0};
  assert_int_equal(sieve_open(&pe->ctx), SIEVE_OK);
  if (sieve_pattern_load_string(pe->ctx, "test.lua", script, NULL, &pe->pat))
    fail_msg("%s", sieve_errmsg(pe->ctx));
  assert_int_equal(rt_cache_open(&pe->cache, plan_dir, &e), SIEVE_OK);
  assert_int_equal(rt_device_open(0, &pe->dev, &e), SIEVE_OK);
  pe->spec = (rt_plan_spec){.pattern = lp_pattern_ir(pe->pat), .shape = small,
                            .dtype = CG_BF16, .arch = CG_SM80};
}

static void plan_env_close(plan_env *pe) {
  cg_err e = {0};
  assert_int_equal(rt_device_close(&pe->dev, &e), SIEVE_OK);
  sieve_pattern_free(pe->pat);
  sieve_close(pe->ctx);
}

static rt_plan *make_plan(plan_env *pe) {
  rt_plan *p = NULL;
  cg_err e = {0};
  if (rt_plan_create(&pe->spec, &pe->dev, &pe->cache, &p, &e)) fail_msg("%s", e.msg);
  return p;
}

static void run_plan(rt_plan *p) {
  sieve_tensor t = {0x10000, 256 * 2 * 64, 256 * 64, 64};
  cg_err e = {0};
  if (rt_plan_run(p, &t, &t, &t, &t, 0x20000, 0, NULL, &e)) fail_msg("%s", e.msg);
}

static void plan_cold_then_warm(void **st) {
  plan_env pe;
  plan_env_open(&pe, frame_window);
  cg_err e = {0};
  rt_plan *cold = make_plan(&pe);
  assert_false(rt_plan_stats_of(cold)->from_cache);
  assert_int_equal(fk.links, 1);
  assert_string_equal(rt_plan_stats_of(cold)->cache_note, "");
  rt_cache_totals t;
  assert_int_equal(rt_cache_totals_get(&pe.cache, &t, &e), SIEVE_OK);
  assert_int_equal(t.entries, 1);

  /* The same kernel again: from the cache, nothing generated or linked. */
  rt_plan *warm = make_plan(&pe);
  assert_true(rt_plan_stats_of(warm)->from_cache);
  assert_int_equal(rt_plan_stats_of(warm)->codegen_ms, 0);
  assert_int_equal(fk.links, 1);
  assert_string_equal(rt_plan_kernel(warm), rt_plan_kernel(cold));
  assert_true(rt_plan_density(warm) > 0 && rt_plan_density(warm) < 1);

  /* Runs touch nothing but the launch. */
  int allocs = fk.allocs, htod = fk.htod, loads = fk.loads;
  run_plan(warm);
  run_plan(warm);
  assert_int_equal(fk.launches, 2);
  assert_int_equal(fk.allocs, allocs);
  assert_int_equal(fk.htod + fk.htod_async, htod);
  assert_int_equal(fk.loads, loads);
  const cg_attn_config *c = &rt_plan_spec_of(warm)->cfg;
  const unsigned want[7] = {(256u + (unsigned)c->block_m - 1) / (unsigned)c->block_m, 2, 1,
                            32u * (unsigned)c->warps, 1, 1,
                            (unsigned)cg_attn_smem_bytes(rt_plan_spec_of(warm))};
  assert_memory_equal(fk.dims, want, sizeof want);
  /* Parameters in the order of cg_attn.h. */
  assert_int_equal(*(CUdeviceptr *)fk.params[0], 0x10000);
  assert_int_equal(*(CUdeviceptr *)fk.params[4], 0x20000);
  assert_int_equal(*(int64_t *)fk.params[5], 256 * 2 * 64);
  assert_int_equal(*(int64_t *)fk.params[16], 64);
  assert_true(*(CUdeviceptr *)fk.params[17] != 0);
  assert_true(*(CUdeviceptr *)fk.params[18] > *(CUdeviceptr *)fk.params[17]);
  assert_float_equal(*(float *)fk.params[21], 0.125f, 1e-7);

  /* A static pattern keeps its tables across steps. */
  assert_int_equal(rt_plan_set_step(warm, 5, 3, &e), SIEVE_OK);
  run_plan(warm);
  assert_int_equal(fk.htod + fk.htod_async, htod);
  assert_int_equal(*(int32_t *)fk.params[19], 5);
  assert_int_equal(*(int32_t *)fk.params[20], 3);

  /* A different config is a different kernel. */
  pe.spec.cfg = rt_plan_spec_of(cold)->cfg;
  pe.spec.cfg.stages = pe.spec.cfg.stages == 1 ? 2 : 1;
  rt_plan *other = make_plan(&pe);
  assert_false(rt_plan_stats_of(other)->from_cache);
  assert_int_equal(fk.links, 2);

  assert_int_equal(rt_plan_free(cold, &e), SIEVE_OK);
  assert_int_equal(rt_plan_free(warm, &e), SIEVE_OK);
  assert_int_equal(rt_plan_free(other, &e), SIEVE_OK);
  assert_int_equal(fk.frees, fk.allocs);
  plan_env_close(&pe);
}

static void plan_rebuilds_a_damaged_entry(void **st) {
  plan_env pe;
  plan_env_open(&pe, frame_window);
  cg_err e = {0};
  rt_plan *p = make_plan(&pe);
  char key[2048], path[4200];
  rt_plan_key(rt_plan_spec_of(p), &pe.dev, key, sizeof key);
  rt_cache_path(&pe.cache, key, path, sizeof path);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  assert_int_equal(truncate(path, 100), 0);

  p = make_plan(&pe);
  assert_false(rt_plan_stats_of(p)->from_cache);
  assert_non_null(strstr(rt_plan_stats_of(p)->cache_note, "damaged"));
  assert_int_equal(fk.links, 2);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  p = make_plan(&pe);  /* rewritten: a hit again */
  assert_true(rt_plan_stats_of(p)->from_cache);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);

  /* A cached cubin the driver refuses is rebuilt too. */
  fk.load = CUDA_ERROR_INVALID_PTX;
  rt_plan *q = NULL;
  assert_int_equal(rt_plan_create(&pe.spec, &pe.dev, &pe.cache, &q, &e), SIEVE_ERR_CUDA);
  assert_null(q);
  assert_non_null(strstr(e.msg, "cuModuleLoadDataEx failed"));
  fk.load = CUDA_SUCCESS;
  assert_int_equal(fk.frees, fk.allocs);
  plan_env_close(&pe);
}

static void plan_key_names_everything(void **st) {
  plan_env pe;
  plan_env_open(&pe, frame_window);
  char a[2048], b[2048];
  cg_attn_spec s = {.pattern = pe.spec.pattern, .shape = small, .dtype = CG_BF16,
                    .arch = CG_SM80, .cfg = {128, 64, 4, 2}};
  rt_plan_key(&s, &pe.dev, a, sizeof a);
  const char *parts[] = {"pattern ", "heads=2 head_dim=64 frames=4 height=8 width=8",
                         "dtype bf16", "block_m=128 block_n=64 warps=4 stages=2",
                         "arch sm_80", "device sm_90", "llvm ", "sieve ", "driver 12040"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (!strstr(a, parts[i])) fail_msg("key lacks \"%s\":\n%s", parts[i], a);
  /* the build's sources, whatever the version says */
  char src[64];
  assert_int_equal(strspn(rt_source_id, "0123456789abcdef"), 16);
  assert_int_equal(strlen(rt_source_id), 16);
  snprintf(src, sizeof src, " source %s\n", rt_source_id);
  if (!strstr(a, src)) fail_msg("key lacks \"%s\":\n%s", src + 1, a);
  assert_null(strstr(a, "layouts"));
  s.shape.batch = 7;  /* batch is a launch dimension, not compiled in */
  rt_plan_key(&s, &pe.dev, b, sizeof b);
  assert_string_equal(a, b);
  s.dtype = CG_FP16;
  rt_plan_key(&s, &pe.dev, b, sizeof b);
  assert_string_not_equal(a, b);
  plan_env_close(&pe);
}

/*
** A pattern's IR says only "auto" where sieve.layout.auto chooses, and the
** kernel follows the choice: the key names it, so a kernel cached for one
** choice is never taken for another (another sieve may choose otherwise
** for the same script and shape). Keys of patterns with no automatic
** layout are as before.
*/
static const char *local_auto =
  "return sieve.pattern { name = 'la', block = {q = 128, k = 128}, layout = sieve.layout.auto,\n"
  "  mask = sieve.mask(function(q, k) return sieve.abs(q.y - k.y):le(3) & sieve.abs(q.x - k.x):le(3) end) }\n";

static void plan_key_names_auto_layouts(void **st) {
  plan_env pe;
  plan_env_open(&pe, local_auto);
  pe.spec.shape = (sieve_shape){1, 2, 64, 4, 32, 96, 0, 0};  /* rows longer than a block: a tile wins */
  cg_err e = {0};
  rt_plan *p = make_plan(&pe);
  cg_pattern *pt = rt_plan_spec_of(p)->pattern;
  char a[2048], b[2048], lay[64];
  rt_plan_key(rt_plan_spec_of(p), &pe.dev, a, sizeof a);
  assert_int_equal(pt->classes[0].layout.kind, CG_LAYOUT_TILE);
  cg_layout_text(&pt->classes[0].layout, lay, sizeof lay);
  char want[96];
  snprintf(want, sizeof want, "\nlayouts 0=%s\n", lay);
  if (!strstr(a, want)) fail_msg("key lacks \"%s\":\n%s", want + 1, a);
  rt_dyn_key(b, sizeof b, "layout-permute", pt, &rt_plan_spec_of(p)->shape, CG_SM90A, &pe.dev, NULL);
  if (!strstr(b, want)) fail_msg("module key lacks \"%s\":\n%s", want + 1, b);
  /* Another choice for the same script and shape is another kernel. */
  cg_layout chosen = pt->classes[0].layout;
  pt->classes[0].layout = (cg_layout){.kind = CG_LAYOUT_IDENTITY};
  rt_plan_key(rt_plan_spec_of(p), &pe.dev, b, sizeof b);
  pt->classes[0].layout = chosen;
  assert_string_not_equal(a, b);
  assert_non_null(strstr(b, "\nlayouts 0=identity\n"));
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  p = make_plan(&pe);  /* the same choice: the kernel stored under it */
  assert_true(rt_plan_stats_of(p)->from_cache);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  assert_int_equal(fk.frees, fk.allocs);
  plan_env_close(&pe);
}

/*
** Static block tables are cached beside the kernel: a later plan of the
** same pattern, shape and config uploads the same bytes without building
** them, and an automatic layout's choice comes with them (no ranking is
** made). An entry that does not fit is a note and a build, which stores
** a good one.
*/
typedef struct tab_entry {
  char key[1024];
  int n;
} tab_entry;

static int find_tables(const rt_cache_entry *ent, void *ud) {
  tab_entry *t = ud;
  if (!ent->key || strncmp(ent->key, "sieve table cache key 1\n", 24)) return 0;
  snprintf(t->key, sizeof t->key, "%s", ent->key);
  t->n++;
  return 0;
}

static void plan_tables_from_the_cache(void **st) {
  plan_env pe;
  plan_env_open(&pe, frame_window);
  cg_err e = {0};
  setenv("SIEVE_TABLE_CACHE", "1", 1);  /* these build in well under a millisecond */
  rt_plan *p = make_plan(&pe);
  assert_false(rt_plan_stats_of(p)->tables_from_cache);
  size_t bytes = fk.htod_bytes;
  uint64_t sum = fk.htod_sum;
  double dens = rt_plan_density(p);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  p = make_plan(&pe);
  assert_true(rt_plan_stats_of(p)->tables_from_cache);
  assert_true(rt_plan_stats_of(p)->from_cache);
  assert_int_equal(fk.htod_bytes, bytes);
  assert_true(fk.htod_sum == sum);
  assert_true(rt_plan_density(p) == dens);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);

  /* Entries that cannot be this plan's tables are not used. */
  tab_entry te = {{0}, 0};
  assert_int_equal(rt_cache_list(&pe.cache, find_tables, &te, &e), SIEVE_OK);
  assert_int_equal(te.n, 1);
  void *blob;
  size_t n;
  assert_int_equal(rt_cache_load(&pe.cache, te.key, &blob, &n, &e), SIEVE_OK);
  assert_non_null(blob);
  /* The entry: magic, nclasses, heads, bytes, head_off_at, order_at,
  ** density (48 bytes), a layout (16), then the words. */
  uint64_t head_off_at;
  memcpy(&head_off_at, (char *)blob + 24, 8);
  double two = 2.0;
  uint64_t two_bits, four = 4, huge = 0x7fffffff, six = 6;
  memcpy(&two_bits, &two, 8);
  const struct { size_t at, size; uint64_t v; const char *why; } bad[] = {
    {0, 4, 0x58585858, "not a table entry"},
    {8, 4, 7, "classes or heads differ"},
    {16, 8, six, "sizes disagree"},
    {32, 8, four, "tile order out of place"},  /* an order where the plan has none */
    {40, 8, two_bits, "density out of range"},
    {64 + head_off_at, 4, huge, "a head's offset past the tables"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *b = malloc(n);
    memcpy(b, blob, n);
    memcpy(b + bad[i].at, &bad[i].v, bad[i].size);
    assert_int_equal(rt_cache_store(&pe.cache, te.key, b, n, &e), SIEVE_OK);
    free(b);
    p = make_plan(&pe);
    assert_false(rt_plan_stats_of(p)->tables_from_cache);
    if (!strstr(rt_plan_stats_of(p)->cache_note, bad[i].why)) fail_msg("case %zu, note: %s", i, rt_plan_stats_of(p)->cache_note);
    assert_int_equal(fk.htod_bytes, bytes);
    assert_true(fk.htod_sum == sum);
    assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
    p = make_plan(&pe);  /* the build stored a good entry again */
    assert_true(rt_plan_stats_of(p)->tables_from_cache);
    assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  }
  free(blob);
  /* =0: no tables read or kept. */
  setenv("SIEVE_TABLE_CACHE", "0", 1);
  p = make_plan(&pe);
  assert_false(rt_plan_stats_of(p)->tables_from_cache);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  assert_int_equal(fk.frees, fk.allocs);
  plan_env_close(&pe);
}

static void plan_tables_bring_their_layouts(void **st) {
  plan_env pe;
  setenv("SIEVE_TABLE_CACHE", "1", 1);
  plan_env_open(&pe, local_auto);
  const sieve_shape grid = {1, 2, 64, 4, 32, 96, 0, 0};
  pe.spec.shape = grid;
  cg_err e = {0};
  rt_plan *p = make_plan(&pe);
  cg_layout chose = rt_plan_spec_of(p)->pattern->classes[0].layout;
  assert_int_equal(chose.kind, CG_LAYOUT_TILE);
  assert_non_null(cg_layouts_ranking(rt_plan_spec_of(p)->pattern, &grid, 0));
  size_t bytes = fk.htod_bytes;
  uint64_t sum = fk.htod_sum;
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  plan_env_close(&pe);

  /* A fresh load of the script: the entry's choice, no ranking made. */
  plan_env_open(&pe, local_auto);
  pe.spec.shape = grid;
  p = make_plan(&pe);
  const cg_pattern *pt = rt_plan_spec_of(p)->pattern;
  assert_true(rt_plan_stats_of(p)->tables_from_cache);
  assert_true(rt_plan_stats_of(p)->from_cache);  /* the kernel's key names the same layout */
  assert_null(cg_layouts_ranking(pt, &grid, 0));
  assert_memory_equal(&pt->classes[0].layout, &chose, sizeof chose);
  assert_int_equal(fk.htod_bytes, bytes);
  assert_true(fk.htod_sum == sum);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);

  /* A layout that is none of the candidates is refused: the choice is made. */
  tab_entry te = {{0}, 0};
  assert_int_equal(rt_cache_list(&pe.cache, find_tables, &te, &e), SIEVE_OK);
  void *blob;
  size_t n;
  assert_int_equal(rt_cache_load(&pe.cache, te.key, &blob, &n, &e), SIEVE_OK);
  int32_t odd[4] = {CG_LAYOUT_TILE, 3, 5, 7};
  memcpy((char *)blob + 48, odd, sizeof odd);
  assert_int_equal(rt_cache_store(&pe.cache, te.key, blob, n, &e), SIEVE_OK);
  free(blob);
  plan_env_close(&pe);
  plan_env_open(&pe, local_auto);
  pe.spec.shape = grid;
  p = make_plan(&pe);
  assert_false(rt_plan_stats_of(p)->tables_from_cache);
  assert_non_null(strstr(rt_plan_stats_of(p)->cache_note, "tile{3,5,7} is none of sieve.layout.auto's candidates"));
  assert_memory_equal(&rt_plan_spec_of(p)->pattern->classes[0].layout, &chose, sizeof chose);
  assert_non_null(cg_layouts_ranking(rt_plan_spec_of(p)->pattern, &grid, 0));
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  assert_int_equal(fk.frees, fk.allocs);
  plan_env_close(&pe);
}

static void plan_tables_follow_the_step(void **st) {
  plan_env pe;
  plan_env_open(&pe, follows_step);
  cg_err e = {0};
  rt_plan *p = make_plan(&pe);
  double d0 = rt_plan_density(p);
  int htod = fk.htod;
  assert_int_equal(rt_plan_set_step(p, 1, 0, &e), SIEVE_OK);
  assert_int_equal(fk.htod_async, 0);  /* the upload waits for the run's stream */
  run_plan(p);
  assert_int_equal(fk.htod_async, 1);
  assert_int_equal(fk.htod, htod);
  assert_true(rt_plan_density(p) < d0);  /* anchors in frames 0, 3, then in 2 */
  run_plan(p);
  assert_int_equal(fk.htod_async, 1);  /* once per change */
  assert_int_equal(rt_plan_set_step(p, 1, 0, &e), SIEVE_OK);
  run_plan(p);
  assert_int_equal(fk.htod_async, 1);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  assert_int_equal(fk.frees, fk.allocs);
  plan_env_close(&pe);
}

static void plan_refuses_what_the_device_cannot_run(void **st) {
  plan_env pe;
  fk.smem_optin = 16384;
  plan_env_open(&pe, frame_window);
  cg_err e = {0};
  rt_plan *p = NULL;
  assert_int_equal(rt_plan_create(&pe.spec, &pe.dev, &pe.cache, &p, &e), SIEVE_ERR_UNSUPPORTED);
  assert_null(p);
  assert_non_null(strstr(e.msg, "shared memory"));
  pe.spec.arch = CG_SM90A;
  pe.dev.sm_minor = 9;
  assert_int_equal(rt_plan_create(&pe.spec, &pe.dev, &pe.cache, &p, &e), SIEVE_ERR_UNSUPPORTED);
  assert_non_null(strstr(e.msg, "sm_90a"));
  pe.spec.arch = CG_SM80;
  pe.dev.sm_major = 7;
  pe.dev.sm_minor = 5;
  assert_int_equal(rt_plan_create(&pe.spec, &pe.dev, &pe.cache, &p, &e), SIEVE_ERR_UNSUPPORTED);
  assert_non_null(strstr(e.msg, "sm_75"));
  assert_int_equal(fk.allocs, 0);
  pe.dev.sm_major = 9;
  pe.dev.sm_minor = 0;
  plan_env_close(&pe);
}

/* TMA as the driver would encode it, for the permute path. */
static CUresult f_tmap(CUtensorMap *m, CUtensorMapDataType t, unsigned rank, void *addr, const unsigned long long *dims,
                       const unsigned long long *strides, const unsigned *box, const unsigned *el, int il, int sw,
                       int l2, int fill) {
  memset(m, 0, sizeof *m);
  return (uintptr_t)addr % 16 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

static const char *transposed =
  "return sieve.pattern { name = 'tr', block = {q = 128, k = 128},\n"
  "  layout = sieve.layout.transpose, mask = sieve.frame_window(1) }\n";

/*
** A transposed layout on sm_90a: the TMA kernel with the permute. The plan
** holds Q, K, V in layout order (3 B H S D halves); a run launches the
** permute over the plan's grid, then the attention on the permuted copies;
** rows off 16 bytes take the 8-warp stand-in; a device with no room for
** the copies refuses the plan (SIEVE_ERR_LIMIT); SIEVE_PERMUTE=0 keeps the
** 8-warp kernel with no copies.
*/
static void plan_permutes_other_layouts(void **st) {
  plan_env pe;
  plan_env_open(&pe, transposed);
  fake.cuTensorMapEncodeTiled = f_tmap;
  pe.spec.arch = CG_SM90A;
  cg_err e = {0};
  int a0 = fk.allocs;
  rt_plan *p = make_plan(&pe);
  const rt_plan_stats *ps = rt_plan_stats_of(p);
  assert_int_equal(rt_plan_spec_of(p)->cfg.warps, CG_WS_WARPS);
  /* A plan that shares p's permute memory allocates one buffer less. */
  int a1 = fk.allocs;
  pe.spec.share = p;
  rt_plan *q = make_plan(&pe);
  pe.spec.share = NULL;
  assert_int_equal(fk.allocs - a1, a1 - a0 - 1);
  assert_int_equal(rt_plan_stats_of(q)->permute_bytes, 3 * 2 * 2 * 256 * 64);
  assert_int_equal(rt_plan_free(q, &e), SIEVE_OK);
  fk.launches = 0;
  assert_int_equal(ps->permute_bytes, 3 * 2 * 2 * 256 * 64);
  run_plan(p);
  assert_int_equal(fk.launches, 2);
  unsigned perm[4] = {256 * 8 / CG_PERMUTE_THREADS, 2, 1, CG_PERMUTE_THREADS};
  assert_memory_equal(fk.grids[0], perm, sizeof perm);
  assert_int_equal(fk.grids[1][0], 2);  /* 256 query rows, 128 a CTA */
  assert_int_equal(fk.grids[1][3], 32 * CG_WS_WARPS);
  assert_true(*(CUdeviceptr *)fk.params[0] != 0x10000);  /* Q: the permuted copy */
  assert_int_equal(*(CUdeviceptr *)fk.params[3], 0x10000);  /* O: the caller's */
  sieve_tensor odd = {0x10008, 256 * 2 * 64, 256 * 64, 64};
  assert_int_equal(rt_plan_run(p, &odd, &odd, &odd, &odd, 0x20000, 0, NULL, &e), SIEVE_OK);
  assert_int_equal(fk.launches, 3);
  assert_int_equal(fk.grids[2][3], 32 * 8);
  assert_int_equal(ps->stand_ins, 1);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  assert_int_equal(fk.frees, fk.allocs);
  fk.alloc_limit = 100000;
  assert_int_equal(rt_plan_create(&pe.spec, &pe.dev, &pe.cache, &p, &e), SIEVE_ERR_LIMIT);
  assert_null(p);
  assert_non_null(strstr(e.msg, "permute"));
  assert_int_equal(fk.frees, fk.allocs);
  fk.alloc_limit = 0;
  setenv("SIEVE_PERMUTE", "0", 1);
  p = make_plan(&pe);
  unsetenv("SIEVE_PERMUTE");
  assert_int_equal(rt_plan_spec_of(p)->cfg.warps, 8);
  assert_int_equal(rt_plan_stats_of(p)->permute_bytes, 0);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  fake.cuTensorMapEncodeTiled = NULL;
  plan_env_close(&pe);
}

/*
** A persistent config (cg_attn_sched.h): one launch of as many CTAs as the
** device has multiprocessors, or as tiles when there are fewer, or as
** $SIEVE_SCHED_CTAS says; the tile order, its count and the counter after
** the tensor maps. A run over some heads walks the identity order over
** just those heads' tiles.
*/
static void plan_walks_tiles_persistently(void **st) {
  plan_env pe;
  plan_env_open(&pe, frame_window);
  fake.cuTensorMapEncodeTiled = f_tmap;
  pe.spec.arch = CG_SM90A;
  pe.spec.cfg = (cg_attn_config){128, 128, CG_WS_WARPS, 2, CG_SCHED_ATOMIC};
  cg_err e = {0};
  rt_plan *p = make_plan(&pe);
  assert_non_null(strstr(rt_plan_kernel(p), "_pa"));
  fk.launches = 0;
  run_plan(p);
  assert_int_equal(fk.launches, 1);
  unsigned all[4] = {4, 1, 1, 32 * CG_WS_WARPS};  /* 2 heads x 2 tiles of 128 rows */
  assert_memory_equal(fk.grids[0], all, sizeof all);
  CUdeviceptr order = *(CUdeviceptr *)fk.params[26];
  assert_int_equal(*(int32_t *)fk.params[27], 4);
  assert_int_equal(*(int32_t *)fk.params[28], 4);
  assert_int_equal(*(CUdeviceptr *)fk.params[29], order + 2 * 4 * 4);
  sieve_tensor t = {0x10000, 256 * 2 * 64, 256 * 64, 64};
  assert_int_equal(rt_plan_run_part(p, 0, 1, 1, &t, &t, &t, &t, 0x20000, 0, NULL, &e), SIEVE_OK);
  unsigned part[4] = {2, 1, 1, 32 * CG_WS_WARPS};
  assert_memory_equal(fk.grids[1], part, sizeof part);
  assert_int_equal(*(CUdeviceptr *)fk.params[26], order + 4 * 4);
  assert_int_equal(*(int32_t *)fk.params[27], 2);
  assert_int_equal(*(int32_t *)fk.params[28], 2);
  run_plan(p);
  assert_int_equal(*(CUdeviceptr *)fk.params[26], order);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  setenv("SIEVE_SCHED_CTAS", "3", 1);
  p = make_plan(&pe);
  unsetenv("SIEVE_SCHED_CTAS");
  run_plan(p);
  assert_int_equal(fk.grids[3][0], 3);
  assert_int_equal(rt_plan_free(p, &e), SIEVE_OK);
  /* The schedule needs the warp-specialised kernel. */
  pe.spec.cfg = (cg_attn_config){128, 128, 8, 2, CG_SCHED_STATIC};
  assert_int_equal(rt_plan_create(&pe.spec, &pe.dev, &pe.cache, &p, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "persistent"));
  fake.cuTensorMapEncodeTiled = NULL;
  plan_env_close(&pe);
}

static void public_plan_api(void **st) {
  sieve_ctx *ctx;
  sieve_pattern *pat;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  assert_int_equal(sieve_cache_set_dir(ctx, plan_dir), SIEVE_OK);
  assert_int_equal(sieve_pattern_load_string(ctx, "t.lua", frame_window, NULL, &pat), SIEVE_OK);
  sieve_plan *plan;
  /* No current context: device 0's primary one is opened for the context. */
  if (sieve_plan_create(ctx, pat, &small, SIEVE_BF16, NULL, &plan)) fail_msg("%s", sieve_errmsg(ctx));
  assert_int_equal(fk.retains, 1);
  sieve_config cfg;
  sieve_plan_config(plan, &cfg);
  assert_true(cfg.block_m > 0 && cfg.warps > 0);
  assert_true(sieve_plan_density(plan) > 0);
  sieve_tensor t = {0x10000, 256 * 2 * 64, 256 * 64, 64}, bad = t;
  bad.ptr += 2;
  assert_int_equal(sieve_attention(plan, &t, &t, &t, &bad, 0x20000, 0, NULL), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "o is not 16-byte aligned"));
  assert_int_equal(sieve_attention(plan, &t, &t, &t, &t, 0, 0, NULL), SIEVE_ERR_ARG);
  assert_int_equal(fk.launches, 0);
  assert_int_equal(sieve_attention(plan, &t, &t, &t, &t, 0x20000, 0, NULL), SIEVE_OK);
  assert_string_equal(sieve_errmsg(ctx), "");
  fk.launch = CUDA_ERROR_INVALID_VALUE;
  assert_int_equal(sieve_attention(plan, &t, &t, &t, &t, 0x20000, 0, NULL), SIEVE_ERR_CUDA);
  assert_non_null(strstr(sieve_errmsg(ctx), "cuLaunchKernel failed"));
  fk.launch = CUDA_SUCCESS;
  assert_int_equal(sieve_plan_set_step(plan, 3, 1), SIEVE_OK);
  sieve_plan_free(plan);
  assert_int_equal(fk.frees, fk.allocs);

  /* With a context current on the thread, plans use it and retain nothing. */
  sieve_ctx *ctx2;
  assert_int_equal(sieve_open(&ctx2), SIEVE_OK);
  assert_int_equal(sieve_cache_set_dir(ctx2, plan_dir), SIEVE_OK);
  fk.current = FAKE_CTX(100);
  assert_int_equal(sieve_plan_create(ctx2, pat, &small, SIEVE_BF16, NULL, &plan), SIEVE_OK);
  assert_int_equal(fk.retains, 1);
  sieve_plan_free(plan);
  sieve_close(ctx2);

  sieve_pattern_free(pat);
  sieve_close(ctx);
  assert_int_equal(fk.releases, 1);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(missing_library),
    cmocka_unit_test(library_without_the_symbols),
    cmocka_unit_test(env_overrides_path),
    cmocka_unit_test(default_load_is_clean),
    cmocka_unit_test(error_names_without_the_driver_strings),
    cmocka_unit_test_setup_teardown(link_compiles_and_keeps_the_ptx, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(link_failure_keeps_the_log, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(loading_a_cubin_skips_linking, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(kernels_opt_into_shared_memory, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(launches_are_checked, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(devices, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(public_device_api, with_fake, without_fake),
    cmocka_unit_test_setup_teardown(plan_cold_then_warm, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_rebuilds_a_damaged_entry, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_key_names_everything, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_key_names_auto_layouts, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_tables_from_the_cache, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_tables_bring_their_layouts, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_tables_follow_the_step, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_refuses_what_the_device_cannot_run, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_permutes_other_layouts, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(plan_walks_tiles_persistently, with_fake_and_cache, without_fake_and_cache),
    cmocka_unit_test_setup_teardown(public_plan_api, with_fake_and_cache, without_fake_and_cache),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
