import torch



def test_topology_cached_in_inference_mode_does_not_break_training():
    """Edges cached under ``torch.inference_mode`` (e.g. an evaluation pass) were carried by ``offset_verts``
    into training, where autograd refused to save the inference-tensor index (mesh_edge_loss raised)."""
    from diffras.losses import mesh_edge_loss
    from diffras.ops import ico_sphere

    mesh = ico_sphere(1)
    with torch.inference_mode():
        cached = mesh.edges_packed()
    assert cached.is_inference()
    offset = torch.zeros_like(mesh.verts_packed(), requires_grad=True)
    moved = mesh.offset_verts(offset)
    assert not moved.edges_packed().is_inference()
    torch.testing.assert_close(moved.edges_packed(), cached.clone())
    mesh_edge_loss(moved).backward()
    assert offset.grad is not None and bool(torch.isfinite(offset.grad).all())
