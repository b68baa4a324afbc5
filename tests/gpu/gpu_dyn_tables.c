/*
** The GPU block-table builder against the CPU. For each pattern, shape and
** (step, layer), every head's table as the kernels packed it must:
**   - equal the CPU builder's (cg_tables_build) list for list: the same
**     full blocks, then the same partial ones, each in key order;
**   - on small shapes, equal brute force (cg_ref_blocks) block for block;
**   - be well formed: row pointers, full counts, keys in range.
** Every shipped pattern and the bench's Lua-predicate patterns (radial,
** dilated) on ragged shapes with text before and after, and on
** hunyuan-720p, where the build is also timed. Then attention with plans
** that build their tables on the GPU, against the float64 reference
** (rt_check), at steps where LVSA's anchors moved.
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
  int64_t rows_off_cpu, pairs_off_ref, malformed, bits_off;
} tally;

/* Row qb of a packed table of ew-int32 entries into cls[kb] (CG_BLK_*);
** 0 when malformed. */
static int decode_row(const int32_t *tab, int nq, int nk, int ew, int qb, uint8_t *cls) {
  int32_t r0 = tab[qb], r1 = tab[qb + 1], nf = tab[nq + 1 + qb];
  const int32_t *idx = tab + 2 * nq + 1;
  memset(cls, CG_BLK_EMPTY, (size_t)nk);
  if (tab[0] != 0 || r1 < r0 || nf < 0 || nf > r1 - r0 || r1 - r0 > nk) return 0;
  for (int32_t i = r0; i < r1; i++) {
    int32_t kb = idx[(int64_t)ew * i];
    if (kb < 0 || kb >= nk || cls[kb] != CG_BLK_EMPTY) return 0;
    cls[kb] = i - r0 < nf ? CG_BLK_FULL : CG_BLK_UNDECIDED;
  }
  return 1;
}

/* The GPU row's lists are the CPU's, entry for entry; with bitmasks each
** partial block's bits are the CPU's too, bit for bit (*bits_off counts
** those that are not), and a block without them says so (-1). */
static int same_row(const int32_t *tab, int64_t ntab, int nq, int ew, int wpb, const cg_table *t, int qb,
                    int64_t *bits_off) {
  int32_t r0 = tab[qb], nf = tab[nq + 1 + qb], np = tab[qb + 1] - r0 - nf;
  const int32_t *idx = tab + 2 * nq + 1 + (int64_t)ew * r0;
  int32_t f0 = t->full_ptr[qb], p0 = t->part_ptr[qb];
  if (nf != t->full_ptr[qb + 1] - f0 || np != t->part_ptr[qb + 1] - p0) return 0;
  int ok = 1;
  for (int32_t i = 0; i < nf + np; i++) {
    int32_t kb = idx[(int64_t)ew * i];
    ok &= kb == (i < nf ? t->full_idx[f0 + i] : t->part_idx[p0 + i - nf]);
    if (ew < 2) continue;
    int32_t off = idx[(int64_t)ew * i + 1];
    int want = i >= nf && t->bits && t->part_bits;
    if (!want) {
      ok &= off == -1;
      continue;
    }
    if (off < 0 || off + wpb > ntab) {
      ok = 0;
      continue;
    }
    const uint32_t *cpu = t->bitw + t->part_bits[p0 + i - nf];
    *bits_off += memcmp(tab + off, cpu, sizeof(uint32_t) * (size_t)wpb) != 0;
  }
  return ok;
}

typedef struct tcase {
  cg_pattern *p;
  const cg_tgen *g;
  sieve_shape s;
  int step, layer, brute;
  int64_t tab_ints;  /* read back: the slots and any bitmasks */
  double cpu_ms;
  int64_t undecided;
} tcase;

