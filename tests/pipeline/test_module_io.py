"""Declarations of a `kind = "module"` model: shape cases, validation, inputs and examples."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pipeline.module_inputs import ExampleError, load_examples, model_inputs, random_inputs
from pipeline.module_io import (
    ColorLayout,
    DimDecl,
    ImageDecl,
    InputDecl,
    ModuleIO,
    ModuleIOError,
    OutputDecl,
    ShapeCase,
)

SPEC = InputDecl(name="spectrogram", dtype="float32", shape=("B", 1, 128, "T"))


def io(**changes) -> ModuleIO:
    fields = dict(dims=(DimDecl(name="B", values=(1, 4)), DimDecl(name="T", low=16, high=256, default=64)),
                  inputs=(SPEC,), outputs=(OutputDecl(name="position"),))
    return ModuleIO(**{**fields, **changes})


def test_cases_combine_enumerated_values_and_range_ends_in_declared_order():
    cases = io().validate().cases()
    assert [c.label for c in cases] == ["B=1,T=16", "B=1,T=256", "B=4,T=16", "B=4,T=256"]
    assert io().default_case().env == {"B": 1, "T": 64}
    assert ModuleIO.input_shape(SPEC, cases[3].env) == (4, 1, 128, 256)


def test_a_module_without_dimensions_has_one_static_case():
    static = ModuleIO(inputs=(InputDecl(name="x", dtype="float32", shape=(1, 8)),)).validate()
    assert [c.label for c in static.cases()] == ["static"]


@pytest.mark.parametrize("changes, key, words", [
    (dict(inputs=(InputDecl(name="x", dtype="float32", shape=("B", "H")),)), "model.inputs.x.shape",
     "'H' is not declared"),
    (dict(dims=(DimDecl(name="B", values=(1, 4)), DimDecl(name="T", values=(8,)), DimDecl(name="C", values=(3,)))),
     "model.dims.C", "no input shape uses it"),
    (dict(inputs=(InputDecl(name="ids", dtype="int32", shape=("B", "T")),)), "model.inputs.ids.range", "valid values"),
    (dict(inputs=(InputDecl(name="img", dtype="float32", shape=("B", 1, "T", "T"), image=ImageDecl()),)),
     "model.inputs.img.image", "RGB image input is float32"),
    (dict(dims=(DimDecl(name="B", values=(2, 4)), DimDecl(name="T", values=(8,))),
          inputs=(InputDecl(name="img", dtype="float32", shape=("B", 3, "T", "T"), image=ImageDecl()),)),
     "model.inputs.img.image", "must allow 1"),
    (dict(dims=(DimDecl(name="B", values=tuple(range(1, 9))), DimDecl(name="T", values=tuple(range(2, 11))))),
     "model.dims", "72 shape combinations"),
    (dict(outputs=(OutputDecl(name="position", tolerances={"fp8": {"max_abs": 1.0}}),)),
     "model.outputs.position.tolerances.fp8", "not one of fp32, fp16"),
    (dict(dims=(DimDecl(name="B", values=(1, 4)), DimDecl(name="T", low=16, high=8))), "model.dims.T", "min <= max"),
])
def test_bad_declarations_name_the_key(changes, key, words):
    with pytest.raises(ModuleIOError, match=words) as info:
        io(**changes).validate()
    assert info.value.key == key


def test_random_inputs_are_seeded_and_respect_value_ranges():
    ids = InputDecl(name="ids", dtype="int32", shape=("B", "T"), value_range=(3, 5))
    pixels = InputDecl(name="img", dtype="float32", shape=("B", 3, 4, 4), image=ImageDecl())
    decl = io(inputs=(ids, pixels)).validate()
    case = decl.cases()[2]
    first, again = random_inputs(decl, case, seed=0), random_inputs(decl, case, seed=0)
    np.testing.assert_array_equal(first["ids"], again["ids"])
    assert first["ids"].dtype == np.int32 and first["ids"].shape == (4, 16)
    assert set(np.unique(first["ids"])) <= {3, 4, 5}
    assert first["img"].min() >= 0 and first["img"].max() <= 255
    assert not np.array_equal(random_inputs(decl, case, seed=1)["ids"], first["ids"])


def test_model_inputs_scale_and_shift_image_pixels_as_the_package_does():
    image = ImageDecl(scale=2 / 255, bias=(-1.0, 0.0, 0.5), color_layout=ColorLayout.RGB)
    decl = ModuleIO(inputs=(InputDecl(name="img", dtype="float32", shape=(1, 3, 2, 2), image=image),)).validate()
    pixels = np.full((1, 3, 2, 2), 255.0, np.float32)
    got = model_inputs(decl, {"img": pixels})["img"]
    np.testing.assert_allclose(got[0, :, 0, 0], [1.0, 2.0, 2.5], rtol=1e-6)


_NAMES = itertools.count()


def _examples_project(tmp_path: Path, body: str) -> tuple[Path, str]:
    """A project with an examples module under a fresh name (imported modules are cached)."""
    name = f"real_examples_{next(_NAMES)}"
    (tmp_path / f"{name}.py").write_text("import numpy as np\n\n" + body)
    return tmp_path, f"{name}:examples"


def test_examples_fall_into_their_shape_case(tmp_path):
    root, spec = _examples_project(
        tmp_path, "def examples(cases):\n"
                  "    for c in cases:\n"
                  "        yield {'spectrogram': np.ones((c['B'], 1, 128, c['T']), np.float32)}\n")
    decl = io(examples=spec).validate()
    found = load_examples(decl, root)
    assert [e.case.label for e in found] == [c.label for c in decl.cases()]


@pytest.mark.parametrize("body, words", [
    ("def examples():\n    yield {'other': np.ones(3)}\n", "has inputs \\['other'\\]"),
    ("def examples():\n    yield {'spectrogram': np.ones((1, 1, 128, 5), np.float32)}\n", "none of the declared shape"),
    ("def examples():\n    return []\n", "yielded no example"),
    ("def examples():\n    raise OSError('no recordings')\n", "raised OSError: no recordings"),
])
def test_unusable_examples_are_refused_with_the_reason(tmp_path, body, words):
    root, spec = _examples_project(tmp_path, body)
    with pytest.raises(ExampleError, match=words):
        load_examples(io(examples=spec).validate(), root)


def test_shape_case_label_reads_like_the_report():
    assert ShapeCase(env={"B": 2, "S": 64}).label == "B=2,S=64"
