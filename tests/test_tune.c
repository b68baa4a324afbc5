/*
** The autotuner without a GPU: the config space (spec strings, enumeration,
** pruning by the generator's limits and by shared memory), the tuning
** database (lines, merge, atomic replacement, concurrent writers, lookups
** for plans), the sweep journal, and whole sweeps on the stand-in driver of
** tests/fake_cuda.h: parallel builds, wrong kernels rejected, the known
** fastest config stored, an interrupted sweep resumed, the budget kept, and
** the next plan picking the winner up.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "api.h"
#include "fake_cuda.h"
#include "lp.h"
#include "rt_tunedb.h"

static char patterns[4096], tmp[256];

static cg_pattern *load_src(const char *chunk, const char *src, const char *const *ov,
                            sieve_pattern **keep) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  if (sieve_pattern_load_string(ctx, chunk, src, ov, keep)) fail_msg("%s", sieve_errmsg(ctx));
  sieve_close(ctx);
  return lp_pattern_ir(*keep);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static char *pattern_source(const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s.lua", patterns, name);
  char *s = read_all(path);
  if (!s) fail_msg("cannot read %s", path);
  return s;
}

/* A shipped pattern, loaded from its text. */
static cg_pattern *load_named(const char *name, sieve_pattern **keep) {
  char *src = pattern_source(name), chunk[128];
  snprintf(chunk, sizeof chunk, "%s.lua", name);
  cg_pattern *p = load_src(chunk, src, NULL, keep);
  free(src);
  return p;
}

static void fresh_dir(const char *name, char *out, size_t n) {
  snprintf(out, n, "%s/%s", tmp, name);
  char cmd[1400];  /* two copies of a path of up to ~600 bytes */
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
  assert_int_equal(system(cmd), 0);
}

static int count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    size_t l = strlen(e->d_name), s = strlen(suffix);
    n += e->d_name[0] != '.' && l >= s && !strcmp(e->d_name + l - s, suffix);
  }
  if (d) closedir(d);
  return n;
}

/* ---------------------------------------------------------------- space */

static void spec_strings(void **st) {
  rt_tune_space sp;
  cg_err e = {0};
  assert_int_equal(rt_tune_space_parse("", &sp, &e), SIEVE_OK);
  assert_int_equal(sp.nbm * sp.nbn * sp.nwarps * sp.nstages, 192);
  assert_int_equal(sp.nsched, 3);
  assert_int_equal(rt_tune_space_parse("sched=0,2", &sp, &e), SIEVE_OK);
  assert_int_equal(sp.nsched, 2);
  assert_int_equal(sp.sched[1], CG_SCHED_ATOMIC);
  assert_int_equal(rt_tune_space_parse("sched=3", &sp, &e), SIEVE_ERR_ARG);
  assert_int_equal(rt_tune_space_parse("bm=128;bn=64,128;warps=4", &sp, &e), SIEVE_OK);
  assert_int_equal(sp.nbm, 1);
  assert_int_equal(sp.bm[0], 128);
  assert_int_equal(sp.nbn, 2);
  assert_int_equal(sp.bn[1], 128);
  assert_int_equal(sp.nwarps, 1);
  assert_int_equal(sp.nstages, 4);  /* not named: every value */
  assert_int_equal(rt_tune_space_parse("block_m=64;stages=3,3,1;", &sp, &e), SIEVE_OK);
  assert_int_equal(sp.bm[0], 64);
  assert_int_equal(sp.nstages, 2);  /* repeats collapse */
  assert_int_equal(rt_tune_space_parse("bm=96", &sp, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "bm=96 is not one of 64, 128, 192"));
  assert_int_equal(rt_tune_space_parse("tile=3", &sp, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "unknown key 'tile'"));
  assert_int_equal(rt_tune_space_parse("warps", &sp, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "expected KEY=VALUES"));
  assert_int_equal(rt_tune_space_parse("bn=", &sp, &e), SIEVE_ERR_ARG);
  assert_int_equal(rt_tune_space_parse("bn=64,", &sp, &e), SIEVE_ERR_ARG);
  assert_int_equal(rt_tune_space_parse("stages=x", &sp, &e), SIEVE_ERR_ARG);
}

static const char *small_blocks =
    "return sieve.pattern { name = \"tiny\", block = { q = 64, k = 64 }, mask = sieve.dense() }";

