/*
** Shapes: the token count, the limits sieve can index, and the shape a
** pattern runs on.
*/
#include "cg_shape.h"

int64_t sieve_shape_tokens(const sieve_shape *s) {
  if (!s || s->text < 0 || s->frames < 0 || s->height < 0 || s->width < 0) return -1;
  /* Sizes up to INT_MAX each: the product of three can pass 2^63. */
  int64_t n;
  if (__builtin_mul_overflow((int64_t)s->frames * s->height, (int64_t)s->width, &n) ||
      __builtin_add_overflow(n, (int64_t)s->text, &n))
    return -1;
  return n;
}

/*
** Kernels index tokens with 32-bit integers and add offsets to them, so the
** sequence must stay below 2^30 tokens: twice the length still fits.
*/
#define MAX_TOKENS ((int64_t)1 << 30)

sieve_status cg_shape_check(const sieve_shape *s, cg_err *e) {
  if (!s) return cg_fail(e, SIEVE_ERR_ARG, "no shape");
  const struct { const char *name; int v; } pos[] = {
    {"batch", s->batch}, {"heads", s->heads}, {"frames", s->frames},
    {"height", s->height}, {"width", s->width},
  };
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (pos[i].v <= 0)
      return cg_fail(e, SIEVE_ERR_SHAPE, "shape: %s must be positive (got %d)%s", pos[i].name,
                     pos[i].v, pos[i].v == 0 && i >= 2 ? "; give a shape, or declare the pattern's "
                     "geometry {frames=, height=, width=}" : "");
  if (s->text < 0) return cg_fail(e, SIEVE_ERR_SHAPE, "shape: text must not be negative (got %d)", s->text);
  if (s->text_after != 0 && s->text_after != 1)
    return cg_fail(e, SIEVE_ERR_SHAPE, "shape: text_after must be 0 or 1 (got %d)", s->text_after);
  if (s->head_dim != 64 && s->head_dim != 128)
    return cg_fail(e, SIEVE_ERR_SHAPE, "shape: head_dim must be 64 or 128 (got %d)", s->head_dim);
  if (s->heads > CG_MAX_HEADS)
    return cg_fail(e, SIEVE_ERR_SHAPE, "shape: heads must be at most %d (got %d)", CG_MAX_HEADS, s->heads);
  /* Each factor is below 2^31, so no product of two overflows int64; stop
  ** before a third could. */
  int64_t video = (int64_t)s->frames * s->height;
  if (video >= MAX_TOKENS || video * s->width >= MAX_TOKENS ||
      video * s->width + s->text >= MAX_TOKENS)
    return cg_fail(e, SIEVE_ERR_SHAPE,
                   "shape: tokens (frames*height*width + text) must be below 2^30 for 32-bit indexing");
  cg_err_clear(e);
  return SIEVE_OK;
}

void cg_shape_for(const cg_pattern *p, const sieve_shape *s, sieve_shape *out) {
  *out = *s;
  if (out->frames <= 0 && p->frames > 0) out->frames = p->frames;
  if (out->height <= 0 && p->height > 0) out->height = p->height;
  if (out->width <= 0 && p->width > 0) out->width = p->width;
  if (p->text >= 0) out->text = p->text;
  if (p->text_after >= 0) out->text_after = p->text_after;
}
