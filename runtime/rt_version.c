#include "sieve.h"
const char *sieve_version(void) { return SIEVE_VERSION " (LLVM " SIEVE_LLVM_VERSION ")"; }
