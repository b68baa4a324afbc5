/*
** Running a plan: the kernel's parameters stored in place, tensor maps,
** the layout permute before the attention, persistent grids, runs over
** some heads, lent tables and valid text lengths.
*/
#include "rt_plan_int.h"

#include <math.h>
#include <stdlib.h>

#include "cg_attn.h"
#include "cg_permute.h"
#include "rt_tmap.h"

/* Rows TMA and the permute's 16-byte copies can read: base and row stride
** on 16 bytes (the other strides only move whole rows). */
static int rows16(const rt_plan *p, const sieve_tensor *t) {
  return t->ptr % 16 == 0 && t->stride_s % 8 == 0 && (p->dims.grid[1] == 1 || t->stride_h % 8 == 0) &&
         (p->dims.grid[2] == 1 || t->stride_b % 8 == 0);
}

/* The permuted tensor i (0 Q, 1 K, 2 V) as the attention kernel sees it. */
static sieve_tensor permuted(const rt_plan *p, int i) {
  const sieve_shape *sh = &p->spec.shape;
  int64_t S = sieve_shape_tokens(sh), D = sh->head_dim;
  CUdeviceptr base = i == 0 ? p->pm_arg.qp : i == 1 ? p->pm_arg.kp : p->pm_arg.vp;
  sieve_tensor t = {.ptr = base, .stride_b = (int64_t)sh->heads * S * D, .stride_h = S * D, .stride_s = D};
  return t;
}

static void put_strides(int64_t *out, const sieve_tensor *t) {
  out[0] = t->stride_b;
  out[1] = t->stride_h;
  out[2] = t->stride_s;
}

sieve_status rt_plan_permute(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                             const sieve_tensor *v, CUstream s, cg_err *e) {
  if (!p->pm_fn) return cg_fail(e, SIEVE_ERR_ARG, "plan %s does not permute", p->kernel);
  const sieve_tensor *t[3] = {q, k, v};
  for (int i = 0; i < 3; i++) put_strides(p->pm_arg.stride + 3 * i, t[i]);
  p->pm_arg.q = q->ptr;
  p->pm_arg.k = k->ptr;
  p->pm_arg.v = v->ptr;
  return rt_dyn_launch(p->cu, p->pm_fn, (unsigned)cg_permute_blocks(&p->spec.shape), p->dims.grid[1],
                       p->dims.grid[2], CG_PERMUTE_THREADS, 0, s, p->pm_params, e);
}

/* A persistent kernel over the grid's heads and batch elements: the
** table's order for whole runs, the identity over a run's first heads. */
static sieve_status launch_tiles(rt_plan *p, CUstream s, cg_err *e) {
  int64_t nqk = (sieve_shape_tokens(&p->spec.shape) + p->spec.cfg.block_m - 1) / p->spec.cfg.block_m;
  int64_t tiles = nqk * p->dims.grid[1], items = tiles * p->dims.grid[2];
  if (items > INT32_MAX) return cg_fail(e, SIEVE_ERR_SHAPE, "%lld query tiles: past a persistent kernel's 32-bit count", (long long)items);
  p->arg.sched = p->part ? p->ident : p->order;
  p->arg.ntiles = (int32_t)tiles;
  p->arg.nitems = (int32_t)items;
  rt_dims d = p->dims;
  d.grid[0] = (unsigned)(items < p->ctas ? items : p->ctas);
  d.grid[1] = d.grid[2] = 1;
  return rt_launch(p->cu, p->fn, &d, s, p->params, e);
}

sieve_status rt_plan_tables_ready(rt_plan *p, CUstream s, cg_err *e) {
  sieve_status st;
  if (!p->dmem && !p->gt)
    return cg_fail(e, SIEVE_ERR_ARG, "plan has no block tables: its last set_step failed");
  if (p->pending) {
    /* Ordered on s behind the launches that read the old tables; a pageable
    ** source is staged before the call returns, so it can go at once. */
    if ((st = RT_CU(p->cu, e, cuMemcpyHtoDAsync, p->dmem, p->pending, p->pending_bytes, s)))
      return st;
    free(p->pending);
    p->pending = NULL;
  }
  if (p->gt_pending) {
    if ((st = rt_dyn_tables_build(p->gt, p->arg.step, p->arg.layer, s, e))) return st;
    p->gt_pending = 0;
  }
  return SIEVE_OK;
}

