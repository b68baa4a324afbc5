/*
** Writes the PTX of every generated module other than the attention
** kernel (`sieve compile` writes that one): the GPU table builder, plain
** and with bitmasks, the layout permute, the AdaSpa search and the SVG
** profile kernels, per pattern, shape and arch, one file each, or the
** error that module gives. Two builds' outputs compared file by file show
** whether a change to the generator changed any of them
** (bench/same_kernels.sh).
**
**   module_ptx OUTDIR SHAPE[,SHAPE...] PATTERN.lua...
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_permute.h"
#include "cg_profile.h"
#include "cg_search.h"
#include "cg_tablegen.h"
#include "lp.h"

typedef struct job {
  const char *dir, *pattern, *shape;
  int arch;
} job;

static int put(const job *j, const char *module, sieve_status st, const char *ptx, const cg_err *e) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-%s-%s-%s.ptx", j->dir, j->pattern, j->shape, j->arch ? "sm_90a" : "sm_80",
           module);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "module_ptx: cannot write %s\n", path);
    return 1;
  }
  if (st) fprintf(f, "error %d: %s\n", (int)st, e->msg);
  else fputs(ptx ? ptx : "none: the pattern needs no such module\n", f);
  return fclose(f) != 0;
}

static int tables(const job *j, cg_pattern *p, const sieve_shape *s, cg_arch arch, uint32_t bits) {
  cg_err e = {0};
  cg_tgen *t = NULL;
  char *ptx = NULL;
  sieve_status st = bits ? cg_tgen_new_bits(p, s, bits, &t, &e) : cg_tgen_new(p, s, &t, &e);
  if (!st) st = cg_tgen_build(p, t, arch, &ptx, &e);
  int rc = put(j, bits ? "tables_bits" : "tables", st, ptx, &e);
  free(ptx);
  cg_tgen_free(t);
  return rc;
}

static int modules(const job *j, cg_pattern *p, const sieve_shape *s) {
  cg_arch arch = j->arch ? CG_SM90A : CG_SM80;
  int rc = tables(j, p, s, arch, 0) | tables(j, p, s, arch, ~0u);
  /* Each module is built before put() reads its text: the order in which
  ** a call's arguments are evaluated is unspecified. */
  cg_err e = {0};
  char *ptx = NULL;
  sieve_status st = cg_permute_build(p, s, arch, &ptx, &e);
  rc |= put(j, "permute", st, ptx, &e);
  free(ptx);
  ptx = NULL;
  memset(&e, 0, sizeof e);
  cg_search_spec ss = {p, *s, CG_BF16, arch, 1000};
  st = cg_search_build(&ss, &ptx, &e);
  rc |= put(j, "search", st, ptx, &e);
  free(ptx);
  ptx = NULL;
  memset(&e, 0, sizeof e);
  cg_profile_spec ps = {p, *s, CG_BF16, arch, 64, 0};
  st = cg_profile_build(&ps, &ptx, &e);
  rc |= put(j, "profile", st, ptx, &e);
  free(ptx);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: module_ptx OUTDIR SHAPE[,SHAPE...] PATTERN.lua...\n");
    return 2;
  }
  sieve_ctx *ctx;
  if (sieve_open(&ctx)) return 1;
  int rc = 0;
  for (int i = 3; i < argc; i++) {
    sieve_pattern *sp = NULL;
    if (sieve_pattern_load(ctx, argv[i], NULL, &sp)) {
      fprintf(stderr, "module_ptx: %s\n", sieve_errmsg(ctx));
      rc = 1;
      continue;
    }
    const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
    char name[256], shapes[1024];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
    snprintf(shapes, sizeof shapes, "%s", argv[2]);
    for (char *sv = NULL, *sh = strtok_r(shapes, ",", &sv); sh; sh = strtok_r(NULL, ",", &sv)) {
      sieve_shape s;
      if (sieve_shape_preset(sh, &s)) {
        fprintf(stderr, "module_ptx: unknown shape '%s'\n", sh);
        rc = 1;
        break;
      }
      for (int a = 0; a < 2; a++) rc |= modules(&(job){argv[1], name, sh, a}, lp_pattern_ir(sp), &s);
    }
    sieve_pattern_free(sp);
  }
  sieve_close(ctx);
  return rc;
}
