/*
** GPU block tables at run time: the builder's module, its buffers (one
** allocation, and one for the packed tables and their bitmasks), and the
** five launches of a step (six with bitmasks).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_dyn.h"
#include "rt_module.h"

struct rt_dyn_tables {
  const rt_cuda *cu;
  const cg_pattern *p;
  cg_arch arch;
  cg_tgen *gen;
  CUmodule mod;
  CUfunction classify, refine, compact, scan, fill, bits, bhash;
  CUdeviceptr mem, tmem, smem, tabs, head_off;
  size_t tbytes;  /* of tmem: the table slots, then any bitmasks */
  int from_cache;
  struct {
    CUdeviceptr boxes, coords, cls, work, nwork, rows, counts, tabs, pgbase;
    CUdeviceptr key0, key1, rep, uid, slot_of, count;  /* the set of distinct bitmasks */
    int32_t step, layer, mask;
  } a;
  void *pc[6], *pr[6], *pk[4], *ps[2], *pf[6], *pb[10], *ph[13];
};

int rt_dyn_tables_enabled(const rt_cuda *cu) {
  const char *v = getenv("SIEVE_TABLES");
  /* A stand-in driver (rt_cuda_set_fake) runs no generated code: the host
  ** tables are what it can see. */
  return cu && cu->lib && (!v || strcmp(v, "cpu") != 0);
}

int rt_dyn_tables_always(void) {
  const char *v = getenv("SIEVE_TABLES");
  return v && !strcmp(v, "gpu");
}

static sieve_status gen_ptx(void *ud, char **ptx, cg_err *e) {
  rt_dyn_tables *t = ud;
  return cg_tgen_build(t->p, t->gen, t->arch, ptx, e);
}

static size_t up256(size_t n) { return (n + 255) & ~(size_t)255; }

/* One allocation for the builder's buffers, one for the tables (and their
** bitmasks, sized later); boxes, coordinates and head_off go up once, and
** the work list's count starts at 0 (the compaction kernel sets it back
** after every build). */
static sieve_status place(rt_dyn_tables *t, cg_err *e) {
  const cg_tgen *g = t->gen;
  size_t sz[8] = {cg_tgen_boxes_bytes(g), cg_tgen_coords_bytes(g), cg_tgen_cls_bytes(g),
                  cg_tgen_work_bytes(g),  cg_tgen_rows_bytes(g),   cg_tgen_counts_bytes(g),
                  cg_tgen_pbase_bytes(g), 4 * (size_t)g->shape.heads};
  size_t off[8], total = 0;
  for (int i = 0; i < 8; i++) {
    off[i] = total;
    total += up256(sz[i]);
  }
  if ((int64_t)g->ntables * g->table_ints > INT32_MAX)
    return cg_fail(e, SIEVE_ERR_SHAPE, "GPU block tables: %d tables of %lld ints exceed 32-bit offsets",
                   g->ntables, (long long)g->table_ints);
  sieve_status st = RT_CU(t->cu, e, cuMemAlloc, &t->mem, total);
  t->tbytes = cg_tgen_tabs_bytes(g);
  if (!st) st = RT_CU(t->cu, e, cuMemAlloc, &t->tmem, t->tbytes);
  if (st) return st;
  t->a.boxes = t->mem + off[0];
  t->a.coords = t->mem + off[1];
  t->a.cls = t->mem + off[2];
  t->a.work = t->mem + off[3];
  t->a.nwork = t->a.work + sz[3] - 4;
  t->a.rows = t->mem + off[4];
  t->a.counts = t->mem + off[5];
  t->a.tabs = t->tabs = t->tmem;
  t->a.pgbase = t->mem + off[6];
  t->head_off = t->mem + off[7];
  size_t heads = (size_t)g->shape.heads;
  int32_t *ho = malloc(4 * heads);
  if (!ho) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (size_t h = 0; h < heads; h++) ho[h] = (int32_t)(g->head_table[h] * g->table_ints);
  st = RT_CU(t->cu, e, cuMemcpyHtoD, t->head_off, ho, 4 * heads);
  free(ho);
  if (!st) st = RT_CU(t->cu, e, cuMemcpyHtoD, t->a.boxes, g->boxes, sz[0]);
  if (!st) st = RT_CU(t->cu, e, cuMemcpyHtoD, t->a.coords, g->coords, sz[1]);
  if (!st) st = RT_CU(t->cu, e, cuMemsetD32, t->a.nwork, 0, 1);
  return st;
}

