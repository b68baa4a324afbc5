/*
** The GPU block-table builder against the CPU. For each pattern, shape and
** (step, layer), every head's table as the kernels packed it must:
**   - classify every block pair exactly as the CPU's interval test does on
**     the same boxes (full = true everywhere, partial = undecided);
**   - be sound against the CPU builder (cg_tables_build): nothing full that
**     the CPU does not call full, nothing dropped that the CPU keeps;
**   - on small shapes, be sound against brute force (cg_ref_blocks);
**   - be well formed: row pointers, full counts, keys ascending.
** Then attention with plans that build their tables on the GPU, against
** the float64 reference (rt_check), at steps where the anchors moved.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_interval.h"
#include "cg_ref.h"
#include "gpu_dyn.h"
#include "lp.h"
#include "rt_check.h"

typedef struct tally {
  int64_t full, part, cpu_full, cpu_part;
  int64_t interval_mismatch, unsound_cpu, unsound_ref, malformed;
} tally;

/* Row qb of a packed table into cls[kb] (CG_BLK_*); 0 when malformed. */
static int decode_row(const int32_t *tab, int nq, int nk, int qb, uint8_t *cls) {
  int32_t r0 = tab[qb], r1 = tab[qb + 1], nf = tab[nq + 1 + qb];
  const int32_t *idx = tab + 2 * nq + 1;
  memset(cls, CG_BLK_EMPTY, (size_t)nk);
  if (r1 < r0 || nf < 0 || nf > r1 - r0 || r1 - r0 > nk) return 0;
  for (int32_t i = r0; i < r1; i++) {
    int32_t kb = idx[i], first = i == r0 || i == r0 + nf;
    if (kb < 0 || kb >= nk || cls[kb] != CG_BLK_EMPTY) return 0;
    if (!first && idx[i - 1] >= kb) return 0;  /* ascending within each list */
    cls[kb] = i - r0 < nf ? CG_BLK_FULL : CG_BLK_UNDECIDED;
  }
  return 1;
}

static void cpu_row(const cg_table *t, int qb, int nk, uint8_t *cls) {
  memset(cls, CG_BLK_EMPTY, (size_t)nk);
  for (int32_t i = t->full_ptr[qb]; i < t->full_ptr[qb + 1]; i++) cls[t->full_idx[i]] = CG_BLK_FULL;
  for (int32_t i = t->part_ptr[qb]; i < t->part_ptr[qb + 1]; i++) cls[t->part_idx[i]] = CG_BLK_UNDECIDED;
}

/* Full only where the other says full; kept wherever the other keeps. */
static int64_t unsound(const uint8_t *gpu, const uint8_t *other, int n) {
  int64_t bad = 0;
  for (int i = 0; i < n; i++)
    bad += (gpu[i] == CG_BLK_FULL && other[i] != CG_BLK_FULL) ||
           (gpu[i] == CG_BLK_EMPTY && other[i] != CG_BLK_EMPTY);
  return bad;
}

typedef struct tcase {
  cg_pattern *p;
  const cg_tgen *g;
  sieve_shape s;
  int step, layer, brute;
} tcase;

