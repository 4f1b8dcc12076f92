"""``xent-conformance describe``: one command prints every fact the suite holds about one API."""

import subprocess
import sys

import pytest

from conformance import cli

pytestmark = pytest.mark.selftest


def test_one_api_with_its_cases_skips_divergences_and_behaviour():
    text = cli.describe("paddle:nn.functional.cross_entropy")
    assert text.splitlines()[0] == "paddle:nn.functional.cross_entropy"
    assert "convention: " in text and "dtypes: " in text
    assert "sparse_tiny_loss [cases/extreme.yaml]" in text  # a case and its file
    assert "class_empty_batch [cases/behaviour.yaml, 3 grid points]" in text  # grid points of one case together
    assert "skips (" in text and "registers no float16 or bfloat16 kernel" in text  # a skip with its reason
    assert "paddle_softmax_clipped_at_minus_64 (precision" in text  # a divergence ...
    assert "source: https://github.com/PaddlePaddle/Paddle" in text  # ... with its source
    assert "behaviour cells (" in text and "class_label_negative: " in text


def test_a_pattern_lists_what_it_matches_and_a_wrong_name_is_refused():
    assert cli.describe("*BCELoss*").splitlines()[1:] == [
        "    paddle:nn.BCELoss", "    paddle:nn.BCELoss(as_called)", "    torch:nn.BCELoss",
        "    torch:nn.BCELoss(as_called)"]
    with pytest.raises(SystemExit, match="no binding matches 'torch:nn.CrossEntropy'; did you mean one of: "
                                         "torch:nn.CrossEntropyLoss"):
        cli.describe("torch:nn.CrossEntropy")


def test_the_command_line_describes_without_importing_a_framework():
    code = ("import sys; from conformance.cli import main; main(['describe', 'jax:optax.softmax_cross_entropy']); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'paddle') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("jax:optax.softmax_cross_entropy\n")
    assert result.stdout.strip().endswith("[]")


def test_running_the_suite_needs_its_tests(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    assert cli.main(["-k", "torch"]) == 4
    assert "neither beside the package nor installed with it" in capsys.readouterr().err


def test_running_the_suite_is_pytest_on_the_project_with_reports_here(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(pytest, "main", lambda arguments: seen.append(arguments) or 0)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["-k", "torch", "-n", "2"]) == 0
    assert seen == [["--rootdir", str(cli.ROOT), "-c", str(cli.ROOT / "pyproject.toml"),
                     "-o", f"cache_dir={tmp_path / '.pytest_cache'}", str(cli.ROOT / "tests"),
                     f"--reports-dir={tmp_path / 'reports'}", "-k", "torch", "-n", "2"]]
    cli.main(["--reports-dir=elsewhere"])
    assert seen[-1][7:] == ["--reports-dir=elsewhere"]
