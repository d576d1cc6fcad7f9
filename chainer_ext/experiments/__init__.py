"""Experiments that test the paper's claims in miniature (see EXPERIMENTS.md)."""