sieve_status rt_plan_run_allowed(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                                 const sieve_tensor *v, const sieve_tensor *o,
                                 CUdeviceptr lse, float scale, CUstream s, cg_err *e) {
  if (p->dense && !p->borrowed && cg_attn_mask_free(p->spec.pattern))
    return rt_plan_run(p->dense, q, k, v, o, lse, scale, s, e);
  return rt_plan_run(p, q, k, v, o, lse, scale, s, e);
}

sieve_status rt_plan_run(rt_plan *p, const sieve_tensor *q, const sieve_tensor *k,
                         const sieve_tensor *v, const sieve_tensor *o,
                         CUdeviceptr lse, float scale, CUstream s, cg_err *e) {
  sieve_status st;
  /* Lent tables (a search's selection) are run as lent, warm-up or not. */
  if (p->warm && !p->borrowed) return rt_plan_run(p->dense, q, k, v, o, lse, scale, s, e);
  if ((st = rt_plan_tables_ready(p, s, e))) return st;
  if ((st = rt_plan_text_sync(p, s, NULL, e))) return st;
  p->arg.q = q->ptr;
  p->arg.k = k->ptr;
  p->arg.v = v->ptr;
  p->arg.o = o->ptr;
  p->arg.lse = lse;
  put_strides(p->arg.stride + 0, q);
  put_strides(p->arg.stride + 3, k);
  put_strides(p->arg.stride + 6, v);
  put_strides(p->arg.stride + 9, o);
  p->arg.scale = scale > 0 ? scale : 1.0f / sqrtf((float)p->spec.shape.head_dim);
  if (cg_attn_uses_tma(&p->spec)) {
    const sieve_tensor *t[NTMAPS] = {q, k, v};
    sieve_tensor pt[NTMAPS];
    int perm = p->pm_fn != NULL, ok = !perm || (rows16(p, q) && rows16(p, k) && rows16(p, v));
    for (int i = 0; perm && i < NTMAPS; i++) {
      pt[i] = permuted(p, i);
      t[i] = &pt[i];
    }
    for (int i = 0; i < NTMAPS && ok; i++)
      ok = !p->no_tma && rt_tmap_encode(p->cu, &p->arg.tmap[i], p->spec.dtype, &p->spec.shape, p->dims.grid[1],
                                        p->dims.grid[2], t[i], i ? p->spec.cfg.block_n : p->spec.cfg.block_m);
    if (ok && perm) {
      /* Q, K, V into layout order on the same stream, then the attention
      ** reads them there; O and the LSE go straight to token order. */
      if ((st = rt_plan_permute(p, q, k, v, s, e))) return st;
      for (int i = 0; i < NTMAPS; i++) put_strides(p->arg.stride + 3 * i, t[i]);
      p->arg.q = t[0]->ptr;
      p->arg.k = t[1]->ptr;
      p->arg.v = t[2]->ptr;
    }
    if (!ok) {
      p->segs_written = 0;
      if (!p->fb_fn && (st = rt_plan_build_fallback(p, e))) return st;
      p->stats.stand_ins++;
      p->fb_dims.grid[0] = p->fb_grid0;
      p->fb_dims.grid[1] = p->dims.grid[1];
      p->fb_dims.grid[2] = p->dims.grid[2];
      return rt_launch(p->cu, p->fb_fn, &p->fb_dims, s, p->params, e);
    }
  }
  p->segs_written = p->spec.segs;
  if (p->spec.cfg.sched) return launch_tiles(p, s, e);
  return rt_launch(p->cu, p->fn, &p->dims, s, p->params, e);
}

void rt_plan_set_segs(rt_plan *p, CUdeviceptr segs) { p->arg.segs = segs; }
int rt_plan_segs_written(const rt_plan *p) { return p->segs_written; }

