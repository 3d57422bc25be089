"""Registry refusals."""

from kit.errors import KitError


class RegistryError(KitError):
    """A registry command that cannot be done as asked (nothing to roll back to, unknown version...)."""

    exit_code = 2
