#define _GNU_SOURCE /* RTLD_NEXT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt_cache.h"
#include "sieve.h"

/*
** libcrypto's one-shot SHA256, interposed (an executable's definition comes
** first in the dynamic lookup, and libsieve calls it through its PLT): it
** fails, as it may out of memory, for inputs longer than sha_fails_over
** bytes while that is set.
*/
static size_t sha_fails_over = SIZE_MAX;

unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md) {
  static unsigned char *(*real)(const unsigned char *, size_t, unsigned char *);
  if (n > sha_fails_over) return NULL;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "SHA256");
  return real(d, n, md);
}

/* Every test gets a fresh directory, removed afterwards. */
typedef struct fixture {
  char dir[256];
  rt_cache c;
} fixture;

static int setup(void **st) {
  fixture *f = calloc(1, sizeof *f);
  const char *tmp = getenv("TMPDIR");
  snprintf(f->dir, sizeof f->dir, "%s/sieve-cache-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(f->dir)) return -1;
  cg_err e = {0};
  if (rt_cache_open(&f->c, f->dir, &e)) return -1;
  f->c.limit = 0;
  *st = f;
  return 0;
}

static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[512];
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    struct stat s;
    if (!lstat(p, &s) && S_ISDIR(s.st_mode)) rm_rf(p);
    else unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int teardown(void **st) {
  fixture *f = *st;
  rm_rf(f->dir);
  free(f);
  return 0;
}

/* A payload that says whether it is intact: 8 bytes of seed, then bytes
** derived from it. */
static uint8_t *payload(uint64_t seed, size_t n) {
  uint8_t *p = malloc(n);
  uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = (uint8_t)(x >> 56);
  }
  memcpy(p, &seed, n < 8 ? n : 8);
  return p;
}

static int payload_ok(const uint8_t *p, size_t n) {
  uint64_t seed = 0;
  if (n < 8) return 0;
  memcpy(&seed, p, 8);
  uint8_t *want = payload(seed, n);
  int ok = !memcmp(p, want, n);
  free(want);
  return ok;
}

static off_t file_size(const char *path) {
  struct stat s;
  return stat(path, &s) ? -1 : s.st_size;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static void store(rt_cache *c, const char *key, uint64_t seed, size_t n) {
  uint8_t *p = payload(seed, n);
  cg_err e = {0};
  sieve_status st = rt_cache_store(c, key, p, n, &e);
  if (st) fail_msg("store %s: %s", key, e.msg);
  free(p);
}

/* Loads key and checks it is the payload `seed` made. */
static void expect_hit(rt_cache *c, const char *key, uint64_t seed, size_t n) {
  void *data;
  size_t got;
  cg_err e = {0};
  sieve_status st = rt_cache_load(c, key, &data, &got, &e);
  if (st) fail_msg("load %s: %s", key, e.msg);
  assert_non_null(data);
  assert_int_equal(got, n);
  uint8_t *want = payload(seed, n);
  assert_memory_equal(data, want, n);
  free(want);
  free(data);
}

static void expect_miss(rt_cache *c, const char *key) {
  void *data = (void *)1;
  size_t n = 1;
  cg_err e = {0};
  assert_int_equal(rt_cache_load(c, key, &data, &n, &e), SIEVE_OK);
  assert_null(data);
  assert_int_equal(n, 0);
}

/* Loads key expecting damage: SIEVE_ERR_CACHE, a message naming the file and
** `why`, and the file gone. */
static void expect_damaged(rt_cache *c, const char *key, const char *why) {
  char path[4200];
  rt_cache_path(c, key, path, sizeof path);
  void *data;
  size_t n;
  cg_err e = {0};
  assert_int_equal(rt_cache_load(c, key, &data, &n, &e), SIEVE_ERR_CACHE);
  assert_null(data);
  assert_non_null(strstr(e.msg, path));
  if (!strstr(e.msg, why)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, why);
  assert_false(exists(path));
}

/* ------------------------------------------------------------------ tests */

static void round_trip(void **st) {
  fixture *f = *st;
  expect_miss(&f->c, "k1");
  store(&f->c, "k1", 1, 5000);
  store(&f->c, "k2", 2, 0 + 8);
  expect_hit(&f->c, "k1", 1, 5000);
  expect_hit(&f->c, "k2", 2, 8);
  expect_miss(&f->c, "k3");
  /* Replacing an entry leaves exactly the new payload. */
  store(&f->c, "k1", 3, 70000);
  expect_hit(&f->c, "k1", 3, 70000);
  /* An empty payload is a valid entry. */
  cg_err e = {0};
  assert_int_equal(rt_cache_store(&f->c, "empty", "", 0, &e), SIEVE_OK);
  void *data;
  size_t n = 1;
  assert_int_equal(rt_cache_load(&f->c, "empty", &data, &n, &e), SIEVE_OK);
  assert_non_null(data);
  assert_int_equal(n, 0);
  free(data);
}

static void truncated_entry_rebuilt(void **st) {
  fixture *f = *st;
  char path[4200];
  rt_cache_path(&f->c, "trunc", path, sizeof path);
  const off_t cuts[] = {0, 7, 40, 56, 60, -1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    store(&f->c, "trunc", 10 + i, 3000);
    off_t full = file_size(path);
    assert_true(full > 3000);
    assert_int_equal(truncate(path, cuts[i] < 0 ? full + cuts[i] : cuts[i]), 0);
    expect_damaged(&f->c, "trunc", "truncated");
    /* The caller rebuilds: a miss, then a store that loads fine. */
    expect_miss(&f->c, "trunc");
    store(&f->c, "trunc", 20 + i, 3000);
    expect_hit(&f->c, "trunc", 20 + i, 3000);
  }
  /* Bytes past the end are damage too. */
  FILE *fp = fopen(path, "ab");
  fputs("junk", fp);
  fclose(fp);
  expect_damaged(&f->c, "trunc", "trailing");
}

static void flip_byte(const char *path, off_t at) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, at), 1);
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, at), 1);
  close(fd);
}

