/* fuzz/fuzz_recipe.c — libFuzzer target: the recipe parser and schema check
 * (recipes/recipe.c) on arbitrary bytes, files not required to exist. Any
 * input must give either a recipe or one error message, never a crash, a leak
 * or unbounded work (alias bombs are capped by node count and depth). */
#include <stddef.h>
#include <stdint.h>

#include "recipes/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp_recipe *r = NULL;
    mp_error err = {0};
    const char *sets[] = {"criterion.thresholds=[0.5]"};
    mp_recipe_overrides ov = {.limit = (size & 1) ? 3 : 0, .sets = sets, .n_sets = size & 2 ? 1 : 0};
    if (mp_recipe_parse("fuzz.yaml", (const char *)data, size, &ov, 0, &r, &err) == 0) mp_recipe_free(r);
    return 0;
}
