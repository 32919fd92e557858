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

/* A string member, or NULL; an id given as a number is accepted as its text
 * (analytics libraries send numeric ids as they are). */
static int id_member(json_object *o, const char *k, const char **out, hr_err *err) {
    json_object *v = member(o, k);
    *out = NULL;
    if (!v || json_object_is_type(v, json_type_null)) return 0;
    if (json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int)) {
        const char *s = json_object_get_string(v);
        if (!*s) return 0;
        if (strlen(s) > 256) return hr_err_set(err, HR_EINVAL, "'%s' is longer than 256 characters", k);
        *out = s;
        return 0;
    }
    return hr_err_set(err, HR_EINVAL, "'%s' must be a string", k);
}

static int obj_member(json_object *o, const char *k, json_object **out, hr_err *err) {
    json_object *v = member(o, k);
    *out = NULL;
    if (!v || json_object_is_type(v, json_type_null)) return 0;
    if (!json_object_is_type(v, json_type_object))
        return hr_err_set(err, HR_EINVAL, "'%s' must be an object", k);
    *out = v;
    return 0;
}

static int time_member(json_object *o, const char *k, int64_t *out, hr_err *err) {
    json_object *v = member(o, k);
    *out = 0;
    if (!v || json_object_is_type(v, json_type_null)) return 0;
    if (!json_object_is_type(v, json_type_string) || hr_time_parse_ms(json_object_get_string(v), out))
        return hr_err_set(err, HR_EINVAL, "'%s' must be an ISO 8601 time", k);
    return 0;
}

int hr_msg_parse(json_object *o, int type, size_t size, int64_t batch_sent_at_ms, int64_t now_ms,
                 hr_msg *out, hr_err *err) {
    int rc;
    memset(out, 0, sizeof *out);
    if (!json_object_is_type(o, json_type_object))
        return hr_err_set(err, HR_EINVAL, "a message must be a JSON object");
    if (size > HR_MSG_MAX_BYTES)
        return hr_err_set(err, HR_EINVAL, "message is %zu bytes: the limit is 32 KB", size);
    json_object *t = member(o, "type");
    if (type < 0) {
        type = t && json_object_is_type(t, json_type_string)
                   ? hr_msg_type_parse(json_object_get_string(t)) : -1;
        if (type < 0)
            return hr_err_set(err, HR_EINVAL, "'type' must be one of track, identify, group, "
                                              "page, screen");
    } else if (t && json_object_is_type(t, json_type_string) &&
               hr_msg_type_parse(json_object_get_string(t)) != type) {
        return hr_err_set(err, HR_EINVAL, "'type' is '%s' but this is the %s endpoint",
                          json_object_get_string(t), type_names[type]);
    }
    out->type = (hr_msg_type)type;
    out->msg = o;
    if ((rc = id_member(o, "messageId", &out->message_id, err)) ||
        (rc = id_member(o, "userId", &out->user_id, err)) ||
        (rc = id_member(o, "anonymousId", &out->anonymous_id, err)) ||
        (rc = obj_member(o, "properties", &out->properties, err)) ||
        (rc = obj_member(o, "traits", &out->traits, err)) ||
        (rc = obj_member(o, "context", &out->context, err)))
        return rc;
    if (!out->user_id && !out->anonymous_id)
        return hr_err_set(err, HR_EINVAL, "a message needs 'userId' or 'anonymousId'");
    switch (out->type) {
    case HR_MSG_TRACK:
        if ((rc = id_member(o, "event", &out->event, err))) return rc;
        if (!out->event) return hr_err_set(err, HR_EINVAL, "a track call needs 'event'");
        break;
    case HR_MSG_GROUP:
        if ((rc = id_member(o, "groupId", &out->group_id, err))) return rc;
        if (!out->group_id) return hr_err_set(err, HR_EINVAL, "a group call needs 'groupId'");
        break;
    case HR_MSG_PAGE:
    case HR_MSG_SCREEN:
        if ((rc = id_member(o, "name", &out->event, err))) return rc;
        break;
    default:
        break;
    }
    /* the account: B2B context first, then the event's own property */
    const char *acct = NULL;
    if ((rc = id_member(out->context, "groupId", &acct, err))) return rc;
    if (!acct && (rc = id_member(out->properties, "accountId", &acct, err))) return rc;
    if (!acct && out->type == HR_MSG_GROUP) acct = out->group_id;
    out->account = acct;
    int64_t ts, sent;
    if ((rc = time_member(o, "timestamp", &ts, err)) || (rc = time_member(o, "sentAt", &sent, err)))
        return rc;
    if (!ts && (rc = time_member(o, "originalTimestamp", &ts, err))) return rc;
    if (!sent) sent = batch_sent_at_ms;
    if (!ts)
        ts = now_ms;
    else if (sent)
        ts = now_ms - (sent - ts); /* the client's clock offset, taken off */
    if (ts > now_ms + HR_MSG_MAX_FUTURE_MS)
        return hr_err_set(err, HR_EINVAL, "'timestamp' is more than 24 hours in the future");
    out->timestamp_ms = ts;
    return 0;
}

json_object *hr_msg_path(const hr_msg *m, const char *path) {
    json_object *cur = m->msg;
    char seg[128];
    const char *p = path;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg) return NULL;
        memcpy(seg, p, n);
        seg[n] = 0;
        cur = member(cur, seg);
        p += n;
        if (*p == '.') p++;
    }
    return cur;
}
