"""Scoring of retrieval and answers on a test set; arrives with the eval issue."""
