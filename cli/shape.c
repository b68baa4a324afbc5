/*
** The shape a command runs on: a preset, explicit sizes, or a preset with
** some fields overridden. The library's sieve_shape_check has the last word
** on what sieve can run.
*/
#include "cli.h"

#include <stdio.h>
#include <string.h>

void cli_shape_describe(const sieve_shape *s, char *buf, size_t len) {
  char text[64] = "";
  if (s->text)
    snprintf(text, sizeof text, ", %d text %s", s->text, s->text_after ? "after" : "before");
  snprintf(buf, len, "T%d Y%d X%d%s, %d head%s, D%d", s->frames, s->height, s->width, text,
           s->heads, s->heads == 1 ? "" : "s", s->head_dim);
}

static int unknown_shape(const char *name) {
  char valid[512] = "";
  size_t n = 0;
  for (int i = 0; sieve_shape_preset_name(i) && n < sizeof valid; i++)
    n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%s", i ? ", " : "",
                          sieve_shape_preset_name(i));
  return cli_fail(CLI_USAGE, "unknown shape '%s' (valid: %s)", name, valid);
}

/* With no sizes at all the grid stays 0 and the pattern's own geometry
** fills it (sieve_pattern_shape); the library names what is still missing. */
static int from_flags(const cli_common *c, sieve_shape *s) {
  int none = c->frames < 0 && c->height < 0 && c->width < 0;
  const char *miss = c->frames < 0 ? "--frames" : c->height < 0 ? "--height" : "--width";
  if (!none && (c->frames < 0 || c->height < 0 || c->width < 0))
    return cli_fail(CLI_USAGE, "%s missing (without --shape, give --frames, --height and --width)",
                    miss);
  memset(s, 0, sizeof *s);
  s->batch = 1;
  s->heads = 1;
  s->head_dim = 128;
  return CLI_OK;
}

static void override(int *field, int v) {
  if (v >= 0) *field = v;
}

int cli_shape(sieve_ctx *ctx, const cli_common *c, sieve_shape *s) {
  if (c->shape_name) {
    if (sieve_shape_preset(c->shape_name, s) != SIEVE_OK) return unknown_shape(c->shape_name);
  } else if (from_flags(c, s)) {
    return CLI_USAGE;
  }
  override(&s->frames, c->frames);
  override(&s->height, c->height);
  override(&s->width, c->width);
  override(&s->text, c->text);
  override(&s->heads, c->heads);
  override(&s->head_dim, c->head_dim);
  if (c->text_after) s->text_after = 1;
  if (!s->frames && !s->height && !s->width) return CLI_OK;
  sieve_status st = sieve_shape_check(ctx, s);
  return st == SIEVE_OK ? CLI_OK : cli_lib_fail(ctx, st, NULL);
}

void cli_shape_line(const cli_common *c, const sieve_shape *s, char *buf, size_t len) {
  char d[160];
  cli_shape_describe(s, d, sizeof d);
  if (c->shape_name) snprintf(buf, len, "%s: %s", c->shape_name, d);
  else snprintf(buf, len, "%s", d);
}
