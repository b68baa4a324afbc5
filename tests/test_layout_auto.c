/*
** sieve.layout.auto: the script form and its IR; the choice never visits
** more block area than identity (partial blocks weighted as the chooser
** weighs them), wins on masks local in space written in raster order, and
** is the layout both the tables and the kernel expressions use. Brute-force
** checks of tables built under chosen layouts are in test_blocks.c.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_blocks.h"
#include "cg_part.h"
#include "lp.h"
#include "test_main.h"

static sieve_pattern *load(sieve_ctx *ctx, const char *layout, const char *mask, int block) {
  char src[2048];
  snprintf(src, sizeof src,
           "return sieve.pattern { name = 'a', block = {q = %d, k = %d}, layout = %s,\n"
           "  mask = sieve.union(sieve.mask(function(q, k) return %s end), sieve.text_rows(), sieve.text_cols()) }\n",
           block < 64 ? 64 : block, block < 64 ? 64 : block, layout, mask);
  sieve_pattern *p;
  if (sieve_pattern_load_string(ctx, "auto.lua", src, NULL, &p)) fail_msg("%s", sieve_errmsg(ctx));
  /* Blocks no kernel runs are refused at load; the tables take them. */
  lp_pattern_ir(p)->block_q = lp_pattern_ir(p)->block_k = block;
  return p;
}

/* Visited area in full-block units, partial blocks at 1.25, over all rows. */
static double cost(sieve_pattern *sp, const sieve_shape *s, char *layout, size_t n) {
  cg_pattern *p = lp_pattern_ir(sp);
  cg_tableset *ts;
  cg_err e = {0};
  if (cg_tables_build(p, s, 0, 0, &ts, &e)) fail_msg("%s", e.msg);
  cg_layout_text(&p->classes[0].layout, layout, n);
  double c = (double)ts->tables[0].nfull + 1.25 * (double)ts->tables[0].npart;
  cg_tables_free(ts);
  return c;
}

/* The grids the tests choose on (batch, heads, head dim, frames, height,
** width, text, text after). */
static const sieve_shape grids[] = {
  {1, 2, 64, 6, 16, 24, 0, 0},
  {1, 2, 64, 5, 13, 19, 7, 0},   /* ragged, text before */
  {1, 2, 64, 7, 12, 20, 11, 1},  /* text after */
  {1, 2, 64, 4, 32, 96, 0, 0},   /* rows longer than a block: tiles win on local masks */
};
#define NGRIDS (sizeof grids / sizeof *grids)

static const char *const masks[] = {
  /* local in space: tiles win */
  "sieve.abs(q.t - k.t):le(1) & sieve.abs(q.y - k.y):le(3) & sieve.abs(q.x - k.x):le(3)",
  "sieve.abs(q.y - k.y):le(2) & sieve.abs(q.x - k.x):le(2)",
  /* others: whatever wins, never worse than identity */
  "sieve.abs(q.t - k.t):le(1)",
  "q.y:eq(k.y) & q.x:eq(k.x)",
  "(sieve.abs(q.y - k.y):le(sieve.choose(sieve.abs(q.t - k.t):le(1), 4, 1)) & sieve.abs(q.x - k.x):le(4)) | k.t:eq(0)",
  "((q.x + k.y) % 5):lt(2)",
  "k.t:le(q.t)",
};

