"""Random heterogeneous mesh batches for the structures/ops tests (hypothesis strategy + plain builders)."""
from __future__ import annotations

from typing import List, Tuple

import torch
from hypothesis import strategies as st


def random_lists(counts: List[Tuple[int, int]], seed: int, dtype=torch.float32):
    """Lists of verts (V_i, 3) and faces (F_i, 3) with the given (V_i, F_i); F_i forced to 0 when V_i = 0."""
    g = torch.Generator().manual_seed(seed)
    verts, faces = [], []
    for v, f in counts:
        verts.append(torch.randn(v, 3, generator=g, dtype=dtype))
        f = f if v > 0 else 0
        faces.append(torch.randint(0, max(v, 1), (f, 3), generator=g))
    return verts, faces


@st.composite
def mesh_batches(draw, max_n: int = 4, max_v: int = 8, max_f: int = 10, allow_empty: bool = True):
    """Draw ``(verts_list, faces_list)`` of 1..max_n meshes with random sizes (some possibly empty)."""
    n = draw(st.integers(1, max_n))
    min_v = 0 if allow_empty else 3
    min_f = 0 if allow_empty else 1
    counts = [(draw(st.integers(min_v, max_v)), draw(st.integers(min_f, max_f))) for _ in range(n)]
    seed = draw(st.integers(0, 2**31 - 1))
    return random_lists(counts, seed)
