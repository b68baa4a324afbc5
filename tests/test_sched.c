/*
** The persistent kernel's tile order (rt_sched.h): a permutation of every
** tile, longest rows first, ties in head-major order, kernel tiles smaller
** than table rows costed by their row, larger ones by the rows they cover.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rt_sched.h"

/* Two heads' packed tables of 3 rows (rowptr[4], nfull[3], idx[]): row
** lengths 1, 3, 2 for head 0 and 2, 2, 0 for head 1. */
static const int32_t tabs[] = {
  0, 1, 4, 6, 1, 3, 2, 0, 0, 1, 2, 1, 2,
  0, 2, 4, 4, 2, 2, 0, 0, 1, 1, 2,
};
static const int32_t head_off[2] = {0, 13};

static void longest_first_head_major(void **st) {
  int32_t order[6];
  assert_int_equal(rt_sched_order(tabs, head_off, 2, 3, 128, 3, 128, order), 0);
  /* costs: t0 1, t1 3, t2 2, t3 2, t4 2, t5 0 */
  static const int32_t want[6] = {1, 2, 3, 4, 0, 5};
  assert_memory_equal(order, want, sizeof want);
}

static void kernel_tiles_take_their_rows_cost(void **st) {
  /* 64-row tiles of 128-row table blocks: two tiles a row. */
  int32_t order[12];
  assert_int_equal(rt_sched_order(tabs, head_off, 2, 6, 64, 3, 128, order), 0);
  static const int32_t want[12] = {2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 10, 11};
  assert_memory_equal(order, want, sizeof want);
}

static void one_head_is_a_permutation(void **st) {
  int32_t order[3], seen[3] = {0};
  assert_int_equal(rt_sched_order(tabs, head_off + 1, 1, 3, 128, 3, 128, order), 0);
  for (int i = 0; i < 3; i++) seen[order[i]]++;
  for (int i = 0; i < 3; i++) assert_int_equal(seen[i], 1);
  assert_int_equal(order[2], 2);  /* the empty row last */
}

static void wide_tiles_sum_their_rows(void **st) {
  /* 256-row tiles over 128-row table blocks: rows 0-1 and row 2 (the
  ** second tile runs past the table's last row). */
  int32_t order[4];
  assert_int_equal(rt_sched_order(tabs, head_off, 2, 2, 256, 3, 128, order), 0);
  /* costs: t0 1 + 3, t1 2, t2 2 + 2, t3 0 */
  static const int32_t want[4] = {0, 2, 1, 3};
  assert_memory_equal(order, want, sizeof want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(longest_first_head_major),
    cmocka_unit_test(kernel_tiles_take_their_rows_cost),
    cmocka_unit_test(one_head_is_a_permutation),
    cmocka_unit_test(wide_tiles_sum_their_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
