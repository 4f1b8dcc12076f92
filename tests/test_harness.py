"""Self-tests of the harness: ids, markers, skips, failures that tell the whole
story, selection by -k without importing other frameworks, and the reports."""

import dataclasses
import fnmatch
import functools
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import divergences as divergence_data
from conformance import suite as suite_module
from conformance.bindings import Binding
from conformance.runner import failure_message, run_value_check
from conformance.suite import build, skip_reason
from suite_runs import NoFinalCollection, run_in_process, small_cases_dir

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def suite():
    return build()


def _check(suite, case_id, binding_id, dtype="float32"):
    return next(c for c in suite.checks if c.case.id == case_id and c.binding.id == binding_id and c.dtype == dtype)


def test_ids_read_family_case_binding_dtype_device(suite):
    check = _check(suite, "article1_sparse_rows", "torch:nn.functional.cross_entropy")
    assert check.id == "sparse_softmax-article1_sparse_rows-torch:nn.functional.cross_entropy-float32-cpu"
    assert check.data_id == "sparse_softmax-article1_sparse_rows-torch:nn.functional.cross_entropy-float32"
    gradient = next(c for c in suite.checks if c.kind == "gradient" and c.data_id == check.data_id + "-gradient")
    assert gradient.id == check.data_id + "-gradient-cpu"
    assert len({c.id for c in suite.checks}) == len(suite.checks)


def test_markers_carry_framework_dtype_and_tags(suite):
    check = _check(suite, "article2_sparse_logits",
                   "tensorflow:keras.losses.SparseCategoricalCrossentropy(from_logits=True)", "float64")
    assert {"tensorflow", "keras", "float64", "published"} <= set(check.markers)


def test_every_framework_check_id_names_its_framework(suite):
    for check in suite.checks:
        assert check.binding.framework in check.id


def test_a_missing_framework_is_a_skip_with_the_reason(suite):
    binding = dataclasses.replace(suite.bindings["torch:nn.functional.cross_entropy"], requires=("no_such_torch",))
    case = _check(suite, "article1_sparse_rows", "torch:nn.functional.cross_entropy").case
    reason = skip_reason(case, binding, "float32")
    assert "no_such_torch is not installed" in reason and "pip install" in reason


def test_an_unsupported_option_is_a_skip_with_the_reason(suite):
    # the framework need not be installed: requires is emptied so that the option decides
    binding = dataclasses.replace(suite.bindings["torch:nn.functional.cross_entropy"], requires=())
    case = dataclasses.replace(_check(suite, "article1_sparse_rows", binding.id).case, options={"ignore_class": 1})
    assert "has no option 'ignore_class'" in skip_reason(case, binding, "float32")


LIMITATION_WORDS = ("only", "has no", "always", "does not take", "does not support")


def test_every_limitation_cites_where_it_is_documented(suite):
    """A skip saying an API lacks something names the page that documents the
    limit, or the behaviour case that records what the API does instead, so
    that a change upstream is noticed (computed from the declarations, so it
    holds whichever frameworks are installed)."""
    behaviour_cases = {case.base_id for case in suite.cases if case.expect}
    reasons = set()
    for check in suite.checks:
        for name, value in check.case.options.items():
            reason = check.binding.unsupported_option(name, "<array>" if hasattr(value, "shape") else value,
                                                      any_value=check.kind == "behaviour")
            if reason:
                reasons.add(reason)
    limitations = [reason for reason in reasons if any(word in reason for word in LIMITATION_WORDS)]
    assert limitations, "no limitation found: the scan is broken"
    for reason in sorted(limitations):
        cited = [case for case in behaviour_cases if case in reason]
        assert "https://" in reason or cited, f"a limitation without its source: {reason}"
    for case in {case for reason in limitations for case in behaviour_cases if case in reason}:
        assert any(check.case.base_id == case and check.kind == "behaviour" for check in suite.checks), case


def _perturbed(binding: Binding, relative: float) -> Binding:
    """A framework that is wrong by ``relative``, built on the reference itself."""

    def call(problem):
        exact = np.asarray(binding.reference(problem), dtype=np.float64)
        return (exact * (1 + relative)).astype(problem.dtype)

    return dataclasses.replace(binding, call=call)


# ids without framework words: -k <framework> must not select self-tests
@pytest.mark.parametrize("binding_id, case_id", [
    pytest.param("torch:nn.functional.cross_entropy", "random_class_rows", id="pt-class-indices"),
    pytest.param("tensorflow:nn.softmax_cross_entropy_with_logits", "article1_one_hot_rows", id="tf-soft-labels"),
    pytest.param("tensorflow:keras.losses.CategoricalCrossentropy", "article2_categorical_probs",
                 id="k3-categorical-probs"),
    pytest.param("torch:nn.functional.binary_cross_entropy", "random_probabilities_elementwise",
                 id="pt-binary-probs"),
])
def test_a_framework_wrong_by_1e5_fails_and_says_why(suite, binding_id, case_id):
    original = _check(suite, case_id, binding_id)
    check = dataclasses.replace(original, binding=_perturbed(original.binding, 1e-5))
    outcome = run_value_check(check)
    assert not outcome.verdict.ok
    message = failure_message(check, outcome)
    for part in (original.binding.api, case_id, "float32", "expected", "got", "ULP", "bound", "eps"):
        assert part in message


