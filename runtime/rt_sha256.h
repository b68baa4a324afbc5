/*
** SHA-256 (FIPS 180-4). The kernel cache names entries by the hash of their
** key string and checks payloads with it; a cryptographic hash keeps
** accidental collisions out of the question for any cache size.
*/
#ifndef RT_SHA256_H
#define RT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define RT_SHA256_BYTES 32
#define RT_SHA256_HEX 65   /* 64 hex digits and the terminator */

typedef struct rt_sha256_ctx {
  uint32_t h[8];
  uint64_t len;            /* bytes hashed so far */
  uint8_t buf[64];
  size_t nbuf;
} rt_sha256_ctx;

void rt_sha256_init(rt_sha256_ctx *s);
void rt_sha256_update(rt_sha256_ctx *s, const void *data, size_t n);
void rt_sha256_final(rt_sha256_ctx *s, uint8_t out[RT_SHA256_BYTES]);

/* One-shot forms. */
void rt_sha256(const void *data, size_t n, uint8_t out[RT_SHA256_BYTES]);
void rt_sha256_hex(const void *data, size_t n, char out[RT_SHA256_HEX]);
void rt_hex(const uint8_t *bytes, size_t n, char *out);  /* 2n + 1 chars */

#endif
