/*
** GPU checks of the dynamic-pattern kernels (rt_dyn.h): the block-table
** builder against the CPU builder, its interval test and brute force;
** AdaSpa's block masses and selection against float64 CPU references;
** SVG's profiling against a float64 CPU reference; and each method end to
** end from its shipped pattern script.
*/
#ifndef GPU_DYN_H
#define GPU_DYN_H

#include "gpu.h"
#include "rt_dyn.h"

/* The "dyn" group of gpu_tests. */
void gpu_dyn(gpu_env *env);

void gpu_dyn_tables(gpu_env *env);
/* The "gtab" group: every shipped pattern and the bench's Lua-predicate
** ones, GPU tables against CPU tables and brute force, and timed on
** hunyuan-720p; "gtab_small" the small shapes alone (for the sanitizers). */
void gpu_dyn_tables_all(gpu_env *env);
void gpu_dyn_tables_small(gpu_env *env);
void gpu_dyn_search(gpu_env *env);
void gpu_dyn_search_adaspa(gpu_env *env);
void gpu_dyn_profile(gpu_env *env);

/* Q, K, V, O (16-bit, [B][H][S][D] contiguous) and the LSE ([B][H][S]
** f32) on the device, with their tensors. */
typedef struct gpu_bhsd {
  CUdeviceptr q, k, v, o, lse;
  sieve_tensor tq, tk, tv, to;
  size_t n;  /* elements of each of Q, K, V, O */
} gpu_bhsd;
/* Allocates all five (0, or -1 when the driver refuses). */
int gpu_bhsd_alloc(const gpu_env *env, gpu_bhsd *t, int B, int H, int64_t S, int D);
/* Uploads Q (which 0), K (1) or V (2) from n 16-bit values. */
int gpu_bhsd_put(const gpu_env *env, gpu_bhsd *t, int which, const uint16_t *bits);
void gpu_bhsd_free(const gpu_env *env, gpu_bhsd *t);

/* Shared by the parts. */
void gpu_dyn_verdict(gpu_env *env, int ok, const char *label, const char *why);
sieve_pattern *gpu_dyn_load(gpu_env *env, const char *name, const char *const *ov, char *why, size_t n);
const rt_device *gpu_dyn_device(gpu_env *env);

#endif
