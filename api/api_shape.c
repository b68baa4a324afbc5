/*
** Shapes: presets for real models, and the public check.
*/
#include <string.h>

#include "api.h"
#include "cg_shape.h"

typedef struct preset {
  const char *name;
  sieve_shape s;
} preset;

/* batch, heads, head_dim, frames, height, width, text, text_after */
static const preset presets[] = {
  {"wan-1.3b-480p", {1, 12, 128, 21, 30, 52, 0, 0}},
  {"wan-14b-720p", {1, 40, 128, 21, 45, 80, 0, 0}},
  {"hunyuan-720p", {1, 24, 128, 33, 45, 80, 0, 0}},
  {"cogvideox-1.5", {1, 48, 64, 11, 48, 85, 226, 0}},
};
#define NPRESETS ((int)(sizeof presets / sizeof presets[0]))

const char *sieve_shape_preset_name(int i) { return i >= 0 && i < NPRESETS ? presets[i].name : NULL; }

sieve_status sieve_shape_preset(const char *name, sieve_shape *out) {
  for (int i = 0; name && out && i < NPRESETS; i++)
    if (!strcmp(name, presets[i].name)) {
      *out = presets[i].s;
      return SIEVE_OK;
    }
  return SIEVE_ERR_ARG;
}

sieve_status sieve_shape_check(sieve_ctx *ctx, const sieve_shape *s) {
  cg_err e = {0};
  cg_shape_check(s, &e);
  return api_ret(ctx, &e);
}
