/*
** Block tables against brute force. For random small geometries (ragged
** blocks, ragged tiles, text before and after) and random masks built in
** the IR, and for every shipped pattern, each head's table must equal the
** classification of every token pair of the kernel's mask expression:
** full iff all pairs are true, dropped iff none is. Seeds are fresh each
** run; SIEVE_SEED reproduces a failure.
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cg_blocks.h"
#include "cg_interval.h"
#include "cg_ref.h"
#include "lp.h"
#include "test_main.h"
#include "test_rand.h"

/* ------------------------------------------------------- random masks */

typedef struct mb {
  cg_graph *g;
} mb;

static cg_ref V(mb *m, cg_var v) { return cg_var_ref(m->g, v); }
static cg_ref C(mb *m, int64_t v) { return cg_const(m->g, v); }
static cg_ref B(mb *m, cg_op op, cg_ref a, cg_ref b) { return cg_bin(m->g, op, a, b); }
static cg_ref dist(mb *m, cg_var a, cg_var b) { return cg_un(m->g, CG_ABS, B(m, CG_SUB, V(m, a), V(m, b))); }
static cg_ref within(mb *m, cg_var a, cg_var b, int w) { return B(m, CG_LE, dist(m, a, b), C(m, w)); }

/* Coarse coordinate v / d on both sides, within w. */
static cg_ref tile_near(mb *m, cg_var a, cg_var b, int d, int w) {
  cg_ref x = B(m, CG_DIV, V(m, a), C(m, d)), y = B(m, CG_DIV, V(m, b), C(m, d));
  return B(m, CG_LE, cg_un(m->g, CG_ABS, B(m, CG_SUB, x, y)), C(m, w));
}

static cg_ref leaf(mb *m) {
  switch (rnd() % 13) {
  case 0: return within(m, CG_V_QT, CG_V_KT, rint_in(0, 3));                 /* frame window */
  case 1: return within(m, CG_V_QIDX, CG_V_KIDX, rint_in(0, 60));           /* token window */
  case 2: return B(m, CG_EQ, V(m, CG_V_KT), C(m, rint_in(0, 4)));           /* anchor frame */
  case 3: /* rotating anchors */
    return B(m, CG_EQ, B(m, CG_MOD, B(m, CG_ADD, V(m, CG_V_KT), V(m, CG_V_STEP)), C(m, rint_in(2, 4))),
             C(m, 0));
  case 4: return B(m, CG_OR, V(m, CG_V_QTEXT), V(m, CG_V_KTEXT));           /* text rows and columns */
  case 5: return B(m, CG_EQ, V(m, CG_V_QT), V(m, CG_V_KT));                 /* spatial */
  case 6: /* temporal */
    return B(m, CG_AND, B(m, CG_EQ, V(m, CG_V_QY), V(m, CG_V_KY)), B(m, CG_EQ, V(m, CG_V_QX), V(m, CG_V_KX)));
  case 7: return B(m, CG_LE, V(m, CG_V_KT), V(m, CG_V_QT));                 /* causal over frames */
  case 8: return B(m, CG_AND, tile_near(m, CG_V_QT, CG_V_KT, 2, 1), tile_near(m, CG_V_QY, CG_V_KY, 3, 0));
  case 9: /* custom arithmetic */
    return B(m, CG_LT,
             B(m, CG_MOD, B(m, CG_ADD, B(m, CG_MUL, V(m, CG_V_QX), C(m, 3)), B(m, CG_ADD, V(m, CG_V_KY), V(m, CG_V_LAYER))),
               C(m, 5)),
             C(m, 2));
  case 10: /* 2-D window in raw coordinates */
    return B(m, CG_AND, within(m, CG_V_QY, CG_V_KY, rint_in(0, 2)), within(m, CG_V_QX, CG_V_KX, rint_in(0, 2)));
  case 11: return B(m, CG_EQ, B(m, CG_MOD, V(m, CG_V_HEAD), C(m, 3)), C(m, 0));
  default: return cg_bool(m->g, (int)(rnd() % 2));
  }
}

static cg_ref rmask(mb *m, int depth) {
  if (depth == 0 || rnd() % 3 == 0) return leaf(m);
  cg_ref a = rmask(m, depth - 1), b = rmask(m, depth - 1);
  switch (rnd() % 4) {
  case 0: return B(m, CG_OR, a, b);
  case 1: return B(m, CG_AND, a, b);
  case 2: return B(m, CG_AND, a, cg_un(m->g, CG_NOT, b));  /* difference */
  default: /* per-head choice */
    return cg_select(m->g, B(m, CG_EQ, B(m, CG_MOD, V(m, CG_V_HEAD), C(m, 2)), C(m, 0)), a, b);
  }
}

static cg_layout rlayout(void) {
  cg_layout l = {.kind = (cg_layout_kind)rint_in(0, 2)};
  for (int i = 0; i < 3; i++) l.tile[i] = rint_in(1, 4);
  return l;
}

static cg_pattern *rpattern(void) {
  cg_pattern *p = cg_pattern_new();
  mb m = {p->g};
  p->name = "random";
  p->block_q = 16 * rint_in(1, 8);
  p->block_k = 16 * rint_in(1, 8);
  p->nclasses = rint_in(1, 3);
  p->classes = cg_alloc(p->arena, sizeof(cg_class) * (size_t)p->nclasses);
  for (int c = 0; c < p->nclasses; c++)
    p->classes[c] = (cg_class){.name = "c", .layout = rlayout(), .mask = rmask(&m, rint_in(0, 3))};
  /* Now and then a class asks for sieve.layout.auto: the tables and the
  ** reference must then agree on the layout it picks. */
  if (rnd() % 4 == 0) {
    p->auto_layout = cg_alloc(p->arena, (size_t)p->nclasses);
    for (int c = 0; c < p->nclasses; c++) p->auto_layout[c] = (uint8_t)(rnd() % 2);
  }
  p->period = rint_in(1, 4);
  p->head_class = cg_alloc(p->arena, sizeof(int) * (size_t)p->period);
  for (int r = 0; r < p->period; r++) p->head_class[r] = rint_in(0, p->nclasses - 1);
  return p;
}

static sieve_shape rshape(int maxdim) {
  sieve_shape s = {.batch = 1, .head_dim = 128};
  s.heads = rint_in(1, 6);
  s.frames = rint_in(1, maxdim);
  s.height = rint_in(1, maxdim);
  s.width = rint_in(1, maxdim);
  s.text = rnd() % 3 ? rint_in(0, 20) : 0;
  s.text_after = rint_in(0, 1);
  return s;
}

/* ----------------------------------------------------------- the check */

static void fail_case(const char *what, const cg_pattern *p, const sieve_shape *s, int h, int qb, int kb) {
  fail_msg("%s: pattern %s head %d block (%d,%d); shape T%d Y%d X%d text %d%s, blocks %dx%d "
           "(reproduce with SIEVE_SEED=%llu)",
           what, p->name, h, qb, kb, s->frames, s->height, s->width, s->text,
           s->text_after ? " after" : "", p->block_q, p->block_k, (unsigned long long)seed);
}

