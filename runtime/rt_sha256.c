#include "rt_sha256.h"

#include <openssl/sha.h>
#include <string.h>

int rt_sha256(const void *data, size_t n, uint8_t out[RT_SHA256_BYTES]) {
  if (SHA256(data, n, out)) return 0;
  memset(out, 0, RT_SHA256_BYTES);
  return -1;
}

void rt_hex(const uint8_t *bytes, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = 0;
}

int rt_sha256_hex(const void *data, size_t n, char out[RT_SHA256_HEX]) {
  uint8_t d[RT_SHA256_BYTES];
  out[0] = 0;
  if (rt_sha256(data, n, d)) return -1;
  rt_hex(d, sizeof d, out);
  return 0;
}
