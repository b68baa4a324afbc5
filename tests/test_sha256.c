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
  char chunk[1000];
  memset(chunk, 'a', sizeof chunk);
  rt_sha256_ctx s;
  rt_sha256_init(&s);
  for (int i = 0; i < 1000; i++) rt_sha256_update(&s, chunk, sizeof chunk);
  uint8_t d[RT_SHA256_BYTES];
  char hex[RT_SHA256_HEX];
  rt_sha256_final(&s, d);
  rt_hex(d, sizeof d, hex);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Feeding a message in two pieces, split anywhere, must not change the
** digest: this walks every buffering path around the 64-byte block and the
** 56-byte padding boundary. */
static void any_split_same_digest(void **st) {
  uint8_t msg[200];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 37 + 11);
  for (size_t len = 0; len <= sizeof msg; len++) {
    uint8_t whole[RT_SHA256_BYTES];
    rt_sha256(msg, len, whole);
    for (size_t cut = 0; cut <= len; cut++) {
      rt_sha256_ctx s;
      uint8_t d[RT_SHA256_BYTES];
      rt_sha256_init(&s);
      rt_sha256_update(&s, msg, cut);
      rt_sha256_update(&s, msg + cut, len - cut);
      rt_sha256_final(&s, d);
      assert_memory_equal(d, whole, sizeof d);
    }
  }
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(fips_vectors),
    cmocka_unit_test(million_a),
    cmocka_unit_test(any_split_same_digest),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