/* The table as a dense class matrix; lists must be ascending. */
static void table_matrix(const cg_table *t, uint8_t *cls) {
  memset(cls, CG_BLK_EMPTY, (size_t)t->nq * (size_t)t->nk);
  for (int q = 0; q < t->nq; q++) {
    for (int i = t->full_ptr[q]; i < t->full_ptr[q + 1]; i++) {
      assert_true(i == t->full_ptr[q] || t->full_idx[i] > t->full_idx[i - 1]);
      cls[(size_t)q * t->nk + t->full_idx[i]] = CG_BLK_FULL;
    }
    for (int i = t->part_ptr[q]; i < t->part_ptr[q + 1]; i++) {
      assert_true(i == t->part_ptr[q] || t->part_idx[i] > t->part_idx[i - 1]);
      assert_int_equal(cls[(size_t)q * t->nk + t->part_idx[i]], CG_BLK_EMPTY);
      cls[(size_t)q * t->nk + t->part_idx[i]] = CG_BLK_UNDECIDED;
    }
  }
}

/* The packed form (cg_attn.h) holds the same lists, full ones first. */
static void check_pack(const cg_tableset *ts) {
  int32_t *buf, *off = malloc(sizeof(int32_t) * (size_t)ts->shape.heads);
  size_t n;
  cg_err e = {0};
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_OK);
  for (int h = 0; h < ts->shape.heads; h++) {
    const cg_table *t = &ts->tables[ts->head_table[h]];
    const int32_t *rowptr = buf + off[h], *nfull = rowptr + t->nq + 1, *idx = nfull + t->nq;
    for (int q = 0; q < t->nq; q++) {
      int nf = t->full_ptr[q + 1] - t->full_ptr[q], np = t->part_ptr[q + 1] - t->part_ptr[q];
      assert_int_equal(nfull[q], nf);
      assert_int_equal(rowptr[q + 1] - rowptr[q], nf + np);
      assert_memory_equal(idx + rowptr[q], t->full_idx + t->full_ptr[q], sizeof(int32_t) * (size_t)nf);
      assert_memory_equal(idx + rowptr[q] + nf, t->part_idx + t->part_ptr[q], sizeof(int32_t) * (size_t)np);
      assert_true((size_t)(idx + rowptr[q + 1] - buf) <= n);
    }
  }
  free(buf);
  free(off);
}

/*
** With CG_TABLES_EXACT every count is exact; without it partial blocks
** may carry estimates, so the allowed pairs need only lie between the
** full blocks' area and that plus the partial blocks' area (exclusive).
*/
static void check_flags(cg_pattern *p, const sieve_shape *s, int step, int layer, unsigned flags) {
  cg_tableset *ts;
  cg_err e = {0};
  if (cg_tables_build_flags(p, s, step, layer, flags, &ts, &e) != SIEVE_OK) fail_msg("build: %s", e.msg);
  size_t nb = (size_t)ts->nq * (size_t)ts->nk;
  uint8_t *want = malloc(nb), *got = malloc(nb);
  int64_t und = 0;
  for (int h = 0; h < s->heads; h++) {
    int64_t allowed;
    if (cg_ref_blocks(p, s, h, step, layer, ts->block_q, ts->block_k, want, &allowed, &e))
      fail_msg("reference: %s", e.msg);
    const cg_table *t = &ts->tables[ts->head_table[h]];
    table_matrix(t, got);
    static const char *const name[] = {"empty", "partial", "full"};
    for (size_t b = 0; b < nb; b++)
      if (got[b] != want[b]) {
        char what[64];
        snprintf(what, sizeof what, "%s block called %s", name[want[b]], name[got[b]]);
        fail_case(what, p, &ts->shape, h, (int)(b / (size_t)ts->nk), (int)(b % (size_t)ts->nk));
      }
    if ((flags & CG_TABLES_EXACT) || t->estimated == 0) {
      if (t->allowed_pairs != allowed) fail_case("allowed pairs differ", p, &ts->shape, h, -1, -1);
    } else {
      int64_t lo = 0, hi = 0;
      for (size_t b = 0; b < nb; b++) {
        int64_t q0 = (int64_t)(b / (size_t)ts->nk) * ts->block_q, k0 = (int64_t)(b % (size_t)ts->nk) * ts->block_k;
        int64_t q1 = q0 + ts->block_q < ts->seq ? q0 + ts->block_q : ts->seq;
        int64_t k1 = k0 + ts->block_k < ts->seq ? k0 + ts->block_k : ts->seq;
        if (want[b] == CG_BLK_FULL) lo += (q1 - q0) * (k1 - k0);
        if (want[b] != CG_BLK_EMPTY) hi += (q1 - q0) * (k1 - k0);
      }
      if (t->allowed_pairs < lo || t->allowed_pairs > hi) fail_case("estimate out of bounds", p, &ts->shape, h, -1, -1);
    }
    assert_int_equal(t->nfull + t->npart + t->nempty, (int64_t)nb);
  }
  und = ts->interval_undecided;
  assert_int_equal(und, ts->refined_full + ts->refined_empty + ts->refined_partial);
  assert_int_equal(ts->interval_full + ts->interval_empty + und, (int64_t)ts->ntables * (int64_t)nb);
  check_pack(ts);
  free(want);
  free(got);
  cg_tables_free(ts);
}

/*
** Partial-block bitmasks (cg_blocks_bits.c) against the token mask: every
** bit of every partial block of every head, through the head class's
** layout, with positions past the sequence 0; and the packed form's
** entries (key block, bitmask offset) and words. `bits` names the classes
** built with bitmasks; the others must carry none.
*/
static void check_bits(cg_pattern *p, const sieve_shape *s, int step, int layer, uint32_t bits) {
  cg_tableset *ts;
  cg_err e = {0};
  if (cg_tables_build_bits(p, s, step, layer, 0, bits, &ts, &e) != SIEVE_OK) fail_msg("build: %s", e.msg);
  int64_t S = ts->seq;
  int bq = ts->block_q, bk = ts->block_k, wpr = bk / 32;
  uint8_t *m = malloc((size_t)(S * S));
  int32_t *buf, *off = malloc(sizeof(int32_t) * (size_t)ts->shape.heads);
  size_t n;
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_OK);
  for (int h = 0; h < s->heads; h++) {
    const cg_table *t = &ts->tables[ts->head_table[h]];
    int want = (int)(bits >> t->cls & 1);
    assert_int_equal(t->bits, want);
    assert_int_equal(t->ent_words, bits ? 2 : 0);
    if (cg_ref_mask(p, s, h, step, layer, m, NULL, &e)) fail_msg("reference: %s", e.msg);
    cg_coords c;
    assert_int_equal(cg_layout_enum(&p->classes[t->cls].layout, &ts->shape, &c), 0);
    const int32_t *rowptr = buf + off[h], *nfull = rowptr + t->nq + 1, *ent = nfull + t->nq;
    for (int qb = 0; qb < t->nq; qb++) {
      int nf = t->full_ptr[qb + 1] - t->full_ptr[qb];
      for (int i = t->part_ptr[qb]; i < t->part_ptr[qb + 1]; i++) {
        int kb = t->part_idx[i], at = rowptr[qb] + nf + (i - t->part_ptr[qb]);
        if (!bits) {
          assert_int_equal(ent[at], kb);
          continue;
        }
        assert_int_equal(ent[2 * at], kb);
        if (!want) {
          assert_int_equal(ent[2 * at + 1], -1);
          continue;
        }
        const uint32_t *w = t->bitw + t->part_bits[i];
        assert_int_equal(ent[2 * at + 1] - (int32_t)(2 * t->nq + 1 + 2 * (t->nfull + t->npart)), t->part_bits[i]);
        assert_true((size_t)(off[h] + ent[2 * at + 1] + bq * wpr) <= n);
        assert_memory_equal(buf + off[h] + ent[2 * at + 1], w, sizeof(uint32_t) * (size_t)(bq * wpr));
        for (int r = 0; r < bq; r++)
          for (int x = 0; x < bk; x++) {
            int64_t qp = (int64_t)qb * bq + r, kp = (int64_t)kb * bk + x;
            int bit = (int)(w[r * wpr + x / 32] >> (x % 32) & 1);
            int truth = qp < S && kp < S && m[(int64_t)c.idx[qp] * S + c.idx[kp]];
            if (bit != truth) fail_case(bit ? "bitmask bit set on a false pair" : "bitmask bit clear on a true pair",
                                        p, &ts->shape, h, qb, kb);
          }
      }
    }
    cg_coords_free(&c);
  }
  free(buf);
  free(off);
  free(m);
  cg_tables_free(ts);
}

