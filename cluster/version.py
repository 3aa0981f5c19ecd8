"""The installed version of the project."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("managed-orchestrator")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+source"
