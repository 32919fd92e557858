/* api_int.h: helpers shared by the handlers in src/api/. */
#ifndef HR_API_INT_H
#define HR_API_INT_H

#include "app.h"

/* For requests made with the publishable key: verifies the identity (from the
 * given values, else the X-Headroom-User/-Account/-Ts/-User-Hash headers) and
 * that it names `account` (and `user` when given). Secret-key requests pass.
 * On failure replies (401/403; without a body when bare) and returns -1. */
int hr_api_browser_ok(hr_req *r, const char *account, const char *user, const char *ts,
                      const char *hash, int bare);
/* Replies with the engine's error, or 500. */
void hr_api_fail(hr_req *r, int rc, const hr_err *err);
/* String member of o, or NULL if absent or not a string. */
const char *hr_api_str(json_object *o, const char *key);

#endif