static void check_against_brute_force(cg_pattern *p, const sieve_shape *s, int step, int layer) {
  check_flags(p, s, step, layer, CG_TABLES_EXACT);
  check_flags(p, s, step, layer, 0);
  /* Bitmasks need block_k a multiple of 32: all classes, or one. */
  if (p->block_k % 32 == 0 || (p->block_k <= 0 && 128 % 32 == 0))
    check_bits(p, s, step, layer, rnd() % 2 ? ~0u >> (32 - p->nclasses) : 1u << rint_in(0, p->nclasses - 1));
}

static void random_masks(void **st) {
  for (int round = 0; round < 600; round++) {
    cg_pattern *p = rpattern();
    sieve_shape s = rshape(round % 20 ? 7 : 12); /* now and then, many blocks */
    check_against_brute_force(p, &s, rint_in(0, 12), rint_in(0, 6));
    cg_pattern_free(p);
  }
}

/* Enough rows for several threads, each of them writing part of the lists. */
static void threaded_build(void **st) {
  setenv("SIEVE_THREADS", "3", 1);
  for (int round = 0; round < 4; round++) {
    cg_pattern *p = rpattern();
    p->block_q = p->block_k = 16;
    sieve_shape s = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 6, .height = 9, .width = 11,
                     .text = rint_in(0, 20), .text_after = rint_in(0, 1)};
    check_against_brute_force(p, &s, 1, 2);
    cg_pattern_free(p);
  }
  unsetenv("SIEVE_THREADS");
}

/*
** The table builder keeps its threads parked between builds
** (cg_blocks_helpers.c). A process that forks after a build (a data
** loader's workers) has none of them in the child: the child's builds
** must start their own and agree with the parent's, not wait for helpers
** that are not there. The child is killed if it hangs.
*/
static void tables_after_fork(void **st) {
  setenv("SIEVE_THREADS", "3", 1);
  cg_pattern *p = rpattern();
  p->block_q = p->block_k = 32;
  sieve_shape s = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 6, .height = 12, .width = 16};
  cg_tableset *a;
  cg_err e = {0};
  if (cg_tables_build_bits(p, &s, 1, 2, 0, 1, &a, &e) != SIEVE_OK) fail_msg("build: %s", e.msg);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(60);
    cg_tableset *b;
    char why[256];
    int bad = cg_tables_build_bits(p, &s, 1, 2, 0, 1, &b, &e) != SIEVE_OK || cg_tables_differ(a, b, why, sizeof why);
    _exit(bad);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status))
    fail_msg("the child's build %s", WIFEXITED(status) ? "differs or failed" : "hung or crashed");
  cg_tables_free(a);
  cg_pattern_free(p);
  unsetenv("SIEVE_THREADS");
}

/*
** The block-pair memo (cg_blocks_memo.c) against the build without it:
** the same lists and, block by block, the same bits; exact counts where
** both are exact. Small blocks over larger grids make many pairs with
** many token runs, which is where the memo applies.
*/
/* The tables built by default and with `flags` agree; the build is
** returned when keep is set (else freed), the other always freed. */
static cg_tableset *same_with(cg_pattern *p, const sieve_shape *s, uint32_t bits, unsigned flags, int keep) {
  cg_tableset *a, *b;
  cg_err e = {0};
  if (cg_tables_build_bits(p, s, 1, 2, 0, bits, &a, &e) != SIEVE_OK) fail_msg("build: %s", e.msg);
  if (cg_tables_build_bits(p, s, 1, 2, flags, bits, &b, &e) != SIEVE_OK) fail_msg("build: %s", e.msg);
  char why[256];
  if (cg_tables_differ(a, b, why, sizeof why)) fail_msg("flags %x: %s", flags, why);
  if (flags == CG_TABLES_NO_REUSE) {
    /* A copied row counts its blocks as building them would have (the
    ** build without the memo may estimate where the memo counts). */
    assert_int_equal(a->interval_full, b->interval_full);
    assert_int_equal(a->interval_empty, b->interval_empty);
    assert_int_equal(a->interval_undecided, b->interval_undecided);
    assert_int_equal(a->refined_full, b->refined_full);
    assert_int_equal(a->refined_empty, b->refined_empty);
    assert_int_equal(a->refined_partial, b->refined_partial);
    assert_int_equal(a->estimated, b->estimated);
    for (int i = 0; i < a->ntables; i++) assert_int_equal(a->tables[i].allowed_pairs, b->tables[i].allowed_pairs);
    assert_int_equal(b->moved_rows, 0);
  }
  cg_tables_free(b);
  if (keep) return a;
  cg_tables_free(a);
  return NULL;
}

static void same_tables(cg_pattern *p, const sieve_shape *s, uint32_t bits) {
  same_with(p, s, bits, CG_TABLES_NO_MEMO, 0);
}

static void memo_agrees(void **st) {
  for (int round = 0; round < 120; round++) {
    cg_pattern *p = rpattern();
    p->block_q = 16 * rint_in(1, 4);
    p->block_k = 32 * rint_in(1, 2);
    sieve_shape s = rshape(14);
    same_tables(p, &s, round % 2 ? ~0u >> (32 - p->nclasses) : 0);
    cg_pattern_free(p);
  }
}

