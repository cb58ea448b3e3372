/* A thread reads a block that main freed (ThreadSanitizer: heap-use-after-free). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

int *shared;

static void *reader(void *arg)
{
    (void)arg;
    usleep(20000);
    return (void *)(long)shared[0];
}

int main(void)
{
    shared = malloc(16);
    shared[0] = 1;
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    free(shared);
    pthread_join(t, NULL);
    return 0;
}
