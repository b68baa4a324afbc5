/*
** The public pattern API (include/sieve.h): files in, pattern handles out,
** errors into the context.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cg_shape.h"
#include "lp.h"

/* Larger than any pattern needs; keeps a wrong path (a video, say) from
** being read into memory whole. */
#define LP_MAX_SCRIPT ((size_t)16 << 20)

static sieve_status read_script(const char *path, char **out, size_t *len, cg_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return cg_fail(e, SIEVE_ERR_IO, "cannot open pattern '%s': %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  sieve_status st = SIEVE_OK;
  for (;;) {
    if (n == cap) {
      if (cap >= LP_MAX_SCRIPT) {
        st = cg_fail(e, SIEVE_ERR_IO, "pattern '%s' is larger than %zu MiB", path, LP_MAX_SCRIPT >> 20);
        break;
      }
      cap = cap ? cap * 2 : 4096;
      char *nb = realloc(buf, cap + 1);
      if (!nb) {
        st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory reading '%s'", path);
        break;
      }
      buf = nb;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0) {
      if (ferror(f)) st = cg_fail(e, SIEVE_ERR_IO, "cannot read pattern '%s': %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (st) {
    free(buf);
    return st;
  }
  if (!buf) buf = calloc(1, 1);
  if (!buf) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory reading '%s'", path);
  buf[n] = 0;
  *out = buf;
  *len = n;
  return SIEVE_OK;
}

static sieve_status load(const char *chunk, const char *src, size_t len,
                         const char *const *overrides, sieve_pattern **out, cg_err *e) {
  sieve_pattern *sp = malloc(sizeof *sp);
  if (!sp) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory loading '%s'", chunk);
  sieve_status st = lp_load(chunk, src, len, overrides, NULL, &sp->p, e);
  if (st) {
    free(sp);
    return st;
  }
  *out = sp;
  return SIEVE_OK;
}

sieve_status sieve_pattern_load(sieve_ctx *ctx, const char *path, const char *const *overrides,
                                sieve_pattern **out) {
  cg_err e = {0};
  if (out) *out = NULL;
  if (!path || !out) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_pattern_load: path and out must not be NULL");
    return api_ret(ctx, &e);
  }
  char *src = NULL;
  size_t len = 0;
  if (!read_script(path, &src, &len, &e)) {
    load(path, src, len, overrides, out, &e);
    free(src);
  }
  return api_ret(ctx, &e);
}

sieve_status sieve_pattern_load_string(sieve_ctx *ctx, const char *chunkname, const char *source,
                                       const char *const *overrides, sieve_pattern **out) {
  cg_err e = {0};
  if (out) *out = NULL;
  if (!source || !out) {
    cg_fail(&e, SIEVE_ERR_ARG, "sieve_pattern_load_string: source and out must not be NULL");
    return api_ret(ctx, &e);
  }
  load(chunkname && *chunkname ? chunkname : "<string>", source, strlen(source), overrides, out, &e);
  return api_ret(ctx, &e);
}

void sieve_pattern_free(sieve_pattern *p) {
  if (!p) return;
  cg_pattern_free(p->p);
  free(p);
}

const char *sieve_pattern_name(const sieve_pattern *p) { return p ? p->p->name : NULL; }
const char *sieve_pattern_ir(const sieve_pattern *p) { return p ? p->p->ir_text : NULL; }
uint64_t sieve_pattern_hash(const sieve_pattern *p) { return p ? p->p->ir_hash : 0; }

void sieve_pattern_shape(const sieve_pattern *p, const sieve_shape *in, sieve_shape *out) {
  if (!out) return;
  if (!p || !in) {
    /* Nothing to combine: the caller's shape as it is, or all zeros. */
    if (in) *out = *in;
    else memset(out, 0, sizeof *out);
    return;
  }
  cg_shape_for(p->p, in, out);
}
