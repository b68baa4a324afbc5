/*
** libFuzzer target: the pattern loader and everything a loaded pattern
** reaches on the CPU (block tables, lowering of its masks, kernel
** generation within a time budget). The inputs and checks are in
** fuzz_body.h; the structure-aware script generator in fuzz_gen.h.
**
** Build: CC=clang CXX=clang++ cmake -DSIEVE_FUZZ=ON ...; run
** fuzz_pattern CORPUS patterns/ (the shipped scripts make a good seed
** corpus; inputs starting with byte 0xF0 drive the generator).
** SIEVE_FUZZ_CODEGEN sets the share of time spent generating kernels
** (default 0.1; 0 turns it off). Tables are built on one thread (a
** thread pool per input would cost more than the input).
*/
#include <stdlib.h>

#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fz_opts o = {-1, 0};
  if (o.codegen_share < 0) {
    const char *s = getenv("SIEVE_FUZZ_CODEGEN");
    o.codegen_share = s ? atof(s) : 0.1;
    setenv("SIEVE_THREADS", "1", 0);
    o.verbose = getenv("SIEVE_FUZZ_VERBOSE") != NULL;
  }
  return fz_one(data, size, &o);
}