static void never_loses(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape *shapes = grids;
  for (size_t si = 0; si < NGRIDS; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
      for (int block = 16; block <= 64; block *= 4) {
        sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], block);
        sieve_pattern *id = load(ctx, "sieve.layout.identity", masks[m], block);
        char la[64], li[64];
        double ca = cost(a, &shapes[si], la, sizeof la), ci = cost(id, &shapes[si], li, sizeof li);
        if (ca > ci)
          fail_msg("mask %zu shape %zu block %d: auto (%s) visits %.1f, identity %.1f", m, si, block, la, ca, ci);
        if (m < 2 && block == 64 && si == 3) {
          if (!(ca < ci)) fail_msg("local mask %zu: auto (%s) does not beat identity (%.1f vs %.1f)", m, la, ca, ci);
          assert_non_null(strstr(la, "tile"));
        }
        /* The kernel's expressions use the chosen layout: its idx map
        ** differs from identity's, which is pos itself. */
        cg_pattern *p = lp_pattern_ir(a);
        cg_ref mask, qi, ki;
        cg_err e = {0};
        assert_int_equal(cg_kernel_exprs(p, &shapes[si], &mask, &qi, &ki, &e), SIEVE_OK);
        int identity = p->classes[0].layout.kind == CG_LAYOUT_IDENTITY;
        assert_int_equal(qi == cg_var_ref(p->g, CG_V_QPOS), identity);
        sieve_pattern_free(a);
        sieve_pattern_free(id);
      }
  sieve_close(ctx);
}

/*
** On shapes of under 128 query-block rows the ranking scores every row,
** so the choice must cost exactly the least of all candidates': a lower
** bound that overshot would leave a cheaper one out. The candidates are
** cg_layout_auto.c's: identity, transpose, and the tiles whose volume fits
** the blocks.
*/
static void least_of_candidates(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape *shapes = grids;  /* the first three */
  static const int T[] = {1, 2, 4, 6}, Y[] = {4, 8}, X[] = {4, 8, 16};
  for (size_t si = 0; si < 3; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
      for (int block = 16; block <= 64; block *= 4) {
        const sieve_shape *s = &shapes[si];
        if ((sieve_shape_tokens(s) + block - 1) / block >= 128) continue; /* ranked on every other row */
        char la[64], lc[64], layout[64];
        sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], block);
        double ca = cost(a, s, la, sizeof la), least = -1;
        sieve_pattern_free(a);
        for (int i = -2; i < 24; i++) {
          if (i == -2) snprintf(layout, sizeof layout, "sieve.layout.identity");
          else if (i == -1) snprintf(layout, sizeof layout, "sieve.layout.transpose");
          else {
            int t = T[i / 6] < s->frames ? T[i / 6] : s->frames, y = Y[i / 3 % 2] < s->height ? Y[i / 3 % 2] : s->height;
            int x = X[i % 3] < s->width ? X[i % 3] : s->width, v = t * y * x;
            if ((v % block && block % v) || v > 4 * block || v * 4 < block) continue;
            snprintf(layout, sizeof layout, "sieve.layout.tile{%d, %d, %d}", t, y, x);
          }
          sieve_pattern *c = load(ctx, layout, masks[m], block);
          double cc = cost(c, s, lc, sizeof lc);
          sieve_pattern_free(c);
          if (least < 0 || cc < least) least = cc;
        }
        if (ca != least)
          fail_msg("mask %zu shape %zu block %d: auto (%s) visits %.2f, the least candidate %.2f", m, si, block, la, ca,
                   least);
      }
  sieve_close(ctx);
}

/*
** The table builder checks a new choice against identity on every row
** after building its tables, counting the choice from them: the choice,
** its ranking and the tables must be those of a choice checked first
** (cg_layouts_resolve) and built after, also where identity wins the check
** (the tables are rebuilt) and where the tables are of a step the mask
** reads, which the check must not take for step 0's. Identity's build in
** the check stops once past the choice: a stop too early would keep a
** choice identity beats.
*/
#define FLIP "((((q.index // 64) % 3):eq(0)) & ~(((((q.y * 96 + q.x) * 4 + q.t) // 64) % 3):eq(0))) " \
             "| sieve.abs(q.index - k.index):le(512)"