static void enumeration_prunes_before_compiling(void **st) {
  sieve_pattern *sp;
  cg_pattern *p = load_named("dense", &sp);
  cg_attn_spec s = {p, {.batch = 1, .heads = 2, .head_dim = 128, .frames = 2, .height = 8, .width = 16},
                    CG_BF16, CG_SM80, {0}, 0};
  rt_tune_space all;
  rt_tune_space_all(&all);
  rt_tune_cand c[RT_TUNE_MAX];
  int n = rt_tune_enumerate(&s, &all, 0, c);
  /* 96 configs of 4 and 8 warps; 96 of 12 and 16, each with 3 schedules. */
  assert_int_equal(n, 384);
  for (int i = 0; i < n; i++)
    if (c[i].cfg.sched) assert_true(c[i].cfg.warps == CG_WS_WARPS || c[i].cfg.warps == CG_WS3_WARPS);
  assert_true(c[0].is_default);
  cg_attn_config d = cg_attn_default_config(&s);
  assert_memory_equal(&c[0].cfg, &d, sizeof d);
  int pruned = 0, regs = 0;
  for (int i = 0; i < n; i++) {
    cg_err e = {0};
    cg_attn_spec x = s;
    x.cfg = c[i].cfg;
    /* Pruned exactly when the generator refuses: no compile is wasted on them. */
    assert_int_equal(c[i].state == RT_TUNE_PRUNED, cg_attn_check(&x, &e) != SIEVE_OK);
    pruned += c[i].state == RT_TUNE_PRUNED;
    regs += c[i].state == RT_TUNE_PRUNED && strstr(c[i].note, "registers") != NULL;
  }
  /* bm=128 on 4 warps is 32 rows a warp: with D=128 and bn=128 the
  ** accumulators do not fit in registers. */
  assert_true(regs > 0);
  assert_true(pruned < n);

  /* Shared memory: a 48 KiB device leaves only the small configs. */
  n = rt_tune_enumerate(&s, &all, 48 * 1024, c);
  int smem = 0;
  for (int i = 0; i < n; i++) {
    cg_attn_spec x = s;
    x.cfg = c[i].cfg;
    if (cg_attn_check(&x, NULL) == SIEVE_OK && cg_attn_smem_bytes(&x) > 48 * 1024) {
      assert_int_equal(c[i].state, RT_TUNE_PRUNED);
      assert_non_null(strstr(c[i].note, "shared memory"));
      smem++;
    }
  }
  assert_true(smem > 0);
  sieve_pattern_free(sp);

  /* A pattern with 64-token blocks leaves no room for block_m 128. */
  p = load_src("tiny.lua", small_blocks, NULL, &sp);
  s.pattern = p;
  n = rt_tune_enumerate(&s, &all, 0, c);
  for (int i = 0; i < n; i++)
    if (c[i].cfg.block_m >= 128 || c[i].cfg.block_n >= 128) assert_int_equal(c[i].state, RT_TUNE_PRUNED);
  rt_tune_space only;
  assert_int_equal(rt_tune_space_parse("bm=64;bn=32;warps=4;stages=1", &only, NULL), SIEVE_OK);
  assert_int_equal(rt_tune_enumerate(&s, &only, 0, c), 1);
  assert_false(c[0].is_default);  /* the default (64/64/4/2) is not in this space */
  sieve_pattern_free(sp);
}

/* ------------------------------------------------------------- database */

