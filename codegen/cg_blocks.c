/*
** Block tables. For each distinct (layout, mask with head/step/layer fixed)
** one table: every (query block, key block) pair is classified by interval
** evaluation over the blocks' coordinate boxes, and the undecided pairs are
** counted exactly.
**
** Exact counting is what makes density exact, and it is cheap for the
** masks patterns use: a mask usually reads few coordinates (a frame window
** reads only t and text), so consecutive tokens of a block share their
** interface values (cg_eval.h) and a block pair reduces to a few runs per
** side, each evaluated once and weighted by its length. There is no early
** exit on the first mixed pair: the count needs every run anyway.
**
** Rows of a table are spread over threads; each row's lists are written by
** one thread and stitched into CSR form afterwards.
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime, sysconf */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cg_blocks.h"
#include "cg_interval.h"

#define ROWS_PER_GRAB 4
#define MAX_THREADS 16

/* -------------------------------------------------------------- layouts */

/* One distinct layout: the token at each position, and the blocks' boxes. */
typedef struct lay {
  cg_layout l;
  cg_coords c;
  cg_box *qbox, *kbox;
} lay;

static void box_blocks(const cg_coords *c, int64_t bsz, int nb, cg_box *out) {
  for (int b = 0; b < nb; b++) {
    int64_t p0 = b * bsz, p1 = p0 + bsz < c->n ? p0 + bsz : c->n;
    const int32_t *v[CG_IN_POS] = {c->t, c->y, c->x, c->text, c->idx};
    for (int i = 0; i < CG_IN_POS; i++) {
      int64_t lo = v[i][p0], hi = v[i][p0];
      for (int64_t p = p0 + 1; p < p1; p++) {
        lo = v[i][p] < lo ? v[i][p] : lo;
        hi = v[i][p] > hi ? v[i][p] : hi;
      }
      out[b].v[i] = (cg_ival){lo, hi};
    }
    out[b].v[CG_IN_POS] = (cg_ival){p0, p1 - 1};
  }
}

static int same_layout(const cg_layout *a, const cg_layout *b) {
  if (a->kind != b->kind) return 0;
  return a->kind != CG_LAYOUT_TILE || !memcmp(a->tile, b->tile, sizeof a->tile);
}

static void lay_free(lay *L) {
  cg_coords_free(&L->c);
  free(L->qbox);
  free(L->kbox);
}

static int lay_init(lay *L, const cg_layout *l, const sieve_shape *s, const cg_tableset *t) {
  memset(L, 0, sizeof *L);
  L->l = *l;
  if (cg_layout_enum(l, s, &L->c)) return -1;
  L->qbox = malloc(sizeof(cg_box) * (size_t)t->nq);
  L->kbox = malloc(sizeof(cg_box) * (size_t)t->nk);
  if (!L->qbox || !L->kbox) return -1;
  box_blocks(&L->c, t->block_q, t->nq, L->qbox);
  box_blocks(&L->c, t->block_k, t->nk, L->kbox);
  return 0;
}

/* ----------------------------------------------------------- table jobs */

typedef struct job job;

/* Where a row's lists were written. */
typedef struct rowres {
  int w;
  int64_t foff, poff;
  int nf, np;
} rowres;

typedef struct worker {
  job *j;
  cg_scratch *s;
  cg_iscratch *is;
  int32_t *full, *part;
  int64_t nfull, npart, capf, capp;
  uint8_t *cls;          /* interval class per key block of the current row */
  cg_ival *qrow, *prev;  /* this row's query interfaces; those cls was made for */
  int have_prev;
  int64_t *qv1, *kbuf, *kw, *out;
  int64_t st[7];         /* interval full/empty/undecided, refined full/empty/partial, allowed */
  int fail;
} worker;

struct job {
  const cg_prog *prog;
  const lay *L;
  int64_t S;
  int bq, bk, nq, nk, nqv, nkv;
  int64_t *qv, *kv;      /* interfaces per token: [nqv][S], [nkv][S] */
  uint8_t *qnew, *knew;  /* the token's interfaces differ from the previous token's */
  cg_ival *qiv, *kiv;    /* interfaces per block: [nqv][nq], [nkv][nk] */
  atomic_int next;
  rowres *rows;
  worker *w;
  int nw;
};