static void check_after_build(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  /* 192 rows of 64 tokens, ranked on every third: FLIP's ranked rows are
  ** the ones identity makes dense, its others favour identity */
  const sieve_shape s = {1, 2, 64, 4, 32, 96, 0, 0};
  static const char *const ms[] = {
    FLIP,
    "(sieve.step:eq(0) & (" FLIP ")) | (~sieve.step:eq(0) & sieve.abs(q.y - k.y):le(2) & sieve.abs(q.x - k.x):le(2))",
    "sieve.abs(q.t - k.t):le(1) & sieve.abs(q.y - k.y):le(3) & sieve.abs(q.x - k.x):le(3)",
  };
  for (size_t m = 0; m < sizeof ms / sizeof *ms; m++)
    for (int step = 0; step < 2; step++) {
      sieve_pattern *a = load(ctx, "sieve.layout.auto", ms[m], 64), *b = load(ctx, "sieve.layout.auto", ms[m], 64);
      cg_pattern *pa = lp_pattern_ir(a), *pb = lp_pattern_ir(b);
      cg_err e = {0};
      assert_int_equal(cg_layouts_resolve(pb, &s, &e), SIEVE_OK);
      cg_tableset *ta, *tb;
      assert_int_equal(cg_tables_build(pa, &s, step, 0, &ta, &e), SIEVE_OK);
      assert_int_equal(cg_tables_build(pb, &s, step, 0, &tb, &e), SIEVE_OK);
      char la[64], lb[64];
      cg_layout_text(&pa->classes[0].layout, la, sizeof la);
      cg_layout_text(&pb->classes[0].layout, lb, sizeof lb);
      assert_string_equal(la, lb);
      const char *ra = cg_layouts_ranking(pa, &s, 0), *rb = cg_layouts_ranking(pb, &s, 0);
      assert_non_null(ra);
      assert_string_equal(ra, rb);
      /* the ranking chose another layout, the check identity */
      if (m < 2) assert_true(!strncmp(ra, "identity ", 9) && strstr(ra, "(chosen: on all rows it visits less than "));
      if (m == 2) assert_non_null(strstr(la, "tile"));
      assert_int_equal(ta->tables[0].nfull, tb->tables[0].nfull);
      assert_int_equal(ta->tables[0].npart, tb->tables[0].npart);
      assert_memory_equal(ta->tables[0].part_idx, tb->tables[0].part_idx, sizeof(int32_t) * (size_t)ta->tables[0].npart);
      cg_tables_free(ta);
      cg_tables_free(tb);
      sieve_pattern_free(a);
      sieve_pattern_free(b);
    }
  sieve_close(ctx);
}

/* A bound whose unsettled pairs are settled is the candidate's score: it
** stands in for a build of the ranked rows. Bounds, settled or stopped,
** are those of witnesses that evaluate every key (the ranking shows
** them): the intervals of sub-blocks and the end tokens only save work. */
static void settled_bounds_are_scores(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape *shapes = grids;  /* the first three */
  for (size_t si = 0; si < 3; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
      for (int block = 16; block <= 64; block *= 4)
        for (int stride = 1; stride <= 3; stride += 2) {
          sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], block);
          int bad = cg_layouts_check_scores(lp_pattern_ir(a), &shapes[si], 0, stride);
          if (bad) fail_msg("mask %zu shape %zu block %d stride %d: %d candidates", m, si, block, stride, bad);
          bad = cg_layouts_check_bounds(lp_pattern_ir(a), &shapes[si], 0, stride);
          if (bad) fail_msg("mask %zu shape %zu block %d stride %d: %d bounds", m, si, block, stride, bad);
          sieve_pattern_free(a);
        }
  sieve_close(ctx);
}

/*
** The ranking reads its bounds from a record of every candidate's, made
** at once on the threads, a candidate's rows cut short past the least
** score another can reach: each bound it reads, at stops within and past
** what the record holds, on every row and on the guesses' rows, and its
** settled score must be what a bound made alone gives. There must be
** stops past what a record holds (those bounds are made anew).
*/
static void recorded_bounds_are_bounds(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  int anew = 0;
  for (size_t si = 0; si < NGRIDS; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
      for (int block = 16; block <= 64; block *= 4)
        for (int stride = 1; stride <= 3; stride += 2) {
          sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], block);
          int bad = cg_layouts_check_records(lp_pattern_ir(a), &grids[si], 0, stride, &anew);
          if (bad) fail_msg("mask %zu shape %zu block %d stride %d: %d bounds", m, si, block, stride, bad);
          sieve_pattern_free(a);
        }
  if (!anew) fail_msg("no stop past a record's rows: the test tells nothing");
  sieve_close(ctx);
}