def test_an_output_of_the_wrong_shape_fails_and_names_both_shapes(suite):
    original = _check(suite, "random_class_rows", "torch:nn.functional.cross_entropy")
    reference = original.binding.reference

    def with_kept_axis(problem):
        return np.expand_dims(np.asarray(reference(problem), dtype=np.float64).astype(np.float32), -1)

    check = dataclasses.replace(original, binding=dataclasses.replace(original.binding, call=with_kept_axis))
    outcome = run_value_check(check)
    assert not outcome.verdict.ok
    message = failure_message(check, outcome)
    assert "shape: got (16, 1), expected (16,)" in message


def test_the_exact_value_rounded_passes(suite):
    original = _check(suite, "random_class_rows", "torch:nn.functional.cross_entropy")
    assert run_value_check(dataclasses.replace(original, binding=_perturbed(original.binding, 0.0))).verdict.ok


def test_a_per_dtype_compute_dtype_judges_each_dtype_in_its_own(suite):
    """A binding that documents computing half-precision inputs in float32 (torch's
    autocast) is held to float32 there and to the input dtype elsewhere."""
    original = _check(suite, "random_class_rows", "torch:nn.functional.cross_entropy", "float16")
    upcast = {"float16": "float32", "bfloat16": "float32"}

    def returned_in(result_dtype):
        def call(problem):
            return np.asarray(original.binding.reference(problem), dtype=np.float64).astype(result_dtype)
        return call

    exact_in_float32 = dataclasses.replace(original.binding, compute_dtype=upcast, call=returned_in("float32"))
    assert run_value_check(dataclasses.replace(original, binding=exact_in_float32)).verdict.ok

    # float16 accuracy in a float32 result: right for the input dtype, wrong for the documented compute dtype
    half_accurate = dataclasses.replace(original.binding, compute_dtype=upcast,
                                        call=lambda p: returned_in("float16")(p).astype("float32"))
    outcome = run_value_check(dataclasses.replace(original, binding=half_accurate))
    assert not outcome.verdict.ok and outcome.judged_dtype == "float32"

    wide = _check(suite, "random_class_rows", "torch:nn.functional.cross_entropy", "float64")
    unchanged = dataclasses.replace(wide.binding, compute_dtype=upcast, call=returned_in("float64"))
    outcome = run_value_check(dataclasses.replace(wide, binding=unchanged))
    assert outcome.verdict.ok and outcome.judged_dtype == "float64"
    assert unchanged.result_dtype_for("float64") == "float64" and unchanged.result_dtype_for("float16") == "float32"


def test_a_raising_call_fails_its_check_by_name_and_a_divergence_can_pin_it(suite):
    """A framework's own exception is a CheckFailure naming the API, the case and
    the error, and the strict xfail of a known divergence accepts it; an error of
    the harness itself (any other exception) it does not."""
    from conformance.plugin import _marks
    from conformance.runner import CheckFailure

    original = _check(suite, "random_class_rows", "torch:nn.functional.cross_entropy")

    def call(problem):
        raise IndexError("Target 7 is out of bounds.")

    raising = dataclasses.replace(original, binding=dataclasses.replace(original.binding, call=call))
    with pytest.raises(CheckFailure) as failure:
        run_value_check(raising)
    for part in (original.binding.api, "raised IndexError", "random_class_rows", "float32", "Target 7"):
        assert part in str(failure.value)
    entry = divergence_data.Divergence(id="pinned", match=(original.id,), reason="a pinned divergence for the test",
                                       source="tests/test_harness.py")
    xfail = next(mark for mark in _marks(dataclasses.replace(original, divergence=entry)) if mark.name == "xfail")
    assert CheckFailure in xfail.kwargs["raises"] and pytest.fail.Exception in xfail.kwargs["raises"]
    assert not issubclass(KeyError, xfail.kwargs["raises"])


def test_references_made_by_one_factory_are_not_confused(suite):
    """The expected-value cache keys on what a reference closes over: Keras 3's and
    Keras 2's binary_crossentropy (one factory, two conventions) keep their own
    values on one case, in either order, while two forms of one API share theirs."""
    from conformance.problems import as_computed, make_problem
    from conformance.runner import expected_value, reference_identity

    first = _check(suite, "article3_binary_probs_mean", "tensorflow:keras.losses.binary_crossentropy", "float64")
    second = _check(suite, "article3_binary_probs_mean", "tf_keras:keras.losses.binary_crossentropy", "float64")
    values = [float(np.ravel(expected_value(check, as_computed(make_problem(check.case, check.dtype, check.binding),
                                                                    check.binding)))[0])
              for check in (first, second, first)]
    assert values[0] == values[2] != values[1]
    assert values[1] == pytest.approx(-(0.4 * np.log(0.8 + 1e-7) + 0.6 * np.log(0.2 + 1e-7)), rel=1e-14)
    pinned, as_called = (suite.bindings[f"tensorflow:keras.losses.BinaryCrossentropy{form}"]
                         for form in ("", "(as_called)"))
    assert reference_identity(pinned.reference) == reference_identity(as_called.reference)


