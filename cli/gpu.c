/*
** What the commands that run kernels share: the dtype option, opening the
** GPU, making a plan with the user's config, and the lines that say what
** ran where.
*/
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cg_attn.h"
#include "cli.h"
#include "lp.h"
#include "rt_plan.h"

#ifndef SIEVE_PATTERNS_DIR
#define SIEVE_PATTERNS_DIR ""
#endif

int cli_dtype(const char *opt, const char *v, sieve_dtype *out) {
  if (!strcmp(v, "bf16")) *out = SIEVE_BF16;
  else if (!strcmp(v, "fp16")) *out = SIEVE_FP16;
  else return cli_fail(CLI_USAGE, "%s: unknown value '%s' (valid: bf16, fp16)", opt, v);
  return CLI_OK;
}

const char *cli_dtype_name(sieve_dtype dt) { return dt == SIEVE_FP16 ? "fp16" : "bf16"; }

int cli_gpu_open(sieve_ctx *ctx, sieve_device_info *info) {
  sieve_status st = sieve_device_open(ctx, 0);
  if (!st) st = sieve_device_query(ctx, 0, info);
  if (st == SIEVE_ERR_NO_DRIVER || st == SIEVE_ERR_NO_GPU) {
    const char *m = sieve_errmsg(ctx);
    return cli_fail(CLI_FAIL, "no GPU: %.*s", (int)strcspn(m, "\n"), m);
  }
  return st ? cli_lib_fail(ctx, st, "GPU") : CLI_OK;
}

int cli_gpu_precheck(const sieve_pattern *p, const sieve_shape *s, sieve_dtype dt, const sieve_config *cfg) {
  rt_plan_spec spec = {.pattern = lp_pattern_ir(p), .shape = *s, .dtype = dt == SIEVE_FP16 ? CG_FP16 : CG_BF16};
  if (cfg) spec.cfg = (cg_attn_config){cfg->block_m, cfg->block_n, cfg->warps, cfg->stages};
  cg_err e = {0};
  /* Partial configs are completed from the target's defaults (cli_plan). */
  if (rt_plan_precheck(&spec, 1, &e)) return cli_status_fail(e.status, e.msg, NULL);
  return CLI_OK;
}

int cli_plan(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *s, sieve_dtype dt,
             const sieve_config *user, sieve_plan **out) {
  sieve_config cfg = {0};
  *out = NULL;
  if (cli_config_given(user)) {
    /* A partial config is completed from the defaults of the plan's target. */
    rt_device dev;
    cg_err e = {0};
    cg_arch arch = api_device(ctx, &dev, &e) ? CG_SM80 : rt_plan_arch_for(&dev);
    cg_attn_spec spec = {lp_pattern_ir(p), *s, dt == SIEVE_FP16 ? CG_FP16 : CG_BF16, arch, {0}, 0};
    cg_shape_for(spec.pattern, s, &spec.shape);
    cg_attn_config d = cg_attn_default_config(&spec);
    cfg = cli_config_complete(user, &(sieve_config){d.block_m, d.block_n, d.warps, d.stages, d.sched});
  }
  sieve_status st = sieve_plan_create(ctx, p, s, dt, &cfg, out);
  if (st) {
    *out = NULL;
    return cli_lib_fail(ctx, st, "plan");
  }
  return CLI_OK;
}

void cli_gpu_header(const char *path, const sieve_pattern *p, const cli_common *com,
                    const sieve_shape *s, sieve_dtype dt, const sieve_device_info *d) {
  char line[256];
  cli_shape_line(com, s, line, sizeof line);
  const char *name = sieve_pattern_name(p);
  printf("pattern   %s (%s)  ir %016" PRIx64 "\n", name && *name ? name : "-", path,
         sieve_pattern_hash(p));
  printf("shape     %s; batch %d, %s\n", line, s->batch, cli_dtype_name(dt));
  printf("device    %s: sm_%d%d, %d SMs, driver %d.%d\n", d->name, d->sm_major, d->sm_minor,
         d->sm_count, d->driver_version / 1000, d->driver_version % 1000 / 10);
}

int cli_gpu_begin(sieve_ctx *ctx, const cli_common *com, sieve_dtype dt, const sieve_config *cfg,
                  int batch, cli_gpu_run *g) {
  char line[512];
  memset(g, 0, sizeof *g);
  int rc = cli_shape(ctx, com, &g->shape);
  if (!rc) rc = cli_pattern_load(ctx, com, &g->p, g->path, sizeof g->path);
  if (!rc) {
    g->shape.batch = batch;
    cli_pattern_shape(g->p, &g->shape);
    rc = cli_gpu_precheck(g->p, &g->shape, dt, cfg);
  }
  if (!rc) rc = cli_gpu_open(ctx, &g->dev);
  if (!rc) rc = cli_plan(ctx, g->p, &g->shape, dt, cfg, &g->plan);
  if (!rc && (com->step || com->layer)) {
    sieve_status st = sieve_plan_set_step(g->plan, com->step, com->layer);
    if (st) rc = cli_lib_fail(ctx, st, "step");
  }
  if (!rc) {
    cli_gpu_header(g->path, g->p, com, &g->shape, dt, &g->dev);
    cli_plan_line(g->plan, cfg, line, sizeof line);
    printf("config    %s\n", line);
    fflush(stdout);
  }
  return rc;
}

void cli_gpu_end(cli_gpu_run *g) {
  sieve_plan_free(g->plan);
  sieve_pattern_free(g->p);
  g->plan = NULL;
  g->p = NULL;
}

void cli_plan_line(const sieve_plan *plan, const sieve_config *user, char *buf, size_t len) {
  sieve_config c;
  sieve_plan_config(plan, &c);
  const rt_plan_stats *st = rt_plan_stats_of(api_plan_of(plan));
  char from[256];
  int n = st->from_cache ? snprintf(from, sizeof from, "kernel from the cache")
                         : snprintf(from, sizeof from, "kernel compiled (codegen %.0f ms, driver JIT %.0f ms)",
                                    st->codegen_ms, st->link_ms);
  if (st->tables_from_cache) snprintf(from + n, sizeof from - (size_t)n, ", tables from the cache");
  int given = cli_config_given(user);
  static const char *const sched[] = {"", " sched=1 (persistent, static)", " sched=2 (persistent, atomic)"};
  snprintf(buf, len, "bm=%d bn=%d warps=%d stages=%d%s (%s), %s", c.block_m, c.block_n, c.warps,
           c.stages, c.sched > 0 && c.sched < 3 ? sched[c.sched] : "", given ? "given" : st->tuned ? "tuned" : "default", from);
}
