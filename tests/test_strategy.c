/*
** Mask-search files (rt_strategy.h) without a GPU: the choice of least
** summed error against a reference computed here, the file's text both
** ways, merging of layers searched by other plans, and every refusal a plan
** makes (missing, damaged, another pattern, shape or candidate set, a step
** the file lacks), through the public API where a plan would see it.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lp.h"
#include "rt_strategy.h"
#include "sieve.h"
#include "test_rand.h"

static sieve_ctx *ctx;
static char dir[256];

static int setup(void **st) {
  (void)st;
  snprintf(dir, sizeof dir, "/tmp/sieve-strategy-%ld", (long)getpid() % 1000000);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
  if (system(cmd)) return -1;
  return sieve_open(&ctx);
}

static int teardown(void **st) {
  (void)st;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return -1;
  sieve_close(ctx);
  return 0;
}

/* sta in search mode (six candidates) or reading `file`. */
static sieve_pattern *sta(const char *file, const char *candidates) {
  char path[1024], fp[1200], cp[200];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/patterns/sta.lua", src ? src : ".");
  const char *ov[4] = {NULL, NULL, NULL, NULL};
  int n = 0;
  if (file) {
    snprintf(fp, sizeof fp, "strategy=%s", file);
    ov[n++] = fp;
  } else {
    ov[n++] = "search=true";
  }
  if (candidates) {
    snprintf(cp, sizeof cp, "candidates=%s", candidates);
    ov[n++] = cp;
  }
  sieve_pattern *p = NULL;
  if (sieve_pattern_load(ctx, path, ov, &p)) fail_msg("%s", sieve_errmsg(ctx));
  return p;
}

static sieve_shape small(void) {
  return (sieve_shape){.batch = 1, .heads = 4, .head_dim = 64, .frames = 12, .height = 16, .width = 16, .text = 8};
}

/* ------------------------------------------------------------ choice */

/* Sums over calls and the argmin per head, against sums kept here. */
static void least_summed_error(void **st) {
  (void)st;
  sieve_pattern *sp = sta(NULL, NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->sel.kind, CG_SELECT_PROFILE);
  assert_int_equal(p->sel.mode, CG_PROFILE_SEARCH);
  assert_int_equal(p->nclasses, 6);
  sieve_shape sh = small();
  rt_strategy *s;
  cg_err e = {0};
  assert_int_equal(rt_strategy_new(p, &sh, &s, &e), SIEVE_OK);
  int H = 4, C = 6;
  double sum[3][4][6] = {{{0}}}, err[4 * 6];
  rng_state = 12345;
  for (int call = 0; call < 3; call++)
    for (int at = 0; at < 3; at++) {
      for (int i = 0; i < H * C; i++) err[i] = (double)(rnd() % 1000) / 997.0;
      for (int h = 0; h < H; h++)
        for (int c = 0; c < C; c++) sum[at][h][c] += err[h * C + c];
      assert_int_equal(rt_strategy_add(s, 12 + at, at % 2, err, &e), SIEVE_OK);
    }
  assert_int_equal(rt_strategy_count(s), 3);
  for (int at = 0; at < 3; at++) {
    const int *cls = rt_strategy_at(s, 12 + at, at % 2);
    assert_non_null(cls);
    for (int h = 0; h < H; h++) {
      int best = 0;
      for (int c = 1; c < C; c++)
        if (sum[at][h][c] < sum[at][h][best]) best = c;
      assert_int_equal(cls[h], best);
    }
  }
  assert_null(rt_strategy_at(s, 12, 1));
  /* Ties go to the first class. */
  double tie[24];
  for (int i = 0; i < 24; i++) tie[i] = 1.0;
  tie[2 * C + 4] = 0.5;
  assert_int_equal(rt_strategy_add(s, 40, 3, tie, &e), SIEVE_OK);
  const int *cls = rt_strategy_at(s, 40, 3);
  assert_int_equal(cls[0], 0);
  assert_int_equal(cls[2], 4);
  rt_strategy_free(s);
  sieve_pattern_free(sp);
}