/*
** Settling stops short for candidates scored past the best so far, and
** bounds are read from the record of every candidate's whole bound: the
** choice, its score and identity's must be those of bounds made one by
** one and every candidate settled whole, and every other value that score
** or a bound under it, also where the guesses mislead (a later candidate
** beats the first). There must be cases of both.
*/
static void short_cuts_show_the_same(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape *shapes = grids;
  int open = 0, moved = 0;
  for (size_t si = 0; si < NGRIDS; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
      for (int block = 16; block <= 64; block *= 4)
        for (int stride = 1; stride <= 3; stride += 2) {
          sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], block);
          int o, r, bad = cg_layouts_check_ranking(lp_pattern_ir(a), &shapes[si], 0, stride, &o, &r);
          if (bad) fail_msg("mask %zu shape %zu block %d stride %d: %s", m, si, block, stride,
                            bad < 0 ? "failed" : "rankings disagree");
          open += o;
          moved += r;
          sieve_pattern_free(a);
        }
  if (!open) fail_msg("no candidate's settling stopped short: the test tells nothing");
  if (!moved) fail_msg("no case where the guesses mislead: the test tells nothing");
  sieve_close(ctx);
}

/* The IR names auto (not the layout it resolves to), so its hash differs
** from identity's; sieve show's ranking is there once tables are built. */
static void script_and_ir(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[0], 64), *id = load(ctx, "sieve.layout.identity", masks[0], 64);
  cg_pattern *p = lp_pattern_ir(a);
  assert_non_null(strstr(p->ir_text, "layout=auto"));
  assert_true(p->ir_hash != lp_pattern_ir(id)->ir_hash);
  sieve_shape s = {1, 2, 64, 6, 16, 24, 0, 0};
  sieve_tables *t;
  assert_int_equal(sieve_tables_build(ctx, a, &s, 0, 0, &t), SIEVE_OK);
  sieve_table_view v;
  assert_int_equal(sieve_tables_view(t, 0, &v), SIEVE_OK);
  assert_non_null(v.layout_choice);
  assert_non_null(strstr(v.layout_choice, "(chosen)"));
  assert_non_null(strstr(v.layout_choice, "identity"));
  char name[64];
  cg_layout_text(&p->classes[0].layout, name, sizeof name);
  assert_string_equal(v.layout, name);
  sieve_tables_free(t);
  assert_int_equal(sieve_tables_build(ctx, id, &s, 0, 0, &t), SIEVE_OK);
  assert_int_equal(sieve_tables_view(t, 0, &v), SIEVE_OK);
  assert_null(v.layout_choice);
  assert_string_equal(v.layout, "identity");
  sieve_tables_free(t);
  sieve_pattern_free(a);
  sieve_pattern_free(id);
  sieve_close(ctx);
}

/* The layout class 0 resolves to for s, as text. */
static void chosen(cg_pattern *p, const sieve_shape *s, char *buf, size_t n) {
  cg_err e = {0};
  if (cg_layouts_resolve(p, s, &e)) fail_msg("%s", e.msg);
  cg_layout_text(&p->classes[0].layout, buf, n);
}

/* A copy of p with query blocks of bq (what a plan makes for a kernel
** whose rows merge the pattern's blocks). */
static cg_pattern *rows_copy(const cg_pattern *p, int bq) {
  cg_pattern *c = NULL;
  cg_err e = {0};
  if (cg_pattern_heads(p, 0, &c, &e)) fail_msg("%s", e.msg);
  c->block_q = bq;
  if (cg_pattern_finish(c, &e)) fail_msg("%s", e.msg);
  return c;
}

