/*
** Private to the block-pair memos (cg_blocks_memo.c, cg_blocks_micro.c):
** arithmetic modulo the prime 2^61 - 1, in which a token sequence's key is
** a polynomial hash that a translation of its values changes by a product
** (cg_blocks_memo.c says why keys are built this way), and a mixer.
*/
#ifndef CG_BLOCKS_HASH_H
#define CG_BLOCKS_HASH_H

#include <stdint.h>

#define P61 ((1ull << 61) - 1)

static inline uint64_t blk_mulp(uint64_t a, uint64_t b) {
  __uint128_t x = (__uint128_t)a * b;
  uint64_t r = (uint64_t)(x & P61) + (uint64_t)(x >> 61);
  r = (r & P61) + (r >> 61);
  return r >= P61 ? r - P61 : r;
}

static inline uint64_t blk_addp(uint64_t a, uint64_t b) {
  uint64_t r = a + b;
  return r >= P61 ? r - P61 : r;
}

static inline uint64_t blk_subp(uint64_t a, uint64_t b) { return a >= b ? a - b : a + P61 - b; }

/* v's residue, for |v| < P61. */
static inline uint64_t blk_res(int64_t v) { return v >= 0 ? (uint64_t)v : (uint64_t)(v + (int64_t)P61); }

static inline uint64_t blk_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

#endif
