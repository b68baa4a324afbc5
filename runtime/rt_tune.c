/*
** The sweep (see rt_tune.h): enumerate and prune, resume from the journal,
** build on host threads, then measure one candidate at a time on the GPU,
** rank, and store the winner.
*/
#include "rt_tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_bench.h"
#include "rt_check.h"
#include "rt_tunedb.h"

typedef struct sweep {
  const rt_tune_setup *s;
  const rt_device *dev;
  rt_cache *cache;
  rt_tune_report *out;
  rt_check *check;
  rt_bench *bench;
  double t0, deadline;
  double measure_ms;       /* spent measuring so far, for estimates */
  int measured, to_measure;
  int lost;                /* the GPU context died: nothing more can run */
} sweep;

static int stopped(const sweep *w) { return w->s->stop && *w->s->stop; }

static void note(rt_tune_report *out, const char *what, const cg_err *e) {
  if (!out->note[0]) snprintf(out->note, sizeof out->note, "%.100s: %.900s", what, e->msg);
}

static void journal(sweep *w, const rt_tune_cand *c) {
  cg_err e = {0};
  if (w->cache && w->out->journal[0] && rt_tune_journal_append(w->out->journal, w->out->key, c, &e))
    note(w->out, "journal", &e);
}

static void one_line(char *dst, size_t n, const char *prefix, const char *msg) {
  snprintf(dst, n, "%s%.*s", prefix, (int)strcspn(msg, "\n"), msg);
}

/* ------------------------------------------------------------ measuring */

static void judge(sweep *w, rt_tune_cand *c, rt_plan *p) {
  rt_check_result cr;
  rt_bench_result br;
  cg_err e = {0};
  if (rt_check_run(w->check, p, &cr, &e)) {
    c->state = RT_TUNE_RUN_FAILED;
    one_line(c->note, sizeof c->note, "check: ", e.msg);
    return;
  }
  c->err_o = cr.err_o;
  c->err_lse = cr.err_lse;
  if (!cr.pass) {
    c->state = RT_TUNE_WRONG;
    snprintf(c->note, sizeof c->note,
             "O rel. error %.2e (tol %.0e), LSE %.2e, %lld unwritten O, %lld LSE, %lld -inf "
             "mismatches", cr.err_o, cr.tol_o, cr.err_lse, (long long)cr.bad_o,
             (long long)cr.bad_lse, (long long)cr.lse_inf_mismatch);
    return;
  }
  if (rt_bench_run(w->bench, p, &br, &e)) {
    c->state = RT_TUNE_RUN_FAILED;
    one_line(c->note, sizeof c->note, "timing: ", e.msg);
    return;
  }
  c->state = RT_TUNE_OK;
  c->ms = br.median_ms;
  c->min_ms = br.min_ms;
  c->max_ms = br.max_ms;
  c->tflops = br.tflops;
  w->out->density = br.density;
}

/* A kernel that faults takes the context with it; later candidates would
** fail for its sake, so the sweep ends and the journal keeps the culprit. */
static void check_context(sweep *w) {
  const rt_cuda *cu;
  cg_err e = {0};
  if (rt_cuda_get(&cu, &e) || RT_CU(cu, &e, cuCtxSynchronize)) {
    w->lost = 1;
    note(w->out, "GPU context lost (rerun to resume without the failing config)", &e);
  }
}

static void measure_one(sweep *w, rt_tune_cand *c) {
  const rt_tune_setup *s = w->s;
  rt_plan_spec ps = {s->pattern, s->shape, s->dtype, s->arch, c->cfg, 0, 0, NULL};
  rt_plan *p = NULL;
  cg_err e = {0};
  if (rt_plan_create(&ps, w->dev, w->cache, &p, &e)) {
    c->state = e.status == SIEVE_ERR_CODEGEN ? RT_TUNE_BUILD_FAILED : RT_TUNE_RUN_FAILED;
    one_line(c->note, sizeof c->note, "plan: ", e.msg);
  } else {
    const rt_plan_stats *stats = rt_plan_stats_of(p);
    if (!stats->from_cache) c->build_ms = stats->codegen_ms + stats->link_ms;
    judge(w, c, p);
    rt_plan_free(p, NULL);  /* a leak of one module is no reason to stop */
  }
  if (c->state == RT_TUNE_RUN_FAILED) check_context(w);
}

static void progress(sweep *w, int phase, int done, int total, double eta_s,
                     const rt_tune_cand *c) {
  if (!w->s->progress) return;
  rt_tune_progress p = {phase, done, total, (rt_tune_now_ms() - w->t0) / 1e3, eta_s, c};
  w->s->progress(&p, w->s->ud);
}

static void measure_all(sweep *w) {
  rt_tune_report *out = w->out;
  for (int i = 0; i < out->n; i++) w->to_measure += out->c[i].state == RT_TUNE_PENDING;
  for (int i = 0; i < out->n && !w->lost; i++) {
    rt_tune_cand *c = &out->c[i];
    if (c->state != RT_TUNE_PENDING) continue;
    double est = w->measured ? w->measure_ms / w->measured : 0;
    if (stopped(w)) {
      out->stopped = 1;
      break;
    }
    if (w->deadline > 0 && rt_tune_now_ms() + est > w->deadline) {
      out->out_of_budget = 1;
      break;
    }
    double t = rt_tune_now_ms();
    measure_one(w, c);
    w->measure_ms += rt_tune_now_ms() - t;
    w->measured++;
    journal(w, c);
    double left = (w->to_measure - w->measured) * (w->measure_ms / w->measured) / 1e3;
    progress(w, 1, w->measured, w->to_measure, left, c);
  }
}

