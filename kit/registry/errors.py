"""Registry refusals."""

from kit.errors import SpecError


class RegistryError(SpecError):
    """A registry command that cannot be done as asked (nothing to roll back to, unknown version...)."""
