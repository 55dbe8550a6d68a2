#include "common/hash.h"
#include "common/error.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

void sha256_init(Sha256 *h) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    h->ctx = c;
}

void sha256_update(Sha256 *h, const void *data, size_t n) { EVP_DigestUpdate(h->ctx, data, n); }

void sha256_final_hex(Sha256 *h, char hex[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(h->ctx, md, &len);
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", md[i]);
    hex[64] = '\0';
}

void sha256_hex(const void *data, size_t n, char hex[65]) {
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, data, n);
    sha256_final_hex(&h, hex);
}

int sha256_file_hex(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: %s", path, strerror(errno));
    Sha256 h;
    sha256_init(&h);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&h, buf, n);
    int bad = ferror(f);
    fclose(f);
    sha256_final_hex(&h, hex);
    return bad ? err_set("%s: read error", path) : 0;
}
