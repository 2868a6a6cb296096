"""What can go wrong with a job, as exceptions callers can catch by name."""
from __future__ import annotations

from core.configs import ConfigError


class JobError(ConfigError):
    """A job could not be submitted: unknown kind or a malformed payload."""


class JobNotFound(KeyError):
    """No job with that id."""


class JobCancelled(Exception):
    """Raised inside a job when the user cancelled it; the job ends as 'cancelled'."""
