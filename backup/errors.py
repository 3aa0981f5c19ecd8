"""The backup layer's exceptions: one hierarchy, each message one line a user can act on.

Callers above this layer (the `managed backup` CLI, the scheduler) catch `BackupError` and print
its message; nothing below raises a bare library exception past a public function of `backup`.
"""

from __future__ import annotations


class BackupError(Exception):
    """Base of every error the backup library raises on purpose."""


class ConfigError(BackupError):
    """Bad user input: a target URL, a retention policy, a part name, a rate."""


class ResidencyError(BackupError):
    """A target lies (or really is) outside the cluster's geography."""


class KeyFileError(BackupError):
    """A key file cannot be read: malformed, wrong type, or wrong passphrase."""


class TargetError(BackupError):
    """A target could not store or return an object."""


class ManifestError(BackupError):
    """A manifest is malformed, or its signature does not verify."""


class IntegrityError(BackupError):
    """Stored ciphertext or a frame failed a digest or authentication check.

    `part` and `frame` name the first bad place found (`frame` is None when only the whole-object
    digest could be checked, i.e. without the private key).
    """

    def __init__(self, message: str, *, part: str, frame: int | None = None) -> None:
        super().__init__(message)
        self.part = part
        self.frame = frame
