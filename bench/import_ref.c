/* import_ref.c: the reference for bench/import.sh: json-c parsing every
 * line of a JSON-lines file (one reused tokener, each object freed), on
 * one core: the floor of any import that reads events with json-c.
 *
 *   bench_import_ref FILE.jsonl
 *
 * Prints lines=N seconds=S lines_per_s=R. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bench_import_ref FILE.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    json_tokener *tok = json_tokener_new();
    char *ln = NULL;
    size_t cap = 0;
    ssize_t n;
    long long lines = 0, bad = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((n = getline(&ln, &cap, f)) >= 0) {
        json_tokener_reset(tok);
        json_object *o = json_tokener_parse_ex(tok, ln, (int)n);
        if (!o || !json_object_is_type(o, json_type_object)) bad++;
        json_object_put(o);
        lines++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("lines=%lld bad=%lld seconds=%.3f lines_per_s=%.0f\n", lines, bad, s,
           s > 0 ? (double)lines / s : 0);
    json_tokener_free(tok);
    free(ln);
    fclose(f);
    return 0;
}
