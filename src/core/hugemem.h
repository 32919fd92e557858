/* hugemem.h: zeroed memory for large arrays read at random (hash tables,
 * account slabs), offered to transparent huge pages. A random access into
 * hundreds of MiB otherwise misses the TLB as well as the cache, and on a
 * VM (nested paging) that walk costs about as much as the miss. */
#ifndef HR_HUGEMEM_H
#define HR_HUGEMEM_H

#include <stddef.h>

#define HR_HUGE_PAGE ((size_t)2 << 20)

/* n zeroed bytes: from 2 MiB on, mapped on a 2 MiB boundary and advised as
 * huge pages (THP is often "madvise" only); below that, calloc. NULL on
 * OOM. Free with hr_huge_free and the same n. */
void *hr_huge_alloc(size_t n);
void hr_huge_free(void *p, size_t n); /* accepts NULL */

#endif
