/*
** Threads for the table builder and the layout bounds. A plan of an
** automatic layout hands work to threads a few dozen times (each
** candidate's settling, each table, the records), and on 16 threads
** creating them cost 362 clones for radial_auto at hunyuan-720p. So the
** threads are kept for the process, waiting for work: a call queues its
** workers past the first, runs the first itself, then runs any of its own
** that no thread has taken (another call may hold them all: a check
** beside the build), and waits for the rest. Every worker function hands
** its work out through a shared counter, so a worker that starts late
** finds little or nothing left; none waits for another.
**
** A forked child has none of its parent's threads: it starts its own.
*/
#define _POSIX_C_SOURCE 200809L /* sysconf */

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "cg_blocks_int.h"

/* two calls at once each on MAX_THREADS: the check beside the build */
#define KEPT (2 * MAX_THREADS)

typedef struct task {
  void *(*fn)(void *);
  void *arg;
  int *left;         /* its call's workers not yet done */
  struct task *next; /* queued after it */
} task;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queued = PTHREAD_COND_INITIALIZER, finished = PTHREAD_COND_INITIALIZER;
static task *head, *tail; /* queued, not taken */
static int threads, idle;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void forked(void) {
  pthread_mutex_init(&mu, NULL);
  pthread_cond_init(&queued, NULL);
  pthread_cond_init(&finished, NULL);
  head = tail = NULL;
  threads = idle = 0;
}

static void on_fork(void) { pthread_atfork(NULL, NULL, forked); }

/* The first queued task of the call whose count is left (any call with
** NULL), unlinked; NULL when none. Under mu. */
static task *take(const int *left) {
  task *prev = NULL, *t = head;
  while (t && left && t->left != left) {
    prev = t;
    t = t->next;
  }
  if (!t) return NULL;
  if (prev) prev->next = t->next;
  else head = t->next;
  if (tail == t) tail = prev;
  return t;
}

/* Run under mu, which it releases meanwhile; the task is not read after
** its call's count falls, when its caller may return. */
static void run(task *t) {
  int *left = t->left;
  pthread_mutex_unlock(&mu);
  t->fn(t->arg);
  pthread_mutex_lock(&mu);
  if (!--*left) pthread_cond_broadcast(&finished);
}

static void *serve(void *unused) {
  (void)unused;
  pthread_mutex_lock(&mu);
  for (;;) {
    task *t = take(NULL);
    if (t) {
      run(t);
      continue;
    }
    idle++;
    pthread_cond_wait(&queued, &mu);
    idle--;
  }
  return NULL;
}

/* Threads for the workers queued beyond those idle; one that fails to
** start costs only time. Under mu. */
static void staff(int want) {
  pthread_attr_t at;
  if (pthread_attr_init(&at)) return;
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  for (want -= idle; want > 0 && threads < KEPT; want--) {
    pthread_t th;
    if (pthread_create(&th, &at, serve, NULL)) break;
    threads++;
  }
  pthread_attr_destroy(&at);
}

int blk_threads(int64_t n) {
  const char *env = getenv("SIEVE_THREADS");
  long t = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (t > MAX_THREADS) t = MAX_THREADS;
  if (t > n) t = (long)n;
  return t < 1 ? 1 : (int)t;
}

void blk_on_threads(int n, void *(*fn)(void *), void *args, size_t stride) {
  if (n > MAX_THREADS) n = MAX_THREADS;
  if (n <= 1) {
    fn(args);
    return;
  }
  pthread_once(&once, on_fork);
  task ts[MAX_THREADS];
  int left = n - 1;
  pthread_mutex_lock(&mu);
  for (int i = 1; i < n; i++) {
    ts[i] = (task){.fn = fn, .arg = (char *)args + (size_t)i * stride, .left = &left};
    if (tail) tail->next = &ts[i];
    else head = &ts[i];
    tail = &ts[i];
  }
  staff(n - 1);
  pthread_cond_broadcast(&queued);
  pthread_mutex_unlock(&mu);
  fn(args);
  pthread_mutex_lock(&mu);
  while (left) {
    task *t = take(&left);
    if (t) run(t);
    else pthread_cond_wait(&finished, &mu);
  }
  pthread_mutex_unlock(&mu);
}
