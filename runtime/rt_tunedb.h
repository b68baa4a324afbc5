/*
** The tuning database and the sweep journal: small text files in the
** kernel cache's directory.
**
** tune.db has one line per key, the key being five words:
**   <pattern IR hash> <shape> <dtype> <arch> <GPU name>
**   e.g. 6c1f0e2a9b3d4f51 H24.D128.T33.Y45.X80.text0 bf16 sm_80 NVIDIA_H100_80GB_HBM3
** then the tuned config and what it measured:
**   bm=128 bn=64 warps=4 stages=2 ms=12.345 pattern=lvsa time=1712345678
** The pattern IR hash (sieve_pattern_hash, as `sieve show` prints it) names
** the pattern class: scripts that produce the same IR share an entry. The
** shape is the one the kernel is compiled for (batch is not part of it).
** Lines starting with '#' are comments. Writers take a lock, merge with the
** lines already there (replacing the same key's), and rename a complete
** temp file over the old one, so readers never see half a database.
**
** A journal records a sweep's finished candidates, one line each, so an
** interrupted sweep resumes where it stopped; it is named by the key's
** hash and removed once a sweep has every result.
*/
#ifndef RT_TUNEDB_H
#define RT_TUNEDB_H

#include <stdint.h>

#include "rt_tune.h"

#define RT_TUNEDB_FILE "tune.db"

typedef struct rt_tunedb_entry {
  cg_attn_config cfg;
  double ms;
  char pattern[64];    /* the pattern's name, for people reading the file */
  int64_t time;        /* when it was tuned, seconds since the epoch */
} rt_tunedb_entry;

/* dir/tune.db */
void rt_tunedb_path(const char *dir, char *out, size_t n);

/* The key of a kernel: the shape is resolved here (cg_shape_for). gpu is
** the device's name; blanks in it become '_'. */
void rt_tunedb_key(const cg_pattern *p, const sieve_shape *shape, cg_dtype dt, cg_arch arch,
                   const char *gpu, char *out, size_t n);

/* One line: 1 and the key and entry; 0 for a comment or blank line; -1 for
** a line that is neither. */
int rt_tunedb_parse_line(const char *line, char *key, size_t keylen, rt_tunedb_entry *out);
/* The line for key and ent, without a newline. Returns its length. */
int rt_tunedb_format_line(const char *key, const rt_tunedb_entry *ent, char *out, size_t n);

/* Looks key up: *found 0 and SIEVE_OK when the file or the key is absent. */
sieve_status rt_tunedb_get(const char *path, const char *key, rt_tunedb_entry *out, int *found,
                           cg_err *e);
/* Adds or replaces key's line (locked, merged, atomic). */
sieve_status rt_tunedb_put(const char *path, const char *key, const rt_tunedb_entry *ent,
                           cg_err *e);
/* Entries in the file (0 when it is absent). */
sieve_status rt_tunedb_count(const char *path, int64_t *n, cg_err *e);
/* Removes the database and every journal in dir; *removed (may be NULL)
** counts the files. */
sieve_status rt_tunedb_clear(const char *dir, int64_t *removed, cg_err *e);

/*
** For plans: the tuned config of s (pattern, shape, dtype, arch; s->cfg is
** ignored) on dev from the database in dir, if there is one that the
** generator still accepts and the device can fit. Returns 1 and fills *cfg,
** else 0 (no entry, unreadable database, a mask that folds to true at the
** shape and so runs the dense kernel: the default config then).
*/
int rt_tunedb_config(const char *dir, const rt_plan_spec *s, const rt_device *dev,
                     cg_attn_config *cfg);

/* ------------------------------------------------------------ journal */

/* dir/tune-<16 hex digits of the key's SHA-256>.journal; -1 and "" when
** the hash fails (the sweep then keeps no journal). */
int rt_tune_journal_path(const char *dir, const char *key, char *out, size_t n);
/*
** Fills pending candidates from the journal at path (written for key):
** state, timings and note, from_journal set. *matched counts them. An
** absent journal, or one written for another key, matches nothing.
*/
sieve_status rt_tune_journal_read(const char *path, const char *key, rt_tune_cand *c, int n,
                                  int *matched, cg_err *e);
/* Appends one finished candidate (a whole line in one write, then fsync). */
sieve_status rt_tune_journal_append(const char *path, const char *key, const rt_tune_cand *c,
                                    cg_err *e);
/* Removes the journal; absent is fine. */
sieve_status rt_tune_journal_remove(const char *path, cg_err *e);

#endif