static sieve_status compare(const tcase *c, const int32_t *tabs, const int32_t *head_off, tally *t, cg_err *e) {
  const cg_tgen *g = c->g;
  int nq = g->nq, nk = g->nk;
  size_t pairs = (size_t)nq * nk;
  uint8_t *ic = malloc(pairs * (size_t)g->ntables), *row = malloc((size_t)nk), *cr = malloc((size_t)nk);
  uint8_t *ref = c->brute ? malloc(pairs) : NULL;
  cg_tableset *ts = NULL;
  sieve_status st = ic && row && cr && (ref || !c->brute) ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  for (int i = 0; !st && i < g->ntables; i++) st = cg_tgen_classes(c->p, g, i, c->step, c->layer, ic + pairs * (size_t)i, e);
  if (!st) st = cg_tables_build(c->p, &c->s, c->step, c->layer, &ts, e);
  for (int h = 0; !st && h < c->s.heads; h++) {
    int ti = g->head_table[h];
    if (head_off[h] != ti * g->table_ints) t->malformed++;
    if (c->brute) st = cg_ref_blocks(c->p, &c->s, h, c->step, c->layer, g->bq, g->bk, ref, NULL, e);
    const cg_table *ct = &ts->tables[ts->head_table[h]];
    for (int qb = 0; !st && qb < nq; qb++) {
      if (!decode_row(tabs + (size_t)ti * (size_t)g->table_ints, nq, nk, qb, row)) {
        t->malformed++;
        continue;
      }
      const uint8_t *want = ic + pairs * (size_t)ti + (size_t)qb * nk;
      for (int kb = 0; kb < nk; kb++) {
        t->interval_mismatch += row[kb] != want[kb];
        t->full += row[kb] == CG_BLK_FULL;
        t->part += row[kb] == CG_BLK_UNDECIDED;
      }
      cpu_row(ct, qb, nk, cr);
      for (int kb = 0; kb < nk; kb++) {
        t->cpu_full += cr[kb] == CG_BLK_FULL;
        t->cpu_part += cr[kb] == CG_BLK_UNDECIDED;
      }
      t->unsound_cpu += unsound(row, cr, nk);
      if (c->brute) t->unsound_ref += unsound(row, ref + (size_t)qb * nk, nk);
    }
  }
  cg_tables_free(ts);
  free(ic);
  free(row);
  free(cr);
  free(ref);
  return st;
}

/* Builds on the GPU and reads back the tables and head_off. */
static sieve_status gpu_build(gpu_env *env, rt_dyn_tables *dt, int step, int layer, int32_t *tabs,
                              int32_t *head_off, cg_err *e) {
  const cg_tgen *g = rt_dyn_tables_gen(dt);
  CUdeviceptr dtabs, dho;
  rt_dyn_tables_ptrs(dt, &dtabs, &dho);
  /* Poisoned first, so a slot the kernels never wrote cannot pass. */
  sieve_status st = RT_CU(env->cu, e, cuMemsetD8, dtabs, 0xff, cg_tgen_tabs_bytes(g));
  if (!st) st = rt_dyn_tables_build(dt, step, layer, NULL, e);
  if (!st) st = RT_CU(env->cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(env->cu, e, cuMemcpyDtoH, tabs, dtabs, cg_tgen_tabs_bytes(g));
  if (!st) st = RT_CU(env->cu, e, cuMemcpyDtoH, head_off, dho, 4 * (size_t)g->shape.heads);
  return st;
}

static void tables_case(gpu_env *env, sieve_pattern *sp, const char *name, sieve_shape s, int brute) {
  static const int steps[][2] = {{0, 0}, {3, 5}, {17, 2}, {41, 30}};
  char label[256], why[1200];
  cg_err e = {0};
  rt_dyn_tables *dt = NULL;
  cg_pattern *p = lp_pattern_ir(sp);
  snprintf(label, sizeof label, "gpu tables %s T%dY%dX%d+%d%s H%d", name, s.frames, s.height, s.width,
           s.text, s.text_after ? "a" : "", s.heads);
  if (rt_dyn_tables_create(p, &s, CG_SM80, gpu_dyn_device(env), NULL, &dt, &e)) {
    gpu_dyn_verdict(env, 0, label, e.msg);
    return;
  }
  const cg_tgen *g = rt_dyn_tables_gen(dt);
  int32_t *tabs = malloc(cg_tgen_tabs_bytes(g)), *ho = malloc(4 * (size_t)s.heads);
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    char l2[320];
    tally t = {0};
    tcase c = {p, g, g->shape, steps[i][0], steps[i][1], brute};
    snprintf(l2, sizeof l2, "%s step %d layer %d", label, c.step, c.layer);
    sieve_status st = tabs && ho ? SIEVE_OK : cg_fail(&e, SIEVE_ERR_NOMEM, "no memory");
    if (!st) st = gpu_build(env, dt, c.step, c.layer, tabs, ho, &e);
    if (!st) st = compare(&c, tabs, ho, &t, &e);
    if (st) {
      gpu_dyn_verdict(env, 0, l2, e.msg);
      continue;
    }
    int ok = !t.interval_mismatch && !t.unsound_cpu && !t.unsound_ref && !t.malformed;
    snprintf(why, sizeof why,
             "%d tables; GPU %lld full %lld partial, CPU %lld full %lld partial; %lld pairs off "
             "the CPU interval test, %lld unsound vs CPU, %lld vs brute force%s, %lld malformed rows",
             g->ntables, (long long)t.full, (long long)t.part, (long long)t.cpu_full, (long long)t.cpu_part,
             (long long)t.interval_mismatch, (long long)t.unsound_cpu, (long long)t.unsound_ref,
             brute ? "" : " (not run)", (long long)t.malformed);
    gpu_dyn_verdict(env, ok, l2, why);
  }
  free(tabs);
  free(ho);
  rt_dyn_tables_free(dt);
}

