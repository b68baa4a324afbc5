/*
** Block tables: witnesses. Most block pairs the intervals leave undecided
** are partial, and a partial block is proven so by one true and one false
** token pair: no need to count all of them. For a row, a few query tokens
** are each evaluated against the keys of every undecided key block, a run
** of consecutive blocks per call (the keys of consecutive blocks are
** consecutive tokens), so a row costs a few vector passes over its
** undecided keys instead of a cross product per block pair.
**
** A block that shows both values is partial. One that shows one value
** only is left to the exact count (cg_blocks_refine.c): it may be full or
** empty. Every sampled block's allowed pairs are estimated from the first
** sample alone, a query token drawn per row by a hash, independently of
** the key blocks: the true pairs it sees times the block's rows. That is
** unbiased whatever the later samples and the exact count find, so the
** sum over a table's hundreds of thousands of blocks is close.
*/
#include "cg_blocks_int.h"

static uint64_t hash2(uint64_t a, uint64_t b) {
  uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ h >> 29;
}

/* One query token against the keys of the undecided blocks still open. */
static void sample(worker *w, int64_t q, int nu) {
  const job *j = w->j;
  int64_t qv[64];
  for (int v = 0; v < j->nqv; v++) qv[v] = j->qtok[(int64_t)v * j->S + q];
  for (int i = 0; i < nu;) {
    if ((w->wseen[i] & 3) == 3) {
      i++;
      continue;
    }
    /* A run of open blocks with consecutive indices: consecutive keys. */
    int e = i + 1;
    while (e < nu && w->und[e] == w->und[e - 1] + 1 && (w->wseen[e] & 3) != 3) e++;
    int64_t k0 = (int64_t)w->und[i] * j->bk, k1 = (int64_t)(w->und[e - 1] + 1) * j->bk;
    if (k1 > j->S) k1 = j->S;
    for (int64_t o = k0; o < k1; o += 1 << 20) {
      int n = (int)(k1 - o < (1 << 20) ? k1 - o : (1 << 20));
      cg_prog_row(j->prog, qv, j->ktok + o, j->S, n, w->wout + (o - k0), w->s);
    }
    for (int b = i; b < e; b++) {
      int64_t a0 = (int64_t)w->und[b] * j->bk - k0, a1 = a0 + j->bk, c = 0;
      if (a1 > k1 - k0) a1 = k1 - k0;
      for (int64_t x = a0; x < a1; x++) c += w->wout[x] != 0;
      w->wsum[b] += c;
      w->wseen[b] = (uint8_t)((w->wseen[b] | (c > 0) | (c < a1 - a0) << 1) + 4);
    }
    i = e;
  }
}

/* wseen[i]: bit 0 a true pair seen, bit 1 a false one, bits 2.. the
** samples taken. A query side of more than 64 interfaces is left exact. */
void blk_witness(worker *w, int qb, int nu) {
  const job *j = w->j;
  if (nu == 0 || j->nqv > 64) return;
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  for (int i = 0; i < nu; i++) {
    w->wsum[i] = 0;
    w->wseen[i] = w->rn[i] == -3 ? 3 : 0; /* to be counted exactly: not sampled */
  }
  for (int ns = 0; ns < SAMPLES; ns++) {
    sample(w, q0 + (int64_t)(hash2((uint64_t)qb, (uint64_t)ns) % (uint64_t)(q1 - q0)), nu);
    /* The first sample reached every block: it alone makes the estimate,
    ** which then does not depend on which blocks later samples closed. */
    if (ns == 0)
      for (int i = 0; i < nu; i++) w->west[i] = w->wsum[i] * (q1 - q0);
    int open = 0;
    for (int i = 0; i < nu && !open; i++) open = (w->wseen[i] & 3) != 3;
    if (!open) break;
  }
  for (int i = 0; i < nu; i++)
    if (w->rn[i] != -3 && (w->wseen[i] & 3) == 3) w->rn[i] = -2;
}
