/*
** GPU checks of tables at the kernel's tile (gpu_tiles.c): the group
** tiletab, and tsan, its small cases for compute-sanitizer.
*/
#ifndef GPU_TILES_H
#define GPU_TILES_H

#include "gpu.h"

void gpu_tiles(gpu_env *env);
void gpu_tiles_sanitize(gpu_env *env);

#endif
