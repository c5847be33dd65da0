"""The small error hierarchy the worker maps to job states.

- ``BadInput``: the user's input can never succeed (corrupt file, no audio...): fail at once.
- ``TransientError``: worth retrying later (network, a killed ffmpeg, a locked database).
- ``Cancelled``: the operator asked the job to stop.
- ``NotFound`` and ``NotAllowed`` (kinds of bad input): an unknown id, or a change the thing's
  state does not allow (cancel a finished job); the HTTP API answers them with 404 and 409
  (``TooLarge``, an upload over its limit, with 413).
Messages are sentences a user understands; they end up on the job row and in the UI.
"""


class PipelineError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class BadInput(PipelineError):
    """The input cannot be processed; retrying will not help."""


class NotFound(BadInput):
    """The job, episode or clip named does not exist."""


class NotAllowed(BadInput):
    """The change is not allowed in the current state (cancel a finished job, retry a running one)."""


class TooLarge(BadInput):
    """An upload over its size limit."""


class TransientError(PipelineError):
    """A temporary failure; the same work may succeed when tried again."""


class Cancelled(PipelineError):
    """The job was cancelled by the operator."""


class ConfigError(PipelineError):
    """The configuration is invalid; the message names the key and the reason."""


class Interrupted(PipelineError):
    """The worker is shutting down; the job goes back to the queue and resumes at this stage."""


class DuplicateSource(BadInput):
    """This URL was already ingested as ``episode_id``; reprocess that episode instead (issue 8)."""

    def __init__(self, message: str, episode_id: str):
        super().__init__(message)
        self.episode_id = episode_id
