/* The library of racelib.c. */
int shared_counter;

__attribute__((noinline)) void lib_bump(void)
{
    shared_counter++;
}