enum { ST_IFULL, ST_IEMPTY, ST_IUND, ST_RFULL, ST_REMPTY, ST_RPART, ST_ALLOWED };

static int push(int32_t **v, int64_t *n, int64_t *cap, int32_t x) {
  if (*n == *cap) {
    int64_t nc = *cap ? *cap * 2 : 1024;
    int32_t *nv = realloc(*v, sizeof(int32_t) * (size_t)nc);
    if (!nv) return -1;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = x;
  return 0;
}

/* Runs of equal interfaces, one flag per token. */
static void mark_runs(const int64_t *v, int nv, int64_t S, uint8_t *isnew) {
  isnew[0] = 1;
  for (int64_t p = 1; p < S; p++) isnew[p] = 0;
  for (int j = 0; j < nv; j++)
    for (int64_t p = 1; p < S; p++) isnew[p] |= v[j * S + p] != v[j * S + p - 1];
}

/*
** Allowed token pairs of one block pair. Keys are collapsed into runs of
** equal interfaces (each gathered once, weighted by its length), queries
** likewise; only the QK phase runs per (query run, key run).
*/
static int64_t refine(worker *w, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  const job *j = w->j;
  int m = 0;
  for (int64_t p = k0; p < k1; p++) {
    if (p == k0 || j->knew[p]) {
      for (int v = 0; v < j->nkv; v++) w->kbuf[v * j->bk + m] = j->kv[v * j->S + p];
      w->kw[m++] = 1;
    } else {
      w->kw[m - 1]++;
    }
  }
  int64_t total = 0;
  for (int64_t p = q0; p < q1;) {
    int64_t e = p + 1;
    while (e < q1 && !j->qnew[e]) e++;
    for (int v = 0; v < j->nqv; v++) w->qv1[v] = j->qv[v * j->S + p];
    cg_prog_row(j->prog, w->qv1, w->kbuf, j->bk, m, w->out, w->s);
    int64_t c = 0;
    for (int i = 0; i < m; i++) c += w->out[i] ? w->kw[i] : 0;
    total += c * (e - p);
    p = e;
  }
  return total;
}

/* Interval classes of a row; reused while the query interfaces repeat. */
static void row_classes(worker *w, int qb) {
  const job *j = w->j;
  for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->qiv[(int64_t)v * j->nq + qb];
  size_t sz = sizeof(cg_ival) * (size_t)j->nqv;
  if (w->have_prev && !memcmp(w->qrow, w->prev, sz)) return;
  cg_ival_row(j->prog, w->qrow, j->kiv, j->nk, j->nk, w->cls, w->is);
  memcpy(w->prev, w->qrow, sz);
  w->have_prev = 1;
}

static void do_row(worker *w, int qb) {
  const job *j = w->j;
  rowres *r = &j->rows[qb];
  r->w = (int)(w - j->w);
  r->foff = w->nfull;
  r->poff = w->npart;
  row_classes(w, qb);
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  for (int kb = 0; kb < j->nk; kb++) {
    int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
    int64_t all = (q1 - q0) * (k1 - k0), n = 0;
    int c = w->cls[kb];
    if (c == CG_BLK_FULL) {
      w->st[ST_IFULL]++;
      n = all;
    } else if (c == CG_BLK_EMPTY) {
      w->st[ST_IEMPTY]++;
    } else {
      w->st[ST_IUND]++;
      n = refine(w, q0, q1, k0, k1);
      w->st[n == 0 ? ST_REMPTY : n == all ? ST_RFULL : ST_RPART]++;
    }
    w->st[ST_ALLOWED] += n;
    if (n == all) w->fail |= push(&w->full, &w->nfull, &w->capf, kb);
    else if (n) w->fail |= push(&w->part, &w->npart, &w->capp, kb);
  }
  r->nf = (int)(w->nfull - r->foff);
  r->np = (int)(w->npart - r->poff);
}

static void *work(void *arg) {
  worker *w = arg;
  job *j = w->j;
  for (;;) {
    int r0 = atomic_fetch_add(&j->next, ROWS_PER_GRAB);
    if (r0 >= j->nq || w->fail) break;
    int r1 = r0 + ROWS_PER_GRAB < j->nq ? r0 + ROWS_PER_GRAB : j->nq;
    for (int qb = r0; qb < r1; qb++) do_row(w, qb);
  }
  return NULL;
}

/* --------------------------------------------------------- job lifetime */

static int worker_init(worker *w, job *j) {
  memset(w, 0, sizeof *w);
  w->j = j;
  w->s = cg_scratch_new(j->prog);
  w->is = cg_iscratch_new(j->prog);
  size_t nqv = (size_t)(j->nqv ? j->nqv : 1), nkv = (size_t)(j->nkv ? j->nkv : 1);
  w->cls = malloc((size_t)j->nk);
  w->qrow = malloc(sizeof(cg_ival) * nqv);
  w->prev = malloc(sizeof(cg_ival) * nqv);
  w->qv1 = malloc(sizeof(int64_t) * nqv);
  w->kbuf = malloc(sizeof(int64_t) * nkv * (size_t)j->bk);
  w->kw = malloc(sizeof(int64_t) * (size_t)j->bk);
  w->out = malloc(sizeof(int64_t) * (size_t)j->bk);
  return w->s && w->is && w->cls && w->qrow && w->prev && w->qv1 && w->kbuf && w->kw && w->out ? 0 : -1;
}

static void worker_free(worker *w) {
  cg_scratch_free(w->s);
  cg_iscratch_free(w->is);
  free(w->full);
  free(w->part);
  free(w->cls);
  free(w->qrow);
  free(w->prev);
  free(w->qv1);
  free(w->kbuf);
  free(w->kw);
  free(w->out);
}

static void job_free(job *j) {
  for (int i = 0; j->w && i < j->nw; i++) worker_free(&j->w[i]);
  free(j->w);
  free(j->qv);
  free(j->kv);
  free(j->qnew);
  free(j->knew);
  free(j->qiv);
  free(j->kiv);
  free(j->rows);
}

static int thread_count(int nq) {
  const char *env = getenv("SIEVE_THREADS");
  long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (n > MAX_THREADS) n = MAX_THREADS;
  if (n > nq / ROWS_PER_GRAB) n = nq / ROWS_PER_GRAB;
  return n < 1 ? 1 : (int)n;
}

/* Interfaces of every token and every block, computed once per table. */
static int job_prepare(job *j) {
  cg_scratch *s = cg_scratch_new(j->prog);
  cg_iscratch *is = cg_iscratch_new(j->prog);
  size_t S = (size_t)j->S;
  j->qv = malloc(sizeof(int64_t) * S * (size_t)(j->nqv ? j->nqv : 1));
  j->kv = malloc(sizeof(int64_t) * S * (size_t)(j->nkv ? j->nkv : 1));
  j->qnew = malloc(S);
  j->knew = malloc(S);
  j->qiv = malloc(sizeof(cg_ival) * (size_t)j->nq * (size_t)(j->nqv ? j->nqv : 1));
  j->kiv = malloc(sizeof(cg_ival) * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  j->rows = calloc((size_t)j->nq, sizeof(rowres));
  int ok = s && is && j->qv && j->kv && j->qnew && j->knew && j->qiv && j->kiv && j->rows;
  if (ok) {
    cg_prog_side(j->prog, 0, &j->L->c, 0, j->S, j->qv, j->S, s);
    cg_prog_side(j->prog, 1, &j->L->c, 0, j->S, j->kv, j->S, s);
    mark_runs(j->qv, j->nqv, j->S, j->qnew);
    mark_runs(j->kv, j->nkv, j->S, j->knew);
    cg_ival_side(j->prog, 0, j->L->qbox, j->nq, j->qiv, j->nq, is);
    cg_ival_side(j->prog, 1, j->L->kbox, j->nk, j->kiv, j->nk, is);
  }
  cg_scratch_free(s);
  cg_iscratch_free(is);
  return ok ? 0 : -1;
}

static int job_run(job *j) {
  j->nw = thread_count(j->nq);
  j->w = calloc((size_t)j->nw, sizeof(worker));
  if (!j->w) return -1;
  for (int i = 0; i < j->nw; i++)
    if (worker_init(&j->w[i], j)) return -1;
  atomic_init(&j->next, 0);
  pthread_t th[MAX_THREADS];
  int started = 0;
  for (int i = 1; i < j->nw; i++, started++)
    if (pthread_create(&th[i], NULL, work, &j->w[i])) break;
  work(&j->w[0]);
  for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < j->nw; i++)
    if (j->w[i].fail) return -1;
  return 0;
}

/* ------------------------------------------------------------- assembly */

static int32_t *csr(cg_arena *a, const job *j, int full, int32_t **idx, int64_t *total) {
  int32_t *ptr = cg_alloc(a, sizeof(int32_t) * (size_t)(j->nq + 1));
  int64_t n = 0;
  for (int qb = 0; qb < j->nq; qb++) n += full ? j->rows[qb].nf : j->rows[qb].np;
  *idx = cg_alloc(a, sizeof(int32_t) * (size_t)(n ? n : 1));
  if (!ptr || !*idx) return NULL;
  n = 0;
  for (int qb = 0; qb < j->nq; qb++) {
    const rowres *r = &j->rows[qb];
    const worker *w = &j->w[r->w];
    int cnt = full ? r->nf : r->np;
    memcpy(*idx + n, full ? w->full + r->foff : w->part + r->poff, sizeof(int32_t) * (size_t)cnt);
    ptr[qb] = (int32_t)n;
    n += cnt;
  }
  ptr[j->nq] = (int32_t)n;
  *total = n;
  return ptr;
}

static int finish_table(cg_tableset *ts, cg_table *t, const job *j) {
  t->nq = j->nq;
  t->nk = j->nk;
  t->full_ptr = csr(ts->arena, j, 1, &t->full_idx, &t->nfull);
  t->part_ptr = csr(ts->arena, j, 0, &t->part_idx, &t->npart);
  if (!t->full_ptr || !t->part_ptr) return -1;
  t->nempty = (int64_t)j->nq * j->nk - t->nfull - t->npart;
  int64_t st[7] = {0};
  for (int i = 0; i < j->nw; i++)
    for (int k = 0; k < 7; k++) st[k] += j->w[i].st[k];
  t->allowed_pairs = st[ST_ALLOWED];
  ts->interval_full += st[ST_IFULL];
  ts->interval_empty += st[ST_IEMPTY];
  ts->interval_undecided += st[ST_IUND];
  ts->refined_full += st[ST_RFULL];
  ts->refined_empty += st[ST_REMPTY];
  ts->refined_partial += st[ST_RPART];
  return 0;
}

static sieve_status build_table(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, cg_err *e) {
  job j = {.L = L, .S = ts->seq, .bq = ts->block_q, .bk = ts->block_k, .nq = ts->nq, .nk = ts->nk};
  cg_prog *prog = cg_prog_new(g, t->mask);
  sieve_status st = SIEVE_ERR_NOMEM;
  if (prog) {
    cg_prog_bind(prog, 0, 0, 0); /* head, step and layer are constants in t->mask */
    j.prog = prog;
    j.nqv = cg_prog_nqv(prog);
    j.nkv = cg_prog_nkv(prog);
    if (!job_prepare(&j) && !job_run(&j) && !finish_table(ts, t, &j)) st = SIEVE_OK;
  }
  job_free(&j);
  cg_prog_free(prog);
  return st == SIEVE_OK ? SIEVE_OK : cg_fail(e, st, "out of memory building block tables");
}

/* ---------------------------------------------------------------- heads */

static sieve_status check_pattern(const cg_pattern *p, cg_err *e) {
  if (p->nclasses < 1 || p->period < 1 || !p->head_class)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s has no head classes", p->name ? p->name : "?");
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] < 0 || p->head_class[r] >= p->nclasses)
      return cg_fail(e, SIEVE_ERR_ARG, "head residue %d names class %d of %d", r, p->head_class[r],
                     p->nclasses);
  for (int c = 0; c < p->nclasses; c++) {
    const cg_layout *l = &p->classes[c].layout;
    if (l->kind == CG_LAYOUT_TILE && (l->tile[0] < 1 || l->tile[1] < 1 || l->tile[2] < 1))
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: tile sizes must be positive", p->classes[c].name);
    if (cg_type_of(p->g, p->classes[c].mask) != CG_BOOL)
      return cg_fail(e, SIEVE_ERR_ARG, "class %s: the mask is not a boolean", p->classes[c].name);
  }
  return SIEVE_OK;
}