static sieve_status compare(tcase *c, const int32_t *tabs, const int32_t *head_off, tally *t, cg_err *e) {
  const cg_tgen *g = c->g;
  int nq = g->nq, nk = g->nk;
  size_t pairs = (size_t)nq * nk;
  uint8_t *row = malloc((size_t)nk), *ref = c->brute ? malloc(pairs) : NULL;
  cg_tableset *ts = NULL;
  sieve_status st = row && (ref || !c->brute) ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "no memory");
  if (!st) st = cg_tables_build_bits(c->p, &c->s, c->step, c->layer, 0, g->bits, &ts, e);
  if (!st && (ts->nq != nq || ts->nk != nk)) st = cg_fail(e, SIEVE_ERR_ARG, "CPU tables of %d x %d blocks", ts->nq, ts->nk);
  if (!st) {
    c->cpu_ms = ts->build_ms;
    c->undecided = ts->interval_undecided;
  }
  for (int h = 0; !st && h < c->s.heads; h++) {
    int ti = g->head_table[h];
    const int32_t *tab = tabs + (size_t)ti * (size_t)g->table_ints;
    if (head_off[h] != ti * g->table_ints) t->malformed++;
    if (c->brute) st = cg_ref_blocks(c->p, &c->s, h, c->step, c->layer, g->bq, g->bk, ref, NULL, e);
    const cg_table *ct = &ts->tables[ts->head_table[h]];
    for (int qb = 0; !st && qb < nq; qb++) {
      if (!decode_row(tab, nq, nk, g->ew, qb, row)) {
        t->malformed++;
        continue;
      }
      for (int kb = 0; kb < nk; kb++) {
        t->full += row[kb] == CG_BLK_FULL;
        t->part += row[kb] == CG_BLK_UNDECIDED;
        if (c->brute) t->pairs_off_ref += row[kb] != ref[(size_t)qb * nk + kb];
      }
      t->cpu_full += ct->full_ptr[qb + 1] - ct->full_ptr[qb];
      t->cpu_part += ct->part_ptr[qb + 1] - ct->part_ptr[qb];
      t->rows_off_cpu += !same_row(tab, c->tab_ints - (int64_t)ti * g->table_ints, nq, g->ew, g->wpb, ct, qb,
                                   &t->bits_off);
    }
  }
  cg_tables_free(ts);
  free(row);
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
  sieve_status st = RT_CU(env->cu, e, cuMemsetD8, dtabs, 0xff, rt_dyn_tables_bytes(dt));
  if (!st) st = rt_dyn_tables_build(dt, step, layer, NULL, e);
  if (!st) st = RT_CU(env->cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(env->cu, e, cuMemcpyDtoH, tabs, dtabs, rt_dyn_tables_bytes(dt));
  if (!st) st = RT_CU(env->cu, e, cuMemcpyDtoH, head_off, dho, 4 * (size_t)g->shape.heads);
  return st;
}

