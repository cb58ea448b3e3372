/* Two threads increment a plain int: a data race (ThreadSanitizer). */
#include <pthread.h>
#include <stdio.h>

int counter;

__attribute__((noinline)) void bump(void)
{
    counter++;
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        bump();
    return NULL;
}

int main(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("counter %d\n", counter);
    return 0;
}
