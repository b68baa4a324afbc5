/*
** The float64 reference for sampled query rows. Each row's mask against
** every key comes from the pattern's class mask, compiled into a private
** evaluator (cg_prog) over model coordinates: the kernel's layouts and
** block tables play no part, so a mistake in either shows up as an error.
** Masked keys are skipped before any arithmetic, so sparse patterns check
** faster than dense ones.
**
** (batch, head) pairs are shared out over threads; each thread has its own
** evaluator and scratch, and only reads the pattern's graph: the masks with
** the shape bound and each batch element's text length fixed are built
** before the threads start.
*/
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg_eval.h"
#include "rt_check.h"

typedef struct ref_job {
  const cg_pattern *p;
  const sieve_shape *s;
  int step, layer;
  const rt_ref_input *in;
  const int64_t *rows;
  int nrows;
  double *o, *lse;
  const cg_coords *coords;
  const float *lut;        /* dtype bits -> float */
  const cg_ref *bound;     /* [class * B + b]: the mask of class for element b */
  pthread_mutex_t mu;
  int64_t next, items;     /* (batch, head) pairs handed out, and all of them */
  int failed;
} ref_job;

/* One thread's evaluator for one (batch, head): interfaces of every token. */
typedef struct ref_mask {
  cg_prog *prog;
  cg_scratch *scr;
  int64_t *qv, *kv, *qrow, *out;
} ref_mask;

static void mask_free(ref_mask *m) {
  cg_scratch_free(m->scr);
  cg_prog_free(m->prog);
  free(m->qv);
  free(m->kv);
  free(m->qrow);
  free(m->out);
  memset(m, 0, sizeof *m);
}

static int mask_init(ref_mask *m, const ref_job *j, int head, int b) {
  const cg_coords *c = j->coords;
  size_t S = (size_t)c->n;
  memset(m, 0, sizeof *m);
  int cls = j->p->head_class[head % j->p->period];
  if (!(m->prog = cg_prog_new(j->p->g, j->bound[cls * j->s->batch + b]))) return -1;
  cg_prog_bind(m->prog, head, j->step, j->layer);
  size_t nq = (size_t)cg_prog_nqv(m->prog), nk = (size_t)cg_prog_nkv(m->prog);
  m->scr = cg_scratch_new(m->prog);
  m->qv = malloc(sizeof(int64_t) * S * (nq ? nq : 1));
  m->kv = malloc(sizeof(int64_t) * S * (nk ? nk : 1));
  m->qrow = malloc(sizeof(int64_t) * (nq ? nq : 1));
  m->out = malloc(sizeof(int64_t) * S);
  if (!m->scr || !m->qv || !m->kv || !m->qrow || !m->out) return -1;
  cg_prog_side(m->prog, 0, c, 0, c->n, m->qv, c->n, m->scr);
  cg_prog_side(m->prog, 1, c, 0, c->n, m->kv, c->n, m->scr);
  return 0;
}

static const int64_t *mask_row(ref_mask *m, int64_t S, int64_t q) {
  for (int j = 0; j < cg_prog_nqv(m->prog); j++) m->qrow[j] = m->qv[j * S + q];
  cg_prog_row(m->prog, m->qrow, m->kv, S, (int)S, m->out, m->scr);
  return m->out;
}

/* Softmax(scale q K^T) V over the allowed keys of one row, in float64. */
static void one_row(const ref_job *j, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                    const int64_t *allow, double *sc, double *qd, double *o, double *lse) {
  const float *lut = j->lut;
  int64_t S = sieve_shape_tokens(j->s), ss = j->in->st[2];
  int D = j->s->head_dim;
  double scale = 1.0 / sqrt((double)D), mx = -INFINITY, sum = 0;
  for (int d = 0; d < D; d++) qd[d] = lut[q[d]];
  for (int64_t t = 0; t < S; t++) {
    sc[t] = -INFINITY;
    if (!allow[t]) continue;
    const uint16_t *kr = k + t * ss;
    double dot = 0;
    for (int d = 0; d < D; d++) dot += qd[d] * lut[kr[d]];
    sc[t] = dot * scale;
    if (sc[t] > mx) mx = sc[t];
  }
  for (int d = 0; d < D; d++) o[d] = 0;
  if (mx == -INFINITY) {
    *lse = -INFINITY;
    return;
  }
  for (int64_t t = 0; t < S; t++) {
    if (sc[t] == -INFINITY) continue;
    double w = exp(sc[t] - mx);
    const uint16_t *vr = v + t * ss;
    sum += w;
    for (int d = 0; d < D; d++) o[d] += w * lut[vr[d]];
  }
  for (int d = 0; d < D; d++) o[d] /= sum;
  *lse = mx + log(sum);
}

