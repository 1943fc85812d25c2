"""Posterior analysis for the pages and the CLI: rankings, contrasts, pairs, sentences, forest/heatmap/PPC/compare views."""