static void lines_round_trip(void **st) {
  char key[512], line[1024], back[512];
  sieve_pattern *sp;
  cg_pattern *p = load_named("dense", &sp);
  sieve_shape s = {.batch = 3, .heads = 24, .head_dim = 128, .frames = 33, .height = 45, .width = 80};
  rt_tunedb_key(p, &s, CG_BF16, CG_SM80, "NVIDIA H100 80GB HBM3", key, sizeof key);
  assert_non_null(strstr(key, " H24.D128.T33.Y45.X80.text0 bf16 sm_80 NVIDIA_H100_80GB_HBM3"));
  char hex[20];
  snprintf(hex, sizeof hex, "%016llx ", (unsigned long long)p->ir_hash);
  assert_memory_equal(key, hex, 17);
  s.batch = 1;  /* batch is not compiled in: same key */
  char key1[512];
  rt_tunedb_key(p, &s, CG_BF16, CG_SM80, "NVIDIA H100 80GB HBM3", key1, sizeof key1);
  assert_string_equal(key, key1);
  rt_tunedb_entry e = {{128, 64, 8, 3}, 12.3456, "dense", 1700000000}, f;
  rt_tunedb_format_line(key, &e, line, sizeof line);
  assert_int_equal(rt_tunedb_parse_line(line, back, sizeof back, &f), 1);
  assert_string_equal(back, key);
  assert_memory_equal(&f.cfg, &e.cfg, sizeof e.cfg);
  assert_true(fabs(f.ms - 12.3456) < 1e-9);
  assert_string_equal(f.pattern, "dense");
  assert_int_equal(f.time, 1700000000);
  assert_int_equal(rt_tunedb_parse_line("# comment", back, sizeof back, &f), 0);
  assert_int_equal(rt_tunedb_parse_line("   \n", back, sizeof back, &f), 0);
  assert_int_equal(rt_tunedb_parse_line("a b c d e bm=64 bn=64 warps=4", back, sizeof back, &f), -1);
  assert_int_equal(rt_tunedb_parse_line("a b c d e bm=64 bn=64 warps=4 stages=x", back, sizeof back, &f), -1);
  assert_int_equal(rt_tunedb_parse_line("a b c d e bm=64 bn=32 warps=4 stages=1 future=7", back,
                                        sizeof back, &f), 1);  /* unknown fields: later versions */
  assert_null(strstr(line, "sched"));  /* lines of a CTA per tile read as before */
  e.cfg = (cg_attn_config){128, 192, CG_WS_WARPS, 2, CG_SCHED_ATOMIC};
  rt_tunedb_format_line(key, &e, line, sizeof line);
  assert_non_null(strstr(line, " sched=2 "));
  assert_int_equal(rt_tunedb_parse_line(line, back, sizeof back, &f), 1);
  assert_memory_equal(&f.cfg, &e.cfg, sizeof e.cfg);
  sieve_pattern_free(sp);
}

static void database_merges_and_replaces_atomically(void **st) {
  char dir[300], path[4200];
  fresh_dir("db", dir, sizeof dir);
  rt_tunedb_path(dir, path, sizeof path);
  cg_err e = {0};
  rt_tunedb_entry a = {{128, 64, 4, 2}, 1.5, "x", 1}, b = {{64, 32, 8, 1}, 2.5, "y", 2}, got;
  int found = 1;
  assert_int_equal(rt_tunedb_get(path, "k1 s d a g", &got, &found, &e), SIEVE_OK);
  assert_false(found);  /* no file yet: not an error */
  assert_int_equal(rt_tunedb_put(path, "k1 s d a g", &a, &e), SIEVE_OK);
  /* Someone's own line, which sieve keeps as it is. */
  FILE *f = fopen(path, "a");
  fputs("hand written, not an entry\n", f);
  fclose(f);
  /* A reader with the file open keeps the whole old version: the new one
  ** is renamed over it, never written in place. */
  FILE *reader = fopen(path, "r");
  struct stat before, after;
  assert_int_equal(fstat(fileno(reader), &before), 0);
  assert_int_equal(rt_tunedb_put(path, "k2 s d a g", &b, &e), SIEVE_OK);
  assert_int_equal(rt_tunedb_put(path, "k1 s d a g", &b, &e), SIEVE_OK);
  assert_int_equal(stat(path, &after), 0);
  assert_true(before.st_ino != after.st_ino);
  char old[512] = "";
  assert_true(fread(old, 1, sizeof old - 1, reader) > 0);
  fclose(reader);
  assert_non_null(strstr(old, "bm=128 bn=64 warps=4 stages=2"));
  assert_null(strstr(old, "k2 s d a g"));
  assert_int_equal(rt_tunedb_get(path, "k1 s d a g", &got, &found, &e), SIEVE_OK);
  assert_true(found);
  assert_memory_equal(&got.cfg, &b.cfg, sizeof b.cfg);
  int64_t n;
  assert_int_equal(rt_tunedb_count(path, &n, &e), SIEVE_OK);
  assert_int_equal(n, 2);
  char *text = read_all(path);
  assert_non_null(strstr(text, "hand written, not an entry\n"));
  /* The replaced line keeps its place. */
  char *k1 = strstr(text, "k1 s d a g"), *hw = strstr(text, "hand written"), *k2 = strstr(text, "k2 s d a g");
  assert_true(k1 && hw && k2 && k1 < hw && hw < k2);
  assert_memory_equal(text, "# sieve tuning database", 23);
  free(text);
  assert_int_equal(count_files(dir, ".db"), 1);  /* no temp file left behind */
  DIR *d = opendir(dir);
  for (struct dirent *de; (de = readdir(d));)
    if (!strncmp(de->d_name, "tune.db.", 8)) assert_string_equal(de->d_name, "tune.db.lock");
  closedir(d);
}

