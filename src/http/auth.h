/* auth.h: API keys and browser identity verification.
 *
 * A secret key (sk_...) may do everything. A publishable key (pk_...) may
 * only read decisions for the user and account named by a verified identity:
 * user_hash = hex(HMAC-SHA256(identity secret, "{user}.{account}.{ts}")),
 * ts in unix seconds and within the configured window, checked against up to
 * two identity secrets so they can be rotated. */
#ifndef HR_AUTH_H
#define HR_AUTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_auth_cfg {
    const char *secret_key, *publishable_key;
    const char *identity_secrets[2]; /* NULL when unused */
    int64_t window;                  /* seconds a user_hash stays valid */
} hr_auth_cfg;

/* Writes the 64-char hex hash (plus NUL) into out. */
void hr_identity_hash(const char *secret, const char *user, const char *account, int64_t ts,
                      char out[65]);
/* 0 when hash is valid for (user, account, ts) at time now under cfg;
 * otherwise a negative code and a reason in why. */
int hr_identity_verify(const hr_auth_cfg *cfg, const char *user, const char *account,
                       const char *ts, const char *hash, int64_t now, const char **why);
/* Constant-time comparison of a presented key with the configured one. */
int hr_key_equal(const char *presented, const char *configured);

#endif
