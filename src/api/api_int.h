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
/* One entry of a catalog section ("playbooks", "campaigns") over the API
 * (section.c): the list, one entry, create/replace (validated like the
 * YAML, 201/200), delete (204). `what` names an entry in messages. The
 * entry's id is r->params[0]. */
void hr_api_section_list(hr_req *r, const char *section);
void hr_api_section_get(hr_req *r, const char *section, const char *what);
void hr_api_section_put(hr_req *r, const char *section, const char *what);
void hr_api_section_delete(hr_req *r, const char *section, const char *what);
/* Segment's write key: from HTTP Basic (user name), else `writeKey` in the
 * body (may be NULL); the secret key passes too. 1 if it matches. */
int hr_api_write_key_ok(hr_req *r, json_object *body);
/* The valid messages of a Segment request (track.c): what group and
 * identify calls change (membership, traits) first, then all as one durable
 * batch; replies 200 with the counts and the bad messages (errs: the items
 * of a JSON list, nerr of them), or with the engine's error. status: n
 * entries for the engine's answers. */
struct hr_msg;
void hr_api_seg_ingest(hr_req *r, struct hr_msg *msgs, int n, int *status, int64_t now_ms,
                       const hr_buf *errs, int nerr);
/* String member of o, or NULL if absent or not a string. */
const char *hr_api_str(json_object *o, const char *key);

#endif
