"""The model registry: versions with gate evidence, promotion, rollback, and the audit log."""

from kit.registry.audit import AuditLog, Event, holders
from kit.registry.errors import RegistryError
from kit.registry.promote import Registry

__all__ = ["AuditLog", "Event", "Registry", "RegistryError", "holders"]
