/* Unit tests of the LSan-style suppression parser and matcher (tools/suppress.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "suppress.h"

Test(suppress, substring_without_wildcards) {
    cr_assert(ml_sup_match_pattern("leak_three", "leak_three"));
    cr_assert(ml_sup_match_pattern("three", "leak_three"), "LSan: a plain pattern is a substring");
    cr_assert(ml_sup_match_pattern("libfoo.so", "/usr/lib/x86_64-linux-gnu/libfoo.so.1"));
    cr_assert_not(ml_sup_match_pattern("four", "leak_three"));
    cr_assert_not(ml_sup_match_pattern("x", NULL));
    cr_assert_not(ml_sup_match_pattern("x", ""));
}

Test(suppress, wildcards_and_anchors) {
    cr_assert(ml_sup_match_pattern("leak_*", "leak_three"));
    cr_assert(ml_sup_match_pattern("l*k*e", "leak_three"));
    cr_assert(ml_sup_match_pattern("*", "anything"));
    cr_assert(ml_sup_match_pattern("^leak", "leak_three"));
    cr_assert_not(ml_sup_match_pattern("^three", "leak_three"));
    cr_assert(ml_sup_match_pattern("three$", "leak_three"));
    cr_assert_not(ml_sup_match_pattern("leak$", "leak_three"));
    cr_assert(ml_sup_match_pattern("^leak_three$", "leak_three"));
    cr_assert(ml_sup_match_pattern("a*b$", "abxb"), "backtracks where LSan's greedy scan would not");
    cr_assert(ml_sup_match_pattern("std::vector<*>::push_back", "std::vector<int, std::allocator<int> >::push_back(int const&)"));
    cr_assert_not(ml_sup_match_pattern("^a*z$", "abc"));
}

Test(suppress, parse_rules_comments_blank_lines) {
    ml_suppressions s;
    char err[256] = "";
    const char *text = "# a comment\n\n   leak:leak_three  \nleak:*libfoo.so*\r\n  # indented comment\n";
    cr_assert(ml_sup_parse(&s, "sup.txt", text, err, sizeof err), "%s", err);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.rules[0].pattern, "leak_three");
    cr_assert_eq(s.rules[0].line, 3);
    cr_assert_str_eq(s.rules[1].pattern, "*libfoo.so*");
    cr_assert_eq(s.rules[1].line, 4);
    ml_sup_free(&s);
}

Test(suppress, unknown_type_names_the_line) {
    ml_suppressions s;
    char err[256] = "";
    cr_assert_not(ml_sup_parse(&s, "sup.txt", "leak:a\n\ncalled_from_lib:libz.so\n", err, sizeof err));
    cr_assert_str_eq(err, "sup.txt:3: unknown suppression type 'called_from_lib'");
    cr_assert_not(ml_sup_parse(&s, "sup.txt", "garbage\n", err, sizeof err));
    cr_assert_str_eq(err, "sup.txt:1: unknown suppression type 'garbage'");
    cr_assert_not(ml_sup_parse(&s, "sup.txt", "leak:\n", err, sizeof err));
    cr_assert(strstr(err, "sup.txt:1: empty pattern"), "%s", err);
}

Test(suppress, match_any_frame_field) {
    ml_suppressions s;
    char err[256] = "";
    cr_assert(ml_sup_parse(&s, "s", "leak:helper.c\nleak:^libbar\nleak:make_*\n", err, sizeof err));
    ml_text_frame by_file[] = {{"f", "/src/helper.c", "/usr/bin/prog"}};
    ml_text_frame by_object[] = {{NULL, NULL, "/usr/lib/libbar.so"}, {"main", "m.c", "/usr/bin/p"}};
    ml_text_frame by_function[] = {{"g", "g.c", "/p"}, {"make_widget", "w.c", "/p"}};
    ml_text_frame none[] = {{"g", "g.c", "/p"}, {NULL, NULL, NULL}};
    cr_assert_eq(ml_sup_match(&s, by_file, 1), &s.rules[0]);
    cr_assert_null(ml_sup_match(&s, by_object, 2), "^libbar is anchored: the object is a full path");
    cr_assert_eq(ml_sup_match(&s, by_function, 2), &s.rules[2]);
    cr_assert_null(ml_sup_match(&s, none, 2));
    ml_sup_free(&s);
}
