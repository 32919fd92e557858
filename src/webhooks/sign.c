/* sign.c: the pure parts of webhook delivery: Standard Webhooks signatures
 * (HMAC-SHA256 over "id.timestamp.body", base64, "v1," prefix, one per
 * secret during a rotation), message ids and the retry backoff.
 *
 * The HMAC runs through EVP_MAC with the id and timestamp fed as a separate
 * update, so a large body is never copied just to be signed. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "err.h"
#include "webhooks.h"

#define MAX_KEY 256

/* Decodes the base64 after "whsec_" into key; the length, or -1. Standard
 * Webhooks secrets are padded base64, but some tools drop the padding. */
static int decode_secret(const char *b64, size_t len, unsigned char *key) {
    char tmp[MAX_KEY * 4 / 3 + 8];
    unsigned char raw[sizeof tmp];
    if (len == 0 || len + 3 >= sizeof tmp) return -1;
    memcpy(tmp, b64, len);
    while (len % 4) tmp[len++] = '=';
    /* EVP_DecodeBlock counts padding as zero bytes: take them off again */
    size_t pad = 0;
    while (pad < len && tmp[len - 1 - pad] == '=') pad++;
    if (pad > 2) return -1;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)tmp, (int)len);
    if (n < 0 || (size_t)n < pad || (size_t)n - pad > MAX_KEY) return -1;
    n -= (int)pad;
    memcpy(key, raw, (size_t)n);
    return n;
}

static int hmac(EVP_MAC *mac, const unsigned char *key, size_t klen, const char *prefix,
                size_t plen, const char *body, size_t blen, unsigned char *md, size_t *mdlen) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    int ok = ctx && EVP_MAC_init(ctx, key, klen, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)prefix, plen) &&
             EVP_MAC_update(ctx, (const unsigned char *)body, blen) &&
             EVP_MAC_final(ctx, md, mdlen, EVP_MAX_MD_SIZE);
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

int hr_webhook_sign(const char *secrets, const char *id, int64_t ts, const char *body,
                    size_t len, char *out, size_t n, hr_err *err) {
    EVP_MAC *mac = NULL;
    int ret = 0;
    size_t used = 0;
    char prefix[320];
    if (n == 0) return hr_err_set(err, HR_EINVAL, "no room for the signature");
    out[0] = '\0';
    int plen = snprintf(prefix, sizeof prefix, "%s.%lld.", id, (long long)ts);
    if (plen < 0 || (size_t)plen >= sizeof prefix) {
        ret = hr_err_set(err, HR_EINVAL, "webhook id too long");
        goto out;
    }
    for (const char *p = secrets ? secrets : ""; *p;) {
        while (*p == ' ') p++;
        size_t slen = strcspn(p, " ");
        if (slen == 0) break;
        unsigned char key[MAX_KEY], md[EVP_MAX_MD_SIZE];
        int klen;
        if (slen > 6 && !strncmp(p, "whsec_", 6)) {
            if ((klen = decode_secret(p + 6, slen - 6, key)) <= 0) {
                ret = hr_err_set(err, HR_EINVAL, "webhook secret is not valid base64 after whsec_");
                goto out;
            }
        } else {
            if (slen > MAX_KEY) {
                ret = hr_err_set(err, HR_EINVAL, "webhook secret longer than %d bytes", MAX_KEY);
                goto out;
            }
            memcpy(key, p, slen);
            klen = (int)slen;
        }
        if (!mac && !(mac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
            ret = hr_err_set(err, HR_EINTERNAL, "HMAC unavailable");
            goto out;
        }
        size_t mdlen = 0;
        if (hmac(mac, key, (size_t)klen, prefix, (size_t)plen, body, len, md, &mdlen)) {
            ret = hr_err_set(err, HR_EINTERNAL, "HMAC failed");
            goto out;
        }
        /* "v1," + base64 of 32 bytes (44) + separator + NUL */
        if (used + 3 + 4 * ((mdlen + 2) / 3) + 2 > n) {
            ret = hr_err_set(err, HR_EINVAL, "signature buffer too small");
            goto out;
        }
        if (used) out[used++] = ' ';
        memcpy(out + used, "v1,", 3);
        used += 3;
        used += (size_t)EVP_EncodeBlock((unsigned char *)out + used, md, (int)mdlen);
        out[used] = '\0';
        p += slen;
    }
out:
    if (ret) out[0] = '\0';
    EVP_MAC_free(mac);
    return ret;
}

void hr_webhook_new_id(char *out, size_t n) {
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz"; /* Crockford base32 */
    unsigned char r[26];
    if (n == 0) return;
    if (RAND_bytes(r, sizeof r) != 1 && getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0, sizeof r); /* not reached on a working system; ids stay well-formed */
    size_t i = 0;
    for (const char *p = "msg_"; *p && i + 1 < n; p++) out[i++] = *p;
    for (size_t k = 0; k < sizeof r && i + 1 < n; k++) out[i++] = alphabet[r[k] & 31];
    out[i] = '\0';
}

/* Jitter only needs to spread retries, not resist prediction: a per-thread
 * xorshift seeded once from the kernel. */
static double uniform01(void) {
    static _Thread_local uint64_t s;
    if (!s) {
        if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) s = (uint64_t)(uintptr_t)&s;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (double)(s >> 11) / 9007199254740992.0; /* 2^53 */
}

int64_t hr_webhook_backoff(const hr_webhook_policy *p, int attempt, int64_t retry_after_ms) {
    double cap = p->max_interval_ms > 0 ? (double)p->max_interval_ms : 7200000.0;
    double wait = (double)(p->initial_ms > 0 ? p->initial_ms : 0);
    double f = p->factor >= 1.0 ? p->factor : 1.0;
    for (int i = 1; i < attempt && wait < cap; i++) wait *= f;
    if (wait > cap) wait = cap;
    int64_t ms = (int64_t)floor(wait * (0.5 + 0.5 * uniform01()));
    if (retry_after_ms > ms) ms = retry_after_ms < (int64_t)cap ? retry_after_ms : (int64_t)cap;
    return ms;
}
