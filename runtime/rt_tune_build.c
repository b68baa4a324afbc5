/*
** Building the tuner's candidates on host threads. Code generation grows
** the pattern's expression graph, so every thread loads the script into a
** pattern of its own; LLVM gets a context per kernel (cg_attn_build), and
** the driver's JIT linker is thread-safe with the device's context current
** on each thread. Kernels land in the disk cache, where the measuring
** thread's plans find them.
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lp.h"
#include "rt_tune.h"

#define MAX_THREADS 64

double rt_tune_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

typedef struct build_job {
  const rt_tune_setup *s;
  const rt_device *dev;
  rt_cache *cache;
  rt_tune_cand *c;
  const int *todo;
  int n;
  double t0, deadline;
  pthread_mutex_t mu;
  int next, done, total, running;
  double busy_ms;          /* build time of finished candidates, for the ETA */
} build_job;

/* The next candidate to build, or -1: none left, stopped, or past the deadline. */
static int next_job(build_job *j) {
  int i = -1;
  pthread_mutex_lock(&j->mu);
  int halt = (j->s->stop && *j->s->stop) || (j->deadline > 0 && rt_tune_now_ms() > j->deadline);
  while (!halt && j->next < j->n && !j->todo[j->next]) j->next++;
  if (!halt && j->next < j->n) i = j->next++;
  pthread_mutex_unlock(&j->mu);
  return i;
}

static void finished(build_job *j, rt_tune_cand *c, double ms) {
  pthread_mutex_lock(&j->mu);
  j->done++;
  j->busy_ms += ms;
  if (j->s->progress) {
    double el = (rt_tune_now_ms() - j->t0) / 1e3;
    double per = j->busy_ms / j->done / (j->running > 0 ? j->running : 1);
    rt_tune_progress p = {0, j->done, j->total, el, (j->total - j->done) * per / 1e3, c};
    j->s->progress(&p, j->s->ud);
  }
  pthread_mutex_unlock(&j->mu);
}

static void build_one(build_job *j, cg_pattern *pat, rt_tune_cand *c) {
  const rt_tune_setup *s = j->s;
  rt_plan_spec ps = {pat, s->shape, s->dtype, s->arch, c->cfg, 0, 0, NULL};
  rt_plan_stats stats = {0};
  cg_err e = {0};
  if (rt_plan_prebuild(&ps, j->dev, j->cache, &stats, &e)) {
    c->state = RT_TUNE_BUILD_FAILED;
    snprintf(c->note, sizeof c->note, "%.*s", (int)strcspn(e.msg, "\n"), e.msg);
  }
  c->build_ms = stats.from_cache ? 0 : stats.codegen_ms + stats.link_ms;
}

/* A thread's own pattern, loaded from the same source as the caller's. */
static cg_pattern *own_pattern(build_job *j, cg_err *e) {
  const rt_tune_setup *s = j->s;
  cg_pattern *pat = NULL;
  if (rt_device_bind(j->dev, e)) return NULL;
  if (lp_load(s->chunk, s->source, strlen(s->source), s->overrides, NULL, &pat, e)) return NULL;
  if (pat->ir_hash != s->pattern->ir_hash) {
    cg_fail(e, SIEVE_ERR_SCRIPT, "%s gave another pattern when loaded again", s->chunk);
    cg_pattern_free(pat);
    return NULL;
  }
  return pat;
}

static void *worker(void *arg) {
  build_job *j = arg;
  cg_err e = {0};
  cg_pattern *pat = own_pattern(j, &e);
  for (int i; (i = next_job(j)) >= 0;) {
    rt_tune_cand *c = &j->c[i];
    double t = rt_tune_now_ms();
    if (pat) {
      build_one(j, pat, c);
    } else {
      c->state = RT_TUNE_BUILD_FAILED;
      snprintf(c->note, sizeof c->note, "%.*s", (int)strcspn(e.msg, "\n"), e.msg);
    }
    finished(j, c, rt_tune_now_ms() - t);
  }
  cg_pattern_free(pat);
  return NULL;
}

static int thread_count(int want, int work) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int n = want > 0 ? want : cpus > 0 ? (int)cpus : 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  return work < n ? work : n;
}

sieve_status rt_tune_build(const rt_tune_setup *s, const rt_device *dev, rt_cache *cache,
                           rt_tune_cand *c, const int *todo, int n, double t0_ms,
                           double deadline_ms, cg_err *e) {
  build_job j = {.s = s, .dev = dev, .cache = cache, .c = c, .todo = todo, .n = n,
                 .t0 = t0_ms, .deadline = deadline_ms};
  for (int i = 0; i < n; i++) j.total += todo[i] != 0;
  if (!j.total) return SIEVE_OK;
  pthread_mutex_init(&j.mu, NULL);
  pthread_t tid[MAX_THREADS];
  int want = thread_count(s->threads, j.total), started = 0;
  j.running = want;
  for (; started < want; started++)
    if (pthread_create(&tid[started], NULL, worker, &j)) break;
  pthread_mutex_lock(&j.mu);
  j.running = started ? started : 1;  /* fewer threads than asked: a slower ETA */
  pthread_mutex_unlock(&j.mu);
  if (!started) worker(&j);  /* no threads to be had: build here, one by one */
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  pthread_mutex_destroy(&j.mu);
  /* Workers left the calling thread's context alone, but a thread that ran
  ** the worker itself must have its own back. */
  return started ? SIEVE_OK : rt_device_bind(dev, e);
}
