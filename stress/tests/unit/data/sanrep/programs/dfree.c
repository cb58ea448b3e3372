/* Frees a block twice (AddressSanitizer: attempting double-free). */
#include <stdlib.h>

__attribute__((noinline)) void drop(void *p)
{
    free(p);
}

int main(void)
{
    void *p = malloc(8);
    drop(p);
    drop(p);
    return 0;
}
