/*
** The context behind the public API: where the last error's words live,
** the device it opened and its kernel cache. Only api/ (and the command
** above it) sees inside; the layers below take a cg_err and an rt_device.
** Public entry points fill a cg_err and hand it to api_ret on the way out.
*/
#ifndef API_H
#define API_H

#include "cg_blocks.h"
#include "cg_err.h"
#include "rt_cache.h"
#include "rt_cuda.h"
#include "rt_plan.h"
#include "sieve.h"

struct sieve_ctx {
  cg_err err;
  rt_device *dev;           /* from sieve_device_open; released on close */
  rt_cache *cache;          /* opened at first use (api_cache) */
};

/* Records e (or clears the message when e->status is SIEVE_OK) and returns
** e->status. ctx may be NULL. */
sieve_status api_ret(sieve_ctx *ctx, const cg_err *e);
/* A missing or bad argument: SIEVE_ERR_ARG with "fn: what" in ctx (which
** may be NULL), so no call returns an error with a stale message. */
sieve_status api_arg(sieve_ctx *ctx, const char *fn, const char *what);

/* The context's kernel cache, opened from the environment at first use
** (api_cache.c). */
sieve_status api_cache(sieve_ctx *ctx, rt_cache **out, cg_err *e);

/*
** The device a new plan runs on: the context's (sieve_device_open), else
** the calling thread's current CUDA context, else device 0, which the
** context then keeps open (api_plan.c).
*/
sieve_status api_device(sieve_ctx *ctx, rt_device *d, cg_err *e);

/* What a new plan needs before it is made: its device (api_device), the
** device's target (rt_plan_arch_for), and the context's cache, or NULL
** when no cache directory is usable (compiling every time, not failing). */
sieve_status api_target(sieve_ctx *ctx, rt_device *dev, cg_arch *arch, rt_cache **cache,
                        cg_err *e);

/* Public tables over ts, built from p (its class and layout names are
** copied): *out owns ts, which is freed on failure too (api_tables.c). */
sieve_status api_tables_wrap(cg_tableset *ts, cg_pattern *p, sieve_tables **out, cg_err *e);

/* The runtime plan behind a public one (NULL for NULL). */
rt_plan *api_plan_of(const sieve_plan *plan);

#endif
