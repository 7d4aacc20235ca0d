"""What a run says: disp levels, the logger, the progress bar, and warnings counted once a run."""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy.optimize import minimize

from nes_asktell import IPOP, SNES, XNES, Evaluator, NESWarning, OpenES, nes


def sphere(x: np.ndarray) -> float:
    return float(x @ x)


def nan_fun(x: np.ndarray) -> float:
    return math.nan


LINE = re.compile(
    r"^(XNES|OpenES|IPOP) gen +(\d+)  nfev +\d+  best .*  sigma .* +[\d.]+ s +\S+ fev/s"
)


def lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


@pytest.mark.parametrize(("disp", "gens"), [(1, [*range(1, 10), 10, 20]), (2, list(range(1, 26)))])
def test_disp_levels_print_lines_with_time_and_rate(
    capsys: pytest.CaptureFixture[str], disp: int, gens: list[int]
) -> None:
    XNES(np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=25, disp=disp)
    out = lines(capsys.readouterr().out)
    assert all(LINE.match(ln) for ln in out), out
    printed = [int(m.group(2)) for ln in out if (m := LINE.match(ln))]
    # one line per generation listed; the last generation's is the last line, with the
    # criteria that stopped the run, and is not printed twice
    assert printed == (gens if 25 in gens else [*gens, 25])
    assert out[-1].endswith("; stops: maxiter")
    assert not any("stops" in ln for ln in out[:-1])


def test_a_generations_line_comes_before_the_callbacks_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def callback(res: object) -> None:
        print(f"callback {es.generation}")

    es = XNES(np.ones(2), 0.5, rng=0)
    es.optimize(sphere, maxiter=3, disp=2, callback=callback)
    out = lines(capsys.readouterr().out)
    assert [ln.split()[0] + " " + ln.split()[2] if LINE.match(ln) else ln for ln in out] == [
        "XNES 1",
        "callback 1",
        "XNES 2",
        "callback 2",
        "callback 3",  # (generation 3 ends the run: its line is the last line)
        "XNES 3",
    ]
    assert out[-1].endswith("; stops: maxiter")


def test_a_run_ended_by_an_error_still_prints_its_last_told_generation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # (a generation that ends the run has no line of its own, the last line is its line; a
    # generation the run goes on after has its line at once, before an error in the next)
    calls = []

    def objective(x: np.ndarray) -> float:
        calls.append(1)
        if len(calls) > 2 * 6:  # the third generation (popsize 6 at d = 2)
            raise KeyboardInterrupt
        return sphere(x)

    es = XNES(np.ones(2), 0.5, rng=0)
    with pytest.raises(KeyboardInterrupt):
        es.optimize(objective, disp=2)
    out = lines(capsys.readouterr().out)
    assert [int(m.group(2)) for ln in out if (m := LINE.match(ln))] == [1, 2]
    assert es.generation == 2


@pytest.mark.parametrize("inner_disp", [0, 1])
def test_disp_prints_the_lines_of_its_own_run_not_those_of_a_nested_run(
    capsys: pytest.CaptureFixture[str], inner_disp: int
) -> None:
    # the stdout handler of disp printed every record of the logger: a run nested in the
    # objective printed its lines with disp=0, and each of its lines twice with disp=1
    inner_lines = []

    def objective(x: np.ndarray) -> float:
        XNES(x, 0.1, rng=0).optimize(sphere, maxiter=2, disp=inner_disp)
        inner_lines.extend(lines(capsys.readouterr().out))
        return sphere(x)

    es = XNES(np.ones(2), 0.5, rng=0)
    es.optimize(objective, maxiter=1, disp=1)
    outer = lines(capsys.readouterr().out)
    assert [int(m.group(2)) for ln in outer if (m := LINE.match(ln))] == [1]
    inner = [int(m.group(2)) for ln in inner_lines if (m := LINE.match(ln))]
    assert inner == [1, 2] * es.popsize * inner_disp


def test_runs_with_disp_in_two_threads_that_end_out_of_order_print_and_restore_logging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # each run saved the logger's level and propagation and restored them at its end: run A
    # ending first reset the logger under run B, whose lines were no longer printed, and B
    # then left the logger at INFO without propagation, for good
    logger = logging.getLogger("nes_asktell")
    before = (logger.level, logger.propagate, list(logger.handlers))
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()

    def fun_a(x: np.ndarray) -> float:
        a_in.set()
        b_in.wait(timeout=60)
        return sphere(x)

    def fun_b(x: np.ndarray) -> float:
        b_in.set()
        a_done.wait(timeout=60)
        return sphere(x)

    def run_a() -> None:
        XNES(np.ones(2), 0.5, rng=0).optimize(fun_a, maxiter=1, disp=1)
        a_done.set()

    def run_b() -> None:
        a_in.wait(timeout=60)
        OpenES(np.ones(2), 0.5, rng=1).optimize(fun_b, maxiter=3, disp=1)

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert a_done.is_set()
    printed = [m.group(1, 2) for ln in lines(capsys.readouterr().out) if (m := LINE.match(ln))]
    assert sorted(printed) == [("OpenES", g) for g in "123"] + [("XNES", "1")]
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