static void corrupted_entries(void **st) {
  fixture *f = *st;
  char path[4200];
  rt_cache_path(&f->c, "flip", path, sizeof path);
  /* A flipped payload byte, first, middle and last. */
  store(&f->c, "flip", 5, 4096);
  off_t size = file_size(path);
  const off_t at[] = {size - 4096, size - 2048, size - 1};
  for (size_t i = 0; i < 3; i++) {
    store(&f->c, "flip", 5, 4096);
    flip_byte(path, at[i]);
    expect_damaged(&f->c, "flip", "checksum");
  }
  /* A flipped byte in the stored checksum itself. */
  store(&f->c, "flip", 6, 4096);
  flip_byte(path, 30);
  expect_damaged(&f->c, "flip", "checksum");
  /* A flipped magic byte. */
  store(&f->c, "flip", 6, 4096);
  flip_byte(path, 0);
  expect_damaged(&f->c, "flip", "magic");
  /* A flipped byte in the key. */
  store(&f->c, "flip", 6, 4096);
  flip_byte(path, 56);
  expect_damaged(&f->c, "flip", "another key");
  /* A format from another sieve release is rebuilt, not misread. */
  store(&f->c, "flip", 6, 4096);
  flip_byte(path, 8);
  expect_damaged(&f->c, "flip", "format");
  store(&f->c, "flip", 7, 4096);
  expect_hit(&f->c, "flip", 7, 4096);
}

static void wrong_key_detected(void **st) {
  fixture *f = *st;
  char a[4200], b[4200];
  store(&f->c, "key-a", 1, 1000);
  rt_cache_path(&f->c, "key-a", a, sizeof a);
  rt_cache_path(&f->c, "key-b", b, sizeof b);
  /* As if key-b's hash collided with key-a's. */
  assert_int_equal(rename(a, b), 0);
  expect_damaged(&f->c, "key-b", "another key");
  expect_miss(&f->c, "key-a");
}

/* --------------------------------------------------------- concurrency */

#define WORKERS 8
#define ROUNDS 40

static int worker(const char *dir, int id) {
  rt_cache c;
  cg_err e = {0};
  if (rt_cache_open(&c, dir, &e)) return 1;
  c.limit = 0;
  char own[64];
  snprintf(own, sizeof own, "own-%d", id);
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t seed = (uint64_t)id << 32 | (unsigned)r;
    size_t n = 1000 + (size_t)((id * 7919 + r * 104729) % 60000);
    uint8_t *p = payload(seed, n);
    int bad = rt_cache_store(&c, "shared", p, n, &e) != SIEVE_OK ||
              rt_cache_store(&c, own, p, n, &e) != SIEVE_OK;
    free(p);
    if (bad) return 2;
    /* Whoever renamed last, a reader sees one whole entry. */
    void *data;
    size_t got;
    if (rt_cache_load(&c, "shared", &data, &got, &e) || !data || !payload_ok(data, got)) return 3;
    free(data);
    if (rt_cache_load(&c, own, &data, &got, &e) || !data || got != n || !payload_ok(data, got))
      return 4;
    free(data);
  }
  return 0;
}

