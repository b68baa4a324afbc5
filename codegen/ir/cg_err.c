#include "cg_err.h"

#include <stdarg.h>
#include <stdio.h>

sieve_status cg_fail(cg_err *e, sieve_status st, const char *fmt, ...) {
  if (!e) return st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->status = st;
  return st;
}

void cg_err_clear(cg_err *e) {
  if (!e) return;
  e->status = SIEVE_OK;
  e->msg[0] = 0;
}
