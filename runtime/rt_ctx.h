/*
** The context behind the public API: where the last error's words live.
** Public entry points fill a cg_err and hand it to rt_ctx_ret on the way out.
*/
#ifndef RT_CTX_H
#define RT_CTX_H

#include "cg_err.h"
#include "sieve.h"

struct rt_device;
struct rt_cache;

struct sieve_ctx {
  cg_err err;
  struct rt_device *dev;    /* from sieve_device_open; released on close */
  struct rt_cache *cache;   /* opened at first use (rt_ctx_cache) */
};

/* Records e (or clears the message when e->status is SIEVE_OK) and returns
** e->status. ctx may be NULL. */
sieve_status rt_ctx_ret(sieve_ctx *ctx, const cg_err *e);

#endif