static sieve_shape shp(int T, int Y, int X, int text, int after, int H) {
  return (sieve_shape){.batch = 1, .heads = H, .head_dim = 64, .frames = T, .height = Y,
                       .width = X, .text = text, .text_after = after};
}

/* A mask that reads head, step and layer: one table per head. */
static const char *per_head_src =
    "return sieve.pattern{ name = 'per_head', mask = sieve.union(\n"
    "  sieve.mask(function(q, k, c) return ((k.t + 2 * c.head + c.step) % 5):eq(0) end),\n"
    "  sieve.mask(function(q, k, c) return (q.x - k.x):abs():le(c.layer % 3) & (q.t):eq(k.t) end),\n"
    "  sieve.text_rows()) }";

static void attention_cases(gpu_env *env) {
  gpu_case small = {.pattern = "lvsa", .params = {"window=0", "interval=4"},
                    .shape = shp(6, 5, 7, 13, 0, 3), .dtype = SIEVE_BF16, .step = 5, .layer = 1};
  gpu_attention_case(env, &small);
  small.step = 6;
  small.shape.text_after = 1;
  small.dtype = SIEVE_FP16;
  gpu_attention_case(env, &small);
  gpu_case big = {.pattern = "lvsa", .dtype = SIEVE_BF16, .sample_rows = 4, .step = 13, .layer = 7};
  sieve_shape_preset("hunyuan-720p", &big.shape);
  gpu_attention_case(env, &big);
}

void gpu_dyn_tables(gpu_env *env) {
  char why[1100];
  const char *const lv2[] = {"window=0", "text=false", "interval=4", NULL};
  struct { const char *name; const char *const *ov; } pats[] = {
      {"lvsa", NULL}, {"lvsa", lv2}, {"svg", NULL}, {"sta", NULL}, {"causal", NULL}};
  const sieve_shape small[] = {shp(3, 5, 7, 13, 0, 3), shp(9, 12, 20, 40, 1, 4)};
  for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
    sieve_pattern *sp = gpu_dyn_load(env, pats[i].name, pats[i].ov, why, sizeof why);
    if (!sp) {
      gpu_dyn_verdict(env, 0, pats[i].name, why);
      continue;
    }
    for (size_t a = 0; a < 2; a++) tables_case(env, sp, pats[i].name, small[a], 1);
    sieve_pattern_free(sp);
  }
  sieve_pattern *ph = NULL;
  if (sieve_pattern_load_string(env->ctx, "per_head", per_head_src, NULL, &ph)) {
    gpu_dyn_verdict(env, 0, "per_head", sieve_errmsg(env->ctx));
  } else {
    tables_case(env, ph, "per_head", shp(7, 6, 9, 5, 0, 5), 1);
    sieve_pattern_free(ph);
  }
  sieve_shape hy;
  sieve_shape_preset("hunyuan-720p", &hy);
  sieve_pattern *lv = gpu_dyn_load(env, "lvsa", NULL, why, sizeof why);
  if (lv) {
    tables_case(env, lv, "lvsa", hy, 0);
    sieve_pattern_free(lv);
  }
  attention_cases(env);
}
