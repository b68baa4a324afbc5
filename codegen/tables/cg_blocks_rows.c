/*
** Block tables: the rows. Each query block's row is classified against
** every key block by intervals, its undecided pairs refined exactly
** (cg_blocks_refine.c), and its full and partial key blocks appended to
** its worker's lists. Rows are spread over threads a few at a time from a
** shared counter, since their cost varies with how many pairs the
** intervals leave undecided; each row's lists are written by one thread
** and stitched into CSR form afterwards (cg_blocks_table.c), so workers
** write no list in common; what they share is the memo
** (cg_blocks_memo.c), under its lock.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

#define ROWS_PER_GRAB 4

#define LIST_FIRST 4096       /* entries a list starts with */
#define LIST_ROOM (1ll << 26) /* entries past which a list grows eightfold, not to its share at once */

/* Room for m more entries in a list of n of worker w. Lists grow
** eightfold; but one that the rows so far project to hold half of its
** worker's share of the table's block pairs (a dense table: a temporal
** sink's 3.4 M partial blocks, adaspa's full ones) gets room for the
** whole share at once, up to LIST_ROOM: capacity not yet written costs no
** memory, while each regrowth copies the list into fresh pages (those
** 3.4 M were copied from 2 M entries). Sparser lists keep their growth,
** and glibc the placement it gives their sizes (a reserved share cost
** tables without bits a third more page faults). */
static int reserve(const worker *w, int32_t **v, int64_t n, int64_t *cap, int64_t m) {
  if (n + m <= *cap) return 0;
  const job *j = w->j;
  int64_t share = ((int64_t)j->nq * j->nk + j->nw - 1) / j->nw, nc = *cap ? *cap : LIST_FIRST;
  int64_t rows = (j->nq + j->nw - 1) / j->nw, projected = w->rows ? (n + m) / w->rows * rows : 0;
  if (*cap && nc < share && share <= LIST_ROOM && 2 * projected >= share) nc = share;
  while (nc < n + m) nc *= 8;
  int32_t *nv = blk_big_grow(*v, sizeof(int32_t) * (size_t)n, sizeof(int32_t) * (size_t)nc);
  if (!nv) return -1;
  *v = nv;
  *cap = nc;
  return 0;
}

static int push(const worker *w, int32_t **v, int64_t *n, int64_t *cap, int32_t x) {
  if (*n == *cap && reserve(w, v, *n, cap, 1)) return -1;
  (*v)[(*n)++] = x;
  return 0;
}

/*
** Interval classes of the key super-blocks against query super row sr,
** then of the key groups of the super-blocks it leaves undecided against
** the same super row: a group the whole super row decides is decided for
** each of its rows, which then evaluate only the rest.
*/
static void super_classes(worker *w, int sr) {
  const job *j = w->j;
  if (w->srow == sr) return;
  for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->sqiv[(int64_t)v * j->nsq + sr];
  cg_ival_row(j->prog, w->qrow, j->skiv, j->nsk, j->nsk, w->scls, w->is);
  int ng = 0;
  for (int sk = 0; sk < j->nsk; sk++) {
    if (w->scls[sk] != CG_BLK_UNDECIDED) continue;
    int g1 = (sk + 1) * (SUPER / GROUP) < j->ngk ? (sk + 1) * (SUPER / GROUP) : j->ngk;
    for (int g = sk * (SUPER / GROUP); g < g1; g++) w->lk[ng++] = g;
  }
  if (ng) cg_ival_pairs_sig(j->prog, w->qrow, 1, NULL, j->gkiv, j->ngk, w->lk, ng, w->lcls, NULL, NULL, w->is);
  for (int i = 0; i < ng; i++) w->sgcls[w->lk[i]] = w->lcls[i];
  w->upre[0] = 0;
  for (int sk = 0; sk < j->nsk; sk++) w->upre[sk + 1] = w->upre[sk] + (w->scls[sk] == CG_BLK_UNDECIDED);
  w->srow = sr;
  if (j->ru) blk_reuse_super(w, sr);
}