static sieve_status kernels(rt_dyn_tables *t, rt_cache *cache, const rt_device *dev, cg_err *e) {
  char key[2048], extra[32];
  snprintf(extra, sizeof extra, "bits %x", (unsigned)t->gen->bits);
  if (rt_dyn_key(key, sizeof key, "tablegen 3", t->p, &t->gen->shape, t->arch, dev, extra) >= (int)sizeof key)
    cache = NULL;
  sieve_status st = rt_dyn_module(t->cu, cache, key, gen_ptx, t, &t->mod, &t->from_cache, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_classify", 0, &t->classify, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_refine", 0, &t->refine, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_compact", 0, &t->compact, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_scan", 0, &t->scan, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_fill", 0, &t->fill, e);
  if (!st && t->gen->bits) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_bits", 0, &t->bits, e);
  if (!st && t->gen->bits) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_bhash", 0, &t->bhash, e);
  return st;
}

static void grid(const rt_dyn_tables *t, unsigned *rows, unsigned *nt) {
  *rows = (unsigned)((t->gen->nq + CG_TGEN_WARPS - 1) / CG_TGEN_WARPS);
  *nt = (unsigned)t->gen->ntables;
}

/*
** Bitmasks are kept once per distinct bitmask, as on the host: a first
** classification (static masks: any step does) gives each row's partial
** blocks, their bits are hashed into a set on the GPU, and the tables'
** allocation grows to hold the distinct ones past the slots. The set stays:
** every build's fill and bits kernels read it.
*/
static sieve_status size_bits(rt_dyn_tables *t, cg_err *e) {
  const cg_tgen *g = t->gen;
  unsigned rows, nt, w = 32 * CG_TGEN_WARPS;
  grid(t, &rows, &nt);
  size_t nrows = (size_t)g->ntables * (size_t)g->nq;
  int32_t *counts = malloc(8 * nrows), *pgbase = malloc(4 * nrows), distinct = 0;
  sieve_status st = counts && pgbase ? SIEVE_OK : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  t->a.step = t->a.layer = 0;
  if (!st) st = rt_dyn_launch(t->cu, t->classify, rows, nt, 1, w, 0, NULL, t->pc, e);
  if (!st) st = rt_dyn_launch(t->cu, t->refine, CG_TGEN_REFINE_CTAS, 1, 1, w, 0, NULL, t->pr, e);
  if (!st) st = rt_dyn_launch(t->cu, t->compact, rows, nt, 1, w, 0, NULL, t->pk, e);
  if (!st) st = RT_CU(t->cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(t->cu, e, cuMemcpyDtoH, counts, t->a.counts, 8 * nrows);
  int64_t parts = st ? 0 : cg_tgen_bits_place(g, counts, pgbase);
  if (!st && parts < 0)
    st = cg_fail(e, SIEVE_ERR_LIMIT, "GPU block tables: more than 2^31 partial blocks take bitmasks");
  size_t cap = 64;
  while (cap < 2 * (size_t)parts) cap *= 2;
  size_t sbytes = 24 * cap + 4 * (size_t)parts + 4;
  if (!st && cap > (size_t)INT32_MAX) st = cg_fail(e, SIEVE_ERR_LIMIT, "GPU block tables: %lld partial blocks", (long long)parts);
  if (!st) st = RT_CU(t->cu, e, cuMemAlloc, &t->smem, sbytes);
  if (!st) {
    t->a.key0 = t->smem;
    t->a.key1 = t->a.key0 + 8 * cap;
    t->a.rep = t->a.key1 + 8 * cap;
    t->a.uid = t->a.rep + 4 * cap;
    t->a.slot_of = t->a.uid + 4 * cap;
    t->a.count = t->a.slot_of + 4 * (size_t)parts;
    t->a.mask = (int32_t)(cap - 1);
    st = RT_CU(t->cu, e, cuMemsetD8, t->smem, 0, sbytes);
  }
  if (!st) st = RT_CU(t->cu, e, cuMemcpyHtoD, t->a.pgbase, pgbase, 4 * nrows);
  if (!st) st = rt_dyn_launch(t->cu, t->bhash, (unsigned)g->nq, nt, 1, w, 0, NULL, t->ph, e);
  if (!st) st = RT_CU(t->cu, e, cuCtxSynchronize);
  if (!st) st = RT_CU(t->cu, e, cuMemcpyDtoH, &distinct, t->a.count, 4);
  int64_t words = (int64_t)distinct * g->wpb;
  if (!st && (int64_t)g->ntables * g->table_ints + words > INT32_MAX)
    st = cg_fail(e, SIEVE_ERR_LIMIT, "GPU block tables: %d tables of %lld ints and %d distinct bitmasks of %d words "
                 "exceed 32-bit offsets", g->ntables, (long long)g->table_ints, distinct, g->wpb);
  /* The host tables' bound (cg_tables_limit). */
  size_t need = cg_tgen_tabs_bytes(g) + 4 * (size_t)(words > 0 ? words : 0);
  if (!st && (int64_t)need > cg_tables_limit())
    st = cg_fail(e, SIEVE_ERR_LIMIT, "GPU block tables need %.1f MiB (%.1f MiB of them %d distinct partial-block "
                 "bitmasks), over the bound of %.1f MiB (SIEVE_TABLES_MAX_MB); SIEVE_PARTIAL=predicate drops the "
                 "bitmasks", need / 1048576.0, 4.0 * (double)words / 1048576.0, distinct,
                 cg_tables_limit() / 1048576.0);
  if (!st) st = RT_CU(t->cu, e, cuMemFree, t->tmem);
  if (!st) {
    t->tmem = t->tabs = t->a.tabs = 0;
    t->tbytes = need;
    st = RT_CU(t->cu, e, cuMemAlloc, &t->tmem, t->tbytes);
  }
  if (!st) t->tabs = t->a.tabs = t->tmem;
  free(counts);
  free(pgbase);
  return st;
}

sieve_status rt_dyn_tables_create(cg_pattern *p, const sieve_shape *shape, cg_arch arch,
                                  const rt_device *dev, rt_cache *cache, uint32_t bits,
                                  rt_dyn_tables **out, cg_err *e) {
  *out = NULL;
  rt_dyn_tables *t = calloc(1, sizeof *t);
  if (!t) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  t->p = p;
  t->arch = arch;
  void *pc[6] = {&t->a.boxes, &t->a.cls, &t->a.work, &t->a.nwork, &t->a.step, &t->a.layer};
  void *pr[6] = {&t->a.coords, &t->a.cls, &t->a.work, &t->a.nwork, &t->a.step, &t->a.layer};
  void *pk[4] = {&t->a.cls, &t->a.rows, &t->a.counts, &t->a.nwork};
  void *ps[2] = {&t->a.counts, &t->a.tabs};
  void *pf[6] = {&t->a.rows, &t->a.counts, &t->a.tabs, &t->a.pgbase, &t->a.slot_of, &t->a.uid};
  void *pb[10] = {&t->a.coords, &t->a.rows, &t->a.counts, &t->a.pgbase, &t->a.tabs,
                  &t->a.slot_of, &t->a.rep, &t->a.uid, &t->a.step, &t->a.layer};
  void *ph[13] = {&t->a.coords, &t->a.rows, &t->a.counts, &t->a.pgbase, &t->a.key0, &t->a.key1, &t->a.rep,
                  &t->a.uid, &t->a.slot_of, &t->a.count, &t->a.mask, &t->a.step, &t->a.layer};
  memcpy(t->pc, pc, sizeof pc);
  memcpy(t->pr, pr, sizeof pr);
  memcpy(t->pk, pk, sizeof pk);
  memcpy(t->ps, ps, sizeof ps);
  memcpy(t->pf, pf, sizeof pf);
  memcpy(t->pb, pb, sizeof pb);
  memcpy(t->ph, ph, sizeof ph);
  sieve_status st = rt_cuda_get(&t->cu, e);
  if (!st) st = cg_tgen_new_bits(p, shape, bits, &t->gen, e);
  if (!st) st = kernels(t, cache, dev, e);
  if (!st) st = place(t, e);
  if (!st && t->gen->bits) st = size_bits(t, e);
  if (st) {
    rt_dyn_tables_free(t);
    return st;
  }
  *out = t;
  return SIEVE_OK;
}

int rt_dyn_tables_kernels(const rt_dyn_tables *t) { return t->gen->bits ? 6 : 5; }

sieve_status rt_dyn_tables_build_timed(rt_dyn_tables *t, int step, int layer, CUstream s, CUevent *ev,
                                       cg_err *e) {
  const cg_tgen *g = t->gen;
  unsigned rows, nt, w = 32 * CG_TGEN_WARPS;
  grid(t, &rows, &nt);
  struct { CUfunction f; unsigned gx, gy, threads; void **prm; } k[6] = {
      {t->classify, rows, nt, w, t->pc}, {t->refine, CG_TGEN_REFINE_CTAS, 1, w, t->pr},
      {t->compact, rows, nt, w, t->pk},  {t->scan, nt, 1, 32, t->ps},
      {t->fill, rows, nt, w, t->pf},     {t->bits, (unsigned)g->nq, nt, w, t->pb}};
  t->a.step = step;
  t->a.layer = layer;
  sieve_status st = ev ? RT_CU(t->cu, e, cuEventRecord, ev[0], s) : SIEVE_OK;
  for (int i = 0; !st && i < rt_dyn_tables_kernels(t); i++) {
    st = rt_dyn_launch(t->cu, k[i].f, k[i].gx, k[i].gy, 1, k[i].threads, 0, s, k[i].prm, e);
    if (!st && ev) st = RT_CU(t->cu, e, cuEventRecord, ev[i + 1], s);
  }
  return st;
}

sieve_status rt_dyn_tables_build(rt_dyn_tables *t, int step, int layer, CUstream s, cg_err *e) {
  return rt_dyn_tables_build_timed(t, step, layer, s, NULL, e);
}

void rt_dyn_tables_ptrs(const rt_dyn_tables *t, CUdeviceptr *tabs, CUdeviceptr *head_off) {
  *tabs = t->tabs;
  *head_off = t->head_off;
}

const cg_tgen *rt_dyn_tables_gen(const rt_dyn_tables *t) { return t->gen; }
int rt_dyn_tables_from_cache(const rt_dyn_tables *t) { return t->from_cache; }
size_t rt_dyn_tables_bytes(const rt_dyn_tables *t) { return t->tbytes; }

void rt_dyn_tables_free(rt_dyn_tables *t) {
  if (!t) return;
  /* Nowhere to report to: the plan that owns this is going away. */
  if (t->cu) {
    rt_module_unload(t->cu, t->mod, NULL);
    if (t->mem) RT_CU(t->cu, NULL, cuMemFree, t->mem);
    if (t->tmem) RT_CU(t->cu, NULL, cuMemFree, t->tmem);
    if (t->smem) RT_CU(t->cu, NULL, cuMemFree, t->smem);
  }
  cg_tgen_free(t->gen);
  free(t);
}
