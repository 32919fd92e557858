/* jsonbody.h: decoding a request body into a json-c object, with the byte
 * offset of the first problem so a client can find it. */
#ifndef HR_JSONBODY_H
#define HR_JSONBODY_H

#include <json-c/json.h>
#include <stddef.h>

/* Parses exactly one JSON value (white space around it allowed). On
 * success returns 0 and *out (caller puts it); on failure returns HR_EPARSE
 * with *offset at the problem and msg (at least 128 bytes) describing it.
 * An empty body is an error. */
int hr_json_decode(const char *body, size_t len, json_object **out, size_t *offset, char *msg,
                   size_t msglen);

#endif