/*
** The choice is a function of the grid and the blocks only: a copy at
** merged query rows made after the original chose for the shape chooses
** what a copy made before it does. Were the copy to keep the original's
** choice, a plan's layout (and the kernel cached under its key) would
** depend on whether the pattern had built tables for that shape first.
** The cases where the two block sizes choose differently are the ones
** that tell; there must be some.
*/
static void choice_follows_blocks(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape *shapes = grids;
  int differ = 0;
  for (size_t si = 0; si < NGRIDS; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
      sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], 16);
      cg_pattern *p = lp_pattern_ir(a), *before = rows_copy(p, 48);
      char own[64], fresh[64], after[64];
      chosen(p, &shapes[si], own, sizeof own);
      cg_pattern *late = rows_copy(p, 48);
      chosen(before, &shapes[si], fresh, sizeof fresh);
      chosen(late, &shapes[si], after, sizeof after);
      if (strcmp(fresh, after))
        fail_msg("mask %zu shape %zu: rows of 48 choose %s fresh, %s after 16-token blocks chose %s", m, si, fresh,
                 after, own);
      differ += strcmp(own, fresh) != 0;
      cg_pattern_free(before);
      cg_pattern_free(late);
      sieve_pattern_free(a);
    }
  if (!differ) fail_msg("no case where 16- and 48-token query blocks choose differently: the test tells nothing");
  sieve_close(ctx);
}

/*
** A plan's copy at merged query rows (cg_attn_merge_rows sets
** merged_from) counts identity in its check from identity's table at the
** script's blocks, merged: the counts must be a build's at the merged
** rows, for every candidate, and the build must not stop at its own
** value but must just under it (it counts its rows merged); and the copy
** must choose, rank and build what a copy that counts identity at its own
** rows does, also where identity wins the check, and also where the check
** runs beside the build (enough threads).
*/
static void merged_counts_are_builds(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  for (size_t si = 1; si < NGRIDS; si += 2)  /* ragged with text before; long rows */
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
      int k = si == 1 ? 2 : 3;
      sieve_pattern *a = load(ctx, "sieve.layout.auto", masks[m], 16);
      int bad = cg_layouts_check_merged(lp_pattern_ir(a), &grids[si], 0, k);
      if (bad) fail_msg("mask %zu shape %zu, rows of %d: %d candidates' merged counts differ", m, si, k, bad);
      sieve_pattern_free(a);
    }
  sieve_close(ctx);
}

/* The class 0 choice, its ranking and its table's counts, on a copy of p
** at rows of bq (merged_from: the copy's), by the table builder (with
** build) or cg_layouts_resolve. */
static void copy_chooses(cg_pattern *p, int bq, int from, const sieve_shape *s, int build, char *buf, size_t n) {
  cg_pattern *c = rows_copy(p, bq);
  c->merged_from = from;
  cg_err e = {0};
  cg_tableset *ts = NULL;
  if (build ? cg_tables_build(c, s, 0, 0, &ts, &e) : cg_layouts_resolve(c, s, &e)) fail_msg("%s", e.msg);
  char l[64];
  cg_layout_text(&c->classes[0].layout, l, sizeof l);
  const char *r = cg_layouts_ranking(c, s, 0);
  snprintf(buf, n, "%s: %s; %lld %lld", l, r ? r : "(none)", ts ? (long long)ts->tables[0].nfull : -1LL,
           ts ? (long long)ts->tables[0].npart : -1LL);
  cg_tables_free(ts);
  cg_pattern_free(c);
}

