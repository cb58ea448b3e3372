/* The racy increment lives in a shared library (frames with a "(lib.so+0x...)" module). */
#include <pthread.h>

void lib_bump(void);

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        lib_bump();
    return NULL;
}

int main(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return 0;
}
