"""Recommender pieces for cold-start evaluation: split, metrics, features, models."""
