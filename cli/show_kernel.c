/*
** The tables the default kernel reads, for `sieve show --arch`. A plan
** builds them at the kernel's blocks, which are not always the pattern's:
** 64-token query blocks merge into the warp-specialised kernel's 128 or
** 192 rows, and blocks left to the kernel take its tile. What the kernel
** visits, and the memory it needs, are those tables' numbers.
*/
#include <stdio.h>

#include "api.h"
#include "cg_attn_tables.h"
#include "cg_ptx.h"
#include "cli.h"
#include "lp.h"
#include "show.h"

int show_kernel_tables(const sieve_pattern *p, const sieve_shape *shape, int step, int layer,
                       cg_arch arch, show_kernel *out) {
  cg_err e = {0};
  cg_attn_spec s = {.pattern = lp_pattern_ir(p), .dtype = CG_BF16, .arch = arch};
  cg_pattern *rows = NULL, *view = NULL;
  cg_tableset *ts = NULL;
  out->tables = NULL;
  cg_shape_for(s.pattern, shape, &s.shape);
  out->folded = cg_attn_folds_dense(s.pattern, &s.shape);
  if (out->folded) {
    /* What the plan runs instead (rt_plan.c, fold): the dense kernel. */
    cg_pattern *d = cg_pattern_dense_of(s.pattern, &e);
    if (!d) return cli_status_fail(e.status, e.msg, "the dense pattern");
    s.pattern = d;
    s.cfg = cg_attn_default_config(&s);
    cg_pattern_free(d);
    snprintf(out->desc, sizeof out->desc, "%s, the dense kernel's default config %d/%d/%d/%d", cg_arch_name(arch),
             s.cfg.block_m, s.cfg.block_n, s.cfg.warps, s.cfg.stages);
    return CLI_OK;
  }
  s.cfg = cg_attn_default_config(&s);
  /* The order a plan takes (rt_plan.c, resolve): rows first, then the
  ** bitmask classes and the view, all seen at the merged rows. */
  sieve_status st = cg_attn_merge_rows(&s, &rows, &e);
  if (!st) {
    s.bits = cg_attn_bits(&s);
    st = cg_attn_tables_view(&s, &view, &e);
  }
  const cg_attn_config *c = &s.cfg;
  snprintf(out->desc, sizeof out->desc, "%s, default config %d/%d/%d/%d", cg_arch_name(arch), c->block_m,
           c->block_n, c->warps, c->stages);
  if (!st && (rows || view)) {
    st = cg_tables_build_bits(view ? view : s.pattern, &s.shape, step, layer, 0, s.bits, &ts, &e);
    if (!st) st = api_tables_wrap(ts, s.pattern, &out->tables, &e);
  }
  cg_pattern_view_free(view);
  cg_pattern_free(rows);
  return st ? cli_status_fail(st, e.msg, "the kernel's block tables") : CLI_OK;
}