def _functions_called(function, *arguments) -> set:
    """The code objects of every Python function that ``function(*arguments)`` runs."""
    called = set()

    def profile(frame, event, _):
        if event == "call":
            called.add(frame.f_code)

    sys.setprofile(profile)
    try:
        function(*arguments)
    finally:
        sys.setprofile(None)
    return called


def _code_of(function):
    while isinstance(function, functools.partial):
        function = function.func
    return inspect.unwrap(function).__code__


def test_each_binding_names_the_convention_its_reference_computes(suite):
    """A binding names its convention (``Binding.convention``): each function named is one that its reference
    runs on the binding's first case, so a name cannot drift from what the checks compute."""
    from conformance.bindings import convention_function
    from conformance.problems import as_computed, make_problem

    first_check = {}
    for check in suite.checks:
        if check.kind == "value":
            first_check.setdefault(check.binding.id, check)
    assert set(first_check) == set(suite.bindings), "every binding has a value check"
    drifted = {}
    for binding_id, check in first_check.items():
        problem = as_computed(make_problem(check.case, check.dtype, check.binding), check.binding)
        called = _functions_called(check.binding.reference, problem)
        missing = [name for name in check.binding.convention if _code_of(convention_function(name)) not in called]
        if missing:
            drifted[binding_id] = missing
    assert not drifted, f"bindings whose reference does not compute the convention they name: {drifted}"