/* ------------------------------------------------------------- files */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *b = calloc(1, 1 << 16);
  size_t n = fread(b, 1, (1 << 16) - 1, f);
  b[n] = 0;
  fclose(f);
  return b;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void text_round_trips(void **st) {
  (void)st;
  sieve_pattern *sp = sta(NULL, NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape sh = small();
  rt_strategy *s, *t;
  cg_err e = {0};
  assert_int_equal(rt_strategy_new(p, &sh, &s, &e), SIEVE_OK);
  double err[24];
  for (int i = 0; i < 24; i++) err[i] = (i * 7 % 11) + 0.25 * (i % 6);
  assert_int_equal(rt_strategy_add(s, 12, 0, err, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_add(s, 12, 0, err, &e), SIEVE_OK);
  err[5] = -1;
  assert_int_equal(rt_strategy_add(s, 13, 5, err, &e), SIEVE_OK);
  char *text = rt_strategy_format(s);
  if (getenv("SHOW")) fprintf(stderr, "%s", text);
  assert_non_null(strstr(text, "sieve-mask-search 1\npattern sta\nshape T12 Y16 X16 text8 after0 heads4\n"));
  assert_non_null(strstr(text, "classes 3x1x10 1x5x7 3x3x3 1x6x5 1x3x10 3x6x1\ncalls 2\n"));
  /* head 0 at (13, 5): err[5] = -1 is class 5, 3x6x1. */
  assert_non_null(strstr(text, "\nat 13 5 3x6x1 "));
  assert_int_equal(rt_strategy_parse(text, "t", p, &sh, &t, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_count(t), 2);
  for (int k = 0; k < 2; k++) {
    const int *a = rt_strategy_at(s, 12 + k, 5 * k), *b = rt_strategy_at(t, 12 + k, 5 * k);
    assert_memory_equal(a, b, 4 * sizeof(int));
  }
  char *again = rt_strategy_format(t);
  assert_string_equal(text, again);
  free(again);
  free(text);
  rt_strategy_free(t);
  rt_strategy_free(s);
  sieve_pattern_free(sp);
}

/* Two plans (layers 0 and 1) write one file; a later search of layer 0
** replaces its entries and keeps layer 1's. */
static void saves_merge_layers(void **st) {
  (void)st;
  sieve_pattern *sp = sta(NULL, NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape sh = small();
  char path[400];
  snprintf(path, sizeof path, "%s/merge.txt", dir);
  cg_err e = {0};
  double e0[24], e1[24];
  for (int i = 0; i < 24; i++) {
    e0[i] = i % 6 == 1 ? 0 : 1;  /* layer 0: class 1 everywhere */
    e1[i] = i % 6 == 3 ? 0 : 1;  /* layer 1: class 3 */
  }
  rt_strategy *a, *b, *c, *r;
  assert_int_equal(rt_strategy_new(p, &sh, &a, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_new(p, &sh, &b, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_new(p, &sh, &c, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_add(a, 12, 0, e0, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_add(b, 12, 1, e1, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_add(c, 12, 0, e1, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_save(a, path, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_save(b, path, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_load(path, p, &sh, &r, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_count(r), 2);
  assert_int_equal(rt_strategy_at(r, 12, 0)[2], 1);
  assert_int_equal(rt_strategy_at(r, 12, 1)[2], 3);
  rt_strategy_free(r);
  assert_int_equal(rt_strategy_save(c, path, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_load(path, p, &sh, &r, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_count(r), 2);
  assert_int_equal(rt_strategy_at(r, 12, 0)[0], 3);
  assert_int_equal(rt_strategy_at(r, 12, 1)[3], 3);
  rt_strategy_free(r);
  /* A file of another shape is not overwritten. */
  sieve_shape other = sh;
  other.frames = 24;
  rt_strategy *d;
  assert_int_equal(rt_strategy_new(p, &other, &d, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_add(d, 12, 0, e0, &e), SIEVE_OK);
  assert_int_equal(rt_strategy_save(d, path, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "is for shape T12 Y16 X16"));
  rt_strategy_free(d);
  rt_strategy_free(a);
  rt_strategy_free(b);
  rt_strategy_free(c);
  sieve_pattern_free(sp);
}

/* What the loader refuses, with the words that say why. */
static void damaged_and_foreign_files_are_refused(void **st) {
  (void)st;
  sieve_pattern *sp = sta(NULL, NULL);
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_shape sh = small();
  const char *head = "sieve-mask-search 1\npattern sta\nshape T12 Y16 X16 text8 after0 heads4\n"
                     "classes 3x1x10 1x5x7 3x3x3 1x6x5 1x3x10 3x6x1\ncalls 1\n";
  static const struct {
    const char *body, *words;
  } bad[] = {
      {"", NULL},  /* the header alone is a valid, empty file */
      {"at 12 0 3x3x3 3x3x3 3x3x3\n", "line 6: expected 'at STEP LAYER' and 4 class names"},
      {"at 12 0 3x3x3 3x3x3 3x3x3 5x5x5\n", "head 3's class '5x5x5' is not one of the pattern's"},
      {"at 12 x 3x3x3 3x3x3 3x3x3 3x3x3\n", "line 6"},
      {"at 12 0 3x3x3 3x3x3 3x3x3 3x3x3\nat 12 0 3x3x3 3x3x3 3x3x3 3x3x3\n", "step 12 layer 0 again"},
      {"bogus\n", "line 6"},
  };
  char text[2048];
  cg_err e = {0};
  rt_strategy *s;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(text, sizeof text, "%s%s", head, bad[i].body);
    e = (cg_err){0};
    sieve_status got = rt_strategy_parse(text, "f", p, &sh, &s, &e);
    if (!bad[i].words) {
      assert_int_equal(got, SIEVE_OK);
      rt_strategy_free(s);
      continue;
    }
    assert_int_equal(got, SIEVE_ERR_ARG);
    if (!strstr(e.msg, bad[i].words)) fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, bad[i].words);
  }
  static const struct {
    const char *text, *words;
  } hdr[] = {
      {"", "ends before its header"},
      {"pattern sta\n", "not a mask-search file"},
      {"sieve-mask-search 1\npattern svg\n", "is for pattern svg, not sta"},
      {"sieve-mask-search 1\npattern sta\nshape T12 Y16 X16 text8 after0 heads8\n",
       "is for shape T12 Y16 X16 text8 after0 heads8, the plan's is T12 Y16 X16 text8 after0 heads4"},
      {"sieve-mask-search 1\npattern sta\nshape T12 Y16 X16 text8 after0 heads4\nclasses 3x3x3\n",
       "other classes (candidates)"},
      {"sieve-mask-search 1\npattern sta\nshape T12 Y16 X16 text8 after0 heads4\n", "ends before its header"},
  };
  for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
    e = (cg_err){0};
    assert_int_equal(rt_strategy_parse(hdr[i].text, "f", p, &sh, &s, &e), SIEVE_ERR_ARG);
    if (!strstr(e.msg, hdr[i].words)) fail_msg("header %zu: '%s' lacks '%s'", i, e.msg, hdr[i].words);
  }
  char path[400];
  snprintf(path, sizeof path, "%s/none.txt", dir);
  assert_int_equal(rt_strategy_load(path, p, &sh, &s, &e), SIEVE_ERR_IO);
  assert_non_null(strstr(e.msg, "none.txt"));
  snprintf(path, sizeof path, "%s/binary.txt", dir);
  FILE *f = fopen(path, "wb");
  fwrite("sieve\0x", 1, 7, f);
  fclose(f);
  assert_int_equal(rt_strategy_load(path, p, &sh, &s, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "damaged"));
  sieve_pattern_free(sp);
}

/* ------------------------------------------------------------- the API */

/* A plan refuses a bad file before it needs a GPU, naming the file. */
static void plans_refuse_before_the_driver(void **st) {
  (void)st;
  char path[400], good[400];
  snprintf(path, sizeof path, "%s/missing.txt", dir);
  sieve_pattern *sp = sta(path, NULL);
  sieve_shape sh = small();
  sieve_dynplan *d = NULL;
  assert_int_equal(sieve_dynplan_create(ctx, sp, &sh, SIEVE_BF16, &d), SIEVE_ERR_IO);
  assert_non_null(strstr(sieve_errmsg(ctx), "missing.txt"));
  sieve_pattern_free(sp);
  /* A file written for other candidates. */
  snprintf(good, sizeof good, "%s/other.txt", dir);
  spit(good, "sieve-mask-search 1\npattern sta\nshape T12 Y16 X16 text8 after0 heads4\n"
             "classes 3x3x3 1x1x1\ncalls 1\nat 12 0 3x3x3 3x3x3 1x1x1 1x1x1\n");
  sp = sta(good, NULL);
  assert_int_equal(sieve_dynplan_create(ctx, sp, &sh, SIEVE_BF16, &d), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "other classes"));
  sieve_pattern_free(sp);
  /* The same file fits a pattern searched over those candidates; past the
  ** file, the plan needs the driver. */
  sp = sta(good, "3,3,3;1,1,1");
  assert_int_not_equal(sieve_dynplan_create(ctx, sp, &sh, SIEVE_BF16, &d), SIEVE_ERR_ARG);
  if (d) sieve_dynplan_free(d);
  sieve_pattern_free(sp);
  char *t = slurp(good);
  assert_non_null(t);
  free(t);
  /* search and strategy together are refused by the script. */
  char src[1024], ov[500];
  const char *sd = getenv("SIEVE_SOURCE_DIR");
  snprintf(src, sizeof src, "%s/patterns/sta.lua", sd ? sd : ".");
  snprintf(ov, sizeof ov, "strategy=%s", good);
  assert_int_equal(sieve_pattern_load(ctx, src, (const char *[]){"search=true", ov, NULL}, &sp), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "strategy"));
  assert_int_equal(sieve_pattern_load(ctx, src, (const char *[]){"search=true", "candidates=3,3", NULL}, &sp),
                   SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "candidates"));
  /* A bad candidate list is refused also when nothing searches it. */
  assert_int_equal(sieve_pattern_load(ctx, src, (const char *[]){"candidates=3,3", NULL}, &sp), SIEVE_ERR_ARG);
  assert_non_null(strstr(sieve_errmsg(ctx), "candidates"));
  /* Saving from a plan that does not search. */
  assert_int_equal(sieve_dynplan_save_search(NULL, "x"), SIEVE_ERR_ARG);
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(least_summed_error),
      cmocka_unit_test(text_round_trips),
      cmocka_unit_test(saves_merge_layers),
      cmocka_unit_test(damaged_and_foreign_files_are_refused),
      cmocka_unit_test(plans_refuse_before_the_driver),
  };
  return cmocka_run_group_tests(t, setup, teardown);
}
