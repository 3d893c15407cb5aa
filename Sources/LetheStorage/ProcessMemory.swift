import CLinux

/// How the process's allocator treats large buffers.
///
/// Lethe reads and writes whole Parquet column chunks and files of tens of megabytes. glibc hands
/// out every block above its mmap threshold (128 KiB to 32 MiB, adjusted as it goes) as fresh
/// pages that the kernel zeroes on first touch, and returns them on free: a rewrite of a 41 MB Delta
/// file spent half of its CPU in the kernel zeroing pages (`clear_page_erms`), and the same rewrite
/// with freed memory kept for reuse takes half the time (`lethe-bench rewrite`, docs/benchmarks.md).
public enum ProcessMemory {
    /// Keeps freed memory in the process for reuse instead of returning it at once: blocks up to
    /// 1 GiB come from the heap, and the heap is not trimmed until 2 GiB are free. A command's
    /// peak stays allocated until it exits (or `giveBack()`); call once, at start.
    public static func keepFreedMemory() {
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
    }

    /// Returns the free memory the process kept to the system (a long-running process, when idle).
    public static func giveBack() {
        _ = malloc_trim(0)
    }
}
