"""A course kit: the book's exercises as Otter-Grader assignments.

``python -m mgs_teach.lab course assign book/X.ipynb OUT/`` (or ``--all OUT/``) turns each
chapter into an Otter Assign master notebook (:mod:`~mgs_teach.lab.course.master`), runs
``otter assign`` on it, and writes an instructor's README (:mod:`~mgs_teach.lab.course.assign`).
"""

from mgs_teach.lab.course.assign import assign_chapter, main

__all__ = ["assign_chapter", "main"]
