"""Evaluation: prompt adherence on the procedural set (analytic probes), and later the paper's metrics."""