static int cmp_f(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The median and least of reps builds at (step, layer), each timed alone,
** and each kernel's share of the median one (split[5]). */
static sieve_status time_builds(gpu_env *env, rt_dyn_tables *dt, int step, int layer, float *med, float *min,
                                float split[6], cg_err *e) {
  enum { REPS = 21 };
  float ms[REPS][7] = {{0}};
  CUevent ev[7] = {0};
  int nk = rt_dyn_tables_kernels(dt);
  sieve_status st = SIEVE_OK;
  for (int i = 0; !st && i <= nk; i++) st = RT_CU(env->cu, e, cuEventCreate, &ev[i], 0);
  for (int i = 0; !st && i < 3; i++) st = rt_dyn_tables_build(dt, step, layer, NULL, e);  /* warm-up */
  for (int i = 0; !st && i < REPS; i++) {
    st = rt_dyn_tables_build_timed(dt, step, layer, NULL, ev, e);
    if (!st) st = RT_CU(env->cu, e, cuEventSynchronize, ev[nk]);
    for (int k = 0; !st && k < nk; k++) st = RT_CU(env->cu, e, cuEventElapsedTime, &ms[i][k + 1], ev[k], ev[k + 1]);
    if (!st) st = RT_CU(env->cu, e, cuEventElapsedTime, &ms[i][0], ev[0], ev[nk]);
  }
  for (int i = 0; i < 7; i++)
    if (ev[i]) RT_CU(env->cu, NULL, cuEventDestroy, ev[i]);
  if (st) return st;
  qsort(ms, REPS, sizeof *ms, cmp_f);  /* by the total, the first float of each run */
  *med = ms[REPS / 2][0];
  *min = ms[0][0];
  for (int k = 0; k < 6; k++) split[k] = ms[REPS / 2][k + 1];
  return SIEVE_OK;
}

/* Steps and layers a case runs at: one for a mask that reads neither. */
static const int steps[][2] = {{0, 0}, {3, 5}, {17, 2}, {41, 30}};

/* bits: bitmasks for the classes cg_bits_classes gives them by cost
** (static masks only). */
static void tables_case(gpu_env *env, sieve_pattern *sp, const char *name, sieve_shape s, int brute, int timed,
                        int bits) {
  char label[256], why[1200];
  cg_err e = {0};
  rt_dyn_tables *dt = NULL;
  cg_pattern *p = lp_pattern_ir(sp);
  uint32_t bc = bits ? cg_bits_classes(p, &s, CG_BITS_COST) : 0;
  snprintf(label, sizeof label, "gpu tables %s T%dY%dX%d+%d%s H%d%s", name, s.frames, s.height, s.width,
           s.text, s.text_after ? "a" : "", s.heads, bc ? " bitmasks" : "");
  if (bits && !bc) return;
  if (rt_dyn_tables_create(p, &s, CG_SM80, gpu_dyn_device(env), NULL, bc, &dt, &e)) {
    gpu_dyn_verdict(env, 0, label, e.msg);
    return;
  }
  uint32_t vars = 0;
  for (int i = 0; i < p->nclasses; i++) vars |= cg_vars_used(p->g, p->classes[i].mask);
  size_t nsteps = vars & (1u << CG_V_STEP | 1u << CG_V_LAYER) ? sizeof steps / sizeof *steps : 1;
  const cg_tgen *g = rt_dyn_tables_gen(dt);
  int32_t *tabs = malloc(rt_dyn_tables_bytes(dt)), *ho = malloc(4 * (size_t)s.heads);
  for (size_t i = 0; i < nsteps; i++) {
    char l2[320];
    tally t = {0};
    tcase c = {.p = p, .g = g, .s = g->shape, .step = steps[i][0], .layer = steps[i][1], .brute = brute,
               .tab_ints = (int64_t)(rt_dyn_tables_bytes(dt) / 4)};
    snprintf(l2, sizeof l2, "%s step %d layer %d", label, c.step, c.layer);
    sieve_status st = tabs && ho ? SIEVE_OK : cg_fail(&e, SIEVE_ERR_NOMEM, "no memory");
    if (!st) st = gpu_build(env, dt, c.step, c.layer, tabs, ho, &e);
    if (!st) st = compare(&c, tabs, ho, &t, &e);
    if (st) {
      gpu_dyn_verdict(env, 0, l2, e.msg);
      continue;
    }
    int ok = !t.rows_off_cpu && !t.pairs_off_ref && !t.malformed && !t.bits_off && t.full == t.cpu_full &&
             t.part == t.cpu_part;
    snprintf(why, sizeof why,
             "%d tables; GPU %lld full %lld partial, CPU %lld full %lld partial; %lld rows off the CPU's, "
             "%lld pairs off brute force%s, %lld malformed rows%s",
             g->ntables, (long long)t.full, (long long)t.part, (long long)t.cpu_full, (long long)t.cpu_part,
             (long long)t.rows_off_cpu, (long long)t.pairs_off_ref, brute ? "" : " (not run)",
             (long long)t.malformed, "");
    if (bc) {
      size_t n = strlen(why);
      snprintf(why + n, sizeof why - n, ", %lld bitmasks off the CPU's (classes %x, %.1f MiB of tables and bits)",
               (long long)t.bits_off, (unsigned)bc, (double)rt_dyn_tables_bytes(dt) / 1048576.0);
    }
    gpu_dyn_verdict(env, ok, l2, why);
    if (timed && i == 0) {
      float med = 0, min = 0, sp[6];
      if (time_builds(env, dt, c.step, c.layer, &med, &min, sp, &e)) {
        gpu_dyn_verdict(env, 0, l2, e.msg);
      } else {
        printf("time %s: GPU build median %.3f ms (least %.3f, 21 runs; classify %.3f refine %.3f compact "
               "%.3f scan %.3f fill %.3f bits %.3f), CPU build %.1f ms; %d tables, %lld pairs undecided by "
               "intervals, %lld full %lld partial\n",
               label, med, min, sp[0], sp[1], sp[2], sp[3], sp[4], sp[5], c.cpu_ms, g->ntables,
               (long long)c.undecided, (long long)t.full, (long long)t.part);
        fflush(stdout);
      }
    }
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
  gpu_case small = {.pattern = "lvsa", .params = {"window=0", "interval=4", GPU_LVSA_ROT},
                    .shape = shp(6, 5, 7, 13, 0, 3), .dtype = SIEVE_BF16, .step = 5, .layer = 1};
  gpu_attention_case(env, &small);
  small.step = 6;
  small.shape.text_after = 1;
  small.dtype = SIEVE_FP16;
  gpu_attention_case(env, &small);
  gpu_case big = {.pattern = "lvsa", .params = {GPU_LVSA_ROT}, .dtype = SIEVE_BF16, .sample_rows = 4, .step = 13, .layer = 7};
  sieve_shape_preset("hunyuan-720p", &big.shape);
  gpu_attention_case(env, &big);
}

/* A pattern from patterns/ or, with bench set, bench/patterns/. */
static sieve_pattern *load_any(gpu_env *env, const char *name, const char *const *ov, int bench, char *why,
                               size_t n) {
  if (!bench) return gpu_dyn_load(env, name, ov, why, n);
  char path[1024];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/bench/patterns/%s.lua", src ? src : ".", name);
  sieve_pattern *p = NULL;
  if (sieve_pattern_load(env->ctx, path, ov, &p)) snprintf(why, n, "load: %s", sieve_errmsg(env->ctx));
  return p;
}

/*
** Every shipped pattern and the Lua-predicate ones on small shapes, against
** the CPU and brute force; with big, on hunyuan-720p too, timed.
*/
/* A mask that reads the head: every head gets a table of its own. */
static void per_head_case(gpu_env *env) {
  sieve_pattern *ph = NULL;
  if (sieve_pattern_load_string(env->ctx, "per_head", per_head_src, NULL, &ph)) {
    gpu_dyn_verdict(env, 0, "per_head", sieve_errmsg(env->ctx));
  } else {
    tables_case(env, ph, "per_head", shp(7, 6, 9, 5, 0, 5), 1, 0, 0);
    sieve_pattern_free(ph);
  }
}

static void tables_all(gpu_env *env, int big) {
  char why[1100];
  const char *const lv[] = {GPU_LVSA_ROT, NULL};
  const char *const lv2[] = {"window=0", "text=false", "interval=4", GPU_LVSA_ROT, NULL};
  const char *const rad2[] = {"tsink=true", "block=128", NULL};
  struct { const char *name; const char *const *ov; int bench; } pats[] = {
      {"dense", NULL, 0}, {"causal", NULL, 0}, {"token_window", NULL, 0}, {"frame_window", NULL, 0},
      {"lvsa", lv, 0}, {"lvsa", lv2, 0}, {"svg", NULL, 0}, {"sta", NULL, 0}, {"adaspa", NULL, 0},
      {"radial", NULL, 1}, {"radial", rad2, 1}, {"dilated", NULL, 1}};
  const sieve_shape small[] = {shp(3, 5, 7, 13, 0, 3), shp(9, 12, 20, 40, 1, 4), shp(5, 7, 9, 0, 0, 2)};
  sieve_shape hy;
  sieve_shape_preset("hunyuan-720p", &hy);
  for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
    sieve_pattern *sp = load_any(env, pats[i].name, pats[i].ov, pats[i].bench, why, sizeof why);
    char name[64];
    snprintf(name, sizeof name, "%s%s", pats[i].name, pats[i].ov ? "'" : "");
    if (!sp) {
      gpu_dyn_verdict(env, 0, name, why);
      continue;
    }
    for (size_t a = 0; a < sizeof small / sizeof *small; a++) tables_case(env, sp, name, small[a], 1, 0, 0);
    if (big) tables_case(env, sp, name, hy, 0, 1, 0);
    /* Bitmasks where the cost gives them (radial, dilated, sta). */
    for (size_t a = 0; a < sizeof small / sizeof *small; a++) tables_case(env, sp, name, small[a], 1, 0, 1);
    if (big) tables_case(env, sp, name, hy, 0, 1, 1);
    sieve_pattern_free(sp);
  }
  per_head_case(env);
}

void gpu_dyn_tables_small(gpu_env *env) { tables_all(env, 0); }

void gpu_dyn_tables_all(gpu_env *env) { tables_all(env, 1); }

void gpu_dyn_tables(gpu_env *env) {
  char why[1100];
  const char *const lv[] = {GPU_LVSA_ROT, NULL};
  const char *const lv2[] = {"window=0", "text=false", "interval=4", GPU_LVSA_ROT, NULL};
  struct { const char *name; const char *const *ov; } pats[] = {
      {"lvsa", lv}, {"lvsa", lv2}, {"svg", NULL}, {"sta", NULL}, {"causal", NULL}};
  const sieve_shape small[] = {shp(3, 5, 7, 13, 0, 3), shp(9, 12, 20, 40, 1, 4)};
  for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
    sieve_pattern *sp = gpu_dyn_load(env, pats[i].name, pats[i].ov, why, sizeof why);
    if (!sp) {
      gpu_dyn_verdict(env, 0, pats[i].name, why);
      continue;
    }
    for (size_t a = 0; a < 2; a++) tables_case(env, sp, pats[i].name, small[a], 1, 0, 0);
    sieve_pattern_free(sp);
  }
  per_head_case(env);
  sieve_shape hy;
  sieve_shape_preset("hunyuan-720p", &hy);
  sieve_pattern *lvp = gpu_dyn_load(env, "lvsa", lv, why, sizeof why);
  if (lvp) {
    tables_case(env, lvp, "lvsa", hy, 0, 0, 0);
    sieve_pattern_free(lvp);
  }
  attention_cases(env);
}
