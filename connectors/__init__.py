"""Adapters between syncd and outside formats and servers; nothing here touches syncd's database."""
