/*
** SHA-256, OpenSSL's (libcrypto: the SHA extensions where the CPU has
** them, about 1.8 GB/s against 0.33 for portable C on the build machine).
** The kernel cache names entries by the hash of their key string and
** checks payloads with it; a cryptographic hash keeps accidental
** collisions out of the question for any cache size. A plan's tables come
** back from the disk cache checked, so their hash is most of a warm plan's
** creation (radial with automatic layouts at hunyuan-720p: 15 MB).
*/
#ifndef RT_SHA256_H
#define RT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define RT_SHA256_BYTES 32
#define RT_SHA256_HEX 65   /* 64 hex digits and the terminator */

/* 0, or -1 when libcrypto fails (out of memory, a broken OpenSSL
** configuration): out is then zeros (hex: ""). A key must not be made
** from a failed hash, or two patterns would share it. */
int rt_sha256(const void *data, size_t n, uint8_t out[RT_SHA256_BYTES]);
int rt_sha256_hex(const void *data, size_t n, char out[RT_SHA256_HEX]);
void rt_hex(const uint8_t *bytes, size_t n, char *out);  /* 2n + 1 chars */

#endif
