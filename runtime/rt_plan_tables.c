/*
** A plan's block tables: built on the host and uploaded (rebuilt when the
** step changes a mask that reads it), or built on the GPU by rt_dyn.h.
*/
#include "rt_plan_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_attn_tables.h"
#include "rt_sched.h"

cg_pattern *rt_plan_tab_pattern(const rt_plan *p) { return p->tab_pat ? p->tab_pat : p->spec.pattern; }

sieve_status rt_plan_build_tables(const rt_plan *p, int step, int layer,
                                 host_tables *h, cg_err *e) {
  const sieve_shape *sh = &p->spec.shape;
  size_t heads = (size_t)sh->heads, n = 0;
  cg_tableset *t = NULL;
  int32_t *packed = NULL, *head_off = NULL;
  memset(h, 0, sizeof *h);
  const cg_attn_config *c = &p->spec.cfg;
  int nqk = (int)((sieve_shape_tokens(sh) + c->block_m - 1) / c->block_m);
  size_t tiles = c->sched ? heads * (size_t)nqk : 0, extra = tiles ? 2 * tiles + 2 : 0;
  sieve_status st = cg_tables_build_bits(rt_plan_tab_pattern(p), sh, step, layer, 0, p->spec.bits, &t, e);
  if (st) return st;
  if (!(head_off = malloc(heads * sizeof *head_off)))
    st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for block tables");
  if (!st) st = cg_tables_pack(t, &packed, &n, head_off, e);
  if (!st && !(h->buf = malloc((n + heads + extra) * sizeof *h->buf)))
    st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for block tables");
  if (!st) {
    memcpy(h->buf, packed, n * sizeof *h->buf);
    memcpy(h->buf + n, head_off, heads * sizeof *h->buf);
    h->bytes = (n + heads + extra) * sizeof *h->buf;
    h->head_off_at = n * sizeof *h->buf;
    if (tiles) {
      int32_t *order = h->buf + n + heads;
      if (rt_sched_order(packed, head_off, (int)heads, nqk, c->block_m, t->nq, t->block_q, order))
        st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the tile order");
      for (size_t i = 0; i < tiles; i++) order[tiles + i] = (int32_t)i;
      order[2 * tiles] = order[2 * tiles + 1] = 0;  /* the counter starts at zero */
      h->order_at = (n + heads) * sizeof *h->buf;
    }
    double pairs = 0, seq = (double)t->seq;
    for (size_t i = 0; i < heads; i++) pairs += (double)t->tables[t->head_table[i]].allowed_pairs;
    h->density = pairs / ((double)heads * seq * seq);
  }
  free(packed);
  free(head_off);
  cg_tables_free(t);
  return st;
}

/* Makes room for h on the device and points the kernel's arguments at it;
** the bytes themselves are copied by the caller. */
sieve_status rt_plan_place_tables(rt_plan *p, const host_tables *h, cg_err *e) {
  const rt_cuda *cu = p->cu;
  sieve_status st;
  if (h->bytes > p->dmem_bytes) {
    if (p->dmem) {
      /* Launches already enqueued may still read the old buffer. */
      if ((st = RT_CU(cu, e, cuCtxSynchronize))) return st;
      if ((st = RT_CU(cu, e, cuMemFree, p->dmem))) return st;
      p->dmem = p->arg.tabs = p->arg.head_off = 0;  /* runs refuse until replaced */
      p->dmem_bytes = 0;
    }
    size_t want = h->bytes + h->bytes / 4;  /* later steps may need a little more */
    if ((st = RT_CU(cu, e, cuMemAlloc, &p->dmem, want))) return st;
    p->dmem_bytes = want;
  }
  p->arg.tabs = p->dmem;
  p->arg.head_off = p->dmem + h->head_off_at;
  if (h->order_at) {
    size_t tiles = (h->bytes - h->order_at) / sizeof(int32_t) / 2 - 1;
    p->order = p->dmem + h->order_at;
    p->ident = p->order + 4 * tiles;
    p->arg.ctr = p->ident + 4 * tiles;
  }
  p->density = h->density;
  return SIEVE_OK;
}

