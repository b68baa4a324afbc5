/*
** A test binary's entry: $SIEVE_TEST_FILTER (a cmocka pattern with * and ?)
** runs only the tests it matches, for the sanitizer builds that cannot
** afford the whole binary.
*/
#ifndef TEST_MAIN_H
#define TEST_MAIN_H

#include <stdlib.h>

#define sieve_run_tests(t, setup, teardown) \
  (getenv("SIEVE_TEST_FILTER") ? cmocka_set_test_filter(getenv("SIEVE_TEST_FILTER")) : (void)0, \
   cmocka_run_group_tests(t, setup, teardown))

#endif