static void concurrent_writers(void **st) {
  fixture *f = *st;
  pid_t pid[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    pid[i] = fork();
    assert_true(pid[i] >= 0);
    if (pid[i] == 0) _exit(worker(f->dir, i));
  }
  for (int i = 0; i < WORKERS; i++) {
    int status;
    assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status)) fail_msg("worker %d failed with %d", i, WEXITSTATUS(status));
  }
  void *data;
  size_t n;
  cg_err e = {0};
  assert_int_equal(rt_cache_load(&f->c, "shared", &data, &n, &e), SIEVE_OK);
  assert_true(data && payload_ok(data, n));
  free(data);
  for (int i = 0; i < WORKERS; i++) {
    char own[64];
    snprintf(own, sizeof own, "own-%d", i);
    assert_int_equal(rt_cache_load(&f->c, own, &data, &n, &e), SIEVE_OK);
    assert_true(data && payload_ok(data, n));
    free(data);
  }
  /* No writer left a temp file behind. */
  rt_cache_totals t;
  assert_int_equal(rt_cache_totals_get(&f->c, &t, &e), SIEVE_OK);
  assert_int_equal(t.entries, WORKERS + 1);
  DIR *d = opendir(f->dir);
  struct dirent *de;
  int files = 0;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') files++;
    else assert_true(!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."));
  closedir(d);
  assert_int_equal(files, WORKERS + 1);
}

/* ------------------------------------------------------------- eviction */

static void lru_eviction(void **st) {
  fixture *f = *st;
  const size_t n = 10000;
  char path[4200];
  store(&f->c, "a", 1, n);
  rt_cache_path(&f->c, "a", path, sizeof path);
  uint64_t entry = (uint64_t)file_size(path);
  /* File times tick with the kernel's coarse clock: space the steps. */
  sleep_ms(30);
  store(&f->c, "b", 2, n);
  sleep_ms(30);
  store(&f->c, "c", 3, n);
  sleep_ms(30);
  expect_hit(&f->c, "a", 1, n);  /* a is now the most recently used */
  sleep_ms(30);
  f->c.limit = 3 * entry + entry / 2;
  store(&f->c, "d", 4, n);       /* four entries: the oldest use goes */
  expect_miss(&f->c, "b");
  expect_hit(&f->c, "a", 1, n);
  expect_hit(&f->c, "c", 3, n);
  expect_hit(&f->c, "d", 4, n);
  /* An entry larger than the limit is kept: it was just asked for. */
  sleep_ms(30);
  f->c.limit = entry;
  store(&f->c, "big", 5, 4 * n);
  rt_cache_totals t;
  cg_err e = {0};
  assert_int_equal(rt_cache_totals_get(&f->c, &t, &e), SIEVE_OK);
  assert_int_equal(t.entries, 1);
  expect_hit(&f->c, "big", 5, 4 * n);
}

