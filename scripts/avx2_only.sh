#!/usr/bin/env bash
# Run a command as if on a CPU with AVX2 and nothing newer: no AVX-512, AMX, VNNI or bf16.
# For the issue-14 figure "INT8 >= 1.5x the onnx fp32 path on an AVX2-only CPU" measured on
# a newer x86 CPU: every library picks its kernels from CPUID, which scripts/avx2_only.c
# answers with those features cleared (needs "cpuid_fault" in /proc/cpuinfo and a C
# compiler). drivevision counts a feature only where torch's reading of CPUID has it too, so
# its feature line and `auto` see AVX2 only; /proc/cpuinfo itself is not changed, so the test
# that compares the features found with its flags fails under this script (by design).
# Usage: scripts/avx2_only.sh COMMAND [ARG...]
#   e.g. scripts/avx2_only.sh drivevision bench --engines onnx --precision fp32,int8 ...
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
grep -qw cpuid_fault /proc/cpuinfo ||
    { echo "avx2_only: this CPU (or its hypervisor) offers no CPUID faulting" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
lib=${XDG_CACHE_HOME:-$HOME/.cache}/drivevision/avx2_only.so
if [ ! -f "$lib" ] || [ "$here/avx2_only.c" -nt "$lib" ]; then
    mkdir -p "$(dirname "$lib")"
    ${CC:-cc} -O2 -shared -fPIC -Wall -o "$lib.tmp" "$here/avx2_only.c" -ldl
    mv "$lib.tmp" "$lib"
fi
LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
