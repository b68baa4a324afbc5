/*
** Block tables: the threads of a parallel region (blk_on_threads), kept
** parked between regions. A region started up to fifteen threads and
** joined them, and sieve.layout.auto runs dozens of short regions: radial
** at hunyuan-720p, 16 threads, 38 regions and 453 threads, two of them for
** each candidate it settles (a few milliseconds each). Starting fifteen
** threads took about a millisecond on a two-core machine; waking fifteen
** parked ones takes a few microseconds each.
**
** A helper that finds no work for IDLE_SECONDS ends, so a host application
** keeps no threads once its plans are made. Helpers are joined, by the
** next region or when the library is unloaded (which also ends the parked
** ones), so that none runs on in unmapped code. A forked child starts
** with none: the parent's are not there.
*/
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthread_condattr_setclock */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "cg_blocks_int.h"

#define IDLE_SECONDS 2

typedef struct region {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int left; /* helpers still running */
} region;

typedef struct helper {
  struct helper *next;  /* in the parked list */
  struct helper *every; /* in the list of helpers not yet joined */
  pthread_t th;
  pthread_cond_t cv;
  void *(*fn)(void *);
  void *arg;
  region *r; /* NULL: no work */
  int gone;  /* it ended: to be joined */
} helper;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static helper *parked, *every;
static int closing;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_condattr_t mono; /* a parked helper's wait counts monotonic time */

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork(void) { pthread_mutex_unlock(&mu); }
static void in_child(void) {
  /* the helpers stay behind in the parent; their records leak */
  parked = every = NULL;
  pthread_mutex_init(&mu, NULL);
}

static void setup(void) {
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_atfork(before_fork, after_fork, in_child);
}

static void unpark(helper *h) {
  for (helper **p = &parked; *p; p = &(*p)->next)
    if (*p == h) {
      *p = h->next;
      return;
    }
}

static void region_done(region *r) {
  pthread_mutex_lock(&r->mu);
  if (--r->left == 0) pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void *helper_main(void *arg) {
  helper *h = arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    region *r = h->r;
    void *(*fn)(void *) = h->fn;
    void *a = h->arg;
    pthread_mutex_unlock(&mu);
    blk_threads_cap(0); /* as a new thread: no bound of its own */
    fn(a);
    region_done(r);
    pthread_mutex_lock(&mu);
    h->r = NULL;
    h->next = parked;
    parked = h;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += IDLE_SECONDS;
    int st = 0;
    while (!h->r && !closing && st != ETIMEDOUT) st = pthread_cond_timedwait(&h->cv, &mu, &until);
    if (!h->r) {
      unpark(h);
      h->gone = 1;
      pthread_mutex_unlock(&mu);
      return NULL;
    }
  }
}

static void join(helper *h) {
  pthread_join(h->th, NULL);
  pthread_cond_destroy(&h->cv);
  free(h);
}

/* The helpers that ended, joined; mu held. */
static void reap(void) {
  for (helper **p = &every; *p;) {
    helper *h = *p;
    if (!h->gone) {
      p = &h->every;
      continue;
    }
    *p = h->every;
    join(h);
  }
}

/* Runs fn on a parked helper or a new one; 0 if neither. */
static int hand(region *r, void *(*fn)(void *), void *arg) {
  pthread_mutex_lock(&mu);
  reap();
  helper *h = parked;
  if (h) {
    parked = h->next;
    h->fn = fn;
    h->arg = arg;
    h->r = r;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&mu);
    return 1;
  }
  int ok = (h = malloc(sizeof *h)) != NULL;
  if (ok) *h = (helper){.fn = fn, .arg = arg, .r = r};
  if (ok && pthread_cond_init(&h->cv, &mono)) ok = 0;
  else if (ok && pthread_create(&h->th, NULL, helper_main, h)) {
    pthread_cond_destroy(&h->cv);
    ok = 0;
  }
  if (ok) {
    h->every = every;
    every = h;
  } else free(h);
  pthread_mutex_unlock(&mu);
  return ok;
}

/* On unload (and at exit): every helper ended and joined. */
__attribute__((destructor)) static void end_helpers(void) {
  pthread_mutex_lock(&mu);
  closing = 1;
  for (helper *h = parked; h; h = h->next) pthread_cond_signal(&h->cv);
  helper *all = every;
  every = NULL;
  pthread_mutex_unlock(&mu);
  while (all) {
    helper *next = all->every;
    join(all);
    all = next;
  }
}

/* fn(args + i * stride) for i in [0, n), i = 0 here. A helper that cannot
** start costs only time: callers share their work through counters. */
void blk_on_threads(int n, void *(*fn)(void *), void *args, size_t stride) {
  pthread_once(&once, setup);
  region r = {.left = 0};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  for (int i = 1; i < n; i++) {
    pthread_mutex_lock(&r.mu);
    r.left++;
    pthread_mutex_unlock(&r.mu);
    if (!hand(&r, fn, (char *)args + (size_t)i * stride)) {
      region_done(&r);
      break;
    }
  }
  fn(args);
  pthread_mutex_lock(&r.mu);
  while (r.left) pthread_cond_wait(&r.cv, &r.mu);
  pthread_mutex_unlock(&r.mu);
  pthread_mutex_destroy(&r.mu);
  pthread_cond_destroy(&r.cv);
}