def test_a_binding_that_names_no_function_of_the_reference_is_refused(tmp_path, monkeypatch):
    from conformance.bindings import BindingError, load_bindings

    for number, (convention, complaint) in enumerate((
            (("reference.core.no_such_loss",), "names no function of the reference"),
            (("numpy.log",), "is not a function of the reference"),
            ((), "convention must name"))):
        module = tmp_path / f"unnamed_convention_{number}.py"
        module.write_text("import numpy as np\nfrom conformance.bindings import Binding\n"
                          "BINDINGS = [Binding(id='numpy:named', api='numpy.named', framework='numpy', "
                          "family='sigmoid', call=np.asarray, reference=np.asarray, dtypes=frozenset({'float32'}), "
                          f"convention={convention!r})]\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        with pytest.raises(BindingError, match=complaint):
            load_bindings([module.stem])


def test_a_keyword_selection_makes_only_the_checks_it_selects(tmp_path):
    """``-k`` is applied while the checks are parametrized (conformance.plugin._keyword_filter), so that a
    selection does not make every item of the suite only to deselect it. It must keep exactly what pytest's
    own -k keeps: the same check items as pytest's matcher picks from the whole collection, for expressions on
    every kind of name an item is matched by (framework words, dtypes, case ids, the test function and its
    module and directory, markers added with the parameters, case and negation)."""
    from _pytest.mark import KeywordMatcher
    from _pytest.mark.expression import Expression

    cases = small_cases_dir(tmp_path, "published.yaml", "behaviour.yaml")

    def collected(*selection):
        class Keep:
            items: list = []

            @pytest.hookimpl(trylast=True)
            def pytest_collection_modifyitems(self, items):
                Keep.items = list(items)

        run = run_in_process("--collect-only", "-q", f"--cases-dir={cases}", f"--reports-dir={tmp_path}",
                             *selection, str(ROOT / "tests" / "test_conformance.py"),
                             str(ROOT / "tests" / "test_gradients.py"), str(ROOT / "tests" / "test_behaviour.py"),
                             plugins=[Keep()])
        assert run.returncode in (0, pytest.ExitCode.NO_TESTS_COLLECTED), run.output[-2000:]
        return Keep.items

    everything = collected()
    assert len(everything) > 1000
    for expression in ("torch", "KERAS_torch and not compile", "not tensorflow and float16", "gradient",
                       "test_behaviour or article1", "xfail and sigmoid", "skip", "tests and bfloat16",
                       "test_conformance.py and paddle"):
        matcher = Expression.compile(expression)
        wanted = sorted(item.nodeid for item in everything if matcher.evaluate(KeywordMatcher.from_item(item)))
        made = sorted(item.nodeid for item in collected("-k", expression))
        assert wanted and made == wanted, (expression, len(made), len(wanted),
                                           sorted(set(made) ^ set(wanted))[:5])


def test_a_divergence_matching_nothing_is_stale(suite):
    ghost = divergence_data.Divergence("ghost", ("sigmoid-no_such_case-*",), "a reason long enough", "nowhere")
    stale = dict(divergence_data.stale([ghost, *suite.divergences], [(c.data_id, c.kind) for c in suite.checks]))
    assert stale[ghost] == ghost.match


@pytest.mark.parametrize("tensorflow_installed", [True, False], ids=["installed", "not_installed"])
def test_a_pattern_matching_only_checks_that_never_run_is_stale(suite, monkeypatch, tensorflow_installed):
    """A metric object keeps state and has no gradient check that runs: a pattern for its gradients hides
    nothing and says something false, even beside a live pattern of the same entry. Where TensorFlow is not
    installed (a single-framework environment) the live pattern's checks would run with it: not stale."""
    if not tensorflow_installed:
        from conformance import bindings

        monkeypatch.setattr(bindings, "_importable", lambda top_level: top_level != "tensorflow")
        suite = suite_module._build.__wrapped__(str(suite_module.CASES_DIR.resolve()), (), ("cpu",))  # not cached
        assert all(check.skip for check in suite.checks if check.binding.framework == "tensorflow")
    never_run = "binary_probs-binary_probs_edges-tensorflow:keras.metrics.BinaryCrossentropy*-float16-gradient"
    live = "binary_probs-binary_probs_edges-tensorflow:keras.losses.BinaryCrossentropy-float16-gradient"
    assert any(fnmatch.fnmatchcase(check.data_id, never_run) for check in suite.checks), "the example must exist"
    entry = divergence_data.Divergence("half_dead", (live, never_run), "a reason long enough", "nowhere",
                                       checks="gradient")
    stale = dict(suite_module.Suite(suite.cases, suite.bindings, suite.checks, (entry,)).stale_divergences())
    assert stale == {entry: (never_run,)}


def test_a_dtype_left_out_by_a_switch_skips_with_it_and_keeps_its_entries_live(suite):
    """A framework too costly to check in every dtype by default leaves some out behind a switch: their checks
    skip with the switch's text, and an entry measured with it on is not stale in a run without it."""
    binding_id = "torch:nn.functional.binary_cross_entropy_with_logits"
    reason = "SOME_SWITCH=full runs it"
    # requires=(): the same in an environment without torch (its checks would skip for that first)
    left_out = dataclasses.replace(suite.bindings[binding_id], requires=(), left_out_dtypes=frozenset({"float16"}),
                                   left_out_reason=reason)
    assert left_out.left_out("float16") == reason and left_out.left_out("float32") is None
    assert left_out.left_out() is None  # not every dtype
    checks = suite_module.generate(suite.cases, {binding_id: left_out}, ())
    by_dtype = {}
    for check in checks:
        by_dtype.setdefault(check.dtype, set()).add(check.skip)
    assert by_dtype["float16"] == {reason}
    assert reason not in by_dtype["float32"]
    pattern = f"sigmoid-article0_sigmoid_rows-{binding_id}-float16"
    assert any(check.data_id == pattern for check in checks), "the example must exist"
    entry = divergence_data.Divergence("switched", (pattern,), "a reason long enough", "nowhere")
    assert suite_module.Suite(suite.cases, {binding_id: left_out}, tuple(checks), (entry,)).stale_divergences() == []
    declared_away = dataclasses.replace(left_out, dtypes=left_out.dtypes - {"float16"})  # not declared: never runs
    checks = suite_module.generate(suite.cases, {binding_id: declared_away}, ())
    stale = suite_module.Suite(suite.cases, {binding_id: declared_away}, tuple(checks), (entry,)).stale_divergences()
    assert stale == [(entry, (pattern,))]


def test_no_shipped_divergence_is_stale(whole_suite_collected):
    assert [(entry.id, patterns) for entry, patterns in whole_suite_collected.stale] == []


def test_a_stale_divergence_is_reported(tmp_path):
    cases = small_cases_dir(tmp_path, "published.yaml", divergences=False)
    (cases / "divergences.yaml").write_text(
        "divergences:\n  - id: ghost_entry\n    versions: {numpy: \">=1.26\"}\n    match: [\"sigmoid-no_such_case-*\"]\n"
        "    reason: a divergence that matches nothing at all\n    source: nowhere\n")
    run = run_in_process("--collect-only", "-q", f"--cases-dir={cases}", f"--reports-dir={tmp_path}",
                         str(ROOT / "tests"))
    assert run.returncode == 0 and "stale divergences" in run.output and "ghost_entry" in run.output, run.output[-2000:]


@dataclasses.dataclass
class Collected:
    """The items of one in-process collection of the whole suite, with pytest's own ``-k`` matcher."""
    items: list
    stale: list

    def selected(self, keyword: str) -> list[str]:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression

        expression = Expression.compile(keyword)
        return [item.nodeid for item in self.items if expression.evaluate(KeywordMatcher.from_item(item))]


@pytest.fixture(scope="module")
def whole_suite_collected(request, tmp_path_factory):
    """The whole suite's items, for every self-test that asks what a selection picks or what is stale: this
    run's own when it collected the whole shipped suite (the README's ``pytest``), else collected once, in
    this process (the suite itself is already built here)."""
    from conformance.plugin import COLLECTED_ITEMS, shipped_suite_collected, stale_divergences

    if shipped_suite_collected(request.config):
        return Collected(request.config.stash[COLLECTED_ITEMS], stale_divergences(request.config))

    class Keep:
        def __init__(self):
            self.items, self.stale = [], []

        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, config, items):
            self.items = list(items)

        def pytest_collection_finish(self, session):
            self.stale = stale_divergences(session.config)

    keep = Keep()
    directory = tmp_path_factory.mktemp("collected")
    code = pytest.main(["--collect-only", "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:terminal",
                        "-p", "no:xdist", f"--reports-dir={directory}", f"--rootdir={ROOT}", str(ROOT / "tests")],
                       plugins=[keep, NoFinalCollection()])
    assert code == 0 and keep.items, f"collecting the whole suite in-process ended with {code}"
    return Collected(keep.items, keep.stale)


