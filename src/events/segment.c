/* segment.c: Segment message validation.
 *
 * The rule that matters most: an event's time is when it happened on the
 * client, corrected for the client's clock. Segment's correction is
 * receivedAt - (sentAt - timestamp): the offset between the client's clock
 * and ours, measured at send time, is taken off the event's own timestamp.
 * Late events keep their own (corrected) time, so they land in their period. */
#include "segment.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "intern.h"
#include "map.h"
#include "msg_int.h"
#include "timeutil.h"

static const char *type_names[] = {"track", "identify", "group", "page", "screen"};

const char *hr_msg_type_str(hr_msg_type t) {
    return (unsigned)t < 5 ? type_names[t] : "?";
}

int hr_msg_type_parse(const char *s) {
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, type_names[i])) return i;
    return -1;
}

int hr_time_parse_ms(const char *s, int64_t *out_ms) {
    int64_t sec;
    if (!s || hr_time_parse(s, &sec)) return -1;
    int64_t ms = 0;
    /* the fraction, if any: after "YYYY-MM-DDTHH:MM:SS" */
    if (strlen(s) > 19 && s[19] == '.') {
        int digits = 0;
        for (const char *p = s + 20; isdigit((unsigned char)*p) && digits < 3; p++, digits++)
            ms = ms * 10 + (*p - '0');
        while (digits++ < 3) ms *= 10;
    }
    *out_ms = sec * 1000 + ms;
    return 0;
}

