/*
** Block tables: distinct bitmasks, each kept once (the memo's, and
** cg_blocks_bits.c's own pass), numbered in the order first met. Their
** words grow in huge pages where the system gives them, and become the
** table's without a copy: the temporal sink at 128-token blocks keeps 4 MB
** of them, and growing them by realloc, then copying them into the arena,
** faulted every page two or three times.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_hash.h"
#include "cg_blocks_int.h"

/* Four chains over 64-bit words, not one over 32-bit ones: a table interns
** a bitmask per distinct partial pair (6,419 of 2 KB for radial at
** 128-token blocks), and one chain's multiply latency made that 8% of the
** build. */
static uint64_t hash_words(const uint32_t *w, int n) {
  const uint64_t k = 0x9e3779b97f4a7c15ull;
  uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x243f6a8885a308d3ull, 0x13198a2e03707344ull};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 4; l++) {
      uint64_t x;
      memcpy(&x, w + i + 2 * l, sizeof x);
      h[l] = (h[l] ^ x) * k;
      h[l] ^= h[l] >> 29;
    }
  for (; i < n; i++) h[i & 3] = ((h[i & 3] ^ w[i]) * k) ^ (uint64_t)n;
  return blk_mix(blk_mix(h[0], h[1]), blk_mix(h[2], h[3]));
}

/* Slots are found again from the kept hashes: growing rehashed every
** bitmask. */
static int grow_slots(blk_bitset *b) {
  uint64_t cap = b->mask ? (b->mask + 1) * 2 : 64;
  int64_t *s = malloc(sizeof(int64_t) * cap);
  if (!s) return -1;
  for (uint64_t i = 0; i < cap; i++) s[i] = -1;
  for (int64_t k = 0; k < b->n; k++) {
    uint64_t i = b->h[k] & (cap - 1);
    while (s[i] >= 0) i = (i + 1) & (cap - 1);
    s[i] = k;
  }
  free(b->slot);
  b->slot = s;
  b->mask = cap - 1;
  return 0;
}

uint64_t blk_bits_hash(const blk_bitset *b, const uint32_t *w) { return hash_words(w, b->wpb); }

int64_t blk_intern_hashed(blk_bitset *b, const uint32_t *w, uint64_t h) {
  if ((!b->slot || (uint64_t)(b->n + 1) * 2 > b->mask + 1) && grow_slots(b)) return -1;
  uint64_t i = h & b->mask;
  for (; b->slot[i] >= 0; i = (i + 1) & b->mask)
    if (b->h[b->slot[i]] == h && !memcmp(b->w + b->slot[i] * b->wpb, w, sizeof(uint32_t) * (size_t)b->wpb))
      return b->slot[i];
  if (b->n == b->cap) {
    int64_t nc = b->cap ? b->cap * 2 : 64;
    uint32_t *nw = blk_big_grow(b->w, sizeof(uint32_t) * (size_t)(b->n * b->wpb), sizeof(uint32_t) * (size_t)(nc * b->wpb));
    if (nw) b->w = nw;
    uint64_t *nh = nw ? realloc(b->h, sizeof(uint64_t) * (size_t)nc) : NULL;
    if (!nh) return -1;
    b->h = nh;
    b->cap = nc;
  }
  memcpy(b->w + b->n * b->wpb, w, sizeof(uint32_t) * (size_t)b->wpb);
  b->h[b->n] = h;
  b->slot[i] = b->n;
  return b->n++;
}

int64_t blk_intern(blk_bitset *b, const uint32_t *w) { return blk_intern_hashed(b, w, hash_words(w, b->wpb)); }

void blk_bitset_free(blk_bitset *b) {
  free(b->w);
  free(b->h);
  free(b->slot);
  memset(b, 0, sizeof *b);
}

uint32_t *blk_bitset_adopt(blk_bitset *b, cg_arena *a) {
  size_t n = (size_t)(b->n * b->wpb);
  if (b->w && !cg_arena_own(a, b->w)) {
    uint32_t *w = b->w;
    b->w = NULL;
    return w;
  }
  uint32_t *w = cg_alloc(a, sizeof(uint32_t) * (n ? n : 1));
  if (w && n) memcpy(w, b->w, sizeof(uint32_t) * n);
  return w;
}
