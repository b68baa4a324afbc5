/*
** sieve compile PATTERN --shape ...: the attention kernel of a pattern as
** pattern IR text, LLVM IR, or PTX. Needs no GPU: the PTX is what the
** runtime would hand to the driver.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_attn_tables.h"
#include "cli.h"
#include "lp.h"

enum { OPT_ARCH = CLI_OPT_CMD, OPT_DTYPE, OPT_CONFIG, OPT_EMIT, OPT_OUT };
enum { EMIT_PTX, EMIT_LLVM, EMIT_IR };

extern const cli_cmd cli_cmd_compile;

typedef struct compile_args {
  cli_common com;
  cg_arch arch;
  cg_dtype dtype;
  sieve_config cfg;  /* zeros: the generator's default */
  int emit;
  const char *out;
} compile_args;

static const cli_opt compile_opts[] = {
  {OPT_ARCH, "--arch", 0, "ARCH", "sm_80 (mma.sync) or sm_90 / sm_90a (wgmma where a warp has 16 rows; what plans take on sm_90) (default sm_80)"},
  {OPT_DTYPE, "--dtype", 0, "TYPE", "bf16 or fp16 inputs and output (default bf16)"},
  {OPT_CONFIG, "--config", 0, "SPEC", "kernel config, any subset of bm=64|128|192,bn=32|64|128|192,"
                                      "warps=4|8|12|16,stages=1|2|3|4,sched=0|1|2 (default: chosen for the shape)"},
  {OPT_EMIT, "--emit", 0, "WHAT", "ptx, llvm (the module's IR) or ir (the pattern IR text) "
                                  "(default ptx)"},
  {OPT_OUT, "--output", 'o', "FILE", "write there (default: standard output)"},
  {0},
};

/* The index of v in the NULL-terminated names. */
static int pick(const char *opt, const char *v, const char *const *names, int *out) {
  char all[128] = "";
  size_t n = 0;
  for (int i = 0; names[i]; i++) {
    if (!strcmp(v, names[i])) {
      *out = i;
      return CLI_OK;
    }
    n += (size_t)snprintf(all + n, sizeof all - n, "%s%s", i ? ", " : "", names[i]);
  }
  return cli_fail(CLI_USAGE, "%s: unknown value '%s' (valid: %s)", opt, v, all);
}

static int compile_opt(void *self, int id, const char *v) {
  static const char *const dtypes[] = {"bf16", "fp16", NULL};
  static const char *const emits[] = {"ptx", "llvm", "ir", NULL};
  compile_args *a = self;
  int d;
  switch (id) {
  case OPT_ARCH:
    if (cg_arch_parse(v, &a->arch) == 0) return CLI_OK;
    return cli_fail(CLI_USAGE, "--arch: unknown value '%s' (valid: sm_80, sm_90, sm_90a)", v);
  case OPT_DTYPE:
    if (pick("--dtype", v, dtypes, &d)) return CLI_USAGE;
    a->dtype = d ? CG_FP16 : CG_BF16;
    return CLI_OK;
  case OPT_CONFIG: return cli_config("--config", v, &a->cfg);
  case OPT_EMIT: return pick("--emit", v, emits, &a->emit);
  case OPT_OUT: a->out = v; return CLI_OK;
  }
  return CLI_OK;
}

/* Fields the user named replace the generator's default. */
static cg_attn_config merged(const cg_attn_spec *s, const sieve_config *u) {
  cg_attn_config d = cg_attn_default_config(s);
  sieve_config c = cli_config_complete(u, &(sieve_config){d.block_m, d.block_n, d.warps, d.stages, d.sched});
  return (cg_attn_config){c.block_m, c.block_n, c.warps, c.stages, c.sched};
}