/* The table head h uses: an existing one with the same layout and fixed
** mask, or a new one. */
static int head_table(cg_pattern *p, cg_tableset *ts, int h) {
  int c = p->head_class[h % p->period];
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(p->g, h);
  map[CG_V_STEP] = cg_const(p->g, ts->step);
  map[CG_V_LAYER] = cg_const(p->g, ts->layer);
  cg_ref m = cg_subst(p->g, p->classes[c].mask, map);
  if (m == CG_NONE) return -1;
  for (int i = 0; i < ts->ntables; i++)
    if (ts->tables[i].mask == m && same_layout(&p->classes[ts->tables[i].cls].layout, &p->classes[c].layout))
      return i;
  cg_table *t = &ts->tables[ts->ntables];
  t->cls = c;
  t->mask = m;
  return ts->ntables++;
}

/* The mask over layout positions, as the kernel sees it. */
static int pos_mask(cg_pattern *p, const cg_tableset *ts, cg_table *t) {
  cg_ref qc[5], kc[5], map[CG_NVARS];
  const cg_layout *l = &p->classes[t->cls].layout;
  if (cg_layout_coords(p->g, l, &ts->shape, 0, qc) || cg_layout_coords(p->g, l, &ts->shape, 1, kc))
    return -1;
  const cg_var qv[5] = {CG_V_QT, CG_V_QY, CG_V_QX, CG_V_QTEXT, CG_V_QIDX};
  const cg_var kv[5] = {CG_V_KT, CG_V_KY, CG_V_KX, CG_V_KTEXT, CG_V_KIDX};
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  for (int i = 0; i < 5; i++) {
    map[qv[i]] = qc[i];
    map[kv[i]] = kc[i];
  }
  t->pos_mask = cg_subst(p->g, t->mask, map);
  return t->pos_mask == CG_NONE ? -1 : 0;
}

