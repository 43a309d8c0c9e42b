/*
 * bcryptprimitives.dll for Wine 8.0 (Debian 12), which lacks ProcessPrng: current Rust std
 * calls it at start, so every Rust program dies (exit 53) without it. scripts/wine-run builds
 * this with mingw into the project's Wine prefix and loads it in place of Wine's builtin DLL.
 * Not needed on Windows 10+ or newer Wine, where bcryptprimitives.dll exports ProcessPrng.
 */
#include <windows.h>

/* advapi32's RtlGenRandom: Wine implements it with the host's random source. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
