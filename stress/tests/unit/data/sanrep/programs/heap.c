/* Reads one byte past a 16-byte block (AddressSanitizer: heap-buffer-overflow). */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int peek(const char *p, int i)
{
    return p[i];
}

int main(int argc, char **argv)
{
    (void)argv;
    char *p = malloc(16);
    memset(p, 1, 16);
    int r = peek(p, 15 + argc);
    free(p);
    return r;
}