/*
** The interval classes of w->qrow against the key groups of the
** super-blocks the super row left undecided, then against the key blocks
** of the groups left undecided, each level in one batched call
** (cg_ival_pairs_sig: a row leaves a few undecided runs of a dozen lanes
** each, and the executor's cost is per call). gneed and need, where
** given, narrow them to the groups and blocks a moved row still needs.
*/
static void open_classes(worker *w, const uint8_t *gneed, const uint8_t *need) {
  const job *j = w->j;
  int ng = 0;
  for (int sk = 0; sk < j->nsk; sk++) {
    if (w->scls[sk] != CG_BLK_UNDECIDED) continue;
    int g1 = (sk + 1) * (SUPER / GROUP) < j->ngk ? (sk + 1) * (SUPER / GROUP) : j->ngk;
    for (int g = sk * (SUPER / GROUP); g < g1; g++)
      if ((!gneed || gneed[g]) && (w->gcls[g] = w->sgcls[g]) == CG_BLK_UNDECIDED) w->lk[ng++] = g;
  }
  if (ng) cg_ival_pairs_sig(j->prog, w->qrow, 1, NULL, j->gkiv, j->ngk, w->lk, ng, w->lcls, NULL, NULL, w->is);
  int nb = 0, last = -1;
  for (int i = 0; i < ng; i++) {
    int g = w->lk[i];
    w->gcls[g] = w->lcls[i];
    if (w->lcls[i] != CG_BLK_UNDECIDED) continue;
    int kb1 = (g + 1) * GROUP < j->nk ? (g + 1) * GROUP : j->nk;
    for (int kb = g * GROUP; kb < kb1; kb++) {
      int r = j->kmap[kb];
      if ((need && need[kb] != 1) || r == last) continue;
      w->ldec[nb++] = (uint64_t)r;  /* lk holds the groups until this loop ends */
      last = r;
    }
  }
  for (int i = 0; i < nb; i++) w->lk[i] = (int32_t)w->ldec[i];
  if (nb) cg_ival_pairs_sig(j->prog, w->qrow, 1, NULL, j->kiv, j->nkr, w->lk, nb, w->lcls, w->ldec, w->lval, w->is);
  for (int i = 0; i < nb; i++) {
    int r = w->lk[i];
    w->cls[r] = w->lcls[i];
    w->dec[r] = w->ldec[i];
    w->val[r] = w->lval[i];
  }
}

/* A key block's interval class: into rc and the row's counts; an undecided
** block joins the row's und list for settle. */
static inline void take_class(worker *w, int kb, int c, int *nu) {
  w->rc[kb] = (uint8_t)c;
  if (c == CG_BLK_FULL) w->st[ST_IFULL]++;
  else if (c == CG_BLK_EMPTY) w->st[ST_IEMPTY]++;
  else w->und[(*nu)++] = kb;
}

/* Interval classes of a row (open_classes), reused while the query
** interfaces and the super row repeat. */
static void row_classes(worker *w, int qb) {
  const job *j = w->j;
  int sr = qb / SUPER;
  super_classes(w, sr);
  for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->qiv[(int64_t)v * j->nq + qb];
  size_t sz = sizeof(cg_ival) * (size_t)j->nqv;
  if (w->have_prev && w->cls_srow == sr && !memcmp(w->qrow, w->prev, sz)) return;
  open_classes(w, NULL, NULL);
  memcpy(w->prev, w->qrow, sz);
  w->have_prev = 1;
  w->cls_srow = sr;
}

static int64_t block_area(const job *j, int qb, int kb) {
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
  return (q1 - q0) * (k1 - k0);
}

/* Bitmask b (of the memo's set) allows n pairs: kept for copies of the
** rows that hold it, which carry only b. */
static void note_bits(worker *w, int32_t b, int64_t n) {
  if (b >= w->nbn) {
    int32_t nc = w->nbn ? w->nbn : 256;
    while (nc <= b) nc *= 2;
    int64_t *x = realloc(w->bn, sizeof(int64_t) * (size_t)nc);
    if (!x) {
      w->fail = 1;
      return;
    }
    for (int32_t i = w->nbn; i < nc; i++) x[i] = -1;
    w->bn = x;
    w->nbn = nc;
  }
  w->bn[b] = n;
}

/* The allowed pairs of bitmask b, which a row another worker built may
** hold though this worker never met it: its bits, counted once. */
static int64_t bits_met(worker *w, int32_t b) {
  int64_t n = blk_memo_bits_count(w->j->memo, b);
  note_bits(w, b, n);
  return n;
}

