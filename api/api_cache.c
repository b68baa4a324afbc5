/*
** The public sieve_cache_* API over rt_cache, and the context's cache.
*/
#include <stdlib.h>
#include <string.h>

#include "api.h"

sieve_status api_cache(sieve_ctx *ctx, rt_cache **out, cg_err *e) {
  *out = NULL;
  if (!ctx->cache) {
    rt_cache *c = malloc(sizeof *c);
    if (!c) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the kernel cache");
    sieve_status st = rt_cache_open(c, NULL, e);
    if (st) {
      free(c);
      return st;
    }
    ctx->cache = c;
  }
  *out = ctx->cache;
  return SIEVE_OK;
}

sieve_status sieve_cache_dir(sieve_ctx *ctx, const char **out) {
  cg_err e = {0};
  rt_cache *c;
  if (!ctx || !out) return api_arg(ctx, "sieve_cache_dir", "out is NULL");
  *out = NULL;
  if (!api_cache(ctx, &c, &e)) *out = c->dir;
  return api_ret(ctx, &e);
}

sieve_status sieve_cache_set_dir(sieve_ctx *ctx, const char *dir) {
  cg_err e = {0};
  if (!ctx) return SIEVE_ERR_ARG;
  rt_cache *c = NULL;
  if (dir && !(c = malloc(sizeof *c))) {
    cg_fail(&e, SIEVE_ERR_NOMEM, "no memory for the kernel cache");
  } else if (dir && rt_cache_open(c, dir, &e)) {
    free(c);
  } else {
    free(ctx->cache);
    ctx->cache = c;  /* NULL: reopened from the environment at next use */
  }
  return api_ret(ctx, &e);
}

typedef struct public_list {
  int (*fn)(const sieve_cache_entry *ent, void *ud);
  void *ud;
} public_list;

static int public_one(const rt_cache_entry *ent, void *ud) {
  public_list *p = ud;
  sieve_cache_entry pub = {.key = ent->key, .path = ent->path, .bytes = (int64_t)ent->bytes,
                           .atime = ent->atime, .mtime = ent->mtime};
  return p->fn(&pub, p->ud);
}

sieve_status sieve_cache_list(sieve_ctx *ctx,
                              int (*fn)(const sieve_cache_entry *ent, void *ud),
                              void *ud) {
  cg_err e = {0};
  rt_cache *c;
  if (!ctx || !fn) return api_arg(ctx, "sieve_cache_list", "no callback");
  public_list p = {fn, ud};
  if (!api_cache(ctx, &c, &e)) rt_cache_list(c, public_one, &p, &e);
  return api_ret(ctx, &e);
}

sieve_status sieve_cache_stats(sieve_ctx *ctx, sieve_cache_info *out) {
  cg_err e = {0};
  rt_cache *c;
  rt_cache_totals t;
  if (!ctx || !out) return api_arg(ctx, "sieve_cache_stats", "out is NULL");
  memset(out, 0, sizeof *out);
  if (!api_cache(ctx, &c, &e) && !rt_cache_totals_get(c, &t, &e)) {
    out->dir = c->dir;
    out->entries = t.entries;
    out->bytes = (int64_t)t.bytes;
    out->limit = (int64_t)c->limit;
  }
  return api_ret(ctx, &e);
}

sieve_status sieve_cache_clear(sieve_ctx *ctx, int64_t *removed) {
  cg_err e = {0};
  rt_cache *c;
  if (removed) *removed = 0;
  if (!ctx) return SIEVE_ERR_ARG;
  if (!api_cache(ctx, &c, &e)) rt_cache_clear(c, removed, &e);
  return api_ret(ctx, &e);
}
