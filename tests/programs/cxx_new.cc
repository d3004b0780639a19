// cxx_new: every form of C++ operator new/delete, one leak per new form.
// Expected numbers: cxx_new.expect.json.  Helpers are extern "C" so frames carry plain names.
//   use_new()               new int (4) + sized delete; new int (4) leaked            kind new
//   use_new_array()         new int[10] (40) + delete[]; new D[5] (5*4 + 8-byte array cookie
//                           = 28, D has a destructor) + sized delete[]; new char[13] leaked
//                                                                                    kind new[]
//   use_aligned_new()       new Big (alignas 64, 128) + aligned sized delete; new Big leaked
//                                                                                    kind new
//   use_aligned_new_array() new Big[2] (256) + aligned delete[]; new Big[3] (384) leaked
//                                                                                    kind new[]
//   use_nothrow_new()       new (std::nothrow) int (4) + delete                      kind new
// libstdc++ (GCC 12) allocates its emergency exception-handling pool at start-up: one
// malloc(72704) from a libstdc++ frame, live at exit (only __gnu_cxx::__freeres frees it).
#include <new>
#include <unistd.h>
#include <cstring>

#define NOINLINE __attribute__((noinline, noclone))

struct alignas(64) Big {
    char bytes[128];
};

struct D {
    int value;
    ~D() { value = 0; }
};

static void say(const char *text)
{
    if (write(1, text, strlen(text)) < 0)
        _exit(1);
}

// Keep the compiler from proving anything about the pointers (nothing is optimized at -O0,
// but this keeps the intent obvious).
static void *volatile sink;

extern "C" {

NOINLINE void use_new(void)
{
    int *freed = new int(1);
    delete freed;              // operator delete(void*, size_t) — sized
    sink = new int(2);         // leaked
}

NOINLINE void use_new_array(void)
{
    int *ints = new int[10];
    delete[] ints;             // operator delete[](void*)
    D *objects = new D[5];     // 28 bytes: cookie + 5 ints
    delete[] objects;          // operator delete[](void*, size_t) — sized
    sink = new char[13];       // leaked
}

NOINLINE void use_aligned_new(void)
{
    Big *freed = new Big;      // operator new(size_t, align_val_t)
    delete freed;              // operator delete(void*, size_t, align_val_t)
    sink = new Big;            // leaked
}

NOINLINE void use_aligned_new_array(void)
{
    Big *freed = new Big[2];   // operator new[](size_t, align_val_t)
    delete[] freed;            // operator delete[](void*, align_val_t)
    sink = new Big[3];         // leaked
}

NOINLINE void use_nothrow_new(void)
{
    int *p = new (std::nothrow) int(3);
    delete p;
}

NOINLINE void scrub_stack(void)
{
    volatile char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0;
}

}

int main()
{
    use_new();
    use_new_array();
    use_aligned_new();
    use_aligned_new_array();
    use_nothrow_new();
    sink = nullptr;
    scrub_stack();
    say("cxx_new: done\n");
    return 0;
}
