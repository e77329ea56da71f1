/*
 * A stand-in bcryptprimitives.dll for Wine < 9, used only by
 * scripts/wine-runner.sh when the test suite runs under Wine.
 *
 * Rust's std (>= 1.78) gets its random bytes (HashMap seeds) from
 * ProcessPrng in bcryptprimitives.dll. Wine 8.0, Debian 12's, has no such
 * DLL, so every Rust program fails to load. Real Windows has it; this file
 * never ships with wasmcached. BCryptGenRandom is the documented API that
 * ProcessPrng wraps, and Wine 8 implements it.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        /* BCryptGenRandom takes a ULONG length: feed it in chunks. */
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
