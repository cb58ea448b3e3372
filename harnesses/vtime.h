/* vtime.h - virtual time for a fuzz target whose code under test runs in one thread and may wait
 * for a peer that is not running (vtime.c).
 *
 * While fz_vtime_on() is in force in a thread, that thread's clocks (clock_gettime of every clock
 * but the CPU-time ones) read a virtual time, and its futex calls through syscall() are answered
 * as the kernel would answer them with no other thread to wake it: FUTEX_WAIT returns EAGAIN at
 * once when the word differs from the value, else the virtual time moves to the end of the
 * timeout and it returns ETIMEDOUT; FUTEX_WAKE wakes nobody. A wait of 1 ms then costs no
 * wall-clock time and ends exactly as the real one does. A FUTEX_WAIT without a timeout would
 * sleep for ever: a finding (abort). Other threads, and this one after fz_vtime_off(), use the
 * real clocks and the real syscall. */
#ifndef IPCP_HARNESS_VTIME_H
#define IPCP_HARNESS_VTIME_H

/* The calling thread's clocks and futex calls become virtual; restart: the virtual clock starts
 * again at 1000 s (at the start of an input, so that every run of it sees the same times), else
 * it goes on from where it was. */
void fz_vtime_on(int restart);
/* The calling thread uses the real clocks and futex again (before it starts a thread that may
 * wake it, or waits for one). */
void fz_vtime_off(void);

#endif
