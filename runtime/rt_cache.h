/*
** The on-disk kernel cache. An entry holds one payload (a cubin) under a key
** string that covers everything that changes the code; the file is named by
** the key's SHA-256 and repeats the whole key, so a collision or a stray file
** is caught rather than loaded.
**
** Entry file, little-endian:
**   magic "SIEVEKC\n" | u32 format | u32 key bytes | u64 payload bytes |
**   SHA-256 of the payload | key | payload
**
** Writers fill a private temp file in the same directory, fsync it and
** rename it over the entry, so readers see a whole old entry or a whole new
** one and concurrent writers of one key all succeed (the last rename wins).
** Least recently used entries (by mtime, which a hit refreshes) are evicted
** when a store takes the directory over its limit.
*/
#ifndef RT_CACHE_H
#define RT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cg_err.h"

#define RT_CACHE_DEFAULT_LIMIT ((uint64_t)1 << 30)

/* The sources the library was built from, as a hash (runtime/source_id.cmake,
** generated at build time): every kernel key names it, so a kernel cached by
** another build is never served. */
extern const char rt_source_id[];

typedef struct rt_cache {
  char dir[4096];
  uint64_t limit;        /* bytes; 0 means no limit */
} rt_cache;

/*
** Opens the cache in `dir`, or where the environment says when dir is NULL:
** $SIEVE_CACHE_DIR, else $XDG_CACHE_HOME/sieve, else ~/.cache/sieve. The
** directory is created as with mkdir -p. The limit is $SIEVE_CACHE_MAX_MB
** MiB (0: none) or 1 GiB.
*/
sieve_status rt_cache_open(rt_cache *c, const char *dir, cg_err *e);

/* The entry's file for a key: dir/<sha256 of key>.bin; -1 when the hash
** fails (out is then the directory: no entry). */
int rt_cache_path(const rt_cache *c, const char *key, char *out, size_t n);

/*
** Looks key up. A hit: *data (malloc'd, *n bytes) and the entry's mtime is
** refreshed. A miss: SIEVE_OK with *data NULL. A damaged entry (truncated,
** bad magic or checksum, another key): SIEVE_ERR_CACHE naming the file and
** the fault, and the file is removed so the caller's rebuild can store anew.
*/
sieve_status rt_cache_load(const rt_cache *c, const char *key, void **data,
                           size_t *n, cg_err *e);

/* Stores (or replaces) key's entry atomically, then evicts down to the
** limit, never the entry just written. */
sieve_status rt_cache_store(const rt_cache *c, const char *key, const void *data,
                            size_t n, cg_err *e);

typedef struct rt_cache_entry {
  const char *path;
  const char *key;       /* NULL when the header is damaged */
  uint64_t bytes;        /* file size */
  int64_t atime, mtime;  /* seconds since the epoch */
} rt_cache_entry;

/* Calls fn for every entry until it returns nonzero. Pointers in the entry
** are valid during the call only. */
sieve_status rt_cache_list(const rt_cache *c,
                           int (*fn)(const rt_cache_entry *ent, void *ud),
                           void *ud, cg_err *e);

typedef struct rt_cache_totals {
  int64_t entries;
  uint64_t bytes;
} rt_cache_totals;

sieve_status rt_cache_totals_get(const rt_cache *c, rt_cache_totals *out,
                                 cg_err *e);
/* Removes every entry, and temp files that no live writer can own (older
** than an hour). *removed may be NULL. */
sieve_status rt_cache_clear(const rt_cache *c, int64_t *removed, cg_err *e);
/* Removes least recently used entries until the total is at most `limit`
** bytes; `keep` (a path, or NULL) is never removed. */
sieve_status rt_cache_evict(const rt_cache *c, uint64_t limit, const char *keep,
                            cg_err *e);

#endif