/*
** The undecided pairs of a row: by the memo where it is on (exact), else
** partial by witnesses where the samples show both values, counted
** exactly otherwise. rn (-4: the memo, -3: count exactly, -2: partial by
** witnesses, -1: not yet known) then gets what the block contributes to
** the allowed pairs (the witness pass's estimate where it ran); the class
** goes into rc, the bitmask the memo gave into rid.
*/
static void settle(worker *w, int qb, int nu) {
  const job *j = w->j;
  int memo = blk_memo_on(j->memo), sampled = j->sample && !memo;
  /* A pair whose token runs are few is counted exactly at once: that is
  ** cheaper than sampling its tokens, or than the memo's full evaluation
  ** (unless the table needs its bits). */
  int64_t mq = j->qr.off[qb + 1] - j->qr.off[qb];
  for (int i = 0; i < nu; i++) {
    int kb = w->und[i];
    int64_t mk = j->kr.off[kb + 1] - j->kr.off[kb];
    int many = mq * mk > (int64_t)SAMPLES * j->bk;
    w->rn[i] = memo && (many || j->bits) ? -4 : sampled && many ? -1 : -3;
    w->rid[i] = -1;
  }
  if (sampled) blk_witness(w, qb, nu);
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  for (int i = 0; i < nu; i++) {
    int kb = w->und[i];
    int64_t all = block_area(j, qb, kb), n = w->rn[i];
    int est = n != -3 && n != -4;
    if (n == -4) {
      spec_entry *se = blk_spec(w, w->dec[j->kmap[kb]], w->val[j->kmap[kb]]);
      if (!se->sp) {
        w->fail = 1;
        return;
      }
      n = blk_memo_pair(w, qb, kb, se, &w->rid[i]);
      if (w->rid[i] >= 0) note_bits(w, w->rid[i], n);
    } else if (n == -2) {
      n = all / 2; /* any count strictly between 0 and all: partial */
    } else {
      int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
      n = blk_refine(w, qb, kb, q0, q1, k0, k1);
    }
    w->rc[kb] = n == 0 ? CG_BLK_EMPTY : n == all ? CG_BLK_FULL : CG_BLK_UNDECIDED;
    w->st[n == 0 ? ST_REMPTY : n == all ? ST_RFULL : ST_RPART]++;
    /* A sampled empty or full block's estimate is exact: 0 or all. */
    w->st[ST_EST] += est && n != 0 && n != all;
    w->rn[i] = est ? w->west[i] : n;
  }
}

/* Key blocks [k0, k1), all full: pushed and kept (a dense table's rows
** are mostly these: adaspa's 3.4 M). */
static void full_run(worker *w, blk_rrow *rec, int qb, int k0, int k1) {
  const job *j = w->j;
  int n = k1 - k0;
  if (n <= 0) return;
  if (reserve(w, &w->full, w->nfull, &w->capf, n)) {
    w->fail = 1;
    return;
  }
  for (int kb = k0; kb < k1; kb++) w->full[w->nfull++] = kb;
  /* Every key block but the last is bk tokens long. */
  int64_t q0 = (int64_t)qb * j->bq, lq = q0 + j->bq < j->S ? j->bq : j->S - q0;
  w->st[ST_ALLOWED] += (int64_t)(n - (k1 == j->nk)) * lq * j->bk + (k1 == j->nk ? block_area(j, qb, k1 - 1) : 0);
  blk_rent *e = rec ? blk_rrow_add(w, rec, n) : NULL;
  for (int i = 0; e && i < n; i++) e[i] = (blk_rent){k0 + i, RE_IFULL};
}

/* Key blocks [k0, k1) of a row: their super-block decided them all. */
static void decided_run(worker *w, blk_rrow *rec, int qb, int k0, int k1, int c) {
  w->st[c == CG_BLK_EMPTY ? ST_IEMPTY : ST_IFULL] += k1 - k0;
  if (c == CG_BLK_FULL) full_run(w, rec, qb, k0, k1);
}

