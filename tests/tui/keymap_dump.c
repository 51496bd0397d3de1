/* keymap_dump.c: prints the console's keymap (tui_keymap_dump) for check-man-keys.py. */
#include <stdio.h>

#include "tds/tui.h"

int main(void)
{
    tui_keymap_dump(stdout);
    return 0;
}