/* -------------------------------------------------------------- the build */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static sieve_status tableset_new(const cg_pattern *p, const sieve_shape *shape, int step, int layer,
                                 cg_tableset **out, cg_err *e) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  sieve_status st = cg_shape_check(&s, e);
  if (st) return st;
  int bq = p->block_q > 0 ? p->block_q : 128, bk = p->block_k > 0 ? p->block_k : 128;
  if (bq > 65536 || bk > 65536) return cg_fail(e, SIEVE_ERR_ARG, "block sizes must be at most 65536");
  cg_arena *a = cg_arena_new();
  cg_tableset *ts = a ? cg_alloc(a, sizeof *ts) : NULL;
  if (!ts) {
    cg_arena_free(a);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  *ts = (cg_tableset){.arena = a, .shape = s, .step = step, .layer = layer, .block_q = bq, .block_k = bk};
  ts->seq = sieve_shape_tokens(&s);
  ts->nq = (int)((ts->seq + bq - 1) / bq);
  ts->nk = (int)((ts->seq + bk - 1) / bk);
  ts->tables = cg_alloc(a, sizeof(cg_table) * (size_t)s.heads);
  ts->head_table = cg_alloc(a, sizeof(int) * (size_t)s.heads);
  if (!ts->tables || !ts->head_table) {
    cg_tables_free(ts);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  *out = ts;
  return SIEVE_OK;
}

static sieve_status build_all(cg_pattern *p, cg_tableset *ts, cg_err *e) {
  for (int h = 0; h < ts->shape.heads; h++)
    if ((ts->head_table[h] = head_table(p, ts, h)) < 0) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  lay *lays = calloc((size_t)ts->ntables, sizeof(lay));
  int nlays = 0;
  sieve_status st = lays ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int i = 0; !st && i < ts->ntables; i++) {
    cg_table *t = &ts->tables[i];
    const cg_layout *l = &p->classes[t->cls].layout;
    int k = 0;
    while (k < nlays && !same_layout(&lays[k].l, l)) k++;
    if (k == nlays && lay_init(&lays[nlays++], l, &ts->shape, ts))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else if (pos_mask(p, ts, t))
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    else
      st = build_table(ts, t, &lays[k], p->g, e);
  }
  for (int k = 0; k < nlays; k++) lay_free(&lays[k]);
  free(lays);
  return st;
}