/*
** Keys relative to the query block (translation pairs: q_i read only
** against k_j, through a difference or a comparison) must not merge pairs
** whose bits differ: windows and comparisons over scaled and offset
** coordinates, mixed with an absolute condition on one side, and values
** past the memo's range (2^58), where it must stand aside.
*/
static void memo_translation(void **st) {
  static const int64_t scale[] = {1, 3, 1000, (int64_t)1 << 40, (int64_t)1 << 57, (int64_t)1 << 60};
  for (int round = 0; round < 60; round++) {
    cg_pattern *p = cg_pattern_new();
    mb m = {p->g};
    p->name = "shifted";
    p->block_q = 16 * rint_in(1, 4);
    p->block_k = 32;
    int64_t f = scale[rint_in(0, 5)];
    cg_ref qi = B(&m, CG_ADD, B(&m, CG_MUL, V(&m, CG_V_QIDX), C(&m, f)), C(&m, rint_in(-50, 50)));
    cg_ref ki = B(&m, CG_MUL, V(&m, CG_V_KIDX), C(&m, f));
    cg_ref cmp;
    switch (rnd() % 4) {
    case 0: cmp = B(&m, CG_LE, ki, qi); break;
    case 1: cmp = B(&m, CG_LT, qi, ki); break;
    case 2: /* f * 40 wraps past 2^63 at the largest scales, as the mask's arithmetic does */
      cmp = B(&m, CG_LE, cg_un(m.g, CG_ABS, B(&m, CG_SUB, qi, ki)),
              C(&m, (int64_t)((uint64_t)f * (uint64_t)rint_in(0, 40))));
      break;
    default: cmp = B(&m, CG_NE, qi, ki); break;
    }
    cg_ref grid = B(&m, CG_EQ, B(&m, CG_MOD, V(&m, CG_V_KX), C(&m, rint_in(2, 5))), C(&m, 0));
    cg_ref near = B(&m, CG_AND, within(&m, CG_V_QY, CG_V_KY, rint_in(0, 3)), within(&m, CG_V_QX, CG_V_KX, rint_in(0, 3)));
    cg_ref mask = B(&m, CG_OR, B(&m, CG_AND, cmp, near), B(&m, CG_AND, grid, within(&m, CG_V_QT, CG_V_KT, 1)));
    p->nclasses = 1;
    p->classes = cg_alloc(p->arena, sizeof(cg_class));
    p->classes[0] = (cg_class){.name = "c", .layout = rlayout(), .mask = mask};
    p->period = 1;
    p->head_class = cg_alloc(p->arena, sizeof(int));
    sieve_shape s = rshape(12);
    check_against_brute_force(p, &s, 0, 0);
    same_tables(p, &s, rnd() % 2);
    cg_pattern_free(p);
  }
}

/*
** A mask whose pairs never repeat (q.idx * k.idx / 7 odd, near the
** diagonal): the memo misses on every lookup and turns itself off part way
** through the table; the rows after that take witnesses and refinement,
** and the tables stay those of the build without the memo.
*/
static void memo_gives_up(void **st) {
  cg_pattern *p = cg_pattern_new();
  mb m = {p->g};
  p->name = "unique";
  p->block_q = p->block_k = 16;
  cg_ref odd = B(&m, CG_EQ, B(&m, CG_MOD, B(&m, CG_DIV, B(&m, CG_MUL, V(&m, CG_V_QIDX), V(&m, CG_V_KIDX)), C(&m, 7)),
                                C(&m, 2)), C(&m, 1));
  p->nclasses = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  p->classes[0] = (cg_class){.name = "c", .layout = {.kind = CG_LAYOUT_IDENTITY},
                             .mask = B(&m, CG_AND, within(&m, CG_V_QIDX, CG_V_KIDX, 100), odd)};
  p->period = 1;
  p->head_class = cg_alloc(p->arena, sizeof(int));
  sieve_shape s = {1, 1, 64, 16, 32, 32, 0, 0}; /* 16384 tokens: 1024 x 1024 blocks */
  same_tables(p, &s, 0);
  cg_pattern_free(p);
}

/*
** The micro-pair cache (cg_blocks_micro.c): a distinct block pair's 8 x 8
** micro pairs, and its 32 x 32 mini pairs where blocks are whole
** mini-blocks, are keyed like the memo's block pairs and evaluated once.
** Radial-like masks (a spatial reach that shrinks with the frame
** distance, a sink frame read absolutely, text) repeat micro pairs across
** positions, blocks and specialisations; block sizes with and without
** mini-blocks (multiples of 32), ragged sequences (a short last
** micro-block), both layouts. Lists, counts and every bit against brute
** force and against the build without the memo.
*/
static void micro_pairs(void **st) {
  static const int sizes[][2] = {{64, 64}, {128, 128}, {40, 96}, {96, 32}, {128, 64}, {24, 160}};
  for (int round = 0; round < 24; round++) {
    cg_pattern *p = cg_pattern_new();
    mb m = {p->g};
    p->name = "radial-like";
    p->block_q = sizes[round % 6][0];
    p->block_k = sizes[round % 6][1];
    cg_ref d = dist(&m, CG_V_QT, CG_V_KT);
    int r = rint_in(1, 6);
    cg_ref reach = cg_select(m.g, B(&m, CG_LE, d, C(&m, 1)), C(&m, r),
                             cg_select(m.g, B(&m, CG_LE, d, C(&m, 3)), C(&m, r / 2), C(&m, -1)));
    cg_ref near = B(&m, CG_AND, B(&m, CG_LE, dist(&m, CG_V_QY, CG_V_KY), reach),
                    B(&m, CG_LE, dist(&m, CG_V_QX, CG_V_KX), reach));
    cg_ref mask = B(&m, CG_OR, near, B(&m, CG_EQ, V(&m, CG_V_KT), C(&m, rint_in(0, 1))));
    if (rnd() % 2) mask = B(&m, CG_OR, mask, B(&m, CG_OR, V(&m, CG_V_QTEXT), V(&m, CG_V_KTEXT)));
    p->nclasses = 1;
    p->classes = cg_alloc(p->arena, sizeof(cg_class));
    p->classes[0] = (cg_class){.name = "c", .layout = {.kind = (cg_layout_kind)(round / 6 % 2)}, .mask = mask};
    p->period = 1;
    p->head_class = cg_alloc(p->arena, sizeof(int));
    sieve_shape s = {.batch = 1, .heads = 1, .head_dim = 64, .frames = rint_in(3, 6), .height = rint_in(8, 20),
                     .width = rint_in(9, 33), .text = rnd() % 2 ? rint_in(1, 30) : 0, .text_after = rint_in(0, 1)};
    check_flags(p, &s, 0, 0, CG_TABLES_EXACT);
    if (p->block_k % 32 == 0) check_bits(p, &s, 0, 0, 1);
    same_tables(p, &s, p->block_k % 32 == 0);
    cg_pattern_free(p);
  }
}

