"""Self-tests of the case loader: every broken file is refused with a message that
names the file, the case and the field; YAML is read with the safe loader."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance import arrays
from conformance.bindings import load_bindings
from conformance.cases import CaseError, load_all
from conformance.suite import validate_references

pytestmark = pytest.mark.selftest

GOOD_CASE = """
cases:
  - id: tiny_rows
    family: sparse_softmax
    inputs:
      logits: [[1.0, 2.0, 3.0]]
      labels: [2]
"""


def _write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    directory = tmp_path / "cases"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))
    return directory


def _error(tmp_path, text, with_bindings=False) -> CaseError:
    directory = _write(tmp_path, text)
    with pytest.raises(CaseError) as caught:
        cases = load_all(directory)
        if with_bindings:
            validate_references(cases, load_bindings())
    return caught.value


def test_a_good_file_loads(tmp_path):
    (case,) = load_all(_write(tmp_path, GOOD_CASE))
    assert case.id == "tiny_rows" and case.file == "cases/mine.yaml"
    assert case.inputs["labels"].dtype == np.int64


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    error = _error(tmp_path, "cases:\n  - id: [unclosed\n")
    assert error.file == "cases/mine.yaml" and "YAML syntax error" in str(error) and "line" in str(error)


def test_unsafe_yaml_tags_are_refused_not_executed(tmp_path):
    error = _error(tmp_path, "cases: !!python/object/apply:os.system ['echo unsafe']\n")
    assert "YAML" in str(error)


@pytest.mark.parametrize("mutation, case_name, field, words", [
    (("family: sparse_softmax", "family: hinge"), "tiny_rows", "family", "is not one of"),
    (("      labels: [2]", "      labels: [two]"), "tiny_rows", "inputs.labels", "labels"),
    (("    inputs:", "    options: {smoothing: 0.1}\n    inputs:"), "tiny_rows", "options", "smoothing"),
    (("    inputs:", "    options: {label_smoothing: 2}\n    inputs:"), "tiny_rows", "options.label_smoothing", "2"),
    (("  - id: tiny_rows", "  - id: Tiny-Rows"), "Tiny-Rows", "id", "does not match"),
])
def test_schema_violations_name_file_case_and_field(tmp_path, mutation, case_name, field, words):
    error = _error(tmp_path, GOOD_CASE.replace(*mutation))
    assert (error.file, error.case, error.field) == ("cases/mine.yaml", case_name, field)
    assert words in str(error)


def test_a_framework_word_in_an_id_is_refused(tmp_path):
    # the framework words are those of the loaded bindings; the dtypes are refused by the loader alone
    error = _error(tmp_path, GOOD_CASE.replace("tiny_rows", "torch_rows"), with_bindings=True)
    assert error.field == "id" and "-k torch" in str(error)
    error = _error(tmp_path, GOOD_CASE.replace("tiny_rows", "float32_rows"))
    assert error.field == "id" and "-k float32" in str(error)


def test_the_family_decides_the_inputs(tmp_path):
    error = _error(tmp_path, GOOD_CASE.replace("      logits:", "      probs:"))
    assert error.field == "inputs.logits" and "needs 'logits'" in str(error)


def test_duplicate_ids_across_files(tmp_path):
    directory = _write(tmp_path, GOOD_CASE)
    (directory / "other.yaml").write_text(GOOD_CASE)
    with pytest.raises(CaseError, match="duplicate id"):
        load_all(directory)


def test_a_published_value_the_reference_misses_fails(tmp_path):
    text = GOOD_CASE + """    published:
      - printed_by: "tensorflow:nn.sparse_softmax_cross_entropy_with_logits"
        value: [0.4075]
        digits: 4
"""
    error = _error(tmp_path, text, with_bindings=True)
    assert (error.case, error.field) == ("tiny_rows", "published[0].value")
    assert "the reference gives [0.407605964]" in str(error)


def test_a_published_value_the_reference_reproduces_passes(tmp_path):
    text = GOOD_CASE + """    published:
      - printed_by: "tensorflow:nn.sparse_softmax_cross_entropy_with_logits"
        value: [0.40760596]
        digits: 8
