/* hugemem.c: see hugemem.h. The mapping is made 2 MiB larger than asked
 * and trimmed to an aligned window, so that every 2 MiB of it can be one
 * huge page. */
#include "hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

void *hr_huge_alloc(size_t n) {
    if (n < HR_HUGE_PAGE) return calloc(1, n ? n : 1);
    size_t len = n + HR_HUGE_PAGE;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)(((uintptr_t)p + HR_HUGE_PAGE - 1) & ~(uintptr_t)(HR_HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    size_t tail = (size_t)(p + len - (a + n));
    if (tail) munmap(a + n, tail);
#ifdef MADV_HUGEPAGE
    madvise(a, n, MADV_HUGEPAGE);
#endif
    return a;
}

void hr_huge_free(void *p, size_t n) {
    if (!p) return;
    if (n < HR_HUGE_PAGE)
        free(p);
    else
        munmap(p, n);
}
