/* msg_int.h: what hr_msg_parse (a json-c tree) and hr_msg_scan (JSON text)
 * share: the members a message is known by, as either reader found them,
 * and the checks that make them an hr_msg. Internal to src/events. */
#ifndef HR_MSG_INT_H
#define HR_MSG_INT_H

#include "segment.h"

/* One member: its kind and, for strings and integers, its text (integers as
 * json-c prints them). */
typedef struct hr_mfield {
    hr_jv_type kind;
    const char *s;
} hr_mfield;

/* The root members a message is known by: the hr_msg_fields member each
 * goes to, and its JSON name. The one list both readers and the struct
 * are made from (X(member, "name")). */
#define HR_MSG_MEMBERS(X)                                                               \
    X(type, "type") X(message_id, "messageId") X(user_id, "userId")                    \
    X(anonymous_id, "anonymousId") X(event, "event") X(name, "name")                   \
    X(group_id, "groupId") X(timestamp, "timestamp") X(sent_at, "sentAt")              \
    X(original_timestamp, "originalTimestamp") X(properties, "properties")            \
    X(traits, "traits") X(context, "context")

typedef struct hr_msg_fields {
#define HR_MSG_FIELD(member, name) hr_mfield member;
    HR_MSG_MEMBERS(HR_MSG_FIELD) /* properties, traits, context: their kinds only */
#undef HR_MSG_FIELD
    hr_mfield context_group_id, properties_account_id;
} hr_msg_fields;

/* Checks f as hr_msg_parse does and fills out's ids, type, account and
 * time (out is zeroed by the caller, which sets its objects and text). */
int hr_msg_finish(const hr_msg_fields *f, int type, size_t size, int64_t batch_sent_at_ms,
                  int64_t now_ms, hr_msg *out, hr_err *err);

/* The value at path in a json-c tree (hr_msg_value's reading of a tree). */
void hr_json_value_at(json_object *root, const char *path, hr_jval *out);

#endif
