/* auth.c: HMAC identity hashes with OpenSSL; comparisons in constant time so
 * a key or hash cannot be guessed byte by byte from response timing. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

void hr_identity_hash(const char *secret, const char *user, const char *account, int64_t ts,
                      char out[65]) {
    static const char hex[] = "0123456789abcdef";
    char msg[600];
    int n = snprintf(msg, sizeof msg, "%s.%s.%lld", user, account, (long long)ts);
    if (n < 0 || (size_t)n >= sizeof msg) n = (int)sizeof msg - 1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n, mac,
         &len);
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = 0;
}

int hr_key_equal(const char *presented, const char *configured) {
    if (!presented || !configured || !*configured) return 0;
    size_t a = strlen(presented), b = strlen(configured);
    return a == b && CRYPTO_memcmp(presented, configured, a) == 0;
}

int hr_identity_verify(const hr_auth_cfg *cfg, const char *user, const char *account,
                       const char *ts, const char *hash, int64_t now, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (!user || !*user || !account || !*account || !ts || !hash) {
        *why = "identity needs user, account, ts and user_hash";
        return HR_EAUTH;
    }
    if (strchr(account, '.')) { /* keeps "{user}.{account}.{ts}" unambiguous */
        *why = "account ids cannot contain '.'";
        return HR_EAUTH;
    }
    char *end;
    long long t = strtoll(ts, &end, 10);
    if (!*ts || *end) {
        *why = "ts must be unix seconds";
        return HR_EAUTH;
    }
    /* 5 minutes of clock skew into the future; the window into the past. */
    if (t > now + 300 || now - t > cfg->window) {
        *why = "user_hash has expired (ts outside the accepted window)";
        return HR_EAUTH;
    }
    if (strlen(hash) != 64) {
        *why = "user_hash must be 64 hex characters";
        return HR_EAUTH;
    }
    char lower[65];
    for (int i = 0; i < 64; i++) lower[i] = (char)(hash[i] >= 'A' && hash[i] <= 'F' ? hash[i] + 32 : hash[i]);
    lower[64] = 0;
    for (int i = 0; i < 2; i++) {
        const char *s = cfg->identity_secrets[i];
        if (!s || !*s) continue;
        char want[65];
        hr_identity_hash(s, user, account, t, want);
        if (CRYPTO_memcmp(want, lower, 64) == 0) return 0;
    }
    *why = "user_hash does not match";
    return HR_EAUTH;
}
