"""The allocator policy (diffras._malloc): what it sets, what it leaves to the user, and what it buys."""
import os
import subprocess
import sys

import pytest

from diffras._malloc import MMAP_THRESHOLD, TRIM_THRESHOLD, _glibc_mallopt, apply_malloc_policy

glibc = pytest.mark.skipif(_glibc_mallopt() is None, reason="mallopt is glibc's (Linux)")

# Faults of re-allocating buffers a render frees: two 16 MiB blocks freed together leave 32 MiB of free heap
# top, past glibc's self-adjusted trim threshold, so without the policy they are unmapped and every page of
# the next pair faults in again (~8,000 faults); with it they stay mapped.
_REUSE = (
    "import resource, statistics\n"
    "import diffras, torch\n"
    "def pair():\n"
    "    a = torch.ones(4 * 2**20); b = torch.ones(4 * 2**20)\n"
    "    return float(a[-1] + b[-1])\n"
    "def faults():\n"
    "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "pair(); pair()\n"
    "per_pair = []\n"
    "for _ in range(7):\n"
    "    f0 = faults(); pair(); per_pair.append(faults() - f0)\n"
    "print(statistics.median(per_pair))\n"
)


def _faults(env):
    """Median page faults of one pair (the heap may still grow once while the pairs settle)."""
    out = subprocess.run([sys.executable, "-c", _REUSE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.split()[-1])


@pytest.mark.parametrize("var", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                                 "MALLOC_MMAP_MAX_"])
def test_policy_keeps_any_user_choice(var):
    assert apply_malloc_policy({var: "131072"}) == {}
    assert apply_malloc_policy({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}) == {}


@glibc
def test_policy_sets_thresholds_when_the_user_set_nothing():
    assert apply_malloc_policy({"PATH": "/bin"}) == {"mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD}


@glibc
def test_import_keeps_freed_buffers_mapped():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    kept = _faults(env)
    # 16 MiB blocks are 4,096 pages each: with the policy a pair re-uses its memory.
    assert kept < 500, kept
    # The user's own setting (glibc's default trim threshold) wins, and the pages fault in again.
    env["MALLOC_TRIM_THRESHOLD_"] = "131072"
    assert _faults(env) > 4000
