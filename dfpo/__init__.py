"""Seed 3's DFPO: fine-tune, DPOP preference optimisation, fine-tune again."""