/* Writers in several processes at once: the lock keeps every entry. */
static void concurrent_writers_lose_nothing(void **st) {
  char dir[300], path[4200];
  fresh_dir("dbc", dir, sizeof dir);
  rt_tunedb_path(dir, path, sizeof path);
  enum { PROCS = 4, EACH = 15 };
  fflush(NULL);
  for (int p = 0; p < PROCS; p++)
    if (fork() == 0) {
      for (int i = 0; i < EACH; i++) {
        char key[64];
        rt_tunedb_entry ent = {{64, 64, 4, 2}, p + i / 100.0, "c", i};
        snprintf(key, sizeof key, "p%d i%d d a g", p, i);
        if (rt_tunedb_put(path, key, &ent, NULL)) _exit(1);
      }
      _exit(0);
    }
  for (int p = 0; p < PROCS; p++) {
    int status;
    wait(&status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  int64_t n;
  assert_int_equal(rt_tunedb_count(path, &n, NULL), SIEVE_OK);
  assert_int_equal(n, PROCS * EACH);
}

/* -------------------------------------------------------------- journal */

static void journal_resumes_finished_candidates(void **st) {
  char dir[300], path[4200];
  fresh_dir("journal", dir, sizeof dir);
  const char *key = "abc H1.D64 bf16 sm_80 Fake";
  rt_tune_journal_path(dir, key, path, sizeof path);
  assert_non_null(strstr(path, "/tune-"));
  rt_tune_cand c[4] = {0}, j = {0};
  c[0].cfg = (cg_attn_config){128, 64, 4, 2};
  c[1].cfg = (cg_attn_config){64, 64, 4, 2};
  c[2].cfg = (cg_attn_config){64, 32, 8, 1};
  c[3].cfg = (cg_attn_config){64, 128, 4, 3};
  c[0].is_default = 1;
  cg_err e = {0};
  j = c[0];
  j.state = RT_TUNE_OK;
  j.ms = 1.25;
  j.tflops = 300.5;
  j.err_o = 3e-3;
  assert_int_equal(rt_tune_journal_append(path, key, &j, &e), SIEVE_OK);
  j = c[2];
  j.state = RT_TUNE_WRONG;
  snprintf(j.note, sizeof j.note, "O rel. error 1e-1\nwith a newline");
  assert_int_equal(rt_tune_journal_append(path, key, &j, &e), SIEVE_OK);
  /* A crash in the middle of a line: no newline, ignored. */
  FILE *f = fopen(path, "a");
  fputs("bm=64 bn=128 warps=4 stages=3 state=ok ms=0.1", f);
  fclose(f);
  int matched = 0;
  assert_int_equal(rt_tune_journal_read(path, key, c, 4, &matched, &e), SIEVE_OK);
  assert_int_equal(matched, 2);
  assert_int_equal(c[0].state, RT_TUNE_OK);
  assert_true(c[0].from_journal && c[0].is_default);
  assert_true(fabs(c[0].ms - 1.25) < 1e-9 && fabs(c[0].tflops - 300.5) < 1e-6);
  assert_int_equal(c[2].state, RT_TUNE_WRONG);
  assert_string_equal(c[2].note, "O rel. error 1e-1 with a newline");
  assert_int_equal(c[1].state, RT_TUNE_PENDING);
  assert_int_equal(c[3].state, RT_TUNE_PENDING);  /* the torn line */
  /* The journal of another key matches nothing. */
  rt_tune_cand d[1] = {{.cfg = {128, 64, 4, 2}}};
  assert_int_equal(rt_tune_journal_read(path, "another key", d, 1, &matched, &e), SIEVE_OK);
  assert_int_equal(matched, 0);
  assert_int_equal(rt_tune_journal_remove(path, &e), SIEVE_OK);
  assert_int_equal(access(path, F_OK), -1);
  assert_int_equal(rt_tune_journal_remove(path, &e), SIEVE_OK);  /* absent is fine */
}

/* ---------------------------------------------------- plans find winners */

/* The tuning database in dir gets ent for p at s (bf16 on the fake GPU). */
static void put_tuned(const char *dir, cg_pattern *p, const sieve_shape *s, const rt_tunedb_entry *ent) {
  char path[4200], key[512];
  rt_tunedb_path(dir, path, sizeof path);
  rt_tunedb_key(p, s, CG_BF16, CG_SM90A, "Fake GPU 0", key, sizeof key);
  assert_int_equal(rt_tunedb_put(path, key, ent, NULL), SIEVE_OK);
}

/* A context on the fake GPU whose cache (and so database) is a fresh dir. */
static sieve_ctx *open_fresh(const char *name, char *dir, size_t n) {
  sieve_ctx *ctx;
  fresh_dir(name, dir, n);
  fake_gpu_install();
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  assert_int_equal(sieve_cache_set_dir(ctx, dir), SIEVE_OK);
  return ctx;
}

/* A pattern whose mask folds to true at the shape runs the dense kernel
** in its default config: a tuned config of the pattern's own kernel is
** not what runs, so the database is passed over. */
static void folded_plans_pass_over_the_database(void **st) {
  char dir[300];
  sieve_ctx *ctx = open_fresh("folded", dir, sizeof dir);
  sieve_pattern *sp;
  sieve_plan *plan;
  char *src = pattern_source("lvsa");
  const char *ov[] = {"train_frames=5", "window=1", NULL};
  cg_pattern *p = load_src("lvsa.lua", src, ov, &sp);
  free(src);
  sieve_shape s = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 5, .height = 4, .width = 8};
  rt_tunedb_entry ent = {{64, 32, 4, 3}, 0.5, "lvsa", 0};
  put_tuned(dir, p, &s, &ent);
  rt_device dev;
  assert_int_equal(rt_device_query(0, &dev, NULL), SIEVE_OK);
  rt_plan_spec ps = {p, s, CG_BF16, CG_SM90A, {0}, 0, 0, NULL};
  cg_attn_config cfg;
  assert_int_equal(rt_tunedb_config(dir, &ps, &dev, &cfg), 0);
  assert_int_equal(sieve_plan_create(ctx, sp, &s, SIEVE_BF16, NULL, &plan), SIEVE_OK);
  assert_true(rt_plan_folded(api_plan_of(plan)));
  assert_false(rt_plan_stats_of(api_plan_of(plan))->tuned);
  sieve_plan_free(plan);
  /* Past the training length the entry is lvsa's kernel's, and it runs. */
  s.frames = 6;
  put_tuned(dir, p, &s, &ent);
  ps.shape = s;
  assert_int_equal(rt_tunedb_config(dir, &ps, &dev, &cfg), 1);
  sieve_close(ctx);
  sieve_pattern_free(sp);
  fake_gpu_remove();
}

static void plans_use_the_tuned_config(void **st) {
  char dir[300];
  sieve_ctx *ctx = open_fresh("plans", dir, sizeof dir);
  sieve_pattern *sp;
  sieve_plan *plan;
  cg_pattern *p = load_named("dense", &sp);
  sieve_shape s = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 2, .height = 4, .width = 8};
  sieve_config zero = {0}, got;
  /* Nothing tuned: the default. */
  assert_int_equal(sieve_plan_create(ctx, sp, &s, SIEVE_BF16, &zero, &plan), SIEVE_OK);
  sieve_plan_config(plan, &got);
  cg_attn_spec as = {p, s, CG_BF16, CG_SM90A, {0}, 0};  /* the fake GPU is sm_90: plans take sm_90a */
  cg_attn_config def = cg_attn_default_config(&as);
  assert_int_equal(got.block_n, def.block_n);
  assert_false(rt_plan_stats_of(api_plan_of(plan))->tuned);
  sieve_plan_free(plan);

  rt_tunedb_entry ent = {{64, 32, 4, 3}, 0.5, "dense", 0};
  put_tuned(dir, p, &s, &ent);
  assert_int_equal(sieve_plan_create(ctx, sp, &s, SIEVE_BF16, NULL, &plan), SIEVE_OK);
  sieve_plan_config(plan, &got);
  assert_int_equal(got.block_m, 64);
  assert_int_equal(got.block_n, 32);
  assert_int_equal(got.stages, 3);
  assert_true(rt_plan_stats_of(api_plan_of(plan))->tuned);
  sieve_plan_free(plan);

  /* A config given by the caller wins over the database. */
  sieve_config mine = {128, 64, 8, 2};
  assert_int_equal(sieve_plan_create(ctx, sp, &s, SIEVE_BF16, &mine, &plan), SIEVE_OK);
  sieve_plan_config(plan, &got);
  assert_int_equal(got.warps, 8);
  sieve_plan_free(plan);
  /* Other dtype, other key: the default. */
  assert_int_equal(sieve_plan_create(ctx, sp, &s, SIEVE_FP16, NULL, &plan), SIEVE_OK);
  assert_false(rt_plan_stats_of(api_plan_of(plan))->tuned);
  sieve_plan_free(plan);

  /* An entry the generator or the device no longer accepts is passed over. */
  rt_device dev;
  assert_int_equal(rt_device_query(0, &dev, NULL), SIEVE_OK);
  rt_plan_spec ps = {p, s, CG_BF16, CG_SM90A, {0}, 0, 0, NULL};
  cg_attn_config cfg;
  assert_int_equal(rt_tunedb_config(dir, &ps, &dev, &cfg), 1);
  dev.smem_optin = 1024;
  assert_int_equal(rt_tunedb_config(dir, &ps, &dev, &cfg), 0);
  ent.cfg.block_m = 96;
  put_tuned(dir, p, &s, &ent);
  assert_int_equal(rt_tunedb_config(dir, &ps, &dev, &cfg), 0);
  sieve_close(ctx);
  sieve_pattern_free(sp);
  fake_gpu_remove();
}