"""
    validate_references(load_all(_write(tmp_path, text)), load_bindings())


def test_a_reproduced_wrong_answer_fails(tmp_path):
    text = GOOD_CASE + """    published:
      - printed_by: "tensorflow:nn.sparse_softmax_cross_entropy_with_logits"
        value: [0.40760596]
        digits: 8
    wrong_answers:
      - value: [0.4076059]
        how: a typo
        why: it is in fact right
"""
    error = _error(tmp_path, text, with_bindings=True)
    assert error.field == "wrong_answers[0].value" and "reproduces" in str(error)


def test_unknown_binding_in_published_and_filters(tmp_path):
    text = GOOD_CASE + """    published:
      - printed_by: "mxnet:softmax"
        value: [0.40760596]
        digits: 8
"""
    assert _error(tmp_path, text, with_bindings=True).field == "published[0].printed_by"
    text = GOOD_CASE + "    bindings: [caffe]\n"
    assert _error(tmp_path, text, with_bindings=True).field == "bindings"


def test_grid_expands_into_readable_ids(tmp_path):
    text = GOOD_CASE + """    grid:
      label_smoothing: [0.0, 0.1]
      reduction: [none, mean]
"""
    ids = [case.id for case in load_all(_write(tmp_path, text))]
    assert ids == ["tiny_rows@ls0+none", "tiny_rows@ls0+mean", "tiny_rows@ls0.1+none", "tiny_rows@ls0.1+mean"]


class TestArraySpecs:
    def test_literals_take_hex_and_special_strings(self):
        values = arrays.build(["0x1.8p+1", "nan", "-inf", 2])
        assert values[0] == 3.0 and np.isnan(values[1]) and values[2] == -np.inf and values.dtype == np.float64

    def test_generators_are_seeded(self):
        spec = {"normal": {"shape": [3, 4], "seed": 5, "scale": 2.0}}
        assert np.array_equal(arrays.build(spec), arrays.build(spec))

    def test_one_hot_of_an_out_of_range_index_is_a_zero_row(self):
        assert arrays.build({"one_hot": {"indices": [0, 5], "depth": 3}}).tolist() == [[1, 0, 0], [0, 0, 0]]

    def test_a_bad_spec_says_what_is_wrong(self):
        with pytest.raises(arrays.ArraySpecError, match="seed"):
            arrays.build({"normal": {"shape": [2]}})
        with pytest.raises(arrays.ArraySpecError, match="rectangular"):
            arrays.build([[1, 2], [3]])


def test_the_schema_speaks_the_one_vocabulary():
    """cases/schema.json is written by hand for readers; it must name exactly the
    families, dtypes, options and reductions the harness defines."""
    from conformance import options
    from conformance.bindings import FAMILIES
    from conformance.cases import schema
    from conformance.dtypes import DTYPES

    defs = schema()["$defs"]
    assert sorted(defs["family"]["enum"]) == sorted(FAMILIES)
    assert sorted(defs["dtypes"]["items"]["enum"]) == sorted(DTYPES)
    assert sorted(defs["option_name"]["enum"]) == sorted(options.VOCABULARY)
    assert sorted(defs["options"]["properties"]["reduction"]["enum"]) == sorted(options.REDUCTIONS)


@pytest.mark.parametrize("value, overflows", [(65504.0, False), (65519.0, False), (65520.0, True), (1e6, True)])
def test_an_input_that_overflows_a_listed_dtype_is_refused(tmp_path, value, overflows):
    """float16's largest value is 65504 and its spacing there 32: 65519 rounds down to it, 65520 (half a unit
    above) rounds to inf, which the case would silently check instead of its finite input."""
    text = GOOD_CASE.replace("[[1.0, 2.0, 3.0]]", f"[[1.0, 2.0, {value}]]").replace(
        "    family:", "    dtypes: [float16, float32]\n    family:")
    if not overflows:
        (case,) = load_all(_write(tmp_path, text))
        assert case.inputs["logits"][0, 2] == value
        return
    error = _error(tmp_path, text)
    assert (error.case, error.field) == ("tiny_rows", "inputs.logits") and "overflows float16" in str(error)