int rt_plan_mask_reads_step(const cg_pattern *pt) {
  uint32_t vars = 0;
  for (int i = 0; i < pt->nclasses; i++) vars |= cg_vars_used(pt->g, pt->classes[i].mask);
  return (vars & (1u << CG_V_STEP | 1u << CG_V_LAYER)) != 0;
}

/*
** A mask that follows the step or layer gets its tables from the generated
** GPU builder (rt_dyn.h) on the run's stream, instead of a host rebuild and
** an upload per step; so does any mask under SIEVE_TABLES=gpu. The host
** builds nothing then: the density, which needs every partial block's
** count, is counted on the host when first asked for (rt_plan_density).
*/
int rt_plan_gpu_tables(const rt_plan *p) {
  return (p->dynamic || rt_dyn_tables_always()) && rt_dyn_tables_enabled(p->cu);
}

sieve_status rt_plan_use_gpu_tables(rt_plan *p, const rt_device *dev, rt_cache *cache, cg_err *e) {
  sieve_status st = rt_dyn_tables_create(rt_plan_tab_pattern(p), &p->spec.shape, p->spec.arch, dev, cache,
                                         p->spec.bits, &p->gt, e);
  if (st) return st;
  rt_dyn_tables_ptrs(p->gt, &p->arg.tabs, &p->arg.head_off);
  p->gt_pending = 1;
  return SIEVE_OK;
}

/*
** Tables the GPU builds are never on the host, so a persistent kernel on
** them walks its tiles in the grid's order (head-major), from memory of
** its own: the order, which is also the identity, and the counter.
*/
sieve_status rt_plan_identity_order(rt_plan *p, cg_err *e) {
  int64_t nqk = (sieve_shape_tokens(&p->spec.shape) + p->spec.cfg.block_m - 1) / p->spec.cfg.block_m;
  size_t tiles = (size_t)nqk * (size_t)p->spec.shape.heads, bytes = (tiles + 2) * sizeof(int32_t);
  int32_t *h = malloc(bytes);
  if (!h) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the tile order");
  for (size_t i = 0; i < tiles; i++) h[i] = (int32_t)i;
  h[tiles] = h[tiles + 1] = 0;
  sieve_status st = RT_CU(p->cu, e, cuMemAlloc, &p->sched_mem, bytes);
  if (!st) st = RT_CU(p->cu, e, cuMemcpyHtoD, p->sched_mem, h, bytes);
  free(h);
  if (st) return st;
  p->order = p->ident = p->sched_mem;
  p->arg.ctr = p->sched_mem + 4 * tiles;
  return SIEVE_OK;
}

sieve_status rt_plan_set_step(rt_plan *p, int step, int layer, cg_err *e) {
  if (p->dense) {
    p->warm = p->folded || cg_pattern_dense_at(p->spec.pattern, step, layer);
    if (p->warm) return SIEVE_OK;  /* no table work for the steps the dense kernel runs */
  }
  if (step == p->arg.step && layer == p->arg.layer) return SIEVE_OK;
  if (p->gt) {
    p->gt_pending |= p->dynamic;  /* a static mask's tables hold at every step */
  } else if (p->dynamic) {
    host_tables h;
    sieve_status st = rt_plan_build_tables(p, step, layer, &h, e);
    if (!st) st = rt_plan_place_tables(p, &h, e);
    if (st) {
      free(h.buf);
      return st;
    }
    free(p->pending);
    p->pending = h.buf;
    p->pending_bytes = h.bytes;
  }
  p->arg.step = step;
  p->arg.layer = layer;
  return SIEVE_OK;
}

/* Counted on the host the first time for plans on GPU-built tables (NAN
** when that fails). */
double rt_plan_density(const rt_plan *p) {
  if (!isnan(p->density)) return p->density;
  host_tables h;
  cg_err e = {0};
  rt_plan *m = (rt_plan *)p;  /* a cache of a value the plan fixes at creation */
  if (!rt_plan_build_tables(p, p->step0, p->layer0, &h, &e)) m->density = h.density;
  free(h.buf);
  return m->density;
}