static int kernel(const compile_args *a, sieve_pattern *p, const sieve_shape *shape) {
  cg_attn_spec spec = {lp_pattern_ir(p), *shape, a->dtype, a->arch, {0}, 0};
  cg_err e = {0};
  cg_pattern *rows = NULL;
  spec.cfg = merged(&spec, &a->cfg);
  /* The kernel a plan would make: on its query rows (cg_attn_merge_rows),
  ** bitmask classes as the plan chooses them. */
  if (cg_attn_merge_rows(&spec, &rows, &e) != SIEVE_OK) return cli_status_fail(e.status, e.msg, NULL);
  spec.bits = cg_attn_bits(&spec);
  if (cg_attn_check(&spec, &e) != SIEVE_OK) {
    cg_pattern_free(rows);
    return cli_status_fail(e.status, e.msg, NULL);
  }
  char *ptx = NULL, *name = NULL, *llvm = NULL;
  double t0 = cli_now_ms();
  sieve_status st = cg_attn_build(&spec, &ptx, &name, a->emit == EMIT_LLVM ? &llvm : NULL, &e);
  double ms = cli_now_ms() - t0;
  int rc = st != SIEVE_OK ? cli_status_fail(st, e.msg, "codegen") : CLI_OK;
  const char *text = a->emit == EMIT_LLVM ? llvm : ptx;
  if (!rc && !text) rc = cli_fail(CLI_FAIL, "codegen: the generator returned no text");
  if (!rc) rc = cli_write_file(a->out, text, strlen(text));
  if (!rc && strcmp(a->out, "-"))
    printf("wrote %s: kernel %s\n  %s %s, bm=%d bn=%d warps=%d stages=%d, %zu KiB shared memory, "
           "generated in %.0f ms\n", a->out, name, cg_arch_name(a->arch),
           a->dtype == CG_FP16 ? "fp16" : "bf16", spec.cfg.block_m, spec.cfg.block_n,
           spec.cfg.warps, spec.cfg.stages, cg_attn_smem_bytes(&spec) / 1024, ms);
  free(ptx);
  free(name);
  free(llvm);
  cg_pattern_free(rows);
  return rc;
}

static int compile(sieve_ctx *ctx, void *self) {
  const compile_args *a = self;
  sieve_shape shape;
  sieve_pattern *p = NULL;
  char path[4096];
  /* The pattern IR does not depend on a shape, so --emit ir needs none. */
  int rc = a->emit == EMIT_IR ? CLI_OK : cli_shape(ctx, &a->com, &shape);
  if (!rc) rc = cli_pattern_load(ctx, &a->com, &p, path, sizeof path);
  if (!rc && a->emit == EMIT_IR) {
    const char *ir = sieve_pattern_ir(p);
    rc = cli_write_file(a->out, ir, strlen(ir));
  } else if (!rc) {
    rc = kernel(a, p, &shape);
  }
  sieve_pattern_free(p);
  return rc;
}

static int run(int argc, char **argv) {
  compile_args a = {.arch = CG_SM80, .dtype = CG_BF16, .emit = EMIT_PTX, .out = "-"};
  return cli_pattern_command(&cli_cmd_compile, argc, argv, &a.com, compile_opt, &a, compile);
}

const cli_cmd cli_cmd_compile = {
  .name = "compile",
  .summary = "generate a pattern's attention kernel: PTX, LLVM IR, or the pattern IR",
  .usage = "PATTERN (--shape NAME | --frames T --height Y --width X) [options]",
  .about =
    "Generates the block-sparse flash-attention forward kernel for the pattern,\n"
    "the shape (compiled in as constants), the input type, the target and a\n"
    "tuning config, and writes its PTX (what the runtime loads), the LLVM IR\n"
    "it was lowered to, or the pattern IR text the kernel cache keys on\n"
    "(--emit ir needs no shape). Needs no GPU. With -o FILE, a summary line\n"
    "(kernel name, config, shared memory, time) goes to standard output.",
  .opts = compile_opts,
  .groups = CLI_G_PATTERN | CLI_G_SHAPE,
  .examples =
    "  sieve compile dense --shape wan-1.3b-480p --arch sm_80 -o dense.ptx\n"
    "  sieve compile lvsa --shape hunyuan-720p --config bm=128,bn=64,warps=8,stages=2 -o lvsa.ptx\n"
    "  sieve compile sta --frames 8 --height 16 --width 16 --dtype fp16 --emit llvm -o sta.ll\n"
    "  sieve compile svg --emit ir\n",
  .run = run,
};