static int one_head(ref_job *j, int64_t bh, double *sc, double *qd) {
  const sieve_shape *s = j->s;
  const rt_ref_input *in = j->in;
  int64_t S = sieve_shape_tokens(s), b = bh / s->heads, h = bh % s->heads;
  int64_t base = b * in->st[0] + h * in->st[1];
  int D = s->head_dim;
  ref_mask m;
  if (mask_init(&m, j, (int)h, (int)b)) {
    mask_free(&m);
    return -1;
  }
  for (int r = 0; r < j->nrows; r++) {
    int64_t i = bh * j->nrows + r, row = j->rows[i];
    const int64_t *allow = mask_row(&m, S, row);
    one_row(j, in->q + base + row * in->st[2], in->k + base, in->v + base, allow, sc, qd,
            j->o + i * D, &j->lse[i]);
  }
  mask_free(&m);
  return 0;
}

static void *worker(void *arg) {
  ref_job *j = arg;
  int64_t S = sieve_shape_tokens(j->s);
  double *sc = malloc(sizeof(double) * (size_t)S);
  double *qd = malloc(sizeof(double) * (size_t)j->s->head_dim);
  int bad = !sc || !qd;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    if (bad) j->failed = 1;
    int64_t bh = j->failed ? j->items : j->next++;
    pthread_mutex_unlock(&j->mu);
    if (bh >= j->items) break;
    bad = one_head(j, bh, sc, qd) != 0;
  }
  free(sc);
  free(qd);
  return NULL;
}

static int thread_count(int want, int64_t items) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int n = want > 0 ? want : cpus > 0 ? (int)cpus : 1;
  if (n > 64) n = 64;
  return items < n ? (int)items : n;
}

sieve_status rt_ref_rows(const cg_pattern *p, const sieve_shape *s, int step, int layer,
                         const rt_ref_input *in, const int64_t *rows, int nrows, int threads,
                         double *o, double *lse, cg_err *e) {
  cg_coords coords = {0};
  cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  if (cg_layout_enum(&id, s, &coords)) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for token coordinates");
  float *table = malloc(sizeof(float) * 65536);
  if (!table) {
    cg_coords_free(&coords);
    return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the reference");
  }
  for (uint32_t b = 0; b < 65536; b++) table[b] = rt_half_float((uint16_t)b, in->dtype);
  cg_ref *bound = malloc(sizeof(cg_ref) * (size_t)p->nclasses * (size_t)s->batch);
  int warm = cg_pattern_dense_at(p, step, layer);  /* the schedule runs dense attention there */
  int nomem = !bound;
  for (int c = 0; !nomem && c < p->nclasses; c++)
    for (int b = 0; !nomem && b < s->batch; b++)
      nomem = (bound[c * s->batch + b] = cg_mask_bound(p->g, warm ? cg_bool(p->g, 1) : p->classes[c].mask, s,
                                                       in->tlen ? in->tlen[b] : -1)) == CG_NONE;
  if (nomem) {
    free(bound);
    free(table);
    cg_coords_free(&coords);
    return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the reference");
  }
  ref_job j = {.p = p, .s = s, .step = step, .layer = layer, .in = in, .rows = rows,
               .nrows = nrows, .o = o, .lse = lse, .coords = &coords, .lut = table, .bound = bound,
               .items = (int64_t)s->batch * s->heads};
  pthread_mutex_init(&j.mu, NULL);
  int n = thread_count(threads, j.items);
  pthread_t tid[64];
  int started = 0;
  for (; started < n; started++)
    if (pthread_create(&tid[started], NULL, worker, &j)) break;
  if (started == 0) worker(&j);  /* no threads to be had: this one does it all */
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  pthread_mutex_destroy(&j.mu);
  free(bound);
  free(table);
  cg_coords_free(&coords);
  if (j.failed) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the reference rows");
  return SIEVE_OK;
}
