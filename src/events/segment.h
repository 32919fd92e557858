/* segment.h: Segment HTTP Tracking API messages (track, identify, group,
 * page, screen, and batches of them): validation, Segment's limits, clock
 * skew correction and the account an event belongs to.
 *
 * Pure functions over json-c objects: no I/O, no engine. The ingestion path
 * (the metering issue) parses with these, then dedups, meters and stores. */
#ifndef HR_SEGMENT_H
#define HR_SEGMENT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "headroom.h"

/* Segment's documented limits. */
#define HR_MSG_MAX_BYTES (32 * 1024)
#define HR_BATCH_MAX_BYTES (500 * 1024)
#define HR_BATCH_MAX_MSGS 2500
/* A timestamp further in the future than this is refused. */
#define HR_MSG_MAX_FUTURE_MS (24LL * 3600 * 1000)

typedef enum { HR_MSG_TRACK, HR_MSG_IDENTIFY, HR_MSG_GROUP, HR_MSG_PAGE, HR_MSG_SCREEN } hr_msg_type;

/* type for hr_msg_parse and hr_msg_scan: the message's own "type" (a
 * batch), or the same with track when it has none (an import: exports from
 * analytics tools often leave it out). */
#define HR_MSG_OWN_TYPE (-1)
#define HR_MSG_OWN_TYPE_OR_TRACK (-2)

struct hr_msg_scan; /* msgscan.c */

/* A validated message. From hr_msg_parse, strings and objects are borrowed
 * from the json-c object passed in and live as long as it does. From
 * hr_msg_scan, they live in `scan` (owned: hr_msg_dispose), msg and the
 * other objects are NULL, and text is the message's JSON. */
typedef struct hr_msg {
    hr_msg_type type;
    const char *message_id;   /* NULL when the client sent none (no dedup) */
    const char *user_id, *anonymous_id;
    const char *event;        /* track: the event; page/screen: the name, may be NULL */
    const char *group_id;     /* group: groupId */
    const char *account;      /* context.groupId, else properties.accountId, else
                                 groupId for group calls; NULL: resolve by user */
    int64_t timestamp_ms;     /* when it happened, skew-corrected, unix ms */
    json_object *msg, *properties, *traits, *context;
    const char *text;         /* the message as JSON text, when the caller has it
                                 (stored as is in the event log); else NULL */
    size_t text_len;
    struct hr_msg_scan *scan; /* hr_msg_scan's fields and strings; NULL otherwise */
    uint64_t id_hash;         /* hr_hash of message_id (set by hr_msg_finish; 0: none) */
    const char *ievent;       /* a track call's event, interned (intern.h; NULL: not done) */
} hr_msg;

const char *hr_msg_type_str(hr_msg_type t);
/* "track" -> HR_MSG_TRACK ...; -1 if unknown. */
int hr_msg_type_parse(const char *s);

/* Validates one message. type is the endpoint's (/v1/track: HR_MSG_TRACK),
 * or HR_MSG_OWN_TYPE(_OR_TRACK) (inside a batch or an import). size is the
 * message's encoded size in bytes (checked against HR_MSG_MAX_BYTES).
 * batch_sent_at_ms is the batch's sentAt (0 if none), used when the message
 * has no sentAt of its own. now_ms is the receive time. On error returns
 * HR_EINVAL with the reason in err->message. */
int hr_msg_parse(json_object *o, int type, size_t size, int64_t batch_sent_at_ms, int64_t now_ms,
                 hr_msg *out, hr_err *err);

/* Validates one message from its JSON text, without building a json-c
 * tree for it: the rules, limits and errors of hr_msg_parse (HR_EINVAL),
 * and those of hr_json_decode for malformed JSON (HR_EPARSE, err->message
 * "malformed JSON at byte N: ..."). Reads the members messages are known by
 * and the plain values under "properties" and "context" (what meters and
 * rules read); identify and group calls, whose traits are stored, get a
 * json-c tree as from hr_msg_parse. text (NUL-terminated at len) must
 * outlive out; out->text is text. Free with hr_msg_dispose, also on error. */
int hr_msg_scan(const char *text, size_t len, int type, int64_t batch_sent_at_ms, int64_t now_ms,
                hr_msg *out, hr_err *err);
/* n bytes that live as long as a scanned message (for a string the caller
 * gives it, such as a messageId of its own), or NULL: a scan keeps at
 * least 48 bytes free. */
char *hr_msg_room(hr_msg *m, size_t n);
/* Starts loading what hr_msg_value will read of a scanned message (it was
 * written by another thread's core): for a caller about to fold it. */
void hr_msg_prefetch(const hr_msg *m);
/* Frees what hr_msg_scan allocated (and a tree hr_msg_value built); the
 * message is empty after. A message from hr_msg_parse owns nothing. */
void hr_msg_dispose(hr_msg *m);

/* A value read from a message: its kind, its text (strings; numbers as
 * json-c prints them; "true"/"false"), and numbers as a double. */
typedef enum {
    HR_JV_ABSENT, HR_JV_NULL, HR_JV_BOOL, HR_JV_INT, HR_JV_DOUBLE, HR_JV_STRING, HR_JV_OBJECT,
    HR_JV_ARRAY
} hr_jv_type;
typedef struct hr_jval {
    hr_jv_type type;
    const char *str; /* objects and arrays: their JSON as json-c prints it */
    double num;
} hr_jval;

/* The value at a dotted path from the message root ("properties.rows",
 * "userId", "context.groupId"); HR_JV_ABSENT if there is none. Its text
 * lives as long as m. A scanned message whose path reaches past what the
 * scan kept gets its json-c tree here, once (owned by m): 0, or HR_ENOMEM. */
int hr_msg_value(hr_msg *m, const char *path, hr_jval *out);

/* Parses an RFC 3339 / ISO 8601 time to unix milliseconds; -1 if invalid. */
int hr_time_parse_ms(const char *s, int64_t *out_ms);

#endif
