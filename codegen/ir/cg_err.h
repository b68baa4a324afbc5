/*
** Error values inside the library. Every layer fills a cg_err and returns
** its status; the public API copies the message into the context. Nothing
** here prints.
*/
#ifndef CG_ERR_H
#define CG_ERR_H

#include "sieve.h"

typedef struct cg_err {
  sieve_status status;
  char msg[1024];
} cg_err;

/* Sets the error (printf-style) and returns its status, so callers write
** `return cg_fail(e, SIEVE_ERR_ARG, "...")`. A NULL err is allowed. */
sieve_status cg_fail(cg_err *e, sieve_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cg_err_clear(cg_err *e);

#endif