static void stale_temp_files(void **st) {
  fixture *f = *st;
  char old[512], fresh[512];
  snprintf(old, sizeof old, "%s/.tmp-old", f->dir);
  snprintf(fresh, sizeof fresh, "%s/.tmp-fresh", f->dir);
  fclose(fopen(old, "w"));
  fclose(fopen(fresh, "w"));
  struct timespec t[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
  assert_int_equal(utimensat(AT_FDCWD, old, t, 0), 0);
  int64_t removed = -1;
  cg_err e = {0};
  assert_int_equal(rt_cache_clear(&f->c, &removed, &e), SIEVE_OK);
  assert_int_equal(removed, 0);
  assert_false(exists(old));
  assert_true(exists(fresh));  /* a live writer may own it */
}

/* ------------------------------------------------- list, stats, clear */

typedef struct seen {
  int n;
  int keys;      /* bit i: key "list-i" seen */
  int damaged;
  int64_t bytes;
} seen;

static int visit(const rt_cache_entry *ent, void *ud) {
  seen *s = ud;
  s->n++;
  s->bytes += (int64_t)ent->bytes;
  if (!ent->key) s->damaged++;
  else if (!strncmp(ent->key, "list-", 5)) s->keys |= 1 << atoi(ent->key + 5);
  assert_true(ent->mtime > 0 && ent->atime > 0);
  assert_int_equal(file_size(ent->path), (off_t)ent->bytes);
  return 0;
}

static int stop_at_first(const rt_cache_entry *ent, void *ud) {
  ++*(int *)ud;
  return 1;
}

static void list_stats_clear(void **st) {
  fixture *f = *st;
  for (int i = 0; i < 3; i++) {
    char key[32];
    snprintf(key, sizeof key, "list-%d", i);
    store(&f->c, key, (uint64_t)i, 1000 * (size_t)(i + 1));
  }
  /* A file with a broken header is listed, without a key. */
  char bad[4200];
  rt_cache_path(&f->c, "broken", bad, sizeof bad);
  FILE *fp = fopen(bad, "w");
  fputs("nope", fp);
  fclose(fp);
  seen s = {0};
  cg_err e = {0};
  assert_int_equal(rt_cache_list(&f->c, visit, &s, &e), SIEVE_OK);
  assert_int_equal(s.n, 4);
  assert_int_equal(s.keys, 7);
  assert_int_equal(s.damaged, 1);
  int calls = 0;
  assert_int_equal(rt_cache_list(&f->c, stop_at_first, &calls, &e), SIEVE_OK);
  assert_int_equal(calls, 1);
  rt_cache_totals t;
  assert_int_equal(rt_cache_totals_get(&f->c, &t, &e), SIEVE_OK);
  assert_int_equal(t.entries, 4);
  assert_int_equal((int64_t)t.bytes, s.bytes);
  int64_t removed;
  assert_int_equal(rt_cache_clear(&f->c, &removed, &e), SIEVE_OK);
  assert_int_equal(removed, 4);
  assert_int_equal(rt_cache_totals_get(&f->c, &t, &e), SIEVE_OK);
  assert_int_equal(t.entries, 0);
  assert_int_equal(t.bytes, 0);
}

/* ------------------------------------------------------- where it lives */

static void directory_from_environment(void **st) {
  fixture *f = *st;
  char want[512];
  rt_cache c;
  cg_err e = {0};
  char *saved = getenv("SIEVE_CACHE_DIR") ? strdup(getenv("SIEVE_CACHE_DIR")) : NULL;

  /* mkdir -p of a nested path. */
  snprintf(want, sizeof want, "%s/x/y/z", f->dir);
  setenv("SIEVE_CACHE_DIR", want, 1);
  assert_int_equal(rt_cache_open(&c, NULL, &e), SIEVE_OK);
  assert_string_equal(c.dir, want);
  struct stat s;
  assert_true(stat(want, &s) == 0 && S_ISDIR(s.st_mode));

  unsetenv("SIEVE_CACHE_DIR");
  setenv("XDG_CACHE_HOME", f->dir, 1);
  snprintf(want, sizeof want, "%s/sieve", f->dir);
  assert_int_equal(rt_cache_open(&c, NULL, &e), SIEVE_OK);
  assert_string_equal(c.dir, want);

  /* A relative XDG_CACHE_HOME is ignored, as the XDG spec asks. */
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("XDG_CACHE_HOME", "relative", 1);
  setenv("HOME", f->dir, 1);
  snprintf(want, sizeof want, "%s/.cache/sieve", f->dir);
  assert_int_equal(rt_cache_open(&c, NULL, &e), SIEVE_OK);
  assert_string_equal(c.dir, want);
  unsetenv("XDG_CACHE_HOME");
  if (home) setenv("HOME", home, 1);
  free(home);

  /* The size limit. */
  assert_int_equal(rt_cache_open(&c, f->dir, &e), SIEVE_OK);
  assert_int_equal(c.limit, RT_CACHE_DEFAULT_LIMIT);
  setenv("SIEVE_CACHE_MAX_MB", "5", 1);
  assert_int_equal(rt_cache_open(&c, f->dir, &e), SIEVE_OK);
  assert_int_equal(c.limit, 5u << 20);
  setenv("SIEVE_CACHE_MAX_MB", "lots", 1);
  assert_int_equal(rt_cache_open(&c, f->dir, &e), SIEVE_ERR_ARG);
  assert_non_null(strstr(e.msg, "SIEVE_CACHE_MAX_MB"));
  unsetenv("SIEVE_CACHE_MAX_MB");

  /* A file where the directory should be. */
  char file[512];
  snprintf(file, sizeof file, "%s/plainfile", f->dir);
  fclose(fopen(file, "w"));
  snprintf(want, sizeof want, "%s/plainfile/sub", f->dir);
  assert_int_equal(rt_cache_open(&c, want, &e), SIEVE_ERR_IO);
  assert_non_null(strstr(e.msg, "plainfile"));

  if (saved) setenv("SIEVE_CACHE_DIR", saved, 1);
  free(saved);
}

/* ---------------------------------------------------------- public API */

static int count_entries(const sieve_cache_entry *ent, void *ud) {
  assert_non_null(ent->key);
  ++*(int *)ud;
  return 0;
}

/*
** A hash libcrypto cannot make is no key and no damage: a store fails with
** the reason, a lookup misses and keeps the entry it could not check, and
** a key no hash names has no file.
*/
static void failed_hash(void **st) {
  fixture *f = *st;
  store(&f->c, "kept", 7, 1000);
  char path[4200], none[4200];
  assert_int_equal(rt_cache_path(&f->c, "kept", path, sizeof path), 0);
  sha_fails_over = 100; /* the payload's hash fails, the key's not */
  expect_miss(&f->c, "kept");
  cg_err e = {0};
  uint8_t *p = payload(8, 1000);
  assert_int_equal(rt_cache_store(&f->c, "new", p, 1000, &e), SIEVE_ERR_CACHE);
  assert_non_null(strstr(e.msg, "SHA-256 failed"));
  sha_fails_over = 0; /* every hash fails */
  assert_int_equal(rt_cache_path(&f->c, "kept", none, sizeof none), -1);
  expect_miss(&f->c, "kept");
  sha_fails_over = SIZE_MAX;
  struct stat s;
  assert_int_equal(stat(path, &s), 0);
  expect_hit(&f->c, "kept", 7, 1000);
  expect_miss(&f->c, "new");
  free(p);
}

static void public_api(void **st) {
  fixture *f = *st;
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  assert_int_equal(sieve_cache_set_dir(ctx, f->dir), SIEVE_OK);
  const char *dir;
  assert_int_equal(sieve_cache_dir(ctx, &dir), SIEVE_OK);
  assert_string_equal(dir, f->dir);
  store(&f->c, "pub-1", 1, 100);
  store(&f->c, "pub-2", 2, 200);
  int n = 0;
  assert_int_equal(sieve_cache_list(ctx, count_entries, &n), SIEVE_OK);
  assert_int_equal(n, 2);
  sieve_cache_info info;
  assert_int_equal(sieve_cache_stats(ctx, &info), SIEVE_OK);
  assert_string_equal(info.dir, f->dir);
  assert_int_equal(info.entries, 2);
  assert_true(info.bytes > 300);
  int64_t removed;
  assert_int_equal(sieve_cache_clear(ctx, &removed), SIEVE_OK);
  assert_int_equal(removed, 2);
  /* Errors come back with words in the context. */
  char file[512];
  snprintf(file, sizeof file, "%s/f", f->dir);
  fclose(fopen(file, "w"));
  assert_int_equal(sieve_cache_set_dir(ctx, file), SIEVE_ERR_IO);
  assert_non_null(strstr(sieve_errmsg(ctx), file));
  /* The failed call left the old directory in place. */
  assert_int_equal(sieve_cache_dir(ctx, &dir), SIEVE_OK);
  assert_string_equal(dir, f->dir);
  assert_string_equal(sieve_errmsg(ctx), "");
  sieve_close(ctx);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(truncated_entry_rebuilt, setup, teardown),
    cmocka_unit_test_setup_teardown(corrupted_entries, setup, teardown),
    cmocka_unit_test_setup_teardown(wrong_key_detected, setup, teardown),
    cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
    cmocka_unit_test_setup_teardown(lru_eviction, setup, teardown),
    cmocka_unit_test_setup_teardown(stale_temp_files, setup, teardown),
    cmocka_unit_test_setup_teardown(list_stats_clear, setup, teardown),
    cmocka_unit_test_setup_teardown(directory_from_environment, setup, teardown),
    cmocka_unit_test_setup_teardown(failed_hash, setup, teardown),
    cmocka_unit_test_setup_teardown(public_api, setup, teardown),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
