/* main.c - a FetchContent consumer calls the library: the text of one error code. */
#include <ipcproof/err.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    const char *s = ipcp_strerror(0);
    printf("ipcp_strerror(0): %s\n", s);
    return s != NULL && strlen(s) > 0 ? 0 : 1;
}
