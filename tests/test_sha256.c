#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rt_sha256.h"

/* FIPS 180-4 examples (and the NIST long-message vector). */
static const struct {
  const char *msg;
  const char *hex;
} vectors[] = {
  {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
  {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
  {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
   "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

static void fips_vectors(void **st) {
  char hex[RT_SHA256_HEX];
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    rt_sha256_hex(vectors[i].msg, strlen(vectors[i].msg), hex);
    assert_string_equal(hex, vectors[i].hex);
  }
}

static void million_a(void **st) {
  char *msg = malloc(1000000);
  assert_non_null(msg);
  memset(msg, 'a', 1000000);
  char hex[RT_SHA256_HEX];
  rt_sha256_hex(msg, 1000000, hex);
  free(msg);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* A payload past the hash's 64-byte blocks, as raw digest (a cache
** entry's payload check) and as hex (its name); the value from Python's
** hashlib. */
static void payload_digest(void **st) {
  uint8_t msg[200], d[RT_SHA256_BYTES];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 37 + 11);
  char a[RT_SHA256_HEX], b[RT_SHA256_HEX];
  rt_sha256(msg, sizeof msg, d);
  rt_hex(d, sizeof d, a);
  rt_sha256_hex(msg, sizeof msg, b);
  assert_string_equal(a, "5e48d64839a8bff5e2471507af6a49f9990817df437857f4a2007df41266e1b5");
  assert_string_equal(b, a);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(fips_vectors),
    cmocka_unit_test(million_a),
    cmocka_unit_test(payload_digest),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
