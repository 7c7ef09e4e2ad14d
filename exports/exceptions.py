"""Domain errors of the export service, each with a sentence a user can act on.
No HTTP knowledge here: api_errors.py maps them to status codes."""


def shown(value: object, limit: int = 60) -> str:
    """A request value as an error message quotes it: printable ASCII, cut short."""
    text = ascii(str(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class ExportError(Exception):
    extra: dict[str, object] = {}  # read-only; merged into the JSON body


class InvalidParameters(ExportError):
    """One or more request parameters are wrong; `errors` maps each to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        names = ", ".join(sorted(errors))
        super().__init__(f"Invalid parameter(s): {names}.")
        self.errors = errors
        self.extra = {"errors": errors}


class TaskNotFound(ExportError):
    def __init__(self, task_id: object = None):
        super().__init__(f"No export task {task_id} was found." if task_id else "No such export task.")


class TaskNotFinished(ExportError):
    def __init__(self, status: str):
        super().__init__(f"The export is {status}; download it once its status is completed.")


class TaskExpired(ExportError):
    def __init__(self):
        super().__init__("The export file has expired and was removed. Please start a new export.")


class TaskNotCancellable(ExportError):
    def __init__(self, status: str):
        super().__init__(f"The export is already {status} and can no longer be cancelled.")
        self.extra = {"status": status}


class UnsafeMethod(ExportError):
    """A browser session tried to start or cancel with GET (only token clients may)."""

    def __init__(self):
        super().__init__(
            "With a browser session, start or cancel an export with POST and its CSRF token."
        )


class _RetryLater(ExportError):
    """A refused start; `retry_after` seconds is sent as Retry-After and in the body."""

    message = ""

    def __init__(self, retry_after: int, message: str = ""):
        super().__init__(message or self.message)
        self.retry_after, self.extra = retry_after, {"retry_after": retry_after}


class TooManyActive(_RetryLater):
    message = ("You already have the most exports allowed running or queued. Wait for one to "
               "finish or cancel one, then try again.")


class StartRateExceeded(_RetryLater):
    message = "You have started too many exports in a short time. Try again shortly."


class QueueFull(_RetryLater):
    message = "The export queue is full. Try again shortly."


class ServerBusy(_RetryLater):
    """This server cannot take an export now (stopping, or low on disk space)."""

    message = "The server cannot take new exports right now. Try again shortly."


class ExportFailed(ExportError):
    """Raised inside the runner; its message is stored in the task's `error`."""


class ExportCancelled(ExportError):
    """Raised inside the runner when the task was cancelled between two batches."""
