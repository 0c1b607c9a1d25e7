"""Datasets: the Two4Two format, its procedural generator, image folders and the dataset index."""