/* ---------------------------------------------------------------- sweeps */

/* The fake clock: 8 warps are faster, and less shared memory is faster,
** so the winner is known: the smallest-smem config on 8 warps. */
static double fake_ms(unsigned warps, unsigned smem, unsigned gx) {
  return (warps == 8 ? 1.0 : 2.0) + smem / 65536.0;
}
/* ... except that 8 warps with 24 KiB or less of shared memory compute
** garbage (the would-be winner), which the check must catch. */
static int fake_wrong(unsigned warps, unsigned smem) { return warps == 8 && smem <= 24576; }

typedef struct sweep_rig {
  sieve_pattern *sp;
  char *src;
  rt_device dev;
  rt_cache cache;
  rt_tune_setup s;
  int stop_after;          /* sets *stop once this many are measured */
  volatile sig_atomic_t stop;
  int measured_events, built_events;
} sweep_rig;

static void count_progress(const rt_tune_progress *p, void *ud) {
  sweep_rig *r = ud;
  if (p->phase == 1) r->measured_events++;
  else r->built_events++;
  assert_true(p->done <= p->total);
  if (r->stop_after && p->phase == 1 && p->done >= r->stop_after) r->stop = 1;
}

static void sweep_up(sweep_rig *r, const char *dirname, const char *configs) {
  char dir[300];
  cg_err e = {0};
  memset(r, 0, sizeof *r);
  fresh_dir(dirname, dir, sizeof dir);
  fake_gpu_install();
  fg.ms = fake_ms;
  fg.wrong = fake_wrong;
  fg.bump = 0.05;
  r->src = pattern_source("frame_window");
  cg_pattern *p = load_src("frame_window.lua", r->src, NULL, &r->sp);
  assert_int_equal(rt_device_open(0, &r->dev, &e), SIEVE_OK);
  assert_int_equal(rt_cache_open(&r->cache, dir, &e), SIEVE_OK);
  r->s = (rt_tune_setup){.chunk = "frame_window.lua", .source = r->src, .pattern = p,
                         .shape = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 3,
                                   .height = 4, .width = 8, .text = 5},
                         .dtype = CG_BF16, .arch = CG_SM80, .threads = 2, .check_rows = 3,
                         .seed = 3, .store = 1, .bench_rep_ms = 10, .stop = &r->stop,
                         .progress = count_progress, .ud = r};
  assert_int_equal(rt_tune_space_parse(configs, &r->s.space, &e), SIEVE_OK);
  fg.pattern = p;
  cg_shape_for(p, &r->s.shape, &fg.shape);
  fg.dtype = CG_BF16;
}