static void merged_check_chooses_the_same(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape s = {1, 2, 64, 4, 32, 96, 0, 0};
  static const char *const ms[] = {FLIP, "sieve.abs(q.t - k.t):le(1) & sieve.abs(q.y - k.y):le(3) & sieve.abs(q.x - k.x):le(3)",
                                   "sieve.abs(q.y - k.y):le(2) & sieve.abs(q.x - k.x):le(2)", "k.t:le(q.t)"};
  int checked = 0, lost = 0;
  for (size_t m = 0; m < sizeof ms / sizeof *ms; m++)
    for (int fine = 16; fine <= 32; fine *= 2)
      for (int k = 2; k <= 3; k++)
        for (int build = 0; build < 2; build++) {
          sieve_pattern *a = load(ctx, "sieve.layout.auto", ms[m], fine);
          char own[1024], merged[1024];
          copy_chooses(lp_pattern_ir(a), fine * k, 0, &s, build, own, sizeof own);
          copy_chooses(lp_pattern_ir(a), fine * k, fine, &s, build, merged, sizeof merged);
          if (strcmp(own, merged))
            fail_msg("mask %zu, %d-token blocks in rows of %d: %s, counted from the blocks %s", m, fine, fine * k, own,
                     merged);
          if (build) {
            /* on enough threads the check runs beside the build */
            char aside[1024];
            const char *old = getenv("SIEVE_THREADS");
            char *keep = old ? strdup(old) : NULL;
            setenv("SIEVE_THREADS", "4", 1);
            copy_chooses(lp_pattern_ir(a), fine * k, fine, &s, build, aside, sizeof aside);
            if (keep) setenv("SIEVE_THREADS", keep, 1);
            else unsetenv("SIEVE_THREADS");
            free(keep);
            if (strcmp(own, aside))
              fail_msg("mask %zu, %d-token blocks in rows of %d: %s, checked beside the build %s", m, fine, fine * k,
                       own, aside);
          }
          checked += strncmp(own, "identity", 8) != 0;
          lost += strstr(own, "(chosen: on all rows it visits less than ") != NULL;
          sieve_pattern_free(a);
        }
  if (!checked || !lost) fail_msg("%d choices kept, %d lost to identity: the test tells too little", checked, lost);
  sieve_close(ctx);
}

/* The choice and its ranking at SIEVE_THREADS threads, into buf. */
static void chosen_at(sieve_ctx *ctx, const char *mask, int block, const sieve_shape *s, const char *threads,
                      char *buf, size_t n) {
  setenv("SIEVE_THREADS", threads, 1);
  sieve_pattern *a = load(ctx, "sieve.layout.auto", mask, block);
  cg_pattern *p = lp_pattern_ir(a);
  char l[64];
  chosen(p, s, l, sizeof l);
  const char *r = cg_layouts_ranking(p, s, 0);
  snprintf(buf, n, "%s: %s", l, r ? r : "(none)");
  sieve_pattern_free(a);
}

/*
** A bound's rows run on threads, and the bound stops at the first row,
** in row order, past the best score: the choice and the ranking (its ">="
** values are bounds stopped so) are the same at any number of threads.
** There must be bounds that stopped (a ">=" shown).
*/
static void same_at_any_threads(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape shapes[] = {
    {1, 2, 64, 6, 16, 24, 0, 0},
    {1, 2, 64, 7, 12, 20, 11, 1},
    {1, 2, 64, 4, 32, 96, 0, 0},
  };
  const char *old = getenv("SIEVE_THREADS");
  char *keep = old ? strdup(old) : NULL;
  int stopped = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
      for (int block = 16; block <= 64; block *= 4) {
        char one[512], many[512];
        chosen_at(ctx, masks[m], block, &shapes[si], "1", one, sizeof one);
        for (int t = 2; t <= 7; t += 5) {
          char ts[8];
          snprintf(ts, sizeof ts, "%d", t);
          chosen_at(ctx, masks[m], block, &shapes[si], ts, many, sizeof many);
          if (strcmp(one, many))
            fail_msg("mask %zu shape %zu block %d: one thread %s, %d threads %s", m, si, block, one, t, many);
        }
        stopped += strstr(one, ">=") != NULL;
      }
  if (keep) setenv("SIEVE_THREADS", keep, 1);
  else unsetenv("SIEVE_THREADS");
  free(keep);
  if (!stopped) fail_msg("no bound stopped short: the test tells nothing");
  sieve_close(ctx);
}

/* Class c's choice and ranking for s, resolved, into buf. */
static void class_choice(cg_pattern *p, const sieve_shape *s, int c, char *buf, size_t n) {
  cg_err e = {0};
  if (cg_layouts_resolve(p, s, &e)) fail_msg("%s", e.msg);
  char l[64];
  cg_layout_text(&p->classes[c].layout, l, sizeof l);
  const char *r = cg_layouts_ranking(p, s, c);
  snprintf(buf, n, "%s: %s", l, r ? r : "(none)");
}

