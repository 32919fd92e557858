/* intern.c: a mutex-guarded map. Interning happens on writes and at load,
 * never on the decision path, so a plain lock is enough. */
#include "intern.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hr_map *table;

const char *hr_intern(const char *s) {
    if (!s) return NULL;
    const char *out = NULL;
    pthread_mutex_lock(&mu);
    if (!table && !(table = hr_map_new(256))) goto out;
    out = hr_map_get(table, s);
    if (!out) {
        char *copy = strdup(s);
        int err = 0;
        if (copy) hr_map_put(table, copy, copy, &err);
        if (!copy || err) {
            free(copy);
            goto out;
        }
        out = copy;
    }
out:
    pthread_mutex_unlock(&mu);
    return out;
}