static json_object *member(json_object *o, const char *k) {
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

/* A string member, or NULL; an id given as an integer is accepted as its
 * text (analytics libraries send numeric ids as they are). */
static int id_field(const hr_mfield *f, const char *k, const char **out, hr_err *err) {
    *out = NULL;
    if (f->kind == HR_JV_ABSENT || f->kind == HR_JV_NULL) return 0;
    if (f->kind == HR_JV_STRING || f->kind == HR_JV_INT) {
        if (!*f->s) return 0;
        if (strlen(f->s) > 256) return hr_err_set(err, HR_EINVAL, "'%s' is longer than 256 characters", k);
        *out = f->s;
        return 0;
    }
    return hr_err_set(err, HR_EINVAL, "'%s' must be a string", k);
}

static int obj_field(const hr_mfield *f, const char *k, hr_err *err) {
    if (f->kind == HR_JV_ABSENT || f->kind == HR_JV_NULL || f->kind == HR_JV_OBJECT) return 0;
    return hr_err_set(err, HR_EINVAL, "'%s' must be an object", k);
}

static int time_field(const hr_mfield *f, const char *k, int64_t *out, hr_err *err) {
    *out = 0;
    if (f->kind == HR_JV_ABSENT || f->kind == HR_JV_NULL) return 0;
    if (f->kind != HR_JV_STRING || hr_time_parse_ms(f->s, out))
        return hr_err_set(err, HR_EINVAL, "'%s' must be an ISO 8601 time", k);
    return 0;
}

int hr_msg_finish(const hr_msg_fields *f, int type, size_t size, int64_t batch_sent_at_ms,
                  int64_t now_ms, hr_msg *out, hr_err *err) {
    int rc;
    if (size > HR_MSG_MAX_BYTES)
        return hr_err_set(err, HR_EINVAL, "message is %zu bytes: the limit is 32 KB", size);
    int own = f->type.kind == HR_JV_STRING ? hr_msg_type_parse(f->type.s) : -1;
    if (type == HR_MSG_OWN_TYPE_OR_TRACK && (f->type.kind == HR_JV_ABSENT || f->type.kind == HR_JV_NULL)) {
        type = HR_MSG_TRACK;
    } else if (type < 0) {
        if ((type = own) < 0)
            return hr_err_set(err, HR_EINVAL, "'type' must be one of track, identify, group, "
                                              "page, screen");
    } else if (f->type.kind == HR_JV_STRING && own != type) {
        return hr_err_set(err, HR_EINVAL, "'type' is '%s' but this is the %s endpoint", f->type.s,
                          type_names[type]);
    }
    out->type = (hr_msg_type)type;
    if ((rc = id_field(&f->message_id, "messageId", &out->message_id, err)) ||
        (rc = id_field(&f->user_id, "userId", &out->user_id, err)) ||
        (rc = id_field(&f->anonymous_id, "anonymousId", &out->anonymous_id, err)) ||
        (rc = obj_field(&f->properties, "properties", err)) ||
        (rc = obj_field(&f->traits, "traits", err)) ||
        (rc = obj_field(&f->context, "context", err)))
        return rc;
    if (!out->user_id && !out->anonymous_id)
        return hr_err_set(err, HR_EINVAL, "a message needs 'userId' or 'anonymousId'");
    /* while the id is in cache: the group commit knows ids by this hash */
    if (out->message_id) out->id_hash = hr_hash(out->message_id, strlen(out->message_id));
    switch (out->type) {
    case HR_MSG_TRACK:
        if ((rc = id_field(&f->event, "event", &out->event, err))) return rc;
        if (!out->event) return hr_err_set(err, HR_EINVAL, "a track call needs 'event'");
        break;
    case HR_MSG_GROUP:
        if ((rc = id_field(&f->group_id, "groupId", &out->group_id, err))) return rc;
        if (!out->group_id) return hr_err_set(err, HR_EINVAL, "a group call needs 'groupId'");
        break;
    case HR_MSG_PAGE:
    case HR_MSG_SCREEN:
        if ((rc = id_field(&f->name, "name", &out->event, err))) return rc;
        break;
    default:
        break;
    }
    /* the account: B2B context first, then the event's own property */
    const char *acct = NULL;
    if ((rc = id_field(&f->context_group_id, "groupId", &acct, err))) return rc;
    if (!acct && (rc = id_field(&f->properties_account_id, "accountId", &acct, err))) return rc;
    if (!acct && out->type == HR_MSG_GROUP) acct = out->group_id;
    out->account = acct;
    int64_t ts, sent;
    if ((rc = time_field(&f->timestamp, "timestamp", &ts, err)) ||
        (rc = time_field(&f->sent_at, "sentAt", &sent, err)))
        return rc;
    if (!ts && (rc = time_field(&f->original_timestamp, "originalTimestamp", &ts, err))) return rc;
    if (!sent) sent = batch_sent_at_ms;
    if (!ts)
        ts = now_ms;
    else if (sent)
        ts = now_ms - (sent - ts); /* the client's clock offset, taken off */
    if (ts > now_ms + HR_MSG_MAX_FUTURE_MS)
        return hr_err_set(err, HR_EINVAL, "'timestamp' is more than 24 hours in the future");
    out->timestamp_ms = ts;
    /* a valid track call's event, interned while it is in cache (NULL:
     * the caller's fallback) */
    if (out->type == HR_MSG_TRACK) out->ievent = hr_intern(out->event);
    return 0;
}

/* A json-c value's kind. json-c holds JSON null as NULL, as it does a
 * member that is not there: both read as absent. */
static hr_jv_type kind_of(json_object *v) {
    switch (v ? json_object_get_type(v) : json_type_null) {
    case json_type_null: return HR_JV_ABSENT;
    case json_type_boolean: return HR_JV_BOOL;
    case json_type_double: return HR_JV_DOUBLE;
    case json_type_int: return HR_JV_INT;
    case json_type_string: return HR_JV_STRING;
    case json_type_object: return HR_JV_OBJECT;
    case json_type_array: return HR_JV_ARRAY;
    }
    return HR_JV_ABSENT;
}

/* A json-c value as a field: strings and integers with their text. */
static hr_mfield field_of(json_object *v) {
    hr_jv_type k = kind_of(v);
    return (hr_mfield){k, k == HR_JV_INT || k == HR_JV_STRING ? json_object_get_string(v) : NULL};
}

int hr_msg_parse(json_object *o, int type, size_t size, int64_t batch_sent_at_ms, int64_t now_ms,
                 hr_msg *out, hr_err *err) {
    memset(out, 0, sizeof *out);
    if (!json_object_is_type(o, json_type_object))
        return hr_err_set(err, HR_EINVAL, "a message must be a JSON object");
    hr_msg_fields f = {
#define READ_MEMBER(m, name) .m = field_of(member(o, name)),
        HR_MSG_MEMBERS(READ_MEMBER)
#undef READ_MEMBER
    };
    out->msg = o;
    if (f.properties.kind == HR_JV_OBJECT) {
        out->properties = member(o, "properties");
        f.properties_account_id = field_of(member(out->properties, "accountId"));
    }
    if (f.traits.kind == HR_JV_OBJECT) out->traits = member(o, "traits");
    if (f.context.kind == HR_JV_OBJECT) {
        out->context = member(o, "context");
        f.context_group_id = field_of(member(out->context, "groupId"));
    }
    return hr_msg_finish(&f, type, size, batch_sent_at_ms, now_ms, out, err);
}

void hr_json_value_at(json_object *root, const char *path, hr_jval *out) {
    json_object *cur = root;
    char seg[128];
    const char *p = path;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg) {
            cur = NULL;
            break;
        }
        memcpy(seg, p, n);
        seg[n] = 0;
        cur = member(cur, seg);
        p += n;
        if (*p == '.') p++;
    }
    *out = (hr_jval){kind_of(cur), NULL, 0};
    if (out->type == HR_JV_ABSENT) return;
    out->str = json_object_get_string(cur);
    if (out->type == HR_JV_INT || out->type == HR_JV_DOUBLE) out->num = json_object_get_double(cur);
}
