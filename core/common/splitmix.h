/* splitmix.h - the one splitmix64 of ipcproof (Steele, Lea, Flood 2014: the generator of Java's
 * SplittableRandom): deterministic streams for payloads, fault plans, schedules and tests. Header
 * only, so that the preloaded runtimes (scheduler, fault interposer) and the harnesses use it
 * without linking anything. Seeds in repro lines depend on these exact outputs: never change them.
 * Not part of libipcproof. */
#ifndef IPCP_SPLITMIX_H
#define IPCP_SPLITMIX_H

#include <stdint.h>

#define SPLITMIX64_GAMMA 0x9e3779b97f4a7c15ull

/* The output for state x: the stream of seed s is splitmix64_mix(s), splitmix64_mix(s + GAMMA),
 * ... (also a good 64-bit mixing function on its own). */
static inline uint64_t splitmix64_mix(uint64_t x)
{
    x += SPLITMIX64_GAMMA;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The next value of the stream in *state. */
static inline uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t x = *state;
    *state = x + SPLITMIX64_GAMMA;
    return splitmix64_mix(x);
}

#endif
