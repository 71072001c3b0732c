"""The exceptions this library raises, so callers (and the pytest plugin) can tell them apart."""

from __future__ import annotations


class TorchDeviceError(Exception):
    """Base class of every error raised by torchdevice_core itself."""


class TargetSpecError(TorchDeviceError, ValueError):
    """A target specification that is not one of the accepted forms."""

    def __init__(self, value: object, choices: str, source: str = "") -> None:
        where = f"{source}={value!r}" if source else repr(value)
        super().__init__(f"{where} is not a valid target device; valid choices: {choices}")
        self.value = value
        self.choices = choices


class TargetUnavailableError(TorchDeviceError, RuntimeError):
    """A well-formed target that this machine does not have."""

    def __init__(self, target: str, available: list[str], reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"target device {target!r} is not available on this machine{detail}; "
            f"available: {', '.join(available)}"
        )
        self.target = target
        self.available = available


class ActivationError(TorchDeviceError, RuntimeError):
    """Activation requested in a way that would silently change an active redirection."""


class TargetGapError(TorchDeviceError, NotImplementedError):
    """An op on redirected tensors failed only because the *target* has no kernel for that dtype
    (``"avg_pool3d_out_frame" not implemented for 'Half'`` on a CPU target): a gap of the target, not a bug
    of the code under test.  Keeps torch's message first, so code matching it still matches."""

    def __init__(self, op: str, dtype: str, target: str, original: str) -> None:
        super().__init__(
            f"{original} [torchdevice: target gap: the {target} target has no {op} kernel for {dtype}]"
        )
        self.op = op
        self.dtype = dtype
        self.target = target

    @property
    def reason(self) -> str:
        return f"target gap: {self.op} is not implemented for {self.dtype} on target {self.target!r}"


class UnemulatableError(TorchDeviceError, NotImplementedError):
    """A source-device API that cannot be reproduced on the target; raised instead of faking success."""

    def __init__(self, api: str, target: str, why: str = "") -> None:
        reason = f": {why}" if why else ""
        super().__init__(f"{api} cannot be emulated on target {target!r}{reason}")
        self.api = api
        self.target = target
        self.why = why