/* ------------------------------------------------------------- the end */

static void rank(rt_tune_report *out) {
  out->nranked = 0;
  for (int i = 0; i < out->n; i++)
    if (out->c[i].state == RT_TUNE_OK) out->rank[out->nranked++] = i;
  /* Insertion sort: at most 36 entries, and qsort has no context argument. */
  for (int i = 1; i < out->nranked; i++)
    for (int j = i; j > 0 && out->c[out->rank[j]].ms < out->c[out->rank[j - 1]].ms; j--) {
      int t = out->rank[j];
      out->rank[j] = out->rank[j - 1];
      out->rank[j - 1] = t;
    }
  out->best = out->nranked ? out->rank[0] : -1;
}

static void finish(sweep *w) {
  rt_tune_report *out = w->out;
  const rt_tune_setup *s = w->s;
  out->complete = 1;
  for (int i = 0; i < out->n; i++) {
    rt_tune_cand *c = &out->c[i];
    if (c->state == RT_TUNE_PENDING) c->state = RT_TUNE_SKIPPED;
    if (c->state == RT_TUNE_SKIPPED) out->complete = 0;
  }
  rank(out);
  cg_err e = {0};
  if (s->store && w->cache && out->best >= 0) {
    const rt_tune_cand *b = &out->c[out->best];
    rt_tunedb_entry ent = {b->cfg, b->ms, "", (int64_t)time(NULL)};
    snprintf(ent.pattern, sizeof ent.pattern, "%s", s->pattern->name ? s->pattern->name : "-");
    if (rt_tunedb_put(out->db, out->key, &ent, &e)) note(out, "tuning database", &e);
    else out->stored = 1;
  }
  /* A finished sweep leaves no journal: the next one measures afresh. */
  if (w->cache && out->journal[0] && out->complete && rt_tune_journal_remove(out->journal, &e))
    note(out, "journal", &e);
  out->elapsed_s = (rt_tune_now_ms() - w->t0) / 1e3;
}

/* ------------------------------------------------------------- the sweep */

static sieve_status prepare(sweep *w, cg_err *e) {
  const rt_tune_setup *s = w->s;
  rt_tune_report *out = w->out;
  cg_attn_spec base = {s->pattern, s->shape, s->dtype, s->arch, {0}, 0};
  cg_shape_for(s->pattern, &s->shape, &base.shape);
  sieve_status st = cg_shape_check(&base.shape, e);
  if (st) return st;
  out->shape = base.shape;
  out->n = rt_tune_enumerate(&base, &s->space, w->dev->smem_optin, out->c);
  for (int i = 0; i < out->n; i++)
    if (out->c[i].is_default) out->def = i;
  if (!w->cache) return SIEVE_OK;
  rt_tunedb_path(w->cache->dir, out->db, sizeof out->db);
  rt_tunedb_key(s->pattern, &s->shape, s->dtype, s->arch, w->dev->name, out->key, sizeof out->key);
  cg_err je = {0};
  if (rt_tune_journal_path(w->cache->dir, out->key, out->journal, sizeof out->journal))
    note(out, "journal", &(cg_err){.msg = "none kept: SHA-256 failed in libcrypto"});
  else if (s->fresh ? rt_tune_journal_remove(out->journal, &je)
                    : rt_tune_journal_read(out->journal, out->key, out->c, out->n, &out->resumed, &je))
    note(out, "journal", &je);
  return SIEVE_OK;
}

static sieve_status instruments(sweep *w, cg_err *e) {
  const rt_tune_setup *s = w->s;
  rt_check_opts co = {.rows = s->check_rows > 0 ? s->check_rows : 4, .seed = s->seed};
  rt_bench_opts bo = {.rep_ms = s->bench_rep_ms > 0 ? s->bench_rep_ms : 100, .min_runs = 5,
                      .max_runs = 500, .seed = s->seed};
  sieve_status st = rt_check_new(s->pattern, &s->shape, s->dtype, &co, &w->check, e);
  if (!st) {
    w->out->check_ms = rt_check_setup_ms(w->check);
    st = rt_bench_new(&w->out->shape, s->dtype, &bo, &w->bench, e);
  }
  return st;
}

static void build_all(sweep *w) {
  rt_tune_report *out = w->out;
  int todo[RT_TUNE_MAX];
  cg_err e = {0};
  for (int i = 0; i < out->n; i++) todo[i] = out->c[i].state == RT_TUNE_PENDING;
  /* Without a cache there is nowhere to hand kernels over: the measuring
  ** thread compiles each one as it makes the plan. */
  if (!w->cache) return;
  if (rt_tune_build(w->s, w->dev, w->cache, out->c, todo, out->n, w->t0, w->deadline, &e))
    note(out, "build", &e);
  for (int i = 0; i < out->n; i++)
    if (todo[i] && out->c[i].state == RT_TUNE_BUILD_FAILED) journal(w, &out->c[i]);
  if (stopped(w)) out->stopped = 1;
}

sieve_status rt_tune_run(const rt_tune_setup *s, const rt_device *dev, rt_cache *cache,
                         rt_tune_report *out, cg_err *e) {
  memset(out, 0, sizeof *out);
  out->best = out->def = -1;
  sweep w = {.s = s, .dev = dev, .cache = cache, .out = out, .t0 = rt_tune_now_ms()};
  if (s->budget_s > 0) w.deadline = w.t0 + s->budget_s * 1e3;
  sieve_status st = prepare(&w, e);
  if (!st) st = instruments(&w, e);
  if (!st) {
    build_all(&w);
    measure_all(&w);
    finish(&w);
  }
  rt_bench_free(w.bench);
  rt_check_free(w.check);
  return st;
}