/* Key block kb's part of the row, once classified (c) and, where the
** intervals left it undecided (und), settled: its allowed pairs n and
** bitmask rid. */
static void emit(worker *w, blk_rrow *rec, int qb, int kb, int c, int und, int64_t n, int32_t rid) {
  const job *j = w->j;
  if (!und && c == CG_BLK_FULL) n = block_area(j, qb, kb);
  w->st[ST_ALLOWED] += und || c == CG_BLK_FULL ? n : 0;
  if (c == CG_BLK_FULL) w->fail |= push(w, &w->full, &w->nfull, &w->capf, kb);
  else if (c == CG_BLK_UNDECIDED) {
    int64_t np = w->npart;
    int32_t word = und && rid >= 0 ? rid * blk_memo_bits(j->memo) : -1;
    w->nomask += word < 0;
    w->fail |= push(w, &w->part, &w->npart, &w->capp, kb);
    w->fail |= push(w, &w->partm, &np, &w->capm, word);
  }
  if (!rec || (!und && c != CG_BLK_FULL)) return;
  /* Copying classes only, an undecided block keeps its signature. */
  if (und && j->reuse_cls) rid = blk_reuse_sig(w, w->dec[j->kmap[kb]], w->val[j->kmap[kb]]);
  else if (!und || c != CG_BLK_UNDECIDED) rid = !und ? RE_IFULL : c == CG_BLK_FULL ? RE_RFULL : RE_REMPTY;
  blk_rec(w, rec, kb, rid);
}

static void whole_row(worker *w, blk_rrow *rec, int qb) {
  const job *j = w->j;
  row_classes(w, qb);
  /* Key blocks of undecided super-blocks, a group at a time: a decided
  ** group decides its blocks (most of a sparse row's are empty). */
  int nu = 0;
  for (int sk = 0; sk < j->nsk; sk++) {
    if (w->scls[sk] != CG_BLK_UNDECIDED) continue;
    int k1 = (sk + 1) * SUPER < j->nk ? (sk + 1) * SUPER : j->nk;
    for (int g0 = sk * SUPER; g0 < k1; g0 += GROUP) {
      int g1 = g0 + GROUP < k1 ? g0 + GROUP : k1, gc = w->gcls[g0 / GROUP];
      if (gc != CG_BLK_UNDECIDED) {
        w->st[gc == CG_BLK_FULL ? ST_IFULL : ST_IEMPTY] += g1 - g0;
        continue;
      }
      for (int kb = g0; kb < g1; kb++) take_class(w, kb, w->cls[j->kmap[kb]], &nu);
    }
  }
  w->st[ST_IUND] += nu;
  settle(w, qb, nu);
  for (int sk = 0, i = 0; sk < j->nsk; sk++) {
    int k0 = sk * SUPER, k1 = k0 + SUPER < j->nk ? k0 + SUPER : j->nk;
    if (w->scls[sk] != CG_BLK_UNDECIDED) {
      decided_run(w, rec, qb, k0, k1, w->scls[sk]);
      continue;
    }
    for (int kb = k0; kb < k1; kb++) {
      if (kb % GROUP == 0 && w->gcls[kb / GROUP] != CG_BLK_UNDECIDED) {
        int g1 = kb + GROUP < k1 ? kb + GROUP : k1;
        if (w->gcls[kb / GROUP] == CG_BLK_FULL) full_run(w, rec, qb, kb, g1);
        kb = g1 - 1;
        continue;
      }
      int und = i < nu && w->und[i] == kb;
      emit(w, rec, qb, kb, w->rc[kb], und, und ? w->rn[i] : 0, und ? w->rid[i] : -1);
      i += und;
    }
  }
}

/* Class of key block kb in the current row, by the finest level that
** looked at it. */
static int class_of(const worker *w, int kb) {
  int c = w->scls[kb / SUPER];
  if (c == CG_BLK_UNDECIDED) c = w->gcls[kb / GROUP];
  if (c == CG_BLK_UNDECIDED) c = w->cls[w->j->kmap[kb]];
  return c;
}

/*
** Interval classes of the key blocks a moved row needs (rf->need), as
** row_classes does for all: groups of undecided super-blocks that hold
** one, then their blocks. The row cache row_classes keeps is left stale,
** so it is dropped.
*/
static void needed_classes(worker *w, int qb, const blk_ref *rf) {
  const job *j = w->j;
  super_classes(w, qb / SUPER);
  for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->qiv[(int64_t)v * j->nq + qb];
  w->have_prev = 0;
  open_classes(w, rf->gneed, rf->need);
}

