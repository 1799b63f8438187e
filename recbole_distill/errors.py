"""Errors that stop a run before training, each naming what is wrong and how to fix it."""


class RecBoleDistillError(ValueError):
    """Base class: bad input that recbole-distill refuses before any training starts."""


class ConfigError(RecBoleDistillError):
    """A config value is missing, of the wrong type or out of range."""

    def __init__(self, key, value, expected):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(
            f"config key '{key}' = {value!r}: expected {expected}. "
            f"Set it in your YAML file or on the command line as --{key}=..."
        )

    def __reduce__(self):  # crosses process boundaries (distributed runs report errors to the parent)
        return type(self), (self.key, self.value, self.expected)


class TeacherArtifactError(RecBoleDistillError):
    """Teacher artifacts are missing, malformed, or do not match the dataset."""


class DatasetError(RecBoleDistillError):
    """The data set cannot be found, or its filters leave nothing."""