/*
** Rows copied from an earlier row under translation (cg_blocks_reuse.c),
** whole or (without bits) their classes only, must be the rows built
** afresh: lists, bits, counts and statistics, and the bits the
** brute-force mask gives. Radial-like masks on grids whose
** blocks repeat their shape, with a term that reads a coordinate
** otherwise than as a difference with its partner (an anchor frame, an
** absolute column, a cross pair, a scaled row): a row may copy only the
** key blocks such a term cannot tell apart.
*/
static void moved_rows(void **st) {
  int64_t moved = 0, moved_cls = 0;
  for (int round = 0; round < 40; round++) {
    cg_pattern *p = cg_pattern_new();
    mb m = {p->g};
    p->name = "moved";
    p->block_q = p->block_k = round % 3 ? 32 : 64;
    cg_ref d = dist(&m, CG_V_QT, CG_V_KT);
    int r = rint_in(1, 5);
    cg_ref reach = cg_select(m.g, B(&m, CG_LE, d, C(&m, 1)), C(&m, r),
                             cg_select(m.g, B(&m, CG_LE, d, C(&m, 3)), C(&m, r / 2), C(&m, -1)));
    cg_ref mask = B(&m, CG_AND, B(&m, CG_LE, dist(&m, CG_V_QY, CG_V_KY), reach),
                    B(&m, CG_LE, dist(&m, CG_V_QX, CG_V_KX), reach));
    switch (round % 5) {
    case 1: mask = B(&m, CG_OR, mask, B(&m, CG_EQ, V(&m, CG_V_KT), C(&m, rint_in(0, 2)))); break;
    case 2: mask = B(&m, CG_AND, mask, B(&m, CG_LT, V(&m, CG_V_QX), C(&m, rint_in(2, 12)))); break;
    case 3: mask = B(&m, CG_OR, mask, B(&m, CG_LE, dist(&m, CG_V_QY, CG_V_KX), C(&m, rint_in(0, 3)))); break;
    case 4:
      mask = B(&m, CG_OR, mask,
               B(&m, CG_LE, cg_un(m.g, CG_ABS, B(&m, CG_SUB, B(&m, CG_MUL, V(&m, CG_V_QY), C(&m, 2)), V(&m, CG_V_KY))),
                 C(&m, 1)));
      break;
    }
    if (rnd() % 3 == 0) mask = B(&m, CG_OR, mask, B(&m, CG_OR, V(&m, CG_V_QTEXT), V(&m, CG_V_KTEXT)));
    p->nclasses = 1;
    p->classes = cg_alloc(p->arena, sizeof(cg_class));
    p->classes[0] = (cg_class){.name = "c", .layout = {.kind = (cg_layout_kind)(round / 5 % 2)}, .mask = mask};
    p->period = 1;
    p->head_class = cg_alloc(p->arena, sizeof(int));
    static const int widths[] = {8, 16, 32, 10, 24};
    sieve_shape s = {.batch = 1, .heads = 1, .head_dim = 64, .frames = rint_in(4, 9), .height = rint_in(6, 16),
                     .width = widths[rnd() % 5], .text = rnd() % 3 ? 0 : rint_in(1, 40), .text_after = rint_in(0, 1)};
    cg_tableset *ts = same_with(p, &s, 1, CG_TABLES_NO_REUSE, 1);
    moved += ts->moved_rows;
    cg_tables_free(ts);
    /* Without bits rows copy their classes only. */
    ts = same_with(p, &s, 0, CG_TABLES_NO_REUSE, 1);
    moved_cls += ts->moved_rows;
    cg_tables_free(ts);
    check_bits(p, &s, 0, 0, 1);
    cg_pattern_free(p);
  }
  /* The paths under test ran. */
  assert_true(moved > 0);
  assert_true(moved_cls > 0);
}

/*
** Rows copied under translation on masks built to tell a moved row from
** the row it would copy, each against the plain build (no memo, no copy)
** and against the build without copies (statistics too). A copy needs
** the query block's interfaces to be the earlier block's moved (those the
** mask reads only against one partner, by a difference or a comparison,
** by one shift; the others equal; the same length) and each copied key
** block likewise, moved by its partner's shift. Each mask reads some
** interface otherwise: a query or key sink (q.t or k.t against a
** constant), a sum, a scaled coordinate, a coordinate against two
** partners, rows in blocks they do not divide (equal intervals, other
** sequences), text against text, and a last block cut short that matches
** the full one before it in every other way. Blocks of 16 to 48 tokens, the three
** layouts (tiles ragged), text before and after, bits on (copied
** results) and off (copied classes), one thread and two.
*/
static cg_ref reach_near(mb *m, int r) {
  cg_ref d = dist(m, CG_V_QT, CG_V_KT);
  cg_ref reach = cg_select(m->g, B(m, CG_LE, d, C(m, 1)), C(m, r),
                           cg_select(m->g, B(m, CG_LE, d, C(m, 3)), C(m, r / 2), C(m, -1)));
  return B(m, CG_AND, B(m, CG_LE, dist(m, CG_V_QY, CG_V_KY), reach), B(m, CG_LE, dist(m, CG_V_QX, CG_V_KX), reach));
}

static cg_ref trap_mask(mb *m, int kind) {
  cg_ref near = reach_near(m, 2), frames = within(m, CG_V_QT, CG_V_KT, 1);
  switch (kind) {
  case 0: /* query sink: rows of frame 0 see everything */
    return B(m, CG_OR, near, B(m, CG_EQ, V(m, CG_V_QT), C(m, 0)));
  case 1: /* key sink, and rows past frame 1 that see nothing else */
    return B(m, CG_AND, B(m, CG_OR, near, B(m, CG_EQ, V(m, CG_V_KT), C(m, 0))), B(m, CG_LE, V(m, CG_V_QT), C(m, 2)));
  case 2: /* anti-diagonal: q.x + k.x */
    return B(m, CG_AND, frames,
             B(m, CG_LE, cg_un(m->g, CG_ABS, B(m, CG_SUB, B(m, CG_ADD, V(m, CG_V_QX), V(m, CG_V_KX)), C(m, 7))), C(m, 1)));
  case 3: /* q.x against k.x as a difference, and in a sum */
    return B(m, CG_AND, B(m, CG_AND, frames, within(m, CG_V_QX, CG_V_KX, 3)),
             B(m, CG_NE, B(m, CG_MOD, B(m, CG_ADD, V(m, CG_V_QX), V(m, CG_V_KX)), C(m, 3)), C(m, 0)));
  case 4: /* q.y against two partners */
    return B(m, CG_AND, frames, B(m, CG_OR, within(m, CG_V_QY, CG_V_KY, 1), within(m, CG_V_QY, CG_V_KX, 1)));
  case 5: /* scaled: 2 q.y against k.y */
    return B(m, CG_AND, frames,
             B(m, CG_LE, cg_un(m->g, CG_ABS, B(m, CG_SUB, B(m, CG_MUL, V(m, CG_V_QY), C(m, 2)), V(m, CG_V_KY))), C(m, 1)));
  case 6: /* text rows against text columns only, video by frames: blocks of one frame, or of text, alike */
    return B(m, CG_AND, B(m, CG_EQ, V(m, CG_V_QTEXT), V(m, CG_V_KTEXT)), B(m, CG_OR, V(m, CG_V_QTEXT), frames));
  case 7: /* rows near rows, in rows that do not divide the blocks */
    return B(m, CG_AND, frames, within(m, CG_V_QY, CG_V_KY, 1));
  default: /* frames, every third column: query blocks of one frame alike, the last cut short */
    return B(m, CG_AND, frames, B(m, CG_EQ, B(m, CG_MOD, V(m, CG_V_KX), C(m, 3)), C(m, 0)));
  }
}

/* One trap (mask(m, kind)) on one shape: the default build against the one
** without copies (statistics too) and the plain one; its rows copied, and
** into *unmoved (where given) its key blocks copied unmoved. */
static int64_t trap_with(cg_ref (*mask)(mb *, int), int kind, const int blocks[2], cg_layout lay, sieve_shape s,
                         uint32_t bits, int64_t *unmoved) {
  cg_pattern *p = cg_pattern_new();
  mb m = {p->g};
  p->name = "trap";
  p->block_q = blocks[0];
  p->block_k = blocks[1];
  p->nclasses = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  p->classes[0] = (cg_class){.name = "c", .layout = lay, .mask = mask(&m, kind)};
  p->period = 1;
  p->head_class = cg_alloc(p->arena, sizeof(int));
  cg_tableset *ts = same_with(p, &s, bits, CG_TABLES_NO_REUSE, 1);
  int64_t moved = ts->moved_rows;
  if (unmoved) *unmoved = ts->unmoved_blocks;
  cg_tables_free(ts);
  same_with(p, &s, bits, CG_TABLES_NO_MEMO | CG_TABLES_NO_REUSE, 0);
  cg_pattern_free(p);
  return moved;
}