/* Key blocks [a, b) of a moved row, copied from the entries of row ref
** (its reference, moved by d; or the row before, d 0) from *p on
** (cg_blocks_reuse.c says why they agree). A dense row copies thousands,
** so room is made once per run. */
static void copy_run(worker *w, blk_rrow *rec, int qb, const blk_rrow *ref, int d, int a, int b, int64_t *p) {
  const job *j = w->j;
  const blk_rent *e = ref->e;
  int64_t i0 = *p, n = ref->n;
  /* Key blocks are distinct and in order, so the entry of block a lies at
  ** most a - e[i0].kb on: where the entry before that is below a, the
  ** reference is dense there and a's is next, with no scan (likewise the
  ** run's end: where its last entry could be is in it, every block of the
  ** run is). */
  if (i0 < n && e[i0].kb + d < a) {
    int64_t t = i0 + (a - d - e[i0].kb) < n ? i0 + (a - d - e[i0].kb) : n;
    if (e[t - 1].kb + d < a) i0 = t;
    else
      while (e[i0].kb + d < a) i0++;
  }
  int64_t i1 = i0 + (b - a) < n ? i0 + (b - a) : n;
  if (i1 <= i0 || e[i1 - 1].kb + d >= b)
    for (i1 = i0; i1 < n && e[i1].kb + d < b; i1++) {}
  *p = i1;
  int64_t m = i1 - i0;
  w->st[ST_IEMPTY] += b - a - m;
  if (!m) return;
  if (reserve(w, &w->full, w->nfull, &w->capf, m) || reserve(w, &w->part, w->npart, &w->capp, m) ||
      reserve(w, &w->partm, w->npart, &w->capm, m)) {
    w->fail = 1;
    return;
  }
  int64_t rfull = 0, rempty = 0, allowed = 0, nf = w->nfull, np = w->npart;
  /* Blocks of the last query or key block are shorter. */
  int64_t area = (int64_t)j->bq * j->bk;
  int last = qb == j->nq - 1, wpb = blk_memo_bits(j->memo);
  /* The row's own record is written in the same pass, moved. */
  blk_rent *out = rec ? blk_rrow_add(w, rec, m) : NULL;
  /* Locals: stores through the lists could alias the worker's fields. */
  int32_t *part = w->part, *partm = w->partm, *full = w->full;
  const int64_t *bn = w->bn;
  int32_t nbn = w->nbn;
  for (int64_t i = i0; i < i1; i++) {
    blk_rent x = e[i];
    int kb = x.kb += d;
    if (out) *out++ = x;
    if (x.tag >= 0) {
      if (x.tag < nbn && bn[x.tag] >= 0) allowed += bn[x.tag];
      else {
        allowed += bits_met(w, x.tag);
        bn = w->bn;
        nbn = w->nbn;
      }
      part[np] = kb;
      partm[np++] = x.tag * wpb;
    } else if (x.tag != RE_REMPTY) {
      allowed += last || kb == j->nk - 1 ? block_area(j, qb, kb) : area;
      full[nf++] = kb;
      rfull += x.tag == RE_RFULL;
    } else {
      rempty++;
    }
  }
  w->st[ST_IFULL] += nf - w->nfull - rfull;
  w->st[ST_IUND] += m - (nf - w->nfull - rfull);
  w->st[ST_RFULL] += rfull;
  w->st[ST_REMPTY] += rempty;
  w->st[ST_RPART] += np - w->npart;
  w->st[ST_ALLOWED] += allowed;
  w->nfull = nf;
  w->npart = np;
}

