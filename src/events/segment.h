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

/* A validated message. Strings and objects are borrowed from the json-c
 * object passed in and live as long as it does. */
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
} hr_msg;

const char *hr_msg_type_str(hr_msg_type t);
/* "track" -> HR_MSG_TRACK ...; -1 if unknown. */
int hr_msg_type_parse(const char *s);

/* Validates one message. type is the endpoint's (/v1/track: HR_MSG_TRACK),
 * or -1 to take it from the message's "type" (inside a batch). size is the
 * message's encoded size in bytes (checked against HR_MSG_MAX_BYTES).
 * batch_sent_at_ms is the batch's sentAt (0 if none), used when the message
 * has no sentAt of its own. now_ms is the receive time. On error returns
 * HR_EINVAL with the reason in err->message. */
int hr_msg_parse(json_object *o, int type, size_t size, int64_t batch_sent_at_ms, int64_t now_ms,
                 hr_msg *out, hr_err *err);

/* The value at a dotted path from the message root ("properties.rows",
 * "userId", "context.groupId"); NULL if absent. Borrowed. */
json_object *hr_msg_path(const hr_msg *m, const char *path);

/* Parses an RFC 3339 / ISO 8601 time to unix milliseconds; -1 if invalid. */
int hr_time_parse_ms(const char *s, int64_t *out_ms);

#endif
