/*
** AdaSpa's search on the GPU against float64 CPU references. Inputs have
** the locality attention has in video models (a token's Q and K lean
** towards a random direction of its frame), so block masses differ and
** the selection means something. Per case:
**   - masses: every allowed (batch, head, query block, key block), from the
**     LSE the attention pass wrote, against the same sum in float64;
**   - selection: per (batch, head, query block), the reference selection
**     (with the pattern's block hierarchy) on the kernel's own masses must
**     give the same set, except where two masses at the boundary are equal
**     to float rounding; the kept mass must reach the recall (or the top-k
**     cap bind); batch elements get inputs of their own, so their
**     selections differ;
**   - sparse attention on each input's selected tables against float64
**     attention restricted to the selected blocks (sampled rows);
**   - the schedule: no search before the first search step, a search at
**     it, the selection reused after it;
**   - AdaSpa's tiers (§4.2): each head's recall at the base sparsity from
**     the kernel's masses and the reference selection, in float64, against
**     the runtime's, and each head's top-k the tiers of those recalls;
**     AdaSpa's text sink (§4.3): every block holding valid text is chosen
**     besides the top-k;
**   - the first search as the schedule runs it: where its pass is dense on
**     sm_90a, the masses from that pass's segments (also a head a chunk),
**     against float64 from the step's LSE, and the selection on them;
**   - with a cached LSE, the later search: on new Q, K, V, the masses of
**     every allowed block from the first search's LSE against float64, the
**     selection again, no attention pass, and that step's O against float64
**     attention over the new selection;
** on sm_80's kernels and, on a Hopper GPU, sm_90a's (wgmma), with K by TMA
** and by cp.async (SIEVE_TMA=0), and on GPU-built tables (SIEVE_TABLES=gpu).
*/
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_ref.h"
#include "cg_search.h"
#include "gpu_dyn.h"
#include "lp.h"
#include "rt_check.h"

typedef struct sdata {
  const gpu_env *env;
  cg_pattern *p;
  sieve_shape s;         /* resolved */
  int64_t S;
  int B, H, D;
  cg_dtype dt;
  float *q, *k, *v;      /* host values, BHSD */
  gpu_bhsd io;
  int have_io;
  const int32_t *topk;   /* [B][H] the runtime's top-k (NULL: the pattern's) */
} sdata;

static double scale_of(int D) { return 1.0 / sqrt((double)D); }

/* Q, K lean towards their frame's direction, drawn per input of the batch
** so that inputs choose differently, by 0.45, 0.9 or 1.35 by head; V is
** noise. */
static int make_inputs(sdata *d, uint64_t seed) {
  size_t n = (size_t)d->B * d->H * (size_t)d->S * d->D;
  uint16_t *bits = malloc(2 * n);
  size_t ndir = (size_t)d->B * (size_t)(d->s.frames + 1) * (size_t)d->D;
  float *dir = malloc(sizeof(float) * ndir);
  cg_coords c;
  if (!d->q) d->q = malloc(4 * n);
  if (!d->k) d->k = malloc(4 * n);
  if (!d->v) d->v = malloc(4 * n);
  if (!bits || !dir || !d->q || !d->k || !d->v) return -1;
  if (cg_layout_enum(&(cg_layout){CG_LAYOUT_IDENTITY, {0}}, &d->s, &c)) return -1;
  if (!d->have_io && gpu_bhsd_alloc(d->env, &d->io, d->B, d->H, d->S, d->D)) return -1;
  d->have_io = 1;
  uint64_t st = seed | 1;
  rt_rand_half(bits, ndir, CG_FP16, &st);
  for (size_t i = 0; i < ndir; i++) dir[i] = rt_half_float(bits[i], CG_FP16);
  float *out[3] = {d->q, d->k, d->v};
  for (int w = 0; w < 3; w++) {
    rt_rand_half(bits, n, d->dt, &st);
    for (size_t i = 0; i < n; i++) {
      int64_t tok = (int64_t)(i / (size_t)d->D) % d->S;
      size_t b = i / ((size_t)d->H * (size_t)d->S * (size_t)d->D);
      int f = c.t[tok] + 1, j = (int)(i % (size_t)d->D), h = (int)(i / ((size_t)d->S * (size_t)d->D) % (size_t)d->H);
      float lean = 0.45f * (float)(1 + h % 3);  /* heads differ in locality */
      float x = rt_half_float(bits[i], d->dt) * 0.6f +
                (w < 2 ? lean * dir[(b * (size_t)(d->s.frames + 1) + (size_t)f) * (size_t)d->D + (size_t)j] : 0.0f);
      out[w][i] = rt_half_round(x, d->dt, &bits[i]);
    }
    if (gpu_bhsd_put(d->env, &d->io, w, bits)) return -1;
  }
  cg_coords_free(&c);
  free(bits);
  free(dir);
  return 0;
}

