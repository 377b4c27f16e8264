"""Interoperability with other toolkits' checkpoint formats."""
