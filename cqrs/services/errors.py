"""Errors of the native service runner.

    ServiceError
    ├── PrerequisiteMissing   a tool is absent or of the wrong version (the message names the fix)
    ├── PortTaken             something else listens where a service should
    ├── FetchFailed           Maven could not provide an artifact
    └── StartFailed           a service did not become ready (the message names its log)
"""


class ServiceError(Exception):
    """Base of the runner's errors; the message says what to do."""


class PrerequisiteMissing(ServiceError):
    pass


class PortTaken(ServiceError):
    pass


class FetchFailed(ServiceError):
    pass


class StartFailed(ServiceError):
    pass
