"""Reliability: the fault matrix (``make test``) and the soak (``make soak``)."""
