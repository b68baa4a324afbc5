/*
** The public API on NULL and hostile arguments: no call crashes, every
** SIEVE_ERR_ARG leaves a message of its own in the context (not the last
** call's), and calls that make plans check their input before they look
** for a driver.
*/
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sieve.h"

static void null_handles_do_not_crash(void **st) {
  sieve_shape s = {1, 2, 64, 2, 8, 8, 0, 0}, out;
  assert_int_equal(sieve_shape_tokens(NULL), -1);
  sieve_pattern_shape(NULL, &s, &out);
  assert_memory_equal(&out, &s, sizeof s);
  sieve_pattern_shape(NULL, NULL, &out);
  assert_int_equal(out.frames, 0);
  sieve_pattern_shape(NULL, &s, NULL);
  sieve_config c = {1, 2, 3, 4};
  sieve_plan_config(NULL, &c);
  assert_int_equal(c.block_m, 0);
  sieve_plan_config(NULL, NULL);
  assert_true(sieve_plan_density(NULL) == 0.0);
  sieve_tables_info_get(NULL, NULL);
  assert_int_equal(sieve_tables_head_table(NULL, 0), -1);
  sieve_dynplan_info di;
  assert_int_equal(sieve_dynplan_info_get(NULL, &di), SIEVE_ERR_ARG);
  assert_int_equal(sieve_dynplan_blocks(NULL, NULL, NULL, NULL), SIEVE_ERR_ARG);
  assert_int_equal(sieve_dynplan_classes(NULL, NULL, NULL, NULL), SIEVE_ERR_ARG);
  assert_null(sieve_dynplan_class_name(NULL, 0));
}

/* INT_MAX sizes: the count would pass 2^63; it is refused, not wrapped. */
static void token_count_does_not_overflow(void **st) {
  sieve_shape s = {1, 1, 64, INT_MAX, INT_MAX, INT_MAX, INT_MAX, 0};
  assert_int_equal(sieve_shape_tokens(&s), -1);
  s.frames = -1;
  assert_int_equal(sieve_shape_tokens(&s), -1);
  s = (sieve_shape){1, 1, 64, INT_MAX, INT_MAX, 1, INT_MAX, 0};
  assert_int_equal(sieve_shape_tokens(&s), (int64_t)INT_MAX * INT_MAX + INT_MAX);
}

/* Each SIEVE_ERR_ARG replaces whatever message the context held. */
static void arg_errors_have_their_own_message(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_pattern *p = NULL;
  assert_int_equal(sieve_pattern_load_string(ctx, "t.lua", "return sieve.pattern{name='d', mask=sieve.dense()}",
                                             NULL, &p), SIEVE_OK);
  sieve_shape s = {1, 2, 64, 2, 8, 8, 0, 0};
  static const char stale[] = "t.lua:1: stale";
#define STALE() sieve_pattern_load_string(ctx, "t.lua", "error('stale')", NULL, &(sieve_pattern *){NULL})
  STALE();
  assert_int_equal(sieve_plan_create(ctx, p, &s, SIEVE_BF16, NULL, NULL), SIEVE_ERR_ARG);
  assert_string_equal(sieve_errmsg(ctx), "sieve_plan_create: out is NULL");
  STALE();
  assert_int_equal(sieve_cache_dir(ctx, NULL), SIEVE_ERR_ARG);
  assert_null(strstr(sieve_errmsg(ctx), stale));
  assert_non_null(strstr(sieve_errmsg(ctx), "sieve_cache_dir"));
  STALE();
  assert_int_equal(sieve_cache_list(ctx, NULL, NULL), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "sieve_cache_list"));
  STALE();
  assert_int_equal(sieve_cache_stats(ctx, NULL), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "sieve_cache_stats"));
  STALE();
  assert_int_equal(sieve_dynplan_create(ctx, p, &s, SIEVE_BF16, NULL), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "sieve_dynplan_create"));
  sieve_pattern_free(p);
  sieve_close(ctx);
}

/* With no driver to be found, bad input is still bad input. */
static void plans_check_input_before_the_driver(void **st) {
  setenv("SIEVE_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_pattern *p = NULL;
  assert_int_equal(sieve_pattern_load_string(ctx, "t.lua", "return sieve.pattern{name='d', mask=sieve.dense()}",
                                             NULL, &p), SIEVE_OK);
  sieve_plan *plan = NULL;
  sieve_shape s = {1, 2, 96, 2, 8, 8, 0, 0};
  assert_int_equal(sieve_plan_create(ctx, p, &s, SIEVE_BF16, NULL, &plan), SIEVE_ERR_SHAPE);
  assert_non_null(strstr(sieve_errmsg(ctx), "head_dim must be 64 or 128"));
  s.head_dim = 64;
  s.frames = 0;
  assert_int_equal(sieve_plan_create(ctx, p, &s, SIEVE_BF16, NULL, &plan), SIEVE_ERR_SHAPE);
  s.frames = 2;
  sieve_config bad = {48, 64, 4, 2};
  assert_int_equal(sieve_plan_create(ctx, p, &s, SIEVE_BF16, &bad, &plan), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "block_m must be 64, 128 or 192"));
  bad = (sieve_config){64, 64, 16, 2};
  assert_int_equal(sieve_plan_create(ctx, p, &s, SIEVE_BF16, &bad, &plan), SIEVE_ERR_ARG);
  assert_int_equal(sieve_plan_create(ctx, p, &s, (sieve_dtype)7, NULL, &plan), SIEVE_ERR_ARG);
  /* Good input gets as far as the driver. */
  assert_int_equal(sieve_plan_create(ctx, p, &s, SIEVE_BF16, NULL, &plan), SIEVE_ERR_NO_DRIVER);
  assert_null(plan);
  sieve_pattern_free(p);
  sieve_close(ctx);
  unsetenv("SIEVE_LIBCUDA");
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(null_handles_do_not_crash),
    cmocka_unit_test(token_count_does_not_overflow),
    cmocka_unit_test(arg_errors_have_their_own_message),
    cmocka_unit_test(plans_check_input_before_the_driver),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
