// Content hashes for cache keys and provenance (SHA-256 through OpenSSL's libcrypto).
#ifndef COMMON_HASH_H
#define COMMON_HASH_H

#include <stddef.h>

typedef struct { void *ctx; } Sha256;
void sha256_init(Sha256 *h);
void sha256_update(Sha256 *h, const void *data, size_t n);
// Writes 64 lowercase hex digits and a NUL to hex[65]; frees the context.
void sha256_final_hex(Sha256 *h, char hex[65]);
// Hash of a buffer, and of a whole file (-1 with err_set on a read error).
void sha256_hex(const void *data, size_t n, char hex[65]);
int sha256_file_hex(const char *path, char hex[65]);

#endif
