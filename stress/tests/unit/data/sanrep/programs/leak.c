/* Loses the only pointer to a block (LeakSanitizer: detected memory leaks). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void *make(size_t n)
{
    return malloc(n);
}

int main(void)
{
    void *p = make(77);
    printf("%p\n", p);
    p = NULL;
    return 0;
}
