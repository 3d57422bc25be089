"""Data contracts: Great Expectations 1.x suites kept as human-editable JSON in data_contracts/."""

from kit.contracts.load import Contract, ContractError, load_contract
from kit.contracts.validate import ContractResult, check, validate

__all__ = ["Contract", "ContractError", "ContractResult", "check", "load_contract", "validate"]