static void free_inputs(sdata *d) {
  if (d->have_io) gpu_bhsd_free(d->env, &d->io);
  free(d->q);
  free(d->k);
  free(d->v);
}

static double dot(const float *a, const float *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* ------------------------------------------------------------- checks */

typedef struct host_tabs {
  int32_t *buf, *head_off;
  int nq, nk, bq, bk;
} host_tabs;

/* The allowed tables as the plan packed them. */
static sieve_status allowed_tables(sdata *d, int step, host_tabs *t, cg_err *e) {
  cg_tableset *ts = NULL;
  size_t n;
  sieve_status st = cg_tables_build(d->p, &d->s, step, 0, &ts, e);
  t->head_off = malloc(4 * (size_t)d->H);
  if (!st && !t->head_off) st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  if (!st) st = cg_tables_pack(ts, &t->buf, &n, t->head_off, e);
  if (!st) *t = (host_tabs){t->buf, t->head_off, ts->nq, ts->nk, ts->block_q, ts->block_k};
  cg_tables_free(ts);
  return st;
}

/* Float64 masses of every allowed entry, from the kernel's LSE. */
static sieve_status ref_masses(sdata *d, const host_tabs *t, const float *lse, int step, double *mass,
                               int64_t cap, cg_err *e) {
  uint8_t *m = malloc((size_t)d->S * d->S);
  sieve_status st = m ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  double sc = scale_of(d->D);
  for (int h = 0; !st && h < d->H; h++) {
    if ((st = cg_ref_mask(d->p, &d->s, h, step, 0, m, NULL, e))) break;
    const int32_t *tab = t->buf + t->head_off[h];
    for (int b = 0; b < d->B; b++) {
      size_t bh = (size_t)b * d->H + h;
      const float *qb = d->q + bh * (size_t)d->S * d->D, *kb = d->k + bh * (size_t)d->S * d->D;
      for (int r = 0; r < t->nq; r++)
        for (int32_t en = tab[r]; en < tab[r + 1]; en++) {
          int kblk = tab[2 * t->nq + 1 + en];
          double acc = 0;
          for (int64_t i = (int64_t)r * t->bq; i < d->S && i < (int64_t)(r + 1) * t->bq; i++) {
            double l = lse[bh * (size_t)d->S + (size_t)i];
            if (!(l > -INFINITY)) continue;
            for (int64_t j = (int64_t)kblk * t->bk; j < d->S && j < (int64_t)(kblk + 1) * t->bk; j++)
              if (m[i * d->S + j]) acc += exp(dot(qb + i * d->D, kb + j * d->D, d->D) * sc - l);
          }
          mass[bh * (size_t)cap + (size_t)en] = acc;
        }
    }
  }
  free(m);
  return st;
}

typedef struct sel_tally {
  int64_t rows, exact, boundary, wrong, kept, allowed;
  double min_recall;  /* kept share of the reference mass, over uncapped rows */
} sel_tally;

/* The chosen entries of one row of the selected table, by entry index. */
static int decode_sel(const int32_t *sel, const int32_t *allowed, int nq, int qb, uint8_t *pick, int n) {
  int32_t r0 = sel[qb], r1 = sel[qb + 1], nf = sel[nq + 1 + qb], a0 = allowed[qb];
  int32_t anf = allowed[nq + 1 + qb];
  memset(pick, 0, (size_t)n);
  for (int32_t i = r0; i < r1; i++) {
    int kb = sel[2 * nq + 1 + i], found = -1;
    for (int j = 0; j < n; j++)
      if (allowed[2 * nq + 1 + a0 + j] == kb) found = j;
    if (found < 0 || pick[found] || (i - r0 < nf) != (found < anf)) return 0;
    pick[found] = 1;
  }
  return 1;
}

/* The text sink's choice in row r: every entry when the query block holds
** valid text, else those whose key block does (AdaSpa §4.3 (1)). */
static void sink_of(sdata *d, const host_tabs *t, const int32_t *tab, int r, uint8_t *forced, int n) {
  int64_t lo, hi;
  cg_search_text_span(&d->s, -1, &lo, &hi);
  int row = cg_search_in_sink(r, t->bq, lo, hi);
  for (int i = 0; i < n; i++)
    forced[i] = d->p->sel.text_sink && (row || cg_search_in_sink(tab[2 * t->nq + 1 + tab[r] + i], t->bk, lo, hi));
}

/* Each (input, head)'s recall at the base sparsity (eq. 9), in float64: the
** reference selection on the kernel's masses, with the sink. */
static void ref_recalls(sdata *d, const host_tabs *t, const float *gmass, int64_t cap, double *rec) {
  int nk = t->nk, topk;
  float recall;
  cg_search_budget(&d->p->sel, nk, &recall, &topk);
  double *m = malloc(sizeof(double) * (size_t)nk);
  uint8_t *want = malloc((size_t)nk), *forced = malloc((size_t)nk);
  for (int bh = 0; bh < d->B * d->H; bh++) {
    const int32_t *tab = t->buf + t->head_off[bh % d->H];
    double kept = 0, all = 0;
    for (int r = 0; r < t->nq; r++) {
      int n = tab[r + 1] - tab[r];
      for (int i = 0; i < n; i++) m[i] = gmass[(size_t)bh * (size_t)cap + (size_t)(tab[r] + i)];
      cg_search_select_ref(m, tab + 2 * t->nq + 1 + tab[r], n, nk, NULL, 0, recall, topk, want);
      sink_of(d, t, tab, r, forced, n);
      for (int i = 0; i < n; i++) {
        all += m[i];
        kept += want[i] || forced[i] ? m[i] : 0;
      }
    }
    rec[bh] = all > 0 ? kept / all : 1;
  }
  free(m);
  free(want);
  free(forced);
}

static void check_selection(sdata *d, const host_tabs *t, const float *gmass, const double *rmass, int64_t cap,
                            const int32_t *sel, int64_t table_ints, sel_tally *y) {
  const cg_selection *cs = &d->p->sel;
  int nk = t->nk, groups[CG_SEARCH_MAX_LEVELS], topk;
  float recall;
  cg_search_budget(cs, nk, &recall, &topk);
  int ng = cg_search_groups(&(cg_search_spec){.pattern = d->p}, groups);
  double *m = malloc(sizeof(double) * (size_t)nk), *mr = malloc(sizeof(double) * (size_t)nk);
  uint8_t *want = malloc((size_t)nk), *got = malloc((size_t)nk), *forced = malloc((size_t)nk);
  y->min_recall = 1;
  for (int bh = 0; bh < d->B * d->H; bh++) {
    const int32_t *tab = t->buf + t->head_off[bh % d->H], *st = sel + (size_t)bh * (size_t)table_ints;
    if (d->topk) topk = d->topk[bh];
    for (int r = 0; r < t->nq; r++) {
      int n = tab[r + 1] - tab[r];
      double tot = 0, rtot = 0, kept = 0, rkept = 0;
      for (int i = 0; i < n; i++) {
        size_t at = (size_t)bh * (size_t)cap + (size_t)(tab[r] + i);
        m[i] = gmass[at];
        mr[i] = rmass[at];
        tot += m[i];
        rtot += mr[i];
      }
      const int32_t *kbs = tab + 2 * t->nq + 1 + tab[r];
      int k = cg_search_select_ref(m, kbs, n, nk, groups, ng, recall, topk, want), kg = 0, kf = 0;
      sink_of(d, t, tab, r, forced, n);
      for (int i = 0; i < n; i++) {
        k += forced[i] && !want[i];
        kf += forced[i];
        want[i] |= forced[i];
      }
      y->rows++;
      y->allowed += n;
      if (!decode_sel(st, tab, t->nq, r, got, n)) {
        y->wrong++;
        continue;
      }
      for (int i = 0; i < n; i++) {
        kg += got[i];
        kept += got[i] ? m[i] : 0;
        rkept += got[i] ? mr[i] : 0;
      }
      y->kept += kg;
      int capped = topk > 0 && kg >= topk && kg <= topk + kf;
      if (!capped && rtot > 0 && rkept / rtot < y->min_recall) y->min_recall = rkept / rtot;
      if (!memcmp(want, got, (size_t)n)) y->exact++;
      else if (abs(kg - k) <= 1 && (capped || kept >= recall * tot * (1 - 1e-5))) y->boundary++;
      else y->wrong++;
    }
  }
  free(m);
  free(mr);
  free(want);
  free(got);
  free(forced);
}

/* Float64 attention over the selected blocks for sampled rows, against O. */
static sieve_status check_sparse(sdata *d, const host_tabs *t, const int32_t *sel, int64_t table_ints,
                                 const uint16_t *o, double *err, cg_err *e) {
  uint8_t *m = malloc((size_t)d->S * d->S), *keep = malloc((size_t)t->nk);
  double *p = malloc(sizeof(double) * (size_t)d->S), num = 0, den = 0, sc = scale_of(d->D);
  sieve_status st = m && keep && p ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  for (int h = 0; !st && h < d->H; h++) {
    if ((st = cg_ref_mask(d->p, &d->s, h, 0, 0, m, NULL, e))) break;
    for (int b = 0; b < d->B; b++)
      for (int64_t i = 0; i < d->S; i += 1 + d->S / 40) {
        size_t bh = (size_t)b * d->H + h;
        const int32_t *tb = sel + bh * (size_t)table_ints;
        int r = (int)(i / t->bq);
        memset(keep, 0, (size_t)t->nk);
        for (int32_t x = tb[r]; x < tb[r + 1]; x++) keep[tb[2 * t->nq + 1 + x]] = 1;
        const float *qi = d->q + (bh * (size_t)d->S + (size_t)i) * d->D;
        double mx = -INFINITY, l = 0;
        for (int64_t j = 0; j < d->S; j++) {
          p[j] = m[i * d->S + j] && keep[j / t->bk] ? dot(qi, d->k + (bh * (size_t)d->S + (size_t)j) * d->D, d->D) * sc : -INFINITY;
          mx = p[j] > mx ? p[j] : mx;
        }
        for (int64_t j = 0; j < d->S; j++) l += p[j] > -INFINITY ? (p[j] = exp(p[j] - mx)) : (p[j] = 0);
        for (int c = 0; c < d->D; c++) {
          double ref = 0;
          for (int64_t j = 0; j < d->S; j++)
            if (p[j] > 0) ref += p[j] * d->v[(bh * (size_t)d->S + (size_t)j) * d->D + c];
          ref = l > 0 ? ref / l : 0;
          double got = rt_half_float(o[(bh * (size_t)d->S + (size_t)i) * d->D + c], d->dt);
          num += (got - ref) * (got - ref);
          den += ref * ref;
        }
      }
  }
  *err = den > 0 ? sqrt(num / den) : 0;
  free(m);
  free(keep);
  free(p);
  return st;
}

/* ------------------------------------------------------------- a case */

typedef struct sres {
  double mass_err, sparse_err, density;
  sel_tally sel;
  int schedule_ok;
  int tiers, tiers_ok, moved;  /* tiers checked; recalls and top-k agree; heads off the base top-k */
  double recall_err;
  int cached, cached_ok;       /* the cached-LSE search checked; it ran with no attention pass */
  double cmass_err, csparse_err;
  sel_tally csel;
  int stepped, segs;           /* the first search as a step: it searched; from the pass's segments */
  double smass_err;
  sel_tally ssel;
} sres;

/* Relative L1 error of the kernel's masses gm against float64 rm, over
** every allowed entry. */
static double mass_err(const sdata *d, const host_tabs *t, const float *gm, const double *rm, int64_t cap) {
  double num = 0, den = 0;
  for (int h = 0; h < d->H; h++)
    for (int b = 0; b < d->B; b++) {
      size_t base = ((size_t)b * d->H + h) * (size_t)cap, ents = (size_t)t->buf[t->head_off[h] + t->nq];
      for (size_t i = 0; i < ents; i++) {
        num += fabs(gm[base + i] - rm[base + i]);
        den += rm[base + i];
      }
    }
  return num / den;
}

static sieve_status read_back(const gpu_env *env, CUdeviceptr src, void *dst, size_t n, cg_err *e) {
  sieve_status st = RT_CU(env->cu, e, cuCtxSynchronize);
  return st ? st : RT_CU(env->cu, e, cuMemcpyDtoH, dst, src, n);
}

/* Steps first - 1, first, first + 1: allowed set, search, selection reused
** (O bitwise that of the sparse run before, same inputs and tables). */
static sieve_status schedule(sdata *d, rt_dyn_search *ds, const uint16_t *o_sparse, int *ok, cg_err *e) {
  int first = d->p->sel.nsteps ? d->p->sel.steps[0] : 0, flags[3];
  size_t n = (size_t)d->B * d->H * (size_t)d->S * d->D;
  uint16_t *o = malloc(2 * n);
  sieve_status st = o ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  for (int i = 0; !st && i < 3; i++)
    st = rt_dyn_search_step(ds, first - 1 + i, 0, &d->io.tq, &d->io.tk, &d->io.tv, &d->io.to, d->io.lse, 0, NULL, &flags[i], e);
  if (!st) st = read_back(d->env, d->io.o, o, 2 * n, e);
  *ok = !st && !flags[0] && flags[1] && !flags[2] &&
        !memcmp(o, o_sparse, 2 * n);
  free(o);
  return st;
}

/* The runtime's recalls against float64 ones, and its top-k the tiers of
** its recalls (cg_search_tiers, itself checked against the paper's rule on
** the CPU). */
static void check_tiers(sdata *d, rt_dyn_search *ds, const host_tabs *t, const float *gm, int64_t cap, sres *r) {
  const double *rec = rt_dyn_search_recall(ds);
  const int32_t *tk = rt_dyn_search_topk(ds);
  double *ref = malloc(sizeof(double) * (size_t)(d->B * d->H)), *sp = malloc(sizeof(double) * (size_t)d->H);
  r->tiers = 1;
  r->tiers_ok = rec && ref && sp;
  int base = cg_search_topk(d->p->sel.sparsity, t->nk);
  if (r->tiers_ok) ref_recalls(d, t, gm, cap, ref);
  for (int b = 0; r->tiers_ok && b < d->B; b++) {
    cg_search_tiers(rec + (size_t)b * d->H, d->H, d->p->sel.sparsity, d->p->sel.tiers, sp);
    for (int h = 0; h < d->H; h++) {
      size_t bh = (size_t)b * d->H + h;
      double err = fabs(rec[bh] - ref[bh]);
      r->recall_err = err > r->recall_err ? err : r->recall_err;
      if (tk[bh] != cg_search_topk(sp[h], t->nk)) r->tiers_ok = 0;
      r->moved += tk[bh] != base;
    }
  }
  if (r->recall_err > 1e-4) r->tiers_ok = 0;
  free(ref);
  free(sp);
}

/*
** The later search from the cached LSE: steps first - 1 and first on the
** inputs the case has (dense, then the first search, which caches its
** LSE), then new inputs and the next search step of the pattern.
*/
static sieve_status cached_search(sdata *d, rt_dyn_search *ds, const host_tabs *t, sres *r, cg_err *e) {
  const cg_selection *cs = &d->p->sel;
  if (cs->nsteps < 2) return SIEVE_OK;
  rt_dyn_search_bufs bf;
  rt_dyn_search_buffers(ds, &bf);
  size_t nl = (size_t)d->B * d->H * d->S, nm = (size_t)d->B * d->H * (size_t)bf.cap;
  size_t nt = (size_t)d->B * d->H * (size_t)bf.table_ints, no = nl * (size_t)d->D;
  float *lse = malloc(4 * nl), *gm = malloc(4 * nm);
  double *rm = calloc(nm, sizeof(double));
  int32_t *sel = malloc(4 * nt);
  uint16_t *o = malloc(2 * no);
  int flags[3] = {0};
  sieve_status st = lse && gm && rm && sel && o ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  for (int i = 0; !st && i < 2; i++)
    st = rt_dyn_search_step(ds, cs->steps[0] - 1 + i, 0, &d->io.tq, &d->io.tk, &d->io.tv, &d->io.to, d->io.lse, 0,
                            NULL, &flags[i], e);
  if (!st) st = read_back(d->env, bf.lse, lse, 4 * nl, e);
  if (!st && make_inputs(d, d->env->seed ^ 0x5eedull ^ (uint64_t)d->S)) st = cg_fail(e, SIEVE_ERR_CUDA, "inputs");
  if (!st) st = RT_CU(d->env->cu, e, cuMemsetD8, bf.mass, 0xff, 4 * nm);
  if (!st)
    st = rt_dyn_search_step(ds, cs->steps[1], 0, &d->io.tq, &d->io.tk, &d->io.tv, &d->io.to, d->io.lse, 0, NULL,
                            &flags[2], e);
  r->cached = 1;
  r->cached_ok = !flags[0] && flags[1] && flags[2] && rt_dyn_search_cached(ds);
  if (!st) st = read_back(d->env, bf.mass, gm, 4 * nm, e);
  if (!st) st = read_back(d->env, bf.tabs, sel, 4 * nt, e);
  if (!st) st = read_back(d->env, d->io.o, o, 2 * no, e);
  if (!st) st = ref_masses(d, t, lse, 0, rm, bf.cap, e);
  if (!st) {
    r->cmass_err = mass_err(d, t, gm, rm, bf.cap);
    check_selection(d, t, gm, rm, bf.cap, sel, bf.table_ints, &r->csel);
    st = check_sparse(d, t, sel, bf.table_ints, o, &r->csparse_err, e);
  }
  free(lse);
  free(gm);
  free(rm);
  free(sel);
  free(o);
  return st;
}

/*
** The first search as a schedule runs it (rt_dyn_search_step): where its
** pass is dense on sm_90a, the masses come from that pass's segments, a
** chunk of heads at a time (cg_search_seg.c). Against float64 from the
** step's own LSE, and the selection on them.
*/
static sieve_status step_search(sdata *d, rt_dyn_search *ds, const host_tabs *t, sres *r, cg_err *e) {
  int first = d->p->sel.nsteps ? d->p->sel.steps[0] : 0, flags[2] = {0};
  rt_dyn_search_bufs bf;
  rt_dyn_search_buffers(ds, &bf);
  size_t nl = (size_t)d->B * d->H * d->S, nm = (size_t)d->B * d->H * (size_t)bf.cap;
  size_t nt = (size_t)d->B * d->H * (size_t)bf.table_ints;
  float *lse = malloc(4 * nl), *gm = malloc(4 * nm);
  double *rm = calloc(nm, sizeof(double));
  int32_t *sel = malloc(4 * nt);
  sieve_status st = lse && gm && rm && sel ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  if (!st) st = RT_CU(d->env->cu, e, cuMemsetD8, bf.mass, 0xff, 4 * nm);
  if (!st) st = RT_CU(d->env->cu, e, cuMemsetD8, d->io.lse, 0xff, 4 * nl);
  for (int i = 0; !st && i < 2; i++)
    st = rt_dyn_search_step(ds, first - 1 + i, 0, &d->io.tq, &d->io.tk, &d->io.tv, &d->io.to, d->io.lse, 0, NULL,
                            &flags[i], e);
  r->stepped = !flags[0] && flags[1];
  r->segs = rt_dyn_search_segs(ds);
  if (!st) st = read_back(d->env, d->io.lse, lse, 4 * nl, e);
  if (!st) st = read_back(d->env, bf.mass, gm, 4 * nm, e);
  if (!st) st = read_back(d->env, bf.tabs, sel, 4 * nt, e);
  if (!st) st = ref_masses(d, t, lse, 0, rm, bf.cap, e);
  if (!st) {
    r->smass_err = mass_err(d, t, gm, rm, bf.cap);
    check_selection(d, t, gm, rm, bf.cap, sel, bf.table_ints, &r->ssel);
  }
  free(lse);
  free(gm);
  free(rm);
  free(sel);
  return st;
}

/* Whether the first search should take its masses from segments. */
static int expect_segs(const cg_pattern *p, cg_arch arch) {
  const char *tma = getenv("SIEVE_TMA"), *mb = getenv("SIEVE_SEARCH_SEGS_MB");
  return arch == CG_SM90A && cg_attn_mask_free(p) && (p->dense_steps || p->dense_layers) &&
         !(tma && !strcmp(tma, "0")) && !(mb && !strcmp(mb, "0"));
}

static sieve_status run_case(sdata *d, rt_dyn_search *ds, sres *r, cg_err *e) {
  rt_dyn_search_bufs bf;
  rt_dyn_search_buffers(ds, &bf);
  rt_plan *plan = rt_dyn_search_plan(ds);
  size_t nl = (size_t)d->B * d->H * d->S, nm = (size_t)d->B * d->H * (size_t)bf.cap;
  size_t nt = (size_t)d->B * d->H * (size_t)bf.table_ints, no = nl * (size_t)d->D;
  float *lse = malloc(4 * nl), *gm = malloc(4 * nm);
  double *rm = calloc(nm, sizeof(double));
  int32_t *sel = malloc(4 * nt);
  uint16_t *o = malloc(2 * no);
  host_tabs t = {0};
  sieve_status st = lse && gm && rm && sel && o ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  if (!st) st = allowed_tables(d, 0, &t, e);
  if (!st) st = rt_plan_run(plan, &d->io.tq, &d->io.tk, &d->io.tv, &d->io.to, d->io.lse, 0, NULL, e);
  if (!st) st = RT_CU(d->env->cu, e, cuMemsetD8, bf.mass, 0xff, 4 * nm);
  if (!st) st = rt_dyn_search_run(ds, &d->io.tq, &d->io.tk, d->io.lse, 0, NULL, e);
  if (!st) st = read_back(d->env, d->io.lse, lse, 4 * nl, e);
  if (!st) st = read_back(d->env, bf.mass, gm, 4 * nm, e);
  if (!st) st = read_back(d->env, bf.tabs, sel, 4 * nt, e);
  if (!st) st = ref_masses(d, &t, lse, 0, rm, bf.cap, e);
  if (!st && d->p->sel.tiers > 0) {
    check_tiers(d, ds, &t, gm, bf.cap, r);
    d->topk = rt_dyn_search_topk(ds);
  }
  if (!st) {
    r->mass_err = mass_err(d, &t, gm, rm, bf.cap);
    check_selection(d, &t, gm, rm, bf.cap, sel, bf.table_ints, &r->sel);
    st = rt_dyn_search_run_selected(ds, &d->io.tq, &d->io.tk, &d->io.tv, &d->io.to, d->io.lse, 0, NULL, e);
  }
  if (!st) st = read_back(d->env, d->io.o, o, 2 * no, e);
  if (!st) st = check_sparse(d, &t, sel, bf.table_ints, o, &r->sparse_err, e);
  if (!st) st = rt_dyn_search_selected(ds, &r->density, e);
  if (!st) st = schedule(d, ds, o, &r->schedule_ok, e);
  if (!st && d->p->sel.cache_lse) st = cached_search(d, ds, &t, r, e);
  if (!st) st = step_search(d, ds, &t, r, e);
  free(lse);
  free(gm);
  free(rm);
  free(sel);
  free(o);
  free(t.buf);
  free(t.head_off);
  return st;
}

static void search_arch(gpu_env *env, sieve_pattern *sp, const char *name, sieve_shape shape, cg_dtype dt,
                        cg_arch arch) {
  char label[256], why[2048];
  cg_err e = {0};
  sdata d = {.env = env, .p = lp_pattern_ir(sp), .dt = dt};
  cg_shape_for(d.p, &shape, &d.s);
  d.S = sieve_shape_tokens(&d.s);
  d.B = d.s.batch;
  d.H = d.s.heads;
  d.D = d.s.head_dim;
  snprintf(label, sizeof label, "search %s T%dY%dX%d+%d B%d H%d D%d %s %s", name, d.s.frames, d.s.height,
           d.s.width, d.s.text, d.B, d.H, d.D, dt == CG_FP16 ? "fp16" : "bf16", cg_arch_name(arch));
  rt_dyn_search *ds = NULL;
  rt_plan_spec ps = {.pattern = d.p, .shape = d.s, .dtype = dt, .arch = arch};
  sres r = {0};
  sieve_status st = make_inputs(&d, env->seed ^ (uint64_t)d.S) ? cg_fail(&e, SIEVE_ERR_CUDA, "inputs") : SIEVE_OK;
  if (!st) st = rt_dyn_search_create(&ps, gpu_dyn_device(env), NULL, &ds, &e);
  if (!st) st = run_case(&d, ds, &r, &e);
  if (st) {
    gpu_dyn_verdict(env, 0, label, e.msg);
  } else {
    double tol = dt == CG_FP16 ? 2e-3 : 1e-2;
    int ok = r.mass_err < 1e-3 && !r.sel.wrong && r.sel.boundary * 20 <= r.sel.rows &&
             (d.p->sel.sparsity > 0 || r.sel.min_recall >= d.p->sel.recall - 1e-3) && r.sparse_err < tol && r.schedule_ok;
    ok = ok && (!r.tiers || r.tiers_ok);
    int segs = expect_segs(d.p, arch);
    ok = ok && r.stepped && r.segs == segs && r.smass_err < 1e-3 && !r.ssel.wrong && r.ssel.boundary * 20 <= r.ssel.rows;
    ok = ok && (!r.cached || (r.cached_ok && r.cmass_err < 1e-3 && !r.csel.wrong && r.csel.boundary * 20 <= r.csel.rows &&
                              r.csparse_err < tol));
    int n = snprintf(why, sizeof why,
             "mass rel err %.2e; %lld rows: %lld exact, %lld at a boundary tie, %lld wrong; kept %lld of "
             "%lld allowed blocks (density %.3f), min recall %.4f; sparse O rel err %.2e (tol %.0e); schedule %s",
             r.mass_err, (long long)r.sel.rows, (long long)r.sel.exact, (long long)r.sel.boundary,
             (long long)r.sel.wrong, (long long)r.sel.kept, (long long)r.sel.allowed, r.density, r.sel.min_recall,
             r.sparse_err, tol, r.schedule_ok ? "ok" : "WRONG");
    if (n > 0 && n < (int)sizeof why)
      n += snprintf(why + n, sizeof why - (size_t)n,
                    "; first search as a step %s, masses from %s (expected %s): rel err %.2e, %lld rows %lld exact "
                    "%lld tie %lld wrong", r.stepped ? "ok" : "WRONG", r.segs ? "segments" : "the mass kernel",
                    segs ? "segments" : "the mass kernel", r.smass_err, (long long)r.ssel.rows,
                    (long long)r.ssel.exact, (long long)r.ssel.boundary, (long long)r.ssel.wrong);
    if (r.tiers && n > 0 && n < (int)sizeof why)
      n += snprintf(why + n, sizeof why - (size_t)n, "; tiers %s (recall err %.1e, %d heads off the base top-k)",
                    r.tiers_ok ? "ok" : "WRONG", r.recall_err, r.moved);
    if (r.cached && n > 0 && n < (int)sizeof why)
      snprintf(why + n, sizeof why - (size_t)n,
               "; cached-LSE search %s: mass rel err %.2e, %lld rows %lld exact %lld tie %lld wrong, O rel err %.2e",
               r.cached_ok ? "ran" : "WRONG", r.cmass_err, (long long)r.csel.rows, (long long)r.csel.exact,
               (long long)r.csel.boundary, (long long)r.csel.wrong, r.csparse_err);
    gpu_dyn_verdict(env, ok, label, why);
  }
  rt_dyn_search_free(ds);
  free_inputs(&d);
}

/* search_arch with one environment variable set for the case, then put back. */
static void search_with(gpu_env *env, sieve_pattern *sp, const char *name, sieve_shape shape, cg_dtype dt,
                        const char *var, const char *val) {
  const char *was = getenv(var);
  char keep[64], label[160];
  snprintf(keep, sizeof keep, "%s", was ? was : "");
  snprintf(label, sizeof label, "%s, %s=%s", name, var, val);
  setenv(var, val, 1);
  search_arch(env, sp, label, shape, dt, CG_SM90A);
  if (was) setenv(var, keep, 1);
  else unsetenv(var);
}

/* On the mma.sync path, and on the wgmma path where the device has it:
** there with K by TMA where the layout allows (cg_search_mass_tma), with
** the copy kernel that a K the driver will not map takes, and on tables
** the GPU builds (which the search must build before it reads them, also
** where the step's own pass ran on the dense plan). */
static void search_case(gpu_env *env, sieve_pattern *sp, const char *name, sieve_shape shape, cg_dtype dt) {
  search_arch(env, sp, name, shape, dt, CG_SM80);
  if (gpu_dyn_device(env)->sm_major != 9) return;
  search_arch(env, sp, name, shape, dt, CG_SM90A);
  search_with(env, sp, name, shape, dt, "SIEVE_TMA", "0");
  search_with(env, sp, name, shape, dt, "SIEVE_TABLES", "gpu");
  search_with(env, sp, name, shape, dt, "SIEVE_SEARCH_SEGS_HEADS", "1");
}

static const char *fw_search_src =
    "return sieve.pattern{ name = 'fw_search', block = {q = 64, k = 128},\n"
    "  mask = sieve.union(sieve.frame_window(1), sieve.text_rows(), sieve.text_cols()),\n"
    "  selection = sieve.search{ recall = 0.8, topk = 3, steps = {2, 5}, levels = {128} } }";

static const char *levels_src =
    "return sieve.pattern{ name = 'lv_search', block = {q = 128, k = 128},\n"
    "  mask = sieve.union(sieve.frame_window(2), sieve.text_rows(), sieve.text_cols()),\n"
    "  selection = sieve.search{ recall = 0.85, steps = {1, 4}, levels = {1024, 256, 128} } }";

static void string_case(gpu_env *env, const char *name, const char *src, sieve_shape shape) {
  sieve_pattern *sp = NULL;
  if (sieve_pattern_load_string(env->ctx, name, src, NULL, &sp)) {
    char label[128];
    snprintf(label, sizeof label, "search %s", name);
    gpu_dyn_verdict(env, 0, label, sieve_errmsg(env->ctx));
    return;
  }
  search_case(env, sp, name, shape, CG_BF16);
  sieve_pattern_free(sp);
}

/* AdaSpa as shipped (top-k, tiers, text sink, cached LSE) alone: the case
** the sanitizers run. */
void gpu_dyn_search_adaspa(gpu_env *env) {
  char why[1100];
  const char *const topk[] = {"warmup=1", "every=3", NULL};
  sieve_pattern *ak = gpu_dyn_load(env, "adaspa", topk, why, sizeof why);
  if (!ak) {
    gpu_dyn_verdict(env, 0, "search adaspa topk", why);
    return;
  }
  sieve_shape a = {.batch = 2, .heads = 4, .head_dim = 64, .frames = 4, .height = 8, .width = 8, .text = 16};
  search_case(env, ak, "adaspa topk", a, CG_BF16);
  sieve_pattern_free(ak);
}

void gpu_dyn_search(gpu_env *env) {
  char why[1100];
  /* sieve's top-p: a single level on B = 2, the two-level hierarchy (512
  ** tokens: 4 key blocks a group), and 3 levels below; then AdaSpa's top-k
  ** as shipped (blocks of 64). */
  const char *const flat[] = {"select=topp", "block=128", "warmup=1", "every=3", "recall=0.9", NULL};
  const char *const ov[] = {"select=topp", "block=128", "warmup=1", "every=3", "recall=0.9", "coarse=512", NULL};
  const char *const topk[] = {"warmup=1", "every=3", NULL};
  sieve_pattern *ak = gpu_dyn_load(env, "adaspa", topk, why, sizeof why);
  if (!ak) {
    gpu_dyn_verdict(env, 0, "search adaspa topk", why);
  } else {
    sieve_shape a = {.batch = 2, .heads = 2, .head_dim = 64, .frames = 4, .height = 8, .width = 8, .text = 16};
    search_case(env, ak, "adaspa topk", a, CG_BF16);
    sieve_pattern_free(ak);
  }
  sieve_pattern *ad = gpu_dyn_load(env, "adaspa", ov, why, sizeof why);
  sieve_pattern *af = gpu_dyn_load(env, "adaspa", flat, why, sizeof why);
  if (!ad || !af) {
    gpu_dyn_verdict(env, 0, "search adaspa", why);
  } else {
    sieve_shape a = {.batch = 2, .heads = 2, .head_dim = 64, .frames = 4, .height = 8, .width = 8, .text = 16};
    search_case(env, af, "adaspa", a, CG_BF16);
    sieve_shape b = {.batch = 1, .heads = 3, .head_dim = 128, .frames = 8, .height = 12, .width = 20, .text = 24};
    search_case(env, ad, "adaspa coarse=512", b, CG_FP16);
    sieve_shape c = {.batch = 2, .heads = 2, .head_dim = 64, .frames = 6, .height = 16, .width = 20, .text = 40};
    search_case(env, ad, "adaspa coarse=512", c, CG_BF16);
  }
  sieve_pattern_free(ad);
  sieve_pattern_free(af);
  sieve_shape c = {.batch = 1, .heads = 2, .head_dim = 128, .frames = 6, .height = 10, .width = 13, .text = 7};
  string_case(env, "fw_search", fw_search_src, c);
  sieve_shape l = {.batch = 2, .heads = 2, .head_dim = 128, .frames = 10, .height = 16, .width = 24, .text = 30};
  string_case(env, "lv_search", levels_src, l);
}