static int64_t trap(int kind, const int blocks[2], cg_layout lay, sieve_shape s, uint32_t bits) {
  return trap_with(trap_mask, kind, blocks, lay, s, bits, NULL);
}

static void moved_row_traps(void **st) {
  static const int blocks[][2] = {{16, 16}, {32, 32}, {48, 48}, {16, 32}};
  static const cg_layout lays[] = {{CG_LAYOUT_IDENTITY, {1, 1, 1}}, {CG_LAYOUT_TRANSPOSE, {1, 1, 1}},
                                   {CG_LAYOUT_TILE, {2, 3, 5}}};
  static const sieve_shape shapes[] = {{1, 1, 64, 6, 6, 16, 0, 0}, {1, 1, 64, 6, 9, 12, 21, 0},
                                       {1, 1, 64, 6, 8, 10, 40, 1}, {1, 1, 64, 7, 6, 16, 37, 1}};
  int64_t moved = 0;
  for (int kind = 0; kind < 8; kind++)
    for (int c = 0; c < 12; c++) {
      if (c % 4 == 3) setenv("SIEVE_THREADS", "2", 1);
      const int *b = blocks[(c + kind) % 4];
      /* Bitmask rows are whole words: bits only on key blocks of 32 tokens. */
      moved += trap(kind, b, lays[c % 3], shapes[(c / 3 + kind) % 4], c % 6 != 5 && b[1] % 32 == 0);
      unsetenv("SIEVE_THREADS");
    }
  assert_true(moved > 0);
  /* A short last row whose tokens are the full row's before it, cut
  ** short (text before, blocks of two 16-column rows): a copy would keep
  ** that row's counts and bits. */
  sieve_shape ragged = {1, 1, 64, 4, 12, 16, 21, 0};
  assert_true(trap(8, blocks[1], lays[0], ragged, 1) > 0);
}

/*
** Key blocks copied unmoved from the row before (cg_blocks_reuse.c): where
** a query super row decides all of a key super-block's program but what
** reads key interfaces and query interfaces constant over the super row.
** Masks built to tell a row from the row before where the copy must not
** be taken: a key sink beside near terms (the copy's case, and a last
** query block cut short), a query frame read against a key column (equal
** decisions, another constant in the next super row), a query frame
** deciding whether a key column counts (other decisions). Frames of 16
** blocks of 32 tokens make a super row one frame.
*/
static cg_ref sink_mask(mb *m, int kind) {
  cg_ref sink = B(m, CG_EQ, V(m, CG_V_KT), C(m, 0));
  switch (kind) {
  case 0: /* the temporal sink */
    return B(m, CG_OR, reach_near(m, 2), sink);
  case 1: /* with text columns and rows: q.text is read, a constant 0 over video rows */
    return B(m, CG_OR, B(m, CG_OR, reach_near(m, 1), sink), B(m, CG_OR, V(m, CG_V_QTEXT), V(m, CG_V_KTEXT)));
  case 2: /* k.x against q.t */
    return B(m, CG_OR, sink, B(m, CG_EQ, V(m, CG_V_KX), V(m, CG_V_QT)));
  default: /* column 0, and column 1 up to frame 1 (from frame 2 on, q.t is no longer read) */
    return B(m, CG_OR, B(m, CG_EQ, V(m, CG_V_KX), C(m, 0)),
             B(m, CG_AND, B(m, CG_LE, V(m, CG_V_QT), C(m, 1)), B(m, CG_EQ, V(m, CG_V_KX), C(m, 1))));
  }
}

static void unmoved_copies(void **st) {
  static const int blocks[][2] = {{32, 32}, {16, 32}, {32, 64}};
  static const cg_layout lays[] = {{CG_LAYOUT_IDENTITY, {1, 1, 1}}, {CG_LAYOUT_TRANSPOSE, {1, 1, 1}}};
  static const sieve_shape shapes[] = {{1, 1, 64, 6, 16, 32, 0, 0}, {1, 1, 64, 7, 12, 20, 0, 0},
                                       {1, 1, 64, 6, 16, 32, 7, 1}, {1, 1, 64, 5, 16, 32, 40, 0}};
  int64_t all = 0;
  for (int kind = 0; kind < 4; kind++) {
    int64_t n = 0;
    for (int c = 0; c < 12; c++) {
      int64_t u;
      if (c % 6 == 5) setenv("SIEVE_THREADS", "2", 1);
      trap_with(sink_mask, kind, blocks[c % 3], lays[c / 4 % 2], shapes[(c + kind) % 4], 1, &u);
      unsetenv("SIEVE_THREADS");
      n += u;
    }
    /* Each mask copies somewhere: the checks, not the lack of a copy, keep it right. */
    assert_true(n > 0);
    all += n;
  }
  assert_true(all > 0);
}

/*
** Rows copied under translation where a query block is several key blocks
** long, as in a kernel's merged rows (192-token rows over 64-token key
** blocks): a row looks back by the tokens its key blocks move, d key
** blocks being d bk / bq query blocks. A near mask with a key sink,
** without and with text rows and columns, the three layouts, text before
** and after, bits on and off, one thread and two: each build against the
** ones without copies and without the memo, and rows must have been
** copied.
*/
static void moved_rows_merged(void **st) {
  static const int blocks[][2] = {{96, 32}, {64, 32}, {48, 16}};
  static const cg_layout lays[] = {{CG_LAYOUT_IDENTITY, {1, 1, 1}}, {CG_LAYOUT_TRANSPOSE, {1, 1, 1}},
                                   {CG_LAYOUT_TILE, {2, 4, 4}}};
  static const sieve_shape shapes[] = {{1, 1, 64, 6, 8, 16, 0, 0}, {1, 1, 64, 5, 12, 16, 21, 0},
                                       {1, 1, 64, 6, 8, 24, 40, 1}};
  int64_t moved = 0;
  for (int kind = 0; kind < 2; kind++)
    for (int c = 0; c < 9; c++) {
      if (c % 4 == 3) setenv("SIEVE_THREADS", "2", 1);
      const int *b = blocks[c % 3];
      moved += trap_with(sink_mask, kind, b, lays[c / 3], shapes[(c + kind) % 3], c % 5 != 4 && b[1] % 32 == 0, NULL);
      unsetenv("SIEVE_THREADS");
    }
  assert_true(moved > 0);
}

