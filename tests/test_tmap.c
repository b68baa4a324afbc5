/*
** The tensor maps the TMA kernels read (rt_tmap), against a stand-in for
** the driver's encoder that records what it was asked: the 4-D view
** (D, S, H, B) in bytes, the box, the swizzle, and the cases that must
** fall back to the copy kernels without asking the driver.
*/
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rt_tmap.h"

static struct {
  int calls, type, swizzle;
  unsigned rank;
  void *addr;
  unsigned long long dims[4], strides[3];
  unsigned box[4];
  CUresult answer;
} seen;

static CUresult encode(CUtensorMap *map, CUtensorMapDataType type, unsigned rank, void *addr,
                       const unsigned long long *dims, const unsigned long long *strides, const unsigned *box,
                       const unsigned *elem_strides, int interleave, int swizzle, int l2, int oob) {
  (void)map, (void)elem_strides, (void)interleave, (void)l2, (void)oob;
  seen.calls++;
  seen.type = type;
  seen.rank = rank;
  seen.addr = addr;
  seen.swizzle = swizzle;
  memcpy(seen.dims, dims, sizeof seen.dims);
  memcpy(seen.strides, strides, sizeof seen.strides);
  memcpy(seen.box, box, sizeof seen.box);
  return seen.answer;
}

static rt_cuda driver(void) {
  rt_cuda cu;
  memset(&cu, 0, sizeof cu);
  cu.cuTensorMapEncodeTiled = encode;
  memset(&seen, 0, sizeof seen);
  return cu;
}

static sieve_shape shape(int heads, int batch) {
  sieve_shape s = {.batch = batch, .heads = heads, .head_dim = 128, .frames = 3, .height = 5, .width = 7, .text = 9};
  return s;
}

/* B H S D contiguous: the strides in bytes, S with the text tokens. */
static void bhsd_view(void **st) {
  (void)st;
  rt_cuda cu = driver();
  sieve_shape s = shape(3, 2);
  int64_t S = sieve_shape_tokens(&s), D = s.head_dim;
  sieve_tensor k = {.ptr = 0x10000, .stride_b = 3 * S * D, .stride_h = S * D, .stride_s = D};
  CUtensorMap m;
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_BF16, &s, 3, 2, &k, 64), 1);
  assert_int_equal(seen.calls, 1);
  assert_int_equal(seen.rank, 4);
  assert_int_equal(seen.type, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
  assert_int_equal(seen.swizzle, CU_TENSOR_MAP_SWIZZLE_128B);
  assert_ptr_equal(seen.addr, (void *)(uintptr_t)0x10000);
  unsigned long long dims[4] = {128, (unsigned long long)S, 3, 2};
  unsigned long long strides[3] = {2ull * D, 2ull * S * D, 6ull * S * D};
  assert_memory_equal(seen.dims, dims, sizeof dims);
  assert_memory_equal(seen.strides, strides, sizeof strides);
  assert_int_equal(seen.box[0], 64);
  assert_int_equal(seen.box[1], 64);
  assert_int_equal(seen.box[2], 1);
  assert_int_equal(seen.box[3], 1);
  /* fp16 and another box */
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_FP16, &s, 3, 2, &k, 128), 1);
  assert_int_equal(seen.type, CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
  assert_int_equal(seen.box[1], 128);
}

/* A dimension of one element: its stride (which a caller may leave 0)
** becomes any valid one, as the driver checks every stride. */
static void single_head_and_batch(void **st) {
  (void)st;
  rt_cuda cu = driver();
  sieve_shape s = shape(1, 1);
  sieve_tensor k = {.ptr = 0x20000, .stride_b = 0, .stride_h = 0, .stride_s = 128};
  CUtensorMap m;
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_BF16, &s, 1, 1, &k, 64), 1);
  assert_int_equal(seen.strides[0], 256);
  assert_int_equal(seen.strides[1], 16);
  assert_int_equal(seen.strides[2], 16);
}

/* What the driver is never asked: a stride of 0 or below on a real
** dimension, or a driver without the encoder; and what it refuses. */
static void copy_kernel_cases(void **st) {
  (void)st;
  rt_cuda cu = driver();
  sieve_shape s = shape(3, 2);
  sieve_tensor k = {.ptr = 0x10000, .stride_b = 0, .stride_h = 128, .stride_s = 128 * 3};
  CUtensorMap m;
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_BF16, &s, 3, 2, &k, 64), 0);
  k.stride_b = -1;
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_BF16, &s, 3, 2, &k, 64), 0);
  assert_int_equal(seen.calls, 0);
  k.stride_b = 1 << 20;
  seen.answer = 1; /* CUDA_ERROR_INVALID_VALUE: an unaligned base, say */
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_BF16, &s, 3, 2, &k, 64), 0);
  assert_int_equal(seen.calls, 1);
  cu.cuTensorMapEncodeTiled = NULL;
  assert_int_equal(rt_tmap_encode(&cu, &m, CG_BF16, &s, 3, 2, &k, 64), 0);
  assert_int_equal(seen.calls, 1);
}

static void switched_off_by_the_environment(void **st) {
  (void)st;
  unsetenv("SIEVE_TMA");
  assert_int_equal(rt_tmap_off(), 0);
  setenv("SIEVE_TMA", "1", 1);
  assert_int_equal(rt_tmap_off(), 0);
  setenv("SIEVE_TMA", "0", 1);
  assert_int_equal(rt_tmap_off(), 1);
  unsetenv("SIEVE_TMA");
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(bhsd_view),
    cmocka_unit_test(single_head_and_batch),
    cmocka_unit_test(copy_kernel_cases),
    cmocka_unit_test(switched_off_by_the_environment),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
