/*
** The context: open and close, the last error's words, the names of statuses.
*/
#include <stdlib.h>
#include <string.h>

#include "api.h"

const char *sieve_version(void) { return SIEVE_VERSION; }

const char *sieve_strerror(sieve_status st) {
  switch (st) {
  case SIEVE_OK: return "ok";
  case SIEVE_ERR_ARG: return "bad argument";
  case SIEVE_ERR_SCRIPT: return "pattern script error";
  case SIEVE_ERR_LIMIT: return "pattern script exceeded a limit";
  case SIEVE_ERR_SHAPE: return "unsupported shape";
  case SIEVE_ERR_NOMEM: return "out of memory";
  case SIEVE_ERR_IO: return "i/o error";
  case SIEVE_ERR_CODEGEN: return "code generation failed";
  case SIEVE_ERR_NO_DRIVER: return "CUDA driver not available";
  case SIEVE_ERR_NO_GPU: return "no usable GPU";
  case SIEVE_ERR_CUDA: return "CUDA driver call failed";
  case SIEVE_ERR_CACHE: return "kernel cache entry damaged";
  case SIEVE_ERR_UNSUPPORTED: return "not supported";
  }
  return "unknown status";
}

sieve_status sieve_open(sieve_ctx **out) {
  if (!out) return SIEVE_ERR_ARG;
  *out = calloc(1, sizeof **out);
  return *out ? SIEVE_OK : SIEVE_ERR_NOMEM;
}

void sieve_close(sieve_ctx *ctx) {
  if (!ctx) return;
  if (ctx->dev) {
    rt_device_close(ctx->dev, NULL);  /* nowhere to report a failure to */
    free(ctx->dev);
  }
  free(ctx->cache);
  free(ctx);
}

const char *sieve_errmsg(const sieve_ctx *ctx) { return ctx ? ctx->err.msg : ""; }

sieve_status api_arg(sieve_ctx *ctx, const char *fn, const char *what) {
  cg_err e = {0};
  cg_fail(&e, SIEVE_ERR_ARG, "%s: %s", fn, what);
  return api_ret(ctx, &e);
}

sieve_status api_ret(sieve_ctx *ctx, const cg_err *e) {
  if (!ctx) return e->status;
  if (e->status == SIEVE_OK) cg_err_clear(&ctx->err);
  else if (&ctx->err != e) ctx->err = *e;
  return e->status;
}
