// good_cpp_ticket_lock.cpp - a plugin written in C++: a ticket lock on std::atomic counters in a
// MAP_SHARED page, so it works between threads and between forked processes alike.
//
//   ipcproof validate --plugin-src good_cpp_ticket_lock.cpp --cflags -std=c++17
//
// validate builds C++ sources with the C++ driver (libstdc++ is linked in) and, for the
// thread-mode cases, a ThreadSanitizer variant: std::atomic is visible to TSan, so no
// annotation is needed (compare good_asm_spinlock.c). A timed-out lock() keeps its ticket in the
// handle and waits for the same turn on the next call; close() gives up a turn it still holds.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <new>
#include <thread>

#include <sys/mman.h>

#include <ipcproof/plugin.h>

namespace {

struct Shared {
    std::atomic<uint32_t> next{0};    // the next ticket to hand out
    std::atomic<uint32_t> serving{0}; // the ticket that may enter
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "the counters live in shared memory");

struct Handle {
    Shared *sh;
    bool waiting = false; // holds a ticket from a lock() that timed out
    uint32_t ticket = 0;
};

int create(const ipcp_lock_cfg *cfg, void **ctx)
{
    if (cfg->options != nullptr && cfg->options[0] != '\0') return -EINVAL;
    void *m = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED) return -errno;
    *ctx = new (m) Shared;
    return 0;
}

int open_handle(void *ctx, uint32_t, void **h)
{
    Handle *x = new (std::nothrow) Handle;
    if (x == nullptr) return -ENOMEM;
    x->sh = static_cast<Shared *>(ctx);
    *h = x;
    return 0;
}

int lock(void *h, int timeout_ms)
{
    Handle *x = static_cast<Handle *>(h);
    if (!x->waiting) {
        x->ticket = x->sh->next.fetch_add(1, std::memory_order_relaxed);
        x->waiting = true;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (unsigned spins = 0;; spins++) {
        if (x->sh->serving.load(std::memory_order_acquire) == x->ticket) {
            x->waiting = false;
            return 0;
        }
        if (spins > 64) {
            if (std::chrono::steady_clock::now() >= deadline) return -ETIMEDOUT;
            std::this_thread::yield();
        }
    }
}

int unlock(void *h)
{
    Handle *x = static_cast<Handle *>(h);
    x->sh->serving.store(x->ticket + 1, std::memory_order_release);
    return 0;
}

void close_handle(void *h)
{
    Handle *x = static_cast<Handle *>(h);
    if (x->waiting) { // our turn must not block everybody behind us: wait for it and pass it on
        while (x->sh->serving.load(std::memory_order_acquire) != x->ticket)
            std::this_thread::yield();
        x->sh->serving.store(x->ticket + 1, std::memory_order_release);
    }
    delete x;
}

void destroy(void *ctx)
{
    static_cast<Shared *>(ctx)->~Shared();
    munmap(ctx, sizeof(Shared));
}

const ipcp_lock_ops ops = {
    IPCP_PLUGIN_ABI_VERSION, "example-cpp-ticket-lock", IPCP_LOCK_FAIR, create, open_handle, lock, unlock,
    close_handle, destroy,
};

} // namespace

extern "C" const ipcp_lock_ops *ipcp_plugin_lock(void)
{
    return &ops;
}
