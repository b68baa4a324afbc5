/*
** Block tables: a set that a job's row workers share, of entries keyed by
** two 64-bit hashes (the micro- and mini-pair caches, cg_blocks_micro.c).
** Each worker kept its own before, and the rows of a frame on eight
** workers evaluated the same pairs eight times: radial's chosen table at
** hunyuan-720p's merged rows missed 18,311 micro pairs on one worker and
** 72,828 on eight, and its mini pairs 14,886 and 30,338.
**
** Entries are only added, never changed or dropped, and a full set keeps
** no more: so a reader needs no lock. An entry is written into a slot of
** its own (a counter hands them out), then its number is published in the
** hash slots by a compare-and-swap that releases it; a reader acquires the
** number, so it sees the entry whole. Two workers that miss the same key
** both evaluate it and both add it: the entries are equal, and a lookup
** finds the first. The sizes are fixed (a set that grows would move under
** its readers); pages are touched only as entries come.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

struct blk_cset {
  _Atomic uint64_t *slot; /* the key's top half, then its entry's number + 1; 0 empty */
  uint64_t mask;
  char *e;
  size_t esz;
  int64_t max;
  _Alignas(64) atomic_llong n; /* entries handed out: past max, none is kept */
};

blk_cset *blk_cset_new(int64_t max, size_t esz) {
  /* its counter on a line of its own: every find reads the fields before it */
  blk_cset *s = aligned_alloc(64, sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  uint64_t cap = 1024;
  while (cap < 2 * (uint64_t)max) cap *= 2;
  s->slot = calloc(cap, sizeof *s->slot);
  s->e = malloc(esz * (size_t)max);
  if (!s->slot || !s->e) {
    blk_cset_free(s);
    return NULL;
  }
  s->mask = cap - 1;
  s->esz = esz;
  s->max = max;
  atomic_init(&s->n, 0);
  return s;
}

void blk_cset_free(blk_cset *s) {
  if (!s) return;
  free(s->slot);
  free(s->e);
  free(s);
}

static uint64_t home(uint64_t h0, uint64_t h1) { return h0 ^ h1 >> 23; }

/* The entry (its key first) that slot value v names. */
static const uint64_t *key_of(const blk_cset *s, uint64_t v) {
  return (const uint64_t *)(s->e + s->esz * ((v & 0xffffffffu) - 1));
}

const void *blk_cset_find(const blk_cset *s, uint64_t h0, uint64_t h1) {
  uint64_t tag = h0 >> 32 << 32;
  for (uint64_t i = home(h0, h1) & s->mask;; i = (i + 1) & s->mask) {
    uint64_t v = atomic_load_explicit(&s->slot[i], memory_order_acquire);
    if (!v) return NULL;
    if ((v & ~0xffffffffull) != tag) continue;
    const uint64_t *k = key_of(s, v);
    if (k[0] == h0 && k[1] == h1) return k;
  }
}

void blk_cset_add(blk_cset *s, const void *entry) {
  if (atomic_load_explicit(&s->n, memory_order_relaxed) >= s->max) return;
  int64_t at = atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
  if (at >= s->max) return;
  memcpy(s->e + s->esz * (size_t)at, entry, s->esz);
  uint64_t h[2];
  memcpy(h, entry, sizeof h);
  uint64_t v = (h[0] >> 32 << 32) | (uint64_t)(at + 1);
  for (uint64_t i = home(h[0], h[1]) & s->mask;; i = (i + 1) & s->mask) {
    uint64_t was = 0;
    if (atomic_compare_exchange_strong_explicit(&s->slot[i], &was, v, memory_order_release, memory_order_relaxed))
      return;
  }
}