/* Heads whose fixed masks and layouts agree share a table. */
static void heads_share_tables(void **st) {
  cg_pattern *p = cg_pattern_new();
  mb m = {p->g};
  p->name = "shared";
  p->nclasses = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  /* Heads 0 mod 3 get a frame window of 1, the others of 2. */
  cg_ref every3 = B(&m, CG_EQ, B(&m, CG_MOD, V(&m, CG_V_HEAD), C(&m, 3)), C(&m, 0));
  p->classes[0] = (cg_class){
    .name = "c", .layout = {.kind = CG_LAYOUT_IDENTITY},
    .mask = cg_select(p->g, every3, within(&m, CG_V_QT, CG_V_KT, 1), within(&m, CG_V_QT, CG_V_KT, 2))};
  p->period = 1;
  p->head_class = cg_alloc(p->arena, sizeof(int));
  sieve_shape s = {1, 7, 64, 5, 4, 4, 0, 0};
  cg_tableset *ts;
  cg_err e = {0};
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_OK);
  assert_int_equal(ts->ntables, 2);
  for (int h = 0; h < 7; h++) assert_int_equal(ts->head_table[h], h % 3 == 0 ? 0 : 1);
  cg_tables_free(ts);
  cg_pattern_free(p);
}

static void rejects_bad_input(void **st) {
  cg_pattern *p = rpattern();
  cg_tableset *ts;
  cg_err e = {0};
  sieve_shape s = {1, 2, 64, 0, 4, 4, 0, 0};
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_ERR_SHAPE);
  assert_non_null(strstr(e.msg, "frames"));
  s.frames = 2;
  p->classes[0].layout = (cg_layout){.kind = CG_LAYOUT_TILE, .tile = {0, 1, 1}};
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "tile"));
  p->classes[0].layout.kind = CG_LAYOUT_IDENTITY;
  p->head_class[0] = 7;
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_ERR_ARG);
  /* Bitmask rows are whole 32-bit words: key blocks of 48 tokens refused. */
  p->head_class[0] = 0;
  p->block_q = p->block_k = 48;
  assert_int_equal(cg_tables_build_bits(p, &s, 0, 0, 0, 1, &ts, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "multiple of 32"));
  p->block_k = 64;
  assert_int_equal(cg_tables_build_bits(p, &s, 0, 0, 0, 1, &ts, &e), SIEVE_OK);
  cg_tables_free(ts);
  cg_pattern_free(p);
}

/* ------------------------------------------------------ shipped patterns */

static int lua_pattern(const struct dirent *d) {
  size_t n = strlen(d->d_name);
  return n > 4 && !strcmp(d->d_name + n - 4, ".lua");
}

static void shipped_patterns(void **st) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  if (!src) skip();
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/patterns", src);
  struct dirent **ents;
  int n = scandir(dir, &ents, lua_pattern, alphasort);
  assert_true(n > 0);
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  for (int i = 0; i < n; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
    sieve_pattern *sp;
    if (sieve_pattern_load(ctx, path, NULL, &sp) != SIEVE_OK) fail_msg("%s: %s", path, sieve_errmsg(ctx));
    cg_pattern *p = lp_pattern_ir(sp);
    for (int round = 0; round < 30; round++) {
      /* The shipped block sizes, and smaller ones that make many blocks. */
      int bq = p->block_q, bk = p->block_k;
      if (round % 2) {
        p->block_q = 16 * rint_in(1, 4);
        p->block_k = 16 * rint_in(1, 4);
      }
      sieve_shape s = rshape(7);
      check_against_brute_force(p, &s, rint_in(0, 50), rint_in(0, 40));
      p->block_q = bq;
      p->block_k = bk;
    }
    sieve_pattern_free(sp);
    free(ents[i]);
  }
  free(ents);
  sieve_close(ctx);
}

/* Blocks larger than a kernel step (the wide configs' 384-token tables):
** the irregular bench mask at 384 and 192, text before and after. */
static void large_blocks(void **st) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  if (!src) skip();
  char path[4096];
  snprintf(path, sizeof path, "%s/bench/patterns/dilated.lua", src);
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  const char *blocks[] = {"block=384", "block=192"};
  for (int i = 0; i < 2; i++) {
    const char *params[] = {blocks[i], NULL};
    sieve_pattern *sp;
    if (sieve_pattern_load(ctx, path, params, &sp) != SIEVE_OK) fail_msg("%s: %s", path, sieve_errmsg(ctx));
    for (int after = 0; after < 2; after++) {
      sieve_shape s = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 7, .height = 18, .width = 30,
                       .text = 77, .text_after = after};
      check_against_brute_force(lp_pattern_ir(sp), &s, 0, 0);
    }
    sieve_pattern_free(sp);
  }
  sieve_close(ctx);
}

/* The public API over the same tables: info, views, errors; the tables
** outlive their pattern. */
static void public_api(void **st) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  if (!src) skip();
  char path[4096];
  snprintf(path, sizeof path, "%s/patterns/svg.lua", src);
  sieve_ctx *ctx;
  sieve_pattern *sp;
  sieve_tables *t;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  if (sieve_pattern_load(ctx, path, NULL, &sp) != SIEVE_OK) fail_msg("%s", sieve_errmsg(ctx));
  sieve_shape s = {1, 4, 128, 5, 6, 7, 9, 0};
  int64_t S = sieve_shape_tokens(&s), want[4];
  uint8_t *cls = malloc((size_t)(S * S));
  cg_err e = {0};
  for (int h = 0; h < 4; h++)
    assert_int_equal(cg_ref_blocks(lp_pattern_ir(sp), &s, h, 3, 2, 128, 128, cls, &want[h], &e), SIEVE_OK);
  free(cls);
  assert_int_equal(sieve_tables_build(ctx, sp, &s, 3, 2, &t), SIEVE_OK);
  sieve_pattern_free(sp);
  sieve_tables_info info;
  sieve_tables_info_get(t, &info);
  assert_int_equal(info.heads, 4);
  assert_int_equal(info.tables, 2);
  assert_int_equal(info.q_blocks, (S + 127) / 128);
  assert_true(info.build_ms >= 0);
  for (int h = 0; h < 4; h++) {
    sieve_table_view v;
    assert_int_equal(sieve_tables_view(t, sieve_tables_head_table(t, h), &v), SIEVE_OK);
    double exact = (double)want[h] / ((double)S * S);
    if (v.estimated_blocks == 0) assert_true(v.density == exact);
    else assert_true(v.density > 0.5 * exact && v.density < 1.5 * exact);
    assert_string_equal(v.klass, h % 2 ? "temporal" : "spatial");
    assert_string_equal(v.layout, h % 2 ? "transpose" : "identity");
    assert_int_equal(v.full_ptr[v.q_blocks] + v.part_ptr[v.q_blocks], v.full_blocks + v.partial_blocks);
  }
  sieve_table_view v;
  assert_int_equal(sieve_tables_head_table(t, 4), -1);
  assert_int_equal(sieve_tables_view(t, 2, &v), SIEVE_ERR_ARG);
  sieve_tables_free(t);
  /* A bad shape is refused with its cause. */
  assert_int_equal(sieve_pattern_load(ctx, path, NULL, &sp), SIEVE_OK);
  s.height = 0;
  assert_int_equal(sieve_tables_build(ctx, sp, &s, 0, 0, &t), SIEVE_ERR_SHAPE);
  assert_non_null(strstr(sieve_errmsg(ctx), "height"));
  assert_int_equal(sieve_tables_build(ctx, NULL, &s, 0, 0, &t), SIEVE_ERR_ARG);
  sieve_pattern_free(sp);
  sieve_close(ctx);
}