/* A row that copies rf's row where its key blocks moved with it (rf->row
** NULL: none did), and classifies and settles the rest as whole_row does. */
static void moved_row(worker *w, blk_rrow *rec, int qb, const blk_ref *rf) {
  const job *j = w->j;
  w->st[ST_MOVED] += rf->row != NULL;
  needed_classes(w, qb, rf);
  int nu = 0;
  for (int r = 0; r < rf->nruns; r++)
    for (int kb = rf->runs[2 * r]; kb < rf->runs[2 * r + 1]; kb++) take_class(w, kb, class_of(w, kb), &nu);
  w->st[ST_IUND] += nu;
  settle(w, qb, nu);
  int64_t p = 0, ps = 0;
  int at = 0, i = 0;
  for (int r = 0; r <= rf->nruns; r++) {
    int a = r < rf->nruns ? rf->runs[2 * r] : j->nk, b = r < rf->nruns ? rf->runs[2 * r + 1] : j->nk;
    /* Between fresh runs, blocks moved along and blocks copied unmoved. */
    if (!rf->src) copy_run(w, rec, qb, rf->row, rf->d, at, a, &p);
    for (int c = at; rf->src && c < a;) {
      int e = c + 1, un = rf->need[c] == 2;
      /* Eight blocks a step where all are of c's kind (a dense row's runs
      ** are long). */
      for (uint64_t x, all = un ? 0x0202020202020202ull : 0; e + 8 <= a && (memcpy(&x, rf->need + e, 8), x == all);)
        e += 8;
      while (e < a && (rf->need[e] == 2) == un) e++;
      if (un) copy_run(w, rec, qb, rf->src, 0, c, e, &ps);
      else copy_run(w, rec, qb, rf->row, rf->d, c, e, &p);
      w->st[ST_UNMOVED] += un ? e - c : 0;
      c = e;
    }
    for (int kb = a; kb < b; kb++) {
      int und = i < nu && w->und[i] == kb;
      emit(w, rec, qb, kb, w->rc[kb], und, und ? w->rn[i] : 0, und ? w->rid[i] : -1);
      i += und;
    }
    at = b;
  }
}

/*
** A moved row of a table that copies classes only: the reference's
** interval classes and signatures where key blocks moved along, fresh
** ones elsewhere, then every undecided block settled in key order as
** whole_row settles them, so the memo sees the lookups it would (it
** judges its hit rate by them) and every count is as built afresh.
*/
static void moved_classes(worker *w, blk_rrow *rec, int qb, const blk_ref *rf) {
  const job *j = w->j;
  const blk_rrow *ref = rf->row;
  w->st[ST_MOVED]++;
  needed_classes(w, qb, rf);
  int nu = 0, ne = 0, at = 0;
  int64_t p = 0;
  for (int r = 0; r <= rf->nruns; r++) {
    int a = r < rf->nruns ? rf->runs[2 * r] : j->nk, b = r < rf->nruns ? rf->runs[2 * r + 1] : j->nk, kept = 0;
    for (; p < ref->n && ref->e[p].kb + rf->d < at; p++) {}
    for (; p < ref->n && ref->e[p].kb + rf->d < a; p++, kept++) {
      const blk_rent *e = &ref->e[p];
      int kb = e->kb + rf->d;
      w->ek[ne++] = kb;
      if (e->tag == RE_IFULL) {
        w->rc[kb] = CG_BLK_FULL;
        w->st[ST_IFULL]++;
        continue;
      }
      w->rc[kb] = CG_BLK_UNDECIDED;
      w->und[nu++] = kb;
      blk_reuse_sig_at(w, e->tag, &w->dec[j->kmap[kb]], &w->val[j->kmap[kb]]);
    }
    w->st[ST_IEMPTY] += a - at - kept;
    for (int kb = a; kb < b; kb++) {
      int c = class_of(w, kb);
      take_class(w, kb, c, &nu);
      if (c != CG_BLK_EMPTY) w->ek[ne++] = kb;
    }
    at = b;
  }
  w->st[ST_IUND] += nu;
  settle(w, qb, nu);
  for (int k = 0, i = 0; k < ne; k++) {
    int kb = w->ek[k], und = i < nu && w->und[i] == kb;
    emit(w, rec, qb, kb, w->rc[kb], und, und ? w->rn[i] : 0, und ? w->rid[i] : -1);
    i += und;
  }
}

