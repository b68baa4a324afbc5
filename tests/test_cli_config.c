/*
** Kernel configs from the command line (cli/config.c): a config that names
** only the schedule is a given config, and the fields it names replace the
** target's default while the rest keep it. A sched-only config once fell
** through to the default schedule while `sieve run` reported it as given.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cli.h"

static void assert_config(const sieve_config *c, int bm, int bn, int warps, int stages, int sched) {
  assert_int_equal(c->block_m, bm);
  assert_int_equal(c->block_n, bn);
  assert_int_equal(c->warps, warps);
  assert_int_equal(c->stages, stages);
  assert_int_equal(c->sched, sched);
}

static void sched_alone_is_given(void **st) {
  (void)st;
  sieve_config u = {0};
  assert_false(cli_config_given(&u));
  assert_int_equal(cli_config("--config", "sched=1", &u), CLI_OK);
  assert_true(cli_config_given(&u));
  sieve_config d = {192, 128, 16, 2, 0};
  sieve_config c = cli_config_complete(&u, &d);
  assert_config(&c, 192, 128, 16, 2, 1);
}

static void named_fields_replace_the_default(void **st) {
  (void)st;
  sieve_config u = {0};
  assert_int_equal(cli_config("--config", "bn=64,stages=3", &u), CLI_OK);
  sieve_config d = {192, 128, 16, 2, 2};
  sieve_config c = cli_config_complete(&u, &d);
  assert_config(&c, 192, 64, 16, 3, 2);
  u = (sieve_config){0};
  assert_int_equal(cli_config("--config", "sched=0", &u), CLI_OK);
  assert_false(cli_config_given(&u));  /* sched=0 is the default schedule */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sched_alone_is_given),
      cmocka_unit_test(named_fields_replace_the_default),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
