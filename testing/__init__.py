"""Test doubles for what this machine cannot run: not installed with the project (pyproject lists
the installed packages), imported by the tests and bench scripts from the repository root."""