static void do_row(worker *w, int qb) {
  const job *j = w->j;
  rowres *r = &j->rows[qb];
  w->rows++;
  r->w = (int)(w - j->w);
  r->foff = w->nfull;
  r->poff = w->npart;
  if (qb % j->stride) {
    r->nf = r->np = 0;
    return;
  }
  blk_rrow *rec = j->ru ? blk_reuse_begin(w, qb) : NULL;
  if (rec) super_classes(w, qb / SUPER); /* the choice of reference reads them */
  const blk_ref *rf = rec ? blk_reuse_ref(w, qb) : NULL;
  if (rf && j->reuse_cls) moved_classes(w, rec, qb, rf);
  else if (rf) moved_row(w, rec, qb, rf);
  else whole_row(w, rec, qb);
  if (rec) blk_reuse_end(w, rec, qb);
  r->nf = (int)(w->nfull - r->foff);
  r->np = (int)(w->npart - r->poff);
}

/* Rows a worker takes at a time: more where rows are reused on threads,
** so that a row's reference a few rows back lies mostly in its own run,
** done (one in a run another worker holds may not have begun); not where
** the job may stop early, which it checks per grab, and then whole merged
** rows. */
static int grab(const job *j) {
  int n = j->ru && j->nw > 1 && !j->stop4 ? j->nq / (8 * j->nw) : 0;
  int m = j->merge > 1 ? j->merge : 1;
  if (n < ROWS_PER_GRAB) n = ROWS_PER_GRAB;
  return (n + m - 1) / m * m;
}

/* What rows [r0, r1) add to the cost the stop counts: merged m to one
** from r0 on, a multiple of m, where the job merges. */
static int64_t rows_cost(worker *w, int r0, int r1, int64_t f, int64_t p) {
  const job *j = w->j;
  if (j->merge < 2) return 4 * (w->nfull - f) + BLK_PARTIAL_COST4 * (w->npart - p);
  int64_t full = 0, vis = 0;
  int32_t *cnt = w->mcnt, *seen = w->mcnt + j->nk;
  /* a worker that has found no block of a kind has no list of it yet */
  const int32_t *fl = w->full ? w->full : w->mcnt, *pl = w->part ? w->part : w->mcnt;
  for (int g = r0; g < r1; g += j->merge) {
    int ge = g + j->merge < r1 ? g + j->merge : r1;
    for (int qb = g; qb < ge; qb++) {
      const rowres *r = &j->rows[qb];
      blk_merge_row(fl + r->foff, r->nf, pl + r->poff, r->np, g, cnt, seen, &vis);
    }
    full += blk_merge_full(fl + j->rows[g].foff, j->rows[g].nf, ge - g, cnt);
  }
  return 4 * full + BLK_PARTIAL_COST4 * (vis - full);
}

static void *work(void *arg) {
  worker *w = arg;
  job *j = w->j;
  int g = grab(j);
  for (;;) {
    int r0 = atomic_fetch_add(&j->next, g);
    if (r0 >= j->nq || w->fail || atomic_load(&j->stopped)) break;
    int r1 = r0 + g < j->nq ? r0 + g : j->nq;
    int64_t f = w->nfull, p = w->npart;
    for (int qb = r0; qb < r1; qb++) do_row(w, qb);
    /* counts only grow: past stop4 on some rows is past it on all */
    int64_t d = j->stop4 ? rows_cost(w, r0, r1, f, p) : 0;
    int64_t stop = j->stop_live ? atomic_load(j->stop_live) : j->stop4;
    if (j->stop4 && atomic_fetch_add(&j->cost4, d) + d > stop) {
      atomic_store(&j->stopped, 1);
      break;
    }
  }
  return NULL;
}

/* The calling thread is worker 0. A thread that fails to start costs only
** time: the shared counter hands its rows to the workers that run. */
int blk_job_run(job *j) {
  j->nw = blk_threads(j->nq / ROWS_PER_GRAB);
  if (j->nw > ROW_THREADS) j->nw = ROW_THREADS;
  j->w = aligned_alloc(64, (size_t)j->nw * sizeof(worker));
  if (!j->w) return -1;
  memset(j->w, 0, (size_t)j->nw * sizeof(worker));
  for (int i = 0; i < j->nw; i++)
    if (blk_worker_init(&j->w[i], j)) return -1;
  atomic_init(&j->next, 0);
  atomic_init(&j->cost4, 0);
  atomic_init(&j->stopped, 0);
  blk_on_threads(j->nw, work, j->w, sizeof *j->w);
  for (int i = 0; i < j->nw; i++)
    if (j->w[i].fail) return -1;
  return 0;
}
