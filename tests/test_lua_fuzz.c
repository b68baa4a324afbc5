/*
** The fuzz target's checks, run on a fixed corpus so every build exercises
** them: each shipped pattern cut short at many points, and with bytes
** replaced by characters that matter to Lua's grammar.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "fuzz_pattern.c"

static const char *const shipped[] = {"dense", "causal", "token_window", "frame_window",
                                      "lvsa",  "svg",    "sta",          "adaspa"};

static size_t read_pattern(const char *stem, char *buf, size_t cap) {
  char path[4200];
  const char *dir = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/patterns/%s.lua", dir ? dir : ".", stem);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

static void truncated_scripts(void **st) {
  static char buf[16384];
  for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
    size_t n = read_pattern(shipped[i], buf, sizeof buf);
    for (size_t cut = 0; cut <= n; cut += 7) LLVMFuzzerTestOneInput((const uint8_t *)buf, cut);
  }
}

static void mutated_scripts(void **st) {
  static const char alphabet[] = "(){}[]=.,:;'\"0123456789 \n-+*/%<>~&|#^_aqkt";
  static char buf[16384];
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
    size_t n = read_pattern(shipped[i], buf, sizeof buf);
    for (int m = 0; m < 150; m++) {
      static char copy[16384];
      memcpy(copy, buf, n);
      for (int j = 0; j < 1 + m % 3; j++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        copy[(seed >> 33) % n] = alphabet[(seed >> 17) % (sizeof alphabet - 1)];
      }
      LLVMFuzzerTestOneInput((const uint8_t *)copy, n);
    }
  }
}

int main(void) {
  setenv("SIEVE_FUZZ_CODEGEN", "0", 0);  /* the loader's checks; test_fuzz_body generates kernels */
  const struct CMUnitTest t[] = {
    cmocka_unit_test(truncated_scripts),
    cmocka_unit_test(mutated_scripts),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