static void sweep_down(sweep_rig *r) {
  rt_device_close(&r->dev, NULL);
  sieve_pattern_free(r->sp);
  free(r->src);
  assert_int_equal(fg.live_bytes, 0);
  fake_gpu_remove();
}

static const rt_tune_cand *expected_winner(const rt_tune_report *r) {
  const rt_tune_cand *best = NULL;
  cg_attn_spec s = {fg.pattern, fg.shape, CG_BF16, CG_SM80, {0}, 0};
  double best_ms = 1e30;
  for (int i = 0; i < r->n; i++) {
    if (r->c[i].state == RT_TUNE_PRUNED) continue;
    s.cfg = r->c[i].cfg;
    unsigned smem = (unsigned)cg_attn_smem_bytes(&s), w = (unsigned)s.cfg.warps;
    if (fake_wrong(w, smem)) continue;
    double ms = fake_ms(w, smem, 0);
    if (ms < best_ms) best_ms = ms, best = &r->c[i];
  }
  return best;
}

static void sweep_finds_the_fastest_correct_config(void **st) {
  static rt_tune_report r;
  sweep_rig g;
  cg_err e = {0};
  sweep_up(&g, "sweep", "bm=64,128;bn=32,64;warps=4,8;stages=1,2");
  assert_int_equal(rt_tune_run(&g.s, &g.dev, &g.cache, &r, &e), SIEVE_OK);
  assert_int_equal(r.n, 16);
  assert_true(r.complete);
  assert_false(r.stopped || r.out_of_budget);
  int built = 0, wrong = 0;
  for (int i = 0; i < r.n; i++) {
    built += r.c[i].state != RT_TUNE_PRUNED;
    if (r.c[i].state == RT_TUNE_WRONG) {
      wrong++;
      assert_non_null(strstr(r.c[i].note, "O rel. error"));
      assert_int_equal(r.c[i].cfg.warps, 8);
    }
  }
  assert_true(wrong > 0);
  assert_int_equal(fg.links, built);       /* each built once, on the build threads */
  assert_int_equal(g.built_events, built);
  assert_int_equal(g.measured_events, built);
  const rt_tune_cand *want = expected_winner(&r);
  assert_non_null(want);
  assert_true(r.best >= 0);
  assert_memory_equal(&r.c[r.best].cfg, &want->cfg, sizeof want->cfg);
  for (int i = 1; i < r.nranked; i++) assert_true(r.c[r.rank[i - 1]].ms <= r.c[r.rank[i]].ms);
  assert_true(r.stored);
  assert_int_equal(access(r.journal, F_OK), -1);  /* a complete sweep leaves no journal */
  /* The database now answers for this pattern, shape, dtype and GPU. */
  rt_plan_spec ps = {g.s.pattern, g.s.shape, CG_BF16, CG_SM80, {0}, 0, 0, NULL};
  cg_attn_config cfg;
  assert_int_equal(rt_tunedb_config(g.cache.dir, &ps, &g.dev, &cfg), 1);
  assert_memory_equal(&cfg, &want->cfg, sizeof cfg);
  sweep_down(&g);
}

