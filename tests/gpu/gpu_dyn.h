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
void gpu_dyn_search(gpu_env *env);
void gpu_dyn_profile(gpu_env *env);

/* Shared by the parts. */
void gpu_dyn_verdict(gpu_env *env, int ok, const char *label, const char *why);
sieve_pattern *gpu_dyn_load(gpu_env *env, const char *name, const char *const *ov, char *why, size_t n);
const rt_device *gpu_dyn_device(gpu_env *env);

#endif
