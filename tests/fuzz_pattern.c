/*
** libFuzzer target for the pattern loader: the input bytes are a script,
** loaded through sieve_pattern_load_string. Besides "no crash, no leak, no
** hang", it checks the loader's promises: a failed script always has a
** message that starts with its file and line, and a loaded pattern's hash
** is the hash of its IR text.
**
** Build: CC=clang CXX=clang++ cmake -DSIEVE_FUZZ=ON ...; run
** fuzz_pattern patterns/ (the shipped scripts make a good seed corpus).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int positioned(const char *msg) {
  static const char name[] = "fuzz.lua:";
  if (strncmp(msg, name, sizeof name - 1) != 0) return 0;
  return msg[sizeof name - 1] >= '1' && msg[sizeof name - 1] <= '9';
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *src = malloc(size + 1);
  sieve_ctx *ctx;
  if (!src) return 0;
  memcpy(src, data, size);
  src[size] = 0;
  if (sieve_open(&ctx) != SIEVE_OK) {
    free(src);
    return 0;
  }
  sieve_pattern *p = NULL;
  sieve_status st = sieve_pattern_load_string(ctx, "fuzz.lua", src, NULL, &p);
  if (st == SIEVE_OK) {
    const char *ir = sieve_pattern_ir(p);
    if (!p || !ir || !sieve_pattern_name(p) || sieve_pattern_hash(p) != fnv1a(ir)) abort();
  } else if (p || ((st == SIEVE_ERR_SCRIPT || st == SIEVE_ERR_LIMIT || st == SIEVE_ERR_ARG) &&
                   !positioned(sieve_errmsg(ctx)))) {
    abort();
  }
  sieve_pattern_free(p);
  sieve_close(ctx);
  free(src);
  return 0;
}
