"""Registry refusals."""

from kit.errors import SpecError


class RegistryError(SpecError):
    """A registry command that cannot be done as asked (nothing to roll back to, unknown version...)."""


class HolderChanged(RegistryError):
    """The alias no longer points at the version a promotion was judged against."""

    def __init__(self, name: str, alias: str, expected: str | None, holder: str | None):
        super().__init__(f"{name}@{alias} is v{holder} now, not v{expected} as when the gates were judged")
        self.expected, self.holder = expected, holder
