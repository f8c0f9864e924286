// The memory tcmalloc takes from the system, for dagrun's programs, on transparent huge pages.
//
// Why: a first touch of a 4 KiB page costs a page fault, and on a virtual machine that shadows
// the guest's page tables (this project's benchmark machine: ≈ 10 µs a fault, measured) the
// faults of a large run's fresh memory were a quarter of its time: `dagrun run` of 100,000
// callables took 77,000 of them. Memory handed to tcmalloc in 2 MiB-aligned regions marked
// MADV_HUGEPAGE is faulted in 2 MiB at a time where the kernel allows it (its setting
// `transparent_hugepage/enabled` is `madvise` or `always`); where it does not, the mark changes
// nothing. docs/cli.md (`version`) says what it costs: RSS in 2 MiB steps, among others.
//
// Linked into each program that links tcmalloc (cmake/dag_options.cmake, dag_program_allocator);
// DAGRUN_HUGE_PAGES=0 in the environment leaves tcmalloc's own system allocator in place.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include <gperftools/malloc_extension.h>

namespace dagrun::detail {
namespace {

constexpr std::size_t huge_page = std::size_t{2} << 20;
// Reserved at a time and carved into tcmalloc's requests (of about 1 MiB each as its heap
// grows): untouched parts cost address space, not memory.
constexpr std::size_t region_size = std::size_t{64} << 20;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

class huge_page_heap final : public SysAllocator {
public:
  explicit huge_page_heap(SysAllocator* fallback) : fallback_(fallback) {}  // fallback: never null

  // tcmalloc calls this under its system allocation lock (TCMalloc_SystemAlloc's): one call at a time.
  void* Alloc(std::size_t size, std::size_t* actual_size, std::size_t alignment) override {
    if (size == 0 || size > (std::size_t{1} << 40) || alignment > huge_page) return fallback_->Alloc(size, actual_size, alignment);
    const std::size_t want = round_up(size, huge_page);
    char* out = nullptr;
    if (want >= region_size) {
      out = map_aligned(want);  // a region of its own: the current one keeps its room
    } else {
      if (static_cast<std::size_t>(end_ - next_) < want) {
        if (char* region = map_aligned(region_size)) {
          next_ = region;  // the rest of the last region stays unused (less than a request)
          end_ = region + region_size;
        }
      }
      if (static_cast<std::size_t>(end_ - next_) >= want) {
        out = next_;
        next_ += want;
      }
    }
    if (!out) return fallback_->Alloc(size, actual_size, alignment);  // no memory mapped
    if (actual_size) *actual_size = want;
    return out;
  }

private:
  // `size` bytes (a multiple of huge_page) at a huge_page boundary, marked for huge pages.
  static char* map_aligned(std::size_t size) {
    void* p = ::mmap(nullptr, size + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    const auto start = reinterpret_cast<std::uintptr_t>(p);
    const auto aligned = round_up(start, huge_page);
    if (aligned > start) ::munmap(p, aligned - start);
    if (const std::size_t tail = start + huge_page - aligned; tail > 0)
      ::munmap(reinterpret_cast<void*>(aligned + size), tail);
    ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // advice: its failure changes nothing
    return reinterpret_cast<char*>(aligned);
  }

  SysAllocator* fallback_;
  char* next_ = nullptr;
  char* end_ = nullptr;
};

// Installed before main, as gperftools asks (before threads start). Never destroyed: tcmalloc
// may grow its heap during other objects' destructors at exit.
bool install() {
  if (const char* v = std::getenv("DAGRUN_HUGE_PAGES"); v && std::strcmp(v, "0") == 0) return false;
  MallocExtension* m = MallocExtension::instance();
  // No system allocator to fall back on: tcmalloc is not this process's malloc (under Valgrind,
  // say, its extension is the base class's, which does nothing).
  SysAllocator* fallback = m ? m->GetSystemAllocator() : nullptr;
  if (!fallback) return false;
  alignas(huge_page_heap) static unsigned char storage[sizeof(huge_page_heap)];
  auto* ours = new (storage) huge_page_heap(fallback);
  m->SetSystemAllocator(ours);
  return m->GetSystemAllocator() == ours;  // what `dagrun version` says is what tcmalloc uses
}

}  // namespace

/// True when this process's heap grows on huge-page-marked memory (`dagrun version` says so).
extern const bool heap_on_huge_pages = install();

}  // namespace dagrun::detail
