#include "rt_sha256.h"

#include <openssl/sha.h>

void rt_sha256(const void *data, size_t n, uint8_t out[RT_SHA256_BYTES]) {
  SHA256(data, n, out);
}

void rt_hex(const uint8_t *bytes, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = 0;
}

void rt_sha256_hex(const void *data, size_t n, char out[RT_SHA256_HEX]) {
  uint8_t d[RT_SHA256_BYTES];
  rt_sha256(data, n, d);
  rt_hex(d, sizeof d, out);
}
