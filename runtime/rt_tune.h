/*
** The autotuner: which attention-kernel config runs a pattern fastest on a
** shape, dtype and GPU.
**
** A sweep enumerates the config space (rt_tune_space), drops configs the
** generator refuses or whose shared memory exceeds the device's opt-in
** limit before compiling anything, builds the rest on host threads
** (rt_plan_prebuild: code generation and the driver's link, into the kernel
** cache), then, one at a time on the GPU, makes each plan, checks it
** against the float64 reference on a few sampled rows (rt_check; wrong
** kernels are rejected) and times it (rt_bench). The winner goes to the
** tuning database (rt_tunedb.h), where plans made with an all-zero config
** find it.
**
** A sweep stops within its time budget, or early when *stop becomes
** nonzero (a SIGINT handler sets it); every finished candidate is appended
** to a journal beside the database first, so a rerun skips it.
*/
#ifndef RT_TUNE_H
#define RT_TUNE_H

#include <signal.h>
#include <stdint.h>

#include "rt_plan.h"

/* 3 block_m x 4 block_n x 4 stages x (2 warp counts + 2 warp-specialised
** ones x 3 schedules) */
#define RT_TUNE_MAX 384

/* ------------------------------------------------------------ the space */

/* The values each knob may take in a sweep (subsets of the generator's). */
typedef struct rt_tune_space {
  int bm[3], nbm;
  int bn[4], nbn;
  int warps[4], nwarps;
  int stages[4], nstages;
  int sched[3], nsched;    /* cg_attn_sched.h; only the warp-specialised configs vary it */
} rt_tune_space;

/* Every value of every knob. */
void rt_tune_space_all(rt_tune_space *sp);
/*
** Restricts the space: "bm=128;bn=64,128;warps=4" (keys bm/block_m,
** bn/block_n, warps, stages, sched; ';' between keys, ',' between values). Knobs
** not named keep every value; "" leaves the space whole. A value outside
** the generator's set is SIEVE_ERR_ARG naming it.
*/
sieve_status rt_tune_space_parse(const char *spec, rt_tune_space *sp, cg_err *e);

typedef enum rt_tune_state {
  RT_TUNE_PENDING = 0,
  RT_TUNE_PRUNED,          /* not compiled: the generator refuses it, or smem */
  RT_TUNE_BUILD_FAILED,    /* code generation or the driver's link failed */
  RT_TUNE_RUN_FAILED,      /* plan, launch or timing failed */
  RT_TUNE_WRONG,           /* ran, but failed the correctness check */
  RT_TUNE_OK,
  RT_TUNE_SKIPPED          /* the budget ran out or the sweep was stopped first */
} rt_tune_state;

const char *rt_tune_state_name(rt_tune_state s);  /* "ok", "pruned", ... */
int rt_tune_state_parse(const char *s, rt_tune_state *out);  /* 0 or -1 */

typedef struct rt_tune_cand {
  cg_attn_config cfg;
  rt_tune_state state;
  int is_default;          /* cg_attn_default_config for the spec */
  int from_journal;        /* measured by an earlier, interrupted sweep */
  double ms, min_ms, max_ms, tflops;
  double err_o, err_lse;
  double build_ms;         /* code generation + link, or 0 from the cache */
  char note[512];          /* why it was pruned or failed */
} rt_tune_cand;

/*
** The candidates of sp for spec s (its cfg is ignored), the default config
** first when sp holds it, then in (bm, bn, warps, stages) order. Configs
** cg_attn_check refuses (shapes, registers) or that need more than
** smem_limit bytes of shared memory (0: no limit) are RT_TUNE_PRUNED with
** the reason in note. Returns the count (at most RT_TUNE_MAX).
*/
int rt_tune_enumerate(const cg_attn_spec *s, const rt_tune_space *sp, int smem_limit,
                      rt_tune_cand *out);

/* "bm=128 bn=64 warps=4 stages=2", and " sched=N" when it is not 0 */
void rt_tune_config_text(const cg_attn_config *c, char *buf, size_t n);

/* ------------------------------------------------------------ the sweep */

typedef struct rt_tune_progress {
  int phase;               /* 0: building on the host, 1: measuring on the GPU */
  int done, total;         /* candidates finished in this phase, and its size */
  double elapsed_s;        /* since the sweep began */
  double eta_s;            /* of this phase; < 0 while unknown */
  const rt_tune_cand *cand;  /* the candidate just finished, NULL for none */
} rt_tune_progress;

typedef struct rt_tune_setup {
  /* The script, so each build thread loads a pattern of its own (code
  ** generation grows a pattern's graph, so threads cannot share one). */
  const char *chunk;                 /* its path, as messages name it */
  const char *source;
  const char *const *overrides;      /* "k=v", NULL-terminated; may be NULL */
  cg_pattern *pattern;               /* this thread's load of the same script */
  sieve_shape shape;
  cg_dtype dtype;
  cg_arch arch;
  rt_tune_space space;
  double budget_s;                   /* <= 0: no limit */
  int threads;                       /* build threads; 0: the online CPUs */
  int check_rows;                    /* rows per (batch, head); 0: 4 */
  uint64_t seed;                     /* inputs; 0 is taken as 1 */
  int fresh;                         /* ignore and replace an existing journal */
  int store;                         /* write the winner to the database */
  double bench_rep_ms;               /* per candidate; 0: 100 */
  volatile sig_atomic_t *stop;       /* may be NULL */
  /* Called as work finishes, serialised, from any of the sweep's threads. */
  void (*progress)(const rt_tune_progress *p, void *ud);
  void *ud;
} rt_tune_setup;

typedef struct rt_tune_report {
  int n;
  rt_tune_cand c[RT_TUNE_MAX];
  int rank[RT_TUNE_MAX];   /* indices of RT_TUNE_OK candidates, fastest first */
  int nranked;
  int best;                /* index of the winner, -1 when none passed */
  int def;                 /* index of the default config, -1 when not swept */
  int complete;            /* every candidate has a result (none pending or skipped) */
  int stopped, out_of_budget;
  int resumed;             /* candidates taken from the journal */
  double elapsed_s, check_ms;
  double density;
  sieve_shape shape;       /* resolved */
  char key[512];           /* the database key */
  char db[4200], journal[4200];
  int stored;              /* the winner was written to db */
  char note[1024];         /* a database or journal problem; the sweep went on */
} rt_tune_report;

/*
** Runs a sweep on dev (its context current on the calling thread). cache
** holds the built kernels and the database and journal; NULL builds on the
** calling thread only and keeps nothing. Returns a failure only when no
** candidate could be tried at all (no memory, no reference); candidates
** that fail are reported in out.
*/
sieve_status rt_tune_run(const rt_tune_setup *s, const rt_device *dev, rt_cache *cache,
                         rt_tune_report *out, cg_err *e);

/* -------------------------------------------- internals (rt_tune_build.c) */

/*
** Builds candidates c[i] for which todo[i] is set into the cache, on up to
** `threads` threads, each with a pattern loaded from s->source. Failures
** become RT_TUNE_BUILD_FAILED with the message in note. Stops taking new
** work once *stop is set or `deadline` (CLOCK_MONOTONIC ms, 0: none)
** passes; those stay pending. progress, if set, sees phase 0.
*/
sieve_status rt_tune_build(const rt_tune_setup *s, const rt_device *dev, rt_cache *cache,
                           rt_tune_cand *c, const int *todo, int n, double t0_ms,
                           double deadline_ms, cg_err *e);

double rt_tune_now_ms(void);

#endif
