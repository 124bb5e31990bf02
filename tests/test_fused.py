"""The fused pixel branch computes what the op-by-op decoder computes, on every path it serves."""

import copy
import dataclasses

import pytest
import torch
from codec_fixtures import SMALL_DETAIL_CONFIG, random_model

from app.codec.engine import fused
from app.codec.engine.runtime import FUSED_ENV, SPECS, TorchRuntime
from app.codec.nets.decoder import to_uint8_hwc

pytestmark = pytest.mark.skipif(not fused.available(), reason="this torch has no oneDNN fused convolutions")


@pytest.fixture(scope="module")
def decoder():
    model = random_model(SMALL_DETAIL_CONFIG, seed=5)
    with torch.no_grad():  # every layer matters: randomise the zero-initialised ones, biases too
        for m in model.decoder.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, std=0.2 / (m.in_channels * m.kernel_size[0] ** 2) ** 0.5)
                if m.bias is not None:
                    torch.nn.init.normal_(m.bias, std=0.05)
    return model.decoder.eval()


def _inputs(decoder, seed=0, h=48, w=64):
    g = torch.Generator().manual_seed(seed)
    lr = torch.rand(1, 3, h, w, generator=g)
    dq = torch.randn(1, 3, 64, h // 8, w // 8, generator=g) * 20
    tables = torch.randint(1, 60, (1, 128), generator=g).float()
    offsets = torch.randn(decoder.offsets_size(), generator=g) * 0.05
    detail = torch.randn(1, decoder.detail_latent, h // 4, w // 4, generator=g)
    return (lr, dq, tables), offsets, detail


@pytest.mark.parametrize("channels_last", [False, True])  # channels_last: oneDNN's fused kernels proper
@pytest.mark.parametrize("with_offsets", [False, True])
@pytest.mark.parametrize("with_detail", [False, True])
def test_float32_fused_phases_equal_the_decoders(decoder, with_offsets, with_detail, channels_last):
    (lr, dq, tables), offsets, detail = _inputs(decoder)
    if channels_last:
        decoder = copy.deepcopy(decoder).to(memory_format=torch.channels_last)
        lr, detail = (t.contiguous(memory_format=torch.channels_last) for t in (lr, detail))
    args = (lr, dq, tables, offsets if with_offsets else None, detail if with_detail else None)
    with torch.inference_mode():
        expected = decoder.phases(*args)
        got = fused.FusedPixelBranch(decoder).phases(*args)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())
    # and the paths are really different inputs: offsets and detail change the output
    if with_offsets or with_detail:
        with torch.inference_mode():
            plain = decoder.phases(lr, dq, tables)
        assert (plain - expected).abs().max() > 1e-2


def test_bf16_runtime_uses_the_fused_branch_within_a_grey_level(decoder, monkeypatch):
    model = random_model(SMALL_DETAIL_CONFIG, seed=5)
    model.decoder = copy.deepcopy(decoder)
    spec = SPECS["torch-bf16"]  # bf16 arithmetic runs (slowly) even where it is not native
    fused_runtime = TorchRuntime(spec, model)
    assert fused_runtime.fused_branch is not None
    plain_runtime = TorchRuntime(dataclasses.replace(spec, fused=False), model)
    assert plain_runtime.fused_branch is None
    monkeypatch.setenv(FUSED_ENV, "0")
    assert TorchRuntime(spec, model).fused_branch is None  # the switch for measuring it
    (lr, dq, tables), offsets, detail = _inputs(decoder, seed=1)
    for args in [(lr, dq, tables), (lr, dq, tables, offsets, detail)]:
        a, b = fused_runtime(*args), plain_runtime(*args)
        assert a.shape == b.shape == (4 * lr.shape[-2], 4 * lr.shape[-1], 3)
        assert (a.int() - b.int()).abs().max() <= 2  # bf16 sums, rounded in another order
        with torch.inference_mode():
            reference = to_uint8_hwc(decoder.phases(*args), 4)[0].int()
        fused_error = (a.int() - reference).abs().float().mean()
        plain_error = (b.int() - reference).abs().float().mean()
        assert fused_error <= 1.25 * plain_error + 0.01, (fused_error, plain_error)  # no less exact than op by op


def test_a_refusing_fused_kernel_falls_back_to_the_plain_network(decoder, monkeypatch):
    model = random_model(SMALL_DETAIL_CONFIG, seed=5)
    model.decoder = copy.deepcopy(decoder)
    runtime = TorchRuntime(SPECS["torch-bf16"], model)
    (lr, dq, tables), _, _ = _inputs(decoder, seed=2)
    expected = TorchRuntime(dataclasses.replace(SPECS["torch-bf16"], fused=False), model)(lr, dq, tables)

    def refuse(*args, **kwargs):
        raise RuntimeError("oneDNN: unsupported")

    monkeypatch.setattr(runtime.fused_branch, "phases", refuse)
    assert torch.equal(runtime(lr, dq, tables), expected)
    assert runtime.fused_branch is None  # and it stays off


def test_fp32_fused_runtime_matches_the_reference_to_float32_rounding(decoder):
    """torch-fp32-fused (the fast path of CPUs without native bf16) is the reference's arithmetic."""
    model = random_model(SMALL_DETAIL_CONFIG, seed=5)
    model.decoder = copy.deepcopy(decoder)
    fast, reference = TorchRuntime(SPECS["torch-fp32-fused"], model), TorchRuntime(SPECS["torch-fp32"], model)
    assert fast.fused_branch is not None and reference.fused_branch is None
    assert fast.decoder.pixel_in.weight.dtype == torch.float32
    assert fast.decoder.pixel_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.decoder.pixel_in.weight.is_contiguous()  # the model's own decoder is left as it was
    (lr, dq, tables), offsets, detail = _inputs(decoder, seed=3)
    for args in [(lr, dq, tables), (lr, dq, tables, offsets, detail)]:
        a, b = fast(*args).int(), reference(*args).int()
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1 and (a != b).float().mean() < 1e-3  # only rounding ties differ
