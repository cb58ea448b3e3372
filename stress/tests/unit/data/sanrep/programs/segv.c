/* A write to address 0x10: SEGV (AddressSanitizer or ThreadSanitizer DEADLYSIGNAL). */
__attribute__((noinline)) void poke(int *p)
{
    *p = 42;
}

int main(int argc, char **argv)
{
    (void)argv;
    poke((int *)(long)(argc * 0x10));
    return 0;
}
