/* utf8.h: UTF-8 validation, one definition for every parser. */
#ifndef HR_UTF8_H
#define HR_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence at p (at most n bytes, n >= 1), 0 if it is
 * not valid UTF-8: bad lead or continuation bytes, overlong forms,
 * surrogates and code points past U+10FFFF. The code point goes to *cp
 * when cp is not NULL. */
size_t hr_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

#endif
