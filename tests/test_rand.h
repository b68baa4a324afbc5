/*
** The random numbers of the randomised tests (include after <cmocka.h>).
** The seed is fresh each run, so that runs together cover more cases;
** SIEVE_SEED=N replays one, and CHECK names the seed when it fails.
*/
#ifndef TEST_RAND_H
#define TEST_RAND_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static uint64_t rng_state, seed;

/* xorshift64: the sequence depends on the seed alone, on every platform. */
static inline uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static inline int64_t rint_in(int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A cmocka group setup; xorshift must not start at 0, so 0 becomes 1. */
static inline int setup_seed(void **st) {
  const char *env = getenv("SIEVE_SEED");
  seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock() << 20;
  if (!seed) seed = 1;
  rng_state = seed;
  return 0;
}

#define CHECK(cond) \
  do { \
    if (!(cond)) fail_msg("%s (reproduce with SIEVE_SEED=%llu)", #cond, (unsigned long long)seed); \
  } while (0)

#endif
