/*
** The fuzz target's body (fuzz_body.h) under ctest, with no libFuzzer: the
** shipped patterns and a few hundred generated scripts go through loading,
** tables, lowering and (for a few) kernel generation, so every build checks
** what the fuzzer checks. SIEVE_FUZZ_N sets how many generated inputs.
*/
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fuzz_body.h"
#include "test_rand.h"

static void generated_scripts(void **st) {
  setup_seed(st);
  print_message("seed %llu (SIEVE_SEED replays it)\n", (unsigned long long)seed);
  setenv("SIEVE_THREADS", "1", 0);
  const char *n_env = getenv("SIEVE_FUZZ_N");
  int n = n_env ? atoi(n_env) : 300, loaded = 0;
  fz_opts o = {0.05, getenv("SIEVE_FUZZ_VERBOSE") != NULL};
  for (int i = 0; i < n; i++) {
    uint8_t in[96];
    in[0] = 0xF0;
    for (size_t j = 1; j < sizeof in; j++) in[j] = (uint8_t)rnd();
    fz_one(in, sizeof in, &o);
    /* Count what loads, so a generator that only makes broken scripts shows. */
    char src[1 << 16];
    const char *ov[4];
    fz_gen g;
    fz_script(in + 1, sizeof in - 1, src, sizeof src, ov, &g);
    sieve_ctx *ctx;
    sieve_pattern *p = NULL;
    assert_int_equal(sieve_open(&ctx), SIEVE_OK);
    if (!sieve_pattern_load_string(ctx, "g.lua", src, ov, &p)) loaded++;
    sieve_pattern_free(p);
    sieve_close(ctx);
  }
  print_message("%d of %d generated scripts loaded\n", loaded, n);
  assert_true(loaded * 4 >= n);
}

/* tests/fuzz/: inputs the fuzzer once failed on (script, NUL, overrides;
** or 0xF0 and generator choices), kept as regression tests. */
static void regression_inputs(void **st) {
  const char *src = getenv("SIEVE_SOURCE_DIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/fuzz", src ? src : ".");
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open %s", dir);
  fz_opts o = {0, 0};
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fz_one(buf, len, &o);
    n++;
  }
  closedir(d);
  assert_true(n > 0);
}

static void shipped_patterns(void **st) {
  static const char *const names[] = {"dense", "causal", "frame_window", "lvsa", "sta", "svg",
                                      "token_window", "adaspa"};
  const char *dir = getenv("SIEVE_SOURCE_DIR");
  fz_opts o = {0, 0};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/patterns/%s.lua", dir ? dir : ".", names[i]);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    fz_one((const uint8_t *)buf, n, &o);
  }
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(regression_inputs),
    cmocka_unit_test(shipped_patterns),
    cmocka_unit_test(generated_scripts),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
