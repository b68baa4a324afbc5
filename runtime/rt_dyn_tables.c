/*
** GPU block tables at run time: the builder's module, its buffers (one
** allocation), and the three launches of a step.
*/
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
  CUfunction classify, scan, fill;
  CUdeviceptr mem, tabs, head_off;
  int from_cache;
  struct {
    CUdeviceptr boxes, rows, counts, tabs;
    int32_t step, layer;
  } a;
  void *pc[5], *ps[2], *pf[3];
};

int rt_dyn_tables_enabled(const rt_cuda *cu) {
  const char *v = getenv("SIEVE_TABLES");
  /* A stand-in driver (rt_cuda_set_fake) runs no generated code: the host
  ** tables are what it can see. */
  return cu && cu->lib && (!v || strcmp(v, "cpu") != 0);
}

static sieve_status gen_ptx(void *ud, char **ptx, cg_err *e) {
  rt_dyn_tables *t = ud;
  return cg_tgen_build(t->p, t->gen, t->arch, ptx, e);
}

static size_t up256(size_t n) { return (n + 255) & ~(size_t)255; }

/* One allocation for everything; boxes and head_off go up once. */
static sieve_status place(rt_dyn_tables *t, cg_err *e) {
  const cg_tgen *g = t->gen;
  size_t ob = 0, orow = up256(cg_tgen_boxes_bytes(g)), oc = orow + up256(cg_tgen_rows_bytes(g));
  size_t ot = oc + up256(cg_tgen_counts_bytes(g)), oh = ot + up256(cg_tgen_tabs_bytes(g));
  size_t heads = (size_t)g->shape.heads, total = oh + 4 * heads;
  if ((int64_t)g->ntables * g->table_ints > INT32_MAX)
    return cg_fail(e, SIEVE_ERR_SHAPE, "GPU block tables: %d tables of %lld ints exceed 32-bit offsets",
                   g->ntables, (long long)g->table_ints);
  sieve_status st = RT_CU(t->cu, e, cuMemAlloc, &t->mem, total);
  if (st) return st;
  t->a.boxes = t->mem + ob;
  t->a.rows = t->mem + orow;
  t->a.counts = t->mem + oc;
  t->a.tabs = t->tabs = t->mem + ot;
  t->head_off = t->mem + oh;
  int32_t *ho = malloc(4 * heads);
  if (!ho) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (size_t h = 0; h < heads; h++) ho[h] = (int32_t)(g->head_table[h] * g->table_ints);
  st = RT_CU(t->cu, e, cuMemcpyHtoD, t->head_off, ho, 4 * heads);
  free(ho);
  if (!st) st = RT_CU(t->cu, e, cuMemcpyHtoD, t->a.boxes, g->boxes, cg_tgen_boxes_bytes(g));
  return st;
}

static sieve_status kernels(rt_dyn_tables *t, rt_cache *cache, const rt_device *dev, cg_err *e) {
  char key[2048];
  if (rt_dyn_key(key, sizeof key, "tablegen 1", t->p, &t->gen->shape, t->arch, dev, NULL) >= (int)sizeof key)
    cache = NULL;
  sieve_status st = rt_dyn_module(t->cu, cache, key, gen_ptx, t, &t->mod, &t->from_cache, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_classify", 0, &t->classify, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_scan", 0, &t->scan, e);
  if (!st) st = rt_kernel_get(t->cu, t->mod, "sieve_tbl_fill", 0, &t->fill, e);
  return st;
}

sieve_status rt_dyn_tables_create(cg_pattern *p, const sieve_shape *shape, cg_arch arch,
                                  const rt_device *dev, rt_cache *cache, rt_dyn_tables **out,
                                  cg_err *e) {
  *out = NULL;
  rt_dyn_tables *t = calloc(1, sizeof *t);
  if (!t) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  t->p = p;
  t->arch = arch;
  void *pc[5] = {&t->a.boxes, &t->a.rows, &t->a.counts, &t->a.step, &t->a.layer};
  void *ps[2] = {&t->a.counts, &t->a.tabs}, *pf[3] = {&t->a.rows, &t->a.counts, &t->a.tabs};
  memcpy(t->pc, pc, sizeof pc);
  memcpy(t->ps, ps, sizeof ps);
  memcpy(t->pf, pf, sizeof pf);
  sieve_status st = rt_cuda_get(&t->cu, e);
  if (!st) st = cg_tgen_new(p, shape, &t->gen, e);
  if (!st) st = kernels(t, cache, dev, e);
  if (!st) st = place(t, e);
  if (st) {
    rt_dyn_tables_free(t);
    return st;
  }
  *out = t;
  return SIEVE_OK;
}

sieve_status rt_dyn_tables_build(rt_dyn_tables *t, int step, int layer, CUstream s, cg_err *e) {
  const cg_tgen *g = t->gen;
  unsigned rows = (unsigned)((g->nq + CG_TGEN_WARPS - 1) / CG_TGEN_WARPS), nt = (unsigned)g->ntables;
  t->a.step = step;
  t->a.layer = layer;
  sieve_status st = rt_dyn_launch(t->cu, t->classify, rows, nt, 1, 32 * CG_TGEN_WARPS, 0, s, t->pc, e);
  if (!st) st = rt_dyn_launch(t->cu, t->scan, nt, 1, 1, 32, 0, s, t->ps, e);
  if (!st) st = rt_dyn_launch(t->cu, t->fill, rows, nt, 1, 32 * CG_TGEN_WARPS, 0, s, t->pf, e);
  return st;
}

void rt_dyn_tables_ptrs(const rt_dyn_tables *t, CUdeviceptr *tabs, CUdeviceptr *head_off) {
  *tabs = t->tabs;
  *head_off = t->head_off;
}

const cg_tgen *rt_dyn_tables_gen(const rt_dyn_tables *t) { return t->gen; }
int rt_dyn_tables_from_cache(const rt_dyn_tables *t) { return t->from_cache; }

void rt_dyn_tables_free(rt_dyn_tables *t) {
  if (!t) return;
  /* Nowhere to report to: the plan that owns this is going away. */
  if (t->cu) {
    rt_module_unload(t->cu, t->mod, NULL);
    if (t->mem) RT_CU(t->cu, NULL, cuMemFree, t->mem);
  }
  cg_tgen_free(t->gen);
  free(t);
}
