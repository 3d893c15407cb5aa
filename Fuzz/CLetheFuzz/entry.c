// SwiftPM links an executable target with `main` defined as `<module>_main`; a target
// without a Swift `main` (libFuzzer's targets) gets it here: libFuzzer's driver, which
// calls LLVMFuzzerInitialize and then LLVMFuzzerTestOneInput (Fuzz/lethe-fuzz/Fuzz.swift).
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int lethe_fuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
