/*
** Failure reporting, exit codes, whole numbers, time and output files.
*/
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
** The cause is one line on a terminal: control characters a script or a
** path carries (newlines, escape sequences) are written as \n, \xHH, so
** the line is neither cut nor able to drive the terminal.
*/
int cli_fail(int code, const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fputs("sieve: ", stderr);
  for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
    if (*c == '\n') fputs("\\n", stderr);
    else if (*c == '\r') fputs("\\r", stderr);
    else if (*c == '\t') fputs("\\t", stderr);
    else if (*c < 0x20 || *c == 0x7f) fprintf(stderr, "\\x%02x", *c);
    else fputc(*c, stderr);
  }
  fputc('\n', stderr);
  return code;
}

/* Bad input is the user's to fix (2); the rest is the machine's (1). */
int cli_exit_code(sieve_status st) {
  switch (st) {
  case SIEVE_OK: return CLI_OK;
  case SIEVE_ERR_ARG:
  case SIEVE_ERR_SCRIPT:
  case SIEVE_ERR_LIMIT:
  case SIEVE_ERR_SHAPE:
  case SIEVE_ERR_IO: return CLI_USAGE;
  default: return CLI_FAIL;
  }
}

/* The cause is one line: a Lua traceback after the first line names
** sieve's own frames, which would only bury the script's file:line. */
int cli_status_fail(sieve_status st, const char *msg, const char *what) {
  if (!msg || !*msg) msg = sieve_strerror(st);
  /* A driver's JIT log after the first line would bury the cause. Script
  ** messages are one line already (the loader escapes what scripts put in). */
  int n = (int)strcspn(msg, "\n");
  if (what) return cli_fail(cli_exit_code(st), "%s: %.*s", what, n, msg);
  return cli_fail(cli_exit_code(st), "%.*s", n, msg);
}

int cli_lib_fail(sieve_ctx *ctx, sieve_status st, const char *what) {
  return cli_status_fail(st, ctx ? sieve_errmsg(ctx) : NULL, what);
}

int cli_int(const char *opt, const char *s, int min, int max, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || *end || end == s)
    return cli_fail(CLI_USAGE, "%s: '%s' is not a whole number", opt, s);
  if ((errno == ERANGE && v > 0) || v > max)
    return cli_fail(CLI_USAGE, "%s: %s is too large (at most %d)", opt, s, max);
  if (v < min) return cli_fail(CLI_USAGE, "%s must be at least %d (got %s)", opt, min, s);
  *out = (int)v;
  return CLI_OK;
}

double cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cli_write_file(const char *path, const void *data, size_t len) {
  int to_stdout = !strcmp(path, "-");
  FILE *f = to_stdout ? stdout : fopen(path, "wb");
  /* Like a failed write, output that cannot be delivered is a runtime
  ** failure (README.cli.md: "a write failed" exits 1). */
  if (!f) return cli_fail(CLI_FAIL, "cannot write '%s': %s", path, strerror(errno));
  int bad = fwrite(data, 1, len, f) != len;
  bad |= to_stdout ? fflush(f) != 0 : fclose(f) != 0;
  if (bad) return cli_fail(CLI_FAIL, "writing '%s' failed: %s", path, strerror(errno));
  return CLI_OK;
}