sieve_status cg_tables_build(cg_pattern *p, const sieve_shape *shape, int step, int layer,
                             cg_tableset **out, cg_err *e) {
  double t0 = now_ms();
  *out = NULL;
  sieve_status st = check_pattern(p, e);
  cg_tableset *ts = NULL;
  if (!st) st = tableset_new(p, shape, step, layer, &ts, e);
  if (!st) st = build_all(p, ts, e);
  if (st) {
    cg_tables_free(ts);
    return st;
  }
  ts->build_ms = now_ms() - t0;
  *out = ts;
  cg_err_clear(e);
  return SIEVE_OK;
}

void cg_tables_free(cg_tableset *t) {
  if (t) cg_arena_free(t->arena);
}

/* ------------------------------------------------------------------ pack */

sieve_status cg_tables_pack(const cg_tableset *t, int32_t **buf, size_t *n, int32_t *head_off,
                            cg_err *e) {
  size_t total = 0;
  for (int i = 0; i < t->ntables; i++)
    total += 2 * (size_t)t->tables[i].nq + 1 + (size_t)(t->tables[i].nfull + t->tables[i].npart);
  if (total > INT32_MAX) return cg_fail(e, SIEVE_ERR_SHAPE, "block tables too large for 32-bit offsets");
  int32_t *b = malloc(sizeof(int32_t) * (total ? total : 1));
  if (!b) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory packing block tables");
  int32_t *off = malloc(sizeof(int32_t) * (size_t)(t->ntables ? t->ntables : 1));
  if (!off) {
    free(b);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory packing block tables");
  }
  size_t o = 0;
  for (int i = 0; i < t->ntables; i++) {
    const cg_table *tb = &t->tables[i];
    int32_t *rowptr = b + o, *nfull = rowptr + tb->nq + 1, *idx = nfull + tb->nq;
    off[i] = (int32_t)o;
    rowptr[0] = 0;
    for (int q = 0; q < tb->nq; q++) {
      int32_t f0 = tb->full_ptr[q], nf = tb->full_ptr[q + 1] - f0;
      int32_t p0 = tb->part_ptr[q], np = tb->part_ptr[q + 1] - p0;
      memcpy(idx + rowptr[q], tb->full_idx + f0, sizeof(int32_t) * (size_t)nf);
      memcpy(idx + rowptr[q] + nf, tb->part_idx + p0, sizeof(int32_t) * (size_t)np);
      nfull[q] = nf;
      rowptr[q + 1] = rowptr[q] + nf + np;
    }
    o += 2 * (size_t)tb->nq + 1 + (size_t)rowptr[tb->nq];
  }
  for (int h = 0; h < t->shape.heads; h++) head_off[h] = off[t->head_table[h]];
  free(off);
  *buf = b;
  *n = total;
  return SIEVE_OK;
}
