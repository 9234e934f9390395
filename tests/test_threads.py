"""The thread policy (diffras._threads): what it sets, what it leaves to the user, and when it applies."""
import os
import subprocess
import sys

import numba
import pytest

from diffras._threads import BLOCK_TIME_MS, SPIN_COUNT, apply_wait_policy, serial_below


def test_policy_sets_short_spin_when_the_user_set_nothing():
    env = {"PATH": "/bin"}
    assert apply_wait_policy(env) == {"GOMP_SPINCOUNT": SPIN_COUNT, "KMP_BLOCKTIME": BLOCK_TIME_MS}
    assert env["GOMP_SPINCOUNT"] == SPIN_COUNT and env["KMP_BLOCKTIME"] == BLOCK_TIME_MS


@pytest.mark.parametrize("var", ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"])
def test_policy_keeps_any_user_choice(var):
    env = {var: "ACTIVE" if var == "OMP_WAIT_POLICY" else "300000"}
    before = dict(env)
    assert apply_wait_policy(env) == {}
    assert env == before


def test_import_applies_policy_before_torch_loads():
    # In a fresh interpreter importing diffras first, the variables are in the environment that torch's
    # OpenMP runtime then reads (it reads it when torch is imported, which diffras does after the policy).
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    # An import hook prints the variable at the moment torch starts loading.
    code = (
        "import os, sys\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            print(os.environ.get('GOMP_SPINCOUNT'))\n"
        "sys.meta_path.insert(0, Hook())\n"
        "import diffras\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [SPIN_COUNT]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["None"]


def test_serial_below_restores_the_thread_count():
    threads = numba.get_num_threads()
    with serial_below(10, 100):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == threads
    with serial_below(100, 100):
        assert numba.get_num_threads() == threads
    with pytest.raises(RuntimeError):
        with serial_below(1, 100):
            raise RuntimeError("boom")
    assert numba.get_num_threads() == threads
