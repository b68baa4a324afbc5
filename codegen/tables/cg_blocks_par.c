/*
** Block tables: threads. The rows of a table run on workers that take rows
** from a shared counter (cg_blocks_rows.c). What a job computes once
** before its rows (a side's token runs, the micro-blocks' intervals, the
** memo's hashes) are loops over independent items, handed out here in
** chunks. On one thread that preparation was most of the tables whose
** rows are quick, and it ran on one core while the rows ran on eight
** (hunyuan-720p, one thread: lvsa 19 ms of it against 3 ms of rows, sta
** 8.5 against 5.7, svg 3.6 against 1.8).
*/
#define _POSIX_C_SOURCE 200809L  /* sysconf */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cg_blocks_int.h"

/* The most threads work started from this thread may take (0: no bound
** of its own). */
static _Thread_local int own_cap;

int blk_threads_cap(int n) {
  int was = own_cap;
  own_cap = n;
  return was;
}

int blk_threads(int64_t n) {
  const char *env = getenv("SIEVE_THREADS");
  long t = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (t > MAX_THREADS) t = MAX_THREADS;
  if (own_cap && t > own_cap) t = own_cap;
  if (t > n) t = (long)n;
  return t < 1 ? 1 : (int)t;
}

typedef struct par {
  const blk_task *t;
  int nt;
  int64_t chunk[BLK_TASKS], first[BLK_TASKS + 1]; /* per task its chunk's items, its first chunk */
  atomic_llong next;
  atomic_int fail;
} par;

static void *par_run(void *arg) {
  par *p = arg;
  for (;;) {
    int64_t c = atomic_fetch_add(&p->next, 1);
    if (c >= p->first[p->nt]) break;
    int i = 0;
    while (c >= p->first[i + 1]) i++;
    const blk_task *t = &p->t[i];
    int64_t a = (c - p->first[i]) * p->chunk[i], b = a + p->chunk[i] < t->n ? a + p->chunk[i] : t->n;
    if (t->fn(t->ctx, a, b)) atomic_store(&p->fail, 1);
  }
  return NULL;
}

/* Chunks from a shared counter, a few per thread and task: items can
** differ in cost (a table's text tokens, a layout's ragged edge), and a
** thread that does not start leaves its chunks to the others. Tasks go
** together so that one set of threads starts for all of them. */
int blk_par_tasks(const blk_task *t, int nt) {
  if (nt > BLK_TASKS) return -1;
  par p = {.t = t, .nt = nt};
  int64_t units = 0;
  for (int i = 0; i < nt; i++) units += (t[i].n + t[i].grain - 1) / t[i].grain;
  int th = blk_threads(units);
  for (int i = 0; i < nt; i++) {
    /* one thread: a chunk a task, each chunk's set-up paid once */
    int64_t c = th == 1 ? t[i].n : (t[i].n + 4 * th - 1) / (4 * th);
    c = (c + t[i].grain - 1) / t[i].grain * t[i].grain;
    p.chunk[i] = c ? c : 1;
    p.first[i + 1] = p.first[i] + (t[i].n + p.chunk[i] - 1) / p.chunk[i];
  }
  atomic_init(&p.next, 0);
  atomic_init(&p.fail, 0);
  blk_on_threads(th, par_run, &p, 0);
  return atomic_load(&p.fail) ? -1 : 0;
}

/* ------------------------------------------ a side's intervals on threads */

static int ival_part(void *ctx, int64_t a, int64_t b) {
  const blk_side *x = ctx;
  cg_iscratch *is = cg_iscratch_new(x->p);
  if (!is) return -1;
  cg_ival_side(x->p, x->key_side, x->boxes + a, b - a, x->out + a, x->ld, is);
  cg_iscratch_free(is);
  return 0;
}

/* Items (tokens, boxes) a thread takes at least: some PAR_OPS of the
** side's instructions, below which starting it costs more than it saves
** (a frame window's side is a few instructions, lvsa's query side
** hundreds). */
#define PAR_OPS (1 << 17)

int64_t blk_grain(const cg_prog *p, int key_side) {
  int64_t n = PAR_OPS / ((key_side ? p->k.nins : p->q.nins) + 1);
  return n > 64 ? n : 64;
}

blk_task blk_ival_task(blk_side *x, const cg_prog *p, int key_side, const cg_box *boxes, int64_t n, cg_ival *out,
                       int64_t ld) {
  *x = (blk_side){p, key_side, boxes, out, ld};
  return (blk_task){ival_part, x, n, blk_grain(p, key_side)};
}
