#include "rt_tmap.h"

#include <stdlib.h>
#include <string.h>

int rt_tmap_off(void) {
  const char *v = getenv("SIEVE_TMA");
  return v && !strcmp(v, "0");
}

int rt_tmap_encode(const rt_cuda *cu, CUtensorMap *m, cg_dtype dtype, const sieve_shape *sh, unsigned heads,
                   unsigned batch, const sieve_tensor *t, int rows) {
  if (!cu->cuTensorMapEncodeTiled) return 0;
  unsigned long long dims[4] = {(unsigned long long)sh->head_dim, (unsigned long long)sieve_shape_tokens(sh), heads,
                                batch};
  int64_t st[3] = {t->stride_s, t->stride_h, t->stride_b};
  unsigned long long strides[3];
  for (int i = 0; i < 3; i++) {
    /* A dimension of one element has no step; any valid one will do. */
    if (dims[i + 1] == 1) st[i] = 8;
    if (st[i] <= 0) return 0;
    strides[i] = 2ull * (unsigned long long)st[i];
  }
  unsigned box[4] = {64, (unsigned)rows, 1, 1}, one[4] = {1, 1, 1, 1};
  int type = dtype == CG_FP16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return cu->cuTensorMapEncodeTiled(m, type, 4, (void *)(uintptr_t)t->ptr, dims, strides, box, one,
                                    CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}