@pytest.mark.parametrize("disp", [False, 0])
def test_disp_off_prints_nothing(capsys: pytest.CaptureFixture[str], disp: int) -> None:
    XNES(np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=5, disp=disp)
    assert capsys.readouterr().out == ""


def test_disp_true_is_level_one_and_leaves_logging_as_it_was(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("nes_asktell")
    before = (logger.level, logger.propagate, list(logger.handlers))
    OpenES(np.ones(2), 0.1, rng=0).optimize(sphere, maxiter=12, disp=True)
    printed = [int(m.group(2)) for ln in lines(capsys.readouterr().out) if (m := LINE.match(ln))]
    assert printed == [*range(1, 10), 10, 12]
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


@pytest.mark.parametrize(
    ("disp", "exc", "match"),
    [
        (3, ValueError, r"`disp` must be 0, 1, 2, True or False, but got 3\."),
        (-1, ValueError, r"`disp` must be 0, 1, 2, True or False, but got -1\."),
        ("yes", TypeError, r"`disp` must be 0, 1, 2, True or False, but got 'yes'\."),
        (1.0, TypeError, r"`disp` must be 0, 1, 2, True or False, but got 1\.0\."),
    ],
)
def test_bad_disp_is_rejected_before_anything_runs(
    disp: object, exc: type[Exception], match: str
) -> None:
    es = XNES(np.ones(2), 0.5, rng=0)
    with pytest.raises(exc, match=match):
        es.optimize(sphere, maxiter=3, disp=disp)  # type: ignore[arg-type]
    assert es.nfev == 0


def test_lines_go_to_the_nes_asktell_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="nes_asktell")
    XNES(np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=12)
    records = [r for r in caplog.records if r.name == "nes_asktell"]
    info = [r.getMessage() for r in records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert len(info) == 9 + 1 + 1  # generations 1-9 and 10, then the last line (12)
    assert len(debug) == 1  # generation 11 (12's line is the last line)
    assert info[-1].startswith("XNES gen     12")
    assert info[-1].endswith("stops: maxiter")


def test_nothing_is_logged_at_the_default_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    XNES(np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=3)
    assert [r for r in caplog.records if r.name == "nes_asktell"] == []


def test_progress_bar_shows_generations_nfev_and_best(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("tqdm")
    res = XNES(np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=7, progress=True)
    err = capsys.readouterr().err
    assert "7/7" in err
    assert f"nfev={res.nfev}" in err
    assert f"best={res.fun:.6e}" in err
    # a count tqdm would format as a float (20000 as "2e+4") is shown as the integer it is
    res = XNES(np.ones(2), 0.5, rng=0, popsize=2000).optimize(sphere, maxiter=10, progress=True)
    assert res.nfev == 20000
    assert "nfev=20000" in capsys.readouterr().err


def test_progress_bar_without_tqdm_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    es = XNES(np.ones(2), 0.5, rng=0)
    with pytest.raises(ImportError, match=r"pip install 'nes_asktell\[progress\]'"):
        es.optimize(sphere, maxiter=2, progress=True)
    assert es.nfev == 0
    ipop = IPOP("snes", np.ones(2), 0.5, rng=0)
    with pytest.raises(ImportError, match=r"pip install 'nes_asktell\[progress\]'"):
        ipop.optimize(sphere, maxiter=2, progress=True)
    assert ipop.nfev == 0


def test_bad_progress_is_rejected() -> None:
    es = XNES(np.ones(2), 0.5, rng=0)
    with pytest.raises(TypeError, match=r"`progress` must be True or False, but got 'bar'"):
        es.optimize(sphere, maxiter=2, progress="bar")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`vectorized` must be True or False, but got 1.5"):
        es.optimize(sphere, maxiter=2, vectorized=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`disp` must be 0, 1, 2, True or False, but got 3"):
        es.optimize(sphere, maxiter=2, disp=3)
    assert es.nfev == 0


def test_disp_levels_reach_optimize_of_ipop(capsys: pytest.CaptureFixture[str]) -> None:
    IPOP("xnes", np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=12, disp=2)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " gen " in ln]
    assert len(lines) == 12  # every generation, the last one's with the stops
    assert lines[-1].endswith("stops: maxiter")


def only_nes(record: pytest.WarningsRecorder) -> list[warnings.WarningMessage]:
    return [w for w in record.list if issubclass(w.category, NESWarning)]


def test_all_nan_run_warns_once_then_counts_at_the_callers_line(
    recwarn: pytest.WarningsRecorder,
) -> None:
    SNES(np.ones(3), 0.5, rng=0).optimize(nan_fun, maxiter=40)
    caught = only_nes(recwarn)
    assert len(caught) == 2
    first, summary = (str(w.message) for w in caught)
    assert first == "generation 0: every fitness value is non-finite; the update is skipped."
    assert summary.startswith("this run raised 40 warnings like this one (only the first")
    assert all(w.filename == __file__ for w in caught)


def test_all_nan_through_minimize_points_at_the_caller(
    recwarn: pytest.WarningsRecorder,
) -> None:
    minimize(nan_fun, np.ones(2), method=nes, options={"rng": 0, "maxiter": 30})
    caught = only_nes(recwarn)
    assert len(caught) == 2
    assert "raised 30 warnings" in str(caught[1].message)
    assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]


def test_each_run_counts_its_own_warnings(recwarn: pytest.WarningsRecorder) -> None:
    es = XNES(np.ones(2), 0.5, rng=0)
    es.optimize(nan_fun, maxiter=3)
    es.optimize(nan_fun, maxiter=5)
    messages = [str(w.message) for w in only_nes(recwarn)]
    assert [m.split(" (")[0] for m in messages if m.startswith("this run")] == [
        "this run raised 3 warnings like this one",
        "this run raised 2 warnings like this one",
    ]


def test_a_single_warning_gets_no_summary(recwarn: pytest.WarningsRecorder) -> None:
    calls = {"n": 0}

    def nan_once(x: np.ndarray) -> float:
        calls["n"] += 1
        return math.nan if calls["n"] <= 6 else sphere(x)  # XNES d=2: popsize 6

    XNES(np.ones(2), 0.5, rng=0).optimize(nan_once, maxiter=4)
    assert len(only_nes(recwarn)) == 1


def test_ipop_counts_over_all_its_runs(recwarn: pytest.WarningsRecorder) -> None:
    IPOP("xnes", np.ones(2), 0.5, rng=0, max_restarts=2).optimize(nan_fun, maxiter=200)
    caught = only_nes(recwarn)
    assert len(caught) == 2
    assert all(w.filename == __file__ for w in caught)


def test_worker_failures_are_counted_once(recwarn: pytest.WarningsRecorder) -> None:
    def fails(x: np.ndarray) -> float:
        raise ZeroDivisionError("boom")

    with ThreadPoolExecutor(2) as pool:
        XNES(np.ones(2), 0.5, rng=0).optimize(fails, maxiter=6, workers=pool)
    caught = [str(w.message) for w in only_nes(recwarn)]
    # two kinds (the failures, the skipped update), each shown once and counted once
    assert len(caught) == 4, caught
    assert "ZeroDivisionError: boom" in caught[0]
    assert caught[1].startswith("generation 0: every fitness value is non-finite")
    assert (
        sorted(m.split(" (")[0] for m in caught[2:])
        == ["this run raised 6 warnings like this one"] * 2
    )
    assert all(w.filename == __file__ for w in only_nes(recwarn))


def test_each_kind_of_evaluation_warning_is_shown_though_raised_at_the_same_line(
    recwarn: pytest.WarningsRecorder,
) -> None:
    # An evaluation warns of its failed candidates and, separately, of what the engine did
    # about them (here: a hung call holds a thread of the pool). Both named the run loop's
    # line that called the evaluator, so the run counted the second as one more warning
    # "like" the first: the documented warning about held threads was never shown.
    release = threading.Event()

    def hangs_at_first(x: np.ndarray) -> float:
        if x[0] == first[0]:
            release.wait(60)
        return sphere(x)

    es = XNES(np.ones(2), 0.5, rng=0)
    first = es.ask()[0]
    with ThreadPoolExecutor(2) as pool, Evaluator(pool, timeout=0.5) as ev:
        try:
            es.optimize(hangs_at_first, maxiter=1, workers=ev)
        finally:
            release.set()
    caught = [str(w.message) for w in only_nes(recwarn)]
    assert len(caught) == 2, caught
    assert caught[0].startswith("1 of 6 candidates have no finite fitness")
    assert "still run past the timeout and hold 1 thread(s)" in caught[1]
    assert all(w.filename == __file__ for w in only_nes(recwarn))


def test_an_error_filter_still_raises_the_first_warning() -> None:
    es = XNES(np.ones(2), 0.5, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NESWarning)
        with pytest.raises(NESWarning, match="every fitness value is non-finite"):
            es.optimize(nan_fun, maxiter=5)
    assert es.generation == 1  # raised after the first generation
    assert not any(issubclass(type(f), NESWarning) for f in warnings.filters)


def test_an_ignore_filter_silences_the_summary_too(recwarn: pytest.WarningsRecorder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        XNES(np.ones(2), 0.5, rng=0).optimize(nan_fun, maxiter=5)
    assert only_nes(recwarn) == []


def test_users_own_warnings_pass_through_untouched() -> None:
    def noisy(x: np.ndarray) -> float:
        warnings.warn("from the objective", RuntimeWarning, stacklevel=1)
        return sphere(x)

    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        XNES(np.ones(2), 0.5, rng=0).optimize(noisy, maxiter=2)
    own = [w for w in log if str(w.message) == "from the objective"]
    assert len(own) == 12  # every one (popsize 6, 2 generations): neither counted nor moved
    assert all(w.filename == __file__ and w.category is RuntimeWarning for w in own)
    assert len(log) == 12
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("default")  # once per location, for the whole run
        XNES(np.ones(2), 0.5, rng=0).optimize(noisy, maxiter=5)
    assert [str(w.message) for w in log] == ["from the objective"]


def test_runs_in_two_threads_that_end_out_of_order_lose_no_warning() -> None:
    # Run A starts, run B starts, A ends, B ends. Each run used to save the process-wide
    # showwarning on entry and restore it on exit, so B restored A's hook after A had ended:
    # every later warning went to a run that no longer reported (a CI run of a nested
    # optimisation on a thread pool lost the inner runs' failure warnings this way). Now the
    # runs change nothing process-wide, and each counts the warnings of its own thread.
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()

    def run_a() -> None:
        def fun(x: np.ndarray) -> float:
            a_in.set()
            assert b_in.wait(30)
            return math.nan

        XNES(np.ones(2), 0.5, rng=0).optimize(fun, maxiter=1)
        a_done.set()

    def run_b() -> None:
        def fun(x: np.ndarray) -> float:
            b_in.set()
            assert a_done.wait(30)
            return math.nan

        assert a_in.wait(30)
        XNES(np.ones(2), 0.5, rng=1).optimize(fun, maxiter=1)

    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        before = (warnings.showwarning, list(warnings.filters))
        threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert (warnings.showwarning, list(warnings.filters)) == before
        warnings.warn("after both runs", NESWarning, stacklevel=1)
    got = [str(w.message) for w in log]
    assert got[-1] == "after both runs"
    # each run's own warning (every value non-finite, the update skipped) reached the user
    assert sum(m.startswith("generation 0: every fitness value is non-finite") for m in got) == 2


def test_a_callback_that_is_not_callable_is_rejected_before_anything_runs() -> None:
    es = XNES(np.ones(2), 0.5, rng=0)
    with pytest.raises(TypeError, match=r"`callback` must be callable or None, but got 3\."):
        es.optimize(sphere, maxiter=3, callback=3)  # type: ignore[arg-type]
    assert es.nfev == 0


def test_the_progress_lines_of_the_docs_are_what_the_documented_call_prints(capsys) -> None:
    # docs/watching.rst shows the last lines of a documented call; the values (all but the
    # time and the rate) must be what that call prints here
    from pathlib import Path

    from scipy.optimize import rosen

    page = (Path(__file__).resolve().parents[1] / "docs" / "watching.rst").read_text()
    shown = [ln.strip() for ln in page.splitlines() if ln.strip().startswith("XNES gen")]
    assert len(shown) == 3
    XNES(np.zeros(10), 0.5, rng=0, ftarget=1e-10).optimize(rosen, disp=1)
    printed = [ln.strip() for ln in capsys.readouterr().out.splitlines() if "XNES gen" in ln]

    def values(line: str) -> str:  # up to the step size, and the stopping criteria
        head = re.match(r"(XNES gen .*? sigma \S+)", line)
        assert head is not None
        return head.group(1) + ("; " + line.split("; ")[1] if "; " in line else "")

    assert [values(ln) for ln in printed[-3:]] == [values(ln) for ln in shown]
