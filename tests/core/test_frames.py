"""Warnings raised inside our wrappers point at the caller's line; the warnings hook is undone on deactivation."""

from __future__ import annotations

import inspect
import warnings

import torch

import torchdevice_core as td


def _here() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_a_cpp_warning_from_a_patched_factory_points_here() -> None:
    source = torch.ones(2)
    with td.redirected("cpu"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.tensor(source, device="cuda"); line = _here()  # noqa: E702 (the warning's line and ours)
    [warning] = [w for w in caught if "copy construct" in str(w.message)]
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_a_python_warning_inside_a_patched_entry_point_points_here() -> None:
    with td.redirected("cpu"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.amp.autocast(); line = _here()  # noqa: E702
    [warning] = [w for w in caught if "deprecated" in str(w.message)]
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_other_warnings_are_left_alone_and_the_hook_is_undone() -> None:
    before = warnings._showwarnmsg  # type: ignore[attr-defined]
    with td.redirected("cpu"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert warnings._showwarnmsg is not before  # type: ignore[attr-defined]
        warnings.warn("mine", UserWarning, stacklevel=1); line = _here()  # noqa: E702
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    assert warnings._showwarnmsg is before  # type: ignore[attr-defined]


def test_our_modules_are_hidden_from_pytest_tracebacks() -> None:
    import torchdevice_core.redirect.factories as factories
    import torchdevice_core.session as session

    with td.redirected("cpu"):
        pass
    assert vars(factories)["__tracebackhide__"] is True
    assert vars(session)["__tracebackhide__"] is True