static void interrupted_sweep_resumes(void **st) {
  static rt_tune_report r;
  sweep_rig g;
  cg_err e = {0};
  sweep_up(&g, "resume", "bm=64,128;bn=64;warps=4,8;stages=1,2");
  g.stop_after = 2;
  assert_int_equal(rt_tune_run(&g.s, &g.dev, &g.cache, &r, &e), SIEVE_OK);
  assert_true(r.stopped);
  assert_false(r.complete);
  int ok = 0, skipped = 0, total = 0;
  for (int i = 0; i < r.n; i++) {
    ok += r.c[i].state == RT_TUNE_OK || r.c[i].state == RT_TUNE_WRONG;
    skipped += r.c[i].state == RT_TUNE_SKIPPED;
    total += r.c[i].state != RT_TUNE_PRUNED;
  }
  assert_int_equal(ok, 2);
  assert_int_equal(skipped, total - 2);
  assert_int_equal(access(r.journal, F_OK), 0);
  assert_true(r.stored);  /* the best so far is already of use */

  /* The same sweep again skips what the journal has. */
  g.stop = 0;
  g.stop_after = 0;
  g.measured_events = 0;
  int links = fg.links;
  assert_int_equal(rt_tune_run(&g.s, &g.dev, &g.cache, &r, &e), SIEVE_OK);
  assert_int_equal(r.resumed, 2);
  assert_int_equal(g.measured_events, total - 2);
  assert_int_equal(fg.links, links);  /* built last time, found in the cache now */
  assert_true(r.complete);
  int from_journal = 0;
  for (int i = 0; i < r.n; i++) from_journal += r.c[i].from_journal;
  assert_int_equal(from_journal, 2);
  assert_memory_equal(&r.c[r.best].cfg, &expected_winner(&r)->cfg, sizeof(cg_attn_config));
  assert_int_equal(access(r.journal, F_OK), -1);

  /* --fresh measures everything again. */
  g.s.fresh = 1;
  g.measured_events = 0;
  assert_int_equal(rt_tune_run(&g.s, &g.dev, &g.cache, &r, &e), SIEVE_OK);
  assert_int_equal(r.resumed, 0);
  assert_int_equal(g.measured_events, total);
  sweep_down(&g);
}