/* Packing refuses tables past the bound with SIEVE_ERR_LIMIT and the
** numbers, as plan creation must, before anything reaches the GPU. */
static void memory_bound(void **st) {
  cg_pattern *p = cg_pattern_new();
  p->name = "dense";
  p->block_q = p->block_k = 16;
  p->nclasses = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  p->classes[0] = (cg_class){.name = "c", .layout = {.kind = CG_LAYOUT_IDENTITY}, .mask = cg_bool(p->g, 1)};
  p->period = 1;
  p->head_class = cg_alloc(p->arena, sizeof(int));
  sieve_shape s = {1, 3, 64, 16, 16, 16, 0, 0}; /* 4096 tokens: 256 x 256 blocks */
  cg_tableset *ts;
  cg_err e = {0};
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_OK);
  int64_t want = 4 * (2 * 256 + 1 + 256 * 256);
  assert_int_equal(cg_table_bytes(&ts->tables[0]), want);
  assert_int_equal(cg_tables_bytes(ts), want + 4 * 3);
  int32_t *buf, off[3];
  size_t n;
  setenv("SIEVE_TABLES_MAX_MB", "1", 1);
  assert_true(cg_tables_limit() == 1 << 20);
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_OK); /* 257 KiB fit */
  free(buf);
  cg_tables_free(ts);
  p->block_q = p->block_k = 16;
  s.frames = 64; /* 16384 tokens: 1024 x 1024 blocks, 4 MiB */
  assert_int_equal(cg_tables_build(p, &s, 0, 0, &ts, &e), SIEVE_OK);
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_ERR_LIMIT);
  assert_non_null(strstr(e.msg, "4.0 MiB"));
  assert_non_null(strstr(e.msg, "SIEVE_TABLES_MAX_MB"));
  unsetenv("SIEVE_TABLES_MAX_MB");
  cg_tables_free(ts);
  cg_pattern_free(p);
}

/*
** Bitmasks count against the same bound, and the error says how much of
** the memory is theirs. A token window over idx with a long predicate
** (bits 0 and 1 of k.idx + q.idx * 7 decide) makes every diagonal block
** partial and its bitmask distinct; the cost chooses bitmasks for it and
** predicates for a frame window.
*/
static void bitmask_memory(void **st) {
  cg_pattern *p = cg_pattern_new();
  mb m = {p->g};
  p->name = "scatter";
  p->block_q = p->block_k = 32;
  p->nclasses = 2;
  p->classes = cg_alloc(p->arena, 2 * sizeof(cg_class));
  cg_ref h = B(&m, CG_MOD, B(&m, CG_ADD, B(&m, CG_MUL, V(&m, CG_V_QIDX), C(&m, 7)), V(&m, CG_V_KIDX)), C(&m, 4));
  cg_ref mask = B(&m, CG_AND, within(&m, CG_V_QIDX, CG_V_KIDX, 40), B(&m, CG_OR, B(&m, CG_EQ, h, C(&m, 1)),
                                                                     B(&m, CG_LE, dist(&m, CG_V_QX, CG_V_KX), C(&m, 1))));
  p->classes[0] = (cg_class){.name = "scatter", .layout = {.kind = CG_LAYOUT_IDENTITY}, .mask = mask};
  p->classes[1] = (cg_class){.name = "window", .layout = {.kind = CG_LAYOUT_IDENTITY}, .mask = within(&m, CG_V_QT, CG_V_KT, 1)};
  p->period = 2;
  p->head_class = cg_alloc(p->arena, 2 * sizeof(int));
  p->head_class[1] = 1;
  sieve_shape s = {1, 2, 64, 16, 16, 16, 0, 0}; /* 4096 tokens: 128 x 128 blocks */
  assert_true(cg_bits_pair_ops(p, &s, 0) > CG_BITS_PAIR_OPS);
  assert_true(cg_bits_pair_ops(p, &s, 1) <= CG_BITS_PAIR_OPS);
  assert_int_equal(cg_bits_classes(p, &s, CG_BITS_COST), 1);
  assert_int_equal(cg_bits_classes(p, &s, CG_BITS_ALWAYS), 3);
  assert_int_equal(cg_bits_classes(p, &s, CG_BITS_NEVER), 0);
  cg_tableset *ts;
  cg_err e = {0};
  assert_int_equal(cg_tables_build_bits(p, &s, 0, 0, 0, 1, &ts, &e), SIEVE_OK);
  const cg_table *t = &ts->tables[ts->head_table[0]];
  assert_true(t->bits && t->nbitmasks > 0 && t->nbitmasks <= t->npart);
  assert_int_equal(cg_table_bits_bytes(t), t->nbitmasks * 32 * 4);
  assert_int_equal(cg_tables_bits_bytes(ts), cg_table_bits_bytes(t));
  assert_int_equal(cg_table_bytes(t), 4 * (2 * 128 + 1 + 2 * (t->nfull + t->npart)) + cg_table_bits_bytes(t));
  int32_t *buf, off[2];
  size_t n;
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_OK);
  free(buf);
  cg_tables_free(ts);
  /* 32768 tokens of 128-token blocks, bitmasks that do not repeat (q.idx *
  ** k.idx / 100000 odd): over 1 MiB of them. */
  p->block_q = p->block_k = 128;
  p->classes[0].mask = B(&m, CG_AND, within(&m, CG_V_QIDX, CG_V_KIDX, 200),
                         B(&m, CG_EQ, B(&m, CG_MOD, B(&m, CG_DIV, B(&m, CG_MUL, V(&m, CG_V_QIDX), V(&m, CG_V_KIDX)),
                                                      C(&m, 100000)), C(&m, 2)), C(&m, 1)));
  s.frames = 128;
  assert_int_equal(cg_tables_build_bits(p, &s, 0, 0, 0, 1, &ts, &e), SIEVE_OK);
  assert_true(cg_tables_bits_bytes(ts) > (1 << 20));
  setenv("SIEVE_TABLES_MAX_MB", "1", 1);
  assert_int_equal(cg_tables_pack(ts, &buf, &n, off, &e), SIEVE_ERR_LIMIT);
  assert_non_null(strstr(e.msg, "bitmasks"));
  assert_non_null(strstr(e.msg, "SIEVE_PARTIAL=predicate"));
  unsetenv("SIEVE_TABLES_MAX_MB");
  cg_tables_free(ts);
  cg_pattern_free(p);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(random_masks),
    cmocka_unit_test(threaded_build),
    cmocka_unit_test(tables_after_fork),
    cmocka_unit_test(memo_agrees),
    cmocka_unit_test(memo_translation),
    cmocka_unit_test(memo_gives_up),
    cmocka_unit_test(micro_pairs),
    cmocka_unit_test(moved_rows),
    cmocka_unit_test(moved_rows_merged),
    cmocka_unit_test(moved_row_traps),
    cmocka_unit_test(unmoved_copies),
    cmocka_unit_test(heads_share_tables),
    cmocka_unit_test(rejects_bad_input),
    cmocka_unit_test(shipped_patterns),
    cmocka_unit_test(large_blocks),
    cmocka_unit_test(public_api),
    cmocka_unit_test(memory_bound),
    cmocka_unit_test(bitmask_memory),
  };
  return sieve_run_tests(t, setup_seed, NULL);
}