@pytest.mark.parametrize("word, binding_prefixes", [
    pytest.param("tensorflow", ("tensorflow:",), id="tf"),
    pytest.param("keras", ("tensorflow:keras.", "tf_keras:keras.", "keras_torch:keras.", "keras_jax:keras."), id="k3"),
    pytest.param("keras_torch", ("keras_torch:keras.",), id="kt"),
    pytest.param("keras_jax", ("keras_jax:keras.",), id="kj"),
    pytest.param("tf_keras", ("tf_keras:",), id="k2"),
    pytest.param("torch", ("torch:",), id="pt"),
    pytest.param("jax", ("jax:", "keras_jax:keras."), id="jx"),
    pytest.param("paddle", ("paddle:",), id="pd"),
    pytest.param("mlx", ("mlx:",), id="mx"),
    pytest.param("tinygrad", ("tinygrad:",), id="tg"),
])
def test_selection_by_framework_word(word, binding_prefixes, whole_suite_collected):
    ids = whole_suite_collected.selected(word)
    assert ids, f"-k {word} selects nothing"
    for node_id in ids:
        parameters = node_id.split("[", 1)[-1]
        assert any(prefix in parameters for prefix in binding_prefixes), node_id


SELECTIONS = [
    pytest.param("torch", ("torch",), ("tensorflow", "keras", "jax", "mlx", "tinygrad"), id="pt"),
    pytest.param("jax", ("jax",), ("tensorflow", "keras", "torch", "mlx", "tinygrad"), id="jx"),
    # Paddle's and Keras-on-torch's calls run in worker processes: the test process imports no framework at all
    pytest.param("paddle", ("paddle",), ("tensorflow", "keras", "torch", "jax", "paddle", "mlx", "tinygrad"),
                 id="pd"),
    pytest.param("keras_torch", ("keras", "torch"),
                 ("tensorflow", "keras", "torch", "jax", "paddle", "mlx", "tinygrad"), id="kt"),
    pytest.param("keras_jax", ("keras", "jax"),
                 ("tensorflow", "keras", "torch", "jax", "paddle", "mlx", "tinygrad"), id="kj"),
    pytest.param("mlx", ("mlx",), ("tensorflow", "keras", "torch", "jax", "paddle", "tinygrad"), id="mx"),
    pytest.param("tinygrad", ("tinygrad",), ("tensorflow", "keras", "torch", "jax", "paddle", "mlx"), id="tg"),
]


# niceness of the selection children: they start when collection ends and must not slow the run's own items
SELECTION_CHILD_NICENESS = 10


