/* Unit tests of leak baseline keying and files (tools/baseline.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline.h"

static char *key_of(const char *cls, const char *kind, const ml_text_frame *f, size_t n)
{
    json_t *e = ml_baseline_entry(cls, kind, f, n);
    cr_assert_not_null(e);
    char *k = ml_baseline_key_of(e);
    json_decref(e);
    cr_assert_not_null(k);
    return k;
}

Test(baseline, key_ignores_lines_paths_and_runtime_frames) {
    ml_text_frame a[] = {{"malloc_hook", NULL, "/build/libmemlens.so"},
                         {"leak_three", "/home/ci/build1/src/leaks.c", "/home/ci/build1/prog"},
                         {"main", "/home/ci/build1/src/leaks.c", "/home/ci/build1/prog"},
                         {"__libc_start_main", "libc-start.c", "/lib/x86_64-linux-gnu/libc.so.6"}};
    ml_text_frame b[] = {{"leak_three", "/tmp/other/src/leaks.c", "/tmp/other/prog"},
                         {"main", "leaks.c", "/tmp/other/prog"}};
    char *ka = key_of("definite", "malloc", a, 4), *kb = key_of("definite", "malloc", b, 2);
    cr_assert_str_eq(ka, kb, "same functions and file names: same key after a rebuild elsewhere");
    char *kc = key_of("possible", "malloc", b, 2), *kd = key_of("definite", "calloc", b, 2);
    cr_assert_str_neq(ka, kc, "the class is part of the key");
    cr_assert_str_neq(ka, kd, "the kind is part of the key");
    free(ka); free(kb); free(kc); free(kd);
}

Test(baseline, key_keeps_eight_user_frames) {
    ml_text_frame f[12];
    char names[12][8];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        f[i] = (ml_text_frame){names[i], "x.c", "/p"};
    }
    json_t *e = ml_baseline_entry("definite", "malloc", f, 12);
    cr_assert_eq(json_array_size(json_object_get(e, "stack")), ML_BASELINE_FRAMES);
    json_decref(e);
    ml_text_frame g[12];
    memcpy(g, f, sizeof f);
    g[10].function = "changed"; /* beyond the 8 kept frames: same key */
    char *k1 = key_of("definite", "malloc", f, 12), *k2 = key_of("definite", "malloc", g, 12);
    cr_assert_str_eq(k1, k2);
    free(k1); free(k2);
}

Test(baseline, unnamed_frames_key_by_object) {
    ml_text_frame a[] = {{NULL, NULL, "/opt/a/libplugin.so"}, {"main", "m.c", "/p"}};
    ml_text_frame b[] = {{NULL, NULL, "/opt/b/libplugin.so"}, {"main", "m.c", "/p"}};
    ml_text_frame c[] = {{NULL, NULL, "/opt/b/libother.so"}, {"main", "m.c", "/p"}};
    char *ka = key_of("definite", "malloc", a, 2), *kb = key_of("definite", "malloc", b, 2);
    char *kc = key_of("definite", "malloc", c, 2);
    cr_assert_str_eq(ka, kb);
    cr_assert_str_neq(ka, kc);
    free(ka); free(kb); free(kc);
}

Test(baseline, write_then_load_roundtrip) {
    char dir[] = "/tmp/ml-baseline-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/base.json", dir);
    ml_text_frame f[] = {{"leak_three", "/src/leaks.c", "/p"}};
    json_t *leaks = json_array();
    json_array_append_new(leaks, ml_baseline_entry("definite", "malloc", f, 1));
    char err[512] = "";
    cr_assert(ml_baseline_write(path, leaks, err, sizeof err), "%s", err);
    json_decref(leaks);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    ml_baseline b;
    cr_assert(ml_baseline_load(&b, path, err, sizeof err), "%s", err);
    cr_assert_eq(b.n, 1);
    char *k = key_of("definite", "malloc", f, 1);
    cr_assert(ml_baseline_contains(&b, k));
    free(k);
    ml_baseline_free(&b);

    char link[256];
    snprintf(link, sizeof link, "%s/link.json", dir);
    cr_assert_eq(symlink(path, link), 0);
    leaks = json_array();
    cr_assert_not(ml_baseline_write(link, leaks, err, sizeof err), "symlinks are not followed");
    json_decref(leaks);
    unlink(link);
    unlink(path);
    rmdir(dir);
}

Test(baseline, malformed_files_give_one_line) {
    char path[] = "/tmp/ml-baseline-bad-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *bad = "{\"format\":\"memlens-baseline\",\"version\":1,\"leaks\":[{\"class\":\"lost\","
                      "\"kind\":\"malloc\",\"stack\":[]}]}";
    cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    ml_baseline b;
    char err[512] = "";
    cr_assert_not(ml_baseline_load(&b, path, err, sizeof err));
    cr_assert(strstr(err, "not a memlens baseline") && !strchr(err, '\n'), "%s", err);
    FILE *f = fopen(path, "w");
    fputs("{\"format\":\"other\"}", f);
    fclose(f);
    cr_assert_not(ml_baseline_load(&b, path, err, sizeof err));
    cr_assert(strstr(err, "\"format\""), "%s", err);
    unlink(path);
}