static void budget_stops_starting_candidates(void **st) {
  static rt_tune_report r;
  sweep_rig g;
  cg_err e = {0};
  sweep_up(&g, "budget", "bm=64;bn=32,64;warps=4;stages=1,2,3");
  g.s.budget_s = 1e-6;  /* over before the first build */
  assert_int_equal(rt_tune_run(&g.s, &g.dev, &g.cache, &r, &e), SIEVE_OK);
  assert_true(r.out_of_budget);
  assert_false(r.complete);
  assert_int_equal(r.best, -1);
  assert_false(r.stored);
  for (int i = 0; i < r.n; i++)
    assert_true(r.c[i].state == RT_TUNE_SKIPPED || r.c[i].state == RT_TUNE_PRUNED);
  sweep_down(&g);
}

/* Without a cache the sweep still runs: each plan compiles its own kernel. */
static void sweep_without_a_cache(void **st) {
  static rt_tune_report r;
  sweep_rig g;
  cg_err e = {0};
  sweep_up(&g, "nocache", "bm=64;bn=64;warps=4;stages=1,2");
  g.s.store = 0;
  assert_int_equal(rt_tune_run(&g.s, &g.dev, NULL, &r, &e), SIEVE_OK);
  assert_true(r.complete);
  assert_int_equal(r.nranked, 2);
  assert_int_equal(fg.links, 2);
  assert_false(r.stored);
  assert_string_equal(r.db, "");
  sweep_down(&g);
}

/* Kernels built on several threads are the kernels one thread builds:
** code generation shares nothing between threads. */
static void parallel_builds_match_serial(void **st) {
  static rt_tune_cand one[RT_TUNE_MAX], two[RT_TUNE_MAX];
  sweep_rig g;
  cg_err e = {0};
  char dir2[300];
  sweep_up(&g, "serial", "bm=64,128;bn=32,64;warps=4,8;stages=2");
  fresh_dir("parallel", dir2, sizeof dir2);
  rt_cache c2;
  assert_int_equal(rt_cache_open(&c2, dir2, &e), SIEVE_OK);
  cg_attn_spec base = {g.s.pattern, fg.shape, CG_BF16, CG_SM80, {0}, 0};
  int n = rt_tune_enumerate(&base, &g.s.space, fg.smem_optin, one);
  memcpy(two, one, sizeof one);
  int todo[RT_TUNE_MAX];
  for (int i = 0; i < n; i++) todo[i] = one[i].state == RT_TUNE_PENDING;
  g.s.threads = 1;
  assert_int_equal(rt_tune_build(&g.s, &g.dev, &g.cache, one, todo, n, rt_tune_now_ms(), 0, &e), SIEVE_OK);
  g.s.threads = 4;
  assert_int_equal(rt_tune_build(&g.s, &g.dev, &c2, two, todo, n, rt_tune_now_ms(), 0, &e), SIEVE_OK);
  int compared = 0;
  for (int i = 0; i < n; i++) {
    if (!todo[i]) continue;
    assert_int_equal(one[i].state, RT_TUNE_PENDING);  /* built, not failed */
    assert_int_equal(two[i].state, RT_TUNE_PENDING);
    char key[2048];
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    base.cfg = one[i].cfg;
    rt_plan_key(&base, &g.dev, key, sizeof key);
    assert_int_equal(rt_cache_load(&g.cache, key, &a, &na, &e), SIEVE_OK);
    assert_int_equal(rt_cache_load(&c2, key, &b, &nb, &e), SIEVE_OK);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
    compared++;
  }
  assert_true(compared >= 4);
  sweep_down(&g);
}

static int setup(void **st) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(patterns, sizeof patterns, "%s/patterns", src ? src : ".");
  snprintf(tmp, sizeof tmp, "/tmp/sieve-test-tune-XXXXXX");
  return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **st) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(spec_strings),
    cmocka_unit_test(enumeration_prunes_before_compiling),
    cmocka_unit_test(lines_round_trip),
    cmocka_unit_test(database_merges_and_replaces_atomically),
    cmocka_unit_test(concurrent_writers_lose_nothing),
    cmocka_unit_test(journal_resumes_finished_candidates),
    cmocka_unit_test(plans_use_the_tuned_config),
    cmocka_unit_test(folded_plans_pass_over_the_database),
    cmocka_unit_test(sweep_finds_the_fastest_correct_config),
    cmocka_unit_test(interrupted_sweep_resumes),
    cmocka_unit_test(budget_stops_starting_candidates),
    cmocka_unit_test(sweep_without_a_cache),
    cmocka_unit_test(parallel_builds_match_serial),
  };
  return cmocka_run_group_tests(t, setup, teardown);
}
