"""Triggers for containerkit's deferrable operators (import-light: the triggerer imports them by path)."""
