/*
** The public sieve_device_* API over rt_device.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void device_info(const rt_device *d, sieve_device_info *out) {
  memset(out, 0, sizeof *out);
  out->ordinal = d->ordinal;
  snprintf(out->name, sizeof out->name, "%s", d->name);
  out->sm_major = d->sm_major;
  out->sm_minor = d->sm_minor;
  out->sm_count = d->sm_count;
  out->smem_per_block = d->smem_optin;
  out->driver_version = d->driver_version;
}

sieve_status sieve_device_count(sieve_ctx *ctx, int *out) {
  cg_err e = {0};
  if (!out) cg_fail(&e, SIEVE_ERR_ARG, "out is NULL");
  else rt_device_count(out, &e);
  return api_ret(ctx, &e);
}

sieve_status sieve_device_query(sieve_ctx *ctx, int ordinal, sieve_device_info *out) {
  cg_err e = {0};
  rt_device d;
  if (!out) cg_fail(&e, SIEVE_ERR_ARG, "out is NULL");
  else if (!rt_device_query(ordinal, &d, &e)) device_info(&d, out);
  return api_ret(ctx, &e);
}

sieve_status sieve_device_open(sieve_ctx *ctx, int ordinal) {
  cg_err e = {0};
  if (!ctx) return SIEVE_ERR_ARG;
  /* The same device again shares its primary context: closing the old
  ** handle would detach the context the new one needs. */
  if (ctx->dev && ctx->dev->ordinal == ordinal) {
    rt_device_bind(ctx->dev, &e);
    return api_ret(ctx, &e);
  }
  rt_device *d = malloc(sizeof *d);
  if (!d) {
    cg_fail(&e, SIEVE_ERR_NOMEM, "no memory for a device");
  } else if (!rt_device_open(ordinal, d, &e)) {
    if (ctx->dev) {
      rt_device_close(ctx->dev, NULL);  /* the new device is open: nothing to report */
      free(ctx->dev);
    }
    ctx->dev = d;
    d = NULL;
  }
  free(d);
  return api_ret(ctx, &e);
}
