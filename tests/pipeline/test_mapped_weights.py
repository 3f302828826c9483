"""A torch model's weights parked in a file-backed map: same values, out of the resident size."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pipeline.mapped_weights import MappedWeights

ROOT = Path(__file__).resolve().parents[2]


class Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 16)
        self.mix = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, 50, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 16))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(self.embed(ids))) * self.scale)


def _model() -> Tied:
    torch.manual_seed(0)
    return Tied().eval()


def test_parked_model_runs_bit_for_bit_and_leaves_no_file(tmp_path):
    model, ids = _model(), torch.arange(20)[None]
    before = model(ids)
    params = list(model.parameters())
    mapped = MappedWeights(model, tmp_path / "w")
    assert mapped.park() and mapped.mapped, mapped.reason
    assert torch.equal(model(ids), before)
    assert model.head.weight is model.embed.weight  # still tied: the same parameter object
    assert list(model.parameters()) == params
    assert mapped.park()  # again, after a run: pages dropped, read back on the next run
    assert torch.equal(model(ids), before)
    assert list((tmp_path / "w").iterdir()) == []  # the file was unlinked once mapped


def test_weights_written_after_parking_survive_the_next_park(tmp_path):
    model, ids = _model(), torch.arange(20)[None]
    mapped = MappedWeights(model, tmp_path)
    assert mapped.park()
    changed = {k: v * 2 for k, v in _model().state_dict().items()}
    model.load_state_dict(changed)  # copied into the mapped tensors, in place
    assert mapped.mapped
    expected = model(ids)
    assert mapped.park()
    assert torch.equal(model(ids), expected)  # a shared map: the writes went to the file
    assert torch.equal(model.mix.weight, changed["mix.weight"])

    model.mix.weight.data = changed["mix.weight"] * 3  # the module's own tensor, not the map's
    assert not mapped.mapped
    expected = model(ids)
    assert mapped.park() and mapped.mapped  # mapped afresh, never a drop of memory the map does not own
    assert torch.equal(model(ids), expected)


def test_a_module_it_cannot_map_is_left_as_it_was(tmp_path):
    with torch.device("meta"):
        meta = Tied()
    mapped = MappedWeights(meta, tmp_path)
    assert not mapped.park()
    assert "meta" in mapped.reason and meta.mix.weight.is_meta

    model = _model()
    where = model.mix.weight.data_ptr()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    mapped = MappedWeights(model, blocked)
    assert not mapped.park()
    assert str(blocked) in mapped.reason
    assert model.mix.weight.data_ptr() == where


# A 64 MB model in a process of its own: resident MB at each step.
RESIDENT = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from pipeline.mapped_weights import MappedWeights
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024, bias=False) for _ in range(16)]).eval()
    x = torch.randn(4, 1024)
    with torch.inference_mode():
        expected = model(x)
    loaded = rss()
    mapped = MappedWeights(model, Path(sys.argv[1]))
    assert mapped.park(), mapped.reason
    parked = rss()
    with torch.inference_mode():
        assert torch.equal(model(x), expected)
    ran = rss()
    assert mapped.park()
    again = rss()
    assert mapped.resident()
    print(loaded, parked, ran, again, rss())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident size from /proc (Linux)")
def test_parked_weights_leave_the_resident_size_until_the_model_runs(tmp_path):
    done = subprocess.run([sys.executable, "-c", RESIDENT, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    loaded, parked, ran, again, read_in = map(float, done.stdout.split())
    weights = 64.0  # MB
    assert loaded - parked > 0.8 * weights  # the module's own copy went back to the OS
    assert ran - parked > 0.8 * weights  # a run reads the map in
    assert ran - again > 0.8 * weights  # parking again hands those pages back
    assert read_in - again > 0.8 * weights  # resident() reads them in without a run
