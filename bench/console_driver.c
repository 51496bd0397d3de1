/*
 * console_driver.c: the query half of bench/console.  Loads a configuration
 * and runs every pane's refresh queries (tui_data_bench), printing each
 * query's time and EXPLAIN ANALYZE of any slower than the target.
 *   console_driver CONFIG [ROUNDS] [SLOW_MS]
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/tui/tui_internal.h"
#include "tds/config.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: console_driver CONFIG [ROUNDS] [SLOW_MS]\n");
        return 2;
    }
    struct config_loaded cl;
    struct config_errors errs = {0};
    if (config_load(argv[1], &cl, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msg[i]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    double slow = argc > 3 ? atof(argv[3]) : 50;
    int rc = tui_data_bench(&cl.cfg, rounds, slow, stdout);
    config_loaded_free(&cl);
    config_errors_free(&errs);
    return rc ? 1 : 0;
}