/*
** The classes of a pattern are ranked side by side, each on a thread of
** its own: each chooses, and shows, what it does as the only class of a
** pattern on one thread. A class with a fixed layout between them keeps
** it, and a class no head uses is ranked by none.
*/
static void classes_side_by_side(void **st) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const sieve_shape shapes[] = {{1, 4, 64, 6, 16, 24, 0, 0}, {1, 4, 64, 7, 12, 20, 11, 1}};
  const size_t ms[] = {0, 4, 5};
  const char *old = getenv("SIEVE_THREADS");
  char *keep = old ? strdup(old) : NULL;
  char src[4096];
  snprintf(src, sizeof src,
           "local function m(f) return sieve.union(sieve.mask(f), sieve.text_rows(), sieve.text_cols()) end\n"
           "return sieve.pattern { name = 'side', block = {q = 64, k = 64}, classes = {\n"
           "  { name = 'a', layout = sieve.layout.auto, mask = m(function(q, k) return %s end) },\n"
           "  { name = 'fixed', layout = sieve.layout.transpose, mask = m(function(q, k) return %s end) },\n"
           "  { name = 'b', layout = sieve.layout.auto, mask = m(function(q, k) return %s end) },\n"
           "  { name = 'unused', layout = sieve.layout.auto, mask = m(function(q, k) return %s end) },\n"
           "  { name = 'c', layout = sieve.layout.auto, mask = m(function(q, k) return %s end) } },\n"
           "  heads = { 'a', 'fixed', 'b', 'c' } }\n",
           masks[ms[0]], masks[ms[1]], masks[ms[1]], masks[ms[2]], masks[ms[2]]);
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
    char alone[3][512];
    for (int k = 0; k < 3; k++) chosen_at(ctx, masks[ms[k]], 64, &shapes[si], "1", alone[k], sizeof alone[k]);
    for (int t = 1; t <= 3; t += 2) {
      char ts[8], got[512];
      snprintf(ts, sizeof ts, "%d", t);
      setenv("SIEVE_THREADS", ts, 1);
      sieve_pattern *sp;
      if (sieve_pattern_load_string(ctx, "side.lua", src, NULL, &sp)) fail_msg("%s", sieve_errmsg(ctx));
      cg_pattern *p = lp_pattern_ir(sp);
      const int cls[] = {0, 2, 4};
      for (int k = 0; k < 3; k++) {
        class_choice(p, &shapes[si], cls[k], got, sizeof got);
        if (strcmp(got, alone[k]))
          fail_msg("shape %zu, %d threads, class %d: %s, where alone it is %s", si, t, cls[k], got, alone[k]);
      }
      class_choice(p, &shapes[si], 1, got, sizeof got);
      if (strcmp(got, "transpose: (none)")) fail_msg("shape %zu, the fixed class: %s", si, got);
      class_choice(p, &shapes[si], 3, got, sizeof got);
      if (strcmp(got, "identity: (none)")) fail_msg("shape %zu, the class no head uses: %s", si, got);
      sieve_pattern_free(sp);
    }
  }
  if (keep) setenv("SIEVE_THREADS", keep, 1);
  else unsetenv("SIEVE_THREADS");
  free(keep);
  sieve_close(ctx);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(never_loses),
    cmocka_unit_test(least_of_candidates),
    cmocka_unit_test(script_and_ir),
    cmocka_unit_test(check_after_build),
    cmocka_unit_test(choice_follows_blocks),
    cmocka_unit_test(merged_counts_are_builds),
    cmocka_unit_test(merged_check_chooses_the_same),
    cmocka_unit_test(settled_bounds_are_scores),
    cmocka_unit_test(recorded_bounds_are_bounds),
    cmocka_unit_test(short_cuts_show_the_same),
    cmocka_unit_test(same_at_any_threads),
    cmocka_unit_test(classes_side_by_side),
  };
  return sieve_run_tests(t, NULL, NULL);
}