def _selection_child_command(word, others, directory):
    """A fresh interpreter is the point here (imports accumulate); its suite is the published cases only."""
    cases = small_cases_dir(directory, "published.yaml")
    script = (
        "import os, sys, pytest\n"
        f"if hasattr(os, 'nice'): os.nice({SELECTION_CHILD_NICENESS})\n"
        # one dtype: what a framework imports does not depend on it, and torch's compiled forms build a graph
        # for each dtype in this fresh process
        f"code = pytest.main(['-o', 'addopts=', '-p', 'no:cacheprovider', '-q', '-k', '{word} and article3 and float32',"
        f" '--cases-dir={cases}', '--reports-dir={directory}', 'tests/test_conformance.py'])\n"
        f"print('IMPORTED', sorted(m for m in {others!r} if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    return [sys.executable, "-c", script]


class SelectionChildren:
    """The children of the selections a session runs, submitted together and run two at a time: each is a fresh
    interpreter that the test process only waits for, so they overlap on the machine's cores instead of queueing.
    A plain run submits them when its collection ends (:func:`start_selection_children`, called by conftest.py),
    at a lower priority: with warm caches the run's items leave a core idle, and they run there (they took 24 s of
    waiting in the test's first item when they started with it); an xdist worker collects every item but runs only
    some, so there each child starts when its item runs."""

    TIMEOUT = 300

    def __init__(self, tmp_path_factory):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.tmp_path_factory = tmp_path_factory
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.children = {}
        self.processes = []
        self.closed = False
        self.lock = threading.Lock()  # a child starts either before close() kills it or not at all

    def _run(self, command):
        with self.lock:
            if self.closed:
                raise RuntimeError("the session ended before this child started")
            process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
            self.processes.append(process)
        try:
            stdout, stderr = process.communicate(timeout=self.TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr += f"\n(killed after {self.TIMEOUT} s)"
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def start(self, param_id):
        import importlib.util

        if param_id not in self.children:
            word, requires, others = next(param.values for param in SELECTIONS if param.id == param_id)
            missing = [module for module in requires if importlib.util.find_spec(module) is None]  # not imported
            self.children[param_id] = (
                f"{', '.join(missing)} not installed: nothing to select" if missing else self.pool.submit(
                    self._run, _selection_child_command(word, others, self.tmp_path_factory.mktemp(f"select_{word}"))))
        return self.children[param_id]

    def close(self):
        """Ends the children still running (a run stopped early does not wait for them)."""
        with self.lock:
            self.closed = True
            for process in self.processes:
                if process.poll() is None:
                    process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)


_SESSION_CHILDREN: dict = {}


def start_selection_children(session, tmp_path_factory=None):
    """The session's children, the first call submitting those of every selection item it runs (conftest.py
    calls it when collection ends); an xdist worker collects every item but runs only some, so there each child
    starts when its item asks for it."""
    children = _SESSION_CHILDREN.get(id(session))
    if children is None:
        factory = tmp_path_factory or getattr(session.config, "_tmp_path_factory", None)
        if factory is None:
            return None
        children = _SESSION_CHILDREN[id(session)] = SelectionChildren(factory)
        if "PYTEST_XDIST_WORKER" not in os.environ:
            for item in session.items:
                if getattr(item, "originalname", "") == test_selecting_one_framework_imports_no_other.__name__:
                    children.start(item.callspec.id)
    return children


def stop_selection_children(session) -> None:
    """Ends a session's children that no item waited for (a run stopped or deselected before them)."""
    children = _SESSION_CHILDREN.pop(id(session), None)
    if children is not None:
        children.close()


@pytest.fixture(scope="module")
def selection_children(request, tmp_path_factory):
    yield start_selection_children(request.session, tmp_path_factory).start
    stop_selection_children(request.session)


def test_children_still_running_when_the_session_ends_are_killed(tmp_path_factory):
    """A run stopped before the import-isolation items does not wait for their children (up to 300 s each)."""
    import time

    children = SelectionChildren(tmp_path_factory)
    future = children.pool.submit(children._run, [sys.executable, "-c", "import time; time.sleep(120)"])
    deadline = time.monotonic() + 30
    while not children.processes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert children.processes, "the child never started"
    started = time.monotonic()
    children.close()
    assert future.result().returncode != 0
    assert time.monotonic() - started < 30
    with pytest.raises(RuntimeError, match="session ended"):
        children._run([sys.executable, "-c", "pass"])


@pytest.mark.parametrize("word, requires, others", SELECTIONS)
def test_selecting_one_framework_imports_no_other(word, requires, others, request, selection_children):
    child = selection_children(request.node.callspec.id)
    if isinstance(child, str):
        pytest.skip(child)
    result = child.result()
    assert "IMPORTED []" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0


def test_xla_compiles_are_kept_in_the_persistent_compilation_cache():
    """JAX compiles per shape (tens of ms each): the adapter turns on JAX's persistent cache for every compile,
    where the user's JAX_COMPILATION_CACHE_DIR says, else under the temporary directory. (The name leaves
    out the word that selects JAX's bindings: test_selection_by_framework_word.)"""
    import tempfile

    pytest.importorskip("jax", reason="jax is not installed (the jax extra)")
    if os.environ.get("JAX_ENABLE_COMPILATION_CACHE", "").lower() in ("0", "false"):
        pytest.skip("JAX_ENABLE_COMPILATION_CACHE turns JAX's persistent cache off in this run")
    from conformance.frameworks import jax as adapter

    jax = adapter._jax()
    directory = Path(jax.config.jax_compilation_cache_dir or "")
    assert directory == Path(os.environ.get("JAX_COMPILATION_CACHE_DIR")
                             or Path(tempfile.gettempdir()) / f"xent_jax_cache_{adapter._user()}")
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    # a compile of well under a second, kept now or by an earlier run (the same program has the same key)
    jax.jit(lambda x: 2 * x)(jax.numpy.ones(3)).block_until_ready()
    assert any(directory.iterdir()), f"nothing in {directory}"


def test_every_skip_hint_names_an_extra_of_the_project():
    """A binding whose framework is absent tells the user which extra installs it: that extra must exist."""
    import tomllib

    from conformance.bindings import load_bindings

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {binding.extra or binding.framework for binding in load_bindings().values()}
    assert named <= set(extras), sorted(named - set(extras))


def test_a_worker_process_runs_the_calls_and_survives_a_crash(monkeypatch):
    """An isolated binding's call runs in its worker: a framework's error comes back as itself, a crash of the
    worker fails that call with its exit code, and the next call starts a new worker."""
    import importlib

    from conformance.bindings import Problem
    from conformance.isolation import WorkerCrashed

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    binding = importlib.import_module("isolated_worker").BINDINGS[0]

    def problem(x):
        return Problem("sigmoid", {"logits": np.array([x]), "labels": np.array([0.0])}, {}, "float64")

    first = int(binding.call(problem(1.0))[0])
    assert first != os.getpid() and int(binding.call(problem(2.0))[0]) == first  # one worker for the run
    with pytest.raises(ValueError, match="refused: a negative logit"):
        binding.call(problem(-1.0))
    with pytest.raises(WorkerCrashed, match="exit code -11"):
        binding.call(problem(float("nan")))
    assert int(binding.call(problem(1.0))[0]) not in (first, os.getpid())


def test_each_environment_of_a_module_has_its_own_worker(monkeypatch):
    """A module whose bindings need two environments (a backend picked at import) gets a worker for each: calls
    under one environment share a worker, and another environment's calls run in another."""
    import importlib

    from conformance.bindings import Problem
    from conformance.isolation import isolate

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    plain = importlib.import_module("isolated_worker").BINDINGS
    first, second = (isolate(plain, "isolated_worker", {"XENT_SELFTEST_WORKER": name})[0] for name in "ab")
    problem = Problem("sigmoid", {"logits": np.array([1.0]), "labels": np.array([0.0])}, {}, "float64")
    pid_a, pid_b = int(first.call(problem)[0]), int(second.call(problem)[0])
    assert len({pid_a, pid_b, os.getpid()}) == 3
    assert int(first.call(problem)[0]) == pid_a and int(second.call(problem)[0]) == pid_b


@pytest.mark.parametrize("backend", [pytest.param("torch", id="pt"), pytest.param("jax", id="jx")])
def test_each_backend_computes_in_a_worker_of_its_own(backend):
    """Keras 3 on torch and on JAX (conformance/frameworks/keras_backends.py, keras_jax.py) runs each backend's
    calls in a worker with KERAS_BACKEND set to it. There a float64 metric's result is float32 (Keras' result
    type narrows 64-bit types on every backend but TensorFlow's), which it would not be in a worker left on
    TensorFlow; a float32 loss matches the reference, and its gradient comes back from the backend's autodiff."""
    import importlib.util

    from conformance.bindings import Problem

    for module in ("keras", backend):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[keras_{backend}]' -c constraints.txt)")
    from conformance.frameworks import keras_backends, keras_jax

    # every form, the pinned ones included (the default run takes Keras on JAX's as called only)
    bindings = {binding.id: binding for binding in (*keras_backends.BINDINGS, *keras_jax.EVERY_FORM)}
    prefix = f"keras_{backend}:keras."

    def problem(dtype):
        return Problem("sigmoid", {"logits": np.array([[0.5, -2.0, 3.0]], dtype=dtype),
                                   "labels": np.array([[0.0, 1.0, 1.0]], dtype=dtype)}, {}, dtype)

    assert bindings[prefix + "metrics.BinaryCrossentropy(from_logits=True)"].call(problem("float64")).dtype == np.float32
    loss = bindings[prefix + "losses.binary_crossentropy(from_logits=True)"]
    got, exact = loss.call(problem("float32")), loss.reference(problem("float32"))
    assert got.dtype == np.float32 and np.allclose(got, exact, rtol=4e-7, atol=0), (got, exact)
    gradient = loss.gradient(problem("float32"))["logits"]
    assert gradient.shape == (1, 3) and np.all(np.isfinite(gradient)) and gradient[0, 1] < 0 < gradient[0, 0]


def test_the_apple_adapter_gives_the_article_number_in_the_dtype_asked():
    """The MLX adapter (conformance/frameworks/mlx.py) gives the article's 0.6657319 on class indices, the same
    loss on the one-hot row, a float64 result on float64 inputs (mx.array would narrow them unasked) and
    mx.grad's softmax gradient."""
    import importlib.util

    from conformance.bindings import Problem, load_bindings

    if importlib.util.find_spec("mlx") is None:
        pytest.skip("mlx is not installed (pip install -e '.[mlx]' -c constraints.txt)")
    bindings = load_bindings()
    sparse, soft = bindings["mlx:nn.losses.cross_entropy"], bindings["mlx:nn.losses.cross_entropy(probabilities)"]
    logits = np.array([[0.2, 0.1, 0.9]])
    for dtype in ("float32", "float64"):
        problem = Problem("sparse_softmax", {"logits": logits.astype(dtype), "labels": np.array([2])}, {}, dtype)
        got, exact = sparse.call(problem), sparse.reference(problem)
        assert got.dtype == dtype and np.allclose(got, exact, rtol=2e-6, atol=0), (dtype, got, exact)
        assert round(float(exact[0]), 7) == 0.6657319
    one_hot = Problem("softmax", {"logits": logits.astype("float32"), "labels": np.array([[0.0, 0.0, 1.0]],
                                                                                        "float32")}, {}, "float32")
    assert np.allclose(soft.call(one_hot), soft.reference(one_hot), rtol=4e-7, atol=0)
    gradient = sparse.gradient(problem)["logits"]
    exact_gradient, _ = sparse.reference_gradient(problem)["logits"]
    assert np.allclose(gradient, np.asarray(exact_gradient, np.float64), rtol=2e-6, atol=0)


def test_the_kernel_compiler_adapter_gives_the_article_number_in_the_dtype_asked():
    """The tinygrad adapter (conformance/frameworks/tinygrad.py), in its pinned forms, which the default run leaves
    to XENT_TINYGRAD=full: the article's 0.6657319 from Tensor.sparse_categorical_crossentropy (class axis last)
    and Tensor.cross_entropy (class axis 1, where the case's last axis moves) in float32 and float64, a 0-d
    target of a 1-D input kept 0-d, and Tensor.gradient's softmax gradient in the case's layout."""
    import importlib.util

    from conformance.bindings import Problem

    if importlib.util.find_spec("tinygrad") is None:
        pytest.skip("tinygrad is not installed (pip install -e '.[tinygrad]' -c constraints.txt)")
    from conformance.frameworks import tinygrad as adapter

    if adapter.clang_missing():
        pytest.skip(adapter.clang_missing())
    bindings = {binding.id: binding for binding in adapter.EVERY_FORM}  # the pinned forms too (XENT_TINYGRAD=full)
    logits = np.array([[[0.2, 0.5], [0.1, 0.0], [0.9, 0.0]]])  # (batch 1, classes 3, 2 positions), axis 1
    labels = np.array([[2, 0]])
    for binding_id in ("tinygrad:Tensor.sparse_categorical_crossentropy", "tinygrad:Tensor.cross_entropy"):
        binding = bindings[binding_id]
        for dtype in ("float32", "float64"):
            problem = Problem("sparse_softmax", {"logits": logits.astype(dtype), "labels": labels},
                              {"axis": 1, "reduction": "none"}, dtype)
            got, exact = binding.call(problem), binding.reference(problem)
            assert got.dtype == dtype and got.shape == (1, 2), (binding_id, got)
            assert np.allclose(got, np.asarray(exact, np.float64), rtol=2e-6, atol=0), (binding_id, dtype, got)
            assert round(float(exact[0, 0]), 7) == 0.6657319
        gradient = binding.gradient(problem)["logits"]
        exact_gradient, _ = binding.reference_gradient(problem)["logits"]
        assert gradient.shape == logits.shape
        assert np.allclose(gradient, np.asarray(exact_gradient, np.float64), rtol=2e-6, atol=1e-15)
    unbatched = Problem("sparse_softmax", {"logits": np.array([0.2, 0.1, 0.9], "float32"), "labels": np.array(2)},
                        {"reduction": "none"}, "float32")
    assert bindings["tinygrad:Tensor.cross_entropy"].call(unbatched).shape == ()


def test_reports_are_written(tmp_path):
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    cases = small_cases_dir(tmp_path, "published.yaml")
    # whichever frameworks this environment has (a single-framework tox environment has one); not the compiled
    # forms, whose inductor builds this test does not need
    run = run_in_process("-q", "-k", "article3 and (float32 or float64) and not compile", f"--junitxml={junit}",
                         f"--html={html}", "--self-contained-html", f"--cases-dir={cases}",
                         f"--reports-dir={tmp_path}", str(ROOT / "tests" / "test_conformance.py"))
    assert run.returncode == 0, run.output[-3000:]
    assert junit.exists() and html.exists()
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity["totals"]["passed"] >= 3
    assert all("max_ulp" in check for check in parity["checks"] if check["outcome"] == "passed")
    assert "torch" in (tmp_path / "parity.md").read_text()
    assert 'name="max_ulp"' in junit.read_text()


def test_the_readme_lists_every_divergence(suite):
    text = (ROOT / "README.md").read_text()
    for entry in suite.divergences:
        assert f"`{entry.id}`" in text, f"README's known divergences lack {entry.id}"


def _measured(binding, max_ulp, case="c", kind="value"):
    return {"check": f"softmax-{case}-{binding}-float32" + ("-gradient" if kind == "gradient" else ""),
            "framework": binding.split(":")[0], "binding": binding, "api": binding, "case": case, "dtype": "float32",
            "kind": kind, "outcome": "passed", "max_ulp": max_ulp, "median_ulp": 0.1, "bound_ratio": 0.01,
            "n_elements": 4}


def test_an_api_far_behind_its_best_peer_is_flagged():
    from conformance import parity
    from conformance.reports import accuracy_rows

    records = [_measured("aa:best", 0.3), _measured("bb:close", 3.0), _measured("cc:lags", 90.0),
               _measured("cc:lags", 2.0, kind="gradient"), _measured("aa:best", 0.0, kind="gradient")]
    peers = parity.peer_comparison(records)
    lagging = {check for check, peer in peers.items() if peer["lags_peers"]}
    # 90 ULP is 180 times the best (counted as half an ULP) and over 4 ULP; 3 ULP is within a few ULPs;
    # the 2-ULP gradient is 4 times its peer's 0 (half an ULP)
    assert lagging == {"softmax-c-cc:lags-float32"}
    assert peers["softmax-c-cc:lags-float32"]["best_peer"] == "aa:best"
    document = parity.document(records, {"packages": {}, "python": "3", "cpu": "x", "cores": 1}, False)
    assert "Behind the best peer (1 checks)" in parity.markdown(document)
    assert "⚑ 1 behind the best peer" in parity.html_page(document)
    row = next(r for r in accuracy_rows(records) if r["binding"] == "cc:lags" and r["quantity"] == "loss")
    assert row["behind_peers"] == 1 and row["worst_peer_ratio"] == 180.0
