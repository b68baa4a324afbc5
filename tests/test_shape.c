/*
** Shape presets and the limits sieve_shape_check enforces.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sieve.h"

static void presets(void **st) {
  static const struct { const char *name; int heads, dim, T, Y, X, text; } want[] = {
    {"wan-1.3b-480p", 12, 128, 21, 30, 52, 0},
    {"wan-14b-720p", 40, 128, 21, 45, 80, 0},
    {"hunyuan-720p", 24, 128, 33, 45, 80, 0},
    {"cogvideox-1.5", 48, 64, 11, 48, 85, 226},
  };
  int n = 0;
  while (sieve_shape_preset_name(n)) n++;
  assert_int_equal(n, 4);
  assert_null(sieve_shape_preset_name(-1));
  for (int i = 0; i < 4; i++) {
    sieve_shape s;
    assert_string_equal(sieve_shape_preset_name(i), want[i].name);
    assert_int_equal(sieve_shape_preset(want[i].name, &s), SIEVE_OK);
    assert_int_equal(s.batch, 1);
    assert_int_equal(s.heads, want[i].heads);
    assert_int_equal(s.head_dim, want[i].dim);
    assert_int_equal(s.frames, want[i].T);
    assert_int_equal(s.height, want[i].Y);
    assert_int_equal(s.width, want[i].X);
    assert_int_equal(s.text, want[i].text);
    assert_int_equal(s.text_after, 0);
    assert_int_equal(sieve_shape_check(NULL, &s), SIEVE_OK);
  }
  sieve_shape s;
  assert_int_equal(sieve_shape_preset("hunyuan-720p", &s), SIEVE_OK);
  assert_int_equal(sieve_shape_tokens(&s), 118800);
  assert_int_equal(sieve_shape_preset("cogvideox-1.5", &s), SIEVE_OK);
  assert_int_equal(sieve_shape_tokens(&s), 11 * 48 * 85 + 226);
  assert_int_equal(sieve_shape_preset("nope", &s), SIEVE_ERR_ARG);
  assert_int_equal(sieve_shape_preset(NULL, &s), SIEVE_ERR_ARG);
}

/* A bad field gives SIEVE_ERR_SHAPE and a message naming it. */
static void expect_bad(sieve_ctx *ctx, sieve_shape s, const char *field) {
  assert_int_equal(sieve_shape_check(ctx, &s), SIEVE_ERR_SHAPE);
  if (!strstr(sieve_errmsg(ctx), field)) fail_msg("'%s' does not name %s", sieve_errmsg(ctx), field);
}

static void checks(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape ok = {1, 2, 128, 3, 4, 5, 7, 1};
  assert_int_equal(sieve_shape_check(ctx, &ok), SIEVE_OK);
  assert_string_equal(sieve_errmsg(ctx), "");
  sieve_shape s = ok;
  s.frames = 0, expect_bad(ctx, s, "frames");
  s = ok, s.height = -1, expect_bad(ctx, s, "height");
  s = ok, s.width = 0, expect_bad(ctx, s, "width");
  s = ok, s.heads = 0, expect_bad(ctx, s, "heads");
  s = ok, s.batch = 0, expect_bad(ctx, s, "batch");
  s = ok, s.text = -3, expect_bad(ctx, s, "text");
  s = ok, s.text_after = 2, expect_bad(ctx, s, "text_after");
  s = ok, s.head_dim = 96, expect_bad(ctx, s, "head_dim");
  s = ok, s.heads = 5000, expect_bad(ctx, s, "heads");
  /* 32-bit indexing: 2^30 tokens and more are refused, products that would
  ** overflow even 64 bits included. */
  s = ok, s.frames = 1024, s.height = 1024, s.width = 1024, s.text = 0, expect_bad(ctx, s, "2^30");
  s.width = 1023, s.text = 1024 * 1024;
  expect_bad(ctx, s, "2^30");
  s.text = 1024 * 1024 - 1;
  assert_int_equal(sieve_shape_check(ctx, &s), SIEVE_OK);
  s = ok, s.frames = s.height = s.width = 2147483647, expect_bad(ctx, s, "2^30");
  assert_int_equal(sieve_shape_check(NULL, &s), SIEVE_ERR_SHAPE);
  assert_int_equal(sieve_shape_check(ctx, NULL), SIEVE_ERR_ARG);
  sieve_close(ctx);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(presets),
    cmocka_unit_test(checks),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
