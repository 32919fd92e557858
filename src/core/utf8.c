/* utf8.c: UTF-8 validation shared by the YAML reader, the rule lexer and
 * the template engine, so that all three agree on what is text. */
#include "utf8.h"

size_t hr_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
    size_t len;
    uint32_t c, min;
    if (p[0] < 0x80) {
        if (cp) *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2, c = p[0] & 0x1f, min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3, c = p[0] & 0x0f, min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4, c = p[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    if (cp) *cp = c;
    return len;
}
