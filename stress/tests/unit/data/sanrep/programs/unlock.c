/* Unlocks a mutex nobody locked (ThreadSanitizer: unlock of an unlocked mutex). */
#include <pthread.h>

pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) void release(void)
{
    pthread_mutex_unlock(&m);
}

int main(void)
{
    release();
    return 0;
}
