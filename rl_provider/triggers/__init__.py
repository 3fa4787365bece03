"""Deferrable triggers: async polling of training jobs and endpoints in the triggerer."""