/*
** Batch element b only (all of them when b < 0) and heads h0 .. h0 + nh:
** the grid covers them, and Q, K, V, O, LSE and head_off start at (b, h0),
** so the kernel sees them as batch 0 (or b) and head i. Right for patterns
** whose mask and layout do not read the head, or with tables per (batch,
** head): SVG's plans of one class each, run over the heads profiling gave
** that class in one input; AdaSpa's tables selected for one input.
*/
sieve_status rt_plan_run_part(rt_plan *p, int b, int h0, int nh, const sieve_tensor *q,
                              const sieve_tensor *k, const sieve_tensor *v,
                              const sieve_tensor *o, CUdeviceptr lse, float scale, CUstream s,
                              cg_err *e) {
  if (p->warm && !p->borrowed) return rt_plan_run_part(p->dense, b, h0, nh, q, k, v, o, lse, scale, s, e);
  int heads = p->spec.shape.heads;
  if (h0 < 0 || nh < 1 || h0 + nh > heads)
    return cg_fail(e, SIEVE_ERR_ARG, "heads %d..%d of %d", h0, h0 + nh, heads);
  if (b >= (int)p->dims.grid[2])
    return cg_fail(e, SIEVE_ERR_ARG, "batch element %d of %u", b, p->dims.grid[2]);
  int64_t bb = b < 0 ? 0 : b, tokens = sieve_shape_tokens(&p->spec.shape);
  sieve_tensor t[4] = {*q, *k, *v, *o};
  for (int i = 0; i < 4; i++) t[i].ptr += (uint64_t)(2 * (bb * t[i].stride_b + (int64_t)h0 * t[i].stride_h));
  lse += (CUdeviceptr)(4 * (bb * heads + h0) * tokens);
  CUdeviceptr ho = p->arg.head_off, tl = p->arg.tlen;
  unsigned gy = p->dims.grid[1], gz = p->dims.grid[2];
  p->arg.head_off += 4 * (CUdeviceptr)h0;
  if (tl) p->arg.tlen += 4 * (CUdeviceptr)bb;
  p->dims.grid[1] = (unsigned)nh;
  if (b >= 0) p->dims.grid[2] = 1;
  p->part = 1;
  sieve_status st = rt_plan_run(p, &t[0], &t[1], &t[2], &t[3], lse, scale, s, e);
  p->part = 0;
  p->arg.head_off = ho;  /* the launch copied its parameters */
  p->arg.tlen = tl;
  p->dims.grid[1] = gy;
  p->dims.grid[2] = gz;
  return st;
}

void rt_plan_tables(const rt_plan *p, CUdeviceptr *tabs, CUdeviceptr *head_off) {
  *tabs = p->borrowed ? p->own_tabs : p->arg.tabs;
  *head_off = p->borrowed ? p->own_head_off : p->arg.head_off;
}

void rt_plan_use_tables(rt_plan *p, CUdeviceptr tabs, CUdeviceptr head_off) {
  if (tabs && !p->borrowed) {
    p->own_tabs = p->arg.tabs;
    p->own_head_off = p->arg.head_off;
    p->borrowed = 1;
  }
  if (!tabs && p->borrowed) {
    tabs = p->own_tabs;
    head_off = p->own_head_off;
    p->borrowed = 0;
  }
  if (tabs) {
    p->arg.tabs = tabs;
    p->arg.head_off = head_off;
  }
}

sieve_status rt_plan_text_sync(rt_plan *p, CUstream s, CUdeviceptr *ptr, cg_err *e) {
  if (p->tlen_pending) {
    size_t n = sizeof(int32_t) * (size_t)p->spec.shape.batch;
    sieve_status st = RT_CU(p->cu, e, cuMemcpyHtoDAsync, p->tlen_dev, p->tlen_host, n, s);
    if (st) return st;
    p->tlen_pending = 0;
  }
  if (ptr) *ptr = p->arg.tlen;
  return SIEVE_OK;
}

sieve_status rt_plan_set_text(rt_plan *p, const int *valid, int n, cg_err *e) {
  if (p->dense) {
    sieve_status st = rt_plan_set_text(p->dense, valid, n, e);
    if (st) return st;
  }
  sieve_shape resolved, *sh = &resolved;
  cg_shape_for(p->spec.pattern, &p->spec.shape, sh);
  if (!valid) {
    p->arg.tlen = 0;
    p->tlen_pending = 0;
    return SIEVE_OK;
  }
  if (n != sh->batch) return cg_fail(e, SIEVE_ERR_ARG, "text lengths: %d given for a batch of %d", n, sh->batch);
  for (int b = 0; b < n; b++)
    if (valid[b] < 0 || valid[b] > sh->text)
      return cg_fail(e, SIEVE_ERR_ARG, "text length %d of batch element %d: the shape has %d text tokens",
                     valid[b], b, sh->text);
  size_t bytes = sizeof(int32_t) * (size_t)n;
  if (!p->tlen_host && !(p->tlen_host = malloc(bytes))) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for text lengths");
  if (!p->tlen_dev) {
    sieve_status st = RT_CU(p->cu, e, cuMemAlloc, &p->tlen_dev, bytes);
    if (st) return st;
  }
  for (int b = 0; b < n; b++) p->tlen_host[b] = valid[b];
  p->tlen_pending = 1;
  p->arg.tlen = p->tlen_dev;
  return SIEVE_OK;
}
